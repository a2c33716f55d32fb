#!/usr/bin/env bash
# The Python bridge on the GPU host: real PyTorch kernels under attncheck.
#   scripts/bridge-gpu.sh [--quick] [ADAPTER...]
# For each adapter (default: sdpa_flash sdpa_efficient sdpa_cudnn sdpa_math flex,
# all in python/attncheck/adapters.py): the default sweep of every family it has,
# the property laws, and a layout fuzz walk; then the misuse adapters, which must
# FAIL with the diagnosis naming their bug; then a summary table. The adapters run
# concurrently (one GPU, 16 cores): phase 1 the sweeps and laws, phase 2 the walks
# (--jobs 3 each), phase 3 the misuse demos.
#   --quick   a first smoke call: quick sweeps, 4 points per law, 20 s walks (at most about 5 min)
#   default   full sweeps, every law's grid, 120 s walks (at most about 8 min: phase 1 is cut at
#             240 s (BRIDGE_PHASE1_S overrides), the walks at 165 s, the misuse demos at 90 s;
#             a cut command shows rc=124)
# Needs the build folder build-gpu (scripts/gpu-round.sh build: tools/attncheck and
# properties/property_gpu), python3 with torch and numpy. Everything goes to $OUT
# (or ./bridge-results): summary.txt (also printed), bridge-logs.tgz (every log, the
# --json rows), bridge-failures.tgz (each failing case as a case file and each walk
# finding, with the command that replays it). One adapter's failure never stops the
# others. Exit 0 when every sweep, law and walk passed (unsupported cases aside) and
# every misuse demo failed with its diagnosis; 1 otherwise.
# On a host of several GPUs adapter i runs on GPU i mod N (CUDA_VISIBLE_DEVICES).
# BRIDGE_MISUSE=0 skips phase 3 (the demos ran in an earlier call).
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
adapters=()
for a in "$@"; do
  case "$a" in
  --quick) quick=1 ;;
  -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) adapters+=("$a") ;;
  esac
