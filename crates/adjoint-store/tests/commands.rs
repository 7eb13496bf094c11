//! Every `runs` / `keys` command on a temporary registry, driven through clap parsing.

mod common;

use adjoint_store::cli::{run_keys, run_runs, KeysCommand, RunsCommand, StoreArgs};
use adjoint_store::{Registry, Signer, StoreError};
use clap::{Parser, Subcommand};
use common::{env, metrics, sha, simple_run, Env};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    cmd: Top,
}

#[derive(Subcommand)]
enum Top {
    #[command(subcommand)]
    Runs(RunsCommand),
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// Runs `adjoint --registry <env> [--key <key>] <args>`; returns (exit code, output).
fn cli(env: &Env, key: Option<&std::path::Path>, args: &[&str]) -> Result<(i32, String), StoreError> {
    let mut argv = vec!["adjoint".to_string(), "--registry".into(), env.dir.display().to_string()];
    if let Some(k) = key {
        argv.extend(["--key".to_string(), k.display().to_string()]);
    }
    argv.extend(args.iter().map(|s| s.to_string()));
    let parsed = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let mut out = Vec::new();
    let code = match &parsed.cmd {
        Top::Runs(c) => run_runs(c, &parsed.store, &mut out)?,
        Top::Keys(c) => run_keys(c, &parsed.store, &mut out)?,
    };
    Ok((code, String::from_utf8(out).unwrap()))
}

#[test]
fn list_show_and_diff() {
    let e = env();
    let (code, out) = cli(&e, None, &["runs", "list"]).unwrap();
    assert_eq!((code, out.trim()), (0, format!("no runs in {}", e.dir.display()).as_str()));
    let a = simple_run(&e, "alpha", 0.1, b"weights-a", 0.5);
    let b = simple_run(&e, "beta", 0.2, b"weights-b", 0.25);
    let (_, out) = cli(&e, None, &["runs", "list"]).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with(&b.run_id) && lines[1].contains("beta") && lines[1].contains("loss=0.250000"),
        "{out}"
    );
    assert!(lines[2].starts_with(&a.run_id) && lines[2].contains("finished"), "{out}");

    let data_sha = sha(&std::fs::read(e.data_file()).unwrap());
    let (_, out) = cli(&e, None, &["runs", "show", &a.run_id[..20]]).unwrap();
    for want in [
        format!("run       {}", a.run_id),
        "\"lr\": 0.1".to_string(),
        format!("{data_sha}  {}", e.data_file().display()),
        format!("{}  final (9 bytes)", sha(b"weights-a")),
        format!("signed by {} (writer); signature valid", &e.owner.key_id()[..16]),
        "final:    loss=0.500000".to_string(),
        "seed      3".to_string(),
    ] {
        assert!(out.contains(&want), "missing {want:?} in\n{out}");
    }
    let (_, json) = cli(&e, None, &["runs", "show", &a.run_id, "--json"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["manifest"]["config"]["lr"], 0.1);

    let (_, out) = cli(&e, None, &["runs", "diff", &a.run_id, &b.run_id]).unwrap();
    assert!(out.contains("config:\n  lr: 0.1 -> 0.2\n"), "{out}");
    assert!(out.contains("final metrics:\n  loss: 0.5 -> 0.25 (delta -2.5e-1)"), "{out}");
    assert!(!out.contains("data:"), "same data file should not differ:\n{out}");
    assert!(out.contains("checkpoints: "), "{out}");
    let (_, same) = cli(&e, None, &["runs", "diff", &a.run_id, &a.run_id]).unwrap();
    assert!(same.contains("no differences"), "{same}");
}

#[test]
fn identical_weights_are_stored_once() {
    let e = env();
    simple_run(&e, "one", 0.1, b"same weights", 1.0);
    simple_run(&e, "two", 0.1, b"same weights", 1.0);
    let mut files = Vec::new();
    for d in std::fs::read_dir(e.dir.join("blobs/sha256")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), b"same weights");
    assert_eq!(e.reg().blob_path(&sha(b"same weights")), files[0]);
}

