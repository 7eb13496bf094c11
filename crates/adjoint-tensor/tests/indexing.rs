//! gather / index_select / scatter_add / index_add, concat / stack, pad, sort / argsort / topk:
//! each against a naive reference on random shapes (size-0 and size-1 dims included) and
//! random layouts (transposed, stepped, flipped, broadcast), plus every misuse message.

use std::cmp::Ordering;
use std::panic::{catch_unwind, UnwindSafe};

use adjoint_tensor::ops::pad::PadMode;
use adjoint_tensor::{Array, DType, Element};
use proptest::prelude::*;

// ------------------------------------------------------------------ helpers

/// splitmix64: a tiny deterministic generator driven by proptest's seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    /// A small integer-valued f64, so sums are exact.
    fn small(&mut self) -> f64 {
        self.below(11) as f64 - 5.0
    }
    /// A dim size in 0..=4, with 0 and 1 frequent.
    fn dim(&mut self) -> usize {
        [0, 1, 1, 2, 3, 4][self.below(6)]
    }
    fn shape(&mut self, min_rank: usize) -> Vec<usize> {
        let r = min_rank + self.below(4 - min_rank);
        (0..r).map(|_| self.dim()).collect()
    }
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    idx
}

fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// An array of `shape` whose elements come from `gen`, in one of several layouts: contiguous,
/// axes reversed, stepped with an offset along axis 0, flipped along the last axis, or
/// broadcast along axis 0.
fn random_layout<T: Element>(
    rng: &mut Rng,
    shape: &[usize],
    junk: T,
    mut make: impl FnMut(&mut Rng) -> T,
) -> Array {
    let r = shape.len();
    let kind = if r == 0 { 0 } else { rng.below(5) };
    match kind {
        1 => {
            let data: Vec<T> = (0..numel(shape)).map(|_| make(rng)).collect();
            let rev: Vec<usize> = (0..r).rev().collect();
            Array::from_vec(data, shape).permute(&rev).contiguous().permute(&rev)
        }
        2 => {
            let inner = numel(&shape[1..]);
            let mut big = shape.to_vec();
            big[0] = 2 * shape[0] + 1;
            let data: Vec<T> = (0..big[0] * inner)
                .map(|f| if (f / inner.max(1)) % 2 == 1 { make(rng) } else { junk })
                .collect();
            Array::from_vec(data, &big).slice(0, 1, big[0], 2)
        }
        3 => {
            let data: Vec<T> = (0..numel(shape)).map(|_| make(rng)).collect();
            Array::from_vec(data, shape).flip(r - 1).contiguous().flip(r - 1)
        }
        4 => {
            let mut one = shape.to_vec();
            one[0] = 1;
            let data: Vec<T> = (0..numel(&one)).map(|_| make(rng)).collect();
            Array::from_vec(data, &one).broadcast_to(shape)
        }
        _ => Array::from_vec((0..numel(shape)).map(|_| make(rng)).collect(), shape),
    }
}

/// `to_vec`, but safe on empty views whose offset lies past their (empty) storage, which
/// `Array::to_vec` does not handle yet (its `as_slice` slices `offset..offset + 0`).
trait Vals {
    fn vals<T: Element>(&self) -> Vec<T>;
}

impl Vals for Array {
    fn vals<T: Element>(&self) -> Vec<T> {
        if self.numel() == 0 {
            Vec::new()
        } else {
            self.to_vec()
        }
    }
}

fn random_f64(rng: &mut Rng, shape: &[usize]) -> Array {
    random_layout(rng, shape, 99.0f64, |r| r.small())
}

fn dot(a: &Array, b: &Array) -> f64 {
    a.vals::<f64>().iter().zip(b.vals::<f64>()).map(|(x, y)| x * y).sum()
}

