#!/usr/bin/env bash
# Same-run A/B of two builds' benchmarks on the Hopper host: is a change free when
# its feature is off? Carry a folder holding A/{prefill,decode}_bench and
# B/{prefill,decode}_bench (e.g. A from the commit before the change, B from after),
# then on the host:   scripts/ab-bench.sh FOLDER [ROUNDS] [FEATURES]
# Runs A and B alternately, ROUNDS times (default 3), each `--bench --features
# FEATURES` (default none), and prints the per-shape medians of each side's runs and
# B/A. Everything goes to $OUT (or ./ab-results): ab.txt (also printed) and the raw logs.
set -uo pipefail
dir=${1:?folder with A/ and B/}
rounds=${2:-3}
feats=${3:-none}
dest=${OUT:-$PWD/ab-results}
mkdir -p "$dest"
for r in $(seq 1 "$rounds"); do
  for side in A B; do
    "$dir/$side/prefill_bench" --bench --features "$feats" >"$dest/prefill-$side-$r.log" 2>&1
    "$dir/$side/decode_bench" --bench --features "$feats" >"$dest/decode-$side-$r.log" 2>&1
  done
done
python3 - "$dest" "$rounds" <<'PY' | tee "$dest/ab.txt"
import re, statistics, sys
dest, rounds = sys.argv[1], int(sys.argv[2])
def rows(kind, side, r):
    out = {}
    for line in open(f"{dest}/{kind}-{side}-{r}.log"):
        if kind == "prefill":
            m = re.match(r"(.+?)\s{2,}(\S+)\s+([0-9.]+)\s+([0-9.]+)$", line.rstrip())
            if m: out[(m.group(1).strip(), m.group(2))] = float(m.group(3)) * 1e3  # us
        else:
            f = line.split()
            if len(f) >= 7 and f[0].startswith("B=") and f[4].startswith("auto="):
                out[(f"{f[0]} {f[1]} {f[3]}", f[2])] = float(f[5])
    return out
for kind in ("prefill", "decode"):
    a = [rows(kind, "A", r) for r in range(1, rounds + 1)]
    b = [rows(kind, "B", r) for r in range(1, rounds + 1)]
    print(f"{kind}: median over {rounds} alternating runs of each side's median time (us)")
    for key in a[0]:
        ta = statistics.median(x[key] for x in a if key in x)
        tb = statistics.median(x[key] for x in b if key in x)
        spread = max(x[key] for x in a if key in x) / min(x[key] for x in a if key in x) - 1
        print(f"  {key[0]:42s} {key[1]:10s} A {ta:10.1f}  B {tb:10.1f}  B/A {tb / ta:6.3f}  (A's own spread {100 * spread:.1f}%)")
PY
