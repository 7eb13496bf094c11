"""PyTorch (eager) half of the workload suite: `torch_workloads(timer, names)` returns one
function per workload, each timing itself and printing its JSON line (see `workloads.py`)."""

import math
import time

from wl_common import (ARM, CHAIN_STEPS, GMM_SIZE, THREADS, W1_GRAD_OPS, WORKLOADS, arm_loss_torch, emit, log,
                       make_gmm_objective)


def torch_setup():
    import torch

    torch.set_num_threads(THREADS)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    log(f"pytorch {torch.__version__}, num_threads {torch.get_num_threads()}")
    return torch


def torch_train_setup(which):
    """W2-W4 for PyTorch: (model, optimizer, x, loss_fn, y) with PyTorch's default initialisation."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def labels(n):
        return (torch.arange(n) * 7) % 10

    if which == "W2":
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
        x, y = torch.randn(128, 784), labels(128)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3, fused=True), x, lambda o: F.cross_entropy(o, y), y
    if which == "W3":
        torch.manual_seed(1)
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10),
        )
        x, y = torch.randn(64, 1, 28, 28), labels(64)
        return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=True), x, lambda o: F.cross_entropy(o, y), y

    class LstmHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 128, batch_first=True)
            self.head = nn.Linear(128, 1)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.head(h[-1])

    torch.manual_seed(2)
    model = LstmHead()
    x, y = torch.randn(32, 64, 8), torch.randn(32, 1)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3, fused=True), x, lambda o: F.mse_loss(o, y), y


def torch_train_step(model, opt, x, loss_fn):
    """One full step: zero grads, forward, backward, update."""

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x))
        loss.backward()
        opt.step()
        return loss

    return step


def torch_workloads(timer, names):
    import numpy as np
    import torch
    import torch.nn.functional as F

    FW = "pytorch"

    def W1_add():
        x = torch.ones(1)

        def batch(n):
            t0 = time.perf_counter()
            for _ in range(n):
                x + 1
            return time.perf_counter() - t0

        emit("W1_add", FW, "eager", timer.measure(batch),
             "y = x + 1 on a [1] f32 tensor without requires_grad; seconds per op")
        xg = torch.ones(1, requires_grad=True)

        def under_grad():
            for _ in range(W1_GRAD_OPS):
                y = xg + 1
            return torch.autograd.grad(y.sum(), xg)

        emit("W1_add", FW, "grad", timer.measure_call(under_grad, per=W1_GRAD_OPS),
             f"{W1_GRAD_OPS} x (y = x + 1) on a [1] f32 tensor with requires_grad=True (each records a graph node), "
             f"then torch.autograd.grad of the last y.sum(); time / {W1_GRAD_OPS}")

    def W1_chain_fwd_bwd():
        x = torch.tensor([0.5], requires_grad=True)

        def it():
            y = x
            for _ in range(CHAIN_STEPS):
                y = y * 1.0001 + 0.0001
            return torch.autograd.grad(y.sum(), x)

        emit("W1_chain_fwd_bwd", FW, "eager", timer.measure_call(it, per=2 * CHAIN_STEPS),
             "autograd: 1,000 x (mul, add) on a [1] f32 tensor, then torch.autograd.grad of y.sum(); time / 2000 ops")

    def W2_mlp_step():
        step = torch_train_step(*torch_train_setup("W2")[:4])
        emit("W2_mlp_step", FW, "eager", timer.measure_call(step),
             "nn.Sequential + F.cross_entropy + torch.optim.Adam(fused=True) (the default on CPU is the slower per-tensor loop); "
             "zero_grad(set_to_none)")

    def W3_cnn_step():
        step = torch_train_step(*torch_train_setup("W3")[:4])
        emit("W3_cnn_step", FW, "eager", timer.measure_call(step),
             "nn.Conv2d/MaxPool2d (NCHW) + torch.optim.SGD(momentum=0.9, fused=True)")

    def W4_lstm_step():
        step = torch_train_step(*torch_train_setup("W4")[:4])
        emit("W4_lstm_step", FW, "eager", timer.measure_call(step), "nn.LSTM (fused CPU kernel) + nn.Linear + Adam(fused=True)")

    arm_loss = arm_loss_torch

    def arm_check():
        tau0 = torch.zeros(ARM["steps"], 2, dtype=torch.float64, requires_grad=True)
        loss = arm_loss(tau0)
        (g,) = torch.autograd.grad(loss, tau0)
        return {"loss": loss.item(), "grad_norm": float(np.linalg.norm(g.numpy().astype(np.float64)))}

    def W5_arm_bptt():
        check = arm_check()
        log(f"  W5 check (f64, tau=0): {check}")
        torch.manual_seed(5)
        tau = (0.1 * torch.randn(ARM["steps"], 2)).requires_grad_(True)

        def it():
            loss = arm_loss(tau)
            return loss, torch.autograd.grad(loss, tau)

        emit("W5_arm_bptt", FW, "eager", timer.measure_call(it),
             "python loop of 500 steps on 0-d f32 tensors (tau unbound into 0-d views), torch.autograd.grad",
             check=check)

    def w6_setup():
        torch.manual_seed(6)
        A = torch.randn(2000, 1000) / math.sqrt(1000.0)
        x = torch.randn(1000)
        v = torch.randn(1000)

        def f(x):
            return F.softplus(A @ x).sum() + 0.5 * (x * x).sum()

        return f, x, v

    def W6_grad():
        f, x, _ = w6_setup()
        xr = x.clone().requires_grad_(True)

        def it():
            val = f(xr)
            return val, torch.autograd.grad(val, xr)

        emit("W6_grad", FW, "eager", timer.measure_call(it), "F.softplus; value + torch.autograd.grad")

    def W6_hvp():
        from torch.func import grad, jvp

        f, x, v = w6_setup()
        emit("W6_hvp", FW, "eager", timer.measure_call(lambda: jvp(grad(f), (x,), (v,))[1]),
             "forward-over-reverse: torch.func.jvp(torch.func.grad(f))")
        xr = x.clone().requires_grad_(True)

        def dbl():
            (g,) = torch.autograd.grad(f(xr), xr, create_graph=True)
            return torch.autograd.grad(g @ v, xr)

        emit("W6_hvp", FW, "eager_double_backward", timer.measure_call(dbl),
             "reverse-over-reverse: autograd.grad(create_graph=True) then grad of g.v")

    def w7_setup():
        d, K, n = GMM_SIZE["d"], GMM_SIZE["K"], GMM_SIZE["n"]
        torch.manual_seed(7)
        alphas = 0.1 * torch.randn(K, dtype=torch.float64)
        means = torch.randn(K, d, dtype=torch.float64)
        icf = 0.1 * torch.randn(K, d * (d + 1) // 2, dtype=torch.float64)
        x = torch.randn(n, d, dtype=torch.float64)
        return make_gmm_objective("torch", d, K, n), alphas, means, icf, x

    def W7_gmm_obj():
        f, alphas, means, icf, x = w7_setup()
        emit("W7_gmm_obj", FW, "eager", timer.measure_call(lambda: f(alphas, means, icf, x)),
             "f64; d=10 K=25 n=10000; Q(x-mu) as x@Q^T - Q mu (one GEMM), torch.logsumexp; no grad tracking")

    def W7_gmm_obj_grad():
        f, alphas, means, icf, x = w7_setup()
        ps = [p.clone().requires_grad_(True) for p in (alphas, means, icf)]

        def it():
            val = f(*ps, x)
            return val, torch.autograd.grad(val, ps)

        emit("W7_gmm_obj_grad", FW, "eager", timer.measure_call(it),
             "f64; objective + torch.autograd.grad w.r.t. alphas, means, icf")

    def W8_matmul_grad():
        torch.manual_seed(8)
        A = torch.randn(1024, 1024, requires_grad=True)
        B = torch.randn(1024, 1024, requires_grad=True)

        def it():
            loss = (A @ B).sum()
            return loss, torch.autograd.grad(loss, (A, B))

        emit("W8_matmul_grad", FW, "eager", timer.measure_call(it), "(A@B).sum() + torch.autograd.grad for A and B")

    return {k: v for k, v in locals().items() if k in WORKLOADS}


# ----------------------------------------------------------------------------------------------
