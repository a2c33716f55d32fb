#!/usr/bin/env python3
"""The include layers: every #include "..." must point down or sideways within
its own folder, never up and never in a circle (docs/EXTENDING.md).

Layers, bottom to top (a folder may include its own files and any lower rank):
  0 common      case model, number formats, generation, case files, backend ABI
  1 oracle      the truth            (peers: neither includes the other)
  1 kernels     what is checked
  2 harness     the one-case check, verdict, sweeps, family and backend registry
  3 properties  laws                 (peers: neither includes the other)
  3 fuzz        counterexample search
  4 tools       the command line
  5 tests, bench, corpus, python    programs that use everything below
A sub-folder belongs to the layer of its top folder. Exit 1 on any violation."""
import os
import re
import sys

RANK = {"common": 0, "oracle": 1, "kernels": 1, "harness": 2, "properties": 3,
        "fuzz": 3, "tools": 4, "tests": 5, "bench": 5, "corpus": 5, "python": 5}
EXTS = (".c", ".h", ".cu", ".cuh", ".def", ".inc")
INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main(root):
    files = {}
    for top in RANK:
        for d, _, names in os.walk(os.path.join(root, top)):
            for n in names:
                if n.endswith(EXTS):
                    p = os.path.relpath(os.path.join(d, n), root)
                    files[p] = top
    by_name = {}
    for p in files:
        by_name.setdefault(os.path.basename(p), []).append(p)
    bad, edges = [], {}
    for p, top in sorted(files.items()):
        with open(os.path.join(root, p), encoding="utf-8", errors="replace") as f:
            for ln, line in enumerate(f, 1):
                m = INC.match(line)
                if not m:
                    continue
                inc = m.group(1)
                # Resolve as the compiler would: beside the file, then by name
                # in the include path (every folder's top is on it).
                beside = os.path.normpath(os.path.join(os.path.dirname(p), inc))
                if beside in files:
                    target = beside
                elif "/" in inc and os.path.normpath(inc) in files:
                    target = os.path.normpath(inc)
                else:
                    cands = by_name.get(os.path.basename(inc), [])
                    if len(cands) != 1:
                        if cands:
                            bad.append(f"{p}:{ln}: \"{inc}\" is ambiguous: {', '.join(cands)}")
                        continue  # not ours (system or generated header)
                    target = cands[0]
                edges.setdefault(p, set()).add(target)
                a, b = top, files[target]
                if a != b and RANK[b] >= RANK[a]:
                    kind = "sideways to a peer" if RANK[b] == RANK[a] else "upward"
                    bad.append(f"{p}:{ln}: includes {target}: {kind} ({a} rank {RANK[a]} -> {b} rank {RANK[b]})")
    # Circles among files.
    state, stack = {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                cyc = stack[stack.index(v):] + [v]
                bad.append("circle: " + " -> ".join(cyc))
            elif not state.get(v):
                visit(v)
        stack.pop()
        state[u] = 2

    for u in sorted(edges):
        if not state.get(u):
            visit(u)
    nedges = sum(len(v) for v in edges.values())
    for b in bad:
        print(b)
    print(f"include layers: {len(files)} files, {nedges} includes, {len(bad)} violations")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")))
