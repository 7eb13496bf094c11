//! Anomaly mode: stop at the first NaN or infinity a primitive produces, and say where.
//!
//! A NaN found in the loss at step 40,000 says nothing about where it came from: by then it has
//! flowed through every op downstream. In anomaly mode every primitive's output is scanned as it
//! is computed, and the first one that *creates* a non-finite value — a NaN from inputs without
//! NaN, or an infinity from all-finite inputs — stops the program with an [`Anomaly`] naming
//!
//! - the primitive (`log`, `div`, …) and whether it ran in the forward pass or inside a
//!   derivative rule (for a backward rule: the forward op whose rule it was, and where *that*
//!   op was called);
//! - the shape, dtype and statistics (finite min/max, NaN and ±inf counts) of every input and
//!   of the output;
//! - the user's source line that called the op (via `#[track_caller]`; ops implemented as
//!   composites report the line that called the composite).
//!
//! Values that merely *propagate* a NaN or infinity already present in an input are not
//! reported: the report is about the op that made it. So `-inf` attention masks passing
//! through `exp` (which maps them to 0) are fine, while `inf - inf` is reported.
//!
//! ## Switching it on
//! - [`detect_anomaly(|| …)`](detect_anomaly) checks everything the closure runs on this thread
//!   and returns `Err(Anomaly)` instead of the closure's value when it finds one.
//! - `ADJOINT_DETECT_ANOMALY=1` in the environment switches it on for a whole program (read
//!   once, at the first op); an anomaly then panics with the report as its message.
//!
//! ## Cost
//! When off, `bind` pays one relaxed atomic load and a compare (see `benches/ANOMALY.md` for the
//! measured effect on an MLP training step). When on, every output is scanned once, and each op
//! records its call site; reverse-mode tape nodes also keep their forward op's name and call site.
//!
//! ```
//! use adjoint_core::{debug, grad, Tensor};
//!
//! let x = Tensor::from_vec(vec![1.0f32, 0.0, 2.0], &[3]);
//! // log(0) = -inf in the forward pass: reported with this file and line.
//! let err = debug::detect_anomaly(|| x.log().sum()).unwrap_err();
//! assert_eq!(err.primitive, "log");
//! assert!(err.to_string().contains(file!()));
//!
//! // sqrt is finite at 0, but its derivative 1/(2·sqrt(x)) is not: reported in the backward
//! // rule of `sqrt`.
//! let err = debug::detect_anomaly(|| grad(|x: &Tensor| x.sqrt().sum())(&x)).unwrap_err();
//! assert_eq!(err.phase.rule_of(), Some("sqrt"));
//!
//! // Healthy code runs as usual.
//! assert!(debug::detect_anomaly(|| x.exp().sum()).is_ok());
//! ```

use std::cell::Cell;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicUsize, Ordering};

use adjoint_tensor::{Array, DType, Element};

/// The environment variable that switches anomaly mode on for a whole program.
pub const ENV_VAR: &str = "ADJOINT_DETECT_ANOMALY";

/// `GATE` is 0 when nobody wants anomaly checks, so `bind` tests one word. Bit 0: the
/// environment variable is set; each active [`detect_anomaly`] scope (on any thread) adds
/// `SCOPE`; `UNINIT` until the environment has been read.
static GATE: AtomicUsize = AtomicUsize::new(UNINIT);
const UNINIT: usize = usize::MAX;
const ENV_ON: usize = 1;
const SCOPE: usize = 2;

thread_local! {
    /// Active `detect_anomaly` scopes on this thread.
    static SCOPES: Cell<usize> = const { Cell::new(0) };
    /// Call site of the outermost op being bound (deeper binds inside rules keep it).
    static SITE: Cell<Option<&'static Location<'static>>> = const { Cell::new(None) };
    /// The derivative or batching rule being run, if any.
    static RULE: Cell<Option<(RuleKind, Origin)>> = const { Cell::new(None) };
}

/// One relaxed load: might anomaly checks be on for some thread? (The `bind` fast path.)
#[inline(always)]
pub(crate) fn requested() -> bool {
    GATE.load(Ordering::Relaxed) != 0
}

