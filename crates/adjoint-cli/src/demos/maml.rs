//! The model and the meta-learning maths of `adjoint demo meta`: the sinusoid task family, a
//! 1-40-40-1 ReLU MLP, the inner SGD step, and the MAML / first-order MAML / joint-regression
//! objectives. The demo (training loops, reports, plots) is in [`meta`](super::meta).
//!
//! **Batching over tasks.** A meta-batch of `T` tasks is run as one set of batched tensor ops:
//! the shared parameters θ are broadcast to one copy per task (`[T, …]` leaves, the batched
//! `matmul` broadcasts the task axis), the inner loss is the *sum* of the per-task losses (so
//! its gradient with respect to the per-task copies is each task's own gradient), and the inner
//! step is `adjoint_nn::optim::functional::sgd` on the per-task copies. The outer gradient
//! flows back through the broadcast (a sum over tasks). This is `vmap` by hand;
//! [`meta_loss_vmap`] writes the same objective for one task and maps it over the meta-batch
//! with `vmap_axes` (θ shared); the tests check that both give the same value and gradient.
//! The demo trains MAML with the `vmap` form: measured on this 2-core machine
//! (`batching_forms_timing`, 25 tasks, 1-40-40-1, f32, release), a second-order meta-gradient
//! takes 1.4 ms with `vmap` against 1.9 ms by hand — `vmap` keeps θ shared through the forward
//! passes (one `[250, 40] × [40, 40]` product) where the hand-batched form multiplies 25 copies.
//! Evaluation and FOMAML's concrete inner step use the hand-batched form (per-task parameters
//! are what they adapt).
//!
//! **Second order.** [`meta_loss`] calls `grad` (the inner step) inside the function that the
//! outer step differentiates, so the meta-gradient includes the Hessian-vector term
//! `−α ∇²L_support(θ) ∇L_query(θ')` (adjoint nests reverse mode). First-order MAML treats
//! the inner gradient as a constant: [`fomaml_loss`] takes it precomputed on concrete values,
//! so its outer step differentiates the query loss only.

use adjoint_core::{grad, vmap_axes, DType, Params, Tensor};
use adjoint_nn::optim::functional::sgd;
use adjoint_tensor::random::{self, Key};

/// Amplitude range of the sinusoid tasks (Finn et al. 2017).
pub const AMPLITUDE: (f64, f64) = (0.1, 5.0);
/// Phase range.
pub const PHASE: (f64, f64) = (0.0, std::f64::consts::PI);
/// Input range.
pub const X_RANGE: (f64, f64) = (-5.0, 5.0);

/// A ReLU MLP 1-h-h-1. Biases are `[1, h]` rows so that the same code runs on one parameter
/// set (`w1: [1, h]`, inputs `[K, 1]`) and on one per task (`w1: [T, 1, h]`, `b1: [T, 1, h]`,
/// inputs `[T, K, 1]`).
#[derive(Clone, Debug, adjoint_derive::Params)]
#[params(crate = adjoint_core)]
pub struct Mlp {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    w3: Tensor,
    b3: Tensor,
}

impl Mlp {
    /// PyTorch's `nn.Linear` initialisation: weights and biases uniform in ±1/√fan_in.
    pub fn new(key: &Key, hidden: usize, dtype: DType) -> Mlp {
        let k = key.split(6);
        let u = |k: &Key, shape: &[usize], fan_in: usize| {
            let b = 1.0 / (fan_in as f64).sqrt();
            Tensor::from_array(random::uniform(k, shape, -b, b, dtype))
        };
        Mlp {
            w1: u(&k[0], &[1, hidden], 1),
            b1: u(&k[1], &[1, hidden], 1),
            w2: u(&k[2], &[hidden, hidden], hidden),
            b2: u(&k[3], &[1, hidden], hidden),
            w3: u(&k[4], &[hidden, 1], hidden),
            b3: u(&k[5], &[1, 1], hidden),
        }
    }

    /// `x: [..., K, 1]` → `[..., K, 1]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let h = (x.matmul(&self.w1) + &self.b1).relu();
        let h = (h.matmul(&self.w2) + &self.b2).relu();
        h.matmul(&self.w3) + &self.b3
    }

    /// One copy of the parameters per task: each leaf `[a, b]` becomes `[tasks, a, b]`.
    pub fn per_task(&self, tasks: usize) -> Mlp {
        self.map_tensors(&mut |l| {
            let mut shape = vec![tasks];
            shape.extend_from_slice(l.shape());
            l.unsqueeze(0).broadcast_to(&shape)
        })
    }
}

/// A batch of sinusoid regression tasks `y = A sin(x − φ)`: support (`K` shots) and query points.
#[derive(Clone, Debug)]
pub struct Tasks {
    /// Amplitude of each task.
    pub amplitude: Vec<f64>,
    /// Phase of each task.
    pub phase: Vec<f64>,
    /// Support inputs `[T, K, 1]`.
    pub xs: Tensor,
    /// Support targets `[T, K, 1]`.
    pub ys: Tensor,
    /// Query inputs `[T, Q, 1]`.
    pub xq: Tensor,
    /// Query targets `[T, Q, 1]`.
    pub yq: Tensor,
}

