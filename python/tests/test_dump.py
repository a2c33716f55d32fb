"""attncheck.dump / attncheck.load: round trips and every validation error."""

import json
import math

import numpy as np
import pytest

import attncheck
from attncheck import _safetensors
from conftest import f16


def prefill_contiguous(rng):
    return dict(op="prefill", q=f16(rng, 5, 4, 8), k=f16(rng, 7, 2, 8), v=f16(rng, 7, 2, 8),
                cu_seqlens_q=np.array([0, 2, 5], np.int32),
                cu_seqlens_k=np.array([0, 3, 7], np.int32), out=f16(rng, 5, 4, 8))


def prefill_paged(rng):
    return dict(op="prefill", q=f16(rng, 5, 4, 8), k_cache=f16(rng, 6, 4, 2, 8),
                v_cache=f16(rng, 6, 4, 2, 8), block_table=np.array([[3, 0, -1], [5, 1, 2]], np.int32),
                seqlens_k=np.array([6, 9], np.int32), cu_seqlens_q=np.array([0, 2, 5], np.int64),
                out=f16(rng, 5, 4, 8))


def decode(rng):
    return dict(op="decode", q=f16(rng, 3, 4, 8), k_cache=f16(rng, 6, 4, 2, 8),
                v_cache=f16(rng, 6, 4, 2, 8), block_table=np.array([[3, 0, -1], [5, 1, 2]], np.int32),
                seqlens_k=np.array([6, 9], np.int32), cu_seqlens_q=np.array([0, 1, 3], np.int32),
                out=f16(rng, 3, 4, 8), lse=rng.standard_normal((3, 4)).astype(np.float32),
                num_splits=3, causal="BR")


def combine(rng):
    return dict(op="combine", o_part=rng.standard_normal((6, 3, 8)).astype(np.float32),
                lse_part=rng.standard_normal((6, 3)).astype(np.float32),
                out=f16(rng, 6, 8), lse=rng.standard_normal(6).astype(np.float32))


def store(rng):
    return dict(op="store", k_new=f16(rng, 3, 2, 8), v_new=f16(rng, 3, 2, 8),
                slot_mapping=np.array([5, -1, 0], np.int64), k_cache=f16(rng, 2, 4, 2, 8),
                v_cache=f16(rng, 2, 4, 2, 8), k_cache_out=f16(rng, 2, 4, 2, 8),
                v_cache_out=f16(rng, 2, 4, 2, 8))


CALLS = {"prefill_contiguous": prefill_contiguous, "prefill_paged": prefill_paged,
         "decode": decode, "combine": combine, "store": store}


def raw_metadata(path):
    meta, _ = _safetensors.read_file(path)
    return json.loads(meta["attncheck"])


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("writer", ["own", "auto"])
def test_round_trip_bitwise(tmp_path, rng, name, writer):
    call = CALLS[name](rng)
    path = tmp_path / ("%s.safetensors" % name)
    written = attncheck.dump(path, writer=writer, library="lib", library_version="1.2",
                             note="a note \u00e9 \"quoted\"\n", **call)
    meta, arrays = attncheck.load(path)
    assert meta == written
    assert meta == raw_metadata(path)
    assert meta["note"] == "a note \u00e9 \"quoted\"\n"
    assert meta["format"] == "attncheck-dump" and meta["version"] == 1
    expected = {n: np.asarray(v) for n, v in call.items() if n not in ("op", "causal")}
    if "num_splits" in expected:
        expected["num_splits"] = np.array(expected["num_splits"], np.int32)
    assert sorted(arrays) == sorted(expected)
    for n, want in expected.items():
        got = arrays[n]
        assert got.dtype == want.dtype, n
        assert got.shape == want.shape, n
        assert got.tobytes() == want.tobytes(), n


def test_metadata_keys_are_the_agreed_ones(tmp_path, rng):
    path = tmp_path / "a.safetensors"
    attncheck.dump(path, **prefill_contiguous(rng))
    meta, _ = _safetensors.read_file(path)
    assert list(meta) == ["attncheck"]
    assert list(json.loads(meta["attncheck"])) == [
        "format", "version", "op", "causal", "scale", "layout", "kv_layout", "lse_base",
        "lse_layout", "empty_row", "combine_empty", "mask", "library", "library_version",
        "note", "out_dtype"]


