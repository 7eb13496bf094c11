//! ADBench inputs: every reader in `adjoint_gradbench::adbench` must return `Ok` or `Err`, never
//! panic, and never allocate more than the input's size justifies (`-malloc_limit_mb`).
//!
//! The first byte picks the format (mod 6): GMM, GMM in replicate-point mode, BA, LSTM, hand
//! input (bit 3: complicated), hand model + input (the rest split at NUL bytes into
//! `bones.txt`, `vertices.txt`, `triangles.txt` and the input, then checked against each other).
//!
//! The one body of this fuzz target: `fuzz_targets/adbench.rs` runs it under libFuzzer,
//! and the corpus replay test in CI includes this file (`#[path]`) and runs every kept input.

use adjoint_gradbench::adbench::*;

/// One fuzz input.
pub fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    match sel % 6 {
        0 => drop(parse_gmm(rest, "fuzz", false)),
        1 => drop(parse_gmm(rest, "fuzz", true)),
        2 => drop(parse_ba(rest, "fuzz")),
        3 => drop(parse_lstm(rest, "fuzz")),
        4 => drop(parse_hand_input(rest, "fuzz", sel & 8 != 0)),
        _ => {
            let mut parts = rest.splitn(4, |&b| b == 0);
            let (b, v, t) =
                (parts.next().unwrap_or(b""), parts.next().unwrap_or(b""), parts.next().unwrap_or(b""));
            let i = parts.next().unwrap_or(b"");
            if let (Ok(model), Ok(input)) =
                (parse_hand_model(b, v, t), parse_hand_input(i, "fuzz", sel & 8 != 0))
            {
                let _ = check_hand(&model, &input, "fuzz");
            }
        }
    }
}
