"""attncheck.capture: record the attention calls of one forward pass as dump
files, by wrapping the library functions for the duration of a `with` block.

What is wrapped (each only where importable, or where a module object is
handed in, which is how the tests drive it without torch):
- torch.nn.functional.scaled_dot_product_attention, and every other module
  attribute that refers to the same function (`from torch.nn.functional
  import scaled_dot_product_attention` binds a second name);
- flash_attn.flash_attn_varlen_func and flash_attn.flash_attn_with_kvcache,
  likewise with their other references;
- FlashInfer's BatchPrefillWithPagedKVCacheWrapper and
  BatchDecodeWithPagedKVCacheWrapper (plan and run, on the classes) and
  merge_state / merge_states.
Everything is restored on exit, also when the block raises. A call that
cannot be recorded (float32 data, dropout, rotary embedding inside the call,
a full byte budget ...) runs normally and is listed in the summary with the
reason; the model's forward pass is never changed.
"""

import functools
import importlib
import inspect
import os
import re
import sys
import threading
import types

import numpy as np

from ._arrays import BF16, DumpError, bf16_to_float, to_array
from ._dump import MAX_QUERIES_DECODE, dump

# Skipped calls listed one by one in the summary; the rest are counted by reason.
_SUMMARY_SKIPS = 20
_FILE_RE = re.compile(r"^(\d{4,})-[a-z]+\.safetensors$")


class _Skip(Exception):
    """A call the dump format cannot describe: recorded as skipped."""


# ---------------------------------------------------------------------------
# Tensor helpers that work on torch tensors and numpy arrays alike, so that
# slicing and reshaping happen on the device before anything is copied.

_TORCH_DTYPES = {"torch.float16": "F16", "torch.bfloat16": "BF16", "torch.float32": "F32",
                 "torch.float64": "F64", "torch.int32": "I32", "torch.int64": "I64",
                 "torch.bool": "BOOL", "torch.uint8": "U8", "torch.int16": "I16",
                 "torch.int8": "I8"}


def _is_torch(x):
    mod = type(x).__module__ or ""
    return mod == "torch" or mod.startswith("torch.")


def _dtype(x):
    """safetensors dtype name of a tensor or array, without copying it."""
    if isinstance(x, BF16):
        return "BF16"
    if _is_torch(x):
        return _TORCH_DTYPES.get(str(x.dtype), str(x.dtype))
    from ._safetensors import dtype_name
    arr = np.asarray(x)
    if arr.dtype.name == "bfloat16":
        return "BF16"
    return dtype_name(arr) or str(arr.dtype)


def _shape(x):
    return tuple(int(d) for d in x.shape)


def _nbytes(x):
    if isinstance(x, BF16):
        return x.bits.nbytes
    if _is_torch(x):
        return x.numel() * x.element_size()
    return np.asarray(x).nbytes


def _permute(x, axes):
    return x.permute(*axes) if _is_torch(x) else np.transpose(x, axes)


def _reshape(x, shape):
    return x.reshape(*shape) if _is_torch(x) else np.reshape(x, shape)


def _expand(x, shape):
    if _is_torch(x):
        return x.reshape((1,) * (len(shape) - x.dim()) + tuple(x.shape)).expand(*shape)
    return np.broadcast_to(x, shape)


def _take0(x, index):
    """x[index] along dimension 0 (index: int64 numpy array)."""
    if _is_torch(x):
        torch = sys.modules["torch"]
        return x.index_select(0, torch.as_tensor(index, dtype=torch.long, device=x.device))
    return np.asarray(x)[index]


def _host_ints(name, x):
    """A small index tensor as an int64 numpy array."""
    dt, arr = to_array(name, x)
    if dt not in ("I32", "I64", "U8", "I16", "I8"):
        raise _Skip("%s has dtype %s, expected an integer tensor" % (name, dt))
    return arr.astype(np.int64)


def _float32(name, x):
    """A float tensor as float32 numpy (bf16 and fp16 widen exactly)."""
    dt, arr = to_array(name, x)
    if dt == "BF16":
        return bf16_to_float(arr)
    if dt in ("F16", "F32"):
        return arr.astype(np.float32)
    raise _Skip("%s has dtype %s, expected float16, bf16 or float32" % (name, dt))


def _is_default(value, default):
    if value is default:
        return True
    try:
        return bool(value == default)
    except Exception:
        return False


def _root_version(module):
    root = sys.modules.get(module.__name__.partition(".")[0])
    return str(getattr(root, "__version__", "") or getattr(module, "__version__", ""))


