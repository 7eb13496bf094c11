//! Hostile inputs: every reader (safetensors checkpoints, CSV, binary PGM, the trainer's JSONL
//! log) must answer truncated, corrupted, oversized and mis-typed input with an `Err` that says
//! what is wrong — never a panic, abort, hang or unbounded allocation. Each input is fed under
//! `catch_unwind`, so a panic fails the test naming the exact input (as an escaped byte string).
//!
//! The last test replays the fuzzing corpus kept in `fuzz/regressions/` (see `fuzz/README.md`).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use adjoint_core::Tensor;
use adjoint_nn::checkpoint::{self, LoadOptions};
use adjoint_nn::data::pgm::{decode_pgm, encode_pgm, read_pgm, read_pgm_with, write_pgm, Pgm, PgmLimits};
use adjoint_nn::data::{parse_csv, read_csv, CsvOptions};
use adjoint_nn::train::History;
use adjoint_tensor::random::{uniform, Key};
use adjoint_tensor::DType;

fn escaped(bytes: &[u8]) -> String {
    bytes.iter().flat_map(|&b| std::ascii::escape_default(b)).map(char::from).collect()
}

/// Run `f` on `input`; a panic fails the test and prints the input.
fn no_panic<R>(what: &str, input: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    match catch_unwind(AssertUnwindSafe(|| f(input))) {
        Ok(r) => r,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what} panicked ({msg}) on input b\"{}\"", escaped(input))
        }
    }
}

/// Deterministic pseudo-random bytes (adjoint's Threefry PRNG).
fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    uniform(&Key::new(seed), &[n], 0.0, 1.0, DType::F64)
        .to_vec::<f64>()
        .into_iter()
        .map(|u| (u * 256.0) as u8)
        .collect()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adjoint-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

// ------------------------------------------------------------------ checkpoints (safetensors)

type Model = (Tensor, Tensor, Tensor);

fn model() -> Model {
    (
        Tensor::from_vec((0..6).map(|i| i as f32).collect::<Vec<_>>(), &[2, 3]),
        Tensor::from_vec(vec![1i64, -2, 3, 4], &[4]),
        Tensor::scalar(0.5f64),
    )
}

fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn read_checkpoint(bytes: &[u8]) -> (Result<usize, String>, Result<(), String>) {
    let all = checkpoint::tensors_from_bytes(bytes).map(|m| m.len()).map_err(|e| e.to_string());
    let opts = LoadOptions { allow_missing: true, allow_unexpected: true };
    let into = checkpoint::from_bytes_with(Path::new("model.safetensors"), bytes, &model(), opts)
        .map(|_| ())
        .map_err(|e| e.to_string());
    (all, into)
}

#[test]
fn every_truncation_of_a_checkpoint_is_an_error() {
    let bytes = checkpoint::to_bytes(&model(), &BTreeMap::from([("k".into(), "v".into())])).unwrap();
    assert_eq!(read_checkpoint(&bytes).0, Ok(3));
    for len in 0..bytes.len() {
        let (all, into) = no_panic("checkpoint reader", &bytes[..len], read_checkpoint);
        let e = all.expect_err(&format!("truncated to {len} bytes but accepted"));
        assert!(e.starts_with("checkpoint <memory>: "), "{e}");
        assert!(into.is_err());
    }
    // Through a file: the message names the file.
    let path = tmp("truncated.safetensors");
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let e = checkpoint::load(&path, &model()).unwrap_err().to_string();
    assert!(e.contains("truncated.safetensors") && e.contains("truncated"), "{e}");
    let e = checkpoint::read_tensors(&path).unwrap_err().to_string();
    assert!(e.contains("truncated.safetensors"), "{e}");
    assert!(checkpoint::read_metadata(tmp("no-such-file.safetensors")).is_err());
}

#[test]
fn corrupted_checkpoints_never_panic() {
    let bytes = checkpoint::to_bytes(&model(), &BTreeMap::new()).unwrap();
    for seed in 0..1500u64 {
        let r = random_bytes(seed, 4);
        let mut b = bytes.clone();
        // Flip one to three bytes anywhere, mostly in the header.
        for k in 0..1 + (r[0] % 3) as usize {
            let at = (u64::from(r[1 + k]) * 7919 + seed * 31) as usize % b.len();
            b[at] ^= r[(k + 2) % 4].max(1);
        }
        let _ = no_panic("checkpoint reader", &b, read_checkpoint);
    }
    for seed in 0..300u64 {
        let b = random_bytes(10_000 + seed, 1 + (seed as usize * 37) % 600);
        let _ = no_panic("checkpoint reader", &b, read_checkpoint);
    }
}