impl Tasks {
    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.amplitude.len()
    }

    /// True when there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.amplitude.is_empty()
    }

    /// `T` tasks with `k` support and `q` query points each, uniform in the paper's ranges.
    pub fn sample(key: &Key, tasks: usize, k: usize, q: usize, dtype: DType) -> Tasks {
        let u = |i: u64, n: usize, (lo, hi): (f64, f64)| {
            random::uniform(&key.fold_in(i), &[n], lo, hi, DType::F64).to_vec::<f64>()
        };
        let amplitude = u(0, tasks, AMPLITUDE);
        let phase = u(1, tasks, PHASE);
        let (xs, xq) = (u(2, tasks * k, X_RANGE), u(3, tasks * q, X_RANGE));
        let (ys, yq) = (targets(&xs, k, &amplitude, &phase), targets(&xq, q, &amplitude, &phase));
        let t = |v: Vec<f64>, n: usize| Tensor::from_vec(v, &[tasks, n, 1]).cast(dtype);
        Tasks { amplitude, phase, xs: t(xs, k), ys: t(ys, k), xq: t(xq, q), yq: t(yq, q) }
    }

    /// The same inputs' true values of task `i` at `xs` (for plotting).
    pub fn truth(&self, i: usize, xs: &[f64]) -> Vec<f64> {
        xs.iter().map(|x| self.amplitude[i] * (x - self.phase[i]).sin()).collect()
    }

    /// Task `i` alone (a batch of one).
    pub fn one(&self, i: usize) -> Tasks {
        let n = |t: &Tensor| t.narrow(0, i, 1);
        Tasks {
            amplitude: vec![self.amplitude[i]],
            phase: vec![self.phase[i]],
            xs: n(&self.xs),
            ys: n(&self.ys),
            xq: n(&self.xq),
            yq: n(&self.yq),
        }
    }
}

fn targets(x: &[f64], per_task: usize, amplitude: &[f64], phase: &[f64]) -> Vec<f64> {
    x.iter().enumerate().map(|(j, x)| amplitude[j / per_task] * (x - phase[j / per_task]).sin()).collect()
}

/// Per-task mean squared error `[T]` of per-task parameters (or shared ones) on `x, y: [T, N, 1]`.
pub fn task_mse(m: &Mlp, x: &Tensor, y: &Tensor) -> Tensor {
    (m.forward(x) - y).square().mean_axes(&[1, 2], false)
}

/// The gradient of each task's support loss with respect to its own copy of the parameters.
pub fn inner_grad(per_task: &Mlp, xs: &Tensor, ys: &Tensor) -> Mlp {
    grad(|p: &Mlp| task_mse(p, xs, ys).sum())(per_task)
}

/// `steps` inner SGD steps of rate `alpha` (a scalar tensor) from per-task parameters.
pub fn adapt(per_task: &Mlp, xs: &Tensor, ys: &Tensor, alpha: &Tensor, steps: usize) -> Mlp {
    let mut p = per_task.clone();
    for _ in 0..steps {
        p = sgd(&p, &inner_grad(&p, xs, ys), alpha);
    }
    p
}

/// The MAML objective: the mean over tasks of the query loss after one inner step,
/// `mean_i L_query,i(θ − α ∇L_support,i(θ))`. Its gradient is the second-order meta-gradient.
pub fn meta_loss(theta: &Mlp, tasks: &Tasks, alpha: &Tensor) -> Tensor {
    let adapted = adapt(&theta.per_task(tasks.len()), &tasks.xs, &tasks.ys, alpha, 1);
    task_mse(&adapted, &tasks.xq, &tasks.yq).mean()
}

/// The first-order MAML objective: as [`meta_loss`] with each task's inner gradient `g` given
/// (computed beforehand on concrete values), so the outer gradient is `∇L_query(θ')` alone.
pub fn fomaml_loss(theta: &Mlp, g: &Mlp, tasks: &Tasks, alpha: &Tensor) -> Tensor {
    let adapted = sgd(&theta.per_task(tasks.len()), g, alpha);
    task_mse(&adapted, &tasks.xq, &tasks.yq).mean()
}

/// Joint regression on every point of the tasks (the pretrained baseline): one shared
/// network, no inner step.
pub fn joint_loss(theta: &Mlp, tasks: &Tasks) -> Tensor {
    (task_mse(theta, &tasks.xs, &tasks.ys) + task_mse(theta, &tasks.xq, &tasks.yq)).mean() * 0.5
}

/// [`meta_loss`] written for one task and mapped over the meta-batch with `vmap_axes`
/// (θ shared, the task data mapped along axis 0): the same objective, for comparison.
pub fn meta_loss_vmap(theta: &Mlp, tasks: &Tasks, alpha: &Tensor) -> Tensor {
    let one = |a: &(Mlp, Tensor, Tensor, Tensor, Tensor)| {
        let (th, xs, ys, xq, yq) = a;
        let loss = |p: &Mlp| (p.forward(xs) - ys).square().mean();
        let adapted = sgd(th, &grad(loss)(th), alpha);
        (adapted.forward(xq) - yq).square().mean()
    };
    let per_task = vmap_axes(one, [None, Some(0), Some(0), Some(0), Some(0)], 0);
    let args = (theta.clone(), tasks.xs.clone(), tasks.ys.clone(), tasks.xq.clone(), tasks.yq.clone());
    per_task(&args).mean()
}

