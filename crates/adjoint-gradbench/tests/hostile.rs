//! Hostile GradBench messages: declared sizes no machine could hold, sizes that disagree with
//! the data, loops that would never end, out-of-range `min_runs` / `min_seconds`, over-long
//! and non-UTF-8 lines. Each is answered with `"success": false` and a one-line reason, and
//! the tool keeps going. Also replays the `gradbench` fuzz corpus (`fuzz/regressions/gradbench/`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use adjoint_gradbench::{handle, Limits};
use serde_json::{json, Value};

#[path = "../../../fuzz/harness/gradbench.rs"]
mod fuzz_gradbench;

fn eval(module: &str, function: &str, input: Value, limits: &Limits) -> Value {
    let msg = json!({"id": 7, "kind": "evaluate", "module": module, "function": function, "input": input});
    let r = handle(&msg.to_string(), limits);
    assert!(!r.panicked, "{module}.{function} panicked: {}", r.json);
    assert_eq!(r.json["id"], 7);
    r.json
}

/// The error of a refused evaluation; fails if it succeeded.
fn refused(module: &str, function: &str, input: Value, limits: &Limits) -> String {
    let r = eval(module, function, input, limits);
    assert_eq!(r["success"], false, "{module}.{function} should be refused: {r}");
    let e = r["error"].as_str().unwrap_or_else(|| panic!("no error string: {r}")).to_string();
    assert!(!e.contains('\n'), "error is not one line: {e:?}");
    e
}

