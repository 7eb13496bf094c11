//! Fused per-leaf update loops shared by the optimizers.
//!
//! An Adam step written with tensor ops builds about ten temporaries per leaf and sweeps memory
//! as many times. Here each optimizer states its update as a function of one element
//! `(param, grad, state…) -> new param`, and [`update_leaf`] runs it in a single pass: state
//! buffers are rewritten in place when the optimizer holds the only handle to them (the usual
//! case), and the only allocation per leaf is the new parameter. Large leaves are split into
//! chunks processed by rayon. `f32` leaves keep `f32` state.
//!
//! An update is an [`ElementRule`], generic over the element type. A rule written as an `f64`
//! closure ([`update_leaf`]) is evaluated in `f64` and rounded back; Adam's rule is written
//! once for both types and runs in the leaf's own precision, as PyTorch's fused kernels do
//! (`opmath` of `float` is `float`): its square root and division are then 8 lanes wide
//! instead of 4 (W2's Adam update over 670 k `f32` parameters on one thread, quiet machine,
//! `adjoint-dist-worker bench-step --plain`: see benches/LOG.md, issue 17).
//!
//! An optimizer states its step once over [`StepLeaves`]: [`TensorLeaves`] for
//! `Optimizer::step` (tensors in, new tensors out) and [`FlatLeaves`] for `Optimizer::step_flat`
//! (raw buffers updated in place by [`update_flat`], the gradient a scaled sum of parts read
//! where they lie, the new values optionally mirrored in the same pass: adjoint-dist's sharded
//! update). Both run the same rule in the same order of operations, so they give the same bits.
//!
//! The workspace builds for baseline x86-64 (SSE2), where square roots and divisions run one
//! element at a time; the same loop is also compiled for AVX2 + FMA and for AVX-512 and chosen
//! at run time (no rule uses `mul_add`, so every build gives the same bits).

use std::mem::MaybeUninit;

use adjoint_core::Tensor;
use adjoint_tensor::{Array, DType, Element, FloatElement};
use rayon::prelude::*;

use super::{Flat, FlatLeaf};

/// Elements per rayon task; below two of these the loop runs on the calling thread.
const PAR_CHUNK: usize = 1 << 15;

/// Most state buffers an update can touch (RMSprop: square average, gradient average,
/// momentum).
pub(crate) const MAX_STATE: usize = 4;

/// One element's update, `(param, grad, state…) -> new param`, in the element type `S` of the
/// leaf (`f32` or `f64`). `state[k]` is state buffer `k`; entries past the buffers given are
/// scratch.
pub(crate) trait ElementRule: Sync {
    fn apply<S: FloatElement>(&self, x: S, g: S, state: &mut [S; MAX_STATE]) -> S;
}

/// A rule written over `f64`: evaluated in `f64` for either leaf type and rounded back.
pub(crate) struct InF64<F>(pub(crate) F);

impl<F: Fn(f64, f64, &mut [f64; MAX_STATE]) -> f64 + Sync> ElementRule for InF64<F> {
    #[inline(always)]
    fn apply<S: FloatElement>(&self, x: S, g: S, state: &mut [S; MAX_STATE]) -> S {
        let mut s = state.map(|v| v.to_f64());
        let y = (self.0)(x.to_f64(), g.to_f64(), &mut s);
        *state = s.map(S::from_f64);
        S::from_f64(y)
    }
}

/// Run `f(param, grad, state)` in `f64` over every element of one leaf and return the new
/// parameter (see [`update_leaf_rule`]).
pub(crate) fn update_leaf<F>(param: &Tensor, grad: &Tensor, states: &mut [&mut Tensor], f: F) -> Tensor
where
    F: Fn(f64, f64, &mut [f64; MAX_STATE]) -> f64 + Sync,
{
    update_leaf_rule(param, grad, states, &InF64(f))
}

/// Run `rule` over every element of one leaf, in the leaf's precision, and return the new
/// parameter. `states[k]` appears as `state[k]` in the rule. Leaves that are not floating point
/// are returned unchanged.
pub(crate) fn update_leaf_rule<R: ElementRule>(
    param: &Tensor,
    grad: &Tensor,
    states: &mut [&mut Tensor],
    rule: &R,
) -> Tensor {
    assert!(states.len() <= MAX_STATE, "adjoint-nn: update_leaf: too many state buffers");
    match param.dtype() {
        DType::F32 => update_typed::<f32, R>(param, grad, states, rule),
        DType::F64 => update_typed::<f64, R>(param, grad, states, rule),
        _ => param.clone(),
    }
}

