//! Flat, typed element buffers shared between views, and how large ones are allocated (reuse of
//! freed buffers: [`crate::cache`]).
//!
//! **Huge pages for large buffers.** A fresh buffer of many megabytes comes straight from
//! `mmap` (glibc serves allocations above its mmap threshold, at most 32 MiB, that way), so its
//! first write takes one page fault per 4 KiB page. For a 64 MiB output that is 16k faults and,
//! measured on these machines, more time than the arithmetic (the per-example-gradient vmap
//! benchmark spent about 60% of its time in page faults). [`advise_huge_pages`] asks the kernel
//! to back the 2 MiB-aligned interior of such a buffer with transparent huge pages
//! (`madvise(MADV_HUGEPAGE)`): one fault per 2 MiB. It must run after the allocation and before
//! the first write, so the kernels' output-allocation sites call it right after `with_capacity`
//! (or right after a zeroed allocation, whose pages `calloc` leaves untouched when they come
//! from `mmap`). Transparent huge pages are usually in `madvise` mode (the default of most
//! distributions), where nothing is huge unless asked for. The advice changes no contents and
//! its failure (an old kernel, THP disabled) is harmless, so the result is ignored; off Linux
//! the helper does nothing.
//!
//! **Live bytes.** [`live_bytes`] is the capacity in bytes of every storage alive now, on all
//! threads, and [`peak_live_bytes`] its high-water mark since [`reset_peak_live_bytes`]: one
//! relaxed atomic add when a storage is built by this crate (`Element::into_storage`,
//! `Array::full`, `cast`, `contiguous`, `clone`) and one subtraction when it is dropped — a few
//! nanoseconds next to an allocation. The profiler (`adjoint::profile`) reads them. Capacity, not
//! length, is counted: it is what the allocation holds (a buffer from the cache is rounded up to
//! its size class). Buffers held by the cache are not live; [`crate::cache::stats`] counts those.
//! A storage built directly from an enum variant outside this crate is not counted when built
//! but is when dropped, so the counter is signed and read clamped at zero.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::dtype::DType;

static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

/// Bytes of capacity of every storage alive now (all threads).
///
/// ```
/// use adjoint_tensor::{storage, Array, DType};
/// let a = Array::zeros(&[1000], DType::F64);
/// assert!(storage::live_bytes() >= 8000);
/// # drop(a);
/// ```
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed).max(0) as usize
}

/// The most bytes [`live_bytes`] reached since the last [`reset_peak_live_bytes`] (or since the
/// process started).
///
/// ```
/// use adjoint_tensor::{storage, Array, DType};
/// storage::reset_peak_live_bytes();
/// drop(Array::zeros(&[1 << 20], DType::F64));
/// assert!(storage::peak_live_bytes() >= 8 << 20);
/// ```
pub fn peak_live_bytes() -> usize {
    PEAK.load(Ordering::Relaxed) as usize
}

/// Restart the high-water mark of [`peak_live_bytes`] at the current [`live_bytes`].
pub fn reset_peak_live_bytes() {
    PEAK.store(live_bytes() as u64, Ordering::Relaxed);
}

#[inline]
fn count_alloc(bytes: usize) {
    let now = LIVE.fetch_add(bytes as i64, Ordering::Relaxed) + bytes as i64;
    if now > PEAK.load(Ordering::Relaxed) as i64 {
        PEAK.fetch_max(now as u64, Ordering::Relaxed);
    }
}

/// A flat buffer of elements. Arrays share one behind an `Arc`; views never copy it. When the
/// last array using it is dropped, its buffer goes back to the [`cache`](crate::cache) for reuse.
#[derive(Debug, PartialEq)]
pub enum Storage {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
    /// `i64` elements.
    I64(Vec<i64>),
    /// `bool` elements.
    Bool(Vec<bool>),
}

impl Storage {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::I64(_) => DType::I64,
            Storage::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F64(v) => v.len(),
            Storage::I64(v) => v.len(),
            Storage::Bool(v) => v.len(),
        }
    }

    /// True when the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the buffer's elements.
    pub fn size_in_bytes(&self) -> usize {
        self.len() * self.dtype().size_in_bytes()
    }

    /// Bytes of the buffer's allocation (its capacity; at least [`size_in_bytes`](Self::size_in_bytes)).
    pub fn capacity_in_bytes(&self) -> usize {
        let cap = match self {
            Storage::F32(v) => v.capacity(),
            Storage::F64(v) => v.capacity(),
            Storage::I64(v) => v.capacity(),
            Storage::Bool(v) => v.capacity(),
        };
        cap * self.dtype().size_in_bytes()
    }

    /// Count this new storage in [`live_bytes`] (every constructor of this crate calls it once).
    #[inline]
    pub(crate) fn counted(self) -> Storage {
        count_alloc(self.capacity_in_bytes());
        self
    }
}

