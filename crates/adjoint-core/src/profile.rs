//! A profiler for programs written with adjoint: per primitive and per call site, the calls, the
//! time, the bytes allocated and the live memory, as a sorted table and as a Chrome trace that
//! Perfetto (<https://ui.perfetto.dev>) or `chrome://tracing` opens.
//!
//! ```
//! use adjoint_core::{grad, profile, Tensor};
//! let x = Tensor::from_vec(vec![0.5f64; 1000], &[1000]);
//! let (g, prof) = profile(|| grad(|x: &Tensor| (x.exp() * x).sum())(&x));
//! assert_eq!(g.shape(), &[1000]);
//! assert!(prof.rows().iter().any(|r| r.op == "exp"));
//! println!("{prof}"); // the table, sorted by self time
//! let path = std::env::temp_dir().join("adjoint-profile-doc.json");
//! prof.write_chrome_trace(&path).unwrap();
//! # std::fs::remove_file(&path).ok();
//! ```
//!
//! Or for a whole program, without changing it: [`from_env`] profiles a closure when the
//! environment variable `ADJOINT_PROFILE` names a file (the trace is written there and the
//! table printed on stderr). `adjoint-bench` and adjoint-nn's `train_bench` example wrap their
//! runs with it: `ADJOINT_PROFILE=w2.json target/release/adjoint-bench --quick W2_mlp_step`.
//!
//! **What is recorded.** Every `bind` on the profiling thread is one event: the primitive, the
//! line of the user's code that called it, the transform level that handled it (`eager`, `jvp`,
//! `vjp`, `batch`, `stage`), start and duration, the input and output shapes, the bytes of the
//! outputs it allocated (outputs that share an input's buffer — views — allocate nothing) and
//! the bytes of all live arrays when it returned
//! ([`adjoint_tensor::storage::live_bytes`]). A transform's rule binds again one level down, so
//! a `grad` of `exp` is a `vjp` event holding an `eager` one; nested events inherit the call
//! site of the outermost one (the user's line, as anomaly mode does). The backward pass's ops
//! are binds run by the tape's pullbacks: they are marked `backward` with the forward op whose
//! pullback ran them, and carry that forward op's call site — so "the backward of line 12"
//! is one group of rows.
//!
//! **The table** has one row per (op, call site, level, backward-of) and is sorted by *self
//! time*: an event's duration minus that of the binds nested in it, so rows add up to the time
//! spent in ops and nothing is counted twice; `incl ms` is the inclusive time. `%` is of the
//! profiled wall time (the rest is user code and bookkeeping between ops). `peak live` is the
//! most live bytes seen when a call of that row returned; the summary line has the process-wide
//! high-water mark over the whole run (which also sees temporaries inside kernels).
//!
//! **Cost.** Off, it costs `bind` one relaxed load of a global counter (the number of threads
//! profiling): measured with W1's eager `add` A/B, see `benches/LOG.md`. On, each bind takes a
//! few hundred nanoseconds more (two clock reads, the shape strings, a hash-map update), so
//! profiles of tiny ops overstate their share; kernels of any size are timed faithfully. The
//! table is aggregated as events arrive; the trace keeps the first [`MAX_EVENTS`] events.
//!
//! **Threads.** Ops bind on the calling thread (kernels may fan out to rayon internally; their
//! time is the bind's), so the state is thread-local: a profile sees the ops of the thread that
//! called [`profile`]. Nested `profile` calls on one thread panic, naming both lines.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::primitive::{Outs, Primitive};
use crate::tensor::{Repr, Tensor};
use crate::trace::{depth, top_of, Kind};

/// The environment variable [`from_env`] reads: a path for the Chrome trace.
pub const ENV_VAR: &str = "ADJOINT_PROFILE";

/// The most events a profile keeps for its trace (the table counts all of them).
pub const MAX_EVENTS: usize = 1 << 20;

/// Threads with an active [`profile`]: `bind` reads this one word when profiling is off.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// One relaxed load: might some thread be profiling? (The `bind` fast path.)
#[inline(always)]
pub(crate) fn requested() -> bool {
    ACTIVE.load(Ordering::Relaxed) != 0
}

/// The transform level that handled a bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// No transform: the kernel ran.
    Eager,
    /// Forward mode (`jvp`).
    Jvp,
    /// Reverse mode, recording the tape (`grad`, `vjp`).
    Vjp,
    /// `vmap`.
    Batch,
    /// `jit` staging (no kernel runs).
    Stage,
}

