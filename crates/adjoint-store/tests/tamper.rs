//! Tampering and corruption: every case must be refused with an error naming the record or file.

mod common;

use adjoint_store::{Registry, Role, SignedManifest, Signer, StoreError};
use common::{env, metrics, sha, simple_run};
use rusqlite::Connection;

fn db(e: &common::Env) -> Connection {
    Connection::open(e.dir.join("registry.db")).unwrap()
}

#[test]
fn flipped_byte_in_a_blob_is_refused() {
    let e = env();
    let m = simple_run(&e, "r", 0.1, b"precious weights", 0.5);
    let reg = e.reg();
    reg.promote(&m.run_id, "model@prod", &e.owner).unwrap();
    let path = reg.blob_path(&sha(b"precious weights"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    for spec in ["model@prod", &m.run_id, &sha(b"precious weights")] {
        let err = reg.load_checkpoint(spec).unwrap_err();
        match &err {
            StoreError::BlobMismatch { hash, path: p, actual } => {
                assert_eq!(
                    (hash.as_str(), p, actual.as_str()),
                    (sha(b"precious weights").as_str(), &path, sha(&bytes).as_str())
                );
            }
            other => panic!("{spec}: expected BlobMismatch, got {other}"),
        }
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }
    let rep = reg.verify().unwrap();
    assert_eq!(rep.problems.len(), 1, "{:?}", rep.problems);
    assert!(rep.problems[0].contains("is corrupted"), "{:?}", rep.problems);
    // A missing blob is named too.
    std::fs::remove_file(&path).unwrap();
    let err = reg.load_checkpoint("model@prod").unwrap_err();
    assert!(err.to_string().starts_with(&format!("blob {} is missing", sha(b"precious weights"))), "{err}");
    // Re-adding the good content repairs the store.
    std::fs::write(e.path("good"), b"precious weights").unwrap();
    reg.put_blob_file(&e.path("good")).unwrap();
    assert!(reg.verify().unwrap().ok());
}

#[test]
fn edited_manifest_file_is_refused() {
    let e = env();
    let m = simple_run(&e, "r", 0.1, b"w", 0.5);
    let reg = e.reg();
    let path = reg.manifest_path(&m.run_id);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"loss\": 0.5"), "{text}");
    std::fs::write(&path, text.replace("\"loss\": 0.5", "\"loss\": 0.05")).unwrap();
    let err = reg.load_manifest(&m.run_id).unwrap_err();
    assert!(matches!(err, StoreError::BadSignature { .. }), "{err}");
    assert!(err.to_string().contains(&format!("manifest file {}", path.display())), "{err}");
    // An edit that keeps the file self-consistent (re-signed by the same trusted key) but
    // disagrees with the database is also caught.
    let mut forged: SignedManifest = serde_json::from_str(&text).unwrap();
    forged.manifest.final_metrics.insert("loss".into(), 0.05);
    let forged = SignedManifest::sign(forged.manifest, &e.owner);
    std::fs::write(&path, forged.to_json_pretty()).unwrap();
    let err = reg.load_manifest(&m.run_id).unwrap_err();
    assert!(err.to_string().contains("differs from the signed manifest in the database"), "{err}");
    std::fs::write(&path, "{not json").unwrap();
    let err = reg.load_manifest(&m.run_id).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("corrupt record manifest file {}", path.display())),
        "{err}"
    );
    assert!(!reg.verify().unwrap().ok());
}