/// The panic message of `f`, which must panic.
fn panic_message<R>(f: impl FnOnce() -> R + UnwindSafe) -> String {
    let err = catch_unwind(f).err().expect("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("string payload")
}

/// `f` panics with a message naming every part and this file as the caller.
fn assert_panics<R>(f: impl FnOnce() -> R + UnwindSafe, parts: &[&str]) {
    let msg = panic_message(f);
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
    assert!(msg.contains("indexing.rs"), "message {msg:?} lacks the caller's file");
}

fn cases() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

/// A random gather setup: input, axis, an in-range index of the same rank.
fn gather_setup(rng: &mut Rng) -> (Array, usize, Array) {
    let shape = rng.shape(1);
    let x = random_f64(rng, &shape);
    let axis = rng.below(shape.len());
    let mut ishape: Vec<usize> = shape.iter().map(|&d| rng.below(d + 1)).collect();
    ishape[axis] = if shape[axis] == 0 { 0 } else { rng.below(5) };
    let n = shape[axis];
    let index = random_layout(rng, &ishape, -7i64, |r| r.below(n) as i64);
    (x, axis, index)
}

// ------------------------------------------------------------------ gather & scatter

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn gather_matches_naive(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let (x, axis, index) = gather_setup(&mut rng);
        let out = x.gather(axis, &index);
        prop_assert_eq!(out.shape(), index.shape());
        let (xv, iv, ov) = (x.vals::<f64>(), index.vals::<i64>(), out.vals::<f64>());
        for (f, &o) in ov.iter().enumerate() {
            let mut idx = unravel(f, index.shape());
            idx[axis] = iv[f] as usize;
            prop_assert_eq!(o, xv[ravel(&idx, x.shape())]);
        }
    }

    #[test]
    fn scatter_add_is_the_transpose_of_gather(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let (x, axis, index) = gather_setup(&mut rng);
        let y = random_f64(&mut rng, index.shape());
        let zeros = Array::zeros(x.shape(), DType::F64);
        let lhs = dot(&x.gather(axis, &index), &y);
        let rhs = dot(&x, &zeros.scatter_add(axis, &index, &y));
        prop_assert_eq!(lhs, rhs);

        // And directly, onto a non-zero (possibly strided) base.
        let base = random_f64(&mut rng, x.shape());
        let out = base.scatter_add(axis, &index, &y);
        prop_assert!(out.is_contiguous());
        let mut expect = base.vals::<f64>();
        let (iv, yv) = (index.vals::<i64>(), y.vals::<f64>());
        for f in 0..iv.len() {
            let mut idx = unravel(f, index.shape());
            idx[axis] = iv[f] as usize;
            expect[ravel(&idx, x.shape())] += yv[f];
        }
        prop_assert_eq!(out.vals::<f64>(), expect);
    }

    #[test]
    fn index_select_matches_naive(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = rng.shape(1);
        let x = random_f64(&mut rng, &shape);
        let axis = rng.below(shape.len());
        let len = if shape[axis] == 0 { 0 } else { rng.below(5) };
        let n = shape[axis];
        let index = random_layout(&mut rng, &[len], 0i64, |r| r.below(n) as i64);
        let out = x.index_select(axis, &index);
        let mut oshape = shape.clone();
        oshape[axis] = len;
        prop_assert_eq!(out.shape(), &oshape[..]);
        let (xv, iv, ov) = (x.vals::<f64>(), index.vals::<i64>(), out.vals::<f64>());
        for (f, &o) in ov.iter().enumerate() {
            let mut idx = unravel(f, &oshape);
            idx[axis] = iv[idx[axis]] as usize;
            prop_assert_eq!(o, xv[ravel(&idx, &shape)]);
        }
    }

    #[test]
    fn index_add_is_the_transpose_of_index_select(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = rng.shape(1);
        let x = random_f64(&mut rng, &shape);
        let axis = rng.below(shape.len());
        let len = if shape[axis] == 0 { 0 } else { rng.below(5) };
        let n = shape[axis];
        let index = random_layout(&mut rng, &[len], 0i64, |r| r.below(n) as i64);
        let mut sshape = shape.clone();
        sshape[axis] = len;
        let y = random_f64(&mut rng, &sshape);
        let zeros = Array::zeros(&shape, DType::F64);
        prop_assert_eq!(dot(&x.index_select(axis, &index), &y), dot(&x, &zeros.index_add(axis, &index, &y)));

        let base = random_f64(&mut rng, &shape);
        let mut expect = base.vals::<f64>();
        let (iv, yv) = (index.vals::<i64>(), y.vals::<f64>());
        for (f, &v) in yv.iter().enumerate() {
            let mut idx = unravel(f, &sshape);
            idx[axis] = iv[idx[axis]] as usize;
            expect[ravel(&idx, &shape)] += v;
        }
        prop_assert_eq!(base.index_add(axis, &index, &y).vals::<f64>(), expect);
    }
}

