//! A caching allocator for element buffers: freed buffers are kept in size classes and handed
//! to the next array of a similar size, so that training loops stop paying page faults for
//! every temporary.
//!
//! **Why.** A buffer above glibc's mmap threshold comes straight from `mmap` and goes back with
//! `munmap` when it is freed; below it, glibc trims the top of its heap as soon as enough is
//! free. Either way the next array of the same size is fresh memory, and its first write takes
//! one page fault per 4 KiB page. A training step allocates and frees the same sizes on every
//! iteration, so those faults repeat forever: measured on these machines, page faults were
//! 20–75% of the time of mid-size tensor work (the GMM objective at d = 10, k = 50 went from
//! 6.9 to 1.7 ms once freed memory was kept). PyTorch's CUDA caching allocator solves the same
//! problem the same way.
//!
//! **How.** Buffers of at least [`MIN_CACHED_BYTES`] are cached; smaller ones are left to the
//! system allocator, whose free lists already reuse them without faults. A request for `n`
//! elements is rounded up to a size class (8 classes per power of two, so at most 12.5% is
//! wasted — and the unused tail of a fresh buffer is never touched, so it costs address space,
//! not memory) and served from that class's free list, or allocated fresh at the class size.
//! A freed buffer whose capacity is a class size goes back to that class; any other (a vector
//! built outside the cache) is freed, as it would never be asked for. So is a large buffer
//! (4 MiB and more) that the cache did not allocate itself, even at a class size: it was never
//! advised as huge pages, and handed out again it would slow every kernel writing it (the cache
//! records the addresses of its own large buffers). The cache is one mutex-protected map
//! keyed by element type and class; it is touched once per array allocated or freed, never per
//! element, so contention is negligible next to the kernels.
//!
//! **Bounded.** The cache holds at most [`limit_bytes`] (default 1 GiB, environment variable
//! `ADJOINT_CACHE_BYTES`) and at most [`MAX_PER_CLASS`] buffers of one class; a buffer freed
//! past either limit goes back to the system. [`trim`]
//! empties it. `ADJOINT_CACHE=0` switches caching off (every request is a fresh allocation,
//! every free goes to the system), for debugging with tools that track allocations and for
//! before/after measurements. [`stats`] counts hits and misses.
//!
//! **Planned capacities.** A caller that knows the whole sequence of allocations ahead — a
//! jitted program's memory plan (`adjoint_core::jit`) — can let differently sized arrays whose
//! lifetimes do not overlap share one buffer: [`with_hints`] makes this thread's requests for
//! exactly `len` elements of a type ask for `cap` elements instead, so the buffer comes from,
//! and goes back to, the class of `cap`. Per class, the cache then holds as many buffers as the
//! plan has simultaneously live arrays in it, rather than one class per distinct size. A hint
//! changes capacities only, never contents or lengths.
//!
//! **Safety of reuse.** A cached buffer is handed out with length 0: its old contents are only
//! reachable through the spare capacity, which every allocation site in this crate fully
//! writes before setting the length (the same contract as a fresh `Vec::with_capacity`).
//!
//! ```
//! use adjoint_tensor::{cache, Array};
//! let before = cache::stats();
//! for _ in 0..3 {
//!     let a = Array::full(&[256, 256], 1.0, adjoint_tensor::DType::F32); // 256 KiB
//!     drop(a);
//! }
//! let after = cache::stats();
//! if cache::enabled() {
//!     assert!(after.hits > before.hits); // the second and third arrays reused the first's buffer
//! }
//! ```

use std::any::{Any, TypeId};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::dtype::DType;
use crate::storage::{advise_huge_pages, HUGE_PAGE_MIN_BYTES};

/// Buffers smaller than this are not cached (the system allocator reuses them well).
pub const MIN_CACHED_BYTES: usize = 64 << 10;

