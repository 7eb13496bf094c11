//! Reverse mode: [`Var`] on a thread-local arena tape, in the style of Stan Math.
//!
//! ## Layout
//!
//! The tape is one `Vec<Node>` per thread. A node is 24 bytes — two parent ids and the two
//! partial derivatives of the operation that made it — and is pushed by value, so recording an
//! operation is one bounds check and one store into memory the `Vec` already owns: no per-node
//! allocation, no `Rc`, no closure. A [`Var`] is `Copy`: its primal `f64` and a `u32` node id.
//!
//! Id `0` means "constant": constants record nothing. Node `k ≥ 1` lives at `nodes[k - 1]`.
//! Unary operations name parent `0` with partial `0`; inputs name no parents at all.
//!
//! ## Fused n-ary nodes
//!
//! The fused operations of [`Real`] — [`sum_slice`](Real::sum_slice), [`dot`](Real::dot),
//! [`dot_lit`](Real::dot_lit), [`sum_sq`](Real::sum_sq), [`log_sum_exp`](Real::log_sum_exp) —
//! and [`preaccumulate`] record a whole linear combination `y = Σ dᵢ·xᵢ` at once, instead of
//! one binary node per `+`/`·`: `m` terms are packed two per *payload* node (the same 24-byte
//! layout, parents and partials), followed by a *header* `{a: NARY, b: payload count}` whose
//! id is `y`'s. Payload nodes are never named as parents, so their adjoints stay zero; the
//! sweep meets the header first, adds `dᵢ·ȳ` into every `xᵢ` in one tight loop, and jumps over
//! the payload. One or two terms need no header: the single payload node is an ordinary node.
//! So `m` terms cost `⌈m/2⌉ + 1` slots and one thread-local access to record, against `2m − 1`
//! binary nodes and as many accesses for the folded `Σ aᵢ·bᵢ` — and the sweep's per-node
//! load-and-test of `ȳ` happens once. The header test is one predictable branch per node with a
//! nonzero adjoint. Keeping one node layout means no second node array and no second sweep (the
//! dense block nodes below keep their numbers in a side buffer, but are swept in the same pass).
//!
//! ## Dense block nodes
//!
//! [`sum_sq_matvec_lit`](Real::sum_sq_matvec_lit) — `Σᵣ (Σⱼ mᵣⱼ·wⱼ)²` over a packed matrix of
//! variables and a constant vector, the quadratic form of a Gaussian log-density — has a
//! partial for every entry of `m`, `2·lᵣ·wⱼ` with `lᵣ` the row's product: an outer product.
//! When `m`'s variables are consecutive on the tape (made so by [`pack`](Real::pack)), the
//! operation records no per-entry terms: a header `{a: BLOCK, b: offset}` points into a side
//! buffer of `f64`s holding the block's first id, its shape, the `2·lᵣ` and the `w`s (about
//! `R + J` values instead of `R·J` terms, as Stan Math's matrix `vari`s keep their operands
//! rather than per-entry partials). The sweep adds `(ȳ·2lᵣ)·wⱼ` into a contiguous stretch of
//! adjoints, row by row — a loop the compiler vectorises, with no gather or scatter. The side
//! buffer is truncated with the scope like the nodes.
//!
//! ## The sweep
//!
//! Adjoints live in a separate, reused `Vec<f64>` indexed by `id - mark`, where `mark` is the
//! number of nodes that existed when the [`Tape`] scope opened. Slot `0` is a sink: parent ids
//! at or below `mark` (constants, or variables of an enclosing scope) map to it through one
//! branch-free `saturating_sub`, so the inner loop is `adj[a] += da·g; adj[b] += db·g` with no
//! tests. One backward pass over the scope's nodes gives the whole gradient.
//!
//! ## Scopes and nesting
//!
//! [`Tape::new`] opens a scope; dropping it truncates the node `Vec` back to where the scope
//! began, keeping its capacity, so the next gradient reuses the same memory (Stan's
//! `start_nested`/`recover_memory_nested`). Scopes nest: an inner scope can compute a gradient
//! (an inner optimisation loop, say) while an outer computation is being recorded; the inner
//! sweep only touches inner nodes and treats outer variables as constants.
//!
//! Second order uses forward-over-reverse's mirror, `Dual<Var>` (a forward tangent whose
//! arithmetic is recorded): the tangent output `∇f·v` is a `Var`, and one reverse sweep from it
//! gives `H·v`. That keeps the tape `f64`-only (24-byte nodes) rather than generic.
//!
//! ## Safety
//!
//! There is no `unsafe` here: the tape is a `RefCell` in a `thread_local!`, and ids are checked
//! indices. `Var` is neither `Send` nor `Sync`, so it cannot reach another thread's tape. A
//! `Var` kept past the end of its scope is a logic error (its id may name a later node); it is
//! caught in debug builds when the id is beyond the tape, not when it has been reused.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::chain::{impl_real, Chain};
use crate::real::Real;

