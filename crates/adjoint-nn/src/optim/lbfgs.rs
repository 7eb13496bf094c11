//! L-BFGS with an optional strong-Wolfe line search, a port of `torch.optim.LBFGS` (itself
//! after minFunc).
//!
//! L-BFGS needs to re-evaluate the objective during a step, so it takes a closure returning
//! `(loss, gradients)` at given parameters instead of fixed gradients, and it does not
//! implement [`Optimizer`](super::Optimizer). As in PyTorch, one `step` call runs up to
//! `max_iter` iterations, and the history persists between calls. The work runs on one
//! flattened `f64` vector of all floating-point leaves (`f32` leaves are rounded back when
//! parameters are rebuilt; integer and bool leaves are left alone).
//!
//! The state (search direction, curvature pairs, previous gradient) is `Params`, so it saves
//! with a checkpoint; because the history grows with the iterations, loading it needs a
//! template with the same history length (the loader names the difference otherwise).

use adjoint_core::{Params, Tensor};
use adjoint_tensor::{Array, DType};

/// Hyperparameters of [`Lbfgs`] (PyTorch's names and defaults; `line_search: true` is
/// `line_search_fn="strong_wolfe"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LbfgsConfig {
    /// Step length (default 1).
    pub lr: f64,
    /// Iterations per `step` call (default 20).
    pub max_iter: usize,
    /// Objective evaluations per `step` call (default `max_iter * 5 / 4`).
    pub max_eval: Option<usize>,
    /// Stop when the largest gradient element is at most this (default 1e-7).
    pub tolerance_grad: f64,
    /// Stop when the step or the change in loss is below this (default 1e-9).
    pub tolerance_change: f64,
    /// Curvature pairs kept (default 100).
    pub history_size: usize,
    /// Strong-Wolfe line search (default false: fixed step `lr`).
    pub line_search: bool,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        LbfgsConfig {
            lr: 1.0,
            max_iter: 20,
            max_eval: None,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 100,
            line_search: false,
        }
    }
}

/// What one [`Lbfgs::step`] did.
#[derive(Clone, Debug)]
pub struct LbfgsStep<P> {
    /// The updated parameters.
    pub params: P,
    /// The loss at the parameters passed in (what `torch.optim.LBFGS.step` returns).
    pub loss: f64,
    /// The last loss evaluated (at the returned parameters when a line search ran last).
    pub last_loss: f64,
    /// Objective evaluations in this call.
    pub evals: usize,
    /// Iterations in this call.
    pub iterations: usize,
}

/// L-BFGS.
///
/// ```
/// use adjoint_core::{value_and_grad, Tensor};
/// use adjoint_nn::optim::{Lbfgs, LbfgsConfig};
/// // Minimise (x - 3)² + (y + 1)².
/// let f = |p: &Tensor| (p - &Tensor::from_vec(vec![3.0f64, -1.0], &[2])).square().sum();
/// let mut opt = Lbfgs::new(&Tensor::zeros(&[2]), LbfgsConfig { line_search: true, ..Default::default() });
/// let r = opt.step(&Tensor::from_vec(vec![0.0f64, 0.0], &[2]), |p| {
///     let (l, g) = value_and_grad(f)(p);
///     (l.item(), g)
/// });
/// let v = r.params.to_vec::<f64>();
/// assert!((v[0] - 3.0).abs() < 1e-6 && (v[1] + 1.0).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct Lbfgs {
    /// Objective evaluations over all calls (`i64` scalar).
    pub func_evals: Tensor,
    /// Iterations over all calls (`i64` scalar).
    pub n_iter: Tensor,
    /// Last search direction.
    pub d: Option<Tensor>,
    /// Last step length.
    pub t: Option<Tensor>,
    /// Gradient differences `y` of the kept curvature pairs.
    pub old_dirs: Vec<Tensor>,
    /// Steps `s` of the kept curvature pairs.
    pub old_stps: Vec<Tensor>,
    /// `1 / (y·s)` of the kept pairs.
    pub ro: Vec<Tensor>,
    /// Scale of the initial inverse-Hessian approximation.
    pub h_diag: Option<Tensor>,
    /// Gradient at the previous iterate.
    pub prev_flat_grad: Option<Tensor>,
    /// Loss at the previous iterate.
    pub prev_loss: Option<Tensor>,
    /// Hyperparameters.
    #[params(skip)]
    pub config: LbfgsConfig,
    #[params(skip)]
    n_elems: usize,
}