#[test]
fn promote_rollback_models_and_lineage() {
    let e = env();
    let a = simple_run(&e, "base", 0.1, b"weights v1", 0.5);
    let reg = e.reg();
    // A fine-tuning run whose parent is the base run's checkpoint.
    let mut run = reg.start_run(&e.owner, "finetune", serde_json::json!({"lr": 0.01}), 4).unwrap();
    let parent = run.set_parent_checkpoint(&a.run_id).unwrap();
    assert_eq!(parent, sha(b"weights v1"));
    std::fs::write(e.path("ft.safetensors"), b"weights v2").unwrap();
    run.add_checkpoint(e.path("ft.safetensors"), "final").unwrap();
    let b = run.finish(metrics(&[("loss", 0.2)])).unwrap();

    let key = Some(e.owner_key.as_path());
    let (_, out) =
        cli(&e, key, &["runs", "promote", &sha(b"weights v1")[..10], "forecast@production"]).unwrap();
    assert_eq!(out.trim(), format!("forecast@production -> version 1 ({})", &sha(b"weights v1")[..12]));
    let (_, out) =
        cli(&e, key, &["runs", "promote", &format!("{}/final", b.run_id), "forecast@production"]).unwrap();
    assert!(out.contains("version 2"), "{out}");
    assert_eq!(reg.load_checkpoint("forecast@production").unwrap().bytes, b"weights v2");
    assert_eq!(reg.load_checkpoint("forecast:1").unwrap().bytes, b"weights v1");
    // Promoting the same weights again reuses the version.
    assert_eq!(reg.promote(&b.run_id, "forecast@staging", &e.owner).unwrap(), 2);

    let (_, out) = cli(&e, None, &["runs", "models"]).unwrap();
    assert!(out.starts_with("forecast\n  1: "), "{out}");
    assert!(out.contains("@production @staging"), "{out}");

    let (_, tree) = cli(&e, None, &["runs", "lineage", "forecast@production"]).unwrap();
    let expect_lines = [
        "alias forecast@production -> version 2".to_string(),
        "└── model forecast:2 (published ".to_string(),
        format!("    └── checkpoint {} (final)", &sha(b"weights v2")[..12]),
        format!("        └── written by run {} \"finetune\" (finished, seed 4", b.run_id),
        format!("            └── fine-tuned from checkpoint {} (final)", &sha(b"weights v1")[..12]),
        format!("                └── written by run {} \"base\" (finished, seed 3", a.run_id),
        format!("                    └── data {} (sha256 ", e.data_file().display()),
    ];
    let lines: Vec<&str> = tree.lines().collect();
    assert_eq!(lines.len(), expect_lines.len(), "{tree}");
    for (l, want) in lines.iter().zip(&expect_lines) {
        assert!(l.starts_with(want.as_str()), "line {l:?} should start with {want:?}\n{tree}");
    }
    // Downstream view of the base checkpoint.
    let (_, down) = cli(&e, None, &["runs", "lineage", &sha(b"weights v1")]).unwrap();
    assert!(down.contains(&format!("fine-tuned into run {} (downstream)", b.run_id)), "{down}");
    assert!(down.contains("published as model forecast:1 (downstream)"), "{down}");
    let (_, model) = cli(&e, None, &["runs", "lineage", "forecast"]).unwrap();
    assert!(
        model.starts_with("model forecast [@production -> 2, @staging -> 2]\n├── model forecast:2"),
        "{model}"
    );

    let (_, out) = cli(&e, key, &["runs", "rollback", "forecast@production"]).unwrap();
    assert_eq!(out.trim(), "forecast@production: version 2 -> version 1");
    assert_eq!(reg.load_checkpoint("forecast@production").unwrap().bytes, b"weights v1");
    let err = cli(&e, key, &["runs", "rollback", "forecast@production"]).unwrap_err();
    assert!(err.to_string().contains("an earlier version of forecast@production"), "{err}");
    // Moving forward again, then rolling back, returns to version 1 (stack semantics).
    reg.promote(&b.run_id, "forecast@production", &e.owner).unwrap();
    assert_eq!(reg.rollback("forecast@production", &e.owner).unwrap(), (2, 1));

    let out_file = e.path("checked-out.safetensors");
    let (_, out) =
        cli(&e, None, &["runs", "checkout", "forecast@staging", out_file.to_str().unwrap()]).unwrap();
    assert!(out.contains(&sha(b"weights v2")), "{out}");
    assert_eq!(std::fs::read(&out_file).unwrap(), b"weights v2");
}

