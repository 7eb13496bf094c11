//! Binary PGM: `decode_pgm` must return `Ok` or `Err`, never panic; what it accepts must
//! re-encode to an image that decodes to the same value.
#![no_main]

use adjoint_nn::data::pgm::{decode_pgm, encode_pgm, PgmLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = PgmLimits { max_pixels: 1 << 20, max_bytes: 1 << 24 };
    if let Ok(img) = decode_pgm(data, "fuzz.pgm", &limits) {
        let again =
            decode_pgm(&encode_pgm(&img), "re-encoded.pgm", &limits).expect("re-encoded image decodes");
        assert_eq!(again, img);
        let _ = img.to_tensor();
    }
});
