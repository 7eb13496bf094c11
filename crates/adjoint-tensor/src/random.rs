//! Counter-based, splittable random numbers: [`Key`] and the samplers [`uniform`], [`normal`],
//! [`bernoulli`], [`permutation`] and [`categorical`].
//!
//! ## Design choices
//! - **Keys, not generator state** (as in JAX). A [`Key`] is two `u32` words; sampling never
//!   mutates it. Independent streams come from [`Key::split`] or [`Key::fold_in`], so code that
//!   draws random numbers is a pure function of its key — reproducible under any
//!   transformation, any call order and any thread count.
//! - **Threefry-2x32 with 20 rounds** ([`threefry2x32`]), bit-for-bit JAX's `threefry2x32`
//!   (checked against the Random123 known-answer vectors). Key derivation follows JAX's
//!   *partitionable* scheme (`jax_threefry_partitionable`, JAX's default since 0.5): the
//!   counter of element `i` is the 64-bit `i` as the pair `(i >> 32, i & 0xffff_ffff)`, so
//!   - `Key::new(seed)` is `[seed >> 32, seed & 0xffff_ffff]` (`jax.random.PRNGKey`),
//!   - `split(n)[i]` is `threefry2x32(key, (0, i))` and `fold_in(d)` is
//!     `threefry2x32(key, (d >> 32, d & 0xffff_ffff))`,
//!   - 32-bit word `i` of [`Key::bits`] is the XOR of the two output words for counter `i`, and
//!     64-bit draws (`f64` samplers) use both words, high word first.
//! - **Every element's bits depend only on the key and the element's index**, never on the
//!   array size or how work is split, so large outputs are filled in parallel with `rayon`
//!   over index ranges and results are identical whatever the thread count.
//! - Floats in `[0, 1)` are made by JAX's mantissa trick (random mantissa bits under the
//!   exponent of 1.0, minus 1), giving every representable step of `2^-23` (`f32`) or
//!   `2^-52` (`f64`). Normals use Box–Muller (cosine branch) on one counter's two words, so a
//!   normal costs one Threefry call.

use rayon::prelude::*;

use crate::array::Array;
use crate::dtype::{DType, FloatElement};
use crate::ensure;
use crate::error::{OrFail, Result};
use crate::ops::parallel;

const ROTATIONS: [[u32; 4]; 2] = [[13, 15, 26, 6], [17, 29, 16, 24]];

/// The Threefry-2x32 block cipher with 20 rounds (Salmon et al., *Parallel random numbers: as
/// easy as 1, 2, 3*, SC'11), exactly as JAX's `threefry2x32`: encrypts the counter `ctr` under
/// `key`.
///
/// ```
/// use adjoint_tensor::random::threefry2x32;
/// assert_eq!(threefry2x32([0, 0], [0, 0]), [0x6b200159, 0x99ba4efe]);
/// ```
#[inline]
pub fn threefry2x32(key: [u32; 2], ctr: [u32; 2]) -> [u32; 2] {
    let ks = [key[0], key[1], key[0] ^ key[1] ^ 0x1BD1_1BDA];
    let mut x0 = ctr[0].wrapping_add(ks[0]);
    let mut x1 = ctr[1].wrapping_add(ks[1]);
    for i in 0..5usize {
        for &r in &ROTATIONS[i % 2] {
            x0 = x0.wrapping_add(x1);
            x1 = x1.rotate_left(r) ^ x0;
        }
        x0 = x0.wrapping_add(ks[(i + 1) % 3]);
        x1 = x1.wrapping_add(ks[(i + 2) % 3]).wrapping_add(i as u32 + 1);
    }
    [x0, x1]
}

/// A PRNG key: the whole state of a random stream, cheap to copy.
///
/// ```
/// use adjoint_tensor::random::Key;
/// let key = Key::new(0);
/// let (a, b) = key.split2();
/// assert_ne!(a, b);
/// assert_eq!(key.bits(4), Key::new(0).bits(4)); // a key is a value: same key, same bits
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    k: [u32; 2],
}