def test_default_scale_and_one_are_distinct(tmp_path, rng):
    call = prefill_contiguous(rng)
    seen = {}
    for label, scale in (("none", None), ("default", "default"), ("one", 1.0),
                         ("int_one", 1), ("zero", 0.0), ("f32", np.float32(0.125))):
        path = tmp_path / ("%s.safetensors" % label)
        attncheck.dump(path, scale=scale, **call)
        seen[label] = raw_metadata(path)["scale"]
    assert seen["none"] == "default" and seen["default"] == "default"
    assert seen["one"] == 1.0 and isinstance(seen["one"], float)
    assert seen["int_one"] == 1.0
    assert seen["zero"] == 0.0 and seen["zero"] != "default"
    assert seen["f32"] == 0.125


def test_float32_scale_survives_exactly(tmp_path, rng):
    s = np.float32(96) ** np.float32(-0.5)
    path = tmp_path / "a.safetensors"
    attncheck.dump(path, scale=s, **prefill_contiguous(rng))
    assert np.float32(raw_metadata(path)["scale"]) == s
    assert raw_metadata(path)["scale"] == float(s)


def test_bf16_bit_patterns_preserved(tmp_path, rng):
    call = prefill_contiguous(rng)
    bits = {}
    for n in ("q", "k", "v", "out"):
        b = rng.integers(0, 1 << 16, size=call[n].shape, dtype=np.uint16)
        # Every class of value: NaN payloads, infinities, subnormals, -0.
        b.flat[:6] = [0x7FC1, 0xFF81, 0x7F80, 0xFF80, 0x0001, 0x8000]
        bits[n] = b
        call[n] = attncheck.bf16_from_bits(b)
    path = tmp_path / "bf.safetensors"
    attncheck.dump(path, **call)
    assert attncheck.tensor_dtypes(path)["q"] == "BF16"
    _, arrays = attncheck.load(path)
    for n, b in bits.items():
        assert arrays[n].dtype == np.uint16 and np.array_equal(arrays[n], b)
    _, widened = attncheck.load(path, bf16="float32")
    assert widened["q"].dtype == np.float32
    assert np.array_equal(widened["q"].view(np.uint32), bits["q"].astype(np.uint32) << 16)
    assert widened["cu_seqlens_q"].dtype == np.int32  # only BF16 tensors are widened


def test_bf16_rounding_helpers():
    x = np.array([1.0, 1.00390625, 1.01171875, -2.5, np.inf, -np.inf, np.nan, 3.4e38,
                  1e-40, -0.0], np.float32)
    b = attncheck.bf16_from_float(x).bits
    # 1 + 2^-8 is a tie (rounds to even: 1.0); 1 + 3*2^-8 ties up to 1 + 2^-6.
    assert list(b[:6]) == [0x3F80, 0x3F80, 0x3F82, 0xC020, 0x7F80, 0xFF80]
    assert np.isnan(attncheck.bf16_to_float(b[6:7]))[0]
    assert b[7] == 0x7F80  # above the largest bf16: overflows to inf
    assert b[9] == 0x8000
    assert np.array_equal(attncheck.bf16_from_float(attncheck.bf16_to_float(b[:6])).bits, b[:6])
    with pytest.raises(TypeError):
        attncheck.bf16_from_bits(np.array([-1]))


