//! Memory planning for the fast plan: which intermediates may share a buffer.
//!
//! **Why.** The fast plan drops every intermediate after its last reader, and the buffer cache
//! (`adjoint_tensor::cache`) hands freed buffers to the next array *of the same size class*.
//! A training step allocates many distinct sizes — W3's CNN step: conv outputs, pooled maps,
//! pooling indices, their gradients — so the cache ends up holding, per size, as many buffers
//! as were ever live at once: on W3 the cache plus the live arrays held 46 MB after a step
//! whose live arrays never exceeded 26 MB. Eager mode cannot do better, because it does not know
//! what comes next; a staged program does.
//!
//! **How.** [`plan`] reads the program once, when its plan is built: each equation output of
//! at least [`MIN_CACHED_BYTES`](adjoint_tensor::cache::MIN_CACHED_BYTES) is a buffer live from
//! its equation to the last reader of it or of any view of it (the outputs of a primitive whose
//! [`is_view`](crate::primitive::Primitive::is_view) holds — `reshape`, `broadcast_to`,
//! `permute`, `slice`, `split`, `stop_gradient` — are views of its first input). The buffers are assigned to shared *objects* greedily by size — largest first, each
//! into the smallest existing object of its element type whose buffers' lifetimes it does not
//! overlap, else a new object (TensorFlow Lite's "greedy by size" arena planner, with objects in
//! place of arena offsets). Each buffer smaller than its object is then allocated at the
//! object's capacity ([`cache::with_hints`](adjoint_tensor::cache::with_hints)), so that it
//! comes from and returns to the object's size class, and the cache holds one buffer per object
//! instead of one per distinct size and overlap. The program's outputs are never hinted (the
//! caller keeps them), nor are its inputs and constants (the plan does not allocate them). The
//! assignment is quadratic in the buffers, so a program with more than [`MAX_PLANNED`] large
//! intermediates (a long unrolled loop) is not planned and keeps the cache's behaviour.
//!
//! The model is static, so it can be wrong about a run: a fused kernel may write its output in
//! place of a dead input instead of allocating, or a `reshape` of a strided array copies. Either
//! way only memory use is affected — a buffer the plan expected is never asked for, or one it
//! did not expect comes from its own class — never a result: hints change capacities, not
//! contents or lengths.

use adjoint_tensor::cache::{Hint, MIN_CACHED_BYTES};
use adjoint_tensor::DType;
use smallvec::SmallVec;

use super::ir::Ir;

/// The most buffers [`plan`] assigns (see [`assign`]).
const MAX_PLANNED: usize = 2048;

/// Per equation, the capacity hints its outputs are allocated under (empty for most).
pub(crate) type Hints = Vec<SmallVec<[Hint; 2]>>;

/// One buffer of the model: element type, length, and the equations it is live over
/// (inclusive; `def = usize::MAX` for buffers the plan does not allocate).
#[derive(Clone, Debug)]
struct Buffer {
    dtype: DType,
    len: usize,
    def: usize,
    last: usize,
    /// Reaches the program's outputs (live past the end, never hinted).
    escapes: bool,
}

/// The capacity hints of `ir` (see the [module docs](self)).
pub(crate) fn plan(ir: &Ir) -> Hints {
    let bufs = model(ir);
    hints_for(ir, &bufs)
}

/// The buffers of `ir` and their lifetimes.
fn model(ir: &Ir) -> Vec<Buffer> {
    let mut buf_of: Vec<Option<usize>> = vec![None; ir.avals.len()];
    let mut bufs: Vec<Buffer> = Vec::new();
    let outside = |v: usize, bufs: &mut Vec<Buffer>| {
        bufs.push(Buffer { dtype: ir.avals[v].dtype, len: 0, def: usize::MAX, last: 0, escapes: true });
        bufs.len() - 1
    };
    for &v in ir.inputs.iter().chain(ir.consts.iter().map(|(v, _)| v)) {
        buf_of[v] = Some(outside(v, &mut bufs));
    }
    for (i, e) in ir.eqns.iter().enumerate() {
        for &v in &e.ins {
            if let Some(b) = buf_of[v] {
                bufs[b].last = bufs[b].last.max(i);
            }
        }
        let view_of = if e.prim.is_view() { e.ins.first().and_then(|&v| buf_of[v]) } else { None };
        for &o in &e.outs {
            buf_of[o] = Some(match view_of {
                Some(b) => b,
                None => {
                    let a = &ir.avals[o];
                    let len = a.shape.iter().product::<usize>();
                    bufs.push(Buffer { dtype: a.dtype, len, def: i, last: i, escapes: false });
                    bufs.len() - 1
                }
            });
        }
    }
    for &v in &ir.outputs {
        if let Some(b) = buf_of[v] {
            bufs[b].escapes = true;
        }
    }
    bufs
}

/// Per equation, the hints that allocate each buffer of `bufs` at its object's capacity.
fn hints_for(ir: &Ir, bufs: &[Buffer]) -> Hints {
    let mut hints: Hints = vec![SmallVec::new(); ir.eqns.len()];
    // A hint names a length and a type, not an output: two outputs of one equation that share
    // both would both take the first one's capacity, so such equations get none.
    let ambiguous = |buf: &Buffer| {
        let twins = ir.eqns[buf.def].outs.iter().filter(|&&o| {
            ir.avals[o].dtype == buf.dtype && ir.avals[o].shape.iter().product::<usize>() == buf.len
        });
        twins.count() > 1
    };
    for (b, cap) in assign(bufs) {
        let buf = &bufs[b];
        if cap > buf.len && hints[buf.def].len() < adjoint_tensor::cache::MAX_HINTS && !ambiguous(buf) {
            hints[buf.def].push(Hint::new(buf.dtype, buf.len, cap));
        }
    }
    hints
}

