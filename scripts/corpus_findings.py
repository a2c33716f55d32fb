#!/usr/bin/env python3
"""The findings of corpus/, listed from the files themselves (corpus/README.md).

A finding is a file whose note says so: the note of a case file (the .txt
beside a binary input) says how it was found ("found by ...") or where it was
fixed ("fixed in ..."), or the file is listed in corpus/DISABLED (open).
Prints a markdown table: file, family, title, note, state.

  corpus_findings.py [--root REPO] [--check]

--check also enforces the numbering rule and the DISABLED format, and exits 1
on any breach: every finding numbered 1000 or more and every file numbered
1000 or more a finding, one file per number in a folder, names
NNNN-topic.ext, each .txt beside its input, each DISABLED entry an existing
file with a reason."""
import argparse
import os
import re
import sys

MARK = re.compile(r"\b(found by|fixed in)\b", re.IGNORECASE)
NAME = re.compile(r"^(\d{4})-[a-z0-9][a-z0-9-]*\.[a-z]+$")
FINDING_FIRST = 1000


def families(root):
    """Family names, from the one list of them (common/ac_families.def)."""
    with open(os.path.join(root, "common", "ac_families.def")) as f:
        return re.findall(r"^AC_FAMILY\((\w+),", f.read(), re.M)


def read_disabled(corpus, problems):
    """{"<folder>/<file>": reason} of corpus/DISABLED."""
    out = {}
    path = os.path.join(corpus, "DISABLED")
    if not os.path.exists(path):
        problems.append("corpus/DISABLED is missing (it holds at least its format comment)")
        return out
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            entry, _, reason = line.partition(" ")
            where = "corpus/DISABLED:%d: %s" % (n, entry)
            if not reason.strip():
                problems.append(where + ": no reason")
            if entry in out:
                problems.append(where + ": listed twice")
            if not os.path.isfile(os.path.join(corpus, entry)):
                problems.append(where + ": no such file under corpus/")
            out[entry] = reason.strip()
    return out


def describe(path):
    """(kind, op, title, note) of a corpus file: a case file's own lines, or a
    binary input's description (.txt: first line title, the rest note)."""
    with open(path, "rb") as f:
        head = f.read(15)
    if head == b"attncheck-case ":
        title, notes, op = "", [], None
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition(" ")
                if key == "title":
                    title = value
                elif key == "note":
                    notes.append(value)
                elif key == "op":
                    op = value
        return "case", op, title, " ".join(notes)
    txt = path + ".txt"
    if not os.path.exists(txt):
        return "input", None, "", ""
    with open(txt, encoding="utf-8", errors="replace") as f:
        lines = [l.strip() for l in f.read().splitlines()]
    return "input", None, lines[0] if lines else "", " ".join(l for l in lines[1:] if l)


def cell(text):
    return text.replace("|", "\\|").strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="the repository (default: this script's)")
    ap.add_argument("--check", action="store_true", help="also enforce the numbering rule and DISABLED's format")
    args = ap.parse_args()
    corpus = os.path.join(args.root, "corpus")
    fams = families(args.root)
    problems = []
    disabled = read_disabled(corpus, problems)
    rows = []
    for folder in sorted(os.listdir(corpus)):
        fdir = os.path.join(corpus, folder)
        if not os.path.isdir(fdir):
            continue
        names = sorted(os.listdir(fdir))
        numbers = {}
        for name in names:
            rel = folder + "/" + name
            if name.endswith(".txt"):
                if name[:-4] not in names:
                    problems.append("corpus/%s describes a file that is not there" % rel)
                continue
            m = NAME.match(name)
            if not m:
                problems.append("corpus/%s: not named NNNN-topic.ext ([a-z0-9-] topic)" % rel)
                continue
            num = int(m.group(1))
            if num in numbers:
                problems.append("corpus/%s: number %04d already taken by %s" % (rel, num, numbers[num]))
            numbers[num] = name
            kind, op, title, note = describe(os.path.join(fdir, name))
            is_finding = bool(MARK.search(note)) or rel in disabled
            if is_finding and num < FINDING_FIRST:
                problems.append("corpus/%s: a finding numbered as a seed (findings take %d and up)"
                                % (rel, FINDING_FIRST))
            if num >= FINDING_FIRST and not is_finding:
                problems.append("corpus/%s: numbered as a finding, but its %s says neither 'found by' nor "
                                "'fixed in' and DISABLED does not list it"
                                % (rel, "note" if kind == "case" else "description (.txt)"))
            if not is_finding:
                continue
            if op is None:
                words = re.split(r"[^a-z]+", title.lower())
                op = next((w for w in words if w in fams), folder)
            state = "open: " + disabled[rel] if rel in disabled else "fixed"
            rows.append((rel, op, title, note, state))

    print("| file | family | title | note | state |")
    print("| --- | --- | --- | --- | --- |")
    for rel, op, title, note, state in rows:
        print("| `%s` | %s | %s | %s | %s |" % (rel, op, cell(title), cell(note), cell(state)))
    print("\n%d findings, %d open (corpus/DISABLED)" % (len(rows), sum(r[4] != "fixed" for r in rows)))
    if args.check:
        for p in problems:
            print("corpus_findings: " + p, file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