#[test]
fn gather_and_scatter_other_dtypes() {
    let x = Array::from_vec(vec![true, false, false, true], &[2, 2]);
    let i = Array::from_vec(vec![1i64, 1], &[1, 2]);
    assert_eq!(x.gather(0, &i).vals::<bool>(), vec![false, true]);
    let xi = Array::from_vec(vec![10i64, 20, 30], &[3]);
    assert_eq!(xi.index_select(0, &Array::from_vec(vec![2i64, 2, 0], &[3])).vals::<i64>(), vec![30, 30, 10]);
    let s = Array::from_vec(vec![1i64, 2, 3], &[3]);
    let idx = Array::from_vec(vec![0i64, 0, 2], &[3]);
    assert_eq!(xi.scatter_add(0, &idx, &s).vals::<i64>(), vec![13, 20, 33]);
    let xf = Array::from_vec(vec![0.5f32; 2], &[2]);
    let out = xf.index_add(0, &Array::from_vec(vec![1i64], &[1]), &Array::from_vec(vec![2.0f32], &[1]));
    assert_eq!((out.dtype(), out.vals::<f32>()), (DType::F32, vec![0.5, 2.5]));
}

#[test]
fn index_misuse_messages() {
    let x = Array::zeros(&[2, 3], DType::F32);
    let bad = Array::from_vec(vec![0i64, 3], &[1, 2]);
    assert_panics(|| x.gather(1, &bad), &["gather", "index 3", "axis 1", "[2, 3]", "[1, 2]"]);
    let neg = Array::from_vec(vec![-1i64], &[1, 1]);
    assert_panics(|| x.gather(0, &neg), &["gather", "index -1", "axis 0", "[2, 3]"]);
    assert_panics(|| x.gather(0, &Array::zeros(&[1, 1], DType::F32)), &["gather", "int64", "float32"]);
    assert_panics(|| x.gather(0, &Array::zeros(&[2], DType::I64)), &["gather", "[2]", "[2, 3]"]);
    assert_panics(|| x.gather(0, &Array::zeros(&[1, 4], DType::I64)), &["gather", "[1, 4]", "[2, 3]"]);
    assert_panics(|| x.gather(2, &Array::zeros(&[1, 1], DType::I64)), &["gather", "axis 2", "[2, 3]"]);

    let i1 = Array::from_vec(vec![0i64, 5], &[2]);
    assert_panics(|| x.index_select(0, &i1), &["index_select", "index 5", "axis 0", "[2, 3]", "[2]"]);
    assert_panics(|| x.index_select(0, &bad), &["index_select", "1-D", "[1, 2]"]);

    let src = Array::zeros(&[1, 2], DType::F32);
    assert_panics(|| x.scatter_add(1, &bad, &src), &["scatter_add", "index 3", "axis 1", "[2, 3]"]);
    let ok = Array::zeros(&[1, 2], DType::I64);
    assert_panics(
        || x.scatter_add(1, &ok, &Array::zeros(&[2, 2], DType::F32)),
        &["scatter_add", "[1, 2]", "[2, 2]"],
    );
    assert_panics(
        || x.scatter_add(1, &ok, &Array::zeros(&[1, 2], DType::F64)),
        &["scatter_add", "float64", "float32"],
    );
    let xb = Array::zeros(&[2, 3], DType::Bool);
    assert_panics(|| xb.scatter_add(1, &ok, &Array::zeros(&[1, 2], DType::Bool)), &["scatter_add", "bool"]);

    let i2 = Array::from_vec(vec![0i64, 1], &[2]);
    assert_panics(
        || x.index_add(0, &i2, &Array::zeros(&[2, 4], DType::F32)),
        &["index_add", "[2, 4]", "[2, 3]", "axis 0"],
    );
    assert_panics(
        || x.index_add(1, &i1, &Array::zeros(&[2, 2], DType::F32)),
        &["index_add", "index 5", "axis 1"],
    );

    // The try_ twins return the error instead.
    let e = x.try_gather(1, &bad).unwrap_err();
    assert_eq!(e.op, "gather");
    assert!(x.try_index_select(0, &i1).is_err() && x.try_index_add(1, &i1, &src).is_err());
}