impl Level {
    /// The lowercase name used in tables and traces.
    pub fn name(self) -> &'static str {
        match self {
            Level::Eager => "eager",
            Level::Jvp => "jvp",
            Level::Vjp => "vjp",
            Level::Batch => "batch",
            Level::Stage => "stage",
        }
    }
}

/// One bind.
#[derive(Clone, Debug)]
pub struct Event {
    /// The primitive's name.
    pub op: &'static str,
    /// The user's line: the call site of the outermost bind this one is nested in (or, in the
    /// backward pass, of the forward op whose pullback ran it).
    pub site: &'static Location<'static>,
    /// Where this bind itself was called (inside a rule for nested binds).
    pub at: &'static Location<'static>,
    /// The level that handled it.
    pub level: Level,
    /// In the backward pass: the forward op whose pullback ran this bind.
    pub backward_of: Option<&'static str>,
    /// Start, from the beginning of the profile.
    pub start: Duration,
    /// Duration, nested binds included.
    pub dur: Duration,
    /// Duration of the binds nested in this one.
    pub child: Duration,
    /// Nesting depth (0: called by user code or a pullback).
    pub depth: u32,
    /// Input shapes and dtypes, e.g. `f32[128,784] f32[784,512]`.
    pub inputs: String,
    /// Output shapes and dtypes.
    pub outputs: String,
    /// Bytes of the outputs whose buffers are new (not views of an input).
    pub bytes: usize,
    /// Bytes of all live arrays (all threads) when the bind returned.
    pub live_bytes: usize,
}

/// One row of the table: the events of one (op, call site, level, backward-of).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The primitive.
    pub op: &'static str,
    /// The user's line (see [`Event::site`]).
    pub site: &'static Location<'static>,
    /// The level.
    pub level: Level,
    /// The forward op, for backward-pass rows.
    pub backward_of: Option<&'static str>,
    /// Number of binds.
    pub calls: u64,
    /// Time without nested binds.
    pub self_time: Duration,
    /// Time with nested binds.
    pub total_time: Duration,
    /// Bytes allocated for outputs.
    pub bytes: u64,
    /// The most live bytes seen when one of these calls returned.
    pub peak_live: usize,
}