/// The most free buffers kept of one class: a workload that frees more of a size than it
/// allocates (its allocations come from elsewhere) cannot fill the cache with that size.
pub const MAX_PER_CLASS: usize = 32;

/// Default bound on the bytes held by the cache.
pub const DEFAULT_LIMIT_BYTES: usize = 1 << 30;

struct Cache {
    /// Free buffers (each a boxed, empty `Vec<T>`) by element type and capacity class.
    free: BTreeMap<(TypeId, usize), Vec<Box<dyn Any + Send>>>,
    /// Bytes of capacity held in `free`.
    bytes: usize,
    /// Addresses of the buffers of at least `HUGE_PAGE_MIN_BYTES` this cache allocated (and
    /// advised as huge pages before their first write). A large buffer built elsewhere
    /// (`Array::from_vec` of a collected vector whose capacity happens to be a class size) has
    /// 4 KiB pages for good; caching it would hand it out as if it were one of these — a
    /// 16M-element `add` writing into such a buffer took 15–18 ms against ~9 ms into an advised
    /// one (`benches/LOG.md`, 2026-12-07) — so `give` frees it instead.
    ours: BTreeSet<usize>,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache { free: BTreeMap::new(), bytes: 0, ours: BTreeSet::new() });
static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);
static RELEASED: AtomicU64 = AtomicU64::new(0);
static FOREIGN: AtomicU64 = AtomicU64::new(0);

/// Whether caching is on: unless the environment sets `ADJOINT_CACHE=0` (read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| crate::env::switch("ADJOINT_CACHE", true))
}

/// The most bytes the cache holds: `ADJOINT_CACHE_BYTES` when set to a number, otherwise
/// [`DEFAULT_LIMIT_BYTES`] (read once).
pub fn limit_bytes() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| crate::env::knob("ADJOINT_CACHE_BYTES", DEFAULT_LIMIT_BYTES))
}

/// Counters of the cache since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests served from a cached buffer.
    pub hits: u64,
    /// Requests (of cacheable size) that allocated fresh memory.
    pub misses: u64,
    /// Freed buffers given back to the system because the cache was full.
    pub released: u64,
    /// Freed buffers of cacheable size that were not allocated at a size class (built outside
    /// the cache, e.g. by `collect`), given back to the system.
    pub foreign: u64,
    /// Bytes held by the cache now.
    pub cached_bytes: usize,
}

/// The cache's counters.
pub fn stats() -> CacheStats {
    CacheStats {
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
        released: RELEASED.load(Ordering::Relaxed),
        foreign: FOREIGN.load(Ordering::Relaxed),
        cached_bytes: lock().bytes,
    }
}

/// Give every cached buffer back to the system.
pub fn trim() {
    let free = {
        let mut c = lock();
        c.bytes = 0;
        // The freed buffers' addresses may come back from the system for anything; buffers in
        // use lose their mark too and are freed rather than cached when they come back.
        c.ours.clear();
        std::mem::take(&mut c.free)
    };
    drop(free); // outside the lock
}

fn lock() -> std::sync::MutexGuard<'static, Cache> {
    // A panic while the lock is held cannot leave the map inconsistent (every update is one
    // insert or remove), so a poisoned lock is still usable.
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The size class of a request for `n` elements: `n` rounded up so that only its top four
/// bits may be set (8 classes per power of two).
fn class_up(n: usize) -> usize {
    let step = step_of(n);
    n.div_ceil(step) * step
}

fn step_of(n: usize) -> usize {
    let bits = usize::BITS - n.leading_zeros();
    1usize << bits.saturating_sub(4)
}

fn cacheable<T>(n: usize) -> bool {
    enabled() && n.saturating_mul(std::mem::size_of::<T>()) >= MIN_CACHED_BYTES
}

