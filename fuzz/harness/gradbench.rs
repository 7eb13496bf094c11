//! GradBench protocol messages: `adjoint_gradbench::handle` must answer every line with one JSON
//! object, never panic or abort, refuse what does not fit its limits with a one-line
//! `"success": false` error, and finish each message quickly (small [`LIMITS`]).
//!
//! The first byte picks how the rest becomes a message (mod 4):
//!
//! - 0: the rest is the whole message line, as sent on stdin (any `kind`, any bytes);
//! - 1: bytes 1 and 2 pick an eval and function (from the tool's [`MODULES`] and [`FUNCTIONS`]),
//!   the rest is spliced in as the `input` JSON text, unparsed (seeds are plain inputs);
//! - 2, 3: bytes 1 and 2 pick the eval and function, the rest drives a generator that builds
//!   an input from the eval's own field names and hostile values: huge and negative sizes,
//!   `2^32`, `2^64 - 1`, `±1e300`, empty, ragged and mismatched arrays, wrong types, nesting,
//!   `min_runs` / `min_seconds`. (JSON has no NaN or infinity: a non-finite `f64` becomes
//!   `null`, and `1e300`-sized values make the evals produce them.)
//!
//! The one body of this fuzz target: `fuzz_targets/gradbench.rs` runs it under libFuzzer, and
//! the corpus replay test in CI (`crates/adjoint-gradbench/tests/hostile.rs`) includes this file
//! (`#[path]`) and runs every kept input.

use adjoint_gradbench::{handle, Limits, MODULES};
use serde_json::{json, Map, Value};

/// Small limits, so that no single message runs long or allocates much (under
/// AddressSanitizer, `-timeout=5 -malloc_limit_mb=1024`).
pub const LIMITS: Limits = Limits {
    memory_bytes: 16 << 20,
    max_steps: 200_000,
    max_iterations: 2_000,
    max_runs: 2,
    max_seconds: 0.001,
};

/// Each eval's functions (and one it does not have).
pub const FUNCTIONS: &[(&str, &[&str])] = &[
    ("hello", &["square", "double"]),
    ("llsq", &["primal", "gradient"]),
    ("lse", &["primal", "gradient"]),
    ("det", &["primal", "gradient"]),
    ("ode", &["primal", "gradient"]),
    ("gmm", &["objective", "jacobian"]),
    ("kmeans", &["cost", "dir"]),
    ("lstm", &["objective", "jacobian"]),
    ("ba", &["objective", "jacobian"]),
    ("ht", &["objective", "jacobian"]),
    ("particle", &["ff", "fr", "rf", "rr"]),
    ("saddle", &["ff", "fr", "rf", "rr"]),
];

/// Each eval's input fields (`ht`'s nested ones too), for the generator's object keys.
fn fields(module: &str) -> &'static [&'static str] {
    match module {
        "llsq" => &["x", "n"],
        "lse" => &["x"],
        "det" => &["A", "ell"],
        "ode" => &["x", "s"],
        "gmm" => &["d", "k", "n", "x", "m", "gamma", "alpha", "mu", "q", "l"],
        "kmeans" => &["points", "centroids"],
        "lstm" => &["main_params", "extra_params", "state", "sequence"],
        "ba" => &["n", "m", "p", "cam", "x", "w", "feat"],
        "ht" => &[
            "theta",
            "data",
            "us",
            "model",
            "correspondences",
            "points",
            "bone_names",
            "parents",
            "base_relatives",
            "inverse_base_absolutes",
            "base_positions",
            "weights",
            "triangles",
            "is_mirrored",
        ],
        "particle" => &["w"],
        "saddle" => &["start"],
        _ => &[],
    }
}

/// Numbers that break size arithmetic and numerics.
const HOSTILE: &[f64] = &[
    0.0,
    1.0,
    -1.0,
    2.0,
    3.0,
    0.5,
    -0.5,
    1e-300,
    1e300,
    -1e300,
    1e12,
    4294967296.0,
    4294967295.0,
    65536.0,
    18446744073709551615.0,
    -9223372036854775808.0,
    f64::MAX,
    f64::MIN_POSITIVE,
    1e-5,
    10.0,
    100.0,
    1000.0,
];

/// The fuzz input, read a byte at a time (zeros once it runs out).
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
}