/// `f` applied to every element of `t` (a float leaf; other leaves are returned unchanged).
pub(crate) fn map_leaf(t: &Tensor, f: impl Fn(f64) -> f64 + Sync) -> Tensor {
    update_leaf(t, t, &mut [], |x, _, _| f(x))
}

/// Take the array out of `t`, leaving a placeholder, so that the returned array is the
/// storage's only owner when nobody else holds the tensor ([`Array::into_unique`]: a copy
/// otherwise); converted to `T` when it has another type.
fn take_unique<T: Element>(t: &mut Tensor) -> Array {
    let a = std::mem::replace(t, Tensor::scalar(0.0f32)).value().clone();
    if a.dtype() != T::DTYPE {
        return Array::from_vec(a.to_vec::<T>(), a.shape());
    }
    a.into_unique()
}

fn contiguous_vec<T: Element>(a: &Array) -> std::borrow::Cow<'_, [T]> {
    match a.as_slice::<T>() {
        Some(s) if a.dtype() == T::DTYPE => std::borrow::Cow::Borrowed(s),
        _ => std::borrow::Cow::Owned(a.to_vec::<T>()),
    }
}

fn update_typed<T: FloatElement, R: ElementRule>(
    param: &Tensor,
    grad: &Tensor,
    states: &mut [&mut Tensor],
    f: &R,
) -> Tensor {
    let n = param.numel();
    let ps = contiguous_vec::<T>(param.value());
    let gs = contiguous_vec::<T>(grad.value());
    let mut arrays: Vec<Array> = states.iter_mut().map(|t| take_unique::<T>(t)).collect();
    // The new parameter, written once per element by `run`: not zero-filled first (a serial fill
    // of W2's 2.7 MB of weights cost as much as a tenth of the step).
    let mut buf = adjoint_tensor::cache::take::<T>(n);
    {
        let out = &mut buf.spare_capacity_mut()[..n];
        let mut slices: Vec<&mut [T]> =
            arrays.iter_mut().map(|a| a.try_unique_slice_mut::<T>().expect("made unique")).collect();
        if n >= 2 * PAR_CHUNK && rayon::current_num_threads() > 1 {
            let jobs: Vec<_> = out.chunks_mut(PAR_CHUNK).zip(split_chunks(slices, n)).collect();
            jobs.into_par_iter().for_each(|(o, (off, mut st))| {
                let len = o.len();
                run(&ps[off..off + len], &gs[off..off + len], o, &mut st, f)
            });
            adjoint_tensor::threads::keep_warm();
        } else {
            run(&ps, &gs, out, &mut slices, f);
        }
    }
    // SAFETY: `run` wrote all `n` elements of the spare capacity (every chunk above, or the
    // whole range), and `take` gave at least `n` of capacity.
    unsafe { buf.set_len(n) };
    let out = buf;
    for (t, a) in states.iter_mut().zip(arrays) {
        **t = Tensor::from_array(a);
    }
    Tensor::from_array(Array::from_vec(out, param.shape()))
}

fn run<T: FloatElement, F: ElementRule>(
    ps: &[T],
    gs: &[T],
    out: &mut [MaybeUninit<T>],
    st: &mut [&mut [T]],
    f: &F,
) {
    // One monomorphic loop per state count: with `K` known and every slice cut to `n`, the
    // bounds checks go and the loop vectorises (a loop over `st.len()` slices did neither).
    match st {
        [] => run_k::<T, F, 0>(ps, gs, out, [], f),
        [a] => run_k::<T, F, 1>(ps, gs, out, [a], f),
        [a, b] => run_k::<T, F, 2>(ps, gs, out, [a, b], f),
        [a, b, c] => run_k::<T, F, 3>(ps, gs, out, [a, b, c], f),
        [a, b, c, d] => run_k::<T, F, 4>(ps, gs, out, [a, b, c, d], f),
        _ => unreachable!("at most MAX_STATE state buffers"),
    }
}