/// A shared object of the plan: element type, capacity (elements), and the lifetimes of the
/// buffers assigned to it so far.
struct Object {
    dtype: DType,
    cap: usize,
    lives: Vec<(usize, usize)>,
}

/// Greedy-by-size assignment of the plannable buffers to objects: `(buffer, object capacity)`
/// for each.
fn assign(bufs: &[Buffer]) -> Vec<(usize, usize)> {
    let plannable =
        |b: &Buffer| !b.escapes && b.def != usize::MAX && b.len * b.dtype.size_in_bytes() >= MIN_CACHED_BYTES;
    let mut order: Vec<usize> = (0..bufs.len()).filter(|&b| plannable(&bufs[b])).collect();
    // The assignment is quadratic in the buffers; a program with more large intermediates
    // than this (a long unrolled loop) is left to the cache rather than slowing its compile.
    if order.len() > MAX_PLANNED {
        return Vec::new();
    }
    order.sort_by_key(|&b| (std::cmp::Reverse(bufs[b].len * bufs[b].dtype.size_in_bytes()), bufs[b].def));
    let mut objects: Vec<Object> = Vec::new();
    let mut out = Vec::with_capacity(order.len());
    for b in order {
        let buf = &bufs[b];
        let free = |o: &Object| {
            o.dtype == buf.dtype
                && o.cap >= buf.len
                && o.lives.iter().all(|&(d, l)| l < buf.def || buf.last < d)
        };
        // Every existing object is at least as large (buffers come largest first): the
        // smallest free one fits best.
        let best = (0..objects.len()).filter(|&k| free(&objects[k])).min_by_key(|&k| objects[k].cap);
        let k = best.unwrap_or_else(|| {
            objects.push(Object { dtype: buf.dtype, cap: buf.len, lives: Vec::new() });
            objects.len() - 1
        });
        objects[k].lives.push((buf.def, buf.last));
        out.push((b, objects[k].cap));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(len: usize, def: usize, last: usize) -> Buffer {
        Buffer { dtype: DType::F32, len, def, last, escapes: false }
    }

    #[test]
    fn buffers_with_disjoint_lifetimes_share_the_largest_ones_object() {
        // 4 MB live over [0, 2], then 1 MB over [3, 5] and 2 MB over [4, 6]: the 2 MB and 1 MB
        // overlap, so the 2 MB buffer reuses the 4 MB object and the 1 MB one gets its own.
        let bufs = [buf(1 << 20, 0, 2), buf(1 << 18, 3, 5), buf(1 << 19, 4, 6)];
        let mut got = assign(&bufs);
        got.sort();
        assert_eq!(got, vec![(0, 1 << 20), (1, 1 << 18), (2, 1 << 20)]);
    }

    #[test]
    fn overlapping_small_and_escaping_buffers_are_left_alone() {
        let mut bufs = vec![buf(1 << 20, 0, 5), buf(1 << 18, 1, 2), buf(10, 6, 7), buf(1 << 18, 6, 7)];
        bufs[3].escapes = true;
        let got = assign(&bufs);
        // The overlapping 1 MB buffer keeps its own size; the tiny and the escaping ones are
        // not planned at all.
        assert_eq!(got, vec![(0, 1 << 20), (1, 1 << 18)]);
    }

    #[test]
    fn too_many_buffers_are_not_planned() {
        let bufs: Vec<Buffer> = (0..=MAX_PLANNED).map(|i| buf(1 << 18, 2 * i, 2 * i + 1)).collect();
        assert!(assign(&bufs).is_empty());
        assert_eq!(assign(&bufs[..MAX_PLANNED]).len(), MAX_PLANNED);
    }

    #[test]
    fn a_view_keeps_its_source_live_and_outputs_escape() {
        use crate::jit::make_ir;
        use crate::Tensor;
        // exp(x) is read again, through a reshape, by the last add: its buffer lives until then.
        let f = |x: &Tensor| {
            let v = x.exp().reshape(&[64, 4]);
            let c = x.sin() * 2.0;
            (c.reshape(&[64, 4]) + v, x.cos())
        };
        let ir = make_ir(f)(&Tensor::zeros(&[256]));
        let names: Vec<&str> = ir.eqns.iter().map(|e| e.prim.name()).collect();
        let bufs = model(&ir);
        let of = |name: &str| {
            let i = names.iter().position(|n| *n == name).unwrap_or_else(|| panic!("{name} in {names:?}"));
            bufs.iter().find(|b| b.def == i).expect("a buffer defined there")
        };
        let add = names.iter().position(|n| *n == "add").expect("add");
        assert_eq!(of("exp").last, add, "{names:?}");
        assert!(!of("exp").escapes && !of("sin").escapes);
        assert!(of("add").escapes && of("cos").escapes);
        // A view is no buffer of its own: one buffer per non-view equation, input and constant.
        let views = ir.eqns.iter().filter(|e| e.prim.is_view()).count();
        assert_eq!(bufs.len(), ir.inputs.len() + ir.consts.len() + ir.eqns.len() - views);
    }

    #[test]
    fn element_types_do_not_share() {
        let mut bufs = vec![buf(1 << 20, 0, 1), buf(1 << 18, 2, 3)];
        bufs[1].dtype = DType::I64;
        assert_eq!(assign(&bufs), vec![(0, 1 << 20), (1, 1 << 18)]);
    }
}