// ------------------------------------------------------------------ concat & stack

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn concat_matches_naive(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = rng.shape(1);
        let axis = rng.below(shape.len());
        let k = 1 + rng.below(3);
        let arrays: Vec<Array> = (0..k)
            .map(|_| {
                let mut s = shape.clone();
                s[axis] = rng.dim();
                random_f64(&mut rng, &s)
            })
            .collect();
        let refs: Vec<&Array> = arrays.iter().collect();
        let out = Array::concat(&refs, axis);
        let mut oshape = shape.clone();
        oshape[axis] = arrays.iter().map(|a| a.shape()[axis]).sum();
        prop_assert_eq!(out.shape(), &oshape[..]);
        let vals: Vec<Vec<f64>> = arrays.iter().map(|a| a.vals::<f64>()).collect();
        for (f, &o) in out.vals::<f64>().iter().enumerate() {
            let mut idx = unravel(f, &oshape);
            let mut j = 0;
            while idx[axis] >= arrays[j].shape()[axis] {
                idx[axis] -= arrays[j].shape()[axis];
                j += 1;
            }
            prop_assert_eq!(o, vals[j][ravel(&idx, arrays[j].shape())]);
        }
    }

    #[test]
    fn stack_matches_naive(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = rng.shape(0);
        let axis = rng.below(shape.len() + 1);
        let k = 1 + rng.below(3);
        let arrays: Vec<Array> = (0..k).map(|_| random_f64(&mut rng, &shape)).collect();
        let refs: Vec<&Array> = arrays.iter().collect();
        let out = Array::stack(&refs, axis);
        let mut oshape = shape.clone();
        oshape.insert(axis, k);
        prop_assert_eq!(out.shape(), &oshape[..]);
        let vals: Vec<Vec<f64>> = arrays.iter().map(|a| a.vals::<f64>()).collect();
        for (f, &o) in out.vals::<f64>().iter().enumerate() {
            let mut idx = unravel(f, &oshape);
            let j = idx.remove(axis);
            prop_assert_eq!(o, vals[j][ravel(&idx, &shape)]);
        }
    }
}

#[test]
fn shifts_by_one_element_of_long_rows_match_naive() {
    // `concat([c, y[..n-1]])` and a pad in front copy a row one element ahead of its source,
    // the distance `copy_to` copies with its own loop on large page-aligned buffers.
    for n in [300usize, 100_000] {
        let y = Array::from_vec((0..n).map(|i| i as f64 * 0.5 + 1.0).collect::<Vec<_>>(), &[n]);
        let y = y.mul(&y);
        let v = y.to_vec::<f64>();
        let one = Array::from_vec(vec![-3.0f64], &[1]);
        let got = Array::concat(&[&one, &y.narrow(0, 0, n - 1)], 0).to_vec::<f64>();
        let want: Vec<f64> = std::iter::once(-3.0).chain(v[..n - 1].iter().copied()).collect();
        assert!(got == want, "concat, n = {n}");
        let got = y.narrow(0, 0, n - 1).pad(&[(1, 0)], PadMode::Constant(2.0)).to_vec::<f64>();
        let want: Vec<f64> = std::iter::once(2.0).chain(v[..n - 1].iter().copied()).collect();
        assert!(got == want, "pad, n = {n}");
    }
}

#[test]
fn concat_keeps_dtype() {
    let a = Array::from_vec(vec![true], &[1]);
    let b = Array::from_vec(vec![false, true], &[2]);
    assert_eq!(Array::concat(&[&a, &b], 0).vals::<bool>(), vec![true, false, true]);
    let s = Array::stack(&[&Array::scalar(1i64), &Array::scalar(2i64)], 0);
    assert_eq!((s.shape(), s.vals::<i64>()), (&[2usize][..], vec![1, 2]));
}