/// Working copy of the state as plain vectors.
struct State {
    d: Vec<f64>,
    t: f64,
    old_dirs: Vec<Vec<f64>>,
    old_stps: Vec<Vec<f64>>,
    ro: Vec<f64>,
    h_diag: f64,
    prev_flat_grad: Option<Vec<f64>>,
    prev_loss: f64,
}

fn vec_of(t: &Tensor) -> Vec<f64> {
    t.value().to_vec::<f64>()
}

fn tensor_of(v: &[f64]) -> Tensor {
    Tensor::from_slice(v, &[v.len()])
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0f64, |m, x| if x.abs() > m || x.is_nan() { x.abs() } else { m })
}

/// All floating-point leaves in order, as one `f64` vector (other leaves are not optimised).
fn flatten<P: Params>(p: &P) -> Vec<f64> {
    let mut v = Vec::new();
    p.for_each_tensor(&mut |t| {
        if t.dtype().is_float() {
            v.extend(t.value().to_vec::<f64>())
        }
    });
    v
}

/// `template`'s structure with its float leaves taken from `x` (each keeps its dtype).
fn unflatten<P: Params>(template: &P, x: &[f64]) -> P {
    let mut off = 0;
    template.map_tensors(&mut |t| {
        let n = t.numel();
        let a = match t.dtype() {
            DType::F32 => Array::from_vec(x[off..off + n].iter().map(|&v| v as f32).collect(), t.shape()),
            DType::F64 => Array::from_slice(&x[off..off + n], t.shape()),
            _ => return t.clone(),
        };
        off += n;
        Tensor::from_array(a)
    })
}

fn axpy(x: &[f64], t: f64, d: &[f64]) -> Vec<f64> {
    x.iter().zip(d).map(|(a, b)| a + t * b).collect()
}

impl Lbfgs {
    /// An optimizer for values shaped like `params`.
    #[track_caller]
    pub fn new<P: Params>(params: &P, config: LbfgsConfig) -> Lbfgs {
        assert!(config.lr >= 0.0, "adjoint-nn: Lbfgs: invalid learning rate {}", config.lr);
        assert!(config.max_iter >= 1, "adjoint-nn: Lbfgs: max_iter must be at least 1");
        assert!(config.history_size >= 1, "adjoint-nn: Lbfgs: history_size must be at least 1");
        let n_elems = flatten(params).len();
        Lbfgs {
            func_evals: Tensor::scalar(0i64),
            n_iter: Tensor::scalar(0i64),
            d: None,
            t: None,
            old_dirs: Vec::new(),
            old_stps: Vec::new(),
            ro: Vec::new(),
            h_diag: None,
            prev_flat_grad: None,
            prev_loss: None,
            config,
            n_elems,
        }
    }

    /// The step length `lr`.
    pub fn lr(&self) -> f64 {
        self.config.lr
    }

    /// Set the step length.
    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// Objective evaluations over all calls.
    pub fn func_evals(&self) -> u64 {
        self.func_evals.item() as u64
    }

    fn load(&self) -> State {
        State {
            d: self.d.as_ref().map(vec_of).unwrap_or_default(),
            t: self.t.as_ref().map(|t| t.item()).unwrap_or(0.0),
            old_dirs: self.old_dirs.iter().map(vec_of).collect(),
            old_stps: self.old_stps.iter().map(vec_of).collect(),
            ro: self.ro.iter().map(|t| t.item()).collect(),
            h_diag: self.h_diag.as_ref().map(|t| t.item()).unwrap_or(1.0),
            prev_flat_grad: self.prev_flat_grad.as_ref().map(vec_of),
            prev_loss: self.prev_loss.as_ref().map(|t| t.item()).unwrap_or(0.0),
        }
    }