done
[ ${#adapters[@]} -eq 0 ] && adapters=(sdpa_flash sdpa_efficient sdpa_cudnn sdpa_math flex)
B=${B:-build-gpu}
A=$PWD/$B/tools/attncheck
P=$PWD/$B/properties/property_gpu
dest=${OUT:-$PWD/bridge-results}
work=$(mktemp -d /tmp/bridge-gpu.XXXXXX)
mkdir -p "$dest" "$work/logs" "$work/failures"
summary="$dest/summary.txt"
: >"$summary"
pack() {
  tar czf "$dest/bridge-logs.tgz" -C "$work" logs 2>/dev/null
  tar czf "$dest/bridge-failures.tgz" -C "$work" failures 2>/dev/null
  # The compile caches come back too (a returned file holds 16 MiB at most): carried
  # as .gpu/compile-cache.tgz into a later call or session, flex starts compiled.
  if [ -d .gpu/inductor ] || [ -d .gpu/triton ]; then
    tar czf "$work/compile-cache.tgz" -C .gpu $(cd .gpu && ls -d inductor triton 2>/dev/null) 2>/dev/null
    if [ "$(stat -c %s "$work/compile-cache.tgz")" -le $((16 << 20)) ]; then cp "$work/compile-cache.tgz" "$dest/"
    else echo "compile cache: $(du -h "$work/compile-cache.tgz" | cut -f1), over the 16 MiB a returned file may hold: not returned" >>"$summary"; fi
  fi
}
trap pack EXIT
say() { echo "$*" | tee -a "$summary"; }

export ATTNCHECK_PYTHON=${ATTNCHECK_PYTHON:-python3}
# torch.compile of flex_attention takes tens of seconds on a new shape: a generous per-case limit.
export ATTNCHECK_BRIDGE_TIMEOUT=${ATTNCHECK_BRIDGE_TIMEOUT:-300}
export PYTHONPATH=$PWD/python${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1
# torch.compile's caches in the repository's ignored .gpu/ (they survive between calls on a warm
# host), primed from a cache an earlier run returned (.gpu/compile-cache.tgz, carried).
mkdir -p .gpu
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$PWD/.gpu/inductor}
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-$PWD/.gpu/triton}
[ -f .gpu/compile-cache.tgz ] && tar -C .gpu -xzf .gpu/compile-cache.tgz
if [ ! -x "$A" ]; then
  say "bridge-gpu: no $A (build it with scripts/gpu-round.sh build and carry $B)"
  exit 2
fi
# CTestTestfile paths are not needed; the root is found from the binary (python/ beside it).
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$work/logs/device.txt" 2>&1
say "device: $(head -1 "$work/logs/device.txt")"
say "python: $($ATTNCHECK_PYTHON -c 'import sys, numpy, torch; print(sys.version.split()[0], "numpy", numpy.__version__, "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' 2>&1 | tail -1)"
say "mode: $([ $quick = 1 ] && echo quick || echo full); adapters: ${adapters[*]}; timeout per case ${ATTNCHECK_BRIDGE_TIMEOUT} s"

# Time budget (the device runs a command 10 minutes at most): phase 1 (sweeps and laws) ends at its
# deadline, whatever is still running is cut (rc=124 in the table) and the walks start on time.
if [ $quick = 1 ]; then sweep_flag=--quick; prop_flag="--max 4"; walk_s=20; p1_s=150; p3_s=90
else sweep_flag=; prop_flag=; walk_s=120; p1_s=240; p3_s=90; fi
# A longer first phase for adapters that compile (flex: one graph per mode), e.g.
# BRIDGE_PHASE1_S=420 scripts/bridge-gpu.sh flex flex_paged
p1_s=${BRIDGE_PHASE1_S:-$p1_s}
left() { local t=$((deadline - $(date +%s))); [ $t -lt 5 ] && t=5; echo $t; }

families_of() {
  $ATTNCHECK_PYTHON -c "from attncheck.bridge import conventions, load_adapter
print(' '.join(conventions(load_adapter('attncheck.adapters:$1'))['families']))" 2>>"$work/logs/families.log"
}

# ---- phase 1: sweeps and laws, the adapters side by side ----------------------------------------
phase1() {
  local ad=$1 r="$work/logs/$1" fams fam rc
  mkdir -p "$r"
  # An adapter of a library the host lacks is reported as such, not run case by case.
  case "$ad" in flashinfer*)
    if ! $ATTNCHECK_PYTHON -c "import flashinfer" >"$r/import.log" 2>&1; then
      echo "not run: flashinfer does not import here ($(tail -1 "$r/import.log"))" >"$r/result.txt"; return
    fi ;;
  esac
  fams=$(families_of "$ad")
  [ -z "$fams" ] && { echo "families: cannot load the adapter" >"$r/result.txt"; return; }
  : >"$r/result.txt"
  for fam in $fams; do
    timeout "$(left)" "$A" sweep "$fam" $sweep_flag --kernel "py:attncheck.adapters:$ad" \
      --save "$work/failures/$ad-$fam" --json "$r/sweep-$fam.jsonl" >"$r/sweep-$fam.log" 2>&1
    rc=$?
    echo "sweep $fam rc=$rc $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$r/sweep-$fam.log" | tail -1)" >>"$r/result.txt"
  done
  if [ -x "$P" ]; then
    timeout "$(left)" "$P" --kernel "py:attncheck.adapters:$ad" $prop_flag >"$r/properties.log" 2>&1
    rc=$?
    echo "properties rc=$rc $(tail -1 "$r/properties.log")" >>"$r/result.txt"
  fi
}

# ---- phase 2: the layout walks, concurrently -------------------------------------------------------
phase2() {
  local ad=$1 r="$work/logs/$1"
  mkdir -p "$r"
  grep -q "^not run:" "$r/result.txt" 2>/dev/null && return
  timeout $((walk_s + 45)) "$A" fuzz layout --walk --jobs 3 --seconds "$walk_s" --seed 7 \
    --kernel "py:attncheck.adapters:$ad" --out "$work/failures/walk-$ad" >"$r/walk.log" 2>&1
  echo "walk rc=$? $(grep -E '^ +executions' "$r/walk.log" | sed 's/^ *//') | $(grep -E '^ +findings' "$r/walk.log" | sed 's/^ *//')" >>"$r/result.txt"
}

