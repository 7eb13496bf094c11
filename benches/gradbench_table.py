#!/usr/bin/env python3
"""Render gradbench.sh's results (JSON lines) as a Markdown table of scores per eval.

Score = 1 / (sum over every evaluate message of its mean run time in seconds), GradBench's
definition; higher is better. A tool whose run failed or was invalid anywhere has no score.
"""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tools = []
evals = []
res = {}
for r in rows:
    tool, ev = r["name"].split("/")
    tools += [tool] if tool not in tools else []
    evals += [ev] if ev not in evals else []
    res[(tool, ev)] = r
print("| eval | " + " | ".join(tools) + " | adjoint ÷ best other |")
print("|---|" + "---|" * (len(tools) + 1))
for ev in evals:
    cells = []
    for t in tools:
        r = res.get((t, ev))
        if r is None:
            cells.append("—")
        elif not r.get("ok"):
            bad = [e for e in r.get("evaluations", []) if e.get("valid") is False or not e.get("success")]
            cells.append(f"fail ({len(bad)} bad)" if bad else f"fail ({r.get('error')})")
        else:
            cells.append(f"{r['score']:.4g}")
    a = res.get(("adjoint", ev))
    others = [res[(t, ev)]["score"] for t in tools if t != "adjoint" and (t, ev) in res and res[(t, ev)].get("ok")]
    ratio = f"{a['score'] / max(others):.2f}×" if a and a.get("ok") and others else "—"
    print(f"| {ev} | " + " | ".join(cells) + f" | {ratio} |")
