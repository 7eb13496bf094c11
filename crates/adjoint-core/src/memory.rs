//! Accounting of the bytes that reverse-mode tapes keep alive as residuals.
//!
//! Every [`Pullback`](crate::primitive::Pullback) adds its residuals' size when it is recorded
//! and subtracts it when it is dropped, on a thread-local counter with a high-water mark. This is
//! how `checkpoint`'s saving is measured: the peak across the forward pass, the reverse pass
//! and any recomputation inside it.
//!
//! ```
//! use adjoint_core::{grad, memory, Tensor};
//! memory::reset_peak();
//! let g = grad(|x: &Tensor| (x.sin() * x).sum())(&Tensor::from_vec(vec![1.0f64; 1000], &[1000]));
//! assert!(memory::peak_residual_bytes() >= 8000);
//! assert_eq!(memory::live_residual_bytes(), 0);
//! # let _ = g;
//! ```

use std::cell::Cell;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

pub(crate) fn add(bytes: usize) {
    LIVE.with(|l| {
        let v = l.get() + bytes;
        l.set(v);
        PEAK.with(|p| p.set(p.get().max(v)));
    });
}

pub(crate) fn sub(bytes: usize) {
    LIVE.with(|l| l.set(l.get().saturating_sub(bytes)));
}

/// Residual bytes held by live tape nodes on this thread now.
pub fn live_residual_bytes() -> usize {
    LIVE.with(|l| l.get())
}

/// The most residual bytes held at once on this thread since the last [`reset_peak`].
pub fn peak_residual_bytes() -> usize {
    PEAK.with(|p| p.get())
}

/// Restart the high-water mark at the current live value.
pub fn reset_peak() {
    PEAK.with(|p| p.set(live_residual_bytes()));
}