#[derive(Clone, Copy, Debug)]
struct Node {
    a: u32,
    b: u32,
    da: f64,
    db: f64,
}

struct TapeData {
    nodes: Vec<Node>,
    marks: Vec<usize>,
    adj: Vec<f64>,
    /// The side buffer of the dense block nodes (see the module docs).
    vals: Vec<f64>,
}

thread_local! {
    static TAPE: RefCell<TapeData> = const {
        RefCell::new(TapeData { nodes: Vec::new(), marks: Vec::new(), adj: Vec::new(), vals: Vec::new() })
    };
}

#[inline]
fn push(node: Node) -> u32 {
    TAPE.with(|t| {
        let mut t = t.borrow_mut();
        let id = t.nodes.len() + 1;
        debug_assert!(node.a < id as u32 && node.b < id as u32, "Var used after its Tape scope ended");
        if id >= MAX_ID {
            panic!("Var tape full: more than {} nodes on this thread", MAX_ID - 1);
        }
        t.nodes.push(node);
        id as u32
    })
}

/// Parent id marking an n-ary node's header (never a real id: ids stay below [`BLOCK`]).
const NARY: u32 = u32::MAX;
/// Parent id marking a dense block node's header (see the module docs).
const BLOCK: u32 = u32::MAX - 1;
/// Ids stay below this (the two header markers above are never ids).
const MAX_ID: usize = BLOCK as usize;

/// Record one linear combination `Σ dᵢ·xᵢ` (constants skipped) and return its id, `0` when
/// every term is constant. The terms are packed two per payload node; more than one payload
/// node gets a header `{a: NARY, b: payload count}` after them, whose id is the result (see
/// the module docs). One or two terms make an ordinary node.
#[inline]
fn push_terms(terms: impl Iterator<Item = (Var, f64)>) -> u32 {
    TAPE.with(|t| {
        let mut t = t.borrow_mut();
        let start = t.nodes.len();
        let mut terms = terms.filter(|(x, _)| x.id != 0);
        t.nodes.reserve(terms.size_hint().1.unwrap_or(0) / 2 + 2);
        while let Some((x, da)) = terms.next() {
            debug_assert!((x.id as usize) <= start, "Var used after its Tape scope ended");
            let (b, db) = terms.next().map_or((0, 0.0), |(y, d)| (y.id, d));
            debug_assert!((b as usize) <= start, "Var used after its Tape scope ended");
            t.nodes.push(Node { a: x.id, b, da, db });
        }
        let payload = t.nodes.len() - start;
        if payload > 1 {
            t.nodes.push(Node { a: NARY, b: payload as u32, da: 0.0, db: 0.0 });
        }
        let top = t.nodes.len();
        if top >= MAX_ID {
            t.nodes.truncate(start);
            panic!("Var tape full: more than {} nodes on this thread", MAX_ID - 1);
        }
        if payload == 0 {
            0
        } else {
            top as u32
        }
    })
}

/// A reverse-mode variable: an `f64` value and the id of the tape node that computed it.
///
/// Arithmetic on `Var`s records nodes on the current thread's tape; [`Tape::gradient`] then
/// sweeps them backwards. Usually you do not touch the tape: the drivers
/// ([`gradient`](crate::gradient), [`hessian`](crate::hessian), …) open a scope, call your
/// function and clean up.
///
/// ```
/// use adjoint_scalar::prelude::*;
/// let tape = Tape::new();
/// let x = tape.var(3.0);
/// let y = tape.var(2.0);
/// let f = x * x * y + y.sin();
/// let g = tape.gradient(f);
/// assert_eq!(g.wrt(x), 12.0);
/// assert_eq!(g.wrt(y), 9.0 + 2.0f64.cos());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Var {
    val: f64,
    id: u32,
    _not_send: PhantomData<*const ()>,
}