def test_layout_options_recorded(tmp_path, rng):
    call = prefill_paged(rng)
    call["q"] = f16(rng, 4, 5, 8)          # HND: [Hq, total_q, D]
    call["out"] = f16(rng, 4, 5, 8)
    call["k_cache"] = f16(rng, 6, 2, 4, 8)  # kv HND: [blocks, Hkv, block_size, D]
    call["v_cache"] = f16(rng, 6, 2, 4, 8)
    call["lse"] = rng.standard_normal((4, 5)).astype(np.float32)  # HT: [Hq, total_q]
    path = tmp_path / "hnd.safetensors"
    attncheck.dump(path, layout="HND", kv_layout="HND", lse_layout="HT", lse_base="2",
                   empty_row="zero_posinf", combine_empty="flash_attn", causal="TL", **call)
    meta = raw_metadata(path)
    assert (meta["layout"], meta["kv_layout"], meta["lse_layout"], meta["lse_base"],
            meta["empty_row"], meta["combine_empty"], meta["causal"]) == (
        "HND", "HND", "HT", "2", "zero_posinf", "flash_attn", "TL")
    # The same tensors under the NHD reading do not fit: the layout is checked.
    with pytest.raises(attncheck.DumpError) as e:
        attncheck.dump(tmp_path / "x.safetensors", **call)
    assert e.value.argument in ("k_cache", "cu_seqlens_q", "lse")


def test_lse_layout_th_and_ht(tmp_path, rng):
    call = prefill_contiguous(rng)
    attncheck.dump(tmp_path / "th.safetensors", lse=np.zeros((5, 4), np.float32), **call)
    attncheck.dump(tmp_path / "ht.safetensors", lse=np.zeros((4, 5), np.float32), lse_layout="HT", **call)
    assert raw_metadata(tmp_path / "th.safetensors")["lse_layout"] == "TH"
    assert raw_metadata(tmp_path / "ht.safetensors")["lse_layout"] == "HT"


def test_mask_kinds(tmp_path, rng):
    call = prefill_contiguous(rng)
    cols = 2 * 3 + 3 * 4
    cases = {"bool": (np.ones((1, cols), bool), "bool", "BOOL"),
             "u8": (np.ones((4, cols), np.uint8), "bool", "U8"),
             "add": (np.zeros((4, cols), np.float32), "additive", "F32"),
             "add16": (np.full((1, cols), -np.inf, np.float16), "additive", "F32"),
             "addbf": (attncheck.bf16_from_float(np.full((1, cols), -1.5)), "additive", "F32")}
    for label, (mask, kind, dtype) in cases.items():
        path = tmp_path / ("%s.safetensors" % label)
        attncheck.dump(path, mask=mask, **call)
        assert raw_metadata(path)["mask"] == kind
        assert attncheck.tensor_dtypes(path)["mask"] == dtype
    _, arrays = attncheck.load(tmp_path / "addbf.safetensors")
    assert np.all(arrays["mask"] == -1.5)


def test_out_dtype(tmp_path, rng):
    call = prefill_contiguous(rng)
    call["out"] = call["out"].astype(np.float32)
    attncheck.dump(tmp_path / "f32.safetensors", **call)
    assert raw_metadata(tmp_path / "f32.safetensors")["out_dtype"] == "float32"
    c = combine(rng)
    c["out"] = c["out"].astype(np.float32)
    attncheck.dump(tmp_path / "c.safetensors", **c)
    assert raw_metadata(tmp_path / "c.safetensors")["out_dtype"] == "float32"
    attncheck.dump(tmp_path / "c16.safetensors", **combine(rng))
    assert raw_metadata(tmp_path / "c16.safetensors")["out_dtype"] == "same"


def test_num_splits_scalar_or_one_element(tmp_path, rng):
    # The C writer stores num_splits as [1]; 0 means automatic.
    for value in (np.array([2], np.int32), 0):
        call = dict(decode(rng), num_splits=value)
        attncheck.dump(tmp_path / "a.safetensors", **call)
        _, t = attncheck.load(tmp_path / "a.safetensors")
        assert int(t["num_splits"].reshape(())) == int(np.asarray(value).reshape(()))


def test_single_sequence_may_omit_cu_seqlens(tmp_path, rng):
    attncheck.dump(tmp_path / "a.safetensors", op="prefill", q=f16(rng, 3, 2, 8),
                   k=f16(rng, 4, 1, 8), v=f16(rng, 4, 1, 8), out=f16(rng, 3, 2, 8))
    attncheck.dump(tmp_path / "b.safetensors", op="decode", q=f16(rng, 2, 2, 8),
                   k_cache=f16(rng, 2, 4, 1, 8), v_cache=f16(rng, 2, 4, 1, 8),
                   block_table=np.array([[1, 0]], np.int32), seqlens_k=np.array([7], np.int32),
                   out=f16(rng, 2, 2, 8), causal="BR")


