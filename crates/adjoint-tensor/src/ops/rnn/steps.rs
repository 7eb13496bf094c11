//! The schedule of [`lstm_seq`](super::lstm_seq) and [`lstm_seq_grad`](super::lstm_seq_grad):
//! when a sequence's batch rows are shared among the pool's threads, and the line-aligned
//! outputs that keep the parts from writing one cache line.

use rayon::prelude::*;

use super::output;
use crate::{cache, Array, Element, Layout};

/// Work (`T·B·4H·H` multiply-adds of the recurrence's products) from which
/// [`lstm_seq`](super::lstm_seq) and [`lstm_seq_grad`](super::lstm_seq_grad) share a
/// sequence's batch rows among the pool's threads: W4's sequence (T 64, B 32, H 128: 134 M)
/// is shared.
pub(super) const SPLIT_WORK: usize = 1 << 20;

/// Whether [`lstm_seq`](super::lstm_seq) and [`lstm_seq_grad`](super::lstm_seq_grad) share the
/// batch rows of a `T`-step sequence among the pool's threads ([`row_parts`]).
pub(super) fn split_step(t: usize, b: usize, h: usize) -> bool {
    b >= 2 && t.saturating_mul(b).saturating_mul(4 * h * h) >= SPLIT_WORK
}

/// The batch rows each worker runs through the whole sequence: all `0..b`, or when `split`
/// one part per pool thread (at most one per row), their sizes within one row of each other
/// (W4's 32 rows on two threads: two parts of 16, two register tiles of the packed product
/// each).
///
/// Why rows and not hidden units: a batch row's recurrence reads only its own row of the
/// previous state, so the parts never wait for each other — one `rayon` region per sequence
/// and no barrier per step. The previous schedule cut each step's hidden units in two halves
/// (every product reads the whole previous state), and the two workers met at a barrier 2·T
/// times per training step: 12% of W4's profile was the two spinning there, and each half ran
/// ~40% slower beside the other (the state crossed between the cores every step). Each row's
/// arithmetic does not depend on the cut or on which thread runs it, so the results are
/// bitwise those of one thread.
pub(super) fn row_parts(b: usize, split: bool) -> Vec<std::ops::Range<usize>> {
    let n = if split { rayon::current_num_threads().clamp(1, b.max(1)) } else { 1 };
    (0..n).map(|k| b * k / n..b * (k + 1) / n).collect()
}

/// Runs `f(rows)` for each part, on the pool when there are several (one task each).
pub(super) fn run_parts(parts: &[std::ops::Range<usize>], f: impl Fn(std::ops::Range<usize>) + Sync) {
    match parts {
        [one] => f(one.clone()),
        _ => parts.par_iter().for_each(|p| f(p.clone())),
    }
}

/// An output of `n` elements that starts on a 64-byte line, inside a buffer one line longer,
/// returned as an array whose layout starts at that element.
///
/// Why: the allocator's large buffers start 16 bytes past a line, so two workers writing
/// neighbouring parts shared the line that straddles each cut (false sharing): on W4's
/// forward (Intel Xeon, 2 threads) the cells and products ran 10–15% slower than with the
/// outputs aligned, when the cut was between hidden units of every row.
pub(super) struct Lined<T> {
    buf: Vec<T>,
    at: usize,
    n: usize,
}

/// Elements of `T` per 64-byte line.
fn line<T>() -> usize {
    (64 / size_of::<T>().max(1)).max(1)
}

impl<T: Element> Lined<T> {
    /// A zeroed output.
    pub(super) fn zeroed(n: usize) -> Self {
        Self::inside(output::<T>(n + line::<T>() - 1), n)
    }

    /// An output whose elements the caller writes (through [`ptr`](Self::ptr)) before
    /// [`assume_written`](Self::assume_written): no pass zeroes it first.
    pub(super) fn uninit(n: usize) -> Self {
        Self::inside(cache::take::<T>(n + line::<T>() - 1), n)
    }

    /// The output inside `buf` (room for `n` and a line), at its first line-aligned element.
    fn inside(buf: Vec<T>, n: usize) -> Self {
        let line = line::<T>();
        let at = (line - (buf.as_ptr() as usize % 64) / size_of::<T>().max(1)) % line;
        Lined { buf, at, n }
    }

    fn total(&self) -> usize {
        self.n + line::<T>() - 1
    }

    /// Fills the padding around the output and marks the whole buffer initialised.
    ///
    /// # Safety
    /// Every one of the output's `n` elements has been written through [`ptr`](Self::ptr).
    pub(super) unsafe fn assume_written(&mut self) {
        let total = self.total();
        if self.buf.len() == total {
            return;
        }
        let p = self.buf.as_mut_ptr();
        // SAFETY: the buffer has room for `total` elements; the padding `0..at` and
        // `at + n..total` is written here, the rest by the caller (contract).
        unsafe {
            for i in (0..self.at).chain(self.at + self.n..total) {
                p.add(i).write(T::default());
            }
            self.buf.set_len(total);
        }
    }

    /// The output's elements (after [`assume_written`](Self::assume_written) for an
    /// [`uninit`](Self::uninit) one).
    pub(super) fn slice(&self) -> &[T] {
        &self.buf[self.at..self.at + self.n]
    }

    /// The first element of the output, valid for writes of `n` elements.
    pub(super) fn ptr(&mut self) -> *mut T {
        self.buf.as_mut_ptr().wrapping_add(self.at)
    }

    /// The output as an array of `shape` (its layout starts at the aligned element). Panics
    /// if an [`uninit`](Self::uninit) output was not marked written.
    pub(super) fn array(self, shape: &[usize]) -> Array {
        assert_eq!(self.buf.len(), self.total(), "adjoint-tensor: rnn: an output was not marked written");
        let mut layout = Layout::contiguous(shape);
        layout.offset = self.at;
        Array::from_parts(std::sync::Arc::new(T::into_storage(self.buf)), layout)
    }
}
