"""Turning what a caller hands us (numpy arrays, torch tensors, bf16 bit
patterns) into (safetensors dtype, numpy array) pairs, without importing torch
unless a torch tensor is actually passed."""

import sys

import numpy as np

from ._safetensors import dtype_name


class DumpError(ValueError):
    """A dump argument or a dump file that breaks the format. `argument` names
    the argument, tensor or metadata key at fault."""

    def __init__(self, argument, message):
        self.argument = argument
        super().__init__("%s: %s" % (argument, message))


class BF16:
    """bf16 values held as their uint16 bit patterns (numpy has no bf16 dtype).
    Build one with bf16_from_bits or bf16_from_float."""

    __slots__ = ("bits",)

    def __init__(self, bits):
        bits = np.asarray(bits)
        if bits.dtype != np.uint16:
            raise TypeError("BF16 holds uint16 bit patterns, got %s" % bits.dtype)
        self.bits = bits

    @property
    def shape(self):
        return self.bits.shape

    @property
    def ndim(self):
        return self.bits.ndim

    def to_float32(self):
        return bf16_to_float(self.bits)

    def __repr__(self):
        return "BF16(shape=%s)" % (self.bits.shape,)


def bf16_from_bits(bits):
    """Tag a uint16 array (or anything np.asarray makes one of, with int
    values 0..65535) as bf16 bit patterns."""
    arr = np.asarray(bits)
    if arr.dtype != np.uint16:
        if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() > 0xFFFF)):
            raise TypeError("bf16_from_bits wants integers in 0..65535, got %s" % arr.dtype)
        arr = arr.astype(np.uint16)
    return BF16(arr)


def bf16_from_float(values):
    """Round float32 values to bf16 (nearest, ties to even; NaN stays NaN).
    float64 input is rounded to float32 first."""
    f32 = np.asarray(values, dtype=np.float32, order="C")
    u = f32.view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    quiet_nan = ((u >> 16) | 0x40).astype(np.uint16)
    return BF16(np.where(np.isnan(f32), quiet_nan, rounded))


def bf16_to_float(bits):
    """The exact float32 values of bf16 bit patterns."""
    bits = np.asarray(bits, dtype=np.uint16, order="C")
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _is_torch_tensor(x):
    mod = type(x).__module__ or ""
    return (mod == "torch" or mod.startswith("torch.")) and hasattr(x, "detach")


def to_array(argument, x):
    """(safetensors dtype, contiguous numpy array) of one argument."""
    if isinstance(x, BF16):
        return "BF16", np.asarray(x.bits, order="C")
    if _is_torch_tensor(x):
        torch = sys.modules["torch"]
        t = x.detach()
        if getattr(t, "is_sparse", False) or getattr(t, "layout", None) not in (None, torch.strided):
            raise DumpError(argument, "a sparse or non-strided torch tensor cannot be dumped")
        t = t.cpu().contiguous()
        if t.dtype == torch.bfloat16:
            return "BF16", t.view(torch.int16).numpy().view(np.uint16)
        fp8 = {getattr(torch, "float8_e4m3fn", None): "F8_E4M3", getattr(torch, "float8_e5m2", None): "F8_E5M2"}
        if t.dtype in fp8 and t.dtype is not None:  # FP8 codes, bit for bit
            return fp8[t.dtype], t.view(torch.uint8).numpy()
        try:
            arr = t.numpy()
        except (TypeError, RuntimeError) as e:
            raise DumpError(argument, "torch dtype %s has no numpy equivalent (%s)" % (t.dtype, e)) from None
        name = dtype_name(arr)
        if name is None:
            raise DumpError(argument, "torch dtype %s cannot be stored" % t.dtype)
        return name, arr
    try:
        arr = np.asarray(x)
    except Exception as e:  # an object numpy cannot convert: say which argument
        raise DumpError(argument, "not an array (%s: %s)" % (type(x).__name__, e)) from None
    if arr.dtype.name == "bfloat16":  # ml_dtypes' bfloat16 (jax and friends)
        return "BF16", np.asarray(arr.view(np.uint16), order="C")
    name = dtype_name(arr)
    if name is None:
        raise DumpError(argument, "dtype %s cannot be stored (float16, bf16 via "
                        "attncheck.bf16_from_bits, float32, int32, int64, bool, uint8)" % arr.dtype)
    return name, np.asarray(arr, order="C")