def test_load_defaults_for_omitted_keys(tmp_path, rng):
    call = prefill_contiguous(rng)
    tensors = {n: ("F16" if call[n].dtype == np.float16 else "I32", call[n]) for n in call if n != "op"}
    path = tmp_path / "min.safetensors"
    _safetensors.write_file(path, tensors, {"attncheck": json.dumps(
        {"format": "attncheck-dump", "version": 1, "op": "prefill"})})
    meta, _ = attncheck.load(path)
    assert meta["scale"] == "default" and meta["causal"] == "none" and meta["empty_row"] == "zero_neginf"


# --- every validation error names its argument --------------------------------

def _err(tmp_path, call, **override):
    merged = dict(call)
    for key, value in override.items():
        if value is _DROP:
            merged.pop(key, None)
        else:
            merged[key] = value
    with pytest.raises(attncheck.DumpError) as e:
        attncheck.dump(tmp_path / "bad.safetensors", **merged)
    assert not (tmp_path / "bad.safetensors").exists()
    return e.value


_DROP = object()


@pytest.mark.parametrize("key,value", [
    ("op", "attention"), ("op", None), ("causal", "causal"), ("causal", True), ("causal", "br"),
    ("layout", "THD"), ("kv_layout", "NDH"), ("lse_base", 2), ("lse_base", "10"),
    ("lse_layout", "TT"), ("empty_row", "zero"), ("combine_empty", "none"),
    ("scale", "1/sqrt(d)"), ("scale", True), ("scale", float("nan")), ("scale", math.inf),
    ("scale", [1.0]), ("library", 3), ("library_version", None), ("note", b"x"),
])
def test_metadata_value_errors(tmp_path, rng, key, value):
    e = _err(tmp_path, prefill_contiguous(rng), **{key: value})
    assert e.argument == key
    assert key in str(e)


