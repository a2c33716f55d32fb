#!/usr/bin/env python3
# Re-encode a stored-block PNG with zlib level 9 (docs images only).
import sys, zlib, struct
src, dst = sys.argv[1], sys.argv[2]
d = open(src, 'rb').read(); p = 8; chunks = []; z = b''
while p < len(d):
    n, = struct.unpack('>I', d[p:p+4]); t = d[p+4:p+8]
    if t == b'IDAT': z += d[p+8:p+8+n]
    else: chunks.append((t, d[p+8:p+8+n]))
    p += 12 + n
raw = zlib.decompress(z)
def chunk(t, b): return struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t + b))
out = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', chunks[0][1]) + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')
open(dst, 'wb').write(out)
