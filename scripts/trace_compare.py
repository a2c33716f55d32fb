#!/usr/bin/env python3
"""Compare two walk traces (`attncheck fuzz --walk --trace PREFIX`), worker by
worker: over the inputs both runs reached, worker i must have run the same
inputs in the same order with the same outcomes, whatever the run's length,
timing or GPU count (docs/SCALING.md).

    trace_compare.py PREFIX_A PREFIX_B      exit 0: identical prefixes
"""
import glob, sys

def load(prefix):
    out = {}
    for path in glob.glob(glob.escape(prefix) + ".w*"):
        with open(path) as f:
            out[int(path.rsplit(".w", 1)[1])] = f.read().splitlines()
    return out

def main(a, b):
    ta, tb = load(a), load(b)
    if not ta or set(ta) != set(tb):
        print("workers differ: %s vs %s" % (sorted(ta), sorted(tb)))
        return 1
    bad = compared = 0
    for w in sorted(ta):
        n = min(len(ta[w]), len(tb[w]))
        compared += n
        diff = next((k for k in range(n) if ta[w][k] != tb[w][k]), None)
        if diff is not None:
            bad += 1
            print("worker %d: input %d differs: %s vs %s" % (w, diff + 1, ta[w][diff], tb[w][diff]))
    print("%d workers, %d inputs compared, %d workers differ" % (len(ta), compared, bad))
    return 1 if bad or compared == 0 else 0

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