/// A cached buffer for `n` elements, or `None`.
fn pop<T: Send + 'static>(class: usize) -> Option<Vec<T>> {
    let b = {
        let mut c = lock();
        let list = c.free.get_mut(&(TypeId::of::<T>(), class))?;
        let b = list.pop()?;
        if list.is_empty() {
            c.free.remove(&(TypeId::of::<T>(), class));
        }
        c.bytes -= class * std::mem::size_of::<T>();
        b
    };
    HITS.fetch_add(1, Ordering::Relaxed);
    Some(*b.downcast::<Vec<T>>().expect("the cache keys buffers by their element type"))
}

/// A planned capacity ([`with_hints`]): a request for exactly `len` elements of one element type
/// asks for `cap` instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hint {
    ty: TypeId,
    len: usize,
    cap: usize,
}

impl Hint {
    /// Requests for `len` elements of `dtype`'s element type take `cap` (`≥ len`) elements.
    pub fn new(dtype: DType, len: usize, cap: usize) -> Hint {
        let ty = match dtype {
            DType::F32 => TypeId::of::<f32>(),
            DType::F64 => TypeId::of::<f64>(),
            DType::I64 => TypeId::of::<i64>(),
            DType::Bool => TypeId::of::<bool>(),
        };
        Hint { ty, len, cap: cap.max(len) }
    }
}

/// The most hints in force at once ([`with_hints`] ignores the rest).
pub const MAX_HINTS: usize = 4;

thread_local! {
    static HINTS: Cell<[Option<Hint>; MAX_HINTS]> = const { Cell::new([None; MAX_HINTS]) };
}

/// Run `f` with `hints` in force on this thread: inside it, a [`take`] or [`take_filled`] of
/// exactly a hint's length and element type allocates (or reuses) a buffer of the hint's
/// capacity. Requests from other threads (a kernel's workers) are not affected. Nests; the
/// previous hints are back when `f` returns or unwinds.
///
/// ```
/// use adjoint_tensor::{cache, DType};
/// let v: Vec<f32> = cache::with_hints(&[cache::Hint::new(DType::F32, 100_000, 300_000)], || cache::take(100_000));
/// assert!(v.capacity() >= 300_000 || !cache::enabled());
/// ```
pub fn with_hints<R>(hints: &[Hint], f: impl FnOnce() -> R) -> R {
    struct Restore([Option<Hint>; MAX_HINTS]);
    impl Drop for Restore {
        fn drop(&mut self) {
            HINTS.with(|h| h.set(self.0));
        }
    }
    let mut now = [None; MAX_HINTS];
    for (slot, h) in now.iter_mut().zip(hints) {
        *slot = Some(*h);
    }
    let _restore = Restore(HINTS.with(|h| h.replace(now)));
    f()
}

/// The capacity to request for `n` elements of `T` under this thread's hints.
#[inline]
fn hinted<T: 'static>(n: usize) -> usize {
    HINTS.with(|h| {
        // One slot read when no hints are in force (every allocation asks), not a copy of all.
        let hints = (h as &Cell<[Option<Hint>]>).as_slice_of_cells();
        if hints[0].get().is_none() {
            return n;
        }
        let ty = TypeId::of::<T>();
        hints.iter().filter_map(Cell::get).find(|h| h.len == n && h.ty == ty).map_or(n, |h| h.cap)
    })
}

/// An empty vector with room for at least `n` elements: a cached buffer when one of the right
/// class is free, otherwise a fresh allocation (advised as huge pages when large). Every
/// element the caller will read must be written first (the contract of `Vec::with_capacity`).
pub fn take<T: Send + 'static>(n: usize) -> Vec<T> {
    let want = hinted::<T>(n);
    if !cacheable::<T>(want) {
        let v = Vec::with_capacity(n);
        advise_huge_pages(&v);
        return v;
    }
    let class = class_up(want);
    if let Some(v) = pop(class) {
        return v;
    }
    MISSES.fetch_add(1, Ordering::Relaxed);
    let v = Vec::with_capacity(class);
    advise_huge_pages(&v);
    mark_ours(&v);
    v
}