/// The kernel in the widest build the CPU runs (adjoint-tensor's `dispatch_simd!`, the one
/// mechanism for the elementwise kernels' AVX2 and AVX-512 builds; every build gives the same
/// bits: no rule uses `mul_add`, and LLVM contracts nothing into FMA on its own).
fn run_k<T: FloatElement, F: ElementRule, const K: usize>(
    ps: &[T],
    gs: &[T],
    out: &mut [MaybeUninit<T>],
    st: [&mut &mut [T]; K],
    f: &F,
) {
    adjoint_tensor::dispatch_simd!(run_k_body, run_k_avx2, run_k_avx512, (ps, gs, out, st, f))
}

adjoint_tensor::simd_builds!(run_k_body => run_k_avx2, run_k_avx512,
    [T: FloatElement, F: ElementRule, const K: usize],
    (ps: &[T], gs: &[T], out: &mut [MaybeUninit<T>], st: [&mut &mut [T]; K], f: &F));

#[inline(always)]
fn run_k_body<T: FloatElement, F: ElementRule, const K: usize>(
    ps: &[T],
    gs: &[T],
    out: &mut [MaybeUninit<T>],
    st: [&mut &mut [T]; K],
    f: &F,
) {
    let n = out.len();
    let (ps, gs) = (&ps[..n], &gs[..n]);
    let st: [&mut [T]; K] = st.map(|s| &mut s[..n]);
    for i in 0..n {
        let mut s = [T::zero(); MAX_STATE];
        for j in 0..K {
            s[j] = st[j][i];
        }
        out[i].write(f.apply(ps[i], gs[i], &mut s));
        for j in 0..K {
            st[j][i] = s[j];
        }
    }
}

/// Run `rule` over one leaf given as raw buffers ([`Flat`](super::Flat)): the gradient is
/// `scale · (grads[0] + grads[1] + …)` (summed left to right, then scaled), `param` is
/// overwritten with the new parameter (and `mirror`, when given, receives a copy of it in the
/// same pass), and `states[k]` appears as `state[k]` in the rule, as in [`update_leaf_rule`]
/// (whose bits it gives for the same gradient).
pub(crate) fn update_flat<T: FloatElement, R: ElementRule>(
    param: &mut [T],
    grads: &[&[T]],
    scale: T,
    mirror: Option<&mut [T]>,
    states: &mut [&mut Tensor],
    rule: &R,
) {
    let n = param.len();
    assert!(states.len() <= MAX_STATE, "adjoint-nn: update_flat: too many state buffers");
    assert!(!grads.is_empty(), "adjoint-nn: Optimizer::step_flat: a leaf with no gradient part");
    for (k, g) in grads.iter().enumerate() {
        assert!(
            g.len() == n,
            "adjoint-nn: Optimizer::step_flat: gradient part {k} has {} elements, the parameter {n}",
            g.len()
        );
    }
    if let Some(m) = &mirror {
        assert!(
            m.len() == n,
            "adjoint-nn: Optimizer::step_flat: a mirror of {} elements, the parameter {n}",
            m.len()
        );
    }
    let mirrored = mirror.is_some();
    let mut arrays: Vec<Array> = states.iter_mut().map(|t| take_unique::<T>(t)).collect();
    {
        // The parameter (and its mirror) ride last among the state slices, so one split
        // serves all.
        let mut slices: Vec<&mut [T]> =
            arrays.iter_mut().map(|a| a.try_unique_slice_mut::<T>().expect("made unique")).collect();
        slices.push(param);
        slices.extend(mirror);
        let run = |off: usize, st: &mut [&mut [T]]| {
            let len = st[0].len();
            match grads {
                [a] => run_flat(&[&a[off..off + len]], scale, st, mirrored, rule),
                [a, b] => run_flat(&[&a[off..off + len], &b[off..off + len]], scale, st, mirrored, rule),
                [a, b, rest @ ..] => {
                    // Three parts or more: summed into a scratch buffer first, in the same order.
                    let mut sum: Vec<T> =
                        a[off..off + len].iter().zip(&b[off..off + len]).map(|(&x, &y)| x + y).collect();
                    for c in rest {
                        sum.iter_mut().zip(&c[off..off + len]).for_each(|(s, &x)| *s = *s + x);
                    }
                    run_flat(&[&sum[..]], scale, st, mirrored, rule)
                }
                [] => unreachable!("checked above"),
            }
        };
        if n >= 2 * PAR_CHUNK && rayon::current_num_threads() > 1 {
            split_chunks(slices, n).into_par_iter().for_each(|(off, mut st)| run(off, &mut st));
            adjoint_tensor::threads::keep_warm();
        } else {
            run(0, &mut slices);
        }
    }
    for (t, a) in states.iter_mut().zip(arrays) {
        **t = Tensor::from_array(a);
    }
}