def _bind(func, fallback, args, kwargs):
    """The call's arguments by name, defaults filled in."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature (SDPA)
        sig = inspect.signature(fallback)
    if all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values()):
        # A decorator's (*args, **kwargs) hides the names: use the documented ones.
        sig = inspect.signature(fallback)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as e:
        raise _Skip("arguments do not match the known signature: %s" % e) from None
    bound.apply_defaults()
    return sig, bound.arguments


def _reject_extras(sig, arguments, handled, what):
    """Any argument we do not translate must still have its default value."""
    for name, param in sig.parameters.items():
        if name in handled or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        value = arguments.get(name, param.default)
        if param.default is inspect.Parameter.empty or value is None:
            continue
        if not _is_default(value, param.default):
            raise _Skip("%s: argument %s=%r is not part of the contract" % (what, name, value))
    for name in ("args", "kwargs"):
        extra = arguments.get(name)
        if extra:
            raise _Skip("%s: extra arguments %r are not understood" % (what, extra))


# ---------------------------------------------------------------------------
# Documented signatures, used where the function has none to inspect.

def _sdpa_signature(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                    scale=None, enable_gqa=False):
    pass


def _varlen_signature(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                      dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1),
                      softcap=0.0, alibi_slopes=None, deterministic=False,
                      return_attn_probs=False, block_table=None):
    pass


def _kvcache_signature(q, k_cache, v_cache, k=None, v=None, rotary_cos=None, rotary_sin=None,
                       cache_seqlens=None, cache_batch_idx=None, cache_leftpad=None,
                       block_table=None, softmax_scale=None, causal=False,
                       window_size=(-1, -1), softcap=0.0, rotary_interleaved=True,
                       alibi_slopes=None, num_splits=0, return_softmax_lse=False):
    pass


def _window_off(window):
    if window is None:
        return True
    try:
        return all(int(w) < 0 for w in window)
    except TypeError:
        return int(window) < 0


# ---------------------------------------------------------------------------
# Paged caches: keep only the blocks the call reads, renumbered, so a dump of
# a serving engine's step holds the sequences in it, not the whole pool.

def _paged(k_cache, v_cache, block_table, seqlens_k, block_size, kv_layout, compact):
    """(k_cache, v_cache, block_table int32) with the pool cut to the blocks
    that the valid positions use. block_table, seqlens_k: int64 numpy."""
    num_blocks = int(k_cache.shape[0])
    batch, max_blocks = block_table.shape
    used_cols = (seqlens_k + block_size - 1) // block_size
    if np.any(used_cols > max_blocks):
        b = int(np.nonzero(used_cols > max_blocks)[0][0])
        raise _Skip("seqlens_k[%d] = %d exceeds the block table's %d blocks of %d"
                    % (b, seqlens_k[b], max_blocks, block_size))
    used = np.arange(max_blocks)[None, :] < used_cols[:, None]
    ids = block_table[used]
    if ids.size and (ids.min() < 0 or ids.max() >= num_blocks):
        raise _Skip("a used block_table entry is outside the pool of %d blocks" % num_blocks)
    if not compact:
        return k_cache, v_cache, block_table.astype(np.int32)
    keep = np.unique(ids)
    table = np.full((batch, max_blocks), -1, dtype=np.int32)
    table[used] = np.searchsorted(keep, ids).astype(np.int32)
    return _take0(k_cache, keep), _take0(v_cache, keep), table


# ---------------------------------------------------------------------------

class capture:
    """Record the attention calls made inside a `with` block:

        with attncheck.capture("dumps/") as cap:
            model(inputs)
        print(cap.summary())

    Each recorded call becomes `dumps/NNNN-<op>.safetensors`, NNNN being the
    call's number in the block (calls that were skipped leave a gap, and the
    summary says why). Recording stops at `max_calls` files or when the next
    file would take the total past `max_bytes`.

    sdpa, flash_attn, flashinfer: True wraps the library if importable, False
    leaves it alone, a module object wraps the functions found in it (that is
    how the tests use stand-ins). compact_cache=True keeps only the blocks of a
    paged cache that the call reads. strict=True raises instead of skipping.
    """

    def __init__(self, directory, *, max_bytes=1 << 30, max_calls=None, sdpa=True,
                 flash_attn=True, flashinfer=True, compact_cache=True, append=False,
                 strict=False):
        if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes < 0):
            raise ValueError("max_bytes: must be a non-negative integer or None, got %r" % (max_bytes,))
        if max_calls is not None and (not isinstance(max_calls, int) or max_calls < 0):
            raise ValueError("max_calls: must be a non-negative integer or None, got %r" % (max_calls,))
        self.directory = os.fspath(directory)
        self.max_bytes = max_bytes
        self.max_calls = max_calls
        self.compact_cache = compact_cache
        self.append = append
        self.strict = strict
        self._targets = {"sdpa": sdpa, "flash_attn": flash_attn, "flashinfer": flashinfer}
        self.records = []   # dicts: index, file, op, library, bytes, shapes
        self.skipped = []   # dicts: index, function, reason
        self.patched = []   # "module.attr" strings, for the summary
        self.bytes_written = 0
        self._undo = []
        self._plans = {}
        self._next = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._active = False

    # -- entering and leaving ------------------------------------------------

    def __enter__(self):
        if self._active:
            raise RuntimeError("capture: already active")
        os.makedirs(self.directory, exist_ok=True)
        existing = sorted(int(m.group(1)) for m in map(_FILE_RE.match, os.listdir(self.directory)) if m)
        if existing and not self.append:
            raise FileExistsError("capture: %s already holds dump files (NNNN-op.safetensors); "
                                  "use an empty folder or append=True" % self.directory)
        self._next = existing[-1] + 1 if existing else 0
        try:
            self._patch_all()
        except BaseException:
            self._restore()
            raise
        self._active = True
        return self

    def __exit__(self, exc_type, exc, tb):
        self._active = False
        self._restore()
        self._plans.clear()
        return False

    def _restore(self):
        problems = []
        while self._undo:
            owner, name, had, old = self._undo.pop()
            try:
                if had:
                    setattr(owner, name, old)
                else:
                    delattr(owner, name)
            except Exception as e:  # keep restoring the rest, then say so
                problems.append("%s.%s: %s" % (getattr(owner, "__name__", owner), name, e))
        if problems:
            raise RuntimeError("capture: could not restore " + "; ".join(problems))

    def _set(self, owner, name, new):
        had = name in vars(owner)
        old = vars(owner).get(name)
        setattr(owner, name, new)
        self._undo.append((owner, name, had, old))
        self.patched.append("%s.%s" % (getattr(owner, "__qualname__", None) or owner.__name__, name))

    def _patch_function(self, home, name, kind, library, version):
        """Wrap home.<name> and every module attribute bound to the same object."""
        original = getattr(home, name, None)
        if original is None:
            return
        wrapper = self._wrapper(original, kind, library, version)
        self._set(home, name, wrapper)
        for mod in list(sys.modules.values()):
            if not isinstance(mod, types.ModuleType) or mod is home:
                continue
            modname = getattr(mod, "__name__", "") or ""
            # torch._C holds the builtin itself; torch's own C++ side must keep it.
            if modname.startswith(("torch._C", "attncheck")):
                continue
            try:
                items = list(vars(mod).items())
            except TypeError:
                continue
            for attr, value in items:
                if value is original:
                    self._set(mod, attr, wrapper)

    def _patch_method(self, cls, name, kind, library, version):
        original = getattr(cls, name, None)
        if original is None:
            return
        self._set(cls, name, self._wrapper(original, kind, library, version))

    def _target(self, key, module):
        """The module to patch for target `key`: the one the user gave, the
        importable `module` when True was given, or None."""
        t = self._targets[key]
        if t is not True:
            return t
        try:
            return importlib.import_module(module)
        except ImportError:
            return None

    def _patch_all(self):
        t = self._target("sdpa", "torch.nn.functional")
        if t:
            self._patch_function(t, "scaled_dot_product_attention", "sdpa", "torch.sdpa",
                                 _root_version(t))
        t = self._target("flash_attn", "flash_attn")
        if t:
            version = _root_version(t)
            self._patch_function(t, "flash_attn_varlen_func", "fa_varlen", "flash_attn", version)
            self._patch_function(t, "flash_attn_with_kvcache", "fa_kvcache", "flash_attn", version)
        t = self._target("flashinfer", "flashinfer")
        if t:
            version = _root_version(t)
            for cls_name, kind in (("BatchPrefillWithPagedKVCacheWrapper", "fi_prefill"),
                                   ("BatchDecodeWithPagedKVCacheWrapper", "fi_decode")):
                cls = getattr(t, cls_name, None)
                if cls is None:
                    continue
                plan = vars(cls).get("plan")
                for alias in ("plan", "begin_forward"):
                    # begin_forward is plan under an older name: wrap both names.
                    if alias in vars(cls) and (alias == "plan" or vars(cls)[alias] is plan):
                        self._patch_method(cls, alias, "fi_plan", "flashinfer", version)
                self._patch_method(cls, "run", kind, "flashinfer", version)
            self._patch_function(t, "merge_state", "fi_merge", "flashinfer", version)
            self._patch_function(t, "merge_states", "fi_merges", "flashinfer", version)

    # -- the wrapper ---------------------------------------------------------

    def _passthrough(self):
        if not self._active or getattr(self._local, "busy", False):
            return True
        torch = sys.modules.get("torch")
        if torch is None:
            return False
        try:
            compiler = getattr(torch, "compiler", None)
            if compiler is not None and compiler.is_compiling():
                return True
            cuda = getattr(torch, "cuda", None)
            if cuda is not None and cuda.is_available() and cuda.is_current_stream_capturing():
                return True
        except Exception:
            pass
        return False

    def _wrapper(self, original, kind, library, version):
        cap = self

        def wrapper(*args, **kwargs):
            if cap._passthrough():
                return original(*args, **kwargs)
            cap._local.busy = True
            try:
                result = original(*args, **kwargs)
            finally:
                cap._local.busy = False
            if kind == "fi_plan":
                cap._remember_plan(original, args, kwargs)
            else:
                cap._record(kind, library, version, original, args, kwargs, result)
            return result

        try:
            functools.update_wrapper(wrapper, original)
        except (AttributeError, TypeError):
            pass
        wrapper.__attncheck_original__ = original
        return wrapper

    def _record(self, kind, library, version, original, args, kwargs, result):
        with self._lock:
            index = self._next
            self._next += 1
        name = getattr(original, "__name__", kind)
        try:
            if self.max_calls is not None and len(self.records) >= self.max_calls:
                raise _Skip("max_calls (%d) reached" % self.max_calls)
            self._local.busy = True  # conversions must not record themselves
            op, tensors, meta = getattr(self, "_from_" + kind)(original, args, kwargs, result)
            size = sum(_nbytes(x) for x in tensors.values())
            if self.max_bytes is not None and self.bytes_written + size > self.max_bytes:
                raise _Skip("max_bytes (%d) reached: this call needs %d more bytes"
                            % (self.max_bytes, size))
            path = os.path.join(self.directory, "%04d-%s.safetensors" % (index, op))
            meta.setdefault("library", library)
            meta.setdefault("library_version", version)
            dump(path, op=op, **tensors, **meta)
            with self._lock:
                self.bytes_written += os.path.getsize(path)
            self.records.append({"index": index, "file": path, "op": op, "library": library,
                                 "function": name, "bytes": os.path.getsize(path),
                                 "shapes": {n: _shape(x) for n, x in tensors.items()},
                                 "causal": meta.get("causal", "none")})
        except Exception as e:  # never break the forward pass over a recording
            if self.strict:
                raise
            reason = str(e) if isinstance(e, (_Skip, DumpError)) else (
                "could not record (%s: %s)" % (type(e).__name__, e))
            self.skipped.append({"index": index, "function": "%s.%s" % (library, name),
                                 "reason": reason})
        finally:
            self._local.busy = False

    # -- per-library translation: (op, tensors, metadata) or _Skip -------------

    def _from_sdpa(self, original, args, kwargs, result):
        _, a = _bind(original, _sdpa_signature, args, kwargs)
        q, k, v = a["query"], a["key"], a["value"]
        dt = _dtype(q)
        if dt not in ("F16", "BF16"):
            raise _Skip("dtype %s: the dump format holds float16 and bf16 calls" % dt)
        if _dtype(k) != dt or _dtype(v) != dt:
            raise _Skip("q, k, v have different dtypes")
        if a["dropout_p"] and float(a["dropout_p"]) > 0:
            raise _Skip("dropout_p = %g (random: not reproducible)" % float(a["dropout_p"]))
        qs, ks, vs = _shape(q), _shape(k), _shape(v)
        if len(qs) < 3 or len(ks) != len(qs) or len(vs) != len(qs):
            raise _Skip("shapes %s, %s, %s: expected [..., H, L, D] for each" % (qs, ks, vs))
        lead = qs[:-3]
        if ks[:-3] != lead or vs[:-3] != lead:
            raise _Skip("batch dimensions differ (broadcast q %s, k %s)" % (qs, ks))
        batch = int(np.prod(lead)) if lead else 1
        hq, lq, d = qs[-3:]
        hkv, lk, dk = ks[-3:]
        if dk != d or vs[-1] != d or vs[-3:-1] != (hkv, lk):
            raise _Skip("head dims differ (q %s, k %s, v %s): the format has one D" % (qs, ks, vs))
        if hkv != hq and (hkv < 1 or hq % hkv or not (a["enable_gqa"] or hkv == 1)):
            raise _Skip("Hq = %d and Hkv = %d without enable_gqa" % (hq, hkv))
        out = result
        if _shape(out) != qs:
            raise _Skip("output shape %s differs from q %s" % (_shape(out), qs))

        def varlen(x, heads, length):
            # [..., H, L, D] -> [B*L, H, D]: B sequences of equal length, packed.
            x = _reshape(x, (batch, heads, length, d))
            return _reshape(_permute(x, (0, 2, 1, 3)), (batch * length, heads, d))

        tensors = {"q": varlen(q, hq, lq), "k": varlen(k, hkv, lk), "v": varlen(v, hkv, lk),
                   "out": varlen(out, hq, lq),
                   "cu_seqlens_q": np.arange(batch + 1, dtype=np.int32) * lq,
                   "cu_seqlens_k": np.arange(batch + 1, dtype=np.int32) * lk}
        mask = a["attn_mask"]
        if mask is not None:
            mdt = _dtype(mask)
            if mdt not in ("BOOL", "F16", "BF16", "F32"):
                raise _Skip("attn_mask dtype %s" % mdt)
            ms = _shape(mask)
            per_head = len(ms) >= 3 and ms[-3] == hq and hq > 1
            hm = hq if per_head else 1
            if len(ms) >= 3 and ms[-3] not in (1, hq):
                raise _Skip("attn_mask shape %s does not broadcast to %d heads" % (ms, hq))
            if not per_head and len(ms) >= 3:
                mask = _reshape(mask, ms[:-3] + ms[-2:])  # drop the size-1 head dim
            try:
                mask = _expand(mask, lead + (lq, lk) if not per_head else lead + (hq, lq, lk))
            except (ValueError, RuntimeError) as e:
                raise _Skip("attn_mask shape %s does not broadcast to %s: %s" % (ms, qs[:-1] + (lk,), e))
            mask = _reshape(mask, (batch, hm, lq, lk))
            tensors["mask"] = _reshape(_permute(mask, (1, 0, 2, 3)), (hm, batch * lq * lk))
        meta = {"causal": "TL" if a["is_causal"] else "none",
                "scale": "default" if a["scale"] is None else float(a["scale"]),
                "note": "SDPA [B, H, L, D] call with B = %d, converted to varlen" % batch}
        return "prefill", tensors, meta

    def _from_fa_varlen(self, original, args, kwargs, result):
        sig, a = _bind(original, _varlen_signature, args, kwargs)
        handled = {"q", "k", "v", "cu_seqlens_q", "cu_seqlens_k", "max_seqlen_q",
                   "max_seqlen_k", "dropout_p", "softmax_scale", "causal", "window_size",
                   "softcap", "alibi_slopes", "deterministic", "return_attn_probs",
                   "block_table", "return_softmax_lse"}
        _reject_extras(sig, a, handled, "flash_attn_varlen_func")
        q, k, v = a["q"], a["k"], a["v"]
        hq = _shape(q)[1]
        out, lse = _split_result(result)
        tensors = {"q": q, "out": out}
        lq = np.diff(_host_ints("cu_seqlens_q", a["cu_seqlens_q"]))
        tensors["cu_seqlens_q"] = np.concatenate([[0], np.cumsum(lq)]).astype(np.int32)
        causal = "BR" if a["causal"] else "none"
        op = "prefill"
        if a.get("block_table") is not None:
            table = _host_ints("block_table", a["block_table"])
            lk = np.diff(_host_ints("cu_seqlens_k", a["cu_seqlens_k"]))
            kc, vc, table = _paged(k, v, table, lk, int(_shape(k)[1]), "NHD", self.compact_cache)
            tensors.update(k_cache=kc, v_cache=vc, block_table=table,
                           seqlens_k=lk.astype(np.int32))
            if causal == "BR" and lq.size and lq.min() >= 1 and lq.max() <= MAX_QUERIES_DECODE:
                op = "decode"
        else:
            tensors.update(k=k, v=v, cu_seqlens_k=a["cu_seqlens_k"])
        meta = {"causal": causal, "scale": _scale(a["softmax_scale"]), "empty_row": "zero_posinf"}
        self._flash_common(a, meta, tensors)
        if lse is not None:
            meta["lse_layout"] = _lse_layout(lse, hq, _shape(q)[0], "HT")
            tensors["lse"] = lse
        return op, tensors, meta

    def _from_fa_kvcache(self, original, args, kwargs, result):
        sig, a = _bind(original, _kvcache_signature, args, kwargs)
        handled = {"q", "k_cache", "v_cache", "k", "v", "cache_seqlens", "block_table",
                   "softmax_scale", "causal", "window_size", "softcap", "alibi_slopes",
                   "num_splits", "return_softmax_lse", "rotary_interleaved"}
        for name in ("rotary_cos", "cache_batch_idx", "cache_leftpad"):
            if a.get(name) is not None:
                raise _Skip("flash_attn_with_kvcache: %s is not part of the contract" % name)
        _reject_extras(sig, a, handled, "flash_attn_with_kvcache")
        q, kc, vc = a["q"], a["k_cache"], a["v_cache"]
        batch, lq, hq, d = _shape(q)
        new = 0 if a.get("k") is None else _shape(a["k"])[1]
        cache_seqlens = a.get("cache_seqlens")
        if a.get("block_table") is not None:
            table = _host_ints("block_table", a["block_table"])
            block_size = _shape(kc)[1]
        else:
            # A [B, S, Hkv, D] cache is a paged one of B blocks of size S.
            if _shape(kc)[0] < batch:
                raise _Skip("k_cache has %d rows for %d sequences" % (_shape(kc)[0], batch))
            table = np.arange(batch, dtype=np.int64)[:, None]
            block_size = _shape(kc)[1]
        if cache_seqlens is None:
            if a.get("block_table") is not None:
                raise _Skip("a paged flash_attn_with_kvcache call without cache_seqlens")
            lk = np.full(batch, block_size, dtype=np.int64)
        elif isinstance(cache_seqlens, int):
            lk = np.full(batch, cache_seqlens + new, dtype=np.int64)
        else:
            lk = _host_ints("cache_seqlens", cache_seqlens) + new
        kc, vc, table = _paged(kc, vc, table, lk, block_size, "NHD", self.compact_cache)
        out, lse = _split_result(result)
        causal = "BR" if a["causal"] else "none"
        op = "decode" if causal == "BR" and 1 <= lq <= MAX_QUERIES_DECODE else "prefill"
        tensors = {"q": _reshape(q, (batch * lq, hq, d)), "out": _reshape(out, (batch * lq, hq, d)),
                   "k_cache": kc, "v_cache": vc, "block_table": table,
                   "seqlens_k": lk.astype(np.int32),
                   "cu_seqlens_q": np.arange(batch + 1, dtype=np.int32) * lq}
        meta = {"causal": causal, "scale": _scale(a["softmax_scale"]), "empty_row": "zero_posinf"}
        self._flash_common(a, meta, tensors)
        if new:
            meta["note"] = "k, v (%d tokens) appended by the call: the cache is recorded after" % new
        if op == "decode" and a.get("num_splits"):
            meta_splits = int(a["num_splits"])
            if meta_splits > 0:
                tensors["num_splits"] = np.array(meta_splits, dtype=np.int32)
        if lse is not None:
            if _shape(lse) != (batch, hq, lq):
                raise _Skip("softmax_lse shape %s, expected %s" % (_shape(lse), (batch, hq, lq)))
            tensors["lse"] = _reshape(_permute(lse, (0, 2, 1)), (batch * lq, hq))
            meta["lse_layout"] = "TH"
        return op, tensors, meta

    @staticmethod
    def _flash_common(a, meta, tensors):
        """dropout refused; window_size, softcap and alibi_slopes recorded in the dump
        (docs/CONTRACT.md): flash-attn's window_size is the contract's (left, right),
        bottom-right aligned, -1 unbounded; its softcap caps scale * q.k as the
        contract's does. Its ALiBi is -slope * |i + Lk - Lq - j|, the contract's signed
        slope * (j - i - (Lk - Lq)) only where no visible key lies past the diagonal
        (causal, or a window whose right side is 0): another call is skipped, named."""
        if a.get("dropout_p") and float(a["dropout_p"]) > 0:
            raise _Skip("dropout_p = %g (random: not reproducible)" % float(a["dropout_p"]))
        window = a.get("window_size")
        if not _window_off(window):
            left, right = (int(w) for w in window)
            meta["window_left"], meta["window_right"] = max(left, -1), max(right, -1)
        if a.get("softcap"):
            meta["softcap"] = float(a["softcap"])
        slopes = a.get("alibi_slopes")
        if slopes is not None:
            if not (a["causal"] or meta.get("window_right", -1) == 0):
                raise _Skip("alibi_slopes without causal: flash-attn adds -slope * |i + Lk - Lq - j|, the "
                            "contract's ALiBi is signed (they differ past the diagonal)")
            s = _float32("alibi_slopes", slopes)
            if s.ndim == 2:  # [B, H]: one set of slopes per sequence
                if s.shape[0] and np.any(s != s[:1]):
                    raise _Skip("alibi_slopes [B, H] differ between sequences: the format has one per head")
                s = s[0] if s.shape[0] else s.reshape(-1)
            tensors["alibi_slopes"] = np.ascontiguousarray(s, dtype=np.float32)

    def _remember_plan(self, original, args, kwargs):
        try:
            sig = inspect.signature(original)
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
        except (TypeError, ValueError) as e:
            self.skipped.append({"index": None, "function": "flashinfer.plan",
                                 "reason": "plan arguments not understood: %s" % e})
            return
        arguments = dict(bound.arguments)
        wrapper_obj = arguments.pop("self", args[0] if args else None)
        plan = {}
        for key, value in arguments.items():
            # Index tensors may be reused buffers: keep a copy as planned.
            if key in ("qo_indptr", "paged_kv_indptr", "paged_kv_indices", "paged_kv_last_page_len",
                       "indptr", "indices", "last_page_len"):
                value = _host_ints(key, value) if value is not None else None
            plan[key] = value
        self._plans[id(wrapper_obj)] = (wrapper_obj, plan)

    def _fi_plan(self, wrapper_obj):
        entry = self._plans.get(id(wrapper_obj))
        if entry is None or entry[0] is not wrapper_obj:
            raise _Skip("plan() ran before the capture began: call plan() inside it")
        return entry[1]

    def _fi_paged(self, wrapper_obj, plan, indptr, indices, last_len, kv_cache, page_size):
        kv_layout = getattr(wrapper_obj, "_kv_layout", "NHD")
        if kv_layout not in ("NHD", "HND"):
            raise _Skip("kv_layout %r" % (kv_layout,))
        if isinstance(kv_cache, (tuple, list)):
            kc, vc = kv_cache
        else:
            s = _shape(kv_cache)
            if len(s) != 5 or s[1] != 2:
                raise _Skip("paged_kv_cache shape %s: expected [pages, 2, ...]" % (s,))
            kc, vc = kv_cache[:, 0], kv_cache[:, 1]
        block_size = _shape(kc)[1] if kv_layout == "NHD" else _shape(kc)[2]
        if page_size is not None and int(page_size) != block_size:
            raise _Skip("page_size %d in plan() but the cache holds pages of %d" % (int(page_size), block_size))
        batch = indptr.shape[0] - 1
        pages = np.diff(indptr)
        lk = np.where(pages > 0, (pages - 1) * block_size + last_len[:batch], 0)
        table = np.full((batch, max(int(pages.max()) if batch else 0, 1)), -1, dtype=np.int64)
        for b in range(batch):
            table[b, :pages[b]] = indices[indptr[b]:indptr[b + 1]]
        kc, vc, table = _paged(kc, vc, table, lk, block_size, kv_layout, self.compact_cache)
        return {"k_cache": kc, "v_cache": vc, "block_table": table,
                "seqlens_k": lk.astype(np.int32)}, kv_layout

    @staticmethod
    def _fi_checks(plan, run_args, meta):
        """Refuse what the format cannot say; record window_left (FlashInfer's window is
        the left side, aligned like its bottom-right causal flag, no right side of its
        own) and logits_soft_cap (c * tanh(scale q.k / c), the contract's softcap)."""
        if str(plan.get("pos_encoding_mode", "NONE")) != "NONE":
            raise _Skip("pos_encoding_mode %r applies RoPE or ALiBi inside the call" % plan["pos_encoding_mode"])
        if plan.get("logits_soft_cap"):
            meta["softcap"] = float(plan["logits_soft_cap"])
        for src in (plan, run_args):  # a run() argument overrides the plan's
            w = src.get("window_left")
            if w is not None and int(w) >= 0:
                meta["window_left"] = int(w)
        for name in ("k_scale", "v_scale", "q_scale"):
            if run_args.get(name) is not None:
                raise _Skip("%s given: fp8 caches are not part of the contract" % name)

    def _fi_run_args(self, original, args, kwargs):
        try:
            sig = inspect.signature(original)
            bound = sig.bind(*args, **kwargs)
        except (TypeError, ValueError) as e:
            raise _Skip("run arguments not understood: %s" % e) from None
        bound.apply_defaults()
        a = dict(bound.arguments)
        a.update(a.pop("kwargs", {}) or {})
        return a

    def _from_fi_prefill(self, original, args, kwargs, result):
        a = self._fi_run_args(original, args, kwargs)
        obj = args[0]
        plan = self._fi_plan(obj)
        features = {}
        self._fi_checks(plan, a, features)
        q = a["q"]
        paged, kv_layout = self._fi_paged(obj, plan, plan["paged_kv_indptr"], plan["paged_kv_indices"],
                                          plan["paged_kv_last_page_len"], a["paged_kv_cache"],
                                          plan.get("page_size"))
        out, lse = _split_result(result)
        causal = "BR" if plan.get("causal") else "none"
        tensors = dict(paged, q=q, out=out, cu_seqlens_q=plan["qo_indptr"].astype(np.int32))
        if plan.get("packed_custom_mask") is not None and plan.get("custom_mask") is None:
            raise _Skip("a bit-packed custom mask without custom_mask")
        if plan.get("custom_mask") is not None:
            mask = plan["custom_mask"]
            tensors["mask"] = _reshape(mask, (1, int(np.prod(_shape(mask)))))
        lq = np.diff(plan["qo_indptr"])
        op = ("decode" if causal == "BR" and "mask" not in tensors and lq.size and lq.min() >= 1
              and lq.max() <= MAX_QUERIES_DECODE else "prefill")
        meta = dict(features, causal=causal, scale=_scale(plan.get("sm_scale")), kv_layout=kv_layout, lse_base="2")
        if lse is not None:
            tensors["lse"] = lse
        return op, tensors, meta

    def _from_fi_decode(self, original, args, kwargs, result):
        a = self._fi_run_args(original, args, kwargs)
        obj = args[0]
        plan = self._fi_plan(obj)
        meta = {}
        self._fi_checks(plan, a, meta)
        q = a["q"]
        batch = _shape(q)[0]
        paged, kv_layout = self._fi_paged(obj, plan, plan["indptr"], plan["indices"],
                                          plan["last_page_len"], a["paged_kv_cache"],
                                          plan.get("page_size"))
        out, lse = _split_result(result)
        tensors = dict(paged, q=q, out=out, cu_seqlens_q=np.arange(batch + 1, dtype=np.int32))
        meta.update(causal="BR", scale=_scale(plan.get("sm_scale")), kv_layout=kv_layout, lse_base="2")
        if lse is not None:
            tensors["lse"] = lse
        return "decode", tensors, meta

    def _from_fi_merge(self, original, args, kwargs, result):
        def merge_state(v_a, s_a, v_b, s_b):
            pass
        _, a = _bind(original, merge_state, args, kwargs)
        va, vb = _float32("v_a", a["v_a"]), _float32("v_b", a["v_b"])
        sa, sb = _float32("s_a", a["s_a"]), _float32("s_b", a["s_b"])
        if va.ndim != 3 or va.shape != vb.shape or sa.shape != va.shape[:2] or sb.shape != sa.shape:
            raise _Skip("merge_state shapes %s %s %s %s" % (va.shape, sa.shape, vb.shape, sb.shape))
        seq, heads, d = va.shape
        out, lse = _split_result(result)
        tensors = {"o_part": np.stack([va, vb], axis=2).reshape(seq * heads, 2, d),
                   "lse_part": np.stack([sa, sb], axis=2).reshape(seq * heads, 2),
                   "out": _reshape(out, (seq * heads, d))}
        if lse is not None:
            tensors["lse"] = _reshape(lse, (seq * heads,))
        return "combine", tensors, {"lse_base": "2"}

    def _from_fi_merges(self, original, args, kwargs, result):
        def merge_states(v, s):
            pass
        _, a = _bind(original, merge_states, args, kwargs)
        v, s = _float32("v", a["v"]), _float32("s", a["s"])
        if v.ndim != 4 or s.shape != v.shape[:3]:
            raise _Skip("merge_states shapes %s %s" % (v.shape, s.shape))
        seq, states, heads, d = v.shape
        out, lse = _split_result(result)
        tensors = {"o_part": v.transpose(0, 2, 1, 3).reshape(seq * heads, states, d),
                   "lse_part": s.transpose(0, 2, 1).reshape(seq * heads, states),
                   "out": _reshape(out, (seq * heads, d))}
        if lse is not None:
            tensors["lse"] = _reshape(lse, (seq * heads,))
        return "combine", tensors, {"lse_base": "2"}

    # -- reporting -------------------------------------------------------------

    def summary(self):
        """What was captured, as text."""
        lines = ["attncheck capture: %d call%s recorded in %s (%.1f MiB), %d skipped"
                 % (len(self.records), "" if len(self.records) == 1 else "s", self.directory,
                    self.bytes_written / 2 ** 20, len(self.skipped))]
        for r in self.records:
            q = r["shapes"].get("q") or r["shapes"].get("o_part") or r["shapes"].get("k_new")
            lines.append("  %s  %s %s causal=%s %s" % (os.path.basename(r["file"]), r["library"],
                                                       r["op"], r["causal"],
                                                       "x".join(map(str, q)) if q else ""))
        for s in self.skipped[:_SUMMARY_SKIPS]:
            where = "%04d" % s["index"] if s["index"] is not None else "----"
            lines.append("  skipped %s %s: %s" % (where, s["function"], s["reason"]))
        if len(self.skipped) > _SUMMARY_SKIPS:
            counts = {}
            for s in self.skipped[_SUMMARY_SKIPS:]:
                counts[s["reason"]] = counts.get(s["reason"], 0) + 1
            lines.append("  ... %d more skipped:" % (len(self.skipped) - _SUMMARY_SKIPS))
            lines.extend("    %d x %s" % (n, reason) for reason, n in sorted(counts.items()))
        if not self.patched:
            lines.append("  (no attention library was found to wrap)")
        return "\n".join(lines)


def _scale(value):
    return "default" if value is None else float(value)


def _split_result(result):
    """(out, lse or None) of a call's return value: a tensor, or a tuple
    whose second entry, when it is a float32 tensor, is the LSE."""
    if isinstance(result, (tuple, list)):
        out = result[0]
        lse = result[1] if len(result) > 1 else None
        if lse is not None and (not hasattr(lse, "shape") or _dtype(lse) != "F32"):
            lse = None
        return out, lse
    return result, None


def _lse_layout(lse, heads, total, prefer):
    s = _shape(lse)
    if s == (heads, total) and (prefer == "HT" or s != (total, heads)):
        return "HT"
    if s == (total, heads):
        return "TH"
    raise _Skip("lse shape %s is neither [Hq, total_q] nor [total_q, Hq]" % (s,))
