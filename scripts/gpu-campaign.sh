#!/usr/bin/env bash
# A GPU campaign over every GPU of one host (docs/SCALING.md): the layout walk
# with its workers spread over the GPUs (worker i on GPU i mod N: the same
# inputs whatever N), and, with --properties, the property laws at scale in
# rounds, round r of GPU g with seed BASE + r*N + g, until the deadline. One
# corpus (the walk's seeds), one findings folder (OUT/findings: the walk's
# case files, and the log of any failing property round). Per-GPU and total
# throughput print at the end.
#   scripts/gpu-campaign.sh [--seconds S] [--gpus N] [--jobs J] [--seed K]
#                           [--properties SCALE] [--out DIR] [--bin DIR] [--trace PREFIX]
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=300 gpus= jobs= seed=1 props= out=${OUT:-campaign-out} bin= trace=
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --gpus) gpus=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --properties) props=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --trace) trace=$2; shift 2 ;;
    *) echo "gpu-campaign: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$bin" ] || for b in build-gpu build; do [ -x "$b/tools/attncheck" ] && { bin=$b; break; }; done
[ -x "$bin/tools/attncheck" ] || { echo "gpu-campaign: no attncheck under build-gpu/ or build/ (--bin)" >&2; exit 2; }
[ -n "$gpus" ] || gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[ "${gpus:-0}" -ge 1 ] || { echo "gpu-campaign: no GPU" >&2; exit 77; }
[ -n "$jobs" ] || jobs=$(nproc)
mkdir -p "$out/findings"
echo "gpu-campaign: $gpus GPU(s), $jobs walk workers, ${seconds} s, seed $seed${props:+, properties at scale $props}, out $out"
pids=()
if [ -n "$props" ]; then
  for ((g = 0; g < gpus; g++)); do
    (
      # GPU g: the g-th entry of the host's list, else index g (as common/ac_devices.h)
      IFS=, read -ra visible <<<"${CUDA_VISIBLE_DEVICES:-}"
      export CUDA_VISIBLE_DEVICES=${visible[$g]:-$g}
      end=$((SECONDS + seconds)) r=0
      while [ $SECONDS -lt $end ]; do
        s=$((seed + r * gpus + g))
        log="$out/properties-gpu$g-seed$s.log"
        timeout $((end - SECONDS + 5)) "$bin/properties/property_gpu" --backend gpu --scale "$props" --seed "$s" >"$log" 2>&1
        rc=$?
        if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then cp "$log" "$out/findings/"; echo "gpu-campaign: GPU $g property round seed $s failed (rc $rc)"; fi
        echo "$g $s $rc" >>"$out/properties-rounds.txt"
        r=$((r + 1))
      done
    ) &
    pids+=($!)
  done
fi
"$bin/tools/attncheck" fuzz layout --walk --backend gpu --gpus "$gpus" --jobs "$jobs" --seconds "$seconds" --seed "$seed" \
  --out "$out" ${trace:+--trace "$trace"} >"$out/walk.log" 2>&1
walk_rc=$?
for p in "${pids[@]}"; do wait "$p"; done
sed -n '/summary/,$p' "$out/walk.log"
if [ -n "$props" ]; then
  awk '{n[$1]++; if ($3 != 0 && $3 != 124) f[$1]++} END {for (g in n) printf "  properties    GPU%s: %d rounds, %d failed\n", g, n[g], f[g]+0}' \
    "$out/properties-rounds.txt" | sort
fi
exit $walk_rc