/// Per-task query MSE after each number of inner steps in `0..=max_steps` (the test-time
/// fine-tuning: SGD of rate `alpha` on the support points), as `[steps][task]`.
pub fn mse_after_steps(theta: &Mlp, tasks: &Tasks, alpha: f64, max_steps: usize) -> Vec<Vec<f64>> {
    let a = Tensor::scalar_of(alpha, DType::F64);
    let mut p = theta.per_task(tasks.len());
    let mut out = Vec::with_capacity(max_steps + 1);
    for s in 0..=max_steps {
        if s > 0 {
            p = adapt(&p, &tasks.xs, &tasks.ys, &a, 1);
        }
        out.push(task_mse(&p, &tasks.xq, &tasks.yq).cast(DType::F64).to_vec::<f64>());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> (Mlp, Tasks, Tensor) {
        let key = Key::new(7);
        let theta = Mlp::new(&key.fold_in(1), 5, DType::F64);
        let tasks = Tasks::sample(&key.fold_in(2), 3, 4, 6, DType::F64);
        // A large inner rate makes the second-order term large enough to see.
        (theta, tasks, Tensor::scalar(0.3f64))
    }

    /// Central differences of the MAML objective along each parameter entry.
    fn finite_differences(theta: &Mlp, f: &dyn Fn(&Mlp) -> f64) -> Vec<f64> {
        let leaves = theta.leaves();
        let mut out = Vec::new();
        for (li, leaf) in leaves.iter().enumerate() {
            let v = leaf.to_vec::<f64>();
            for j in 0..v.len() {
                let at = |d: f64| {
                    let mut w = v.clone();
                    w[j] += d;
                    let mut ls = leaves.clone();
                    ls[li] = Tensor::from_vec(w, leaf.shape());
                    f(&theta.with_leaves(&ls))
                };
                let h = 1e-6;
                out.push((at(h) - at(-h)) / (2.0 * h));
            }
        }
        out
    }

    fn flat(m: &Mlp) -> Vec<f64> {
        m.leaves().iter().flat_map(|t| t.to_vec::<f64>()).collect()
    }

    #[test]
    fn the_maml_meta_gradient_matches_finite_differences_through_the_inner_step() {
        let (theta, tasks, alpha) = small();
        let g = flat(&grad(|t: &Mlp| meta_loss(t, &tasks, &alpha))(&theta));
        let fd = finite_differences(&theta, &|t| meta_loss(t, &tasks, &alpha).item());
        let scale = fd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (a, b)) in g.iter().zip(&fd).enumerate() {
            assert!((a - b).abs() <= 1e-6 * scale.max(1.0), "entry {i}: grad {a} vs finite differences {b}");
        }
        // The first-order gradient leaves out the Hessian term: it differs from the true one.
        let inner = inner_grad(&theta.per_task(tasks.len()), &tasks.xs, &tasks.ys);
        let fo = flat(&grad(|t: &Mlp| fomaml_loss(t, &inner, &tasks, &alpha))(&theta));
        let diff = fo.iter().zip(&g).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(diff > 1e-3 * scale, "first-order and second-order gradients agree to {diff}");
        // With the inner gradient held constant its value is the same objective.
        let v = fomaml_loss(&theta, &inner, &tasks, &alpha).item();
        assert!((v - meta_loss(&theta, &tasks, &alpha).item()).abs() < 1e-12);
    }

    #[test]
    fn the_vmap_form_is_the_same_objective_and_gradient() {
        let (theta, tasks, alpha) = small();
        let (a, ga) = adjoint_core::value_and_grad(|t: &Mlp| meta_loss(t, &tasks, &alpha))(&theta);
        let (b, gb) = adjoint_core::value_and_grad(|t: &Mlp| meta_loss_vmap(t, &tasks, &alpha))(&theta);
        assert!((a.item() - b.item()).abs() < 1e-12, "{} vs {}", a.item(), b.item());
        for (x, y) in flat(&ga).iter().zip(flat(&gb)) {
            assert!((x - y).abs() < 1e-10, "{x} vs {y}");
        }
    }

    #[test]
    fn one_step_of_the_test_time_fine_tuning_is_the_inner_step() {
        let (theta, tasks, _) = small();
        let steps = mse_after_steps(&theta, &tasks, 0.3, 2);
        let alpha = Tensor::scalar(0.3f64);
        let one = task_mse(&adapt(&theta.per_task(3), &tasks.xs, &tasks.ys, &alpha, 1), &tasks.xq, &tasks.yq);
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[1], one.to_vec::<f64>());
        let mean = steps[1].iter().sum::<f64>() / 3.0;
        assert!((mean - meta_loss(&theta, &tasks, &alpha).item()).abs() < 1e-12);
    }
}