#[test]
fn edited_database_rows_are_refused() {
    let e = env();
    let a = simple_run(&e, "a", 0.1, b"wa", 0.5);
    let b = simple_run(&e, "b", 0.1, b"wb", 0.7);
    let reg = e.reg();
    reg.promote(&a.run_id, "m@prod", &e.owner).unwrap();
    let c = db(&e);
    // Manifest row: change the seed.
    let row: String =
        c.query_row("SELECT manifest FROM runs WHERE run_id=?1", [&b.run_id], |r| r.get(0)).unwrap();
    c.execute(
        "UPDATE runs SET manifest=?1 WHERE run_id=?2",
        [row.replace("\"seed\":3", "\"seed\":4"), b.run_id.clone()],
    )
    .unwrap();
    let err = reg.load_manifest(&b.run_id).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "signature check failed for manifest of run {}: signature does not match the content",
            b.run_id
        )
    );
    // Manifest row that is not JSON at all.
    c.execute("UPDATE runs SET manifest='garbage' WHERE run_id=?1", [&b.run_id]).unwrap();
    let err = reg.load_manifest(&b.run_id).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("corrupt record run {}: manifest column", b.run_id)),
        "{err}"
    );
    // Model version re-pointed at other weights.
    c.execute("UPDATE model_versions SET sha256=?1", [sha(b"wb")]).unwrap();
    let err = reg.load_checkpoint("m@prod").unwrap_err();
    assert_eq!(
        err.to_string(),
        "signature check failed for model version m:1: signature does not match the content"
    );
    c.execute("UPDATE model_versions SET sha256=?1", [sha(b"wa")]).unwrap();
    assert!(reg.load_checkpoint("m@prod").is_ok());
    // Checkpoint row relabelled.
    c.execute("UPDATE checkpoints SET label='best' WHERE run_id=?1", [&a.run_id]).unwrap();
    let err = reg.load_checkpoint(&format!("{}/best", a.run_id)).unwrap_err();
    assert!(
        matches!(err, StoreError::BadSignature { .. }) && err.to_string().contains("checkpoint \"best\""),
        "{err}"
    );
    // Alias history with a forged version.
    c.execute("UPDATE alias_moves SET version=2", []).unwrap();
    let err = reg.load_checkpoint("m@prod").unwrap_err();
    assert!(err.to_string().starts_with("signature check failed for alias m@prod move #1"), "{err}");
    // Trust policy: a signer edited into a writer.
    let mallory = Signer::from_seed([66; 32]);
    reg.trust_key(&mallory.key_id(), "mallory", Role::Signer, &e.owner).unwrap();
    c.execute("UPDATE keys SET role='writer' WHERE name='mallory'", []).unwrap();
    let err = reg.promote(&b.run_id, "m@prod", &mallory).unwrap_err();
    assert!(err.to_string().starts_with("signature check failed for trust record of key"), "{err}");
    let rep = reg.verify().unwrap();
    assert!(rep.problems.len() >= 4, "{:?}", rep.problems);
}