/// Are anomaly checks on for this thread? (Only asked after [`requested`] said yes.)
#[cold]
#[inline(never)]
pub(crate) fn active() -> bool {
    let g = gate();
    g & ENV_ON != 0 || SCOPES.with(|s| s.get() > 0)
}

fn gate() -> usize {
    let g = GATE.load(Ordering::Relaxed);
    if g != UNINIT {
        return g;
    }
    let on = match std::env::var(ENV_VAR) {
        Ok(v) => !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false" | "off" | "no"),
        Err(_) => false,
    };
    let _ = GATE.compare_exchange(UNINIT, usize::from(on), Ordering::Relaxed, Ordering::Relaxed);
    GATE.load(Ordering::Relaxed)
}

/// True when anomaly checks are on for the current thread (inside [`detect_anomaly`], or with
/// `ADJOINT_DETECT_ANOMALY=1`).
///
/// ```
/// use adjoint_core::debug;
/// if std::env::var(debug::ENV_VAR).is_err() {
///     assert!(!debug::anomaly_enabled());
/// }
/// assert!(debug::detect_anomaly(debug::anomaly_enabled).unwrap());
/// ```
pub fn anomaly_enabled() -> bool {
    requested() && active()
}

/// Run `f` with anomaly checks on (on this thread); the first primitive that produces a NaN or
/// infinity stops `f` and its [`Anomaly`] report is returned. Other panics pass through
/// unchanged. Scopes nest; transforms active inside `f` are unwound cleanly.
///
/// ```
/// use adjoint_core::{debug, Tensor};
/// let x = Tensor::from_vec(vec![1e30f32, 1e30], &[2]);
/// let report = debug::detect_anomaly(|| (&x * &x).sum()).unwrap_err();
/// assert_eq!(report.primitive, "mul");
/// assert_eq!(report.output.pos_inf, 2);
/// ```
// The report is large, but it is returned once, on the way to a diagnosis: no need to box it.
#[allow(clippy::result_large_err)]
pub fn detect_anomaly<R>(f: impl FnOnce() -> R) -> Result<R, Anomaly> {
    struct Scope;
    impl Drop for Scope {
        fn drop(&mut self) {
            SCOPES.with(|s| s.set(s.get() - 1));
            GATE.fetch_sub(SCOPE, Ordering::Relaxed);
        }
    }
    gate();
    GATE.fetch_add(SCOPE, Ordering::Relaxed);
    SCOPES.with(|s| s.set(s.get() + 1));
    let scope = Scope;
    let r = catch_unwind(AssertUnwindSafe(f));
    drop(scope);
    match r {
        Ok(v) => Ok(v),
        Err(payload) => match payload.downcast::<Anomaly>() {
            Ok(a) => Err(*a),
            Err(other) => resume_unwind(other),
        },
    }
}

// ------------------------------------------------------------------ hooks used by `trace`

/// A forward op as the tape remembers it in anomaly mode.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin {
    pub(crate) op: &'static str,
    pub(crate) at: Option<&'static Location<'static>>,
}

/// Which kind of rule is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RuleKind {
    Jvp,
    Vjp,
    Batch,
}

/// The forward op `op` as seen now (its call site is the current op site).
pub(crate) fn origin(op: &'static str) -> Origin {
    Origin { op, at: SITE.with(|s| s.get()) }
}

/// Sets the op site for the duration of a top-level bind (kept by nested binds).
pub(crate) struct SiteGuard(Option<Option<&'static Location<'static>>>);

impl SiteGuard {
    pub(crate) fn enter(at: &'static Location<'static>) -> SiteGuard {
        SITE.with(|s| match s.get() {
            Some(_) => SiteGuard(None),
            None => {
                s.set(Some(at));
                SiteGuard(Some(None))
            }
        })
    }
}

impl Drop for SiteGuard {
    fn drop(&mut self) {
        if let Some(prev) = self.0 {
            let _ = SITE.try_with(|s| s.set(prev));
        }
    }
}

