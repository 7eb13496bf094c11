//! # adjoint-gradbench
//!
//! adjoint as a [GradBench](https://github.com/gradbench/gradbench) tool. The binary
//! `adjoint-gradbench` reads one JSON message per line on stdin and answers each with one
//! flushed JSON line on stdout, until EOF, following GradBench's protocol (`start`, `define`,
//! `evaluate`, `analysis`; see its `CONTRIBUTING.md`).
//!
//! ## Timing
//!
//! An `evaluate` input is parsed into plain Rust data (and, for tensor-tier evals, into
//! concrete tensors) before the clock starts — the same split as GradBench's C++ tools, whose
//! `prepare` step converts the JSON input. Each run of the function is then timed on its own
//! and reported as one `{"name": "evaluate", "nanoseconds": …}` entry; the function is run at
//! least `min_runs` times and until the runs add up to `min_seconds`. The output of the last
//! run is returned.
//!
//! ## Which tier for which eval
//!
//! Every derivative comes from adjoint's automatic differentiation; none is written by hand.
//! Each eval uses whichever tier is faster for its shape of work:
//!
//! | eval | tier | why |
//! |---|---|---|
//! | hello | scalar ([`adjoint_scalar::derivative`], `Dual`) | one scalar |
//! | lse | tensor (`adjoint_core::grad`) | a few large array ops; the scalar tape would record millions of nodes (`x` is held as 32K-element chunks so temporaries stay in cache) |
//! | gmm | tensor (`value_and_grad`; `jit(value_and_grad)` when `k·n ≤ 10⁴`) | `d ≤ 20`: the quadratic forms expanded (`Aₖ = QₖᵀQₖ`), so the `[k, n]` log-terms are one GEMM with constant point features and no `n·k·d` array exists; larger `d`: one `[n, k·d]` GEMM of all `Qₖ(xᵢ − μₖ)`. Small arrays are staged and fused by `jit` (per-op overhead dominated at `d = 2`) |
//! | llsq | tensor, blocked | the power matrix is built in 1 MiB row blocks, each consumed by its matmul while in cache; the gradient is the sum of per-block `grad`s |
//! | kmeans | f64 nearest-centroid search, then tensor (`jvp` of `grad`) | only `n` of the `n·k` distances have a non-zero derivative: AD differentiates `Σᵢ ‖C[jᵢ] − Pᵢ‖²` with the `jᵢ` found in plain f64 (the choice `min`'s own rule makes) |
//! | ode | tensor (`adjoint_core::grad` through `adjoint_solvers::ode::odeint`'s continuous adjoint, `Backsolve`, Tsit5) | the gradient GradBench checks is that of the continuous solution (`manual` uses its closed form): an adaptive solve at SciPy's tolerances costs ~7 steps each way whatever `s` is, instead of a tape through all `s` RK4 steps; the primal stays the exact `s`-step RK4 in plain `f64` |
//! | det | scalar (`Var` tape, 7 × 7 minors preaccumulated) | recursive, scalar-by-scalar; tensors would pay per-op overhead on 1×1 work; [`adjoint_scalar::preaccumulate`] records each small minor as one linear combination so the tape stays small |
//! | lstm | scalar (`Var` tape) | a long sequential loop over vectors of ~7 elements |
//! | ba | scalar (`DualVec<f64, 6>` then `DualVec<f64, 9>`, chained) | 15 inputs → 2 outputs per observation: two forward passes (rotation, projection) chained by the chain rule give a block of the sparse Jacobian, written into buffers reused across runs |
//! | ht | scalar (`DualVec<f64, 26>`, and `DualVec<f64, 2>` per point for `us`) | 26 inputs shared by every residual: one forward pass gives the whole dense block; the `us` block is block-diagonal |
//! | particle, saddle | tensor (nested `grad`/`jvp`) | nested AD in all four orders; the `Var` tape is `f64`-only, so reverse-over-reverse needs the tensor tier |
//!
//! ## Errors and limits
//!
//! A message that cannot be understood, an unknown module or function, or an input of the
//! wrong shape is answered with `"success": false` and a one-line `"error"` string saying what
//! and where; the tool never exits on bad input. A panic inside an eval (a bug) is caught and
//! reported the same way.
//!
//! Inputs are untrusted: before it allocates or loops, every eval checks each declared size
//! against the data sent with it and its arrays against a memory budget, and bounds its loops
//! (a step limit for loops of a declared length, an iteration limit for gradient descent and
//! `particle`'s Euler steps, which also stop on a non-finite value). `min_runs` and
//! `min_seconds` are bounded too. A size over a limit is refused with `"success": false`, not
//! clamped. The limits and the environment variables that change them
//! (`ADJOINT_GRADBENCH_MEMORY`, default ¾ of physical memory or 8 GiB;
//! `ADJOINT_GRADBENCH_MAX_STEPS`, `ADJOINT_GRADBENCH_MAX_ITERATIONS`) are in [`limits`]. The
//! binary reads one message line of at most [`max_message_bytes`] (a 32nd of the memory
//! budget: a parsed JSON number takes up to 32 bytes) and answers a longer one with an error.
//! [`handle`] answers one message in-process; the binary and the `gradbench` fuzz target
//! (`fuzz/harness/gradbench.rs`) both go through it.

