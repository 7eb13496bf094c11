"""JAX (jit) half of the workload suite: `jax_workloads(timer, names)` returns one function per
workload, each timing itself and printing its JSON line (see `workloads.py`)."""

import math
import os
import time

from wl_common import (ARM, CHAIN_STEPS, GMM_SIZE, W1_GRAD_OPS, WORKLOADS, arm_loss_jax, emit, first_call,
                       gmm_inputs, log, make_gmm_objective)


def jax_setup():
    import jax

    jax.config.update("jax_platforms", "cpu")
    log(f"jax {jax.__version__}, devices {jax.devices()}, XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}")
    return jax


def jax_train_defs():
    """W2-W4 for JAX in plain jax.numpy: the three losses, Adam and SGD with momentum (PyTorch's
    update rules). Parameters are pytrees; Linear weights are stored [in, out], convolutions HWIO."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    tree_map = jax.tree_util.tree_map

    def cross_entropy(logits, y):
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def mlp_loss(p, x, y):
        h = jax.nn.relu(x @ p[0]["w"] + p[0]["b"])
        h = jax.nn.relu(h @ p[1]["w"] + p[1]["b"])
        return cross_entropy(h @ p[2]["w"] + p[2]["b"], y)

    dn = ("NHWC", "HWIO", "NHWC")

    def conv(x, p):
        return lax.conv_general_dilated(x, p["w"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=dn) + p["b"]

    def pool(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    def cnn_loss(p, x, y):
        h = pool(jax.nn.relu(conv(x, p["c1"])))
        h = pool(jax.nn.relu(conv(h, p["c2"])))
        h = h.reshape(h.shape[0], -1)  # flattened (h, w, c)
        h = jax.nn.relu(h @ p["l1"]["w"] + p["l1"]["b"])
        return cross_entropy(h @ p["l2"]["w"] + p["l2"]["b"], y)

    def lstm_loss(p, x, y):
        H = p["w_hh"].shape[1]
        xs = jnp.swapaxes(x, 0, 1)  # [T, B, in]
        xp = xs @ p["w_ih"].T + p["b_ih"] + p["b_hh"]  # input projection of all steps at once

        def cell(carry, xt):
            h, c = carry
            gates = xt + h @ p["w_hh"].T
            i, f, g, o = jnp.split(gates, 4, axis=-1)  # PyTorch's gate order
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), None

        z = jnp.zeros((x.shape[0], H), x.dtype)
        (h, _), _ = lax.scan(cell, (z, z), xp)
        out = h @ p["head"]["w"] + p["head"]["b"]
        return jnp.mean((out - y) ** 2)

    def adam_init(params):
        return (params, tree_map(jnp.zeros_like, params), tree_map(jnp.zeros_like, params), jnp.zeros((), jnp.float32))

    def adam_step(loss_fn, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        def step(state, x, y):
            params, m, v, t = state
            loss, g = jax.value_and_grad(loss_fn)(params, x, y)
            t = t + 1.0
            m = tree_map(lambda m, g: b1 * m + (1.0 - b1) * g, m, g)
            v = tree_map(lambda v, g: b2 * v + (1.0 - b2) * g * g, v, g)
            step_size = lr / (1.0 - b1**t)
            bc2 = jnp.sqrt(1.0 - b2**t)
            params = tree_map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) / bc2 + eps), params, m, v)
            return (params, m, v, t), loss

        return step

    def sgd_init(params):
        return (params, tree_map(jnp.zeros_like, params))

    def sgd_momentum_step(loss_fn, lr=0.01, momentum=0.9):
        def step(state, x, y):
            params, buf = state
            loss, g = jax.value_and_grad(loss_fn)(params, x, y)
            buf = tree_map(lambda b, g: momentum * b + g, buf, g)  # = PyTorch's SGD (buf starts at 0)
            params = tree_map(lambda p, b: p - lr * b, params, buf)
            return (params, buf), loss

        return step

    return dict(mlp_loss=mlp_loss, cnn_loss=cnn_loss, lstm_loss=lstm_loss, adam_init=adam_init,
                adam_step=adam_step, sgd_init=sgd_init, sgd_momentum_step=sgd_momentum_step)


def jax_workloads(timer, names):
    import jax
    import jax.numpy as jnp
    import numpy as np

    FW = "jax"

    def jit_emit(workload, variant, fn, args, notes, per=1, check_of=None, **extra):
        """Time a jit-compiled fn(*args) (block_until_ready inside the timed region); `check_of`
        maps its output to the `check` values (computed after the first call, so compile_s is
        the real first-call time)."""
        jf = jax.jit(fn)
        compile_s = first_call(lambda: jax.block_until_ready(jf(*args)))
        if check_of is not None:
            extra["check"] = check_of(jf(*args))
        st = timer.measure_call(lambda: jax.block_until_ready(jf(*args)), per=per)
        emit(workload, FW, variant, st, notes, compile_s=compile_s, **extra)
        return jf

    def W1_add():
        x = jnp.ones(1, dtype=jnp.float32)

        def batch(n):
            t0 = time.perf_counter()
            for _ in range(n):
                (x + 1).block_until_ready()
            return time.perf_counter() - t0

        emit("W1_add", FW, "eager", timer.measure(batch),
             "eager op dispatch (no jit) of y = x + 1 on a [1] f32 array, block_until_ready per op; seconds per op")

        def adds(x):
            for _ in range(W1_GRAD_OPS):
                y = x + 1
            return y.sum()

        g = jax.grad(adds)
        emit("W1_add", FW, "grad", timer.measure_call(lambda: jax.block_until_ready(g(x)), per=W1_GRAD_OPS),
             f"jax.grad (no jit) of a function doing {W1_GRAD_OPS} x (y = x + 1) on a [1] f32 array, then y.sum(); "
             f"time of the whole grad call / {W1_GRAD_OPS}")

    def W1_chain_fwd_bwd():
        def chain(x):
            for _ in range(CHAIN_STEPS):
                x = x * 1.0001 + 0.0001
            return x.sum()

        g = jax.grad(chain)
        x = jnp.asarray([0.5], dtype=jnp.float32)
        emit("W1_chain_fwd_bwd", FW, "eager",
             timer.measure_call(lambda: jax.block_until_ready(g(x)), per=2 * CHAIN_STEPS),
             "jax.grad without jit (traces and dispatches op by op on every call) of 1,000 x (mul, add) on a [1] f32 "
             "array + sum; time / 2000 ops")
        jit_emit("W1_chain_fwd_bwd", "jit", g, (x,),
                 "jax.jit(jax.grad(chain)): XLA fuses/simplifies the whole chain; time / 2000 ops",
                 per=2 * CHAIN_STEPS)

    # -- training steps: models and optimizers in plain jax.numpy (jax_train_defs), one jit per step --
    T = jax_train_defs()

    def uniform(rng, shape, fan_in):
        b = 1.0 / math.sqrt(fan_in)
        return jnp.asarray(rng.uniform(-b, b, shape).astype(np.float32))

    def linear_init(rng, fan_in, fan_out):  # PyTorch's default init; weight stored [in, out]
        return {"w": uniform(rng, (fan_in, fan_out), fan_in), "b": uniform(rng, (fan_out,), fan_in)}

    def time_step(workload, step, state, x, y, notes):
        jstep = jax.jit(step, donate_argnums=(0,))
        box = {"s": state}

        def call():
            box["s"], loss = jstep(box["s"], x, y)
            jax.block_until_ready((box["s"], loss))

        compile_s = first_call(call)
        emit(workload, FW, "jit", timer.measure_call(call), notes, compile_s=compile_s)

    def W2_mlp_step():
        rng = np.random.default_rng(0)
        params = [linear_init(rng, 784, 512), linear_init(rng, 512, 512), linear_init(rng, 512, 10)]
        x = jnp.asarray(rng.standard_normal((128, 784)).astype(np.float32))
        y = jnp.asarray((np.arange(128) * 7) % 10)
        time_step("W2_mlp_step", T["adam_step"](T["mlp_loss"]), T["adam_init"](params), x, y,
                  "whole step (value_and_grad + Adam in jax.numpy) in one jax.jit, state buffers donated")

    def W3_cnn_step():
        rng = np.random.default_rng(1)
        params = {
            "c1": {"w": uniform(rng, (3, 3, 1, 32), 9), "b": uniform(rng, (32,), 9)},
            "c2": {"w": uniform(rng, (3, 3, 32, 64), 9 * 32), "b": uniform(rng, (64,), 9 * 32)},
            "l1": linear_init(rng, 3136, 128),
            "l2": linear_init(rng, 128, 10),
        }
        x = jnp.asarray(rng.standard_normal((64, 28, 28, 1)).astype(np.float32))  # NHWC
        y = jnp.asarray((np.arange(64) * 7) % 10)
        time_step("W3_cnn_step", T["sgd_momentum_step"](T["cnn_loss"]), T["sgd_init"](params), x, y,
                  "lax.conv_general_dilated in NHWC/HWIO (XLA CPU's native layout; input given as [64,28,28,1]), "
                  "lax.reduce_window max pool, SGD momentum in jax.numpy; one jax.jit, state donated")

    def W4_lstm_step():
        rng = np.random.default_rng(2)
        H = 128
        params = {
            "w_ih": uniform(rng, (4 * H, 8), H), "w_hh": uniform(rng, (4 * H, H), H),
            "b_ih": uniform(rng, (4 * H,), H), "b_hh": uniform(rng, (4 * H,), H),
            "head": linear_init(rng, H, 1),
        }
        x = jnp.asarray(rng.standard_normal((32, 64, 8)).astype(np.float32))
        y = jnp.asarray(rng.standard_normal((32, 1)).astype(np.float32))
        time_step("W4_lstm_step", T["adam_step"](T["lstm_loss"]), T["adam_init"](params), x, y,
                  "LSTM via lax.scan (gate order i,f,g,o; input projection hoisted), Adam in jax.numpy; one jax.jit, state donated")

    arm_loss = arm_loss_jax

    def arm_check():
        with jax.enable_x64(True):
            vg = jax.jit(jax.value_and_grad(arm_loss))
            loss, g = vg(jnp.zeros((ARM["steps"], 2), dtype=jnp.float64))
            assert loss.dtype == jnp.float64
            return {"loss": float(loss), "grad_norm": float(np.linalg.norm(np.asarray(g, dtype=np.float64)))}

    def W5_arm_bptt():
        check = arm_check()
        log(f"  W5 check (f64, tau=0): {check}")
        rng = np.random.default_rng(5)
        tau = jnp.asarray((0.1 * rng.standard_normal((ARM["steps"], 2))).astype(np.float32))
        jit_emit("W5_arm_bptt", "jit_scan", jax.value_and_grad(arm_loss), (tau,),
                 "jax.jit(jax.value_and_grad) of a lax.scan over the 500 steps, f32; check in f64 under jax.enable_x64",
                 check=check)

    def w6_setup():
        rng = np.random.default_rng(6)
        A = jnp.asarray((rng.standard_normal((2000, 1000)) / math.sqrt(1000.0)).astype(np.float32))
        x = jnp.asarray(rng.standard_normal(1000).astype(np.float32))
        v = jnp.asarray(rng.standard_normal(1000).astype(np.float32))

        def f(A, x):
            return jnp.sum(jax.nn.softplus(A @ x)) + 0.5 * jnp.sum(x * x)

        return f, A, x, v

    def W6_grad():
        f, A, x, _ = w6_setup()
        jit_emit("W6_grad", "jit", jax.value_and_grad(f, argnums=1), (A, x),
                 "jax.jit(jax.value_and_grad(f)), A passed as an argument")

    def W6_hvp():
        f, A, x, v = w6_setup()

        def hvp(A, x, v):
            return jax.jvp(lambda x: jax.grad(f, argnums=1)(A, x), (x,), (v,))[1]

        jit_emit("W6_hvp", "jit", hvp, (A, x, v), "forward-over-reverse: jax.jit(jax.jvp(jax.grad(f)))")

    def w7_setup():
        d, K, n = GMM_SIZE["d"], GMM_SIZE["K"], GMM_SIZE["n"]
        rng = np.random.default_rng(7)
        args = tuple(jnp.asarray(a, dtype=jnp.float64) for a in gmm_inputs(rng, d, K, n))
        assert args[0].dtype == jnp.float64
        return make_gmm_objective("jax", d, K, n), args

    def W7_gmm_obj():
        with jax.enable_x64(True):
            f, args = w7_setup()
            jit_emit("W7_gmm_obj", "jit", f, args,
                     "f64 (jax.enable_x64); d=10 K=25 n=10000; Q(x-mu) as x@Q^T - Q mu (one GEMM), jax.scipy logsumexp")

    def W7_gmm_obj_grad():
        with jax.enable_x64(True):
            f, args = w7_setup()
            jit_emit("W7_gmm_obj_grad", "jit", jax.value_and_grad(f, argnums=(0, 1, 2)), args,
                     "f64 (jax.enable_x64); jax.jit(jax.value_and_grad) w.r.t. alphas, means, icf")

    def W8_matmul_grad():
        rng = np.random.default_rng(8)
        A = jnp.asarray(rng.standard_normal((1024, 1024)).astype(np.float32))
        B = jnp.asarray(rng.standard_normal((1024, 1024)).astype(np.float32))
        jit_emit("W8_matmul_grad", "jit", jax.value_and_grad(lambda A, B: jnp.sum(A @ B), argnums=(0, 1)), (A, B),
                 "jax.jit(jax.value_and_grad) w.r.t. A and B")

    def W9_ode_lv_grad():
        from jax.experimental.ode import odeint

        with jax.enable_x64(True):
            def lotka_volterra(z, t, p):
                return jnp.stack([(p[0] - p[1] * z[1]) * z[0], (p[3] * z[0] - p[2]) * z[1]])

            ts = jnp.arange(21.0, dtype=jnp.float64)

            def loss(y0, p):
                return jnp.sum(jnp.log(odeint(lotka_volterra, y0, ts, p, rtol=1e-6, atol=1e-6)))

            y0 = jnp.asarray([33.0, 6.2], dtype=jnp.float64)
            p = jnp.asarray([0.55, 0.028, 0.80, 0.024], dtype=jnp.float64)

            def check_of(out):
                l, (gy, gp) = out
                g = np.concatenate([np.asarray(gy), np.asarray(gp)])
                return {"loss": float(l), "grad_norm": float(np.sqrt(np.sum(g * g)))}

            jit_emit("W9_ode_lv_grad", "jit", jax.value_and_grad(loss, argnums=(0, 1)), (y0, p),
                     "f64; jax.experimental.ode.odeint (Dormand-Prince, adjoint by backsolve), rtol = atol = 1e-6",
                     check_of=check_of)

    return {k: v for k, v in locals().items() if k in WORKLOADS}


# ----------------------------------------------------------------------------------------------
# Self-test: the peers against each other, numpy and finite differences (not part of the output)