#[inline]
fn ctr(i: u64) -> [u32; 2] {
    [(i >> 32) as u32, i as u32]
}

impl Key {
    /// The key for `seed`, as `jax.random.PRNGKey(seed)`: `[seed >> 32, seed & 0xffff_ffff]`.
    pub fn new(seed: u64) -> Key {
        Key { k: ctr(seed) }
    }

    /// A key from its two raw words (as stored by [`raw`](Self::raw)).
    pub fn from_raw(k: [u32; 2]) -> Key {
        Key { k }
    }

    /// The two raw words.
    pub fn raw(&self) -> [u32; 2] {
        self.k
    }

    /// `n` new keys, independent of each other and of `self` (`jax.random.split`).
    ///
    /// ```
    /// use adjoint_tensor::random::Key;
    /// let keys = Key::new(42).split(3);
    /// assert_eq!(keys.len(), 3);
    /// assert_ne!(keys[0], keys[1]);
    /// ```
    pub fn split(&self, n: usize) -> Vec<Key> {
        (0..n as u64).map(|i| Key { k: threefry2x32(self.k, ctr(i)) }).collect()
    }

    /// Two new keys: shorthand for `split(2)`.
    pub fn split2(&self) -> (Key, Key) {
        (Key { k: threefry2x32(self.k, ctr(0)) }, Key { k: threefry2x32(self.k, ctr(1)) })
    }

    /// A new key that mixes `data` (a step number, a layer index, …) into `self`
    /// (`jax.random.fold_in`).
    ///
    /// ```
    /// use adjoint_tensor::random::Key;
    /// let k = Key::new(1);
    /// assert_ne!(k.fold_in(7), k.fold_in(8));
    /// ```
    pub fn fold_in(&self, data: u64) -> Key {
        Key { k: threefry2x32(self.k, ctr(data)) }
    }

    /// `n` random 32-bit words (`jax.random.bits` with the partitionable scheme).
    pub fn bits(&self, n: usize) -> Vec<u32> {
        fill(n, |i| self.bits32(i))
    }

    /// 32-bit word number `i` of this key's stream.
    #[inline]
    fn bits32(&self, i: u64) -> u32 {
        let [a, b] = threefry2x32(self.k, ctr(i));
        a ^ b
    }

    /// 64-bit word number `i` of this key's stream.
    #[inline]
    fn bits64(&self, i: u64) -> u64 {
        let [a, b] = threefry2x32(self.k, ctr(i));
        ((a as u64) << 32) | b as u64
    }
}

/// `(0..n).map(f)`, in parallel above the threshold; `f(i)` depends only on `i`, so the result
/// does not depend on the thread count.
fn fill<T: Send>(n: usize, f: impl Fn(u64) -> T + Sync + Send) -> Vec<T> {
    if parallel(n) {
        (0..n as u64).into_par_iter().map(f).collect()
    } else {
        (0..n as u64).map(f).collect()
    }
}

/// Uniform `[0, 1)` of a float type from counter `i`, and the float just below a value.
trait RandFloat: FloatElement {
    fn unit(key: &Key, i: u64) -> Self;
    fn next_down(self) -> Self;
}

impl RandFloat for f32 {
    #[inline]
    fn unit(key: &Key, i: u64) -> f32 {
        f32::from_bits((key.bits32(i) >> 9) | 0x3f80_0000) - 1.0
    }
    fn next_down(self) -> f32 {
        if self == 0.0 {
            -f32::from_bits(1)
        } else if self > 0.0 {
            f32::from_bits(self.to_bits() - 1)
        } else {
            f32::from_bits(self.to_bits() + 1)
        }
    }
}

impl RandFloat for f64 {
    #[inline]
    fn unit(key: &Key, i: u64) -> f64 {
        f64::from_bits((key.bits64(i) >> 12) | 0x3ff0_0000_0000_0000) - 1.0
    }
    fn next_down(self) -> f64 {
        if self == 0.0 {
            -f64::from_bits(1)
        } else if self > 0.0 {
            f64::from_bits(self.to_bits() - 1)
        } else {
            f64::from_bits(self.to_bits() + 1)
        }
    }
}