#[test]
fn concat_misuse_messages() {
    let a = Array::zeros(&[2, 3], DType::F32);
    let b = Array::zeros(&[2, 4], DType::F32);
    assert_panics(|| Array::concat(&[], 0), &["concat", "at least one"]);
    assert_panics(|| Array::concat(&[&a, &b], 0), &["concat", "[2, 3]", "[2, 4]", "axis 0"]);
    assert_panics(|| Array::concat(&[&a, &b], 2), &["concat", "axis 2", "[2, 3]"]);
    assert_panics(
        || Array::concat(&[&a, &Array::zeros(&[2, 3], DType::F64)], 0),
        &["concat", "float32", "float64"],
    );
    assert_panics(|| Array::concat(&[&a, &Array::zeros(&[2], DType::F32)], 0), &["concat", "[2, 3]", "[2]"]);
    assert_panics(|| Array::stack(&[], 0), &["stack", "at least one"]);
    assert_panics(|| Array::stack(&[&a, &b], 0), &["stack", "[2, 3]", "[2, 4]"]);
    assert_panics(|| Array::stack(&[&a, &a], 3), &["stack", "axis 3", "[2, 3]"]);
    assert_panics(
        || Array::stack(&[&a, &Array::zeros(&[2, 3], DType::I64)], 0),
        &["stack", "float32", "int64"],
    );
    assert_eq!(Array::try_concat(&[], 0).unwrap_err().op, "concat");
    assert_eq!(Array::try_stack(&[&a, &b], 0).unwrap_err().op, "stack");
}

// ------------------------------------------------------------------ pad