@pytest.mark.parametrize("builder,override,argument,words", [
    # missing tensors
    (prefill_contiguous, {"q": _DROP}, "q", "missing"),
    (prefill_contiguous, {"out": _DROP}, "out", "missing"),
    (prefill_contiguous, {"v": _DROP}, "v", "missing"),
    (prefill_contiguous, {"cu_seqlens_k": _DROP}, "cu_seqlens_k", "2 sequences"),
    (prefill_contiguous, {"cu_seqlens_q": _DROP}, "cu_seqlens_q", "2 sequences"),
    (prefill_paged, {"seqlens_k": _DROP}, "seqlens_k", "missing"),
    (decode, {"block_table": _DROP}, "block_table", "missing"),
    (combine, {"lse_part": _DROP}, "lse_part", "missing"),
    (store, {"k_cache_out": _DROP}, "k_cache_out", "missing"),
    (store, {"slot_mapping": _DROP}, "slot_mapping", "missing"),
    # tensors that do not belong to the op or mix contiguous and paged keys
    (combine, {"q": np.zeros((1, 1, 8), np.float16)}, "q", "not a tensor of op combine"),
    (decode, {"k": np.zeros((1, 1, 8), np.float16)}, "k", "not a tensor of op decode"),
    (prefill_paged, {"k": np.zeros((9, 2, 8), np.float16)}, "k", "paged"),
    (prefill_contiguous, {"num_splits": 2}, "num_splits", "not a tensor of op prefill"),
    (store, {"out": np.zeros((1, 8), np.float16)}, "out", "not a tensor of op store"),
    # dtypes
    (prefill_contiguous, {"q": np.zeros((5, 4, 8), np.float32)}, "q", "dtype F32"),
    (prefill_contiguous, {"q": np.zeros((5, 4, 8), np.uint16)}, "q", "dtype U16"),
    (prefill_contiguous, {"k": np.zeros((7, 2, 8), np.float32)}, "k", "dtype F32"),
    (prefill_contiguous, {"out": np.zeros((5, 4, 8), np.float64)}, "out", "dtype F64"),
    (prefill_contiguous, {"cu_seqlens_q": np.array([0, 2, 5], np.float32)}, "cu_seqlens_q", "dtype F32"),
    (prefill_contiguous, {"lse": np.zeros((5, 4), np.float16)}, "lse", "dtype F16"),
    (prefill_contiguous, {"mask": np.zeros((1, 18), np.int32)}, "mask", "dtype I32"),
    (prefill_contiguous, {"q": np.zeros((5, 4, 8), np.complex64)}, "q", "cannot be stored"),
    (prefill_contiguous, {"q": "not an array"}, "q", "cannot be stored"),
    (prefill_paged, {"block_table": np.zeros((2, 3), np.float32)}, "block_table", "dtype F32"),
    (combine, {"o_part": np.zeros((6, 3, 8), np.float16)}, "o_part", "dtype F16"),
    (combine, {"out": np.zeros((6, 8), np.int32)}, "out", "dtype I32"),
    (store, {"slot_mapping": np.zeros(3, np.uint8)}, "slot_mapping", "dtype U8"),
    (store, {"k_cache_out": np.zeros((2, 4, 2, 8), np.float32)}, "k_cache_out", "dtype F32"),
    (decode, {"num_splits": np.array(3, np.int64)}, "num_splits", "dtype I64"),
    # shapes: rank, then dimension index
    (prefill_contiguous, {"q": np.zeros((5, 32), np.float16)}, "q", "2 dimensions"),
    (prefill_contiguous, {"k": np.zeros((7, 2, 16), np.float16)}, "k", "dimension 2 is 16"),
    (prefill_contiguous, {"v": np.zeros((6, 2, 8), np.float16)}, "v", "dimension 0 is 6"),
    (prefill_contiguous, {"k": np.zeros((7, 3, 8), np.float16), "v": np.zeros((7, 3, 8), np.float16)},
     "k", "does not divide"),
    (prefill_contiguous, {"out": np.zeros((5, 4, 4), np.float16)}, "out", "dimension 2 is 4"),
    (prefill_contiguous, {"lse": np.zeros((4, 5), np.float32)}, "lse", "dimension 0 is 4"),
    (prefill_contiguous, {"mask": np.zeros((1, 17), bool)}, "mask", "dimension 1 is 17"),
    (prefill_contiguous, {"mask": np.zeros((2, 18), bool)}, "mask", "dimension 0 is 2"),
    (prefill_contiguous, {"mask": np.full((1, 18), 2, np.uint8)}, "mask", "0 or 1"),
    (prefill_contiguous, {"cu_seqlens_q": np.array([0, 2, 4], np.int32)}, "cu_seqlens_q", "last entry"),
    (prefill_contiguous, {"cu_seqlens_q": np.array([1, 2, 5], np.int32)}, "cu_seqlens_q", "entry 0"),
    (prefill_contiguous, {"cu_seqlens_q": np.array([0, 3, 2, 5], np.int32)}, "cu_seqlens_q",
     "dimension 0 is 4"),
    (prefill_contiguous, {"cu_seqlens_k": np.array([0, 5, 3, 7], np.int32),
                          "cu_seqlens_q": np.array([0, 1, 2, 5], np.int32)}, "cu_seqlens_k",
     "entry 2 (3) is below entry 1 (5)"),
    (prefill_contiguous, {"cu_seqlens_k": np.array([[0, 3, 7]], np.int32)}, "cu_seqlens_k", "shape"),
    (prefill_paged, {"k_cache": np.zeros((6, 4, 2, 16), np.float16)}, "k_cache", "dimension 3 is 16"),
    (prefill_paged, {"v_cache": np.zeros((6, 4, 1, 8), np.float16)}, "v_cache", "dimension 2 is 1"),
    (prefill_paged, {"k_cache": np.zeros((6, 4, 3, 8), np.float16),
                     "v_cache": np.zeros((6, 4, 3, 8), np.float16)}, "k_cache", "does not divide"),
    (prefill_paged, {"seqlens_k": np.array([6, 9, 1], np.int32)}, "seqlens_k", "dimension 0 is 3"),
    (prefill_paged, {"seqlens_k": np.array([6, -1], np.int32)}, "seqlens_k", "entry 1 is -1"),
    (prefill_paged, {"block_table": np.zeros(3, np.int32)}, "block_table", "1 dimensions"),
    (decode, {"cu_seqlens_q": np.array([0, 0, 3], np.int32)}, "cu_seqlens_q", "sequence 0 has 0"),
    (decode, {"q": np.zeros((10, 4, 8), np.float16), "out": np.zeros((10, 4, 8), np.float16),
              "lse": np.zeros((10, 4), np.float32), "cu_seqlens_q": np.array([0, 1, 10], np.int32)},
     "cu_seqlens_q", "sequence 1 has 9"),
    (decode, {"num_splits": -1}, "num_splits", "must be in 0"),
    (decode, {"num_splits": np.array(-2, np.int32)}, "num_splits", "is -2, must be >= 0"),
    (decode, {"num_splits": True}, "num_splits", "integer"),
    (decode, {"num_splits": np.array([3, 1], np.int32)}, "num_splits", "expected a scalar"),
    (combine, {"lse_part": np.zeros((6, 2), np.float32)}, "lse_part", "dimension 1 is 2"),
    (combine, {"out": np.zeros((6, 4), np.float16)}, "out", "dimension 1 is 4"),
    (combine, {"lse": np.zeros((5,), np.float32)}, "lse", "dimension 0 is 5"),
    (combine, {"o_part": np.zeros((6, 0, 8), np.float32), "lse_part": np.zeros((6, 0), np.float32)},
     "o_part", "S >= 1"),
    (store, {"v_new": np.zeros((3, 2, 4), np.float16)}, "v_cache", "dimension 3 is 8"),  # D_v = 4 from v_new: the cache disagrees
    (store, {"slot_mapping": np.zeros(4, np.int32)}, "slot_mapping", "dimension 0 is 4"),
    (store, {"k_cache": np.zeros((2, 4, 1, 8), np.float16)}, "k_cache", "dimension 2 is 1"),
    (store, {"v_cache_out": np.zeros((3, 4, 2, 8), np.float16)}, "v_cache_out", "dimension 0 is 3"),
    (store, {"layout": "HND"}, "layout", "NHD"),
])
def test_tensor_errors(tmp_path, rng, builder, override, argument, words):
    e = _err(tmp_path, builder(rng), **override)
    assert e.argument == argument, str(e)
    assert words in str(e), str(e)
    assert str(e).startswith(argument + ":")