impl Var {
    #[inline]
    fn node(val: f64, id: u32) -> Var {
        Var { val, id, _not_send: PhantomData }
    }
    /// A constant: no node is recorded and no derivative flows into it.
    #[inline]
    pub fn constant(val: f64) -> Var {
        Var::node(val, 0)
    }
    /// A new independent variable on the current tape (prefer [`Tape::var`], which ties it to
    /// a scope).
    #[inline]
    pub fn input(val: f64) -> Var {
        Var::node(val, push(Node { a: 0, b: 0, da: 0.0, db: 0.0 }))
    }
    /// The primal value.
    #[inline]
    pub fn value(self) -> f64 {
        self.val
    }
    /// Whether this is a constant (records nothing).
    #[inline]
    pub fn is_constant(self) -> bool {
        self.id == 0
    }
}

impl Chain for Var {
    type S = f64;
    #[inline]
    fn re(&self) -> f64 {
        self.val
    }
    #[inline]
    fn cst(v: f64) -> Var {
        Var::constant(v)
    }
    #[inline]
    fn chain(self, v: f64, d: f64) -> Var {
        if self.id == 0 {
            return Var::constant(v);
        }
        Var::node(v, push(Node { a: self.id, b: 0, da: d, db: 0.0 }))
    }
    #[inline]
    fn chain2(self, o: Var, v: f64, da: f64, db: f64) -> Var {
        if (self.id | o.id) == 0 {
            return Var::constant(v);
        }
        Var::node(v, push(Node { a: self.id, b: o.id, da, db }))
    }
    #[inline]
    fn chain_n<I: Iterator<Item = (Var, f64)>>(v: f64, terms: I) -> Var {
        Var::node(v, push_terms(terms))
    }
    fn sum_sq_matvec_(m: &[Var], w: &[f64], first: usize, step: usize, rows: usize) -> Var {
        push_block(m, w, first, step, rows)
            .unwrap_or_else(|| crate::chain::rules::sum_sq_matvec_terms(m, w, first, step, rows))
    }
    fn pack(xs: &[Var]) -> Vec<Var> {
        if consecutive(xs).is_some() {
            return xs.to_vec();
        }
        TAPE.with(|t| {
            let mut t = t.borrow_mut();
            let start = t.nodes.len();
            if start + xs.len() >= MAX_ID {
                panic!("Var tape full: more than {} nodes on this thread", MAX_ID - 1);
            }
            t.nodes.extend(xs.iter().map(|x| Node { a: x.id, b: 0, da: 1.0, db: 0.0 }));
            xs.iter().enumerate().map(|(k, x)| Var::node(x.val, (start + 1 + k) as u32)).collect()
        })
    }
}

/// The first id of `xs` when their ids are consecutive (`k`-th = first + `k`) and none is a
/// constant; `None` otherwise (and for the empty slice).
#[inline]
fn consecutive(xs: &[Var]) -> Option<u32> {
    let first = xs.first()?.id;
    (first != 0 && xs.iter().zip(first..).all(|(x, id)| x.id == id)).then_some(first)
}

