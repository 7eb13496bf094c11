#!/usr/bin/env python3
"""Score `gradbench run` logs (LOGS/EVAL/TOOL.jsonl, from benches/gradbench.sh) as GradBench's
own `gradbench repo stats` does, and print a Markdown table.

The scoring mirrors crates/gradbench/src/stats.rs at GradBench f26651a7:
- classic evals (ba gmm ht lstm: objective/jacobian; kmeans: cost/dir; ode llsq det lse:
  primal/gradient): per workload (the evaluate message's `description`), the mean of the
  response's "evaluate" timings for the primal plus that for the derivative; the score is
  1 / (sum over workloads), in s⁻¹;
- particle and saddle: 1 / (the fastest function's mean time);
- hello: no score.
A tool gets a score only if `gradbench run` exited with 0, every response succeeded and every
analysis was valid. Also prints,
per eval, the workloads where adjoint is slowest relative to manual.
"""
import json
import os
import sys

CLASSIC = {
    "ba": ("objective", "jacobian"), "gmm": ("objective", "jacobian"), "ht": ("objective", "jacobian"),
    "lstm": ("objective", "jacobian"), "kmeans": ("cost", "dir"), "ode": ("primal", "gradient"),
    "llsq": ("primal", "gradient"), "det": ("primal", "gradient"), "lse": ("primal", "gradient"),
}
ORDER = ["hello", "det", "gmm", "lstm", "ba", "ht", "lse", "llsq", "ode", "kmeans", "particle", "saddle"]


def read(path):
    """(ok, problems, per-workload seconds, per-function seconds) of one log."""
    msgs = {}
    work, funcs, problems = {}, {}, []
    for line in open(path):
        if not line.strip():
            continue
        rec = json.loads(line)
        if "message" in rec:
            m = rec["message"]
            msgs[m["id"]] = m
            if m.get("kind") == "analysis" and m.get("valid") is False:
                problems.append(f"invalid output for message {m.get('of')}")
            continue
        r = rec.get("response", {})
        m = msgs.get(r.get("id"), {})
        if m.get("kind") in ("define", "evaluate") and r.get("success") is False:
            problems.append(f"{m.get('function', 'define')} failed: {str(r.get('error'))[:80]}")
        if m.get("kind") != "evaluate":
            continue
        ts = [t["nanoseconds"] * 1e-9 for t in r.get("timings") or [] if t["name"] == "evaluate"]
        if not ts:
            continue
        mean = sum(ts) / len(ts)
        funcs[m["function"]] = mean
        w = work.setdefault(m.get("description") or str(m["id"]), {})
        w[m["function"]] = mean
    if not msgs:
        problems.append("empty log")
    rc = path[: -len(".jsonl")] + ".rc"
    if os.path.exists(rc) and open(rc).read().strip() != "0":
        problems.append(f"gradbench run exited with {open(rc).read().strip()}")
    return not problems, problems, work, funcs


def score(ev, work, funcs):
    if ev in ("particle", "saddle"):
        return 1.0 / min(funcs.values()) if funcs else None
    if ev in CLASSIC:
        total = sum(sum(v for f, v in w.items() if f in CLASSIC[ev]) for w in work.values())
        return 1.0 / total if total > 0 else None
    return None


def main(logs, summary_path=None):
    evals = [e for e in ORDER if os.path.isdir(os.path.join(logs, e))]
    tools = []
    for e in evals:
        for f in sorted(os.listdir(os.path.join(logs, e))):
            t = f[: -len(".jsonl")] if f.endswith(".jsonl") else None
            if t and t not in tools:
                tools.append(t)
    tools.sort(key=lambda t: (t != "adjoint", t != "manual", t))
    print("| eval | " + " | ".join(tools) + " | adjoint ÷ manual |")
    print("|---|" + "---|" * (len(tools) + 1))
    detail = []
    summary = {}
    for e in evals:
        cells, scores, works = [], {}, {}
        for t in tools:
            p = os.path.join(logs, e, t + ".jsonl")
            if not os.path.exists(p):
                cells.append("—")
                continue
            ok, problems, work, funcs = read(p)
            s = score(e, work, funcs)
            works[t] = work
            summary.setdefault(e, {})[t] = {
                "valid": ok, "problems": problems, "score": s if ok else None,
                "mean_seconds": work,
            }
            if not ok:
                cells.append(f"fail: {problems[0]}")
            elif s is None:
                cells.append("valid")
            else:
                scores[t] = s
                cells.append(f"{s:.4g}")
        a, m = scores.get("adjoint"), scores.get("manual")
        ratio = f"{a / m:.2f}×" if a and m else "—"
        print(f"| {e} | " + " | ".join(cells) + f" | {ratio} |")
        if "adjoint" in works and "manual" in works and e in CLASSIC:
            per = []
            for k, w in works["adjoint"].items():
                wm = works["manual"].get(k)
                if wm:
                    ta, tm = sum(w.values()), sum(wm.values())
                    per.append((tm / ta, k, ta, tm))
            per.sort()
            detail += [f"{e} {k}: adjoint {ta * 1e3:.3g} ms, manual {tm * 1e3:.3g} ms ({r:.2f}×)" for r, k, ta, tm in per[:3]]
    if summary_path:
        with open(summary_path, "w") as f:
            json.dump(summary, f, indent=1, sort_keys=True)
    if detail:
        print("\nWorkloads where adjoint is furthest behind (or least ahead of) manual, per eval:\n")
        print("\n".join(f"- {d}" for d in detail))


if __name__ == "__main__":
    # usage: gradbench_table.py LOGS [SUMMARY.json] — the summary keeps each tool's validity,
    # score and mean time per workload and function (the logs themselves are hundreds of MB).
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
