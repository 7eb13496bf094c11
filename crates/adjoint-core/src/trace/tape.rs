//! The reverse-mode tape: nodes in execution order; each output of a node is a numbered
//! *value*, and a node's parents are the values of its inputs (`None`: a constant).

use smallvec::SmallVec;

use crate::debug;
use crate::primitive::{Grads, Pullback};
use crate::profile;
use crate::tensor::Tensor;

struct Node {
    parents: SmallVec<[Option<usize>; 3]>,
    first_out: usize,
    n_out: usize,
    pullback: Option<Pullback>,
    /// The forward op and its call site, recorded in anomaly mode only.
    origin: Option<debug::Origin>,
    /// The forward op and its call site, recorded while profiling only (the profiler labels the
    /// pullback's binds with it).
    profiled: Option<(&'static str, &'static std::panic::Location<'static>)>,
}

/// A reverse-mode tape (one per `grad`/`vjp` call).
#[derive(Default)]
pub(crate) struct Tape {
    nodes: Vec<Node>,
    n_values: usize,
}

impl Tape {
    /// Append a node with `n_out` outputs; returns the value id of its first output.
    pub(crate) fn push(
        &mut self,
        parents: SmallVec<[Option<usize>; 3]>,
        n_out: usize,
        pullback: Option<Pullback>,
        origin: Option<debug::Origin>,
    ) -> usize {
        let first_out = self.n_values;
        self.n_values += n_out;
        let profiled = if pullback.is_some() { profile::current() } else { None };
        self.nodes.push(Node { parents, first_out, n_out, pullback, origin, profiled });
        first_out
    }

    /// The reverse sweep: seed cotangents of some values, run pullbacks in reverse order with
    /// ordinary (differentiable) ops, and return the cotangent of every value (leaves keep
    /// theirs). With `consume`, each node's pullback — and so its residuals — is dropped as
    /// soon as it has run.
    pub(crate) fn backward(&mut self, seeds: Vec<(usize, Tensor)>, consume: bool) -> Vec<Option<Tensor>> {
        self.backward_watched(seeds, consume, &[], &mut |_, _| {})
    }

    /// [`backward`](Self::backward), calling `ready(w, ct)` for each watched value `watch[w]`
    /// as soon as its cotangent is final — once no node left to run reads it (at the start for
    /// a value no node reads) — so the caller can use it while the sweep goes on. `ct` is
    /// `None` when nothing reached the value.
    pub(crate) fn backward_watched(
        &mut self,
        seeds: Vec<(usize, Tensor)>,
        consume: bool,
        watch: &[usize],
        ready: &mut dyn FnMut(usize, Option<&Tensor>),
    ) -> Vec<Option<Tensor>> {
        let mut cts: Vec<Option<Tensor>> = vec![None; self.n_values];
        for (v, c) in seeds {
            accumulate(&mut cts[v], c);
        }
        // fire[i]: the watched values whose last reader in the reverse sweep is node i.
        let mut fire: Vec<SmallVec<[usize; 1]>> = Vec::new();
        if !watch.is_empty() {
            let mut which = vec![usize::MAX; self.n_values];
            for (w, &v) in watch.iter().enumerate() {
                which[v] = w;
            }
            let mut first = vec![usize::MAX; watch.len()];
            for (i, node) in self.nodes.iter().enumerate() {
                if node.pullback.is_some() {
                    for &p in node.parents.iter().flatten() {
                        if which[p] != usize::MAX && first[which[p]] == usize::MAX {
                            first[which[p]] = i;
                        }
                    }
                }
            }
            fire = vec![SmallVec::new(); self.nodes.len()];
            for (w, &i) in first.iter().enumerate() {
                if i == usize::MAX {
                    ready(w, cts[watch[w]].as_ref());
                } else {
                    fire[i].push(w);
                }
            }
        }
        let n = self.nodes.len();
        for i in (0..n).rev() {
            // Node i + 1 has run: the values it was the last to read are final.
            if let Some(done) = fire.get(i + 1) {
                for &w in done {
                    ready(w, cts[watch[w]].as_ref());
                }
            }
            let node = &mut self.nodes[i];
            let Some(pb) = node.pullback.as_ref() else { continue };
            let range = node.first_out..node.first_out + node.n_out;
            if cts[range.clone()].iter().all(|c| c.is_none()) {
                if consume {
                    node.pullback = None;
                }
                continue;
            }
            let mut out_cts: SmallVec<[Option<Tensor>; 2]> = SmallVec::new();
            for c in &mut cts[range] {
                out_cts.push(if consume { c.take() } else { c.clone() });
            }
            let rule = node.origin.map(|o| debug::RuleGuard::enter(debug::RuleKind::Vjp, o));
            let backward = node.profiled.map(profile::BackwardGuard::enter);
            let mut grads: Grads = (pb.f)(&out_cts);
            drop(backward);
            drop(rule);
            drop(out_cts);
            if consume {
                node.pullback = None;
            }
            // Taken in place: moving the inline list into an iterator would copy it whole.
            for (parent, g) in node.parents.iter().zip(grads.iter_mut()) {
                if let (Some(p), Some(g)) = (parent, g.take()) {
                    accumulate(&mut cts[*p], g);
                }
            }
        }
        if let Some(done) = fire.first() {
            for &w in done {
                ready(w, cts[watch[w]].as_ref());
            }
        }
        cts
    }
}

/// Add `g` to the cotangent collected so far for one value.
///
/// A value read by many ops (a weight used at every time step of a recurrent layer) collects
/// one cotangent per reader. When the running sum is a concrete array that nothing else holds,
/// and `g` is a concrete contiguous array of the same shape and float dtype, `g` is added into
/// the sum's own buffer: the same sums in the same order as `&prev + &g`, without a fresh
/// buffer and a second pass over memory per reader (W4's LSTM step spent half its op time in
/// these out-of-place adds). Anything else — tracers of an outer transform, a shared or strided
/// buffer, other dtypes — and every step under anomaly mode or the profiler (so they see the
/// op) takes the ordinary `add`.
fn accumulate(slot: &mut Option<Tensor>, g: Tensor) {
    // Updated in place: a tensor handle is 128 bytes, and each move of one is a copy.
    match slot {
        None => *slot = Some(g),
        Some(prev) => {
            if !add_in_place(prev, &g) {
                *prev = &*prev + &g;
            }
        }
    }
}

/// `prev += g` in `prev`'s buffer when that is allowed (see [`accumulate`]); false otherwise,
/// with `prev` unchanged.
fn add_in_place(prev: &mut Tensor, g: &Tensor) -> bool {
    use crate::tensor::Repr;
    use adjoint_tensor::DType;
    if debug::requested() || profile::requested() {
        return false;
    }
    let (Repr::Concrete(a), Repr::Concrete(b)) = (&mut prev.0, &g.0) else {
        return false;
    };
    if a.shape() != b.shape() || a.dtype() != b.dtype() {
        return false;
    }
    fn add<T: adjoint_tensor::Element + std::ops::AddAssign>(
        a: &mut adjoint_tensor::Array,
        b: &adjoint_tensor::Array,
    ) -> bool {
        let Some(y) = b.as_slice::<T>() else {
            return false;
        };
        let Some(x) = a.try_unique_slice_mut::<T>() else {
            return false;
        };
        for (x, &y) in x.iter_mut().zip(y) {
            *x += y;
        }
        true
    }
    match a.dtype() {
        DType::F32 => add::<f32>(a, b),
        DType::F64 => add::<f64>(a, b),
        _ => false,
    }
}