/// Record `Σᵣ (Σⱼ mᵣⱼ·wⱼ)²` as one dense block node (the shape checked by the caller, `rows ≥
/// 1`): the header `[first id, rows, first, step]`, then `2·lᵣ` per row, then the `w`s the
/// rows use, in the side buffer (see the module docs). `None`, recording nothing, when `m`'s
/// ids are not consecutive (or one is a constant) — checked in the same pass that computes
/// the rows' products, which reads every entry anyway.
fn push_block(m: &[Var], w: &[f64], first: usize, step: usize, rows: usize) -> Option<Var> {
    let base = m[0].id;
    if base == 0 {
        return None;
    }
    TAPE.with(|t| {
        let mut t = t.borrow_mut();
        let off = t.vals.len();
        let id = t.nodes.len() + 1;
        debug_assert!((base as usize) < id, "Var used after its Tape scope ended");
        if id >= MAX_ID || off >= u32::MAX as usize {
            panic!("Var tape full: more than {} nodes on this thread", MAX_ID - 1);
        }
        let wlen = first + step * (rows - 1);
        t.vals.resize(off + 4 + rows + wlen, 0.0);
        let (head, rest) = t.vals[off..].split_at_mut(4 + rows);
        let (head, twice_l) = head.split_at_mut(4);
        head.copy_from_slice(&[base as f64, rows as f64, first as f64, step as f64]);
        rest.copy_from_slice(&w[..wlen]);
        // The rows of `rules::trapezoid`, walked by hand (hot: see there). `mismatch` collects
        // the bits by which any id differs from `base + k`.
        let (mut v, mut o, mut mismatch, mut want) = (0.0, 0, 0u32, base);
        for (r, tl) in twice_l.iter_mut().enumerate() {
            let len = first + step * r;
            let mut l = 0.0;
            for (x, &c) in m[o..o + len].iter().zip(&w[..len]) {
                l += x.val * c;
                mismatch |= x.id ^ want;
                want = want.wrapping_add(1);
            }
            v += l * l;
            *tl = l + l;
            o += len;
        }
        if mismatch != 0 {
            t.vals.truncate(off);
            return None;
        }
        t.nodes.push(Node { a: BLOCK, b: off as u32, da: 0.0, db: 0.0 });
        Some(Var::node(v, id as u32))
    })
}

/// The sweep of one dense block node: `adj[mᵣⱼ] += (ȳ·2lᵣ)·wⱼ` (see [`push_block`]). `mark`
/// is the scope's first id minus one; entries at or below it belong to an enclosing scope.
fn sweep_block(vals: &[f64], off: usize, g: f64, adj: &mut [f64], mark: usize) {
    let h = &vals[off..];
    let (base, rows, first, step) = (h[0] as usize, h[1] as usize, h[2] as usize, h[3] as usize);
    let (c, w) = h[4..].split_at(rows);
    let len = rows * first + step * rows * (rows - 1) / 2;
    let mut o = 0;
    if base > mark {
        let a = &mut adj[base - mark..base - mark + len];
        for (r, &cr) in c.iter().enumerate() {
            let n = first + step * r;
            let gr = g * cr;
            for (x, &wj) in a[o..o + n].iter_mut().zip(w) {
                *x += gr * wj;
            }
            o += n;
        }
    } else {
        // Straddling an enclosing scope (or wholly in one): entries at or below the mark go to
        // the sink, slot 0.
        for (r, &cr) in c.iter().enumerate() {
            let n = first + step * r;
            let gr = g * cr;
            for (j, &wj) in w[..n].iter().enumerate() {
                adj[(base + o + j).saturating_sub(mark)] += gr * wj;
            }
            o += n;
        }
    }
}

impl_real!([] Var);

macro_rules! var_scalar_ops {
    ($($s:ty),*) => {$(
        impl ::std::ops::Add<$s> for Var {
            type Output = Var;
            #[inline]
            fn add(self, o: $s) -> Var { self.chain(self.val + o as f64, 1.0) }
        }
        impl ::std::ops::Sub<$s> for Var {
            type Output = Var;
            #[inline]
            fn sub(self, o: $s) -> Var { self.chain(self.val - o as f64, 1.0) }
        }
        impl ::std::ops::Mul<$s> for Var {
            type Output = Var;
            #[inline]
            fn mul(self, o: $s) -> Var { self.chain(self.val * o as f64, o as f64) }
        }
        impl ::std::ops::Div<$s> for Var {
            type Output = Var;
            #[inline]
            fn div(self, o: $s) -> Var { let r = 1.0 / o as f64; self.chain(self.val * r, r) }
        }
        impl ::std::ops::Add<Var> for $s {
            type Output = Var;
            #[inline]
            fn add(self, o: Var) -> Var { o + self }
        }
        impl ::std::ops::Sub<Var> for $s {
            type Output = Var;
            #[inline]
            fn sub(self, o: Var) -> Var { o.chain(self as f64 - o.val, -1.0) }
        }
        impl ::std::ops::Mul<Var> for $s {
            type Output = Var;
            #[inline]
            fn mul(self, o: Var) -> Var { o * self }
        }
        impl ::std::ops::Div<Var> for $s {
            type Output = Var;
            #[inline]
            fn div(self, o: Var) -> Var { Var::constant(self as f64) / o }
        }
    )*};
}
var_scalar_ops!(f64);

