//! Hostile configuration files: signed run manifests and key files that are truncated, corrupted,
//! oversized or mis-typed are errors, never panics or endless reads. Also replays the `manifest`
//! fuzz corpus (`fuzz/regressions/manifest/`).

use std::path::{Path, PathBuf};

use adjoint_store::{keys, SignedManifest, Signer, StoreError};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/manifest")
}

/// A real signed manifest (a robot-demo run) from the corpus seeds, without its selector byte.
fn real_manifest() -> String {
    let b = std::fs::read(corpus_dir().join("seed-manifest-20261127T003757Z-8696dba4.json")).unwrap();
    String::from_utf8(b[1..].to_vec()).unwrap()
}

const RFC8032_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

#[test]
fn real_manifest_parses_and_its_signature_checks() {
    let m = SignedManifest::from_json(&real_manifest(), "m").unwrap();
    m.check_signature().unwrap();
}

#[test]
fn every_truncation_of_a_manifest_is_an_error() {
    let text = real_manifest();
    for cut in (0..text.len()).filter(|&c| text.is_char_boundary(c)) {
        match SignedManifest::from_json(&text[..cut], "manifest file m.json") {
            Ok(_) => panic!("truncated at {cut} but parsed"),
            Err(e) => {
                assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
                assert!(e.to_string().contains("manifest file m.json"), "{e}");
            }
        }
    }
}

#[test]
fn corrupted_manifests_are_errors() {
    let text = real_manifest();
    let signed = SignedManifest::from_json(&text, "m").unwrap();
    // Any change to a signed field breaks the signature.
    let seed = signed.manifest.seed;
    let tampered = text.replacen(&format!("\"seed\":{seed}"), &format!("\"seed\":{}", seed + 1), 1);
    assert_ne!(tampered, text);
    let e = SignedManifest::from_json(&tampered, "m").unwrap().check_signature().unwrap_err();
    assert!(matches!(e, StoreError::BadSignature { .. }), "{e}");
    // Mis-typed fields are parse errors naming the problem.
    for (from, to) in [
        ("\"format\":1", "\"format\":\"1\""),
        ("\"format\":1", "\"format\":-1"),
        ("\"format\":1", "\"format\":1e99"),
        ("\"status\":\"finished\"", "\"status\":\"won\""),
        (&format!("\"seed\":{seed}"), "\"seed\":18446744073709551616"),
        (&format!("\"seed\":{seed}"), "\"seed\":null"),
    ] {
        let bad = text.replacen(from, to, 1);
        assert_ne!(bad, text, "{from}");
        let e = SignedManifest::from_json(&bad, "manifest file m.json").unwrap_err();
        assert!(e.to_string().contains("not a valid manifest"), "{to}: {e}");
    }
    // Signer and signature that are not hex, of the wrong length, or not an Ed25519 key.
    for (signer, sig) in [
        ("zz", signed.signature.as_str()),
        (&signed.signer[..62], signed.signature.as_str()),
        ("é".repeat(32).as_str(), signed.signature.as_str()),
        (signed.signer.as_str(), &signed.signature[..126]),
        (signed.signer.as_str(), "not hex at all"),
        ("ff".repeat(32).as_str(), signed.signature.as_str()),
    ] {
        let mut m = signed.clone();
        m.signer = signer.to_string();
        m.signature = sig.to_string();
        let e = m.check_signature().unwrap_err();
        assert!(matches!(e, StoreError::BadSignature { .. }), "{e}");
        let _ = keys::short_id(&m.signer);
    }
    // Deep nesting in the free-form `config` is refused by the parser, not a stack overflow.
    let deep = text.replacen(
        "\"config\":{",
        &format!("\"config\":{{\"x\":{}0{},", "[".repeat(10_000), "]".repeat(10_000)),
        1,
    );
    assert_ne!(deep, text);
    let e = SignedManifest::from_json(&deep, "m").unwrap_err();
    assert!(e.to_string().contains("recursion limit"), "{e}");
}

#[test]
fn short_id_is_safe_on_non_hex_ids() {
    // Found while writing the `manifest` fuzz target: `&id[..16]` panicked when byte 16 fell
    // inside a multi-byte character of an id read from a hostile manifest.
    assert_eq!(keys::short_id("aéééééééééééééééééé"), "aééééééééééééééé");
    assert_eq!(keys::short_id("abc"), "abc");
    assert_eq!(keys::short_id(RFC8032_PUBLIC), &RFC8032_PUBLIC[..16]);
}

#[test]
fn key_file_texts() {
    let p = Path::new("k");
    let s = Signer::from_key_file_text(&format!("adjoint-ed25519-secret-v1 {RFC8032_SEED}\n"), p).unwrap();
    assert_eq!(s.key_id(), RFC8032_PUBLIC);
    let pubtext = format!("adjoint-ed25519-public-v1 {RFC8032_PUBLIC}\n");
    assert_eq!(keys::parse_public_key_file(&pubtext, p).unwrap(), RFC8032_PUBLIC);
    for bad in [
        String::new(),
        "adjoint-ed25519-secret-v1".into(),
        format!("adjoint-ed25519-secret-v1 {}", &RFC8032_SEED[..63]),
        format!("adjoint-ed25519-secret-v1 {RFC8032_SEED}00"),
        format!("adjoint-ed25519-secret-v1 {}", "é".repeat(32)),
        format!("adjoint-ed25519-public-v1 {RFC8032_SEED}"),
        format!("ssh-ed25519 {RFC8032_SEED}"),
    ] {
        let e = Signer::from_key_file_text(&bad, p).unwrap_err();
        assert!(matches!(&e, StoreError::KeyFile { path, .. } if path == p), "{bad:?}: {e}");
    }
    for bad in [
        String::new(),
        format!("adjoint-ed25519-public-v1 {}", &RFC8032_PUBLIC[..63]),
        format!("adjoint-ed25519-public-v1 {}", "é".repeat(32)),
        format!("adjoint-ed25519-secret-v1 {RFC8032_SEED}"),
    ] {
        let e = keys::parse_public_key_file(&bad, p).unwrap_err();
        assert!(matches!(&e, StoreError::KeyFile { path, .. } if path == p), "{bad:?}: {e}");
    }
}

#[test]
fn oversized_and_non_text_key_files_are_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("long.pub");
    std::fs::write(&long, format!("adjoint-ed25519-public-v1 {RFC8032_PUBLIC}\n{}", " ".repeat(10_000)))
        .unwrap();
    let e = keys::read_public_key(long.to_str().unwrap()).unwrap_err();
    assert!(e.to_string().contains("longer than 4096 bytes"), "{e}");
    let binary = dir.path().join("bin.pub");
    std::fs::write(&binary, b"adjoint-ed25519-public-v1 \xff\xfe").unwrap();
    let e = keys::read_public_key(binary.to_str().unwrap()).unwrap_err();
    assert!(e.to_string().contains("not UTF-8"), "{e}");
    // An endless file: read at most MAX_KEY_FILE_BYTES + 1 bytes of it.
    if Path::new("/dev/zero").exists() {
        let e = keys::read_public_key("/dev/zero").unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
    }
}

/// The `manifest` fuzz target's body, shared with `fuzz/fuzz_targets/manifest.rs`.
#[path = "../../../fuzz/harness/manifest.rs"]
mod fuzz_manifest;

#[test]
fn fuzz_corpus_replays_without_panics() {
    let dir = corpus_dir();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let b = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| fuzz_manifest::run(&b)).is_err() {
            panic!("{} panicked", path.display());
        }
        n += 1;
    }
    assert!(n >= 6, "{}: the corpus is missing", dir.display());
}