/// Rows are per line (two ops of one kind on one line are one row).
type Key = (&'static str, &'static str, u32, Level, Option<&'static str>);

struct Open {
    op: &'static str,
    site: &'static Location<'static>,
    child: Duration,
}

struct State {
    called_at: &'static Location<'static>,
    origin: Instant,
    events: Vec<Event>,
    dropped: u64,
    rows: HashMap<Key, Row>,
    stack: Vec<Open>,
    /// The forward op whose pullback is running, with its call site.
    backward: Option<(&'static str, &'static Location<'static>)>,
}

/// What [`profile`] recorded: the events, the table and the memory summary.
#[derive(Clone, Debug)]
pub struct Profile {
    events: Vec<Event>,
    dropped: u64,
    rows: Vec<Row>,
    wall: Duration,
    live_before: usize,
    live_after: usize,
    peak_live: usize,
}

/// Run `f` and record every op it binds on this thread (see the [module docs](self)).
///
/// Panics when called inside another `profile` on the same thread.
///
/// ```
/// use adjoint_core::{profile, Tensor};
/// let x = Tensor::from_vec(vec![1.0f64; 1000], &[1000]);
/// let (y, prof) = profile(|| x.exp().exp());
/// assert_eq!(y.shape(), &[1000]);
/// let exp = &prof.rows()[0];
/// assert_eq!((exp.op, exp.calls, exp.bytes), ("exp", 2, 16_000));
/// ```
#[track_caller]
pub fn profile<R>(f: impl FnOnce() -> R) -> (R, Profile) {
    let here = Location::caller();
    STATE.with(|s| {
        if let Some(outer) = &*s.borrow() {
            panic!(
                "adjoint::profile: called at {here} inside the profile started at {}; profiles do not nest \
                 (profile the outer call only)",
                outer.called_at
            );
        }
    });
    let live_before = adjoint_tensor::storage::live_bytes();
    adjoint_tensor::storage::reset_peak_live_bytes();
    let origin = Instant::now();
    STATE.with(|s| {
        *s.borrow_mut() = Some(State {
            called_at: here,
            origin,
            events: Vec::new(),
            dropped: 0,
            rows: HashMap::new(),
            stack: Vec::new(),
            backward: None,
        })
    });
    ACTIVE.fetch_add(1, Ordering::Relaxed);
    // Ends the profile on every exit, unwinding included, so a panic leaves no state behind.
    struct End;
    impl Drop for End {
        fn drop(&mut self) {
            STATE.with(|s| s.borrow_mut().take());
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let end = End;
    let r = f();
    let wall = origin.elapsed();
    let state = STATE.with(|s| s.borrow_mut().take()).expect("the profile's state is set above");
    drop(end);
    let mut rows: Vec<Row> = state.rows.into_values().collect();
    rows.sort_by(|a, b| {
        b.self_time
            .cmp(&a.self_time)
            .then(b.calls.cmp(&a.calls))
            .then_with(|| (a.op, a.site.file(), a.site.line()).cmp(&(b.op, b.site.file(), b.site.line())))
    });
    let prof = Profile {
        events: state.events,
        dropped: state.dropped,
        rows,
        wall,
        live_before,
        live_after: adjoint_tensor::storage::live_bytes(),
        peak_live: adjoint_tensor::storage::peak_live_bytes(),
    };
    (r, prof)
}

/// Run `f`, profiled when the environment variable [`ENV_VAR`] (`ADJOINT_PROFILE`) names a file:
/// the Chrome trace is written there and the table printed on stderr (an error writing the
/// trace is printed too; it does not stop the program). Unset or empty: just `f()`.
///
/// ```
/// // ADJOINT_PROFILE=trace.json my-program   (profiles what the closure runs)
/// let y = adjoint_core::profile::from_env(|| adjoint_core::Tensor::scalar(2.0f64).exp());
/// assert!(y.item() > 7.0);
/// ```
#[track_caller]
pub fn from_env<R>(f: impl FnOnce() -> R) -> R {
    let path = match std::env::var_os(ENV_VAR) {
        Some(p) if !p.is_empty() => p,
        _ => return f(),
    };
    let (r, prof) = profile(f);
    eprint!("{prof}");
    match prof.write_chrome_trace(Path::new(&path)) {
        Ok(()) => eprintln!(
            "adjoint: profile trace written to {} (open it in https://ui.perfetto.dev)",
            path.to_string_lossy()
        ),
        Err(e) => eprintln!("adjoint: could not write the profile trace to {}: {e}", path.to_string_lossy()),
    }
    r
}

/// Is this thread profiling? (Asked only after [`requested`] said yes.)
fn on_this_thread() -> bool {
    STATE.with(|s| s.borrow().is_some())
}

/// The op being bound now and its call site, for the tape to label its pullback's binds.
#[inline]
pub(crate) fn current() -> Option<(&'static str, &'static Location<'static>)> {
    if !requested() {
        return None;
    }
    current_slow()
}

#[cold]
fn current_slow() -> Option<(&'static str, &'static Location<'static>)> {
    STATE.with(|s| s.borrow().as_ref().and_then(|st| st.stack.last().map(|o| (o.op, o.site))))
}

/// Marks the binds made while it lives as the backward pass of `origin`'s op.
pub(crate) struct BackwardGuard(Option<(&'static str, &'static Location<'static>)>);

impl BackwardGuard {
    pub(crate) fn enter(origin: (&'static str, &'static Location<'static>)) -> BackwardGuard {
        let prev = STATE.with(|s| s.borrow_mut().as_mut().map(|st| st.backward.replace(origin)));
        BackwardGuard(prev.flatten())
    }
}

impl Drop for BackwardGuard {
    fn drop(&mut self) {
        let prev = self.0;
        STATE.with(|s| {
            if let Some(st) = s.borrow_mut().as_mut() {
                st.backward = prev;
            }
        });
    }
}

fn describe(ts: &[&Tensor]) -> String {
    let mut s = String::new();
    for (i, t) in ts.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let dtype = match t.dtype() {
            adjoint_tensor::DType::F32 => "f32",
            adjoint_tensor::DType::F64 => "f64",
            adjoint_tensor::DType::I64 => "i64",
            adjoint_tensor::DType::Bool => "bool",
        };
        s.push_str(&format!("{dtype}{:?}", t.shape()).replace(' ', ""));
    }
    s
}

/// Pops the open bind on every exit, unwinding included.
struct Pop;

impl Drop for Pop {
    fn drop(&mut self) {
        STATE.with(|s| {
            if let Some(st) = s.borrow_mut().as_mut() {
                st.stack.pop();
            }
        });
    }
}

/// Record one bind of `p` on `args`, run by `run` (the unprofiled path). Called by `bind`,
/// `bind_multi` and the interpreters' binds one level down, only when [`requested`].
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn record<P: Primitive + ?Sized>(
    p: &P,
    args: &[&Tensor],
    run: impl FnOnce() -> Outs<Tensor>,
) -> Outs<Tensor> {
    if !on_this_thread() {
        return run();
    }
    let at = Location::caller();
    let level = if depth() == 0 {
        Level::Eager
    } else {
        match top_of(args) {
            None => Level::Eager,
            Some((_, _, Kind::Jvp)) => Level::Jvp,
            Some((_, _, Kind::Vjp)) => Level::Vjp,
            Some((_, _, Kind::Batch)) => Level::Batch,
            Some((_, _, Kind::Stage)) => Level::Stage,
        }
    };
    let (site, backward_of, nesting, start) = STATE.with(|s| {
        let mut b = s.borrow_mut();
        let st = b.as_mut().expect("checked above");
        let (site, backward_of) = match (st.stack.last(), st.backward) {
            (Some(parent), bw) => (parent.site, bw.map(|b| b.0)),
            (None, Some((op, site))) => (site, Some(op)),
            (None, None) => (at, None),
        };
        let nesting = st.stack.len() as u32;
        st.stack.push(Open { op: p.name(), site, child: Duration::ZERO });
        (site, backward_of, nesting, st.origin.elapsed())
    });
    let pop = Pop;
    let outs = run();
    let end = STATE.with(|s| s.borrow().as_ref().map(|st| st.origin.elapsed()));
    let child = STATE.with(|s| s.borrow().as_ref().and_then(|st| st.stack.last().map(|o| o.child)));
    drop(pop);
    let (Some(end), Some(child)) = (end, child) else { return outs };
    let dur = end.saturating_sub(start);
    let storages: Vec<&Arc<adjoint_tensor::storage::Storage>> = args
        .iter()
        .filter_map(|a| match &a.0 {
            Repr::Concrete(x) => Some(x.storage()),
            Repr::Tracer(_) => None,
        })
        .collect();
    let bytes: usize = outs
        .iter()
        .filter_map(|o| match &o.0 {
            Repr::Concrete(x) if !storages.iter().any(|s| Arc::ptr_eq(s, x.storage())) => {
                Some(x.numel() * x.dtype().size_in_bytes())
            }
            _ => None,
        })
        .sum();
    let live_bytes = adjoint_tensor::storage::live_bytes();
    let out_refs: Vec<&Tensor> = outs.iter().collect();
    let ev = Event {
        op: p.name(),
        site,
        at,
        level,
        backward_of,
        start,
        dur,
        child,
        depth: nesting,
        inputs: describe(args),
        outputs: describe(&out_refs),
        bytes,
        live_bytes,
    };
    STATE.with(|s| {
        let mut b = s.borrow_mut();
        let Some(st) = b.as_mut() else { return };
        if let Some(parent) = st.stack.last_mut() {
            parent.child += dur;
        }
        let key = (ev.op, site.file(), site.line(), level, backward_of);
        let row = st.rows.entry(key).or_insert_with(|| Row {
            op: ev.op,
            site,
            level,
            backward_of,
            calls: 0,
            self_time: Duration::ZERO,
            total_time: Duration::ZERO,
            bytes: 0,
            peak_live: 0,
        });
        row.calls += 1;
        row.self_time += dur.saturating_sub(child);
        row.total_time += dur;
        row.bytes += bytes as u64;
        row.peak_live = row.peak_live.max(live_bytes);
        if st.events.len() < MAX_EVENTS {
            st.events.push(ev);
        } else {
            st.dropped += 1;
        }
    });
    outs
}

impl Profile {
    /// The events in the order they ended (nested binds before the bind holding them).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The table's rows, by self time, longest first.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Wall time of the profiled closure.
    pub fn wall(&self) -> Duration {
        self.wall
    }

    /// Time spent in ops (the sum of the rows' self times).
    pub fn op_time(&self) -> Duration {
        self.rows.iter().map(|r| r.self_time).sum()
    }

    /// Number of binds recorded.
    pub fn total_calls(&self) -> u64 {
        self.rows.iter().map(|r| r.calls).sum()
    }

    /// Bytes allocated for op outputs.
    pub fn bytes(&self) -> u64 {
        self.rows.iter().map(|r| r.bytes).sum()
    }

    /// The most bytes live at once during the profile (all threads' arrays; the process-wide
    /// high-water mark of [`adjoint_tensor::storage::live_bytes`]).
    pub fn peak_live_bytes(&self) -> usize {
        self.peak_live
    }

    /// Live bytes when the profile started and when it ended.
    pub fn live_bytes_before_after(&self) -> (usize, usize) {
        (self.live_before, self.live_after)
    }

    /// Events not kept for the trace (past [`MAX_EVENTS`]); the table counts them.
    pub fn dropped_events(&self) -> u64 {
        self.dropped
    }

    /// The table with at most `n` rows (the rest summed in one line).
    pub fn table_top(&self, n: usize) -> String {
        let wall = self.wall.as_secs_f64().max(1e-12);
        let mut out = format!(
            "adjoint profile: {} binds, {:.3} ms in ops of {:.3} ms wall; {} allocated; peak live {} (start {}, end {})\n",
            self.total_calls(),
            ms(self.op_time()),
            ms(self.wall),
            human(self.bytes() as f64),
            human(self.peak_live as f64),
            human(self.live_before as f64),
            human(self.live_after as f64),
        );
        let site = |r: &Row| {
            let f = r.site.file();
            let short = f.rsplit_once("/src/").map_or(f, |(_, t)| t);
            format!("{short}:{}", r.site.line())
        };
        let what = |r: &Row| match r.backward_of {
            Some(of) => format!("{} bwd({of})", r.level.name()),
            None => r.level.name().to_string(),
        };
        let w_op = self.rows.iter().take(n).map(|r| r.op.len()).max().unwrap_or(2).max(2);
        let w_site = self.rows.iter().take(n).map(|r| site(r).len()).max().unwrap_or(9).max(9);
        let w_what = self.rows.iter().take(n).map(|r| what(r).len()).max().unwrap_or(5).max(5);
        out += &format!(
            "{:<w_op$}  {:<w_site$}  {:<w_what$}  {:>8}  {:>10}  {:>6}  {:>10}  {:>10}  {:>10}\n",
            "op", "call site", "level", "calls", "self ms", "%", "incl ms", "allocated", "peak live"
        );
        for r in self.rows.iter().take(n) {
            out += &format!(
                "{:<w_op$}  {:<w_site$}  {:<w_what$}  {:>8}  {:>10.3}  {:>6.1}  {:>10.3}  {:>10}  {:>10}\n",
                r.op,
                site(r),
                what(r),
                r.calls,
                ms(r.self_time),
                100.0 * r.self_time.as_secs_f64() / wall,
                ms(r.total_time),
                human(r.bytes as f64),
                human(r.peak_live as f64),
            );
        }
        if self.rows.len() > n {
            let rest = &self.rows[n..];
            let t: Duration = rest.iter().map(|r| r.self_time).sum();
            out += &format!(
                "… {} more rows: {} calls, {:.3} ms ({:.1}%)\n",
                rest.len(),
                rest.iter().map(|r| r.calls).sum::<u64>(),
                ms(t),
                100.0 * t.as_secs_f64() / wall
            );
        }
        out
    }

    /// The whole table (also what `Display` prints).
    pub fn table(&self) -> String {
        self.table_top(usize::MAX)
    }

    /// The trace as Chrome trace-event JSON (`{"traceEvents": [...]}`, one complete `"X"`
    /// event per bind, times in microseconds).
    pub fn chrome_trace_json(&self) -> String {
        let pid = std::process::id();
        let mut s = String::with_capacity(64 + self.events.len() * 256);
        s.push_str("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
        s.push_str(&format!(
            "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":1,\"args\":{{\"name\":\"adjoint\"}}}}"
        ));
        for e in &self.events {
            let cat = match e.backward_of {
                Some(_) => format!("{},backward", e.level.name()),
                None => e.level.name().to_string(),
            };
            s.push_str(&format!(
                ",\n{{\"name\":{},\"cat\":{},\"ph\":\"X\",\"ts\":{:.3},\"dur\":{:.3},\"pid\":{pid},\"tid\":1,\"args\":{{\"site\":{},\"at\":{},\"level\":\"{}\",\"inputs\":{},\"outputs\":{},\"bytes\":{},\"live_bytes\":{}",
                json_str(e.op),
                json_str(&cat),
                e.start.as_secs_f64() * 1e6,
                e.dur.as_secs_f64() * 1e6,
                json_str(&e.site.to_string()),
                json_str(&e.at.to_string()),
                e.level.name(),
                json_str(&e.inputs),
                json_str(&e.outputs),
                e.bytes,
                e.live_bytes,
            ));
            if let Some(of) = e.backward_of {
                s.push_str(&format!(",\"backward_of\":{}", json_str(of)));
            }
            s.push_str("}}");
        }
        s.push_str("\n]}\n");
        s
    }

    /// Write [`chrome_trace_json`](Self::chrome_trace_json) to `path`: into a temporary file
    /// next to it, then renamed over it, so a reader never sees half a trace.
    pub fn write_chrome_trace(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let path = path.as_ref();
        let name = path.file_name().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} names no file", path.display()))
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let written =
            std::fs::write(&tmp, self.chrome_trace_json()).and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.table())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn human(b: f64) -> String {
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1 << 20) as f64 {
        format!("{:.1} MiB", b / (1 << 20) as f64)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b} B")
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