/// Source position of output position `i` along a dim of size `d` padded by `before`, or None.
fn naive_pad_source(mode: PadMode, i: usize, before: usize, d: usize) -> Option<usize> {
    let j = i as i64 - before as i64;
    let d = d as i64;
    match mode {
        PadMode::Constant(_) => (0..d).contains(&j).then_some(j as usize),
        PadMode::Replicate => Some(j.clamp(0, d - 1) as usize),
        PadMode::Reflect => {
            if d == 1 {
                return Some(0);
            }
            let period = 2 * (d - 1);
            let m = j.rem_euclid(period);
            Some(if m < d { m } else { period - m } as usize)
        }
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn pad_matches_naive(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = rng.shape(0);
        let x = random_f64(&mut rng, &shape);
        let mode = match rng.below(3) {
            0 => PadMode::Constant(rng.small() + 0.5),
            1 => PadMode::Reflect,
            _ => PadMode::Replicate,
        };
        let pads: Vec<(usize, usize)> = shape
            .iter()
            .map(|&d| match mode {
                PadMode::Constant(_) => (rng.below(3), rng.below(3)),
                PadMode::Reflect => (rng.below(d), rng.below(d)),
                PadMode::Replicate if d == 0 => (0, 0),
                PadMode::Replicate => (rng.below(4), rng.below(4)),
            })
            .collect();
        let out = x.pad(&pads, mode);
        let oshape: Vec<usize> = shape.iter().zip(&pads).map(|(&d, &(b, a))| b + d + a).collect();
        prop_assert_eq!(out.shape(), &oshape[..]);
        let xv = x.vals::<f64>();
        for (f, &o) in out.vals::<f64>().iter().enumerate() {
            let idx = unravel(f, &oshape);
            let src: Option<Vec<usize>> =
                (0..shape.len()).map(|k| naive_pad_source(mode, idx[k], pads[k].0, shape[k])).collect();
            let expect = match (src, mode) {
                (Some(s), _) => xv[ravel(&s, &shape)],
                (None, PadMode::Constant(c)) => c,
                (None, _) => unreachable!(),
            };
            prop_assert_eq!(o, expect);
        }
    }
}

/// Views (a narrowed last dim: adjacent elements at an offset, rows apart; a transposed one:
/// strided rows) pad to what their contiguous copies pad to, in every mode.
#[test]
fn padded_views_match_their_contiguous_copies() {
    let base = Array::from_vec((0..60).map(|i| i as f64 * 0.5 - 7.0).collect::<Vec<_>>(), &[3, 4, 5]);
    let views = [base.narrow(2, 1, 3), base.narrow(1, 1, 2).narrow(2, 2, 3), base.permute(&[0, 2, 1])];
    let pads = [(1, 0), (0, 1), (2, 1)];
    for v in &views {
        for mode in [PadMode::Constant(9.5), PadMode::Reflect, PadMode::Replicate] {
            let got = v.pad(&pads, mode);
            assert_eq!(got.vals::<f64>(), v.contiguous().pad(&pads, mode).vals::<f64>(), "{mode:?}");
        }
    }
    // An empty last dim at an offset past the end of its storage: only the constant.
    let empty = base.narrow(0, 2, 1).narrow(2, 5, 0);
    assert_eq!(empty.pad(&pads, PadMode::Constant(9.5)).vals::<f64>(), vec![9.5; 2 * 5 * 3]);
}

#[test]
fn pad_other_dtypes_and_edges() {
    let x = Array::from_vec(vec![1i64, 2, 3, 4], &[2, 2]);
    let p = x.pad(&[(1, 0), (0, 1)], PadMode::Constant(-1.0));
    assert_eq!(p.vals::<i64>(), vec![-1, -1, -1, 1, 2, -1, 3, 4, -1]);
    let b = Array::from_vec(vec![true, false], &[2]);
    assert_eq!(b.pad(&[(1, 1)], PadMode::Reflect).vals::<bool>(), vec![false, true, false, true]);
    assert_eq!(Array::scalar(2.5f32).pad(&[], PadMode::Reflect).item::<f32>(), 2.5);
    // An empty dim can be constant-padded into existence.
    let e = Array::zeros(&[0, 2], DType::F32).pad(&[(1, 1), (0, 0)], PadMode::Constant(7.0));
    assert_eq!((e.shape(), e.vals::<f32>()), (&[2usize, 2][..], vec![7.0; 4]));
}

#[test]
fn pad_misuse_messages() {
    let x = Array::zeros(&[2, 3], DType::F32);
    assert_panics(|| x.pad(&[(1, 1)], PadMode::Reflect), &["pad", "[2, 3]", "1 pairs"]);
    assert_panics(
        || x.pad(&[(2, 0), (0, 0)], PadMode::Reflect),
        &["pad", "reflect", "dim 0 of size 2", "[2, 3]"],
    );
    let e = Array::zeros(&[0, 3], DType::F32);
    assert_panics(|| e.pad(&[(1, 0), (0, 0)], PadMode::Replicate), &["pad", "replicate", "dim 0", "[0, 3]"]);
    assert_eq!(x.try_pad(&[], PadMode::Constant(0.0)).unwrap_err().op, "pad");
}

// ------------------------------------------------------------------ sort, argsort, topk

/// Total order used by the reference: NaN greatest.
fn naive_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap(),
    }
}

/// Reference sort: for each lane a stable sort of positions (std's `sort_by` is stable).
/// Returns (values, indices) with `k` kept per lane, axis in place.
fn naive_sort(x: &Array, axis: usize, descending: bool, k: usize) -> (Vec<f64>, Vec<i64>, Vec<usize>) {
    let shape = x.shape().to_vec();
    let xv = x.vals::<f64>();
    let mut oshape = shape.clone();
    oshape[axis] = k;
    let mut vals = vec![0.0; numel(&oshape)];
    let mut idxs = vec![0i64; numel(&oshape)];
    let mut lane_shape = shape.clone();
    lane_shape[axis] = 1;
    for l in 0..numel(&lane_shape) {
        let base = unravel(l, &lane_shape);
        let at = |i: usize| {
            let mut idx = base.clone();
            idx[axis] = i;
            idx
        };
        let mut perm: Vec<usize> = (0..shape[axis]).collect();
        perm.sort_by(|&a, &b| {
            let (va, vb) = (xv[ravel(&at(a), &shape)], xv[ravel(&at(b), &shape)]);
            if descending {
                naive_cmp(vb, va)
            } else {
                naive_cmp(va, vb)
            }
        });
        for (j, &p) in perm.iter().take(k).enumerate() {
            let o = ravel(&at(j), &oshape);
            vals[o] = xv[ravel(&at(p), &shape)];
            idxs[o] = p as i64;
        }
    }
    (vals, idxs, oshape)
}

