#!/usr/bin/env python3
"""The benchmark table (docs/PERF.md, "The benchmark table"): our rows
(`prefill_bench --table`, `decode_bench --table`: ROW, FLOOR and DEVICE lines),
the peers' (`sdpa_peers.py --table`, `sdpa_decode_peers.py --table`: PEER,
FLOOR and INFO lines) and the floors measured in the same run, merged into one
markdown table per op (prefill, decode, combine and store), and the same data
as CSV.

Per row: our median ms; our rate (TFLOP/s for prefill, GB/s otherwise, from
the row's work: FLOPs or bytes); % of the floor (prefill: our rate over the
matmul rate of the row's dtype; decode: over the read bandwidth; combine and
store: over the device-to-device copy bandwidth); each peer's ms and rate and
the ratio ours/peer (peer ms / our ms: > 1 means ours is faster); the check
(the verdict on the sampled rows, its worst r). A row whose check failed has
no time. SDPA reads contiguous K/V: a paged row's SDPA columns are those of
the contiguous configuration of the same shape; flex is matched by layout.

Usage: perf_table.py FILE... [--csv OUT] [--flashinfer TEXT]
Only the standard library: the merge runs anywhere (tests/ runs it on a fixture).
"""
import argparse
import csv
import sys

KEY = ("op", "dtype", "D", "causal", "layout", "shape")
SDPA_PEERS = ("FLASH", "CUDNN")
FLASHINFER_DEFAULT = "not run: its wheel cannot be carried to the GPU host (no adapter timed)"


def parse(paths):
    """(rows in order, peers {key+(peer,): (ms|None, note)}, floors {name: value}, info {k: v})."""
    rows, peers, floors, info = [], {}, {}, {}
    for path in paths:
        with open(path) as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if p[0] == "ROW" and len(p) >= 14:
                    rows.append({
                        "key": tuple(p[1:7]), "ms": None if p[7] == "-" else float(p[7]), "work": float(p[8]),
                        "unit": p[9], "check": p[10], "worst_r": float(p[11]), "reps": int(p[12]),
                        "copies": int(p[13]),
                        "host_ms": float(p[14]) if len(p) >= 15 and float(p[14]) >= 0 else None})
                elif p[0] == "PEER" and len(p) >= 10:
                    peers[tuple(p[1:8])] = (None if p[8] == "-" else float(p[8]), p[9])
                elif p[0] == "FLOOR" and len(p) >= 3:
                    floors[p[1]] = float(p[2])
                elif p[0] == "INFO" and len(p) >= 3:
                    info.setdefault(p[1], p[2])
                elif p[0] == "DEVICE" and len(p) >= 2:
                    info.setdefault("device", " ".join(p[1:]))
    return rows, peers, floors, info


def rate(work, unit, ms):
    """TFLOP/s for FLOPs, GB/s for bytes."""
    if ms is None or ms <= 0:
        return None
    return work / (ms * 1e-3) / (1e12 if unit == "flop" else 1e9)


def floor_of(row, floors):
    """The floor rate of the row (same unit as rate()) and its name, or (None, name)."""
    op, dtype = row["key"][0], row["key"][1]
    name = {"prefill": "matmul_%s_tflops" % dtype, "decode": "read_gbps"}.get(op, "copy_gbps")
    return floors.get(name), name


def peer_names(rows, peers):
    names = []
    for k in peers:
        if k[6] not in names:
            names.append(k[6])
    order = [n for n in SDPA_PEERS if n in names] + sorted(n for n in names if n not in SDPA_PEERS)
    return order


def peer_of(row, name, peers):
    """(ms, note) of peer `name` for our row, or (None, "-") when it has no line."""
    key = row["key"]
    if name in SDPA_PEERS and key[4] != "contig":
        key = key[:4] + ("contig",) + key[5:]
    return peers.get(key + (name,), (None, "-"))


