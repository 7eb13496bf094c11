//! The element arithmetic of the reductions and scans ([`Num`], for every dtype) and the
//! associative operations they fold with ([`Combine`]: sum, product, max, min), as zero-sized
//! marker types so that each (operation, dtype) pair compiles to its own vectorised loop.

use crate::dtype::Element;
use crate::ops::binary::{max_nan, min_nan};

/// Arithmetic the reductions and scans need, for every dtype.
pub(crate) trait Num: Element {
    /// Additive identity used inside folds (`-0.0` for floats, so `-0.0` sums to `-0.0`).
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// Identity of `max` (`-inf`, `i64::MIN`, `false`).
    const LOWEST: Self;
    /// Identity of `min` (`+inf`, `i64::MAX`, `true`).
    const HIGHEST: Self;
    /// Sum (`int64` wraps; `bool` is OR).
    fn add(self, o: Self) -> Self;
    /// Product (`int64` wraps; `bool` is AND).
    fn mul(self, o: Self) -> Self;
    /// Larger, NaN-propagating.
    fn max_n(self, o: Self) -> Self;
    /// Smaller, NaN-propagating.
    fn min_n(self, o: Self) -> Self;
    /// Divide by an element count (for `mean`; integer division for `int64`).
    fn div_count(self, n: usize) -> Self;
}

macro_rules! impl_num_float {
    ($t:ty) => {
        impl Num for $t {
            const ZERO: Self = -0.0;
            const ONE: Self = 1.0;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const HIGHEST: Self = <$t>::INFINITY;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self + o
            }
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                self * o
            }
            #[inline(always)]
            fn max_n(self, o: Self) -> Self {
                max_nan(self, o)
            }
            #[inline(always)]
            fn min_n(self, o: Self) -> Self {
                min_nan(self, o)
            }
            #[inline(always)]
            fn div_count(self, n: usize) -> Self {
                self / n as $t
            }
        }
    };
}
impl_num_float!(f32);
impl_num_float!(f64);

impl Num for i64 {
    const ZERO: Self = 0;
    const ONE: Self = 1;
    const LOWEST: Self = i64::MIN;
    const HIGHEST: Self = i64::MAX;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.wrapping_mul(o)
    }
    #[inline(always)]
    fn max_n(self, o: Self) -> Self {
        self.max(o)
    }
    #[inline(always)]
    fn min_n(self, o: Self) -> Self {
        self.min(o)
    }
    #[inline(always)]
    fn div_count(self, n: usize) -> Self {
        self / n as i64
    }
}

impl Num for bool {
    const ZERO: Self = false;
    const ONE: Self = true;
    const LOWEST: Self = false;
    const HIGHEST: Self = true;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self | o
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self & o
    }
    #[inline(always)]
    fn max_n(self, o: Self) -> Self {
        self | o
    }
    #[inline(always)]
    fn min_n(self, o: Self) -> Self {
        self & o
    }
    #[inline(always)]
    fn div_count(self, _n: usize) -> Self {
        self
    }
}

/// An associative combining function with an identity, as a zero-sized marker type so that
/// each (op, dtype) pair gets its own monomorphic, vectorized loop.
pub(crate) trait Combine: Copy + Send + Sync + 'static {
    fn identity<T: Num>() -> T;
    fn combine<T: Num>(a: T, b: T) -> T;
}

#[derive(Clone, Copy)]
pub(crate) struct SumC;
#[derive(Clone, Copy)]
pub(crate) struct ProdC;
#[derive(Clone, Copy)]
pub(crate) struct MaxC;
#[derive(Clone, Copy)]
pub(crate) struct MinC;

impl Combine for SumC {
    #[inline(always)]
    fn identity<T: Num>() -> T {
        T::ZERO
    }
    #[inline(always)]
    fn combine<T: Num>(a: T, b: T) -> T {
        a.add(b)
    }
}
impl Combine for ProdC {
    #[inline(always)]
    fn identity<T: Num>() -> T {
        T::ONE
    }
    #[inline(always)]
    fn combine<T: Num>(a: T, b: T) -> T {
        a.mul(b)
    }
}
impl Combine for MaxC {
    #[inline(always)]
    fn identity<T: Num>() -> T {
        T::LOWEST
    }
    #[inline(always)]
    fn combine<T: Num>(a: T, b: T) -> T {
        a.max_n(b)
    }
}
impl Combine for MinC {
    #[inline(always)]
    fn identity<T: Num>() -> T {
        T::HIGHEST
    }
    #[inline(always)]
    fn combine<T: Num>(a: T, b: T) -> T {
        a.min_n(b)
    }
}
