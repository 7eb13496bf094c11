#!/usr/bin/env python3
"""Is the second core free? A fixed CPU-bound spin timed on each core alone, then on both cores
at once, each process pinned (`os.sched_setaffinity`).

On two free cores the pair runs as fast as either core alone (ratio ≈ 1.0). On a VM whose second
vCPU shares a physical core with another guest, the pair runs slower while the guest's own
`/proc/stat` shows no steal: the 2026-12-06 06:57 `benches/run.sh` run lost every framework's
2-thread speed that way. The benchmark scripts run this before (and after) their runs and the
reports flag a ratio above `SHARED` (see `benches/LOG.md`).

A core that something else keeps busy (in this VM or outside it) shows instead as one core
slower than the other when each runs alone (`imbalance`).

Prints one JSON line: {"cores": [a, b], "alone_s": [a, b], "pair_s": [a, b], "ratio": r,
"imbalance": i, "busy": bool, "threshold": SHARED} (best of three trials each; `ratio` = slower of the pair / slower
alone, `imbalance` = slower alone / faster alone; `busy` when either exceeds `SHARED`).
Standard library only.
"""

import json
import multiprocessing as mp
import os
import sys
import time

# Quiet runs measured up to 1.25 (imbalance, one trial of three); a shared or busy core 1.5–2.
SHARED = 1.35
SPIN = 2_000_000


def spin(cpu, start, out):
    os.sched_setaffinity(0, {cpu})
    if start is not None:
        start.wait()
    t = time.perf_counter()
    x = 0
    for i in range(SPIN):
        x += i
    out.put((cpu, time.perf_counter() - t))


def run(cpus):
    """Seconds each of `cpus` took, all started together."""
    q = mp.Queue()
    start = mp.Barrier(len(cpus)) if len(cpus) > 1 else None
    ps = [mp.Process(target=spin, args=(c, start, q)) for c in cpus]
    for p in ps:
        p.start()
    got = dict(q.get() for _ in ps)
    for p in ps:
        p.join()
    return [got[c] for c in cpus]


def report_lines(probes, what):
    """Markdown bullets for the probes `[(when, result), ...]` of one run (`what`: "the run",
    "the runs"): one line each, then a warning when any found the second core busy. Both
    `report.py` and `workloads_report.py` print these."""
    probes = [(when, p) for when, p in probes if "ratio" in p]
    lines = [f"- Second core {when} {what} (`benches/core_probe.py`): pair/alone {p['ratio']:.2f}, "
             f"core imbalance {p['imbalance']:.2f}" for when, p in probes]
    busy = [(when, p.get("threshold", SHARED)) for when, p in probes if p.get("busy")]
    if busy:
        lines.append(f"- **Warning: the second core was not free {' and '.join(w for w, _ in busy)} {what}** (a ratio "
                     f"above {max(t for _, t in busy)}): 2-thread times are inflated by the machine; rerun before "
                     "reading them.")
    return lines


def main():
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print(json.dumps({"cores": cpus, "skipped": "fewer than two cores"}))
        return
    a, b = cpus[0], cpus[1]
    alone = [min(run([c])[0] for _ in range(3)) for c in (a, b)]
    pairs = [run([a, b]) for _ in range(3)]
    pair = min(pairs, key=max)
    ratio = max(pair) / max(alone)
    imbalance = max(alone) / min(alone)
    print(json.dumps({"cores": [a, b], "alone_s": [round(x, 4) for x in alone],
                      "pair_s": [round(x, 4) for x in pair], "ratio": round(ratio, 3),
                      "imbalance": round(imbalance, 3), "busy": ratio > SHARED or imbalance > SHARED,
                      "threshold": SHARED}))


if __name__ == "__main__":
    mp.set_start_method("fork")
    sys.exit(main())