/// `slices` (each `n` long) cut into chunks of [`PAR_CHUNK`]: each chunk's offset and its part
/// of every slice.
fn split_chunks<T>(mut slices: Vec<&mut [T]>, n: usize) -> Vec<(usize, Vec<&mut [T]>)> {
    let mut jobs = Vec::with_capacity(n.div_ceil(PAR_CHUNK));
    let mut off = 0;
    while off < n {
        let len = PAR_CHUNK.min(n - off);
        let mut st = Vec::with_capacity(slices.len());
        for s in slices.iter_mut() {
            let (a, b) = std::mem::take(s).split_at_mut(len);
            *s = b;
            st.push(a);
        }
        jobs.push((off, st));
        off += len;
    }
    jobs
}

/// [`update_flat`]'s loop over one chunk: `st` is the state slices, then the parameter, then
/// (with `mirrored`) its mirror. One monomorphic loop per gradient-part count, state count and
/// mirror, as [`run`].
fn run_flat<T: FloatElement, F: ElementRule>(
    grads: &[&[T]],
    scale: T,
    st: &mut [&mut [T]],
    mirrored: bool,
    f: &F,
) {
    macro_rules! arms {
        ($(($g:tt, $k:tt, $m:tt)),* $(,)?) => {
            match (grads.len(), st.len() - 1 - usize::from(mirrored), usize::from(mirrored)) {
                $(($g, $k, $m) => {
                    let gs: [&&[T]; $g] = std::array::from_fn(|j| &grads[j]);
                    let (states, rest) = st.split_at_mut($k);
                    let (param, mirror) = rest.split_first_mut().expect("the parameter");
                    let states: [&mut &mut [T]; $k] =
                        states.iter_mut().collect::<Vec<_>>().try_into().ok().expect("K states");
                    let mirror: [&mut [T]; $m] =
                        mirror.iter_mut().map(|m| &mut **m).collect::<Vec<_>>().try_into().ok().expect("mirrors");
                    run_flat_k::<T, F, $k, $g, $m>(gs, scale, states, param, mirror, f)
                })*
                _ => unreachable!("one or two gradient parts, at most MAX_STATE state buffers"),
            }
        };
    }
    arms!(
        (1, 0, 0),
        (1, 1, 0),
        (1, 2, 0),
        (1, 3, 0),
        (1, 4, 0),
        (2, 0, 0),
        (2, 1, 0),
        (2, 2, 0),
        (2, 3, 0),
        (2, 4, 0),
        (1, 0, 1),
        (1, 1, 1),
        (1, 2, 1),
        (1, 3, 1),
        (1, 4, 1),
        (2, 0, 1),
        (2, 1, 1),
        (2, 2, 1),
        (2, 3, 1),
        (2, 4, 1),
    )
}

fn run_flat_k<T: FloatElement, F: ElementRule, const K: usize, const G: usize, const M: usize>(
    gs: [&&[T]; G],
    scale: T,
    st: [&mut &mut [T]; K],
    param: &mut [T],
    mirror: [&mut [T]; M],
    f: &F,
) {
    adjoint_tensor::dispatch_simd!(
        run_flat_body,
        run_flat_avx2,
        run_flat_avx512,
        (gs, scale, st, param, mirror, f)
    )
}

adjoint_tensor::simd_builds!(run_flat_body => run_flat_avx2, run_flat_avx512,
    [T: FloatElement, F: ElementRule, const K: usize, const G: usize, const M: usize],
    (gs: [&&[T]; G], scale: T, st: [&mut &mut [T]; K], param: &mut [T], mirror: [&mut [T]; M], f: &F));