#[test]
fn untrusted_signatures_are_refused() {
    let e = env();
    let reg = e.reg();
    let rogue = Signer::from_seed([13; 32]);
    // Recording is refused outright.
    let err = reg.start_run(&rogue, "rogue", serde_json::json!({}), 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "new run \"rogue\" is signed by key {}, which is not trusted by this registry (see `adjoint keys trust`)",
            rogue.key_id()
        )
    );
    // A manifest re-signed by the rogue key (valid signature, untrusted signer) is refused.
    let m = simple_run(&e, "r", 0.1, b"w", 0.5);
    let mut forged = reg.load_manifest(&m.run_id).unwrap().manifest;
    forged.final_metrics.insert("loss".into(), 0.0);
    let forged = SignedManifest::sign(forged, &rogue);
    let c = db(&e);
    c.execute(
        "UPDATE runs SET manifest=?1, signature=?2, key_id=?3 WHERE run_id=?4",
        [
            serde_json::to_string(&forged.manifest).unwrap(),
            forged.signature.clone(),
            rogue.key_id(),
            m.run_id.clone(),
        ],
    )
    .unwrap();
    std::fs::write(reg.manifest_path(&m.run_id), forged.to_json_pretty()).unwrap();
    let err = reg.load_manifest(&m.run_id).unwrap_err();
    assert!(matches!(err, StoreError::UntrustedKey { ref key, .. } if *key == rogue.key_id()), "{err}");
    // A checkpoint row re-signed by the rogue key is refused as well.
    let (seq, created): (i64, String) = c
        .query_row("SELECT seq, created_at FROM checkpoints WHERE run_id=?1", [&m.run_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let msg = format!("adjoint-checkpoint-v1\n{}\n{seq}\nfinal\n{}\n1\n{created}", m.run_id, sha(b"w"));
    c.execute("UPDATE checkpoints SET key_id=?1, signature=?2", [rogue.key_id(), rogue.sign(msg.as_bytes())])
        .unwrap();
    let err = reg.load_checkpoint(&m.run_id).unwrap_err();
    assert!(matches!(err, StoreError::UntrustedKey { .. }), "{err}");
}

#[test]
fn promote_needs_a_writer_key() {
    let e = env();
    let m = simple_run(&e, "r", 0.1, b"w", 0.5);
    let reg = e.reg();
    let bob = Signer::from_seed([21; 32]);
    reg.trust_key(&bob.key_id(), "bob", Role::Signer, &e.owner).unwrap();
    let err = reg.promote(&m.run_id, "m@prod", &bob).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "key {} may not move alias m@prod: only keys listed as writers in the registry policy may (see `adjoint keys trust --writer`)",
            &bob.key_id()[..16]
        )
    );
    reg.promote(&m.run_id, "m@prod", &e.owner).unwrap();
    assert!(matches!(reg.rollback("m@prod", &bob).unwrap_err(), StoreError::NotWriter { .. }));
    assert!(matches!(reg.publish(&m.run_id, "m2", &bob).unwrap_err(), StoreError::NotWriter { .. }));
    // A key the registry does not know at all is not a writer either.
    assert!(matches!(
        reg.promote(&m.run_id, "m@prod", &Signer::from_seed([5; 32])).unwrap_err(),
        StoreError::NotWriter { .. }
    ));
    // Once made a writer, bob may.
    reg.trust_key(&bob.key_id(), "bob", Role::Writer, &e.owner).unwrap();
    reg.promote(&m.run_id, "m@staging", &bob).unwrap();
}

#[test]
fn corrupted_database_is_an_error_naming_the_file() {
    let e = env();
    simple_run(&e, "r", 0.1, b"w", 0.5);
    let dbp = e.dir.join("registry.db");
    for f in ["registry.db-wal", "registry.db-shm"] {
        let _ = std::fs::remove_file(e.dir.join(f));
    }
    std::fs::write(&dbp, vec![0x5a; 8192]).unwrap();
    let err = Registry::open(&e.dir).unwrap_err();
    assert!(err.to_string().contains(&dbp.display().to_string()), "{err}");
    assert!(err.to_string().contains("is not a usable SQLite database"), "{err}");
}

#[test]
fn corrupted_run_row_is_named() {
    let e = env();
    let m = simple_run(&e, "r", 0.1, b"w", 0.5);
    db(&e)
        .execute("UPDATE runs SET final_metrics='[1,2]', status='weird' WHERE run_id=?1", [&m.run_id])
        .unwrap();
    let err = e.reg().list_runs().unwrap_err();
    assert_eq!(err.to_string(), format!("corrupt record run {}: unknown status \"weird\"", m.run_id));
    db(&e).execute("UPDATE runs SET status='finished' WHERE run_id=?1", [&m.run_id]).unwrap();
    let err = e.reg().list_runs().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("corrupt record run {}: final_metrics is not a metrics map", m.run_id)
    );
}

#[test]
fn key_files_are_checked() {
    let e = env();
    let p = e.path("k");
    std::fs::write(&p, "hello").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Signer::load(&p).unwrap_err();
        assert!(err.to_string().contains("permissions 644 are too open"), "{err}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let err = Signer::load(&p).unwrap_err();
    assert!(err.to_string().contains("not an adjoint secret key"), "{err}");
    let s = Signer::load(&e.owner_key).unwrap();
    assert_eq!(s.key_id(), e.owner.key_id());
    let _ = metrics(&[]);
}