#[test]
fn verify_gc_delete_and_crash_leftovers() {
    let e = env();
    let a = simple_run(&e, "keep", 0.1, b"kept", 0.5);
    let b = simple_run(&e, "drop", 0.1, b"dropped", 0.5);
    let (code, out) = cli(&e, None, &["runs", "verify"]).unwrap();
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "checked 2 blobs, 2 checkpoints, 2 manifests, 0 model records: all intact");

    // What a crash can leave: a half-written temp file, a blob whose row never committed, and a
    // run that never finished (killed after writing its manifest file, before committing).
    let reg = e.reg();
    let stray_dir = e.dir.join("blobs/sha256/ab");
    std::fs::create_dir_all(&stray_dir).unwrap();
    std::fs::write(stray_dir.join(".tmp-cdef-123"), b"half").unwrap();
    let orphan = reg.blob_path(&sha(b"orphan"));
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"orphan").unwrap();
    let crashed = reg.start_run(&e.owner, "crashed", serde_json::json!({}), 0).unwrap();
    let crashed_id = crashed.run_id().to_string();
    drop(crashed);
    let stray_manifest = reg.manifest_path(&crashed_id);
    std::fs::write(&stray_manifest, b"{}").unwrap();

    let (code, out) = cli(&e, None, &["runs", "verify"]).unwrap();
    assert_eq!(code, 0, "leftovers are warnings, not integrity problems:\n{out}");
    assert!(out.contains(&format!("warning: run {crashed_id} never finished")), "{out}");
    assert!(out.contains(&format!("warning: unregistered file {}", orphan.display())), "{out}");
    let stray = format!("warning: manifest file {} belongs to no finished run", stray_manifest.display());
    assert!(out.contains(&stray), "{out}");
    let (_, list) = cli(&e, None, &["runs", "list"]).unwrap();
    assert!(list.lines().any(|l| l.starts_with(&crashed_id) && l.contains("running")), "{list}");
    let (_, show) = cli(&e, None, &["runs", "show", &crashed_id]).unwrap();
    assert!(show.contains("no signed manifest yet"), "{show}");

    // Default grace keeps fresh files (a concurrent writer may be about to register them).
    let (_, out) = cli(&e, None, &["runs", "gc"]).unwrap();
    assert_eq!(out.trim(), "freed 0 bytes");
    let (_, out) = cli(&e, None, &["runs", "gc", "--grace-secs", "0"]).unwrap();
    assert!(out.contains(&format!("removed file {}", orphan.display())), "{out}");
    assert!(out.contains(".tmp-cdef-123"), "{out}");
    assert!(out.contains(&format!("removed file {}", stray_manifest.display())), "{out}");
    assert!(out.contains("freed 12 bytes"), "{out}");
    assert!(!orphan.exists() && !stray_manifest.exists());
    let (code, out) = cli(&e, None, &["runs", "verify"]).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().filter(|l| l.starts_with("warning")).all(|l| l.contains("never finished")), "{out}");

    // Deleting needs a writer key; then gc frees the run's blob.
    let err = cli(&e, None, &["runs", "delete", &b.run_id]).unwrap_err();
    assert!(err.to_string().contains("requires a signing key"), "{err}");
    let (_, out) = cli(&e, Some(&e.owner_key), &["runs", "delete", &b.run_id]).unwrap();
    assert!(out.contains(&format!("deleted run {}", b.run_id)), "{out}");
    let (_, out) = cli(&e, None, &["runs", "gc", "--grace-secs", "0"]).unwrap();
    assert!(out.contains(&format!("removed blob {}", sha(b"dropped"))), "{out}");
    assert!(e.reg().load_checkpoint(&sha(b"kept")).is_ok());
    // A run whose checkpoint is a published version cannot be deleted.
    reg.promote(&a.run_id, "m@prod", &e.owner).unwrap();
    let err = reg.delete_run(&a.run_id, &e.owner).unwrap_err();
    assert!(err.to_string().contains("produced model version m:1"), "{err}");
    let (code, out) = cli(&e, None, &["runs", "verify"]).unwrap();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn export_is_self_contained_and_checkable() {
    let e = env();
    let dir = e.path("exp-src");
    let m = common::tiny_train(&e.dir, &e.owner_key, &e.data_file(), 0.1, 3, &dir, vec![]);
    let out = e.path("export");
    let (_, msg) = cli(&e, None, &["runs", "export", &m.run_id, out.to_str().unwrap()]).unwrap();
    assert!(msg.contains("(1 checkpoints)"), "{msg}");
    let bytes = std::fs::read(out.join("checkpoints/0-final.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let w = f64::from_le_bytes(st.tensor("w").unwrap().data().try_into().unwrap());
    assert_eq!(w.to_bits(), m.final_metrics["w"].to_bits());
    let signed = adjoint_store::verify_export(&out, Some(&e.owner.key_id())).unwrap();
    assert_eq!(signed.manifest, m);
    assert!(std::fs::read_to_string(out.join("signer.pub")).unwrap().contains(&e.owner.key_id()));
    // Exporting into a non-empty folder is refused.
    let err = e.reg().export(&m.run_id, &out).unwrap_err();
    assert!(err.to_string().contains("is not empty"), "{err}");
    // A flipped byte in the exported checkpoint is caught without the registry.
    let mut b = bytes.clone();
    *b.last_mut().unwrap() ^= 1;
    std::fs::write(out.join("checkpoints/0-final.safetensors"), &b).unwrap();
    let err = adjoint_store::verify_export(&out, None).unwrap_err();
    assert!(matches!(err, StoreError::BlobMismatch { .. }), "{err}");
    let other = Signer::from_seed([9; 32]).key_id();
    let err = adjoint_store::verify_export(&out, Some(&other)).unwrap_err();
    assert!(matches!(err, StoreError::UntrustedKey { .. }), "{err}");
}

#[test]
fn keys_generate_trust_list_untrust() {
    let e = env();
    let alice = e.path("keys/alice.key");
    let (_, out) = cli(&e, None, &["keys", "generate", alice.to_str().unwrap()]).unwrap();
    let alice_signer = Signer::load(&alice).unwrap();
    assert!(out.contains(&format!("key id {}", alice_signer.key_id())), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&alice).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let err = cli(&e, None, &["keys", "generate", alice.to_str().unwrap()]).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");

    let pubfile = e.path("keys/alice.key.pub");
    // Trusting needs a writer key: alice cannot trust herself.
    let err = cli(&e, Some(&alice), &["keys", "trust", pubfile.to_str().unwrap()]).unwrap_err();
    assert!(matches!(err, StoreError::NotWriter { .. }), "{err}");
    let (_, out) =
        cli(&e, Some(&e.owner_key), &["keys", "trust", pubfile.to_str().unwrap(), "--name", "alice"])
            .unwrap();
    assert_eq!(out.trim(), format!("trusted {} as signer", &alice_signer.key_id()[..16]));
    let (_, list) = cli(&e, None, &["keys", "list"]).unwrap();
    assert!(list.contains(&format!("{}  writer  owner", e.owner.key_id())), "{list}");
    assert!(list.contains(&format!("{}  signer  alice", alice_signer.key_id())), "{list}");

    // A signer may record runs but not publish.
    let reg = e.reg();
    let mut run = reg.start_run(&alice_signer, "by-alice", serde_json::json!({}), 1).unwrap();
    std::fs::write(e.path("a.bin"), b"alice weights").unwrap();
    run.add_checkpoint(e.path("a.bin"), "final").unwrap();
    let m = run.finish(metrics(&[("loss", 1.0)])).unwrap();
    let err = cli(&e, Some(&alice), &["runs", "promote", &m.run_id, "x@prod"]).unwrap_err();
    assert!(err.to_string().contains("may not move alias x@prod"), "{err}");

    // Untrusting alice makes her records untrusted.
    let (_, out) = cli(&e, Some(&e.owner_key), &["keys", "untrust", &alice_signer.key_id()]).unwrap();
    assert!(out.contains("removed"), "{out}");
    let err = reg.load_manifest(&m.run_id).unwrap_err();
    assert!(matches!(err, StoreError::UntrustedKey { .. }), "{err}");
    let (code, out) = cli(&e, None, &["runs", "verify"]).unwrap();
    assert_eq!(code, 1);
    assert!(out.contains("not trusted by this registry"), "{out}");
}

#[test]
fn fresh_registry_trusts_first_key_and_files_are_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("runs");
    let reg = Registry::open(&dir).unwrap();
    assert!(reg.trusted_keys().unwrap().is_empty());
    let s = Signer::from_seed([3; 32]);
    let mut run = reg.start_run(&s, "first", serde_json::json!({"a": 1}), 0).unwrap();
    std::fs::write(tmp.path().join("w"), b"w").unwrap();
    let h = run.add_checkpoint(tmp.path().join("w"), "final").unwrap();
    let m = run.finish(metrics(&[("loss", f64::NAN)])).unwrap();
    let keys = reg.trusted_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0].key_id.as_str(), keys[0].role), (s.key_id().as_str(), adjoint_store::Role::Writer));
    // A second, unknown key may not start recording into it.
    let err = reg.start_run(&Signer::from_seed([4; 32]), "x", serde_json::json!({}), 0).unwrap_err();
    assert!(matches!(err, StoreError::UntrustedKey { .. }), "{err}");
    // NaN metrics survive the round trip.
    assert!(reg.load_manifest(&m.run_id).unwrap().manifest.final_metrics["loss"].is_nan());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("blobs")), 0o700);
        for f in ["registry.db", "registry.db-wal", "registry.db-shm"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        assert_eq!(mode(&reg.blob_path(&h)), 0o600);
        assert_eq!(mode(&reg.manifest_path(&m.run_id)), 0o600);
    }
}

