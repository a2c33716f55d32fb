"""The safetensors file format: a writer and a reader that need only numpy.

A file is an 8-byte little-endian header length N, N bytes of JSON
({name: {"dtype", "shape", "data_offsets"}, "__metadata__": {str: str}}),
then the raw little-endian tensor bytes. The writer lays a file out exactly as
the safetensors library does (tensors ordered by dtype, widest first, then by
name; compact JSON; header padded with spaces to a multiple of 8), so a file
has the same bytes whichever of the two wrote it (python/tests check this when
the library is installed).
"""

import json
import os
import struct

import numpy as np

# safetensors dtype name -> numpy dtype of the stored bytes. BF16 has no numpy
# dtype: its values travel as their uint16 bit patterns.
NUMPY_OF = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    # FP8 codes (an FP8 K/V cache): one byte each, held as uint8 (numpy has no fp8 dtype)
    "F8_E5M2": np.dtype(np.uint8),
    "F8_E4M3": np.dtype(np.uint8),
    "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I32": np.dtype("<i4"),
    "U32": np.dtype("<u4"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "U64": np.dtype("<u8"),
}
# The order of the library's dtype enum: the writer puts higher ranks first.
_RANK = {name: i for i, name in enumerate(NUMPY_OF)}

# numpy dtype -> safetensors name, for arrays that are not bf16 bit patterns.
_NAME_OF_KIND = {
    ("b", 1): "BOOL", ("u", 1): "U8", ("i", 1): "I8", ("i", 2): "I16", ("u", 2): "U16",
    ("f", 2): "F16", ("i", 4): "I32", ("u", 4): "U32", ("f", 4): "F32", ("f", 8): "F64",
    ("i", 8): "I64", ("u", 8): "U64",
}

# The format's own bound on the header (the library refuses larger ones).
MAX_HEADER_BYTES = 100_000_000


class FormatError(ValueError):
    """A file that is not a well-formed safetensors file."""


def dtype_name(arr):
    """The safetensors name of a numpy array's dtype, or None if it has none."""
    return _NAME_OF_KIND.get((arr.dtype.kind, arr.dtype.itemsize))


def _little_endian(dtype_str, arr):
    arr = np.asarray(arr, order="C")
    want = NUMPY_OF[dtype_str]
    if arr.dtype != want:
        arr = arr.astype(want)
    return arr


def encode(tensors, metadata=None):
    """The bytes of a file. tensors: {name: (safetensors dtype, ndarray)};
    metadata: {str: str} or None."""
    if metadata is not None:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise FormatError("__metadata__ keys and values must be strings")
    order = sorted(tensors, key=lambda n: (-_RANK[tensors[n][0]], n))
    header = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in order:
        dtype_str, arr = tensors[name]
        if name == "__metadata__":
            raise FormatError("'__metadata__' is not a legal tensor name")
        arr = _little_endian(dtype_str, arr)
        data = arr.tobytes()
        header[name] = {"dtype": dtype_str, "shape": [int(n) for n in arr.shape],
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return b"".join([struct.pack("<Q", len(text)), text] + blobs)


def write_file(path, tensors, metadata=None):
    """Write a file with the package's own writer (atomically: a reader never
    sees half a file)."""
    data = encode(tensors, metadata)
    tmp = "%s.tmp%d" % (os.fspath(path), os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def decode(data):
    """(metadata {str: str} or None, {name: (safetensors dtype, ndarray)}) of a
    file's bytes. Arrays are read-only views of `data`."""
    if len(data) < 8:
        raise FormatError("file shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(data):
        raise FormatError("header length %d does not fit the file (%d bytes)" % (n, len(data)))
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError("header is not JSON: %s" % e) from None
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object")
    body = memoryview(data)[8 + n:]
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and
                                     all(isinstance(v, str) for v in metadata.values())):
        raise FormatError("__metadata__ is not an object of strings")
    tensors = {}
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise FormatError("tensor %r: entry must hold dtype, shape, data_offsets" % name)
        dtype_str, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dtype_str not in NUMPY_OF:
            raise FormatError("tensor %r: unknown dtype %r" % (name, dtype_str))
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise FormatError("tensor %r: shape must be a list of non-negative integers" % name)
        if not (isinstance(offs, list) and len(offs) == 2 and
                all(type(o) is int for o in offs) and 0 <= offs[0] <= offs[1] <= len(body)):
            raise FormatError("tensor %r: data_offsets %r outside the data (%d bytes)"
                              % (name, offs, len(body)))
        dt = NUMPY_OF[dtype_str]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if offs[1] - offs[0] != count * dt.itemsize:
            raise FormatError("tensor %r: %d bytes for shape %r of %s"
                              % (name, offs[1] - offs[0], shape, dtype_str))
        arr = np.frombuffer(body[offs[0]:offs[1]], dtype=dt).reshape(shape)
        tensors[name] = (dtype_str, arr)
        spans.append((offs[0], offs[1], name))
    spans.sort()
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
        if b0 < a1:
            raise FormatError("tensors %r and %r overlap" % (an, bn))
    return metadata, tensors


def read_file(path):
    with open(path, "rb") as f:
        return decode(f.read())
