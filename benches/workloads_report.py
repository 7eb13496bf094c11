#!/usr/bin/env python3
"""Render the results of `benches/run` (the workload suite W1-W9 of benches/WORKLOADS.md) as markdown.

    python3 benches/workloads_report.py RESULTS.jsonl [--md BENCHMARKS.md]

RESULTS.jsonl holds the result lines of the three frameworks (`{"workload", "framework", "variant",
"median_s", "p10_s", "p90_s", ...}`) plus the runner's meta lines (`{"meta": "run", ...}` per
framework, `{"meta": "machine", ...}`). Without --md the section is printed on stdout. With --md it
replaces the text between `<!-- workloads:begin -->` and `<!-- workloads:end -->` in that file
(appending markers and section at the end if they are missing) and leaves everything else alone;
the file is written atomically (temporary file in the same folder, then rename). Standard library only.
"""

import argparse
import json
import os
import sys
import tempfile

import core_probe  # benches/, next to this script

BEGIN = "<!-- workloads:begin -->"
END = "<!-- workloads:end -->"
FRAMEWORKS = ["adjoint", "pytorch", "jax"]
NAMES = {"adjoint": "adjoint", "pytorch": "PyTorch", "jax": "JAX"}
ORDER = [
    "W1_add", "W1_chain_fwd_bwd", "W2_mlp_step", "W3_cnn_step", "W4_lstm_step", "W5_arm_bptt",
    "W6_grad", "W6_hvp", "W7_gmm_obj", "W7_gmm_obj_grad", "W8_matmul_grad", "W9_ode_lv_grad",
]
CHECK_TOL = 1e-9  # "the same numbers to ~1e-10 relative"
# Adaptive ODE solvers with different step-size controllers agree to their tolerance, not to rounding.
CHECK_TOL_BY = {"W9_ode_lv_grad": 1e-4}


# Issue 17: the 2-thread step at least this much faster than the 1-thread one, on these workloads.
SPEEDUP_TARGET = 1.6
SPEEDUP_JUDGED = ("W2_mlp_step", "W3_cnn_step")


def load(path):
    rounds, runs, machine, bad = {}, {}, None, 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except ValueError:
                bad += 1
                print(f"workloads_report: {path}:{n}: not JSON, skipped", file=sys.stderr)
                continue
            if not isinstance(d, dict):
                bad += 1
                continue
            if d.get("meta") == "run":
                r = runs.setdefault(d.get("framework"), dict(d, wall_s=0.0))
                if isinstance(d.get("wall_s"), (int, float)):
                    r["wall_s"] += d["wall_s"]
                if d.get("rc", 0) != 0:
                    r["rc"] = d["rc"]
            elif d.get("meta") == "machine":
                machine = d
            elif "workload" in d and "framework" in d:
                try:
                    for k in ("median_s", "p10_s", "p90_s"):
                        d[k] = float(d[k])
                except (KeyError, TypeError, ValueError):
                    bad += 1
                    print(f"workloads_report: {path}:{n}: result without numeric median/p10/p90, skipped", file=sys.stderr)
                    continue
                key = (d["workload"], d["framework"], d.get("variant", ""))
                rounds.setdefault(key, []).append(d)
    return {k: combine(v) for k, v in rounds.items()}, runs, machine, bad


