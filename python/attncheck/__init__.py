"""attncheck's Python side: write attention calls as dump files that
`attncheck verify` checks against the exact oracle.

    attncheck.dump(path, op="prefill", q=q, k=k, v=v, cu_seqlens_q=cu, cu_seqlens_k=cu,
                   out=out, causal="BR")            # one call
    with attncheck.capture("dumps/") as cap:        # every call of a forward pass
        model(x)
    python -m attncheck verify dumps/

Only numpy is required; torch, safetensors, flash_attn and flashinfer are
used when present and never imported by `import attncheck`.
"""

from ._arrays import BF16, DumpError, bf16_from_bits, bf16_from_float, bf16_to_float
from ._capture import capture
from ._dump import dump, load, tensor_dtypes

__version__ = "0.1.0"

__all__ = ["dump", "load", "tensor_dtypes", "capture", "BF16", "DumpError",
           "bf16_from_bits", "bf16_from_float", "bf16_to_float", "__version__"]
