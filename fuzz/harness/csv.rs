//! CSV: `parse_csv` under a few option sets must return `Ok` or `Err`, never panic.
//!
//! The one body of this fuzz target: `fuzz_targets/csv.rs` runs it under libFuzzer,
//! and the corpus replay test in CI includes this file (`#[path]`) and runs every kept input.

use adjoint_nn::data::{parse_csv, CsvOptions, Missing};

/// One fuzz input.
pub fn run(data: &[u8]) {
    // The first byte picks the options; the rest is the file (non-UTF-8 text is the reader's
    // problem too, but `parse_csv` takes `&str`, so invalid UTF-8 is replaced here).
    let Some((&sel, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let mut opts = CsvOptions::default();
    if sel & 1 != 0 {
        opts = opts.has_header(false);
    }
    if sel & 2 != 0 {
        opts = opts.delimiter(';');
    }
    opts = opts.missing(match (sel >> 2) & 3 {
        0 => Missing::Error,
        1 => Missing::Nan,
        _ => Missing::DropRow,
    });
    if sel & 16 != 0 {
        opts = opts.columns(&["a", "b"]);
    }
    if sel & 32 != 0 {
        opts = opts.filter_eq("a", "1");
    }
    if let Ok(t) = parse_csv(&text, "fuzz.csv", &opts) {
        let _ = t.rows();
        let _ = t.column("a");
        let _ = t.select(&["b", "a"]);
    }
}