impl Clone for Storage {
    fn clone(&self) -> Storage {
        let s = match self {
            Storage::F32(v) => Storage::F32(v.clone()),
            Storage::F64(v) => Storage::F64(v.clone()),
            Storage::I64(v) => Storage::I64(v.clone()),
            Storage::Bool(v) => Storage::Bool(v.clone()),
        };
        s.counted()
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        LIVE.fetch_sub(self.capacity_in_bytes() as i64, Ordering::Relaxed);
        match self {
            Storage::F32(v) => crate::cache::give(std::mem::take(v)),
            Storage::F64(v) => crate::cache::give(std::mem::take(v)),
            Storage::I64(v) => crate::cache::give(std::mem::take(v)),
            Storage::Bool(v) => crate::cache::give(std::mem::take(v)),
        }
    }
}

/// Buffers of at least this many bytes are advised as huge pages (see the module docs):
/// below it the aligned interior is at most one huge page and the system call is not worth it.
pub(crate) const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// Size of an x86-64 (and most aarch64) transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// Whether advice is on: always, unless the environment sets `ADJOINT_HUGE_PAGES=0` (read once;
/// for before/after benchmarks in one binary, and as an escape hatch on a kernel where huge
/// pages misbehave).
fn huge_pages_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::env::switch("ADJOINT_HUGE_PAGES", true))
}

/// `vec![x; n]` from the buffer cache ([`crate::cache`]), with a large fresh buffer advised as
/// huge pages before it is first written.
pub(crate) fn filled<T: Clone + PartialEq + Default + Send + 'static>(n: usize, x: T) -> Vec<T> {
    crate::cache::take_filled(n, x)
}

/// Advise the 2 MiB-aligned interior of `v`'s allocation (its whole capacity) as transparent
/// huge pages when it holds at least [`HUGE_PAGE_MIN_BYTES`]. Call it before the buffer is
/// first written; it never changes the contents. Does nothing off Linux.
#[inline]
pub(crate) fn advise_huge_pages<T>(v: &Vec<T>) {
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes < HUGE_PAGE_MIN_BYTES || !huge_pages_enabled() {
        return;
    }
    let start = (v.as_ptr() as usize).next_multiple_of(HUGE_PAGE);
    let end = (v.as_ptr() as usize + bytes) / HUGE_PAGE * HUGE_PAGE;
    if end > start {
        madvise_huge(start, end - start);
    }
}

#[cfg(target_os = "linux")]
fn madvise_huge(start: usize, len: usize) {
    // SAFETY: `start..start + len` lies inside one live allocation owned by the caller (the
    // interior of a `Vec`'s capacity), and `start` is page-aligned as `madvise` requires.
    // `MADV_HUGEPAGE` only changes how the kernel backs those pages: contents, protection and
    // the allocator's ownership are untouched, so no Rust invariant depends on the outcome and
    // an error (EINVAL when THP is compiled out) is deliberately ignored.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn madvise_huge(_start: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advised_buffers_keep_their_contents() {
        // The advice must not disturb a buffer, whether called before or after writing.
        let n = (HUGE_PAGE_MIN_BYTES * 3) / 4 + 12345;
        let mut v: Vec<f32> = Vec::with_capacity(n);
        advise_huge_pages(&v);
        v.extend((0..n).map(|i| i as f32));
        advise_huge_pages(&v);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
        let z = vec![0.0f64; n];
        advise_huge_pages(&z);
        assert!(z.iter().all(|&x| x == 0.0));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn large_buffers_are_advised() {
        // The kernel records the advice as the `hg` flag of the mapping (VmFlags in smaps);
        // skip where THP is unavailable or the advice is switched off (ADJOINT_HUGE_PAGES=0).
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        if (!thp.contains("[madvise]") && !thp.contains("[always]")) || !huge_pages_enabled() {
            return;
        }
        let v: Vec<u8> = Vec::with_capacity(16 << 20);
        advise_huge_pages(&v);
        let addr = (v.as_ptr() as usize).next_multiple_of(HUGE_PAGE) + HUGE_PAGE;
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut in_range = false;
        let mut advised = None;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((a, b)) = range.split_once('-')
                && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                in_range = a <= addr && addr < b;
                continue;
            }
            if in_range && line.starts_with("VmFlags:") {
                advised = Some(line.split_whitespace().any(|f| f == "hg"));
            }
        }
        assert_eq!(advised, Some(true), "the mapping holding {addr:#x} is not advised");
    }
}