    fn store(&mut self, s: State) {
        self.d = Some(tensor_of(&s.d));
        self.t = Some(Tensor::scalar(s.t));
        self.old_dirs = s.old_dirs.iter().map(|v| tensor_of(v)).collect();
        self.old_stps = s.old_stps.iter().map(|v| tensor_of(v)).collect();
        self.ro = s.ro.iter().map(|&r| Tensor::scalar(r)).collect();
        self.h_diag = Some(Tensor::scalar(s.h_diag));
        self.prev_flat_grad = s.prev_flat_grad.as_deref().map(tensor_of);
        self.prev_loss = Some(Tensor::scalar(s.prev_loss));
    }

    /// Run up to `max_iter` iterations from `params`. `closure(p)` returns the loss and its
    /// gradient (shaped like `p`) at `p`, e.g. through `value_and_grad`.
    #[track_caller]
    pub fn step<P: Params, F: FnMut(&P) -> (f64, P)>(&mut self, params: &P, mut closure: F) -> LbfgsStep<P> {
        let c = self.config;
        let max_eval = c.max_eval.unwrap_or(c.max_iter * 5 / 4);
        let mut x = flatten(params);
        assert_eq!(
            x.len(),
            self.n_elems,
            "adjoint-nn: Lbfgs::step: parameters have {} elements, the optimizer was built for {}",
            x.len(),
            self.n_elems
        );
        let mut eval = |x: &[f64]| -> (f64, Vec<f64>) {
            let (l, g) = closure(&unflatten(params, x));
            let g = flatten(&g);
            assert_eq!(g.len(), x.len(), "adjoint-nn: Lbfgs::step: the closure's gradient has another size");
            (l, g)
        };
        let (orig_loss, mut flat_grad) = eval(&x);
        let mut loss = orig_loss;
        let mut current_evals = 1usize;
        let mut func_evals = self.func_evals.item() as u64 + 1;
        let mut total_iter = self.n_iter.item() as u64;
        let done = |s: &mut Lbfgs,
                    x: &[f64],
                    loss: f64,
                    evals: usize,
                    iters: usize,
                    func_evals: u64,
                    total_iter: u64| {
            s.func_evals = Tensor::scalar(func_evals as i64);
            s.n_iter = Tensor::scalar(total_iter as i64);
            LbfgsStep {
                params: unflatten(params, x),
                loss: orig_loss,
                last_loss: loss,
                evals,
                iterations: iters,
            }
        };
        if max_abs(&flat_grad) <= c.tolerance_grad {
            return done(self, &x, loss, current_evals, 0, func_evals, total_iter);
        }
        let mut s = self.load();
        let mut opt_cond = false;
        let mut n_iter = 0;
        while n_iter < c.max_iter {
            n_iter += 1;
            total_iter += 1;
            if total_iter == 1 {
                s.d = flat_grad.iter().map(|g| -g).collect();
                s.old_dirs.clear();
                s.old_stps.clear();
                s.ro.clear();
                s.h_diag = 1.0;
            } else {
                let prev =
                    s.prev_flat_grad.as_deref().expect("a previous gradient after the first iteration");
                let y: Vec<f64> = flat_grad.iter().zip(prev).map(|(a, b)| a - b).collect();
                let st: Vec<f64> = s.d.iter().map(|v| v * s.t).collect();
                let ys = dot(&y, &st);
                if ys > 1e-10 {
                    if s.old_dirs.len() == c.history_size {
                        s.old_dirs.remove(0);
                        s.old_stps.remove(0);
                        s.ro.remove(0);
                    }
                    s.h_diag = ys / dot(&y, &y);
                    s.old_dirs.push(y);
                    s.old_stps.push(st);
                    s.ro.push(1.0 / ys);
                }
                let num_old = s.old_dirs.len();
                let mut al = vec![0.0; num_old];
                let mut q: Vec<f64> = flat_grad.iter().map(|g| -g).collect();
                for i in (0..num_old).rev() {
                    al[i] = dot(&s.old_stps[i], &q) * s.ro[i];
                    for (qj, yj) in q.iter_mut().zip(&s.old_dirs[i]) {
                        *qj += -al[i] * yj;
                    }
                }
                let mut r: Vec<f64> = q.iter().map(|v| v * s.h_diag).collect();
                for ((y, st), (ro, a)) in s.old_dirs.iter().zip(&s.old_stps).zip(s.ro.iter().zip(&al)) {
                    let be_i = dot(y, &r) * ro;
                    for (rj, sj) in r.iter_mut().zip(st) {
                        *rj += (a - be_i) * sj;
                    }
                }
                s.d = r;
            }
            s.prev_flat_grad = Some(flat_grad.clone());
            s.prev_loss = loss;
            s.t = if total_iter == 1 {
                (1.0f64).min(1.0 / flat_grad.iter().map(|g| g.abs()).sum::<f64>()) * c.lr
            } else {
                c.lr
            };
            let gtd = dot(&flat_grad, &s.d);
            if gtd > -c.tolerance_change {
                break;
            }
            let mut ls_func_evals = 0;
            if c.line_search {
                let max_ls = max_eval.saturating_sub(current_evals);
                let mut obj = |t: f64, d: &[f64]| eval(&axpy(&x, t, d));
                let (l, g, t, evals) =
                    strong_wolfe(&mut obj, s.t, &s.d, loss, &flat_grad, gtd, c.tolerance_change, max_ls);
                loss = l;
                flat_grad = g;
                s.t = t;
                ls_func_evals = evals;
                x = axpy(&x, s.t, &s.d);
                opt_cond = max_abs(&flat_grad) <= c.tolerance_grad;
            } else {
                x = axpy(&x, s.t, &s.d);
                if n_iter != c.max_iter {
                    let (l, g) = eval(&x);
                    loss = l;
                    flat_grad = g;
                    opt_cond = max_abs(&flat_grad) <= c.tolerance_grad;
                    ls_func_evals = 1;
                }
            }
            current_evals += ls_func_evals;
            func_evals += ls_func_evals as u64;
            if n_iter == c.max_iter || current_evals >= max_eval || opt_cond {
                break;
            }
            if s.d.iter().map(|v| (v * s.t).abs()).fold(0.0, f64::max) <= c.tolerance_change {
                break;
            }
            if (loss - s.prev_loss).abs() < c.tolerance_change {
                break;
            }
        }
        self.store(s);
        done(self, &x, loss, current_evals, n_iter, func_evals, total_iter)
    }
}