fn uniform_typed<T: RandFloat>(key: &Key, shape: &[usize], low: f64, high: f64) -> Result<Array> {
    let (lo, hi) = (T::from_f64(low), T::from_f64(high));
    let width = hi - lo;
    ensure!(
        lo.is_finite() && hi.is_finite() && lo < hi && width.is_finite(),
        "uniform",
        "needs finite low < high with a finite width in {}, got low={low} high={high}",
        T::DTYPE
    );
    let top = hi.next_down();
    let n = shape.iter().product();
    let v = fill(n, |i| (T::unit(key, i) * width + lo).max(lo).min(top));
    Ok(Array::from_vec(v, shape))
}

/// Uniform samples in `[low, high)` of a float `dtype`.
///
/// ```
/// use adjoint_tensor::{random::{uniform, Key}, DType};
/// let x = uniform(&Key::new(0), &[2, 3], -1.0, 1.0, DType::F32);
/// assert_eq!(x.shape(), &[2, 3]);
/// assert!(x.to_vec::<f32>().iter().all(|&v| (-1.0..1.0).contains(&v)));
/// ```
#[track_caller]
pub fn uniform(key: &Key, shape: &[usize], low: f64, high: f64, dtype: DType) -> Array {
    try_uniform(key, shape, low, high, dtype).or_fail()
}

/// Fallible [`uniform`]: `dtype` must be a float type and `low < high` finite in it.
pub fn try_uniform(key: &Key, shape: &[usize], low: f64, high: f64, dtype: DType) -> Result<Array> {
    match dtype {
        DType::F32 => uniform_typed::<f32>(key, shape, low, high),
        DType::F64 => uniform_typed::<f64>(key, shape, low, high),
        _ => Err(crate::TensorError::new("uniform", format!("needs a float dtype, got {dtype}"))),
    }
}

