//! What one `evaluate` may ask of the tool: memory, work, iterations, repeated runs.
//!
//! GradBench inputs declare sizes (`llsq`'s `n`, `ode`'s `s`, `ba`'s `n, m, p`, `det`'s `ℓ`, …)
//! and the tool builds and loops over arrays of those sizes. Every eval checks, before it
//! allocates or loops, that
//!
//! - each declared size matches the data actually sent ([`check_len`]),
//! - the arrays it is about to build fit the memory budget ([`Limits::check_memory`]: elements
//!   × bytes per element, computed without overflow),
//! - the length of its main loop fits the step limit ([`Limits::check_steps`]),
//! - loops whose length is not known in advance (gradient descent in `particle` and `saddle`,
//!   `particle`'s Euler steps) stop after [`Limits::max_iterations`] ([`Budget`]),
//!
//! and answers `"success": false` with a one-line reason otherwise. [`Limits::check_runs`]
//! bounds the `min_runs` / `min_seconds` an input asks for.
//!
//! Defaults ([`Limits::from_env`], used by the binary; [`Limits::default`] without the
//! environment):
//!
//! | limit | default | environment variable |
//! |---|---|---|
//! | memory budget | ¾ of physical memory (`/proc/meminfo`), 8 GiB where that cannot be read | `ADJOINT_GRADBENCH_MEMORY` (bytes, or with a `K`/`M`/`G`/`T` suffix, powers of 1024) |
//! | steps per run | 10¹¹ | `ADJOINT_GRADBENCH_MAX_STEPS` |
//! | iterations | 10⁷ | `ADJOINT_GRADBENCH_MAX_ITERATIONS` |
//! | `min_runs` | 10⁶ | — |
//! | `min_seconds` | 3600 | — |
//!
//! The memory estimates count the arrays an eval builds from the declared sizes (and, for
//! reverse mode on the `Var` tape, 64 bytes per expected tape node), not every small
//! temporary; they are there to refuse a declared size no machine could hold, not to predict
//! the peak exactly.

use std::cell::{Cell, RefCell};

use serde_json::Value;

/// Environment variable overriding [`Limits::memory_bytes`].
pub const MEMORY_ENV: &str = "ADJOINT_GRADBENCH_MEMORY";
/// Environment variable overriding [`Limits::max_steps`].
pub const STEPS_ENV: &str = "ADJOINT_GRADBENCH_MAX_STEPS";
/// Environment variable overriding [`Limits::max_iterations`].
pub const ITERATIONS_ENV: &str = "ADJOINT_GRADBENCH_MAX_ITERATIONS";

/// Bytes per expected node of the scalar `Var` tape: a 24-byte node, its 8-byte adjoint,
/// and room for the vector's doubling.
pub const TAPE_NODE_BYTES: u64 = 64;

/// The limits one `evaluate` runs under.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Bytes an eval may allocate for the arrays it builds.
    pub memory_bytes: u64,
    /// Iterations of an eval's main loop (as each eval counts them) in one run.
    pub max_steps: u64,
    /// Iterations of loops whose length the input does not state: gradient-descent steps plus
    /// `particle`'s Euler steps, together, in one run.
    pub max_iterations: u64,
    /// Largest `min_runs` accepted.
    pub max_runs: u64,
    /// Largest `min_seconds` accepted.
    pub max_seconds: f64,
}

/// Fixed fallback for the memory budget.
const FALLBACK_MEMORY: u64 = 8 << 30;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_bytes: physical_memory().map_or(FALLBACK_MEMORY, |m| m / 4 * 3),
            max_steps: 100_000_000_000,
            max_iterations: 10_000_000,
            max_runs: 1_000_000,
            max_seconds: 3600.0,
        }
    }
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// A size: decimal digits with an optional `K`, `M`, `G` or `T` suffix (powers of 1024).
///
/// ```
/// use adjoint_gradbench::limits::parse_size;
/// assert_eq!(parse_size("4096"), Some(4096));
/// assert_eq!(parse_size("8G"), Some(8 << 30));
/// assert_eq!(parse_size("20000000T"), None); // overflows
/// assert_eq!(parse_size("-1"), None);
/// ```
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 10),
        (i, 'm' | 'M') => (&text[..i], 20),
        (i, 'g' | 'G') => (&text[..i], 30),
        (i, 't' | 'T') => (&text[..i], 40),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

impl Limits {
    /// The defaults, with [`MEMORY_ENV`], [`STEPS_ENV`] and [`ITERATIONS_ENV`] applied where
    /// set. An unparsable or zero value is an error naming the variable.
    pub fn from_env() -> Result<Limits, String> {
        let mut limits = Limits::default();
        for (var, field) in [
            (MEMORY_ENV, &mut limits.memory_bytes),
            (STEPS_ENV, &mut limits.max_steps),
            (ITERATIONS_ENV, &mut limits.max_iterations),
        ] {
            if let Some(text) = std::env::var_os(var) {
                let text = text.to_string_lossy();
                *field = parse_size(&text)
                    .filter(|&v| v > 0)
                    .ok_or_else(|| format!("{var}={text:?} is not a positive size (e.g. 4096, 512M, 8G)"))?;
            }
        }
        Ok(limits)
    }