fn same_values(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

/// Values with many ties and some NaNs.
fn random_tied(rng: &mut Rng, shape: &[usize]) -> Array {
    random_layout(rng, shape, 0.0f64, |r| if r.below(8) == 0 { f64::NAN } else { r.below(4) as f64 })
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn sort_is_stable_and_puts_nan_last(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = rng.shape(1);
        let x = random_tied(&mut rng, &shape);
        let axis = rng.below(shape.len());
        let descending = rng.below(2) == 1;
        let (v, i) = x.sort(axis, descending);
        let (ev, ei, _) = naive_sort(&x, axis, descending, shape[axis]);
        prop_assert_eq!(v.shape(), &shape[..]);
        prop_assert!(same_values(&v.vals::<f64>(), &ev));
        prop_assert_eq!(i.dtype(), DType::I64);
        prop_assert_eq!(i.vals::<i64>(), ei.clone());
        prop_assert_eq!(x.argsort(axis, descending).vals::<i64>(), ei);
    }

    #[test]
    fn topk_is_the_sorted_prefix(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = rng.shape(1);
        let x = random_tied(&mut rng, &shape);
        let axis = rng.below(shape.len());
        let k = rng.below(shape[axis] + 1);
        let largest = rng.below(2) == 1;
        let (v, i) = x.topk(k, axis, largest);
        let (ev, ei, oshape) = naive_sort(&x, axis, largest, k);
        prop_assert_eq!(v.shape(), &oshape[..]);
        prop_assert!(same_values(&v.vals::<f64>(), &ev));
        prop_assert_eq!(i.vals::<i64>(), ei);
    }
}

#[test]
fn sort_other_dtypes_and_large_parallel_input() {
    let x = Array::from_vec(vec![3i64, -1, 3, 0], &[4]);
    let (v, i) = x.sort(0, true);
    assert_eq!((v.vals::<i64>(), i.vals::<i64>()), (vec![3, 3, 0, -1], vec![0, 2, 3, 1]));
    let b = Array::from_vec(vec![true, false, true], &[3]);
    assert_eq!(b.argsort(0, false).vals::<i64>(), vec![1, 0, 2]);
    let f = Array::from_vec(vec![f32::NAN, 1.0, f32::NEG_INFINITY], &[3]);
    assert_eq!(f.argsort(0, true).vals::<i64>(), vec![0, 1, 2]);

    // Enough lanes to take the parallel path; lanes along axis 0 of a transposed view.
    let n = 300 * 400;
    let data: Vec<f64> = (0..n).map(|k| ((k * 7919) % 1009) as f64).collect();
    let x = Array::from_vec(data, &[300, 400]).transpose(0, 1);
    let (v, i) = x.sort(1, false);
    let (ev, ei, _) = naive_sort(&x, 1, false, 300);
    assert!(same_values(&v.vals::<f64>(), &ev));
    assert_eq!(i.vals::<i64>(), ei);
    let (tv, _) = x.topk(5, 1, true);
    assert_eq!(tv.shape(), &[400, 5]);
}

#[test]
fn sort_misuse_messages() {
    let x = Array::zeros(&[2, 3], DType::F32);
    assert_panics(|| x.sort(2, false), &["sort", "axis 2", "[2, 3]"]);
    assert_panics(|| x.argsort(5, false), &["argsort", "axis 5", "[2, 3]"]);
    assert_panics(|| x.topk(4, 1, true), &["topk", "k = 4", "size 3", "axis 1", "[2, 3]"]);
    assert_panics(|| Array::scalar(1.0f32).sort(0, false), &["sort", "axis 0", "[]"]);
    assert_eq!(x.try_topk(4, 1, true).unwrap_err().op, "topk");
}

#[test]
fn scatter_add_along_the_last_axis_matches_a_loop() {
    // Max pooling's reverse rule: zeros (a broadcast scalar, or an owned buffer) scattered into
    // along the last axis with contiguous index and source, below and above the parallel size.
    for (rows, w_in, w_out) in [(3usize, 5usize, 7usize), (8 * 9, 1000, 1500)] {
        let n = rows * w_in;
        let idx: Vec<i64> = (0..n).map(|i| ((i * 7919 + i / w_in * 31) % w_out) as i64).collect();
        let src: Vec<f64> = (0..n).map(|i| (i % 13) as f64 - 6.0).collect();
        let (ia, sa) = (
            Array::from_vec(idx.clone(), &[rows / 3, 3, w_in]),
            Array::from_vec(src.clone(), &[rows / 3, 3, w_in]),
        );
        let shape = [rows / 3, 3, w_out];
        // Start values: a broadcast zero or other value (filled per row group), an owned buffer
        // (copied per row group), and a view that is not contiguous (the general walk).
        let owned: Vec<f64> = (0..rows * w_out).map(|i| (i % 5) as f64 * 0.5).collect();
        let wide = Array::from_vec(
            (0..rows * (w_out + 2)).map(|i| (i % (w_out + 2) % 5) as f64 * 0.5).collect::<Vec<f64>>(),
            &[rows / 3, 3, w_out + 2],
        );
        for base in [
            Array::scalar(0.0f64).broadcast_to(&shape),
            Array::scalar(2.5f64).broadcast_to(&shape),
            Array::zeros(&shape, DType::F64),
            Array::from_vec(owned, &shape),
            wide.narrow(2, 0, w_out),
        ] {
            let mut want = base.to_vec::<f64>();
            for i in 0..n {
                want[i / w_in * w_out + idx[i] as usize] += src[i];
            }
            let got = base.scatter_add(2, &ia, &sa);
            assert_eq!(got.to_vec::<f64>(), want);
            let got32 = base.cast(DType::F32).scatter_add(2, &ia, &sa.cast(DType::F32));
            assert_eq!(got32.to_vec::<f64>(), want);
        }
    }
}

#[test]
fn index_select_and_index_add_of_contiguous_runs_match_a_loop() {
    // Contiguous operands take whole runs along every axis (outer and inner sizes above 1,
    // repeated indices); broadcast, owned and strided bases for the add.
    let shape = [3usize, 4, 5];
    let x: Vec<f64> = (0..60).map(|i| i as f64 * 0.5 - 7.0).collect();
    let xa = Array::from_vec(x.clone(), &shape);
    let idx = [2i64, 0, 2, 1];
    for axis in 0..3 {
        let n = idx.len().min(shape[axis]);
        let ix: Vec<i64> = idx.iter().map(|&i| i % shape[axis] as i64).take(n).collect();
        let ia = Array::from_vec(ix.clone(), &[n]);
        let mut os = shape;
        os[axis] = n;
        let at = |s: [usize; 3], i: [usize; 3]| (i[0] * s[1] + i[1]) * s[2] + i[2];
        let sel = xa.index_select(axis, &ia).to_vec::<f64>();
        let src: Vec<f64> = (0..os.iter().product::<usize>()).map(|i| (i % 7) as f64 - 3.0).collect();
        let sa = Array::from_vec(src.clone(), &os);
        let wide = Array::from_vec((0..120).map(|i| i as f64).collect::<Vec<f64>>(), &[3, 4, 10]);
        for base in [Array::scalar(1.5f64).broadcast_to(&shape), xa.clone(), wide.slice(2, 0, 10, 2)] {
            let mut want = base.to_vec::<f64>();
            for i in 0..os[0] {
                for j in 0..os[1] {
                    for k in 0..os[2] {
                        let mut p = [i, j, k];
                        p[axis] = ix[p[axis]] as usize;
                        assert_eq!(sel[at(os, [i, j, k])], x[at(shape, p)], "index_select axis {axis}");
                        want[at(shape, p)] += src[at(os, [i, j, k])];
                    }
                }
            }
            assert_eq!(base.index_add(axis, &ia, &sa).to_vec::<f64>(), want, "index_add axis {axis}");
        }
    }
}