#[test]
fn lookups_fail_with_clear_messages() {
    let e = env();
    let reg = e.reg();
    let err = reg.load_checkpoint("nosuch@prod").unwrap_err();
    assert_eq!(err.to_string(), "not found: alias nosuch@prod");
    let err = reg.load_checkpoint("forecast:x").unwrap_err();
    assert!(err.to_string().contains("\"x\" in \"forecast:x\" is not a number"), "{err}");
    let err = reg.promote("deadbeef", "bad name@prod", &e.owner).unwrap_err();
    assert!(err.to_string().starts_with("invalid model name: \"bad name\""), "{err}");
    let err = cli(&e, None, &["runs", "show", "2099"]).unwrap_err();
    assert_eq!(err.to_string(), "not found: run \"2099\"");
    let a = simple_run(&e, "a", 0.1, b"a", 1.0);
    let _b = simple_run(&e, "b", 0.1, b"b", 1.0);
    let err = reg.resolve_run_id(&a.run_id[..4]).unwrap_err();
    assert!(matches!(err, StoreError::Ambiguous { .. }), "{err}");
    let err = cli(&e, None, &["runs", "reproduce", &a.run_id]).unwrap_err();
    assert!(err.to_string().contains("recorded no command line"), "{err}");
}

#[test]
fn read_commands_do_not_create_a_registry_and_keys_can_bootstrap_one() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Env {
        dir: tmp.path().join("nothing-here"),
        owner: Signer::from_seed([8; 32]),
        owner_key: tmp.path().join("me.key"),
        tmp,
    };
    let (code, out) = cli(&e, None, &["runs", "list"]).unwrap();
    assert_eq!(
        (code, out.trim()),
        (0, format!("no runs in {} (no registry there yet)", e.dir.display()).as_str())
    );
    let err = cli(&e, None, &["runs", "verify"]).unwrap_err();
    assert!(err.to_string().starts_with(&format!("not found: registry at {}", e.dir.display())), "{err}");
    assert!(!e.dir.exists());
    // The owner sets up a fresh registry by trusting their own key as writer.
    e.owner.save(&e.owner_key).unwrap();
    let pubkey = e.owner.key_id();
    let err = cli(&e, Some(&e.owner_key), &["keys", "trust", &pubkey]).unwrap_err();
    assert!(err.to_string().contains("must first trust its owner's key as a writer"), "{err}");
    let (_, out) =
        cli(&e, Some(&e.owner_key), &["keys", "trust", &pubkey, "--writer", "--name", "me"]).unwrap();
    assert_eq!(out.trim(), format!("trusted {} as writer", &pubkey[..16]));
    let keys = e.reg().trusted_keys().unwrap();
    assert_eq!(
        (keys.len(), keys[0].role, keys[0].added_by.as_str()),
        (1, adjoint_store::Role::Writer, pubkey.as_str())
    );
}

#[test]
fn checkpoints_of_failed_runs_cannot_be_published() {
    let e = env();
    let reg = e.reg();
    let mut run = reg.start_run(&e.owner, "diverged", serde_json::json!({}), 0).unwrap();
    std::fs::write(e.path("nan.bin"), b"weights after the loss went NaN").unwrap();
    let h = run.add_checkpoint(e.path("nan.bin"), "last").unwrap();
    let m = run.fail(metrics(&[("diverged_at_step", 3.0)])).unwrap();
    let err = reg.publish(&h, "m", &e.owner).unwrap_err();
    assert!(err.to_string().contains("only from failed runs"), "{err}");
    let err = cli(&e, Some(&e.owner_key), &["runs", "promote", &m.run_id, "m@prod"]).unwrap_err();
    assert!(err.to_string().contains("only from failed runs"), "{err}");
    // The same bytes recorded by a finished run may be published.
    let mut ok = reg.start_run(&e.owner, "finished", serde_json::json!({}), 0).unwrap();
    ok.add_checkpoint(e.path("nan.bin"), "final").unwrap();
    ok.finish(metrics(&[("loss", 1.0)])).unwrap();
    assert_eq!(reg.publish(&h, "m", &e.owner).unwrap(), (1, true));
}