/// Record a fresh, advised buffer of this cache (see `Cache::ours`).
fn mark_ours<T>(v: &Vec<T>) {
    if v.capacity().saturating_mul(std::mem::size_of::<T>()) >= HUGE_PAGE_MIN_BYTES {
        lock().ours.insert(v.as_ptr() as usize);
    }
}

/// `vec![x; n]` from the cache (other crates' kernels use it for their outputs, so that the
/// buffers they free are the sizes the cache hands out). A fresh zero-filled buffer comes from the zeroed allocator
/// (`calloc`: its fresh pages are not touched until written).
pub fn take_filled<T: Clone + PartialEq + Default + Send + 'static>(n: usize, x: T) -> Vec<T> {
    let want = hinted::<T>(n);
    if cacheable::<T>(want) {
        let class = class_up(want);
        if let Some(mut v) = pop(class) {
            v.resize(n, x);
            return v;
        }
        MISSES.fetch_add(1, Ordering::Relaxed);
        let v = fresh_filled(class, n, x);
        mark_ours(&v);
        return v;
    }
    fresh_filled(n, n, x)
}

fn fresh_filled<T: Clone + PartialEq + Default>(cap: usize, n: usize, x: T) -> Vec<T> {
    if x == T::default() {
        let mut v = vec![x; cap];
        advise_huge_pages(&v);
        v.truncate(n);
        return v;
    }
    let mut v = Vec::with_capacity(cap);
    advise_huge_pages(&v);
    v.resize(n, x);
    v
}