/// Record `y = f(xs)` as one linear combination `Σ (∂f/∂xᵢ)·xᵢ` on the tape instead of every
/// operation inside `f` (local *preaccumulation*, as in CoDiPack or Adept's statement-level
/// Jacobians).
///
/// `f` runs on a nested [`Tape`] scope over fresh copies of the inputs; one reverse sweep of
/// that small scope gives the local gradient, the scope is dropped, and the outer tape receives
/// one n-ary node (`⌈m/2⌉ + 1` slots for `m ≥ 3` inputs, one slot for one or two) whatever `f`
/// did (inputs that are constants or have a zero partial are left out). It pays when `f` records many more nodes than it has
/// inputs — a small determinant inside a large recursion, a fixed-size kernel called millions
/// of times — and keeps the inner tape in cache. The derivative is still computed by AD, to
/// rounding the same as taping `f` directly (the sums are associated differently).
///
/// First order only: the recorded partials are `f64`s, so a `Dual<Var>` (Hessian-vector)
/// computation must call `f` directly.
///
/// ```
/// use adjoint_scalar::prelude::*;
/// use adjoint_scalar::tape::preaccumulate;
/// let tape = Tape::new();
/// let x = tape.vars(&[1.0, 2.0, 3.0]);
/// let before = tape.len();
/// let y = preaccumulate(&x, |v| (v[0] * v[1]).sin() * v[2].exp() + v[0] / v[2]);
/// assert_eq!(tape.len() - before, 3); // 3 inputs: 2 payload slots and a header
/// let g = tape.gradient(y * 2.0);
/// let (a, b, c) = (1.0f64, 2.0f64, 3.0f64);
/// assert!((g.wrt(x[0]) - 2.0 * (b * (a * b).cos() * c.exp() + 1.0 / c)).abs() < 1e-12);
/// assert!((g.wrt(x[2]) - 2.0 * ((a * b).sin() * c.exp() - a / (c * c))).abs() < 1e-12);
/// ```
pub fn preaccumulate(xs: &[Var], f: impl FnOnce(&[Var]) -> Var) -> Var {
    let mut partials = vec![0.0; xs.len()];
    let value = {
        let inner = Tape::new();
        let local: Vec<Var> = xs.iter().map(|x| inner.var(x.val)).collect();
        let y = f(&local);
        inner.gradient_into(y, &local, &mut partials);
        y.val
    };
    // One n-ary node over the nonzero terms.
    Var::node(value, push_terms(xs.iter().zip(&partials).filter(|&(_, &d)| d != 0.0).map(|(&x, &d)| (x, d))))
}

/// A tape scope: variables made in it, and everything computed from them, are recorded until
/// it is dropped, which reclaims their memory (keeping the capacity for the next scope).
///
/// Scopes nest; see the module docs. A `Tape` is tied to its thread.
///
/// ```
/// use adjoint_scalar::prelude::*;
/// // An inner scope computes a gradient while the outer one stays open.
/// let outer = Tape::new();
/// let a = outer.var(1.5);
/// let inner_grad = {
///     let inner = Tape::new();
///     let x = inner.var(2.0);
///     inner.gradient(x.powi(3)).wrt(x)
/// };
/// let y = a * inner_grad;
/// assert_eq!(outer.gradient(y).wrt(a), 12.0);
/// ```
pub struct Tape {
    mark: usize,
    /// Length of the block nodes' side buffer when the scope opened.
    vals_mark: usize,
    depth: usize,
    _not_send: PhantomData<*const ()>,
}

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

impl Tape {
    /// Open a scope on this thread's tape.
    pub fn new() -> Tape {
        TAPE.with(|t| {
            let mut t = t.borrow_mut();
            let mark = t.nodes.len();
            t.marks.push(mark);
            Tape { mark, vals_mark: t.vals.len(), depth: t.marks.len(), _not_send: PhantomData }
        })
    }

    /// A new independent variable.
    #[inline]
    pub fn var(&self, x: f64) -> Var {
        Var::input(x)
    }