#[test]
fn hostile_checkpoint_headers_are_clear_errors() {
    let f32x2 = [0u8; 8];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("header length u64::MAX", [u64::MAX.to_le_bytes().as_slice(), b"{}"].concat(), "header length"),
        (
            "header length over the file",
            [200_000_000u64.to_le_bytes().as_slice(), b"{}"].concat(),
            "truncated",
        ),
        ("header not JSON", safetensors("{\"a\": ", &[]), "invalid JSON"),
        ("header a JSON array", safetensors("[1, 2]", &[]), "not a JSON object"),
        ("no offsets", safetensors(r#"{"a":{"dtype":"F32","shape":[2]}}"#, &f32x2), "data_offsets"),
        (
            "negative offset",
            safetensors(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[-1,8]}}"#, &f32x2),
            "data_offsets",
        ),
        (
            "offsets reversed",
            safetensors(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, &f32x2),
            "offsets",
        ),
        (
            "offsets past the end",
            safetensors(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,999999999999]}}"#, &f32x2),
            "outside",
        ),
        (
            "offsets disagree with shape",
            safetensors(r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, &f32x2),
            "corrupt",
        ),
        (
            "unknown dtype",
            safetensors(r#"{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#, &f32x2),
            "corrupt",
        ),
        (
            "shape overflows usize",
            safetensors(
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#,
                &f32x2,
            ),
            "corrupt",
        ),
        (
            "negative dim",
            safetensors(r#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, &f32x2),
            "corrupt",
        ),
        (
            "bool byte 7",
            safetensors(r#"{"a":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}"#, &[1, 7]),
            "invalid bool byte 7",
        ),
        (
            "unsupported dtype",
            safetensors(r#"{"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}}"#, &[0, 0]),
            "unsupported dtype",
        ),
        ("metadata not strings", safetensors(r#"{"__metadata__":{"k":[1]}}"#, &[]), "corrupt"),
    ];
    for (what, bytes, want) in &cases {
        let (all, _) = no_panic(what, bytes, read_checkpoint);
        let e = all.expect_err(what);
        assert!(e.contains(want), "{what}: expected the error to mention `{want}`, got: {e}");
    }
}

#[test]
fn empty_dimension_with_huge_siblings_is_handled() {
    // Zero elements, so no data — but the other dimensions are absurd. The strides of such a
    // shape overflow usize; the reader must not panic on it.
    let bytes =
        safetensors(r#"{"a":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}}"#, &[]);
    let _ = no_panic("checkpoint reader", &bytes, read_checkpoint);
}

#[test]
fn mistyped_and_misshapen_checkpoints_are_reported_by_name() {
    let path = tmp("typed.safetensors");
    let saved =
        (Tensor::zeros(&[2, 3]).to_f64(), Tensor::from_vec(vec![1i64, 2, 3], &[3]), Tensor::scalar(0.5f64));
    checkpoint::save(&path, &saved, &BTreeMap::new()).unwrap();
    let e = checkpoint::load(&path, &model()).unwrap_err().to_string();
    assert!(e.contains("wrong dtype 1: 0 (file float64, model float32)"), "{e}");
    assert!(e.contains("wrong shape 1: 1 (file [3], model [4])"), "{e}");
    let e = checkpoint::load(&path, &(Tensor::zeros(&[2, 3]).to_f64(),)).unwrap_err().to_string();
    assert!(e.contains("unexpected 2: 1, 2"), "{e}");
}

// ------------------------------------------------------------------ CSV

fn read_csv_str(bytes: &[u8]) -> Result<usize, String> {
    let text = String::from_utf8_lossy(bytes);
    parse_csv(&text, "hostile.csv", &CsvOptions::default()).map(|t| t.rows()).map_err(|e| e.to_string())
}

#[test]
fn broken_csv_files_are_clear_errors() {
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty", b"", "empty file"),
        ("ragged row", b"a,b\n1,2\n3\n", "hostile.csv:3:"),
        ("unterminated quote", b"a,b\n1,\"2\n", "unterminated quoted field"),
        ("not a number", b"a,b\n1,2\n3,x\n", "hostile.csv:3:2: cannot parse 'x'"),
        ("missing value", b"a,b\n1,\n", "hostile.csv:2:2"),
        ("binary junk", b"\x00\x01\x02,\xff\n\x03,\x04\n", "hostile.csv:2:1"),
        ("huge exponent ok as inf?", b"a\n1e999999\n", ""),
    ];
    for (what, bytes, want) in cases {
        let r = no_panic(what, bytes, read_csv_str);
        if want.is_empty() {
            continue; // only "no panic" is required
        }
        let e = r.expect_err(what);
        assert!(e.contains(want), "{what}: expected `{want}` in: {e}");
    }
    // Invalid UTF-8 straight from a file: a parse error naming line and field.
    let path = tmp("bad-utf8.csv");
    std::fs::write(&path, b"a,b\n1,2\n3,\xff\xfe\n").unwrap();
    let e = read_csv(&path, &CsvOptions::default()).unwrap_err().to_string();
    assert!(e.contains("bad-utf8.csv:3:2: invalid UTF-8"), "{e}");
    // Oversized: refused by size before it is read.
    let path = tmp("big.csv");
    std::fs::write(&path, "a\n1\n".repeat(1000)).unwrap();
    let opts = CsvOptions { max_bytes: 100, ..CsvOptions::default() };
    let e = read_csv(&path, &opts).unwrap_err().to_string();
    assert!(e.contains("over the limit of 100"), "{e}");
    assert!(read_csv(tmp("missing.csv"), &CsvOptions::default()).is_err());
}

#[test]
fn random_csv_never_panics() {
    let alphabet = b"ab,;\"\n\r 0123456789.-+eE#NA\t";
    for seed in 0..1500u64 {
        let raw = random_bytes(20_000 + seed, 1 + (seed as usize * 13) % 200);
        let text: Vec<u8> = raw.iter().map(|&b| alphabet[b as usize % alphabet.len()]).collect();
        let text = [b"a,b\n".as_slice(), &text].concat();
        let _ = no_panic("parse_csv", &text, read_csv_str);
        let _ = no_panic("parse_csv", &raw, read_csv_str);
    }
}

// ------------------------------------------------------------------ PGM

fn decode(bytes: &[u8]) -> Result<Pgm, String> {
    let limits = PgmLimits { max_pixels: 1 << 20, max_bytes: 1 << 24 };
    decode_pgm(bytes, "hostile.pgm", &limits).map_err(|e| e.to_string())
}

#[test]
fn pgm_round_trips_8_and_16_bit() {
    for maxval in [1u16, 255, 256, 1023, 65535] {
        let pixels: Vec<u16> = (0..35u32).map(|i| ((i * 7919) % (u32::from(maxval) + 1)) as u16).collect();
        let img = Pgm { width: 7, height: 5, maxval, pixels };
        let bytes = encode_pgm(&img);
        let header = format!("P5\n7 5\n{maxval}\n");
        assert_eq!(&bytes[..header.len()], header.as_bytes());
        assert_eq!(bytes.len(), header.len() + 35 * if maxval > 255 { 2 } else { 1 });
        assert_eq!(decode(&bytes).unwrap(), img);
        let path = tmp(&format!("img{maxval}.pgm"));
        write_pgm(&path, &img).unwrap();
        assert_eq!(read_pgm(&path).unwrap(), img);
    }
    // A hand-written 16-bit file: big-endian samples, comments in the header.
    let bytes = b"P5 # comment\n2 # w\n1\n# maxval next\n1000\n\x03\xe8\x01\x00";
    let img = decode(bytes).unwrap();
    assert_eq!((img.width, img.height, img.maxval, img.pixels.clone()), (2, 1, 1000, vec![1000, 256]));
    let t = img.to_tensor().to_vec::<f32>();
    assert_eq!(t, vec![1.0, 0.256]);
}

#[test]
fn broken_pgm_files_are_clear_errors() {
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty", b"", "expected magic `P5`"),
        ("ascii pgm", b"P2\n2 2\n255\n1 2 3 4\n", "ASCII PGM (P2)"),
        ("png", b"\x89PNG\r\n\x1a\n", "expected magic `P5`"),
        ("no width", b"P5\n", "truncated: the header ends before the width"),
        ("letters for width", b"P5 abc 2 255\n", "expected the width"),
        ("no space after magic digits", b"P5 2x2 255\n", "unexpected byte 0x78 after the width"),
        ("width 0", b"P5 0 2 255\n", "empty image: 0x2"),
        ("maxval 0", b"P5 2 2 0\n\0\0\0\0", "maxval 0 outside 1..=65535"),
        ("maxval 70000", b"P5 2 2 70000\n", "maxval 70000 outside"),
        ("ten digits", b"P5 1234567890 1 255\n", "more than 9 digits"),
        ("overflowing pixel count", b"P5 999999999 999999999 255\n", "over the limit"),
        ("no whitespace after maxval", b"P5 1 1 255", "truncated: the header ends after the maxval"),
        ("comment to EOF", b"P5 1 1 # no maxval", "before the maxval"),
        (
            "truncated 8-bit raster",
            b"P5 3 2 255\n\x01\x02\x03",
            "truncated raster: 3x2 8-bit image needs 6 bytes, the file has 3",
        ),
        ("truncated 16-bit raster", b"P5 2 1 300\n\x00\x01\x00", "needs 4 bytes, the file has 3"),
        ("sample above maxval", b"P5 2 1 100\n\x05\xff", "sample 255 at pixel 1 is above maxval 100"),
        (
            "16-bit sample above maxval",
            b"P5 1 1 1000\n\xff\xff",
            "sample 65535 at pixel 0 is above maxval 1000",
        ),
    ];
    for (what, bytes, want) in cases {
        let e = no_panic(what, bytes, decode).expect_err(what);
        assert!(e.starts_with("hostile.pgm: byte "), "{what}: {e}");
        assert!(e.contains(want), "{what}: expected `{want}` in: {e}");
    }
    // Every truncation of a valid file is an error.
    let bytes =
        encode_pgm(&Pgm { width: 4, height: 3, maxval: 4095, pixels: (0..12).map(|i| i * 300).collect() });
    for len in 0..bytes.len() {
        assert!(no_panic("decode_pgm", &bytes[..len], decode).is_err(), "accepted a truncation to {len}");
    }
    // Size limits before any allocation or read.
    let path = tmp("huge.pgm");
    std::fs::write(&path, b"P5 16 16 255\n").unwrap();
    let limits = PgmLimits { max_pixels: 100, max_bytes: 1 << 20 };
    let e = read_pgm_with(&path, &limits).unwrap_err().to_string();
    assert!(e.contains("16x16 pixels is over the limit of 100"), "{e}");
    let e = read_pgm_with(&path, &PgmLimits { max_pixels: 1000, max_bytes: 4 }).unwrap_err().to_string();
    assert!(e.contains("over the limit of 4 (PgmLimits::max_bytes)"), "{e}");
    assert!(read_pgm(tmp("no-such.pgm")).is_err());
    // Writing checks the image.
    let bad = Pgm { width: 2, height: 2, maxval: 10, pixels: vec![0, 11, 0, 0] };
    assert!(write_pgm(tmp("bad.pgm"), &bad).unwrap_err().to_string().contains("sample 11 above maxval 10"));
    assert!(Pgm::from_tensor(&Tensor::from_vec(vec![f32::NAN], &[1, 1]), 255).is_err());
    assert!(Pgm::from_tensor(&Tensor::zeros(&[3]), 255).is_err());
}

#[test]
fn random_pgm_never_panics() {
    for seed in 0..2000u64 {
        let raw = random_bytes(30_000 + seed, 1 + (seed as usize * 11) % 64);
        let with_header =
            [format!("P5 {} {} {}\n", seed % 5, seed % 3, seed % 300).as_bytes(), &raw].concat();
        let _ = no_panic("decode_pgm", &raw, decode);
        if let Ok(img) = no_panic("decode_pgm", &with_header, decode) {
            assert_eq!(decode(&encode_pgm(&img)).unwrap(), img);
        }
    }
}

// ------------------------------------------------------------------ the trainer's JSONL log

#[test]
fn broken_training_logs_are_clear_errors() {
    let cases: &[(&str, &[u8], &str)] = &[
        ("not JSON", b"{\"kind\":\"step\"\n", ":1:"),
        ("not an object", b"[1,2]\n", "expected a JSON object"),
        ("invalid UTF-8", b"{\"a\":\"\xff\"}\n", ""),
        ("deeply nested", &[b'['; 100_000], ""),
    ];
    for (i, (what, bytes, want)) in cases.iter().enumerate() {
        let path = tmp(&format!("log{i}.jsonl"));
        std::fs::write(&path, bytes).unwrap();
        let r = no_panic(what, bytes, |_| History::from_jsonl(&path).map(|_| ()).map_err(|e| e.to_string()));
        let e = r.expect_err(what);
        assert!(e.contains(want), "{what}: expected `{want}` in: {e}");
    }
}

// ------------------------------------------------------------------ fuzz corpus replay

// The fuzz targets' bodies, shared with `fuzz/fuzz_targets/` so the replay runs exactly what was
// fuzzed.
#[path = "../../../fuzz/harness/checkpoint.rs"]
mod fuzz_checkpoint;
#[path = "../../../fuzz/harness/csv.rs"]
mod fuzz_csv;
#[path = "../../../fuzz/harness/pgm.rs"]
mod fuzz_pgm;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions").join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{}: the corpus is missing", dir.display());
    files
}

#[test]
fn fuzz_corpus_replays_without_panics() {
    type Body = fn(&[u8]);
    let targets: [(&str, Body); 3] =
        [("checkpoint", fuzz_checkpoint::run), ("csv", fuzz_csv::run), ("pgm", fuzz_pgm::run)];
    for (target, run) in targets {
        for (path, b) in corpus(target) {
            no_panic(&path.display().to_string(), &b, run);
        }
    }
}
