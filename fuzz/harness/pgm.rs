//! Binary PGM: `decode_pgm` must return `Ok` or `Err`, never panic; what it accepts must
//! re-encode to an image that decodes to the same value.
//!
//! The one body of this fuzz target: `fuzz_targets/pgm.rs` runs it under libFuzzer,
//! and the corpus replay test in CI includes this file (`#[path]`) and runs every kept input.

use adjoint_nn::data::pgm::{decode_pgm, encode_pgm, PgmLimits};

/// One fuzz input.
pub fn run(data: &[u8]) {
    let limits = PgmLimits { max_pixels: 1 << 20, max_bytes: 1 << 24 };
    if let Ok(img) = decode_pgm(data, "fuzz.pgm", &limits) {
        let again =
            decode_pgm(&encode_pgm(&img), "re-encoded.pgm", &limits).expect("re-encoded image decodes");
        assert_eq!(again, img);
        let _ = img.to_tensor();
    }
}