/// Loss and flat gradient at `x + t d`, as a function of `(t, d)`.
type Objective<'a> = dyn FnMut(f64, &[f64]) -> (f64, Vec<f64>) + 'a;

/// The strong-Wolfe line search of `torch.optim.lbfgs._strong_wolfe` (after minFunc's
/// `lswolfe`). `obj(t, d)` evaluates loss and gradient at `x + t d`. Returns the accepted
/// loss, gradient, step and the number of evaluations.
#[allow(clippy::too_many_arguments)]
fn strong_wolfe(
    obj: &mut Objective<'_>,
    mut t: f64,
    d: &[f64],
    f: f64,
    g: &[f64],
    gtd: f64,
    tolerance_change: f64,
    max_ls: usize,
) -> (f64, Vec<f64>, f64, usize) {
    let (c1, c2) = (1e-4, 0.9);
    let d_norm = max_abs(d);
    let (mut f_new, mut g_new) = obj(t, d);
    let mut ls_func_evals = 1;
    let mut gtd_new = dot(&g_new, d);
    let (mut t_prev, mut f_prev, mut g_prev, mut gtd_prev) = (0.0, f, g.to_vec(), gtd);
    let mut done = false;
    let mut ls_iter = 0;
    let mut bracket: Vec<f64> = Vec::new();
    let mut bracket_f: Vec<f64> = Vec::new();
    let mut bracket_g: Vec<Vec<f64>> = Vec::new();
    let mut bracket_gtd: Vec<f64> = Vec::new();
    while ls_iter < max_ls {
        if f_new > f + c1 * t * gtd || (ls_iter > 1 && f_new >= f_prev) {
            bracket = vec![t_prev, t];
            bracket_f = vec![f_prev, f_new];
            bracket_g = vec![g_prev.clone(), g_new.clone()];
            bracket_gtd = vec![gtd_prev, gtd_new];
            break;
        }
        if gtd_new.abs() <= -c2 * gtd {
            bracket = vec![t];
            bracket_f = vec![f_new];
            bracket_g = vec![g_new.clone()];
            done = true;
            break;
        }
        if gtd_new >= 0.0 {
            bracket = vec![t_prev, t];
            bracket_f = vec![f_prev, f_new];
            bracket_g = vec![g_prev.clone(), g_new.clone()];
            bracket_gtd = vec![gtd_prev, gtd_new];
            break;
        }
        let min_step = t + 0.01 * (t - t_prev);
        let max_step = t * 10.0;
        let tmp = t;
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, Some((min_step, max_step)));
        t_prev = tmp;
        f_prev = f_new;
        g_prev = g_new.clone();
        gtd_prev = gtd_new;
        (f_new, g_new) = obj(t, d);
        ls_func_evals += 1;
        gtd_new = dot(&g_new, d);
        ls_iter += 1;
    }
    if ls_iter == max_ls {
        bracket = vec![0.0, t];
        bracket_f = vec![f, f_new];
        bracket_g = vec![g.to_vec(), g_new.clone()];
    }
    let mut insuf_progress = false;
    let last = bracket_f.len() - 1;
    let (mut low_pos, mut high_pos) = if bracket_f[0] <= bracket_f[last] { (0, 1) } else { (1, 0) };
    while !done && ls_iter < max_ls {
        if (bracket[1] - bracket[0]).abs() * d_norm < tolerance_change {
            break;
        }
        t = cubic_interpolate(
            bracket[0],
            bracket_f[0],
            bracket_gtd[0],
            bracket[1],
            bracket_f[1],
            bracket_gtd[1],
            None,
        );
        let (bmax, bmin) = (bracket[0].max(bracket[1]), bracket[0].min(bracket[1]));
        let eps = 0.1 * (bmax - bmin);
        if (bmax - t).min(t - bmin) < eps {
            if insuf_progress || t >= bmax || t <= bmin {
                t = if (t - bmax).abs() < (t - bmin).abs() { bmax - eps } else { bmin + eps };
                insuf_progress = false;
            } else {
                insuf_progress = true;
            }
        } else {
            insuf_progress = false;
        }
        (f_new, g_new) = obj(t, d);
        ls_func_evals += 1;
        gtd_new = dot(&g_new, d);
        ls_iter += 1;
        if f_new > f + c1 * t * gtd || f_new >= bracket_f[low_pos] {
            bracket[high_pos] = t;
            bracket_f[high_pos] = f_new;
            bracket_g[high_pos] = g_new.clone();
            bracket_gtd[high_pos] = gtd_new;
            (low_pos, high_pos) = if bracket_f[0] <= bracket_f[1] { (0, 1) } else { (1, 0) };
        } else {
            if gtd_new.abs() <= -c2 * gtd {
                done = true;
            } else if gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0.0 {
                bracket[high_pos] = bracket[low_pos];
                bracket_f[high_pos] = bracket_f[low_pos];
                bracket_g[high_pos] = bracket_g[low_pos].clone();
                bracket_gtd[high_pos] = bracket_gtd[low_pos];
            }
            bracket[low_pos] = t;
            bracket_f[low_pos] = f_new;
            bracket_g[low_pos] = g_new.clone();
            bracket_gtd[low_pos] = gtd_new;
        }
    }
    let low_pos = low_pos.min(bracket.len() - 1);
    (bracket_f[low_pos], bracket_g.swap_remove(low_pos), bracket[low_pos], ls_func_evals)
}

/// Minimiser of the cubic through `(x1, f1)` and `(x2, f2)` with slopes `g1`, `g2`, clamped to
/// `bounds` (default: the interval between the points); the midpoint when the cubic has none.
fn cubic_interpolate(
    x1: f64,
    f1: f64,
    g1: f64,
    x2: f64,
    f2: f64,
    g2: f64,
    bounds: Option<(f64, f64)>,
) -> f64 {
    let (xmin_bound, xmax_bound) = bounds.unwrap_or(if x1 <= x2 { (x1, x2) } else { (x2, x1) });
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let d2_square = d1 * d1 - g1 * g2;
    if d2_square >= 0.0 {
        let d2 = d2_square.sqrt();
        let min_pos = if x1 <= x2 {
            x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
        } else {
            x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
        };
        min_pos.max(xmin_bound).min(xmax_bound)
    } else {
        (xmin_bound + xmax_bound) / 2.0
    }
}
