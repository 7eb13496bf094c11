"""The alpha-beta model of docs/distributed.md: predicted step time and efficiency of the W2 and
W3 steps at 8, 64 and 512 ranks on a 100 Gb/s network, from the measured numbers given below
(benches/dist.sh prints them; edit MEASURED after a re-measure and rerun).

    python3 benches/dist/model.py

Ring allreduce of M bytes over p ranks, in buckets of at most 25 MiB:
    T_ar(M, p) = sum over buckets b of [ 2 (p - 1) alpha + 2 (p - 1) / p * M_b / beta ]
Step time without overlap (adjoint today: the buckets start after the backward sweep):
    T_step = T_compute(b) + T_ar(M, p)
With DDP-style overlap (buckets start during the backward sweep; the last one cannot hide, so a
model of one bucket gains nothing):
    T_step = T_compute(b) + max(T_ar(M, p) - f_bwd * T_compute(b), T_ar(last bucket, p))
Efficiency = T_compute(b) / T_step (weak scaling: every rank keeps batch b).
"""

MEASURED = {
    # Per-message software latency of one allreduce step (s): half the measured 8-byte
    # allreduce time on 2 local ranks (a 2-rank ring is 2 latency steps), see BENCHMARKS.md.
    "alpha_sw": None,
    # Compute time of one step, 1 thread, at the per-rank batch (s): {batch: seconds}.
    "W2": {},
    "W3": {},
}
NETWORK = {"alpha_wire": 2e-6, "beta": 100e9 / 8}  # 100 Gb/s line rate, ~2 us one-way latency
MODEL_BYTES = {"W2": 669_706 * 4, "W3": 421_642 * 4}  # f32 gradients
BUCKET = 25 * 1024 * 1024
F_BWD = 2 / 3  # share of a step's compute that is the backward pass (2 of 3 matmul passes)


def allreduce(m, p, alpha, beta):
    t, left = 0.0, m
    while left > 0:
        mb = min(left, BUCKET)
        t += 2 * (p - 1) * alpha + 2 * (p - 1) / p * mb / beta
        left -= mb
    return t


def table(measured):
    alpha = measured["alpha_sw"] + NETWORK["alpha_wire"]
    beta = NETWORK["beta"]
    rows = []
    for w in ("W2", "W3"):
        m = MODEL_BYTES[w]
        for b, tc in sorted(measured[w].items(), reverse=True):
            for p in (8, 64, 512):
                ar = allreduce(m, p, alpha, beta)
                last = allreduce(min(m, BUCKET), p, alpha, beta)
                plain = tc + ar
                overlap = tc + max(ar - F_BWD * tc, last)
                rows.append((w, b, p, tc * 1e3, ar * 1e3, plain * 1e3, tc / plain, overlap * 1e3, tc / overlap))
    return rows


if __name__ == "__main__":
    import sys

    if MEASURED["alpha_sw"] is None:
        sys.exit("fill MEASURED from the benchmark output first")
    print("| step | batch/rank | ranks | compute ms | allreduce ms | step ms (no overlap) | efficiency | step ms (overlap) | efficiency |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table(MEASURED):
        print("| %s | %d | %d | %.2f | %.3f | %.2f | %.0f%% | %.2f | %.0f%% |" % (r[0], r[1], r[2], r[3], r[4], r[5], 100 * r[6], r[7], 100 * r[8]))