    /// `elements` × `element_bytes` must fit [`Limits::memory_bytes`]; `what` says which
    /// arrays, for the error.
    ///
    /// ```
    /// let l = adjoint_gradbench::Limits { memory_bytes: 1 << 20, ..Default::default() };
    /// assert!(l.check_memory("ode: stage values", 1000, 8).is_ok());
    /// let e = l.check_memory("ode: stage values", u64::MAX, 8).unwrap_err();
    /// assert!(e.starts_with("ode: stage values: ") && e.contains("memory budget"), "{e}");
    /// ```
    pub fn check_memory(&self, what: &str, elements: u64, element_bytes: u64) -> Result<(), String> {
        let bytes = elements.saturating_mul(element_bytes);
        if bytes <= self.memory_bytes {
            return Ok(());
        }
        Err(format!(
            "{what}: {} elements × {element_bytes} bytes = {} bytes, over the memory budget of {} bytes \
             (set {MEMORY_ENV} to change it)",
            count(elements),
            count(bytes),
            self.memory_bytes
        ))
    }

    /// `steps` iterations of an eval's main loop must fit [`Limits::max_steps`].
    pub fn check_steps(&self, what: &str, steps: u64) -> Result<(), String> {
        if steps <= self.max_steps {
            return Ok(());
        }
        Err(format!(
            "{what}: {} steps, over the limit of {} steps per run (set {STEPS_ENV} to change it)",
            count(steps),
            self.max_steps
        ))
    }

    /// `min_runs` and `min_seconds` of an input (where present) must be within
    /// [`Limits::max_runs`] and [`Limits::max_seconds`].
    pub fn check_runs(&self, input: &Value) -> Result<(), String> {
        if let Some(r) = input.get("min_runs") {
            match r.as_u64() {
                Some(n) if n <= self.max_runs => {}
                _ => return Err(format!("min_runs = {r} is not a count up to {}", self.max_runs)),
            }
        }
        if let Some(s) = input.get("min_seconds") {
            match s.as_f64() {
                Some(t) if t.is_finite() && t <= self.max_seconds => {}
                _ => return Err(format!("min_seconds = {s} is not a number up to {}", self.max_seconds)),
            }
        }
        Ok(())
    }

    /// A scalar `Var` tape of `nodes` nodes must fit the memory budget and the tape's own
    /// limit of `u32::MAX - 1` nodes.
    pub fn check_tape(&self, what: &str, nodes: u64) -> Result<(), String> {
        if nodes >= u64::from(u32::MAX) {
            return Err(format!("{what}: about {nodes} tape nodes, over the Var tape's limit of 2^32 - 2"));
        }
        self.check_memory(what, nodes, TAPE_NODE_BYTES)
    }

    /// A fresh countdown of [`Limits::max_iterations`].
    pub fn budget(&self) -> Budget {
        Budget {
            left: Cell::new(self.max_iterations),
            limit: self.max_iterations,
            failure: RefCell::new(None),
        }
    }
}

/// A countdown of iterations shared by nested loops of unknown length (one run of `particle`:
/// its gradient-descent steps and the Euler steps inside every objective evaluation).
///
/// It also carries the first failure of a function that has to return a tensor (a
/// differentiated objective cannot return an error): the function records why with
/// [`Budget::fail`] and returns a non-finite value, the solver stops on that value, and the
/// caller reports [`Budget::failure`].
#[derive(Debug)]
pub struct Budget {
    left: Cell<u64>,
    limit: u64,
    failure: RefCell<Option<String>>,
}

impl Budget {
    /// Take one iteration; `false` once all are spent.
    ///
    /// ```
    /// let b = adjoint_gradbench::Limits { max_iterations: 2, ..Default::default() }.budget();
    /// assert!(b.take() && b.take() && !b.take() && b.spent());
    /// ```
    pub fn take(&self) -> bool {
        match self.left.get() {
            0 => false,
            n => {
                self.left.set(n - 1);
                true
            }
        }
    }

    /// Whether every iteration has been taken.
    pub fn spent(&self) -> bool {
        self.left.get() == 0
    }

    /// The number of iterations the budget started with.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Record why a nested function failed (the first reason is kept).
    pub fn fail(&self, reason: impl FnOnce() -> String) {
        let mut f = self.failure.borrow_mut();
        if f.is_none() {
            *f = Some(reason());
        }
    }

    /// The first recorded failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }
}

/// A declared size must equal the length of the data sent with it.
///
/// ```
/// use adjoint_gradbench::limits::check_len;
/// assert!(check_len("det: A", "ell² = 4", 4, 4).is_ok());
/// assert_eq!(check_len("det: A", "ell² = 9", 9, 4).unwrap_err(), "det: A has 4 entries, but ell² = 9 declares 9");
/// ```
pub fn check_len(what: &str, declared_as: &str, declared: u64, sent: usize) -> Result<(), String> {
    if declared == sent as u64 {
        Ok(())
    } else {
        Err(format!("{what} has {sent} entries, but {declared_as} declares {}", count(declared)))
    }
}

/// A count for a message: `u64::MAX` is where [`product`] and [`sum`] saturated.
fn count(n: u64) -> String {
    if n == u64::MAX {
        "2^64 or more".to_string()
    } else {
        n.to_string()
    }
}

/// The product of sizes, saturating at `u64::MAX` (which no limit admits).
///
/// ```
/// use adjoint_gradbench::limits::product;
/// assert_eq!(product(&[3, 4, 5]), 60);
/// assert_eq!(product(&[1 << 40, 1 << 40]), u64::MAX);
/// assert_eq!(product(&[0, u64::MAX, u64::MAX]), 0);
/// ```
pub fn product(sizes: &[u64]) -> u64 {
    if sizes.contains(&0) {
        return 0;
    }
    sizes.iter().fold(1u64, |acc, &s| acc.saturating_mul(s))
}

/// The sum of sizes, saturating at `u64::MAX`.
pub fn sum(sizes: &[u64]) -> u64 {
    sizes.iter().fold(0u64, |acc, &s| acc.saturating_add(s))
}