def merge(rows, peers, floors):
    """One record per row: every number the tables and the CSV print."""
    names = peer_names(rows, peers)
    out = []
    for r in rows:
        rec = dict(zip(KEY, r["key"]))
        ours = rate(r["work"], r["unit"], r["ms"] if r["check"] == "PASS" else None)
        fl, _ = floor_of(r, floors)
        rec.update(check=r["check"], worst_r=r["worst_r"], ours_ms=r["ms"] if r["check"] == "PASS" else None,
                   ours_rate=ours, unit="TFLOP/s" if r["unit"] == "flop" else "GB/s", reps=r["reps"],
                   copies=r["copies"], pct_floor=100.0 * ours / fl if ours is not None and fl else None,
                   host_ms=r.get("host_ms"))
        for n in names:
            ms, note = peer_of(r, n, peers)
            rec[n + "_ms"] = ms
            rec[n + "_rate"] = rate(r["work"], r["unit"], ms)
            rec[n + "_ratio"] = ms / rec["ours_ms"] if ms and rec["ours_ms"] else None
            rec[n + "_note"] = note
        out.append(rec)
    return out, names


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def table_md(recs, names, ops, title):
    sel = [r for r in recs if r["op"] in ops]
    if not sel:
        return []
    unit = sel[0]["unit"]
    head = ["row", "check (worst r)", "ours ms", "ours " + unit, "% floor", "host ms"]
    for n in names:
        head += [n + " ms", n + " " + unit, "ours/" + n]
    lines = ["", "### " + title, "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in sel:
        name = " ".join(x for x in (r["op"], r["dtype"], "D=" + r["D"], "causal=" + r["causal"] if r["causal"] != "-"
                                    else "", r["layout"] if r["layout"] != "-" else "", r["shape"]) if x)
        cells = [name, "%s (%.3g)" % (r["check"], r["worst_r"]), fmt(r["ours_ms"], ".4f"),
                 fmt(r["ours_rate"], ".1f" if unit == "TFLOP/s" else ".0f"), fmt(r["pct_floor"], ".1f"),
                 fmt(r.get("host_ms"), ".4f")]
        for n in names:
            if r[n + "_ms"] is None:
                note = r[n + "_note"]
                cells += [note if note != "-" else "-", "-", "-"]
            else:
                cells += [fmt(r[n + "_ms"], ".4f"), fmt(r[n + "_rate"], ".1f" if unit == "TFLOP/s" else ".0f"),
                          fmt(r[n + "_ratio"], ".2f")]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return lines


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--csv", help="write the merged rows here (CSV)")
    ap.add_argument("--flashinfer", default=FLASHINFER_DEFAULT, help="the FlashInfer status line")
    a = ap.parse_args(argv)
    rows, peers, floors, info = parse(a.files)
    recs, names = merge(rows, peers, floors)
    fl = ", ".join("%s %.1f" % (k, v) for k, v in sorted(floors.items())) or "none measured"
    out = ["## Benchmark table", "",
           "- device: %s; torch %s" % (info.get("device", "?"), info.get("torch", "?")),
           "- floors (same run): " + fl,
           "- FlashInfer: " + a.flashinfer,
           "- rules: every row checked first (64 sampled rows, or the whole case, against ac_ref64 under the "
           "verdict; a FAIL row has no time); CUDA events, 3 warm-ups, median, a 1 ms GPU spin queued before each "
           "timed call so that the events time the GPU's work and not the host's (ours and the peers alike); "
           "host ms: the host time of our call (validation and launch), which an engine overlaps with earlier "
           "GPU work; inputs rotated past L2 (copies "
           "until 4x L2); ours/peer = peer ms / our ms (> 1: ours faster); SDPA reads contiguous K/V (a paged "
           "row's SDPA columns are the contiguous configuration's; a varlen row's SDPA columns go through "
           "nested jagged tensors, torch's one varlen entry to SDPA, so they include torch's nested-tensor "
           "handling and are not the backends' varlen kernels alone)",
           "- rows: %d ours (%d failed the check), %d peer lines" % (
               len(rows), sum(r["check"] != "PASS" for r in rows), len(peers))]
    out += table_md(recs, [n for n in names if n in SDPA_PEERS], ("prefill",), "Prefill (TFLOP/s; floor: matmul)")
    out += table_md(recs, names, ("decode",), "Decode, Hq=32 Hkv=8 (GB/s of K/V; floor: read bandwidth)")
    out += table_md(recs, [], ("combine", "store"), "Combine and store (GB/s read + written; floor: copy)")
    print("\n".join(out))
    if a.csv:
        cols = list(KEY) + ["check", "worst_r", "reps", "copies", "ours_ms", "ours_rate", "unit", "pct_floor",
                            "host_ms"]
        for n in names:
            cols += [n + "_ms", n + "_rate", n + "_ratio", n + "_note"]
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            for r in recs:
                w.writerow({k: ("" if v is None else ("%.6g" % v if isinstance(v, float) else v))
                            for k, v in r.items()})
    return 1 if any(r["check"] != "PASS" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
