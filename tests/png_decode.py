#!/usr/bin/env python3
"""Decodes an 8-bit RGB PNG with nothing but zlib, for tests/test_png.c: a
reader that shares no code with libpng's. Checks every chunk's CRC, undoes
the five row filters of the PNG spec, and prints

    size W H
    crc32 N        (CRC-32 of the W*H*3 pixel bytes, top row first)
    pixel X Y R G B    (one line per X,Y pair given after the file name)
    text KEY=VALUE     (one line per tEXt chunk)

Usage: png_decode.py FILE [X Y]..."""
import struct
import sys
import zlib


def decode(path):
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('no PNG signature')
    at, idat, text, ihdr = 8, b'', [], None
    while at < len(data):
        n, = struct.unpack('>I', data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + n]
        crc, = struct.unpack('>I', data[at + 8 + n:at + 12 + n])
        if crc != zlib.crc32(kind + body):
            raise ValueError('CRC of chunk %r' % kind)
        if kind == b'IHDR':
            ihdr = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat += body
        elif kind == b'tEXt':
            key, value = body.split(b'\0', 1)
            text.append((key.decode('latin-1'), value.decode('latin-1')))
        at += 12 + n
        if kind == b'IEND':
            break
    w, h, depth, colour, _, _, interlace = ihdr
    if (depth, colour, interlace) != (8, 2, 0):
        raise ValueError('not 8-bit RGB without interlace: %r' % (ihdr,))
    raw, stride, bpp = zlib.decompress(idat), 3 * w, 3
    if len(raw) != h * (stride + 1):
        raise ValueError('inflated %d bytes, want %d' % (len(raw), h * (stride + 1)))
    out, prev = bytearray(), bytearray(stride)
    for y in range(h):
        base = y * (stride + 1)
        f, line = raw[base], bytearray(raw[base + 1:base + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            else:
                raise ValueError('row %d: filter %d' % (y, f))
            line[i] = (line[i] + pred) & 255
        out += line
        prev = line
    return w, h, bytes(out), text


def main():
    w, h, px, text = decode(sys.argv[1])
    print('size', w, h)
    print('crc32', zlib.crc32(px))
    args = [int(v) for v in sys.argv[2:]]
    for x, y in zip(args[0::2], args[1::2]):
        i = 3 * (y * w + x)
        print('pixel', x, y, px[i], px[i + 1], px[i + 2])
    for key, value in text:
        print('text %s=%s' % (key, value))


if __name__ == '__main__':
    main()
