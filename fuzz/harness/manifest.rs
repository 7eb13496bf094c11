//! Registry configuration files: signed run manifests (`SignedManifest::from_json` + signature
//! check) and key files (`Signer::from_key_file_text`, `keys::parse_public_key_file`). Must
//! return `Ok` or `Err`, never panic.
//!
//! The first byte picks (mod 2): 0 = manifest, 1 = key files. The rest is the file (invalid
//! UTF-8 is replaced: the callers read files with `read_to_string`, which rejects it).
//! An accepted manifest must also re-serialise to JSON that parses back to the same JSON and the
//! same signing bytes.
//!
//! The one body of this fuzz target: `fuzz_targets/manifest.rs` runs it under libFuzzer,
//! and the corpus replay test in CI includes this file (`#[path]`) and runs every kept input.

use std::path::Path;

use adjoint_store::{keys, SignedManifest, Signer};

/// One fuzz input.
pub fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    if sel % 2 == 0 {
        if let Ok(m) = SignedManifest::from_json(&text, "fuzz") {
            let _ = m.check_signature();
            let _ = keys::short_id(&m.signer);
            let json = m.to_json_pretty();
            let back = SignedManifest::from_json(&json, "re-serialised").expect("a written manifest parses");
            assert_eq!(back.to_json_pretty(), json);
            assert_eq!(back.manifest.signing_bytes(), m.manifest.signing_bytes());
        }
    } else {
        let path = Path::new("fuzz.key");
        if let Ok(s) = Signer::from_key_file_text(&text, path) {
            let _ = keys::short_id(&s.key_id());
        }
        if let Ok(id) = keys::parse_public_key_file(&text, path) {
            let _ = keys::verify_hex(&id, b"m", &"0".repeat(128));
        }
    }
}