def combine(lines):
    """One result from its rounds (`benches/run --rounds N`): the round whose median is the median of
    the rounds' medians (the lower middle one for an even count), with every round's median in
    `rounds_s`, in run order."""
    if len(lines) == 1:
        return lines[0]
    ranked = sorted(lines, key=lambda d: d["median_s"])
    d = dict(ranked[(len(ranked) - 1) // 2])
    d["rounds_s"] = [x["median_s"] for x in lines]
    return d


def fmt_rounds(d):
    """`median` or `median (rounds a / b / c)`."""
    if "rounds_s" not in d:
        return fmt_t(d["median_s"])
    return f"{fmt_t(d['median_s'])} (rounds {' / '.join(fmt_t(x) for x in d['rounds_s'])})"


def fmt_t(s):
    if s is None:
        return "—"
    a = abs(s)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if a >= scale or unit == "ns":
            v = s / scale
            return f"{v:.3g} {unit}" if v < 1000 else f"{v:.0f} {unit}"
    return f"{s:.3g} s"


def fmt_x(x):
    """A factor without exponent notation: 1.3, 12, 680."""
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}".rstrip("0").rstrip(".")
    return f"{x:.2f}".rstrip("0").rstrip(".")


def fmt_r(r):
    """A ratio with 3 significant digits (no exponent down to 1e-4)."""
    return f"{r:.0f}" if r >= 1000 else f"{r:.3g}"


def fmt_ratio(r, peer):
    if r is None:
        return "—"
    if r <= 0:
        return f"{r:.3g}"
    who = f"adjoint {fmt_x(1 / r)}× faster" if r < 1 else f"{NAMES[peer]} {fmt_x(r)}× faster"
    return f"**{fmt_r(r)}** ({who})"


def md_escape(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


def best(results, workload, fw):
    rows = [d for (w, f, _), d in results.items() if w == workload and f == fw]
    return min(rows, key=lambda d: d["median_s"]) if rows else None


def scaling(results, workloads, w):
    """The 1 -> 2-thread table: every adjoint variant also run on one thread (framework `adjoint1t`,
    `benches/run` runs W2-W4 so), against the same variant on the suite's threads."""
    rows = []
    for wl in workloads:
        for (x, f, var), one in sorted(results.items()):
            two = results.get((wl, "adjoint", var))
            if x == wl and f == "adjoint1t" and two is not None and two["median_s"] > 0:
                rows.append((wl, var, one, two, one["median_s"] / two["median_s"]))
    if not rows:
        return
    w("### adjoint on 1 and 2 threads")
    w("")
    w("The same binary with `RAYON_NUM_THREADS=1`, run in every round beside the 2-thread one (issue 17's target: "
      f"≥ {SPEEDUP_TARGET}× on W2 and W3, judged on their training-step variants, not on the debugging mode).")
    w("")
    w("| workload | variant | 1 thread | 2 threads | speedup | target | met? |")
    w("|---|---|---|---|---|---|---|")
    for wl, var, one, two, sp in rows:
        judged = wl in SPEEDUP_JUDGED and "anomaly" not in var  # not the debugging mode's row
        target = f"≥ {SPEEDUP_TARGET}×" if judged else "(no target)"
        verdict = ("**met**" if sp >= SPEEDUP_TARGET else "**MISSED**") if judged else "—"
        w(f"| `{wl}` | {md_escape(var)} | {fmt_rounds(one)} | {fmt_rounds(two)} | {sp:.2f}× | {target} | {verdict} |")
    w("")


def render(results, runs, machine, bad, results_path):
    out = []
    w = out.append
    m = machine or {}
    quick = m.get("quick")
    w("## Workload suite W1–W9: adjoint vs PyTorch (eager) vs JAX (jit)")
    w("")
    w("Generated by `benches/run` (definitions: `benches/WORKLOADS.md`; do not edit this section by hand, rerun it).")
    w("")
    w(f"- Date (UTC): {m.get('date', '—')}")
    w(f"- Command: `{m.get('command', '—')}`" + (" (quick: fewer samples and warm-ups)" if quick else ""))
    cpu = m.get("cpu_model") or "—"
    w(f"- Machine: {cpu}, nproc {m.get('nproc', '—')}; {m.get('threads', 2)} threads per framework "
      "(adjoint `RAYON_NUM_THREADS`, peers `torch.set_num_threads`/`OMP_NUM_THREADS`/`XLA_FLAGS`, pinned with "
      "`OMP_PROC_BIND=true OMP_PLACES=cores`)")
    w(f"- Load average before: {m.get('load_before', '—')}; after: {m.get('load_after', '—')}"
      + (f"; {m['quiet']}" if m.get("quiet") else ""))
    for line in core_probe.report_lines([(when, m.get(f"core_probe_{when}") or {}) for when in ("before", "after")],
                                        "the runs"):
        w(line)
    vers = m.get("versions") or {}
    vs = ", ".join(f"{k} {v}" for k, v in vers.items())
    w(f"- Versions: adjoint {m.get('commit', '—')}, {m.get('rustc', 'rustc —')}" + (f", {vs}" if vs else ""))
    w(f"- Raw results (git-ignored): `{m.get('results_file', results_path)}`")
    status = []
    missing = m.get("missing") or {}
    for fw in FRAMEWORKS:
        r = runs.get(fw)
        n = sum(1 for k in results if k[1] == fw)
        if fw in missing and n:
            status.append(f"{NAMES[fw]} **incomplete: {md_escape(missing[fw])}**, {n} results")
        elif fw in missing:
            status.append(f"{NAMES[fw]} **missing: {md_escape(missing[fw])}**")
        elif r is None and n == 0:
            status.append(f"{NAMES[fw]} **not run**")
        elif r is not None and r.get("rc", 0) != 0:
            status.append(f"{NAMES[fw]} **failed (exit {r['rc']})**, {n} results")
        else:
            wall = f", {r['wall_s']:.0f} s" if r and isinstance(r.get("wall_s"), (int, float)) else ""
            status.append(f"{NAMES[fw]} ok ({n} results{wall})")
    w("- Frameworks: " + "; ".join(status))
    if bad:
        w(f"- **{bad} malformed line(s) in the results file were skipped.**")
    if (m.get("rounds") or 1) > 1:
        w(f"- **{m['rounds']} rounds**, the frameworks interleaved (adjoint, PyTorch, JAX, adjoint, …): each figure is "
          "the median over the rounds of the per-round median, each round's median beside it; p10–p90 are the "
          "median round's.")
    w("- Times are seconds per iteration (W1: per op): median (p10–p90) over "
      + ("≥ 5 samples after 2 warm-ups" if quick else "≥ 20 samples after 5 warm-ups")
      + "; a sample is the mean over a batch of iterations that lasts ≥ 10 ms. JAX's first call (tracing + "
        "compilation) is not in the median; it is shown as *compile*.")
    w("- **Ratio = adjoint's best variant ÷ the peer's best variant (medians): < 1 means adjoint is faster.** "
      "The machine is shared; ratios from one run are meaningful, absolute times drift between runs.")
    w("")

    workloads = [x for x in ORDER if any(k[0] == x for k in results)]
    workloads += sorted({k[0] for k in results} - set(ORDER))
    if not workloads:
        w("_No results._")
        w("")
        return "\n".join(out)

    w("### Summary")
    w("")
    w("| workload | adjoint (best) | PyTorch (best) | JAX (best) | adjoint / PyTorch | adjoint / JAX |")
    w("|---|---|---|---|---|---|")
    for wl in workloads:
        b = {fw: best(results, wl, fw) for fw in FRAMEWORKS}
        cells = []
        for fw in FRAMEWORKS:
            d = b[fw]
            cells.append("—" if d is None else f"{fmt_t(d['median_s'])} ({md_escape(d.get('variant', ''))})")
        ratios = []
        for peer in ("pytorch", "jax"):
            if b["adjoint"] is None or b[peer] is None or b[peer]["median_s"] <= 0:
                ratios.append("—")
            else:
                ratios.append(fmt_ratio(b["adjoint"]["median_s"] / b[peer]["median_s"], peer))
        w(f"| `{wl}` | " + " | ".join(cells + ratios) + " |")
    w("")

    scaling(results, workloads, w)

    for wl in workloads:
        w(f"### {wl}")
        w("")
        w("| framework | variant | median | p10–p90 | samples × batch | compile | notes |")
        w("|---|---|---|---|---|---|---|")
        for fw in FRAMEWORKS:
            rows = sorted((d for (x, f, _), d in results.items() if x == wl and f == fw), key=lambda d: d["median_s"])
            if not rows:
                w(f"| {NAMES[fw]} | — | — | — | — | — | {'missing: ' + md_escape(missing[fw]) if fw in missing else 'no result'} |")
                continue
            for i, d in enumerate(rows):
                if "samples" in d and "batch" in d:
                    sb = f"{d['samples']} × {d['batch']}"
                elif "batch" in d:
                    sb = f"batch {d['batch']}"
                else:
                    sb = "—"
                comp = fmt_t(d["compile_s"]) if isinstance(d.get("compile_s"), (int, float)) else "—"
                var = md_escape(d.get("variant", ""))
                if len(rows) > 1 and i == 0:
                    var += " (best)"
                w(f"| {NAMES[fw]} | {var} | {fmt_rounds(d)} | {fmt_t(d['p10_s'])}–{fmt_t(d['p90_s'])} | "
                  f"{sb} | {comp} | {md_escape(d.get('notes', ''))} |")
        b = {fw: best(results, wl, fw) for fw in FRAMEWORKS}
        parts = []
        for peer in ("pytorch", "jax"):
            if b["adjoint"] is not None and b[peer] is not None and b[peer]["median_s"] > 0:
                r = b["adjoint"]["median_s"] / b[peer]["median_s"]
                parts.append(f"adjoint / {NAMES[peer]} = {fmt_ratio(r, peer)}")
            else:
                parts.append(f"adjoint / {NAMES[peer]} = —")
        w("")
        w("Ratio (best variants; < 1 means adjoint is faster): " + "; ".join(parts) + ".")
        same = []
        for (x, f, var), d in sorted(results.items()):
            if x != wl or f != "adjoint":
                continue
            for peer in ("pytorch", "jax"):
                pd = results.get((wl, peer, var))
                if pd is not None and pd["median_s"] > 0 and (b[peer] is not pd or b["adjoint"] is not d):
                    same.append(f"`{md_escape(var)}`: adjoint / {NAMES[peer]} = {fmt_ratio(d['median_s'] / pd['median_s'], peer)}")
        if same:
            w("Same-variant ratios (like for like): " + "; ".join(same) + ".")
        w("")
        checks = [(k, d) for k, d in results.items() if k[0] == wl and isinstance(d.get("check"), dict)]
        if checks:
            checks.sort(key=lambda kd: (FRAMEWORKS.index(kd[0][1]) if kd[0][1] in FRAMEWORKS else 9, kd[0][2]))
            keys = []
            for _, d in checks:
                keys += [k for k in d["check"] if k not in keys]
            tol = CHECK_TOL_BY.get(wl, CHECK_TOL)
            w(f"Check values ({wl}; must agree across frameworks to {tol:g} relative):")
            w("")
            w("| framework | variant | " + " | ".join(f"`{k}`" for k in keys) + " |")
            w("|---|---|" + "---|" * len(keys))
            for (x, fw, var), d in checks:
                vals = []
                for k in keys:
                    v = d["check"].get(k)
                    vals.append(repr(float(v)) if isinstance(v, (int, float)) else "—")
                w(f"| {NAMES.get(fw, fw)} | {md_escape(var)} | " + " | ".join(vals) + " |")
            frameworks_with = {kd[0][1] for kd in checks}
            diffs = []
            worst = 0.0
            for k in keys:
                vs = [float(d["check"][k]) for _, d in checks if isinstance(d["check"].get(k), (int, float))]
                if len(vs) < 2:
                    diffs.append(f"`{k}` —")
                    continue
                scale = max(abs(v) for v in vs)
                rel = (max(vs) - min(vs)) / scale if scale > 0 else 0.0
                worst = max(worst, rel)
                diffs.append(f"`{k}` {rel:.2g}")
            verdict = "agree" if worst <= tol else "**DISAGREE**"
            w("")
            w(f"Max relative difference across {len(checks)} result(s) from {len(frameworks_with)} framework(s): "
              + ", ".join(diffs) + f" → {verdict} (tolerance {tol:g}).")
            w("")
    return "\n".join(out).rstrip("\n")


def write_md(path, section, begin=BEGIN, end=END, who="workloads_report"):
    """Replace the text between `begin` and `end` in the markdown file at `path` with `section`
    (appending markers and section when both are missing), leaving the rest alone; written
    atomically. `benches/dist_report.py` uses it with its own markers."""
    BEGIN, END = begin, end
    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    block = f"{BEGIN}\n{section}\n{END}"
    b, e = text.find(BEGIN), text.find(END)
    if b >= 0 and e > b:
        if text.find(BEGIN, b + 1) >= 0 or text.find(END, e + 1) >= 0:
            raise SystemExit(f"{who}: {path} has the markers more than once; not touching it")
        new = text[:b] + block + text[e + len(END):]
    elif b < 0 and e < 0:
        sep = "" if not text else ("\n" if text.endswith("\n") else "\n\n")
        new = text + sep + block + "\n"
    else:
        raise SystemExit(f"{who}: {path} has only one of {BEGIN} / {END} (or in the wrong order); not touching it")
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{who}-", suffix=".md", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--md", help="markdown file whose workloads section to replace (default: print to stdout)")
    a = ap.parse_args()
    results, runs, machine, bad = load(a.results)
    section = render(results, runs, machine, bad, a.results)
    if a.md:
        write_md(a.md, section)
        print(f"workloads_report: wrote {len(results)} results into {a.md}", file=sys.stderr)
    else:
        print(section)


if __name__ == "__main__":
    main()