# ---- phase 3: the misuse adapters must fail, and be diagnosed ----------------------------------------
# adapter  family  what the diagnosis must name
misuse=(
  "sdpa_misuse_scale1 prefill scale=1.0"
  "sdpa_misuse_topleft prefill causal=TOP_LEFT"
  "sdpa_misuse_topleft decode causal=TOP_LEFT"
  "sdpa_misuse_gqa_mod prefill kv_head=h%Hkv"
  "flex_misuse_lse_base2 prefill lse_base=2"
)
phase3() {
  local ad=$1 fam=$2 want=$3 r="$work/logs/misuse"
  mkdir -p "$r"
  timeout "$(left)" "$A" sweep "$fam" --quick --kernel "py:attncheck.adapters:$ad" >"$r/$ad-$fam.log" 2>&1
  local rc=$? fails diag
  fails=$(grep -cE '^FAIL ' "$r/$ad-$fam.log")
  diag=$(grep -c "diagnosis: matches $want" "$r/$ad-$fam.log")
  echo "$ad $fam rc=$rc failed=$fails diagnosed=$diag want=$want $(grep -m1 'diagnosis:' "$r/$ad-$fam.log" | sed 's/^ *//')" \
    >"$r/$ad-$fam.result"
}

t0=$(date +%s)
deadline=$((t0 + p1_s))
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
[ "$ngpu" -ge 1 ] || ngpu=1
on_gpu() { # on_gpu I CMD...: adapter I on GPU I mod N, unless the caller chose the GPUs
  local i=$1; shift
  if [ -z "${CUDA_VISIBLE_DEVICES+x}" ] && [ "$ngpu" -gt 1 ]; then CUDA_VISIBLE_DEVICES=$((i % ngpu)) "$@"; else "$@"; fi
}
i=0
for ad in "${adapters[@]}"; do on_gpu $i phase1 "$ad" & i=$((i + 1)); done
wait
say "phase 1 (sweeps, laws): $(( $(date +%s) - t0 )) s"
t1=$(date +%s)
i=0
for ad in "${adapters[@]}"; do on_gpu $i phase2 "$ad" & i=$((i + 1)); done
wait
say "phase 2 (walks, ${walk_s} s each, concurrent): $(( $(date +%s) - t1 )) s"
t2=$(date +%s)
deadline=$((t2 + p3_s))
[ "${BRIDGE_MISUSE:-1}" = 0 ] || for m in "${misuse[@]}"; do phase3 $m & done
wait
say "phase 3 (misuse demos): $(( $(date +%s) - t2 )) s"

# ---- summary ------------------------------------------------------------------------------------------
ok=1
say ""
say "adapter           | what        | result"
for ad in "${adapters[@]}"; do
  while IFS= read -r line; do
    say "$(printf '%-17s | %s' "$ad" "$line")"
    case "$line" in
    sweep*) echo "$line" | grep -qE 'rc=(0|77) ' || ok=0 ;;
    properties*) echo "$line" | grep -qE 'rc=(0|77) ' || ok=0 ;;
    walk*) echo "$line" | grep -qE 'rc=(0|77) ' || ok=0 ;;
    "not run"*) ok=0 ;;
    esac
  done <"$work/logs/$ad/result.txt"
  # What empty rows hold when they broke a verdict (the convention this backend really has).
  grep -h "empty rows:" "$work/logs/$ad"/sweep-*.log 2>/dev/null | sed 's/^ *//' | sort | uniq -c | head -3 |
    while IFS= read -r e; do say "$(printf '%-17s |   %s' "$ad" "$e")"; done
done
say ""
say "misuse demo (must fail, diagnosed):"
for f in "$work"/logs/misuse/*.result; do
  [ -f "$f" ] || continue
  line=$(cat "$f")
  say "  $line"
  echo "$line" | grep -qE 'rc=1 failed=[1-9][0-9]* diagnosed=[1-9]' || ok=0
done
n_fail=$(find "$work/failures" -type f | wc -l)
say ""
say "failing case files and walk findings: $n_fail (in bridge-failures.tgz; each sweep log ends a failure with its replay command)"
say "total: $(( $(date +%s) - t0 )) s; $([ $ok = 1 ] && echo 'PASS: every sweep, law and walk passed or was unsupported; every misuse demo was caught' || echo 'ATTENTION: see the lines above')"
[ $ok = 1 ]
