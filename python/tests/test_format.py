"""The package's own safetensors writer against an independent minimal
reader written here from the format's description, and against the
safetensors library itself when it is installed (byte for byte)."""

import json
import struct

import numpy as np
import pytest

import attncheck
from attncheck import _safetensors
from conftest import f16

_DTYPES = {"F16": "<f2", "BF16": "<u2", "F32": "<f4", "I32": "<i4", "I64": "<i8",
           "BOOL": "|b1", "U8": "|u1"}


def minimal_read(path):
    """Read a file from the format's description alone: 8-byte little-endian
    header length, JSON header, data; offsets relative to the data start."""
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    assert n % 8 == 0, "header padded to 8 bytes"
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__")
    body = data[8 + n:]
    out = {}
    end = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = info["data_offsets"]
        assert a == end, "tensors packed without gaps"
        end = b
        arr = np.frombuffer(body[a:b], dtype=np.dtype(_DTYPES[info["dtype"]])).reshape(info["shape"])
        out[name] = (info["dtype"], arr)
    assert end == len(body), "no trailing bytes"
    return meta, out


def sample_tensors(rng):
    return {
        "q": ("BF16", rng.integers(0, 1 << 16, (5, 4, 8), dtype=np.uint16)),
        "k": ("F16", f16(rng, 7, 2, 8)),
        "lse": ("F32", rng.standard_normal((5, 4)).astype(np.float32)),
        "cu_seqlens_q": ("I32", np.array([0, 2, 5], np.int32)),
        "slot_mapping": ("I64", np.array([3, -1, 7], np.int64)),
        "mask": ("BOOL", rng.integers(0, 2, (1, 18)).astype(bool)),
        "m8": ("U8", np.array([0, 1, 1], np.uint8)),
        "num_splits": ("I32", np.array(4, np.int32)),
        "empty": ("F16", np.zeros((0, 4, 8), np.float16)),
    }


def test_own_writer_read_by_minimal_reader(tmp_path, rng):
    tensors = sample_tensors(rng)
    path = tmp_path / "x.safetensors"
    _safetensors.write_file(path, tensors, {"attncheck": "{\"a\": \"\u00e9\"}"})
    meta, got = minimal_read(path)
    assert meta == {"attncheck": "{\"a\": \"\u00e9\"}"}
    assert sorted(got) == sorted(tensors)
    for name, (dt, arr) in tensors.items():
        assert got[name][0] == dt
        assert got[name][1].shape == arr.shape
        assert got[name][1].tobytes() == arr.tobytes(), name
    # And the package's own reader agrees with the minimal one.
    meta2, got2 = _safetensors.read_file(path)
    assert meta2 == meta
    for name in tensors:
        assert got2[name][0] == got[name][0]
        assert got2[name][1].tobytes() == got[name][1].tobytes()


def test_layout_order_and_padding(tmp_path, rng):
    # The library's order: widest dtype first (I64, F32, I32, BF16, F16, U8, BOOL), then name.
    path = tmp_path / "x.safetensors"
    _safetensors.write_file(path, sample_tensors(rng), {"k": "v"})
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    text = data[8:8 + n].decode()
    assert text.startswith('{"__metadata__":{"k":"v"},')
    assert text == text.rstrip() + " " * (len(text) - len(text.rstrip()))
    order = [k for k in json.loads(text) if k != "__metadata__"]
    assert order == ["slot_mapping", "lse", "cu_seqlens_q", "num_splits", "q", "empty", "k",
                     "m8", "mask"]


def test_big_endian_input_is_stored_little_endian(tmp_path):
    arr = np.array([1.5, -2.0], dtype=">f4")
    path = tmp_path / "x.safetensors"
    _safetensors.write_file(path, {"x": ("F32", arr)})
    got = _safetensors.read_file(path)[1]
    assert got["x"][1].tolist() == [1.5, -2.0]
    assert open(path, "rb").read()[-8:] == np.array([1.5, -2.0], "<f4").tobytes()


