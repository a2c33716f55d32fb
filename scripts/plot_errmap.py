#!/usr/bin/env python3
"""Labelled figure of an error map table (<stem>-map.tsv.gz, written beside
the pictures by `attncheck run|sweep|replay --png DIR`; docs/PICTURES.md).

    python3 scripts/plot_errmap.py DIR/case0014-prefill-map.tsv.gz [-o OUT.png]

Always prints a summary (counts per state, the worst element, the worst r of
each sequence). With matplotlib (Debian: python3-matplotlib) it also draws
OUT (default: <stem>-map.png): the heatmap with sequences, heads and dims
labelled, and the worst r over position per sequence, in the colours of the
PNG pictures. Without matplotlib it says so and draws nothing.
"""
import argparse
import gzip
import math
import sys

# The PNG pictures' colours (common/ac_errpic.c, ac_errpic.h).
COOL = [(15, 20, 70), (30, 70, 160), (60, 140, 210), (140, 210, 235)]
WARM = [(255, 230, 0), (255, 140, 0), (225, 30, 0), (120, 0, 0)]
SPECIAL = {
    'unchecked': ((160, 160, 160), 'row not evaluated'),
    'masked': ((80, 190, 110), 'fully masked row, O = 0'),
    'masked_bad': ((230, 0, 200), 'fully masked row, O != 0'),
    'bad': ((0, 0, 0), 'NaN/Inf output'),
}
# When one position covers several elements, the worst is shown: a failure
# beats a value, a value beats a row with nothing to judge.
RANK = {'unchecked': 0, 'masked': 1, 'ok': 2, 'over': 2, 'masked_bad': 3, 'bad': 4}


def colour_of_r(r):
    """RGB in [0, 1] of r on the pictures' scale: log10 r over [-3, 3]."""
    lg = math.log10(r) if r > 0 else -3.0
    stops, t = (COOL, (lg + 3) / 3) if lg <= 0 else (WARM, lg / 3)
    t = min(max(t, 0.0), 1.0)
    x = t * 3
    i = min(int(x), 2)
    a, b = stops[i], stops[i + 1]
    return tuple((a[k] + (b[k] - a[k]) * (x - i)) / 255 for k in range(3))


def read_table(path):
    opener = gzip.open if path.endswith('.gz') else open
    meta = {'title': '', 'batch': 0, 'heads_q': 0, 'head_dim': 0, 'cu_seqlens_q': [0]}
    rows = []
    with opener(path, 'rt') as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith('# title: '):
                meta['title'] = line[len('# title: '):]
            elif line.startswith('# '):
                for item in line[2:].split():
                    key, _, value = item.partition('=')
                    if key == 'cu_seqlens_q':
                        meta[key] = [int(v) for v in value.split(',')]
                    elif key in meta:
                        meta[key] = int(value)
            elif line.startswith('seq\t') or not line:
                continue
            else:
                seq, head, row, dim, r, state = line.split('\t')
                rows.append((int(seq), int(head), int(row), int(dim), float(r), state))
    return meta, rows


def worse(a, b):
    """The worse of two (rank, r) pairs."""
    if a is None or RANK[b[1]] > RANK[a[1]]:
        return b
    if RANK[b[1]] == RANK[a[1]] == 2 and b[0] > a[0]:
        return b
    return a


def summary(meta, rows):
    print('case:', meta['title'] or '(no title)')
    cu = meta['cu_seqlens_q']
    print('shape: batch %d, heads_q %d, head_dim %d, query lengths %s' %
          (meta['batch'], meta['heads_q'], meta['head_dim'],
           ','.join(str(cu[b + 1] - cu[b]) for b in range(len(cu) - 1))))
    counts = {}
    for *_, state in rows:
        counts[state] = counts.get(state, 0) + 1
    total_rows = cu[-1] * meta['heads_q']
    evaluated = len(rows) // max(meta['head_dim'], 1)
    print('elements: %s; %d of %d rows evaluated' %
          (', '.join('%s %d' % (k, counts[k]) for k in sorted(counts)), evaluated, total_rows))
    worst, where = None, None
    per_seq = {}
    for seq, head, row, dim, r, state in rows:
        w = worse(worst, (r, state))
        if w is not worst:
            worst, where = w, (seq, head, row, dim)
        per_seq[seq] = worse(per_seq.get(seq), (r, state))
    if worst:
        print('worst: r = %g (%s) at seq %d head %d row %d dim %d' % (worst[0], worst[1], *where))
    for seq in sorted(per_seq):
        r, state = per_seq[seq]
        print('  seq %d: worst r = %g (%s)' % (seq, r, state))