fn assert_contains(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

/// Default limits with the step limit lifted, so that the memory check is what refuses.
fn memory_only() -> Limits {
    Limits { max_steps: u64::MAX, memory_bytes: 8 << 30, ..Limits::default() }
}

// ---------------------------------------------------------------------------------------------
// The three known failures

#[test]
fn ode_with_s_of_ten_to_the_twelve_is_refused_not_aborted() {
    // Used to allocate 4·s f64s (32 TB) unchecked and abort the process. The primal is refused;
    // the gradient (odeint's continuous adjoint) does not depend on s and is evaluated.
    let input = json!({"x": [1.0, 2.0], "s": 1_000_000_000_000u64});
    let e = refused("ode", "primal", input.clone(), &Limits::default());
    assert_contains(&e, &["ode: ", "s = 1000000000000", "steps", "ADJOINT_GRADBENCH_MAX_STEPS"]);
    let e = refused("ode", "primal", input.clone(), &memory_only());
    assert_contains(&e, &["ode: stage values for s = 1000000000000", "memory budget of 8589934592 bytes"]);
    let r = eval("ode", "gradient", input, &Limits::default());
    assert_eq!(r["success"], true, "{r}");
    // y₁(2) = x₀ x₁ · 2²/2: the gradient is (2 x₁, 2 x₀) = (4, 2).
    let g: Vec<f64> = r["output"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!((g[0] - 4.0).abs() < 1e-5 && (g[1] - 2.0).abs() < 1e-5, "{g:?}");
    // A size that fits is still evaluated.
    let r = eval("ode", "primal", json!({"x": [1.0, 2.0], "s": 10}), &Limits::default());
    assert_eq!(r["success"], true, "{r}");
}

#[test]
fn llsq_with_n_of_ten_to_the_twelve_is_refused_not_run() {
    let e = refused(
        "llsq",
        "gradient",
        json!({"x": [1.0, 2.0, 3.0], "n": 1_000_000_000_000u64}),
        &Limits::default(),
    );
    assert_contains(
        &e,
        &["llsq: n = 1000000000000 rows × 3 powers", "3000000000000 steps", "limit of 100000000000"],
    );
    let r = eval("llsq", "primal", json!({"x": [1.0, 2.0, 3.0], "n": 100}), &Limits::default());
    assert_eq!(r["success"], true, "{r}");
}

#[test]
fn particle_with_w_of_1e300_stops_with_an_error() {
    // A charge at -1e300 no longer pushes the particle down: it used to fly forever.
    for function in ["ff", "rr"] {
        let start = std::time::Instant::now();
        let e = refused("particle", function, json!({"w": 1e300}), &Limits::default());
        assert_contains(
            &e,
            &[
                &format!("particle.{function}: "),
                "has not reached the ground after 10000 Euler steps",
                "w = 1e300",
            ],
        );
        assert!(start.elapsed().as_secs() < 60, "took {:?}", start.elapsed());
    }
    // The iteration limit stops the descent itself as well.
    let small = Limits { max_iterations: 50, ..Limits::default() };
    let e = refused("particle", "rr", json!({"w": 0.0}), &small);
    assert_contains(&e, &["particle.rr: the iteration limit of 50", "ADJOINT_GRADBENCH_MAX_ITERATIONS"]);
}

// ---------------------------------------------------------------------------------------------
// Other evals

#[test]
fn declared_sizes_must_match_the_data() {
    let l = Limits::default();
    // ell² wraps to 0 in u64 arithmetic for ell = 2^32: the check must not.
    let e = refused("det", "primal", json!({"A": [], "ell": 4294967296u64}), &l);
    assert_contains(&e, &["det: A has 0 entries", "ell² = 4294967296²", "2^64 or more"]);
    // Found by fuzzing: ℓ! was computed by a loop over 2..=ℓ before ℓ was checked against A
    // (8.6·10⁹ iterations for this ℓ, 4.6·10¹⁸ for 2^62).
    for ell in [8589934594u64, 1 << 62] {
        let start = std::time::Instant::now();
        let e = refused("det", "primal", json!({"A": [], "ell": ell}), &l);
        assert_contains(&e, &["det: A has 0 entries", &format!("ell² = {ell}²")]);
        assert!(start.elapsed().as_secs() < 5, "ell = {ell} took {:?}", start.elapsed());
    }
    let e = refused("det", "gradient", json!({"A": [1.0, 2.0, 3.0], "ell": 2}), &l);
    assert_contains(&e, &["det: A has 3 entries, but ell² = 2² declares 4"]);
    let gmm = |d: u64, k: u64, n: u64| {
        json!({"d": d, "k": k, "n": n, "x": [[1.0, 2.0]], "m": 0, "gamma": 1.0, "alpha": [1.0],
               "mu": [[0.0, 0.0]], "q": [[0.0, 0.0]], "l": [[0.0]]})
    };
    let e = refused("gmm", "objective", gmm(2, 1, 1 << 40), &l);
    assert_contains(&e, &["gmm: x has 1 entries, but n declares 1099511627776"]);
    let e = refused("gmm", "objective", gmm(2, 3, 1), &l);
    assert_contains(&e, &["gmm: alpha has 1 entries, but k declares 3"]);
    // d·(d-1)/2 used to be computed before d was checked against the data.
    let e = refused("gmm", "jacobian", gmm(4294967296, 1, 1), &l);
    assert_contains(&e, &["gmm: x must be 1 rows of 4294967296"]);
    assert_eq!(eval("gmm", "objective", gmm(2, 1, 1), &l)["success"], true);
}

#[test]
fn expanded_and_derived_sizes_fit_the_budget() {
    let l = memory_only();
    let ba = json!({"n": 1_000_000_000_000u64, "m": 1, "p": 1, "cam": vec![0.1; 11], "x": [1.0, 2.0, 3.0],
                    "w": 1.0, "feat": [1.0, 2.0]});
    let e = refused("ba", "jacobian", ba, &l);
    assert_contains(
        &e,
        &["ba: n = 1000000000000 cameras", "11000000000076 elements × 8 bytes", "memory budget"],
    );
    let ba = json!({"n": 1, "m": 1, "p": 1u64 << 62, "cam": vec![0.1; 11], "x": [1.0, 2.0, 3.0], "w": 1.0, "feat": [1.0, 2.0]});
    let e = refused("ba", "objective", ba, &Limits::default());
    assert_contains(&e, &["ba: p = 4611686018427387904 observations", "steps"]);
    // det's gradient tape: ell = 11 fits the steps, not 4 MiB (its preaccumulated tape is about
    // 13 MB).
    let a: Vec<f64> = (0..121).map(|i| i as f64).collect();
    let small = Limits { memory_bytes: 4 << 20, ..Limits::default() };
    let e = refused("det", "gradient", json!({"A": a, "ell": 11}), &small);
    assert_contains(&e, &["det: the gradient's tape for ell = 11", "memory budget of 4194304"]);
}

#[test]
fn non_finite_values_stop_the_solvers() {
    let l = Limits::default();
    for f in ["ff", "fr", "rf", "rr"] {
        let e = refused("saddle", f, json!({"start": [1e300, 1.0]}), &l);
        assert_contains(&e, &[&format!("saddle.{f}: gradient descent reached a non-finite objective")]);
    }
    // Overflowing inputs elsewhere give non-finite outputs (null in JSON), not hangs.
    let r = eval("lse", "gradient", json!({"x": [1e308, -1e308, 1e308]}), &l);
    assert_eq!(r["success"], true, "{r}");
    let r = eval(
        "kmeans",
        "dir",
        json!({"points": [[1e300, 1e300], [0.0, 0.0]], "centroids": [[1e300, 1.0]]}),
        &l,
    );
    assert_eq!(r["success"], true, "{r}");
}

#[test]
fn min_runs_and_min_seconds_are_bounded() {
    let l = Limits::default();
    let e = refused("lse", "primal", json!({"x": [1.0], "min_runs": 100_000_000_000u64}), &l);
    assert_contains(&e, &["lse: min_runs = 100000000000 is not a count up to 1000000"]);
    let e = refused("lse", "primal", json!({"x": [1.0], "min_seconds": 1e300}), &l);
    assert_contains(&e, &["lse: min_seconds = 1e+300 is not a number up to 3600"]);
    let e = refused("lse", "primal", json!({"x": [1.0], "min_runs": -1}), &l);
    assert_contains(&e, &["min_runs = -1"]);
    let r = eval("lse", "primal", json!({"x": [1.0], "min_runs": 3, "min_seconds": 0.0}), &l);
    assert_eq!(r["timings"].as_array().map(Vec::len), Some(3), "{r}");
}

#[test]
fn limits_come_from_the_environment_names() {
    use adjoint_gradbench::limits::parse_size;
    assert_eq!(parse_size("512M"), Some(512 << 20));
    assert_eq!(parse_size(" 3 "), Some(3));
    assert_eq!(parse_size("G"), None);
    assert_eq!(parse_size("1.5G"), None);
}

// ---------------------------------------------------------------------------------------------
// The binary

#[test]
fn binary_refuses_long_lines_and_bad_settings_and_keeps_going() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adjoint-gradbench"))
        .env("ADJOINT_GRADBENCH_MEMORY", "1K") // lines are then capped at the 1 MiB floor
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start adjoint-gradbench");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let long = format!("{{\"id\": 1, \"kind\": \"start\", \"pad\": \"{}\"}}\n", "x".repeat(2 << 20));
    stdin.write_all(long.as_bytes()).unwrap();
    stdin.write_all(b"{\"id\": 2, \"kind\": \"\xff\"}\n").unwrap();
    // 4·s stage values no longer fit 1 KiB.
    stdin.write_all(b"{\"id\": 3, \"kind\": \"evaluate\", \"module\": \"ode\", \"function\": \"primal\", \"input\": {\"x\": [1], \"s\": 100}}\n").unwrap();
    stdin.write_all(b"{\"id\": 4, \"kind\": \"evaluate\", \"module\": \"hello\", \"function\": \"square\", \"input\": 3}\n").unwrap();
    drop(stdin);
    let mut lines = Vec::new();
    for _ in 0..4 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        lines.push(serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("{line:?}: {e}")));
    }
    assert!(child.wait().unwrap().success());
    assert_contains(lines[0]["error"].as_str().unwrap(), &["message longer than 1048576 bytes"]);
    assert_contains(lines[1]["error"].as_str().unwrap(), &["not UTF-8"]);
    assert_eq!(lines[2]["id"], 3);
    assert_contains(
        lines[2]["error"].as_str().unwrap(),
        &["ode: stage values for s = 100", "memory budget of 1024 bytes"],
    );
    assert_eq!(lines[3]["output"], 9.0);

    let out = Command::new(env!("CARGO_BIN_EXE_adjoint-gradbench"))
        .env("ADJOINT_GRADBENCH_MAX_STEPS", "lots")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_contains(
        &String::from_utf8_lossy(&out.stderr),
        &["ADJOINT_GRADBENCH_MAX_STEPS=\"lots\" is not a positive size"],
    );
}

// ---------------------------------------------------------------------------------------------
// Fuzz corpus

#[test]
fn fuzz_corpus_replays_without_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/gradbench");
    let mut n = 0;
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let b = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| fuzz_gradbench::run(&b)).is_err() {
            panic!("{} panicked", path.display());
        }
        n += 1;
        seeds += path.file_name().unwrap().to_string_lossy().starts_with("seed-") as usize;
    }
    assert!(seeds >= 10 && n >= seeds, "{}: the corpus is missing ({n} files, {seeds} seeds)", dir.display());
}

/// The three known failures are in the corpus, and the harness's limits refuse them.
#[test]
fn fuzz_seeds_include_the_known_failures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/gradbench");
    for (name, expect) in [
        ("seed-ode-s-1e12", "ode: "),
        ("seed-llsq-n-1e12", "llsq: n = 1000000000000"),
        ("seed-particle-w-1e300", "particle.rr: "),
    ] {
        let b = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(b[0] % 4, 0, "{name} is a whole message");
        let r = handle(std::str::from_utf8(&b[1..]).unwrap(), &fuzz_gradbench::LIMITS).json;
        assert_eq!(r["success"], false, "{name}: {r}");
        assert_contains(r["error"].as_str().unwrap(), &[expect]);
    }
}