@pytest.mark.parametrize("corrupt,words", [
    (lambda d: d[:4], "shorter"),
    (lambda d: struct.pack("<Q", 1 << 40) + d[8:], "does not fit"),
    (lambda d: d[:8] + b"[" + d[9:], "not JSON"),
    (lambda d: d[:-1], "outside the data"),
    (lambda d: d.replace(b'"shape":[4]', b'"shape":[3]'), "bytes for shape"),
    (lambda d: d.replace(b'"F32"', b'"F31"'), "unknown dtype"),
])
def test_reader_refuses_broken_files(tmp_path, rng, corrupt, words):
    path = tmp_path / "x.safetensors"
    _safetensors.write_file(path, {"x": ("F32", np.zeros(4, np.float32))}, {"a": "b"})
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(_safetensors.FormatError) as e:
        _safetensors.read_file(bad)
    assert words in str(e.value)


def _library():
    return pytest.importorskip("safetensors")


def test_same_bytes_as_safetensors_numpy(tmp_path, rng):
    _library()
    import safetensors.numpy
    tensors = {n: v for n, v in sample_tensors(rng).items() if v[0] != "BF16"}
    ours = tmp_path / "ours.safetensors"
    theirs = tmp_path / "theirs.safetensors"
    meta = {"attncheck": json.dumps({"note": "x"})}
    _safetensors.write_file(ours, tensors, meta)
    safetensors.numpy.save_file({n: a for n, (_, a) in tensors.items()}, str(theirs), metadata=meta)
    assert ours.read_bytes() == theirs.read_bytes()
    loaded = safetensors.numpy.load_file(str(ours))
    for name, (_, arr) in tensors.items():
        assert loaded[name].dtype == arr.dtype and loaded[name].tobytes() == arr.tobytes()


def test_bf16_file_same_bytes_as_safetensors(tmp_path, rng):
    st = _library()
    if not hasattr(st, "TensorSpec"):
        pytest.skip("this safetensors has no TensorSpec to write raw bf16 with")
    tensors = sample_tensors(rng)
    names = {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "I32": "int32",
             "I64": "int64", "BOOL": "bool", "U8": "uint8"}
    keep = {n: np.asarray(a, order="C") for n, (_, a) in tensors.items()}
    specs = {n: st.TensorSpec(dtype=names[dt], shape=list(keep[n].shape),
                              data_ptr=keep[n].ctypes.data, data_len=keep[n].nbytes)
             for n, (dt, _) in tensors.items()}
    theirs = tmp_path / "theirs.safetensors"
    st.serialize_file(specs, str(theirs), metadata={"k": "v"})
    ours = tmp_path / "ours.safetensors"
    _safetensors.write_file(ours, tensors, {"k": "v"})
    assert ours.read_bytes() == theirs.read_bytes()


def test_dump_through_library_and_own_writer_agree(tmp_path, rng):
    _library()
    call = dict(op="prefill", q=f16(rng, 5, 4, 8), k=f16(rng, 7, 2, 8), v=f16(rng, 7, 2, 8),
                cu_seqlens_q=np.array([0, 2, 5], np.int32), cu_seqlens_k=np.array([0, 3, 7], np.int32),
                out=f16(rng, 5, 4, 8), lse=np.zeros((5, 4), np.float32), scale=0.0)
    attncheck.dump(tmp_path / "lib.safetensors", writer="safetensors", **call)
    attncheck.dump(tmp_path / "own.safetensors", writer="own", **call)
    assert (tmp_path / "lib.safetensors").read_bytes() == (tmp_path / "own.safetensors").read_bytes()
    from safetensors import safe_open
    with safe_open(str(tmp_path / "own.safetensors"), framework="numpy") as f:
        meta = json.loads(f.metadata()["attncheck"])
        assert meta["scale"] == 0.0
        assert f.get_tensor("q").tobytes() == call["q"].tobytes()


def test_library_writer_refuses_bf16(tmp_path, rng):
    _library()
    with pytest.raises(attncheck.DumpError) as e:
        attncheck.dump(tmp_path / "x.safetensors", writer="safetensors", op="combine",
                       o_part=np.zeros((2, 1, 8), np.float32), lse_part=np.zeros((2, 1), np.float32),
                       out=attncheck.bf16_from_bits(np.zeros((2, 8), np.uint16)))
    assert e.value.argument == "writer"