    /// New independent variables, one per value.
    pub fn vars(&self, xs: &[f64]) -> Vec<Var> {
        xs.iter().map(|&x| Var::input(x)).collect()
    }

    /// Number of nodes recorded in this scope so far.
    pub fn len(&self) -> usize {
        TAPE.with(|t| t.borrow().nodes.len().saturating_sub(self.mark))
    }

    /// Whether nothing has been recorded in this scope.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reverse sweep from `y`: the adjoints `∂y/∂v` of every variable of this scope.
    pub fn gradient(&self, y: Var) -> Adjoints {
        let mut adj = Vec::new();
        self.sweep_into(y, &mut adj);
        Adjoints { mark: self.mark, adj }
    }

    /// Reverse sweep from `y`, writing `∂y/∂xs[i]` into `out[i]`, with the tape's own reused
    /// adjoint buffer (no allocation once warm).
    ///
    /// Panics if `xs` and `out` differ in length.
    #[track_caller]
    pub fn gradient_into(&self, y: Var, xs: &[Var], out: &mut [f64]) {
        assert_eq!(xs.len(), out.len(), "Tape::gradient_into: {} inputs but {} outputs", xs.len(), out.len());
        TAPE.with(|t| {
            let mut t = t.borrow_mut();
            let mut adj = std::mem::take(&mut t.adj);
            drop(t);
            self.sweep_into(y, &mut adj);
            for (o, x) in out.iter_mut().zip(xs) {
                *o = read_adjoint(&adj, self.mark, *x);
            }
            TAPE.with(|t| t.borrow_mut().adj = adj);
        })
    }

    fn sweep_into(&self, y: Var, adj: &mut Vec<f64>) {
        let m = self.mark;
        TAPE.with(|t| {
            let t = t.borrow();
            adj.clear();
            let top = t.nodes.len() - m;
            adj.resize(top + 1, 0.0);
            if (y.id as usize) <= m {
                return;
            }
            let start = y.id as usize - m;
            adj[start] = 1.0;
            let nodes = &t.nodes[m..];
            let mut k = start;
            while k > 0 {
                let g = adj[k];
                k -= 1;
                if g == 0.0 {
                    continue;
                }
                let n = nodes[k];
                if n.a >= BLOCK {
                    // A header (one test on the common path for both kinds).
                    if n.a == BLOCK {
                        sweep_block(&t.vals, n.b as usize, g, adj, m);
                        continue;
                    }
                    // An n-ary node: its payload nodes (never named as parents, so their own
                    // adjoints stay zero) take this adjoint; skip over them.
                    let p = n.b as usize;
                    for q in &nodes[k - p..k] {
                        adj[(q.a as usize).saturating_sub(m)] += q.da * g;
                        adj[(q.b as usize).saturating_sub(m)] += q.db * g;
                    }
                    k -= p;
                    continue;
                }
                adj[(n.a as usize).saturating_sub(m)] += n.da * g;
                adj[(n.b as usize).saturating_sub(m)] += n.db * g;
            }
            adj[0] = 0.0;
        })
    }
}

impl Drop for Tape {
    fn drop(&mut self) {
        TAPE.with(|t| {
            let mut t = t.borrow_mut();
            // Dropping an outer scope first also closes the inner ones (never panics in drop).
            let depth = self.depth - 1;
            if t.marks.len() > depth {
                t.marks.truncate(depth);
            }
            let mark = self.mark.min(t.nodes.len());
            t.nodes.truncate(mark);
            let vals_mark = self.vals_mark.min(t.vals.len());
            t.vals.truncate(vals_mark);
        })
    }
}

/// The result of a reverse sweep: adjoints of every variable of one scope.
#[derive(Clone, Debug)]
pub struct Adjoints {
    mark: usize,
    adj: Vec<f64>,
}

impl Adjoints {
    /// `∂y/∂x`: zero for constants and for variables of enclosing scopes.
    pub fn wrt(&self, x: Var) -> f64 {
        read_adjoint(&self.adj, self.mark, x)
    }
}

fn read_adjoint(adj: &[f64], mark: usize, x: Var) -> f64 {
    let id = x.id as usize;
    if id <= mark {
        return 0.0;
    }
    adj.get(id - mark).copied().unwrap_or(0.0)
}