def figure(meta, rows, out, dpi=100):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        from matplotlib.colors import LinearSegmentedColormap, LogNorm
        from matplotlib.patches import Patch
        import numpy as np
    except ImportError:
        print('plot_errmap: matplotlib is not installed (Debian: python3-matplotlib): no figure',
              file=sys.stderr)
        return False
    cu, hq, dims = meta['cu_seqlens_q'], meta['heads_q'], meta['head_dim']
    nb = len(cu) - 1
    # Heatmap rows in the pictures' order: sequence, head, query position.
    start, y = [], 0
    for b in range(nb):
        start.append(y)
        y += hq * (cu[b + 1] - cu[b])
    y_total = max(y, 1)
    img = np.empty((y_total, dims, 3))
    img[:, :] = np.array(SPECIAL['unchecked'][0]) / 255
    lq = [cu[b + 1] - cu[b] for b in range(nb)]
    maxlq = max(lq + [1])
    by_pos = {}
    for seq, head, row, dim, r, state in rows:
        yy = start[seq] + head * lq[seq] + row
        img[yy, dim] = [c / 255 for c in SPECIAL[state][0]] if state in SPECIAL else colour_of_r(r)
        by_pos[seq, row] = worse(by_pos.get((seq, row)), (r, state))

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(14, 8), gridspec_kw={'width_ratios': [1, 1.4]})
    fig.suptitle(meta['title'], fontsize=9)
    ax0.imshow(img, aspect='auto', interpolation='nearest')
    ax0.set_title('r = |err| / bound per element')
    ax0.set_xlabel('dim')
    ax0.set_ylabel('sequence / head / query position')
    ax0.set_yticks([start[b] - 0.5 for b in range(nb) if lq[b]])
    ax0.set_yticklabels(['seq %d' % b for b in range(nb) if lq[b]], fontsize=8)
    # Heads: a minor tick at each head's first row, labelled where a head
    # block is tall enough (1/50 of the map) to hold its label.
    heads = [(start[b] + h * lq[b] - 0.5, h, lq[b]) for b in range(nb) for h in range(1, hq) if lq[b]]
    ax0.set_yticks([y for y, _, _ in heads], minor=True)
    ax0.set_yticklabels(['h%d' % h if n * 50 >= y_total else '' for _, h, n in heads], minor=True, fontsize=6)
    for b in range(1, nb):
        if lq[b]:
            ax0.axhline(start[b] - 0.5, color='white', linewidth=1)
    ax0.set_xticks(range(0, dims, 8 if dims <= 128 else 32))
    stops = COOL + WARM
    cmap = LinearSegmentedColormap.from_list(
        'ac', [(i / 6 if i < 4 else 0.5 + (i - 4) / 6, tuple(c / 255 for c in s))
               for i, s in enumerate(stops)])
    sm = plt.cm.ScalarMappable(norm=LogNorm(1e-3, 1e3), cmap=cmap)
    fig.colorbar(sm, ax=ax0, label='r (fail when r > 1)')
    ax0.legend(handles=[Patch(color=tuple(c / 255 for c in col), label=lab) for col, lab in SPECIAL.values()],
               loc='upper center', bbox_to_anchor=(0.5, -0.07), ncol=2, fontsize=8)

    # Worst r over heads and dims per position, the worst 10 sequences.
    seq_worst = {}
    for (seq, _), v in by_pos.items():
        seq_worst[seq] = worse(seq_worst.get(seq), v)
    order = sorted(seq_worst, key=lambda b: (RANK[seq_worst[b][1]], seq_worst[b][0]), reverse=True)[:10]
    for b in sorted(order):
        xs = [q for q in range(lq[b]) if (b, q) in by_pos]
        ys = [by_pos[b, q][0] if by_pos[b, q][1] in ('ok', 'over') else
              1e3 if by_pos[b, q][1] in ('bad', 'masked_bad') else float('nan') for q in xs]
        ys = [min(max(v, 1e-3), 1e3) for v in ys]
        line, = ax1.plot(xs, ys, drawstyle='steps-mid', label='seq %d (Lq %d)' % (b, lq[b]))
        for state, mark in (('bad', 'x'), ('masked_bad', 'D'), ('masked', 'o')):
            qs = [q for q in xs if by_pos[b, q][1] == state]
            if qs:
                ax1.scatter(qs, [1e3 if state != 'masked' else 1.2e-3] * len(qs), marker=mark,
                            color=tuple(c / 255 for c in SPECIAL[state][0]), zorder=3)
    ax1.axhline(1.0, color='black', linewidth=1)
    ax1.set_yscale('log')
    ax1.set_ylim(1e-3, 1.5e3)
    ax1.set_xlim(-0.5, maxlq - 0.5)
    ax1.set_xlabel('query position in the sequence')
    ax1.set_ylabel('worst r over heads and dims')
    ax1.set_title('error over position (x: NaN/Inf, diamond: masked row with O != 0, o: masked)', fontsize=9)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    print('figure:', out)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('table', help='<stem>-map.tsv.gz (or an uncompressed .tsv)')
    ap.add_argument('-o', '--out', help='figure file (default <stem>-map.png)')
    ap.add_argument('--dpi', type=int, default=100, help='figure resolution (the figure is 14 x 8 inches)')
    ap.add_argument('--summary', action='store_true', help='print the summary only')
    a = ap.parse_args()
    meta, rows = read_table(a.table)
    summary(meta, rows)
    if not a.summary:
        stem = a.table
        for ext in ('.gz', '.tsv'):
            stem = stem[:-len(ext)] if stem.endswith(ext) else stem
        figure(meta, rows, a.out or stem + '.png', a.dpi)


if __name__ == '__main__':
    main()