fn number(b: &mut Bytes) -> Value {
    match b.next() % 4 {
        0 => json!(HOSTILE[b.next() as usize % HOSTILE.len()]),
        1 => json!(b.next()),
        2 => json!(-(b.next() as i64)),
        _ => {
            let bits = u64::from_le_bytes(std::array::from_fn(|_| b.next()));
            let v = f64::from_bits(bits);
            if v.is_finite() {
                json!(v)
            } else {
                Value::Null
            }
        }
    }
}

fn numbers(b: &mut Bytes, len: usize) -> Value {
    let fill = number(b);
    let varied = b.next().is_multiple_of(2);
    Value::Array((0..len).map(|_| if varied && !b.done() { number(b) } else { fill.clone() }).collect())
}

fn value(b: &mut Bytes, keys: &[&str], depth: usize) -> Value {
    if depth > 24 || b.done() {
        return number(b);
    }
    match b.next() % 10 {
        0 | 1 => number(b),
        2 => {
            let len = (b.next() % 16) as usize;
            numbers(b, len)
        }
        // A long run of one number (a data array of a declared size, or the wrong size).
        3 => {
            let len = b.next() as usize * 8;
            numbers(b, len)
        }
        4 => {
            let (rows, cols) = ((b.next() % 12) as usize, (b.next() % 12) as usize);
            let ragged = b.next().is_multiple_of(4);
            Value::Array(
                (0..rows).map(|r| numbers(b, if ragged && r % 2 == 1 { cols + 1 } else { cols })).collect(),
            )
        }
        5 => Value::Array((0..b.next() % 6).map(|_| value(b, keys, depth + 1)).collect()),
        6 => object(b, keys, depth + 1),
        7 => json!(["x", "", "bone"][b.next() as usize % 3]),
        8 => json!(b.next().is_multiple_of(2)),
        _ => Value::Null,
    }
}

fn object(b: &mut Bytes, keys: &[&str], depth: usize) -> Value {
    let mut m = Map::new();
    for _ in 0..b.next() % 8 {
        let k = match keys.get(b.next() as usize % (keys.len() + 1)) {
            Some(k) => k.to_string(),
            None => "min_runs".into(),
        };
        m.insert(k, value(b, keys, depth));
    }
    Value::Object(m)
}

/// An input for `module`: each of its fields present or not, plus `min_runs`/`min_seconds`.
fn input(b: &mut Bytes, module: &str) -> Value {
    let keys = fields(module);
    if keys.is_empty() || b.next().is_multiple_of(16) {
        return value(b, keys, 0);
    }
    let mut m = Map::new();
    for k in keys {
        if !b.next().is_multiple_of(8) {
            m.insert(k.to_string(), value(b, keys, 1));
        }
    }
    match b.next() % 8 {
        0 => drop(m.insert("min_runs".into(), number(b))),
        1 => drop(m.insert("min_seconds".into(), number(b))),
        _ => {}
    }
    Value::Object(m)
}

/// One fuzz input.
pub fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let line = if sel % 4 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let mut b = Bytes { data: rest, pos: 0 };
        let module = MODULES[b.next() as usize % MODULES.len()];
        let functions = FUNCTIONS.iter().find(|(m, _)| *m == module).map_or(&[][..], |(_, f)| *f);
        let function = functions.get(b.next() as usize % (functions.len() + 1)).copied().unwrap_or("nope");
        let head = json!({"id": sel, "kind": "evaluate", "module": module, "function": function});
        if sel % 4 == 1 {
            let text = String::from_utf8_lossy(&rest[b.pos.min(rest.len())..]).into_owned();
            let head = head.to_string();
            format!("{},\"input\":{text}}}", &head[..head.len() - 1])
        } else {
            let mut msg = head;
            msg["input"] = input(&mut b, module);
            msg.to_string()
        }
    };
    let r = handle(&line, &LIMITS);
    assert!(!r.panicked, "an eval panicked on {line}: {}", r.json);
    let obj = r.json.as_object().unwrap_or_else(|| panic!("response is not an object: {}", r.json));
    assert!(obj.contains_key("id"), "response without id: {}", r.json);
    if let Some(success) = obj.get("success") {
        let error = obj.get("error").and_then(Value::as_str);
        match success.as_bool() {
            Some(true) => assert!(error.is_none(), "success with an error: {}", r.json),
            Some(false) => {
                let e = error.unwrap_or_else(|| panic!("failure without an error string: {}", r.json));
                assert!(!e.is_empty() && !e.contains('\n'), "error is not one line: {e:?}");
            }
            None => panic!("success is not a bool: {}", r.json),
        }
    }
    // The binary writes the response as one line.
    assert!(!r.json.to_string().contains('\n'));
}