def test_mixed_data_dtypes_rejected(tmp_path, rng):
    call = prefill_contiguous(rng)
    call["k"] = attncheck.bf16_from_float(call["k"])
    assert _err(tmp_path, call).argument == "k"


def test_writer_argument_checked(tmp_path, rng):
    assert _err(tmp_path, prefill_contiguous(rng), writer="pickle").argument == "writer"


# --- load refuses files that break the format ------------------------------------

def _write_meta(path, call, meta_obj):
    tensors = {}
    for n, v in call.items():
        if n == "op":
            continue
        arr = np.asarray(v)
        tensors[n] = (_safetensors.dtype_name(arr), arr)
    _safetensors.write_file(path, tensors, {"attncheck": json.dumps(meta_obj)})


@pytest.mark.parametrize("change,argument", [
    ({"colour": "red"}, "colour"),
    ({"format": "other"}, "format"),
    ({"version": 2}, "version"),
    ({"version": True}, "version"),
    ({"causal": "diagonal"}, "causal"),
    ({"scale": "none"}, "scale"),
    ({"mask": "bool"}, "mask"),
    ({"out_dtype": "float32"}, "out_dtype"),
    ({"out_dtype": "float64"}, "out_dtype"),
    ({"op": "decode"}, "q"),
])
def test_load_rejects(tmp_path, rng, change, argument):
    call = prefill_contiguous(rng)
    meta = {"format": "attncheck-dump", "version": 1, "op": "prefill"}
    meta.update(change)
    path = tmp_path / "bad.safetensors"
    _write_meta(path, call, meta)
    with pytest.raises(attncheck.DumpError) as e:
        attncheck.load(path)
    assert e.value.argument in (argument, "k", "cu_seqlens_k"), str(e.value)