/// One standard normal from counter `i` (Box–Muller, cosine branch), in `f64`.
#[inline]
fn normal_at(key: &Key, i: u64) -> f64 {
    let [a, b] = threefry2x32(key.k, ctr(i));
    const SCALE: f64 = 1.0 / 4_294_967_296.0;
    let u1 = (a as f64 + 1.0) * SCALE; // (0, 1]: the log is finite
    let u2 = b as f64 * SCALE; // [0, 1)
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Standard normal samples (mean 0, variance 1) of a float `dtype`.
///
/// ```
/// use adjoint_tensor::{random::{normal, Key}, DType};
/// let x = normal(&Key::new(3), &[1000], DType::F64);
/// let mean = x.to_vec::<f64>().iter().sum::<f64>() / 1000.0;
/// assert!(mean.abs() < 0.2);
/// ```
#[track_caller]
pub fn normal(key: &Key, shape: &[usize], dtype: DType) -> Array {
    try_normal(key, shape, dtype).or_fail()
}

/// Fallible [`normal`]: `dtype` must be a float type.
pub fn try_normal(key: &Key, shape: &[usize], dtype: DType) -> Result<Array> {
    let n = shape.iter().product();
    match dtype {
        DType::F32 => Ok(Array::from_vec(fill(n, |i| normal_at(key, i) as f32), shape)),
        DType::F64 => Ok(Array::from_vec(fill(n, |i| normal_at(key, i)), shape)),
        _ => Err(crate::TensorError::new("normal", format!("needs a float dtype, got {dtype}"))),
    }
}

/// Uniform in the open interval `(0, 1)` with 53 random bits, from counter `i`.
#[inline]
fn open_unit_f64(key: &Key, i: u64) -> f64 {
    ((key.bits64(i) >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// `Bool` samples that are `true` with probability `p`.
///
/// ```
/// use adjoint_tensor::random::{bernoulli, Key};
/// let m = bernoulli(&Key::new(0), 1.0, &[3]);
/// assert_eq!(m.to_vec::<bool>(), vec![true, true, true]);
/// ```
#[track_caller]
pub fn bernoulli(key: &Key, p: f64, shape: &[usize]) -> Array {
    try_bernoulli(key, p, shape).or_fail()
}

/// Fallible [`bernoulli`]: `p` must lie in `[0, 1]`.
pub fn try_bernoulli(key: &Key, p: f64, shape: &[usize]) -> Result<Array> {
    ensure!((0.0..=1.0).contains(&p), "bernoulli", "p must lie in [0, 1], got {p} (shape {shape:?})");
    let n = shape.iter().product();
    let v = fill(n, |i| ((key.bits64(i) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) < p);
    Ok(Array::from_vec(v, shape))
}

/// A uniformly random permutation of `0..n` (`I64`), made by sorting 64-bit random keys (ties,
/// which are astronomically rare, keep index order, so the result is still a permutation).
///
/// ```
/// use adjoint_tensor::random::{permutation, Key};
/// let mut p = permutation(&Key::new(5), 6).to_vec::<i64>();
/// p.sort();
/// assert_eq!(p, vec![0, 1, 2, 3, 4, 5]);
/// ```
pub fn permutation(key: &Key, n: usize) -> Array {
    let mut pairs: Vec<(u64, i64)> = fill(n, |i| (key.bits64(i), i as i64));
    if parallel(n) {
        pairs.par_sort_unstable();
    } else {
        pairs.sort_unstable();
    }
    Array::from_vec(pairs.into_iter().map(|(_, i)| i).collect::<Vec<i64>>(), &[n])
}

/// Samples from the categorical distributions `softmax(logits)` along `axis`, by the
/// Gumbel-max trick: `argmax(logits + Gumbel noise)`. The output (`I64`) has `logits`' shape
/// without `axis`. A `-inf` logit is never drawn; NaN logits are never drawn either (when all
/// of a row's logits are NaN or `-inf` the sample is 0).
///
/// ```
/// use adjoint_tensor::{random::{categorical, Key}, Array};
/// let logits = Array::from_vec(vec![0.0f32, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY], &[2, 2]);
/// assert_eq!(categorical(&Key::new(0), &logits, 1).to_vec::<i64>(), vec![0, 0]);
/// ```
#[track_caller]
pub fn categorical(key: &Key, logits: &Array, axis: usize) -> Array {
    try_categorical(key, logits, axis).or_fail()
}

/// Fallible [`categorical`]: `logits` must be a float array, `axis` in range and non-empty.
pub fn try_categorical(key: &Key, logits: &Array, axis: usize) -> Result<Array> {
    const OP: &str = "categorical";
    let shape = logits.shape();
    ensure!(logits.dtype().is_float(), OP, "logits must be a float array, got dtype {}", logits.dtype());
    ensure!(axis < shape.len(), OP, "axis {axis} out of range for logits of shape {shape:?}");
    let n = shape[axis];
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    ensure!(
        n > 0 || outer * inner == 0,
        OP,
        "cannot sample from the empty axis {axis} of logits of shape {shape:?}"
    );
    let x = if logits.numel() == 0 { Vec::new() } else { logits.to_vec::<f64>() };
    let v = fill(outer * inner, |q| {
        let (o, r) = (q as usize / inner, q as usize % inner);
        let (mut best, mut arg) = (f64::NEG_INFINITY, 0i64);
        for j in 0..n {
            let flat = (o * n + j) * inner + r;
            let l = x[flat];
            if l == f64::NEG_INFINITY || l.is_nan() {
                continue;
            }
            let score = l - (-open_unit_f64(key, flat as u64).ln()).ln();
            if score > best {
                best = score;
                arg = j as i64;
            }
        }
        arg
    });
    let mut out_shape = logits.shape_vec();
    out_shape.remove(axis);
    Ok(Array::from_vec(v, &out_shape))
}
