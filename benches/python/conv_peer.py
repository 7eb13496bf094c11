"""PyTorch side of `cargo run --release -p adjoint-tensor --example conv_bench`: the same
convolution shapes (forward, input gradient, weight gradient) at 1 and 2 threads, medians in ms.

    OMP_PROC_BIND=true OMP_PLACES=cores benches/python/.venv/bin/python benches/python/conv_peer.py [SAMPLES]

Run it right after conv_bench in the same shell command so both see the same machine load.
"""

import statistics
import sys
import time

import torch

SAMPLES = int(sys.argv[1]) if len(sys.argv) > 1 else 15
CASES = [
    ("bench 64x32x28x28*64x32x3x3", (64, 32, 28, 28), (64, 32, 3, 3)),
    ("W3 conv2 64x32x14x14*64x32x3x3", (64, 32, 14, 14), (64, 32, 3, 3)),
    ("W3 conv1 64x1x28x28*32x1x3x3", (64, 1, 28, 28), (32, 1, 3, 3)),
]


def median_ms(f):
    f()
    f()
    ts = []
    for _ in range(SAMPLES):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


torch.manual_seed(0)
with torch.no_grad():
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, xs, ws in CASES:
            x, w = torch.randn(xs), torch.randn(ws)
            gy = torch.randn(torch.nn.functional.conv2d(x, w, padding=1).shape)
            flops = 2.0 * gy.numel() * ws[1] * 9
            runs = {
                "forward": lambda: torch.nn.functional.conv2d(x, w, padding=1),
                "input grad": lambda: torch.nn.grad.conv2d_input(xs, w, gy, padding=1),
                "weight grad": lambda: torch.nn.grad.conv2d_weight(x, ws, gy, padding=1),
            }
            for what, f in runs.items():
                ms = median_ms(f)
                print(f"threads {threads} {name} {what:<11} torch {ms:8.3f} ms ({flops / ms / 1e6:6.1f} GFLOP/s)")
        x = torch.randn(64, 32, 28, 28)
        ms = median_ms(lambda: torch.nn.functional.max_pool2d(x, 2, return_indices=True))
        print(f"threads {threads} max_pool2d [64, 32, 28, 28] k2 torch {ms:8.3f} ms")
