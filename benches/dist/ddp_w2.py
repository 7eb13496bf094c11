"""PyTorch DDP (gloo) on the W2 step, the peer of `adjoint-dist-worker bench-step`.

    python benches/dist/ddp_w2.py [--ranks 2] [--global-batch 128] [--steps 50]

Each rank: MLP 784-512-512-10 (ReLU), its rows of a global batch of N(0,1) inputs with labels
(7 i) mod 10, cross-entropy, Adam lr 1e-3 (`fused=True`, PyTorch's fast CPU path, as the
workload suite's W2 peer), one thread per rank, each rank pinned to its own core; DDP averages
the gradients (gloo allreduce, 25 MB buckets, overlapped with backward; gradients as views of
the buckets, DDP's copy-free option). Prints rank 0's median step time (forward, backward with
allreduce, update), with a barrier before each step as adjoint's bench. With --ranks 1 and --threads 2: the one-process, two-thread baseline without
DDP (run it with OMP_PROC_BIND=true OMP_PLACES=cores, as benches/dist.sh does).
"""
import argparse
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def batch(rows):
    g = torch.Generator().manual_seed(9)
    x = torch.randn(128, 784, generator=g)[rows]
    y = torch.tensor([(7 * i) % 10 for i in rows])
    return x, y


def run(rank, args):
    if args.ranks > 1:
        # One core per rank (adjoint's ranks are not pinned: this only helps the peer).
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[rank % len(cores)]})
    torch.set_num_threads(args.threads)
    world = args.ranks
    per = args.global_batch // world
    x, y = batch(list(range(rank * per, (rank + 1) * per)))
    m = model()
    if world > 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29533")
        dist.init_process_group("gloo", rank=rank, world_size=world)
        m = nn.parallel.DistributedDataParallel(m, gradient_as_bucket_view=True)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, fused=True)
    ce = nn.CrossEntropyLoss()
    times = []
    for i in range(args.steps + 3):
        if world > 1:
            dist.barrier()
        t = time.perf_counter()
        opt.zero_grad()
        loss = ce(m(x), y)
        loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    if rank == 0:
        print(f"pytorch ranks={world} threads={args.threads} step_ms {med * 1e3:.3f}", flush=True)
    if world > 1:
        # Tear down in order: every rank done, the DDP reducer (which owns the process group's
        # communication hooks) dropped, then the group. Destroying the group under a live DDP
        # model aborted a rank at exit now and then ("terminate called without an active
        # exception", twice on 2026-12-07).
        dist.barrier()
        del opt, m
        dist.destroy_process_group()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--global-batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=50)
    a = p.parse_args()
    if a.ranks == 1:
        run(0, a)
    else:
        mp.spawn(run, args=(a,), nprocs=a.ranks, join=True)