def test_load_combine_out_dtype(tmp_path, rng):
    call = combine(rng)
    call["out"] = call["out"].astype(np.float32)
    base = {"format": "attncheck-dump", "version": 1, "op": "combine"}
    for value in ("same", "float32"):  # an F32 combine out reads either way (the C writer says "same")
        _write_meta(tmp_path / "c.safetensors", call, dict(base, out_dtype=value))
        assert attncheck.load(tmp_path / "c.safetensors")[0]["out_dtype"] == value
    _write_meta(tmp_path / "c.safetensors", call, dict(base, out_dtype="float64"))
    with pytest.raises(attncheck.DumpError) as e:
        attncheck.load(tmp_path / "c.safetensors")
    assert e.value.argument == "out_dtype"


def test_load_without_attncheck_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    _safetensors.write_file(path, {"x": ("F32", np.zeros(2, np.float32))}, {"other": "1"})
    with pytest.raises(attncheck.DumpError) as e:
        attncheck.load(path)
    assert e.value.argument == "attncheck"
    with pytest.raises(attncheck.DumpError):
        attncheck.load(path, bf16="float16")


# ---- windows, softcap, ALiBi, sinks ----------------------------------------------------------

def test_features_round_trip(tmp_path, rng):
    call = dict(prefill_contiguous(rng), causal="BR", window_left=3, window_right=0, softcap=30.0,
                alibi_slopes=[0.5, 0.25, 0.125, 0.0625], sinks=np.array([-np.inf, 0, 1.5, -2], np.float32))
    written = attncheck.dump(tmp_path / "f.safetensors", **call)
    assert (written["window_left"], written["window_right"], written["softcap"]) == (3, 0, 30.0)
    meta, t = attncheck.load(tmp_path / "f.safetensors")
    assert meta == written
    assert t["alibi_slopes"].dtype == np.float32 and t["alibi_slopes"].tolist() == [0.5, 0.25, 0.125, 0.0625]
    assert t["sinks"][0] == -np.inf and t["sinks"][1:].tolist() == [0, 1.5, -2]
    raw = raw_metadata(tmp_path / "f.safetensors")
    assert raw["window_left"] == 3 and raw["softcap"] == 30.0


def test_features_off_write_nothing(tmp_path, rng):
    # a call without features is the same metadata as before them
    attncheck.dump(tmp_path / "f.safetensors", **prefill_contiguous(rng))
    raw = raw_metadata(tmp_path / "f.safetensors")
    assert not set(raw) & {"window_left", "window_right", "softcap"}


@pytest.mark.parametrize("override,argument,words", [
    (dict(window_left=-2), "window_left", "integer >= -1"),
    (dict(window_right=1.5), "window_right", "integer >= -1"),
    (dict(window_left="3"), "window_left", "must be a number"),
    (dict(softcap=-1.0), "softcap", ">= 0"),
    (dict(softcap=math.nan), "softcap", "finite"),
    (dict(alibi_slopes=np.ones(3, np.float32)), "alibi_slopes", "[Hq]"),
    (dict(alibi_slopes=[1.0, math.inf, 0, 0]), "alibi_slopes", "must be finite"),
    (dict(alibi_slopes=[0.1, 0, 0, 0]), "alibi_slopes", "not a float32 value"),
    (dict(alibi_slopes=np.ones(4, np.float16)), "alibi_slopes", "F16"),
    (dict(sinks=np.array([0, np.nan, 0, 0], np.float32)), "sinks", "finite or -inf"),
    (dict(sinks=np.array([np.inf, 0, 0, 0], np.float32)), "sinks", "finite or -inf"),
])
def test_feature_errors(tmp_path, rng, override, argument, words):
    e = _err(tmp_path, prefill_contiguous(rng), **override)
    assert e.argument == argument and words in str(e), str(e)


def test_features_refused_on_combine_and_store(tmp_path, rng):
    assert _err(tmp_path, combine(rng), softcap=2.0).argument == "softcap"
    assert _err(tmp_path, store(rng), window_left=4).argument == "window_left"
    assert _err(tmp_path, combine(rng), sinks=np.zeros(4, np.float32)).argument == "sinks"
