//! The schedule of [`lstm_seq`](super::lstm_seq) and [`lstm_seq_grad`](super::lstm_seq_grad):
//! when a step is cut in two halves of hidden units, how two workers share the steps, and the
//! line-aligned outputs that keep the halves from writing one cache line.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::output;
use crate::{cache, Array, Element, Layout};

/// Work (`B·4H·H` multiply-adds) of one step from which [`lstm_seq`](super::lstm_seq) and
/// [`lstm_seq_grad`](super::lstm_seq_grad) split each step's hidden units across two threads:
/// W4's steps (2.1 M) are split.
pub(super) const SPLIT_STEP_WORK: usize = 1 << 20;

/// Whether [`lstm_seq`](super::lstm_seq) and [`lstm_seq_grad`](super::lstm_seq_grad) cut each
/// step's hidden units in two halves (from the size alone, never the thread count, so that 1
/// and 2 threads compute the same bits).
pub(super) fn split_step(b: usize, h: usize) -> bool {
    b * 4 * h * h >= SPLIT_STEP_WORK && h >= 32
}

/// The ranges of hidden units that [`run_steps`] hands out: all `0..h`, or when `split` two
/// halves cut at a multiple of 16 (`0..mid`, `mid..h`).
pub(super) fn halves(h: usize, split: bool) -> Vec<std::ops::Range<usize>> {
    let all = 0..h;
    if !split {
        return vec![all];
    }
    let mid = (h / 2).next_multiple_of(16).min(h);
    vec![0..mid, mid..h]
}

/// An output of `n` elements that starts on a 64-byte line, inside a buffer one line longer,
/// returned as an array whose layout starts at that element.
///
/// Why: the allocator's large buffers start 16 bytes past a line, so the two workers of a
/// step, writing the two halves of each row, shared the line that straddles the cut in
/// every row and gate (false sharing): on W4's forward (Intel Xeon, 2 threads) the cells and
/// products ran 10–15% slower than with the outputs aligned.
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

/// Which tasks of the step before a task of step `s` waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Deps {
    /// Both halves (the forward: a step's products read the whole previous state).
    Both,
    /// Both halves, except that a task of an even step waits only for its own half of the odd
    /// step before (the backward: a half's cells read only the `dh` columns its half of the
    /// product wrote, while a product reads every cell of the step before).
    OwnHalfAfterOdd,
}

/// Runs `f(s, k, units)` for the steps `s` in `0..steps` in order, each on all `0..h` units
/// (`k = 0`) or, when `split`, on its two halves `k` (`0..mid`, `mid..h`; either may be
/// empty); a task of step `s` starts once the tasks of step `s − 1` that `deps` names are
/// finished (a step's cells are independent across units, and so are the gate products once
/// cut by columns).
///
/// With more than one `rayon` thread the halves run in ONE two-worker region per sequence
/// (not a `rayon::join` per step, whose wake-ups cost more than W4's steps): the tasks
/// `(s, k)` (index `2s + k`) are claimed in order through an atomic counter, and each task
/// sets its own done flag. A worker waits only for tasks claimed before its own, by a worker
/// that is running them, so the protocol cannot deadlock: when the partner never starts (its
/// thread busy elsewhere, nested parallelism), the first worker claims and runs every task
/// alone. The partition and each task's arithmetic do not depend on who runs it, so the
/// results are bitwise those of one thread.
pub(super) fn run_steps(
    steps: usize,
    halves: &[std::ops::Range<usize>],
    deps: Deps,
    f: impl Fn(usize, usize, std::ops::Range<usize>) + Sync,
) {
    if let [all] = halves {
        return (0..steps).for_each(|s| f(s, 0, all.clone()));
    }
    let total = 2 * steps;
    let next = AtomicUsize::new(0);
    let done: Vec<AtomicBool> = (0..total).map(|_| AtomicBool::new(false)).collect();
    let finished = |i: usize| done[i].load(Ordering::Acquire);
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return;
        }
        let (s, k) = (i / 2, i % 2);
        let ready = || {
            s == 0
                || match deps {
                    Deps::OwnHalfAfterOdd if s % 2 == 0 => finished(2 * (s - 1) + k),
                    _ => finished(2 * (s - 1)) && finished(2 * (s - 1) + 1),
                }
        };
        let mut spins = 0u32;
        while !ready() {
            if spins < 1 << 14 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        f(s, k, halves[k].clone());
        done[i].store(true, Ordering::Release);
    };
    if rayon::current_num_threads() > 1 {
        rayon::join(worker, worker);
    } else {
        worker();
    }
}