/// Marks a derivative or batching rule as running. A VJP rule runs during the backward pass,
/// away from the user's call, so its ops report their own sites (inside the rule) and the
/// forward op's site comes from the tape.
pub(crate) struct RuleGuard {
    prev_rule: Option<(RuleKind, Origin)>,
    prev_site: Option<Option<&'static Location<'static>>>,
}

impl RuleGuard {
    pub(crate) fn enter(kind: RuleKind, origin: Origin) -> RuleGuard {
        let prev_rule = RULE.with(|r| r.replace(Some((kind, origin))));
        let prev_site = (kind == RuleKind::Vjp).then(|| SITE.with(|s| s.replace(None)));
        RuleGuard { prev_rule, prev_site }
    }
}

impl Drop for RuleGuard {
    fn drop(&mut self) {
        let _ = RULE.try_with(|r| r.set(self.prev_rule));
        if let Some(prev) = self.prev_site {
            let _ = SITE.try_with(|s| s.set(prev));
        }
    }
}

/// Check a primitive's concrete output; raise an [`Anomaly`] if it created a NaN or infinity.
#[track_caller]
pub(crate) fn check(op: &'static str, inputs: &[&Array], out: &Array) {
    if !out.dtype().is_float() {
        return;
    }
    let o = Stats::of(out);
    if o.nan == 0 && o.pos_inf == 0 && o.neg_inf == 0 {
        return;
    }
    let ins: Vec<Stats> = inputs.iter().map(|a| Stats::of(a)).collect();
    let in_nan: usize = ins.iter().map(|s| s.nan).sum();
    let in_inf: usize = ins.iter().map(|s| s.pos_inf + s.neg_inf).sum();
    let new_nan = o.nan > 0 && in_nan == 0;
    let new_inf = o.pos_inf + o.neg_inf > 0 && in_nan + in_inf == 0;
    if !(new_nan || new_inf) {
        return;
    }
    let at = match SITE.with(|s| s.get()) {
        Some(at) => at,
        None => Location::caller(),
    };
    let phase = match RULE.with(|r| r.get()) {
        None => Phase::Forward,
        Some((kind, o)) => {
            let (of, called_at) = (o.op, o.at);
            match kind {
                RuleKind::Jvp => Phase::JvpRule { of, called_at },
                RuleKind::Vjp => Phase::VjpRule { of, called_at },
                RuleKind::Batch => Phase::BatchRule { of, called_at },
            }
        }
    };
    let report = Anomaly { primitive: op, phase, at, inputs: ins, output: o };
    if SCOPES.with(|s| s.get()) > 0 {
        // Caught by `detect_anomaly`; no panic hook message.
        resume_unwind(Box::new(report));
    }
    panic!("{report}");
}

// ------------------------------------------------------------------ the report

/// Where the anomalous primitive ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// In the forward computation, called by user code.
    Forward,
    /// Inside the forward-mode (JVP) rule of `of`, which was called at `called_at`.
    JvpRule {
        /// The primitive whose rule ran.
        of: &'static str,
        /// Where that primitive was called.
        called_at: Option<&'static Location<'static>>,
    },
    /// Inside the reverse-mode (VJP) rule of `of` during a backward pass; the forward op was
    /// called at `called_at`.
    VjpRule {
        /// The forward primitive whose rule ran.
        of: &'static str,
        /// Where that forward primitive was called.
        called_at: Option<&'static Location<'static>>,
    },
    /// Inside the `vmap` batching rule of `of`, called at `called_at`.
    BatchRule {
        /// The primitive whose rule ran.
        of: &'static str,
        /// Where that primitive was called.
        called_at: Option<&'static Location<'static>>,
    },
}

impl Phase {
    /// The primitive whose rule was running, if any.
    pub fn rule_of(&self) -> Option<&'static str> {
        match *self {
            Phase::Forward => None,
            Phase::JvpRule { of, .. } | Phase::VjpRule { of, .. } | Phase::BatchRule { of, .. } => Some(of),
        }
    }

    /// Where the op whose rule was running was called, if any.
    pub fn rule_called_at(&self) -> Option<&'static Location<'static>> {
        match *self {
            Phase::Forward => None,
            Phase::JvpRule { called_at, .. }
            | Phase::VjpRule { called_at, .. }
            | Phase::BatchRule { called_at, .. } => called_at,
        }
    }
}

