#!/usr/bin/env python3
"""Run one GradBench eval against one tool without Docker or the gradbench CLI.

Plays GradBench's intermediary: starts the eval and the tool as subprocesses, forwards each
message of the eval to the tool and each response back, and records everything. Prints one
JSON summary line: per evaluate message its function, description, validity and mean time,
plus the eval's score (1 / sum over workloads of mean primal + mean derivative seconds).

Usage: gradbench_driver.py --eval "CMD" --tool "CMD" [--cwd GRADBENCH] [--log FILE] [--name N]
"""
import argparse
import json
import shlex
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--cwd", default=".")
    ap.add_argument("--log")
    ap.add_argument("--name", default="")
    ap.add_argument("--timeout", type=float, default=3600)
    a = ap.parse_args()
    ev = subprocess.Popen(shlex.split(a.eval), cwd=a.cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    tool = subprocess.Popen(shlex.split(a.tool), cwd=a.cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    log = open(a.log, "w") if a.log else None
    evals = {}
    order = []
    start = time.time()
    error = None
    while True:
        line = ev.stdout.readline()
        if not line:
            break
        msg = json.loads(line)
        if log:
            log.write(json.dumps({"message": msg}) + "\n")
        tool.stdin.write(line if line.endswith("\n") else line + "\n")
        tool.stdin.flush()
        rline = tool.stdout.readline()
        if not rline:
            error = "tool exited"
            break
        resp = json.loads(rline)
        try:
            ev.stdin.write(rline if rline.endswith("\n") else rline + "\n")
            ev.stdin.flush()
        except BrokenPipeError:
            pass
        if log:
            log.write(json.dumps({"response": resp}) + "\n")
        if msg["kind"] == "define" and not resp.get("success"):
            error = f"define failed: {resp.get('error')}"
        if msg["kind"] == "evaluate":
            ts = [t["nanoseconds"] for t in resp.get("timings") or [] if t["name"] == "evaluate"]
            evals[msg["id"]] = {
                "function": msg["function"],
                "description": msg.get("description", ""),
                "success": resp.get("success", False),
                "error": (resp.get("error") or "")[:300],
                "runs": len(ts),
                "mean_s": (sum(ts) / len(ts) / 1e9) if ts else None,
                "valid": None,
            }
            order.append(msg["id"])
        if msg["kind"] == "analysis" and msg["of"] in evals:
            evals[msg["of"]]["valid"] = msg["valid"]
            if not msg["valid"]:
                evals[msg["of"]]["error"] = (msg.get("error") or "")[:300]
        if time.time() - start > a.timeout:
            error = "timeout"
            break
    for p in (ev, tool):
        try:
            p.stdin.close()
        except Exception:
            pass
        try:
            p.wait(timeout=10)
        except Exception:
            p.kill()
    rows = [evals[i] for i in order]
    # Workload = description; score sums the mean time of every function at every workload.
    total = 0.0
    ok = bool(rows) and error is None
    for r in rows:
        if r["mean_s"] is None or not r["success"] or r["valid"] is False:
            ok = False
        else:
            total += r["mean_s"]
    summary = {
        "name": a.name,
        "ok": ok,
        "error": error,
        "all_valid": all(r["valid"] is not False and r["success"] for r in rows),
        "score": (1.0 / total) if ok and total > 0 else None,
        "total_s": total,
        "evaluations": rows,
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