use std::time::Instant;

use serde_json::{json, Value};

pub mod adbench;
pub mod evals;
pub mod limits;

pub use limits::Limits;

/// The modules this tool implements, in the order GradBench lists its evals.
pub const MODULES: &[&str] =
    &["hello", "llsq", "lse", "det", "ode", "gmm", "kmeans", "lstm", "ba", "ht", "particle", "saddle"];

/// The result of one `evaluate`: the output of the last run and the time of every run.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// The function's output, as GradBench's eval expects it.
    pub output: Value,
    /// Nanoseconds taken by each run of the function.
    pub timings: Vec<u64>,
}

/// `min_runs` / `min_seconds` from an input (GradBench's `Runs`), defaulting to one run.
#[derive(Debug, Clone, Copy)]
pub struct Runs {
    /// Run at least this many times.
    pub min_runs: usize,
    /// Keep running until the runs add up to at least this many seconds.
    pub min_seconds: f64,
}

impl Runs {
    /// Read the fields from an input object; absent fields mean one run.
    ///
    /// ```
    /// let r = adjoint_gradbench::Runs::from_input(&serde_json::json!({"min_runs": 3, "min_seconds": 0.5}));
    /// assert_eq!((r.min_runs, r.min_seconds), (3, 0.5));
    /// ```
    pub fn from_input(input: &Value) -> Runs {
        let min_runs = input.get("min_runs").and_then(Value::as_u64).unwrap_or(1).max(1) as usize;
        let min_seconds = input.get("min_seconds").and_then(Value::as_f64).unwrap_or(0.0);
        Runs { min_runs, min_seconds }
    }

    /// Run `f` as often as asked, timing each run on its own; returns the last result.
    ///
    /// ```
    /// use adjoint_gradbench::Runs;
    /// let (v, t) = Runs { min_runs: 3, min_seconds: 0.0 }.repeat(|| 2 + 2);
    /// assert_eq!((v, t.len()), (4, 3));
    /// ```
    pub fn repeat<T>(self, f: impl FnMut() -> T) -> (T, Vec<u64>) {
        self.repeat_until(f, |_| false)
    }

    /// [`Runs::repeat`], stopping early after a run whose result satisfies `stop`.
    pub fn repeat_until<T>(self, mut f: impl FnMut() -> T, stop: impl Fn(&T) -> bool) -> (T, Vec<u64>) {
        let mut timings = Vec::new();
        let mut total = 0.0;
        loop {
            let start = Instant::now();
            let out = std::hint::black_box(f());
            let ns = start.elapsed().as_nanos() as u64;
            timings.push(ns);
            total += ns as f64 * 1e-9;
            if stop(&out) || (timings.len() >= self.min_runs && total >= self.min_seconds) {
                return (out, timings);
            }
        }
    }
}

/// Time `f` per [`Runs`] read from `input` and package the output; the first `Err` stops
/// the runs and is returned.
pub fn try_timed<T>(
    input: &Value,
    f: impl FnMut() -> Result<T, String>,
    to_json: impl FnOnce(T) -> Value,
) -> Result<Evaluated, String> {
    let (out, timings) = Runs::from_input(input).repeat_until(f, Result::is_err);
    Ok(Evaluated { output: to_json(out?), timings })
}

/// Time `f` per [`Runs`] read from `input` and package the output.
pub fn timed<T>(input: &Value, f: impl FnMut() -> T, to_json: impl FnOnce(T) -> Value) -> Evaluated {
    let (out, timings) = Runs::from_input(input).repeat(f);
    Evaluated { output: to_json(out), timings }
}

/// Deserialize an eval's input, with a message naming the module on failure.
pub fn parse<T: serde::de::DeserializeOwned>(module: &str, input: &Value) -> Result<T, String> {
    T::deserialize(input).map_err(|e| format!("{module}: malformed input: {e}"))
}

