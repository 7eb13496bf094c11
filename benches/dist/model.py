"""The alpha-beta model of docs/distributed.md: predicted step time and efficiency of the W2 and
W3 steps at 8, 64 and 512 ranks on a 100 Gb/s network, from the numbers measured on the
development machine (benches/dist.sh prints them; edit MEASURED after a re-measure, rerun).

    python3 benches/dist/model.py

Ring allreduce of M bytes over p ranks, in buckets of at most 25 MiB (each bucket pays the
latency term):
    T_ar(M, p) = sum over buckets [ 2 (p - 1) alpha + 2 (p - 1) / p * M_b * (1 / beta + 1 / beta_mem) ]
alpha = measured software latency per ring step + the wire's; beta = the link; beta_mem = the
memory traffic of the reduction, taken (pessimistically) from the 2-rank shared-memory bus
bandwidth measured here. DataParallel adds packing and unpacking, M / beta_pack, independent of p.
Step time, buckets started after the backward sweep (step) or during it (train_step: all but the
last bucket can hide behind the sweep's remaining backward work, F_BWD of the compute):
    T_step = T_c(b) + T_pack + T_ar                          (no overlap)
    T_step = T_c(b) + T_pack + max(T_ar - F_BWD T_c(b), T_ar(last bucket))   (overlap)
W2 and W3 fit in one 25 MiB bucket, so for them the two are equal.
Weak scaling: every rank keeps the batch b; efficiency = T_c(b) / T_step.
Strong scaling: a fixed global batch G split over p ranks; efficiency relative to 8 ranks
= 8 T_step(8) / (p T_step(p)).
"""

MEASURED = {
    # benches/dist.sh, runs/dist-20261207T073629Z (AMD EPYC host, load 0.25-0.47 before the parts).
    "alpha_sw": 1.42e-6 / 2,  # 16-byte allreduce on 2 local ranks (a 2-rank ring: 2 latency steps)
    "beta_mem": 3.42e9,  # best 2-rank bus bandwidth (1 MiB)
    "beta_pack": 11.7e9,  # DataParallel::allreduce_mean minus the raw allreduce, 2 MiB: 2 MiB / 0.18 ms
    # Compute of one step on 1 thread (s) by per-rank batch: forward, backward, optimizer update
    # (median of 40 / 20 steps).
    "W2": {128: 14.2e-3, 16: 3.6e-3, 2: 2.9e-3},
    "W3": {64: 65.6e-3, 8: 10.8e-3, 1: 3.4e-3},
}
NETWORK = {"alpha_wire": 2e-6, "beta": 100e9 / 8}  # 100 Gb/s line rate; ~2 us per hop (RDMA-class)
MODEL_BYTES = {"W2": 669_706 * 4, "W3": 421_642 * 4}  # f32 gradients
GLOBAL = {"W2": 1024, "W3": 512}  # strong scaling: global batch split over 8 / 64 / 512 ranks
BUCKET = 25 * 1024 * 1024
F_BWD = 2 / 3  # the backward pass's share of a step (2 of its 3 matrix-product passes)
RANKS = (8, 64, 512)


def allreduce(m, p):
    alpha = MEASURED["alpha_sw"] + NETWORK["alpha_wire"]
    per_byte = 1 / NETWORK["beta"] + 1 / MEASURED["beta_mem"]
    t, left = 0.0, m
    while left > 0:
        mb = min(left, BUCKET)
        t += 2 * (p - 1) * alpha + 2 * (p - 1) / p * mb * per_byte
        left -= mb
    return t


def step(w, b, p, overlap):
    m, tc = MODEL_BYTES[w], MEASURED[w][b]
    ar = allreduce(m, p)
    comm = max(ar - F_BWD * tc, allreduce(min(m, BUCKET), p)) if overlap else ar
    return tc, ar, tc + m / MEASURED["beta_pack"] + comm


def rows():
    out = []
    for w in ("W2", "W3"):
        weak_b = max(MEASURED[w])
        for p in RANKS:
            tc, ar, t = step(w, weak_b, p, False)
            out.append((w, "weak", weak_b * p, weak_b, p, tc, ar, t, tc / t))
        t8 = None
        for p in RANKS:
            b = GLOBAL[w] // p if p > 8 else GLOBAL[w] // 8
            b = max(b, min(MEASURED[w]))
            tc, ar, t = step(w, b, p, False)
            t8 = t8 or t
            out.append((w, "strong", GLOBAL[w], b, p, tc, ar, t, 8 * t8 / (p * t)))
    return out


if __name__ == "__main__":
    print("| step | scaling | global batch | batch/rank | ranks | compute ms | allreduce ms | step ms | efficiency |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows():
        print("| %s | %s | %d | %d | %d | %.1f | %.3f | %.2f | %.0f%% |" % (r[0], r[1], r[2], r[3], r[4], r[5] * 1e3, r[6] * 1e3, r[7] * 1e3, 100 * r[8]))