/// Take back a buffer that is no longer used: cached when it is large enough and the cache has
/// room, otherwise freed.
pub fn give<T: Send + 'static>(mut v: Vec<T>) {
    let cap = v.capacity();
    if !cacheable::<T>(cap) {
        return;
    }
    if class_up(cap) != cap {
        // Not one of the cache's sizes (a vector built elsewhere, e.g. by `collect`): no request
        // would ask for its exact class, so it would only crowd the cache. Free it.
        FOREIGN.fetch_add(1, Ordering::Relaxed);
        return;
    }
    v.clear();
    let bytes = cap * std::mem::size_of::<T>();
    let large = bytes >= HUGE_PAGE_MIN_BYTES;
    let mut c = lock();
    if large && !c.ours.contains(&(v.as_ptr() as usize)) {
        // Built elsewhere, without huge pages (see `Cache::ours`): free it.
        drop(c);
        FOREIGN.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let depth = c.free.get(&(TypeId::of::<T>(), cap)).map_or(0, Vec::len);
    if c.bytes + bytes > limit_bytes() || depth >= MAX_PER_CLASS {
        if large {
            c.ours.remove(&(v.as_ptr() as usize));
        }
        drop(c);
        RELEASED.fetch_add(1, Ordering::Relaxed);
        return; // `v` is freed here, outside the lock
    }
    c.bytes += bytes;
    c.free.entry((TypeId::of::<T>(), cap)).or_default().push(Box::new(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_by_at_most_an_eighth_and_are_fixed_points() {
        for n in (1..5000).chain([65_535, 65_536, 65_537, 1 << 20, (1 << 20) + 1, 123_456_789]) {
            let c = class_up(n);
            assert!(c >= n && (c - n) * 8 <= n.max(8), "{n} -> {c}");
            assert_eq!(class_up(c), c, "{n} -> {c}: a class is its own class");
        }
    }

    #[test]
    fn hints_round_only_their_length_and_type_and_are_restored() {
        if !enabled() {
            return;
        }
        let (n, cap) = (20_000, 300_000);
        let h = [Hint::new(DType::F64, n, cap)];
        with_hints(&h, || {
            let v: Vec<f64> = take(n);
            assert!(v.capacity() >= cap && v.is_empty());
            let w: Vec<f64> = take_filled(n, 0.0);
            assert!(w.capacity() >= cap && w.len() == n);
            // Another length or another element type is not hinted.
            assert!(take::<f64>(n + 1).capacity() < cap);
            assert!(take::<f32>(n).capacity() < cap);
            // Nested hints replace, then give back, the outer ones.
            with_hints(&[], || assert!(take::<f64>(n).capacity() < cap));
            assert!(take::<f64>(n).capacity() >= cap);
        });
        assert!(take::<f64>(n).capacity() < cap);
        // Restored after a panic inside, too.
        let r = std::panic::catch_unwind(|| with_hints(&h, || panic!("inside")));
        assert!(r.is_err());
        assert!(take::<f64>(n).capacity() < cap);
        // Other threads never see this thread's hints.
        with_hints(&h, || {
            let other = std::thread::spawn(move || take::<f64>(n).capacity()).join().unwrap();
            assert!(other < cap);
        });
    }

    #[test]
    fn a_freed_buffer_serves_the_next_request_of_its_class() {
        if !enabled() {
            return;
        }
        // A type no other test caches, so parallel tests cannot take the buffer in between.
        #[derive(Clone, Copy)]
        struct Probe(#[allow(dead_code)] [u8; 24]);
        let n = 10_000; // 240 KB
        let v: Vec<Probe> = take(n);
        assert!(v.capacity() >= n && v.is_empty());
        let ptr = v.as_ptr();
        give(v);
        let w: Vec<Probe> = take(n - 7); // same class
        assert_eq!(w.as_ptr(), ptr, "the cached buffer was reused");
        assert!(w.is_empty());
        give(w);
        let small: Vec<Probe> = take(10);
        assert!(small.capacity() < 1000, "small requests are not rounded to cached classes");
        // A vector of cacheable size but not at a class size is freed, not cached.
        let before = stats().foreign;
        give(Vec::<Probe>::with_capacity(class_up(n) + 1));
        assert_eq!(stats().foreign, before + 1);
    }

    #[test]
    fn large_buffers_built_elsewhere_are_freed_not_cached() {
        if !enabled() {
            return;
        }
        // A type no other test caches. 4 Mi elements of 2 bytes: 8 MB, a class size, past
        // `HUGE_PAGE_MIN_BYTES`.
        #[derive(Clone, Copy, PartialEq, Default)]
        struct Big(#[allow(dead_code)] u16);
        let n = 4 << 20;
        assert_eq!(class_up(n), n);
        // Built outside the cache (no huge-page advice): freed, counted as foreign.
        let before = stats().foreign;
        give(Vec::<Big>::with_capacity(n));
        assert_eq!(stats().foreign, before + 1, "a large vector built elsewhere is not cached");
        // One of the cache's own: cached and handed out again.
        let ours: Vec<Big> = take(n);
        let ptr = ours.as_ptr();
        give(ours);
        let again: Vec<Big> = take(n);
        assert_eq!(again.as_ptr(), ptr, "the cache's own large buffer was reused");
        // A fresh zero-filled one is the cache's own too (taken while `again` is out, so it
        // is fresh).
        let zeroed: Vec<Big> = take_filled(n, Big::default());
        let zp = zeroed.as_ptr();
        give(zeroed);
        let reused: Vec<Big> = take(n);
        assert_eq!(reused.as_ptr(), zp, "a fresh zero-filled large buffer is cached");
        give(reused);
        give(again);
    }

    #[test]
    fn filled_buffers_are_filled_whether_fresh_or_reused() {
        for round in 0..3 {
            let v = take_filled(50_000, 0.0f64);
            assert!(v.len() == 50_000 && v.iter().all(|&x| x == 0.0), "round {round}");
            let mut w = v;
            w.iter_mut().for_each(|x| *x = 7.0);
            give(w);
            let u = take_filled(49_999, 2.5f64);
            assert!(u.len() == 49_999 && u.iter().all(|&x| x == 2.5), "round {round}");
            give(u);
        }
    }
}