/// Shape, dtype and value statistics of one tensor in an [`Anomaly`] report.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Smallest finite element (`None` when there is none, or for non-float dtypes).
    pub min: Option<f64>,
    /// Largest finite element.
    pub max: Option<f64>,
    /// Number of NaN elements.
    pub nan: usize,
    /// Number of `+inf` elements.
    pub pos_inf: usize,
    /// Number of `-inf` elements.
    pub neg_inf: usize,
}

impl Stats {
    fn of(a: &Array) -> Stats {
        let mut s = Stats {
            shape: a.shape().to_vec(),
            dtype: a.dtype(),
            min: None,
            max: None,
            nan: 0,
            pos_inf: 0,
            neg_inf: 0,
        };
        match a.dtype() {
            DType::F32 => s.scan::<f32>(a, |x| x as f64),
            DType::F64 => s.scan::<f64>(a, |x| x),
            _ => {}
        }
        s
    }

    fn scan<T: Element + Copy>(&mut self, a: &Array, to_f64: impl Fn(T) -> f64) {
        let owned;
        let xs: &[T] = match a.as_slice::<T>() {
            Some(xs) => xs,
            None => {
                owned = a.to_vec::<T>();
                &owned
            }
        };
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &x in xs {
            let x = to_f64(x);
            if x.is_nan() {
                self.nan += 1;
            } else if x == f64::INFINITY {
                self.pos_inf += 1;
            } else if x == f64::NEG_INFINITY {
                self.neg_inf += 1;
            } else {
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
        if lo <= hi {
            self.min = Some(lo);
            self.max = Some(hi);
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shape {:?}, {}", self.shape, self.dtype)?;
        if !self.dtype.is_float() {
            return Ok(());
        }
        match (self.min, self.max) {
            (Some(lo), Some(hi)) => write!(f, ", finite min {lo:e}, max {hi:e}")?,
            _ => write!(f, ", no finite elements")?,
        }
        write!(f, ", {} NaN, {} +inf, {} -inf", self.nan, self.pos_inf, self.neg_inf)
    }
}

/// The report of anomaly mode: which primitive created a NaN or infinity, where, and from what.
#[derive(Clone, Debug)]
pub struct Anomaly {
    /// The primitive whose output was the first with a new NaN or infinity.
    pub primitive: &'static str,
    /// Forward pass, or which derivative/batching rule it ran in.
    pub phase: Phase,
    /// Where the primitive was called: the user's line for a forward op; for ops inside a
    /// backward rule, the line inside the rule (see [`Phase::rule_called_at`] for the user's).
    pub at: &'static Location<'static>,
    /// Its inputs.
    pub inputs: Vec<Stats>,
    /// Its output.
    pub output: Stats,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.output;
        let what = if o.nan > 0 && self.inputs.iter().all(|s| s.nan == 0) { "NaN" } else { "an infinity" };
        write!(f, "adjoint anomaly: `{}` produced {what} ", self.primitive)?;
        match self.phase {
            Phase::Forward => write!(f, "in the forward pass")?,
            Phase::JvpRule { of, .. } => write!(f, "in the forward-mode (JVP) rule of `{of}`")?,
            Phase::VjpRule { of, .. } => write!(f, "in the backward (VJP) rule of `{of}`")?,
            Phase::BatchRule { of, .. } => write!(f, "in the vmap batching rule of `{of}`")?,
        }
        write!(f, "\n  `{}` called at {}", self.primitive, self.at)?;
        if let Some(of) = self.phase.rule_of() {
            match self.phase.rule_called_at() {
                Some(at) => write!(f, "\n  forward op `{of}` called at {at}")?,
                None => write!(f, "\n  forward op `{of}` (call site not recorded)")?,
            }
        }
        for (i, s) in self.inputs.iter().enumerate() {
            write!(f, "\n  input {i}: {s}")?;
        }
        write!(f, "\n  output: {o}")
    }
}

impl std::error::Error for Anomaly {}