/// Evaluate `function` of `module` on `input`, within `limits`.
pub fn evaluate(module: &str, function: &str, input: &Value, limits: &Limits) -> Result<Evaluated, String> {
    use evals::*;
    if MODULES.contains(&module) {
        limits.check_runs(input).map_err(|e| format!("{module}: {e}"))?;
    }
    let unknown = || Err(format!("module {module} has no function {function:?}"));
    match module {
        "hello" => hello::evaluate(function, input, limits).unwrap_or_else(unknown),
        "llsq" => llsq::evaluate(function, input, limits).unwrap_or_else(unknown),
        "lse" => lse::evaluate(function, input, limits).unwrap_or_else(unknown),
        "det" => det::evaluate(function, input, limits).unwrap_or_else(unknown),
        "ode" => ode::evaluate(function, input, limits).unwrap_or_else(unknown),
        "gmm" => gmm::evaluate(function, input, limits).unwrap_or_else(unknown),
        "kmeans" => kmeans::evaluate(function, input, limits).unwrap_or_else(unknown),
        "lstm" => lstm::evaluate(function, input, limits).unwrap_or_else(unknown),
        "ba" => ba::evaluate(function, input, limits).unwrap_or_else(unknown),
        "ht" => ht::evaluate(function, input, limits).unwrap_or_else(unknown),
        "particle" => particle::evaluate(function, input, limits).unwrap_or_else(unknown),
        "saddle" => saddle::evaluate(function, input, limits).unwrap_or_else(unknown),
        _ => Err(format!("unknown module {module:?}")),
    }
}

/// The answer to one protocol message.
#[derive(Debug, Clone)]
pub struct Response {
    /// The JSON line to send back.
    pub json: Value,
    /// Whether an eval panicked (a bug; `json` then reports it as an error).
    pub panicked: bool,
}

/// The longest message line the binary reads under `limits`: a 32nd of the memory budget (a
/// parsed JSON number takes up to 32 bytes), at least 1 MiB.
pub fn max_message_bytes(limits: &Limits) -> u64 {
    (limits.memory_bytes / 32).max(1 << 20)
}

/// Answer one protocol message (one line of input) under `limits`: the one path for every
/// message, used by the binary and the fuzz target.
///
/// ```
/// use adjoint_gradbench::{handle, Limits};
/// let limits = Limits::default();
/// let r = handle(r#"{"id": 0, "kind": "evaluate", "module": "ode", "function": "primal", "input": {"x": [1.0], "s": 1000000000000}}"#, &limits);
/// assert_eq!(r.json["success"], false);
/// assert!(!r.panicked);
/// ```
pub fn handle(line: &str, limits: &Limits) -> Response {
    let mut msg: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            let error = format!("invalid JSON message: {e}");
            return Response { json: json!({"id": null, "success": false, "error": error}), panicked: false };
        }
    };
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let mut panicked = false;
    let json = match msg.get("kind").and_then(Value::as_str) {
        Some("start") => json!({"id": id, "tool": "adjoint"}),
        Some("define") => {
            let module = msg.get("module").and_then(Value::as_str).unwrap_or("");
            if MODULES.contains(&module) {
                json!({"id": id, "success": true})
            } else {
                json!({"id": id, "success": false, "error": format!("adjoint has no module {module:?}")})
            }
        }
        Some("evaluate") => {
            let input = msg.get_mut("input").map(Value::take).unwrap_or(Value::Null);
            let module = msg.get("module").and_then(Value::as_str).unwrap_or("");
            let function = msg.get("function").and_then(Value::as_str).unwrap_or("");
            let result = std::panic::catch_unwind(|| evaluate(module, function, &input, limits))
                .unwrap_or_else(|p| {
                    panicked = true;
                    Err(format!("{module}.{function} panicked: {}", panic_message(&*p)))
                });
            match result {
                Ok(ev) => {
                    let timings: Vec<Value> =
                        ev.timings.iter().map(|&ns| json!({"name": "evaluate", "nanoseconds": ns})).collect();
                    json!({"id": id, "success": true, "output": ev.output, "timings": timings})
                }
                Err(e) => json!({"id": id, "success": false, "error": e}),
            }
        }
        _ => json!({"id": id}),
    };
    Response { json, panicked }
}

/// [`handle`] under [`Limits::default`] (the binary uses [`Limits::from_env`]), returning the
/// JSON only.
///
/// ```
/// use adjoint_gradbench::respond;
/// let r = respond(r#"{"id": 0, "kind": "start", "eval": "hello"}"#);
/// assert_eq!(r["id"], 0);
/// let r = respond(r#"{"id": 1, "kind": "define", "module": "hello"}"#);
/// assert_eq!(r["success"], true);
/// let r = respond(r#"{"id": 2, "kind": "evaluate", "module": "hello", "function": "double", "input": 3.0}"#);
/// assert_eq!(r["output"], 6.0);
/// ```
pub fn respond(line: &str) -> Value {
    handle(line, &Limits::default()).json
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