#[inline(always)]
fn run_flat_body<T: FloatElement, F: ElementRule, const K: usize, const G: usize, const M: usize>(
    gs: [&&[T]; G],
    scale: T,
    st: [&mut &mut [T]; K],
    param: &mut [T],
    mirror: [&mut [T]; M],
    f: &F,
) {
    let n = param.len();
    let gs: [&[T]; G] = gs.map(|g| &g[..n]);
    let st: [&mut [T]; K] = st.map(|s| &mut s[..n]);
    // `M` (0 or 1) mirrors: a constant, so the loop has no branch on it.
    let mut mirror: [&mut [T]; M] = mirror.map(|m| &mut m[..n]);
    for i in 0..n {
        let mut g = gs[0][i];
        for part in &gs[1..] {
            g = g + part[i];
        }
        let mut s = [T::zero(); MAX_STATE];
        for j in 0..K {
            s[j] = st[j][i];
        }
        let y = f.apply(param[i], g * scale, &mut s);
        param[i] = y;
        for m in mirror.iter_mut() {
            m[i] = y;
        }
        for j in 0..K {
            st[j][i] = s[j];
        }
    }
}

/// The leaves of one step and where their new values go: tensors ([`Optimizer::step`]) or raw
/// buffers updated in place ([`Optimizer::step_flat`]).
pub(crate) trait StepLeaves {
    fn len(&self) -> usize;
    /// Leaf `i`'s new value by `rule`, with its state buffers.
    fn update<R: ElementRule>(&mut self, i: usize, states: &mut [&mut Tensor], rule: &R);
    /// Leaf `i` stays as it is (frozen).
    fn keep(&mut self, i: usize);
}

pub(crate) struct TensorLeaves<'a> {
    pub(crate) ps: &'a [Tensor],
    pub(crate) gs: &'a [Tensor],
    pub(crate) out: Vec<Tensor>,
}

impl StepLeaves for TensorLeaves<'_> {
    fn len(&self) -> usize {
        self.ps.len()
    }

    fn update<R: ElementRule>(&mut self, i: usize, states: &mut [&mut Tensor], rule: &R) {
        self.out.push(update_leaf_rule(&self.ps[i], &self.gs[i], states, rule));
    }

    fn keep(&mut self, i: usize) {
        self.out.push(self.ps[i].clone());
    }
}

pub(crate) struct FlatLeaves<'a, 'b>(pub(crate) &'a mut [Flat<'b>]);

impl StepLeaves for FlatLeaves<'_, '_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn update<R: ElementRule>(&mut self, i: usize, states: &mut [&mut Tensor], rule: &R) {
        match &mut self.0[i] {
            Flat::F32(l) => update_flat(l.param, l.grads, l.scale, l.mirror.as_deref_mut(), states, rule),
            Flat::F64(l) => update_flat(l.param, l.grads, l.scale, l.mirror.as_deref_mut(), states, rule),
        }
    }

    fn keep(&mut self, i: usize) {
        match &mut self.0[i] {
            Flat::F32(FlatLeaf { param, mirror: Some(m), .. }) => m.copy_from_slice(param),
            Flat::F64(FlatLeaf { param, mirror: Some(m), .. }) => m.copy_from_slice(param),
            _ => {}
        }
    }
}

/// [`Optimizer::step_flat`](super::Optimizer::step_flat)'s check of the leaf count.
#[track_caller]
pub(crate) fn check_flat(name: &str, n_leaves: usize, leaves: &[Flat<'_>]) {
    assert!(
        leaves.len() == n_leaves,
        "adjoint-nn: {name}::step_flat: {} leaves for an optimizer built for {n_leaves}",
        leaves.len()
    );
}

/// [`Optimizer::step_flat`](super::Optimizer::step_flat)'s check of one state buffer per leaf.
#[track_caller]
pub(crate) fn check_flat_state(name: &str, what: &str, state: &[Tensor], leaves: &[Flat<'_>]) {
    for (i, (s, l)) in state.iter().zip(leaves).enumerate() {
        assert!(
            s.numel() == l.len(),
            "adjoint-nn: {name}::step_flat: state `{what}.{i}` has {} elements but the parameter {}",
            s.numel(),
            l.len()
        );
    }
}

/// PyTorch's `lerp`: `a + w (b - a)` for `w < 0.5`, else `b - (b - a)(1 - w)` (exact at both
/// ends).
#[inline]
pub(crate) fn lerp<S: FloatElement>(a: S, b: S, w: S) -> S {
    if w.abs() < S::from_f64(0.5) {
        a + w * (b - a)
    } else {
        b - (b - a) * (S::one() - w)
    }
}
