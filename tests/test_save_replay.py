#!/usr/bin/python3
"""Every failure is a file: for each family, a sweep with a classic bug
injected saves its failing cases (--save), and each saved file replays to
the same verdict line the sweep printed (replay --bug); without the bug it
passes. Then the JUnit report has one testcase per case line, and the JSON
report one object per case with the failing ones marked.

  test_save_replay.py ATTNCHECK
"""
import os
import re
import subprocess
import sys
import tempfile
import xml.dom.minidom

# A bug each family's quick sweep catches (attncheck selftest has them all).
BUG = {"prefill": "top-left", "decode": "drop-last-key", "combine": "combine-no-inf-guard",
       "store": "store-pad-write"}


def main():
    tool = sys.argv[1]
    fams = [l.split("\t")[0] for l in subprocess.run([tool, "families"], capture_output=True, text=True,
                                                     check=True).stdout.splitlines()]
    failures, replays = [], 0
    for fam in fams:
        bug = BUG.get(fam)
        if not bug:
            failures.append("%s: no bug known to fail this family (add one to BUG)" % fam)
            continue
        d = tempfile.mkdtemp(prefix="save-%s-" % fam)
        junit = os.path.join(d, "report.xml")
        jsonl = os.path.join(d, "report.jsonl")
        p = subprocess.run([tool, "sweep", fam, "--quick", "--backend", "cpu", "--bug", bug, "--save", d,
                            "--junit", junit, "--json", jsonl], capture_output=True, text=True, timeout=600)
        if p.returncode != 1:
            failures.append("%s: sweep with --bug %s exited %d, want 1" % (fam, bug, p.returncode))
            continue
        # FAIL <line>\n  <verdict>\n  saved: <path>\n  replay: <command>
        saved = re.findall(r"^FAIL (.*)\n  (.*)\n  saved: (\S+)\n  replay: (.*)$", p.stdout, re.M)
        nfail = len(re.findall(r"^FAIL ", p.stdout, re.M))
        if not saved or len(saved) != nfail:
            failures.append("%s: %d failures, %d saved" % (fam, nfail, len(saved)))
        for line, verdict, path, command in saved:
            replays += 1
            argv = command.split()
            if argv[0] != "attncheck" or argv[-1] != path:
                failures.append("%s: replay command %r" % (fam, command))
                continue
            r = subprocess.run([tool] + argv[1:-1] + ["--quiet", path], capture_output=True, text=True, timeout=300)
            if r.returncode != 1 or verdict not in r.stdout or line not in r.stdout:
                failures.append("%s: %s replays to exit %d:\n    %s\n    want: %s" % (fam, path, r.returncode,
                                                                                   r.stdout.strip()[-300:], verdict))
            ok = subprocess.run([tool, "replay", "--backend", "cpu", "--quiet", path], capture_output=True,
                                text=True, timeout=300)
            if ok.returncode != 0:
                failures.append("%s: %s without the bug exits %d" % (fam, path, ok.returncode))
        import json
        rows = [json.loads(l) for l in open(jsonl)]
        m = re.search(r"^(\d+) passed, (\d+) failed$", p.stdout, re.M)
        if not m or len(rows) != int(m.group(1)) + int(m.group(2)) or \
                sorted(r["case"] for r in rows if not r["pass"]) != sorted(l for l, _, _, _ in saved):
            failures.append("%s: --json has %d rows, %d failing; the sweep says %s" % (
                fam, len(rows), sum(not r["pass"] for r in rows), m.group(0) if m else "?"))
        doc = xml.dom.minidom.parse(junit)
        cases = doc.getElementsByTagName("testcase")
        names = {c.getAttribute("name") for c in cases}
        bad = [c for c in cases if c.getElementsByTagName("failure")]
        if len(bad) != nfail or not all(l in names for l, _, _, _ in saved):
            failures.append("%s: JUnit has %d testcases, %d failures; the sweep failed %d" % (fam, len(cases),
                                                                                           len(bad), nfail))
    print("save and replay: %d families, %d saved failures replayed, %d problems" % (len(fams), replays,
                                                                                    len(failures)))
    for f in failures[:20]:
        print("FAIL", f)
    sys.exit(1 if failures or replays == 0 else 0)


if __name__ == "__main__":
    main()
