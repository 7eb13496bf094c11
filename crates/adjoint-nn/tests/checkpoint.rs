//! Checkpoints: round trips of (model, optimizer) with buffers, dotted names, interop with
//! Python's `safetensors` (committed fixtures, see `tests/fixtures/gen_optim.py`), strict
//! loading errors, and corrupted or truncated files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use adjoint_core::params::Buffer;
use adjoint_core::{Params, Tensor};
use adjoint_nn::checkpoint::{self, LoadOptions};
use adjoint_nn::optim::{Adam, AdamConfig, Optimizer};
use adjoint_nn::NnError;

fn tmp(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("adjoint-nn-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
struct Norm {
    weight: Tensor,
    running_mean: Buffer,
    num_batches_tracked: Buffer,
    #[params(skip)]
    eps: f64,
}

#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
struct Net {
    layers: Vec<Linear>,
    norm: Norm,
}

fn net(seed: f64) -> Net {
    let v = |n: usize, k: f64| (0..n).map(|i| seed * (i as f64 + k).sin()).collect::<Vec<f64>>();
    Net {
        layers: vec![
            Linear {
                weight: Tensor::from_vec(v(6, 0.0).iter().map(|&x| x as f32).collect(), &[2, 3]),
                bias: Some(Tensor::from_vec(vec![seed as f32, -seed as f32], &[2])),
            },
            Linear { weight: Tensor::from_vec(v(4, 1.0), &[2, 2]), bias: None },
        ],
        norm: Norm {
            weight: Tensor::from_vec(v(2, 2.0), &[2]),
            running_mean: Buffer::new(Tensor::from_vec(vec![seed, 2.0 * seed], &[2])),
            num_batches_tracked: Buffer::new(Tensor::scalar(seed as i64)),
            eps: 1e-5,
        },
    }
}

fn all_named<P: Params>(p: &P) -> Vec<(String, Vec<f64>, adjoint_core::DType, Vec<usize>)> {
    let mut out: Vec<_> = p
        .named_leaves()
        .into_iter()
        .map(|(n, t)| (n, t.to_vec::<f64>(), t.dtype(), t.shape().to_vec()))
        .collect();
    p.for_each_buffer("", &mut |n, b| {
        let t = b.get();
        out.push((n.to_string(), t.to_vec::<f64>(), t.dtype(), t.shape().to_vec()))
    });
    out
}

fn message(e: NnError) -> String {
    e.to_string()
}

#[test]
fn model_and_optimizer_round_trip_with_buffers_and_metadata() {
    let mut model = net(1.0);
    let mut opt = Adam::new(&model, AdamConfig { lr: 0.01, amsgrad: true, ..Default::default() });
    for _ in 0..3 {
        let g = model.map_tensors(&mut |t| t * 2.0);
        model = opt.step(&model, &g);
    }
    model.norm.running_mean.set(Tensor::from_vec(vec![0.25f64, -0.75], &[2]));
    model.norm.num_batches_tracked.set(Tensor::scalar(17i64));
    let path = tmp("roundtrip.safetensors");
    let meta = BTreeMap::from([
        ("epoch".to_string(), "4".to_string()),
        ("note".to_string(), "ünïcode ok".to_string()),
    ]);
    checkpoint::save(&path, &(model.clone(), opt.clone()), &meta).expect("save");

    // A fresh template: other values, its own buffers, a fresh optimizer.
    let fresh = net(-3.0);
    let template =
        (fresh.clone(), Adam::new(&fresh, AdamConfig { lr: 0.01, amsgrad: true, ..Default::default() }));
    let (mut m2, mut o2) = checkpoint::load(&path, &template).expect("load");
    assert_eq!(all_named(&(m2.clone(), o2.clone())), all_named(&(model.clone(), opt.clone())));
    assert_eq!(o2.steps_taken(), 3);
    assert_eq!(m2.norm.num_batches_tracked.get().dtype(), adjoint_core::DType::I64);
    assert_eq!(m2.norm.num_batches_tracked.get().item(), 17.0);
    // The template's buffers were set (they are shared with the loaded value).
    assert_eq!(fresh.norm.running_mean.get().to_vec::<f64>(), vec![0.25, -0.75]);
    assert_eq!(checkpoint::read_metadata(&path).expect("metadata"), meta);

    // Training continues identically from the loaded state.
    let g = model.map_tensors(&mut |t| t * 2.0);
    let next = opt.step(&model, &g);
    let g2 = m2.map_tensors(&mut |t| t * 2.0);
    m2 = o2.step(&m2, &g2);
    assert_eq!(all_named(&m2), all_named(&next));
}

#[test]
fn tensors_are_stored_under_dotted_names() {
    let model = net(1.0);
    let opt = Adam::new(&model, AdamConfig::default());
    let path = tmp("names.safetensors");
    checkpoint::save(&path, &(model, opt), &BTreeMap::new()).expect("save");
    let names: Vec<String> = checkpoint::read_tensors(&path).expect("read").into_keys().collect();
    let want = [
        "0.layers.0.bias",
        "0.layers.0.weight",
        "0.layers.1.weight",
        "0.norm.num_batches_tracked",
        "0.norm.running_mean",
        "0.norm.weight",
        "1.exp_avg.0",
        "1.exp_avg.1",
        "1.exp_avg.2",
        "1.exp_avg.3",
        "1.exp_avg_sq.0",
        "1.exp_avg_sq.1",
        "1.exp_avg_sq.2",
        "1.exp_avg_sq.3",
        "1.step",
    ];
    assert_eq!(names, want);
    assert!(checkpoint::read_metadata(&path).expect("metadata").is_empty());
}

/// The tensors of the interop fixtures (the same dictionary as `interop_tensors()` in
/// gen_optim.py).
fn interop() -> BTreeMap<String, Tensor> {
    BTreeMap::from([
        (
            "encoder.layers.0.weight".to_string(),
            Tensor::from_vec((0..6).map(|i| i as f32 / 4.0).collect::<Vec<f32>>(), &[2, 3]),
        ),
        ("encoder.layers.0.bias".to_string(), Tensor::from_vec(vec![-1.5f64, 2.25], &[2])),
        ("steps".to_string(), Tensor::scalar(42i64)),
        ("mask".to_string(), Tensor::from_vec(vec![true, false, true], &[3])),
    ])
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.dtype() == b.dtype() && a.shape() == b.shape() && a.to_vec::<f64>() == b.to_vec::<f64>()
}

#[test]
fn file_written_by_python_safetensors_loads() {
    let path = fixture_path("py_written.safetensors");
    let got = checkpoint::read_tensors(&path).expect("python file");
    let want = interop();
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (k, t) in &want {
        assert!(same(&got[k], t), "{k}: got {:?}, want {:?}", got[k], t);
    }
    // And into a template, strictly.
    let template: BTreeMap<String, Tensor> = want.iter().map(|(k, t)| (k.clone(), t.zeros_like())).collect();
    let loaded = checkpoint::load(&path, &template).expect("strict load");
    assert!(loaded.iter().all(|(k, t)| same(t, &want[k])));
    let meta = checkpoint::read_metadata(&path).expect("metadata");
    assert_eq!(
        meta,
        BTreeMap::from([
            ("epoch".to_string(), "7".to_string()),
            ("writer".to_string(), "python".to_string())
        ])
    );
}

/// adjoint writes exactly the committed `adjoint_written.safetensors`, which gen_optim.py
/// (`check` mode) verified with Python's `safetensors`: same names, dtypes, shapes, values and
/// metadata. Set ADJOINT_WRITE_FIXTURE=1 to rewrite the file, then re-run the Python check.
#[test]
fn file_written_by_adjoint_is_the_python_checked_fixture() {
    let meta = BTreeMap::from([("writer".to_string(), "adjoint".to_string())]);
    let path = fixture_path("adjoint_written.safetensors");
    if std::env::var_os("ADJOINT_WRITE_FIXTURE").is_some() {
        checkpoint::save(&path, &interop(), &meta).expect("write fixture");
    }
    let committed = std::fs::read(&path).expect("committed fixture");
    let fresh = tmp("adjoint_written.safetensors");
    checkpoint::save(&fresh, &interop(), &meta).expect("save");
    assert_eq!(std::fs::read(&fresh).expect("read back"), committed, "the bytes adjoint writes changed");
    let back = checkpoint::read_tensors(&path).expect("read");
    assert!(interop().iter().all(|(k, t)| same(t, &back[k])));
}

#[test]
fn mismatches_are_reported_by_name_in_one_error() {
    let model = net(1.0);
    let path = tmp("mismatch.safetensors");
    checkpoint::save(&path, &model, &BTreeMap::new()).expect("save");
    // Template: layer 1 gains a bias (missing in the file), the norm weight changes shape, the
    // first weight changes dtype, and layer 0's bias is gone (unexpected in the file).
    let mut template = net(2.0);
    template.layers[1].bias = Some(Tensor::zeros(&[2]));
    template.layers[0].bias = None;
    template.norm.weight = Tensor::zeros(&[3]).cast(adjoint_core::DType::F64);
    template.layers[0].weight = Tensor::zeros(&[2, 3]).cast(adjoint_core::DType::F64);
    let before = template.norm.running_mean.get().to_vec::<f64>();
    let e = message(checkpoint::load(&path, &template).expect_err("must fail"));
    assert!(e.contains("mismatch.safetensors"), "{e}");
    assert!(e.contains("missing 1: layers.1.bias"), "{e}");
    assert!(e.contains("unexpected 1: layers.0.bias"), "{e}");
    assert!(e.contains("wrong shape 1: norm.weight (file [2], model [3])"), "{e}");
    assert!(e.contains("wrong dtype 1: layers.0.weight (file float32, model float64)"), "{e}");
    // Nothing was changed by the failed load.
    assert_eq!(template.norm.running_mean.get().to_vec::<f64>(), before);

    // Tolerating missing and unexpected names (shapes and dtypes still must match).
    let mut template = net(2.0);
    template.layers[1].bias = Some(Tensor::from_vec(vec![9.0f64, 9.0], &[2]));
    template.layers[0].bias = None;
    let opts = LoadOptions { allow_missing: true, allow_unexpected: true };
    let (v, report) = checkpoint::load_with(&path, &template, opts).expect("lenient load");
    assert_eq!(report.missing, ["layers.1.bias"]);
    assert_eq!(report.unexpected, ["layers.0.bias"]);
    assert_eq!(v.layers[1].bias.as_ref().unwrap().to_vec::<f64>(), vec![9.0, 9.0]);
    assert_eq!(v.layers[1].weight.to_vec::<f64>(), model.layers[1].weight.to_vec::<f64>());
}

#[test]
fn missing_file_and_bad_directory_are_io_errors_naming_the_path() {
    let e = checkpoint::load(tmp("does-not-exist.safetensors"), &net(1.0)).expect_err("must fail");
    assert!(matches!(e, NnError::Io { .. }));
    assert!(message(e).contains("does-not-exist.safetensors"));
    let e = checkpoint::save(tmp("no/such/dir/x.safetensors"), &net(1.0), &BTreeMap::new())
        .expect_err("must fail");
    assert!(message(e).contains("no/such/dir/x.safetensors"));
}

#[test]
fn save_is_atomic_and_replaces_the_old_file_leaving_no_temporaries() {
    let path = tmp("atomic/ckpt.safetensors");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    checkpoint::save(&path, &net(1.0), &BTreeMap::new()).expect("first");
    checkpoint::save(&path, &net(5.0), &BTreeMap::new()).expect("second");
    let loaded = checkpoint::load(&path, &net(0.0)).expect("load");
    assert_eq!(all_named(&loaded), all_named(&net(5.0)));
    let entries: Vec<_> =
        std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("ckpt.safetensors")]);
}

#[test]
fn a_failed_save_leaves_no_temporary_and_the_old_checkpoint() {
    let path = tmp("failed/ckpt.safetensors");
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    checkpoint::save(&path, &net(1.0), &BTreeMap::new()).expect("first");
    // A non-empty folder where the second file should go: the rename fails after the write.
    let blocked = dir.join("blocked.safetensors");
    std::fs::create_dir_all(&blocked).unwrap();
    std::fs::write(blocked.join("keep"), "kept").unwrap();
    checkpoint::save(&blocked, &net(5.0), &BTreeMap::new()).expect_err("rename over a folder");
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    entries.sort();
    assert_eq!(entries, ["blocked.safetensors", "ckpt.safetensors"], "a temporary was left");
    assert_eq!(std::fs::read_to_string(blocked.join("keep")).unwrap(), "kept");
    let loaded = checkpoint::load(&path, &net(0.0)).expect("load");
    assert_eq!(all_named(&loaded), all_named(&net(1.0)));
}

fn valid_bytes() -> Vec<u8> {
    checkpoint::to_bytes(&net(1.0), &BTreeMap::from([("k".to_string(), "v".to_string())])).expect("bytes")
}

fn load_bytes(name: &str, bytes: &[u8]) -> Result<Net, NnError> {
    let path = tmp(name);
    std::fs::write(&path, bytes).unwrap();
    checkpoint::load(&path, &net(0.0))
}

#[test]
fn truncated_files_give_clear_errors() {
    let bytes = valid_bytes();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let cases: &[(usize, &str)] = &[
        (0, "shorter than the 8-byte header length"),
        (5, "shorter than the 8-byte header length"),
        (8, "header length"),
        (8 + header_len / 2, "truncated"),
        (8 + header_len + 3, "outside the"),
        (bytes.len() - 1, "truncated or corrupt"),
    ];
    for &(len, want) in cases {
        let e =
            message(load_bytes("trunc.safetensors", &bytes[..len]).expect_err("truncated file must fail"));
        assert!(e.contains(want) && e.contains("trunc.safetensors"), "cut at {len}: {e}");
    }
    // Every other truncation point fails too, without panicking.
    for len in 0..bytes.len() {
        let r = checkpoint::from_bytes_with(Path::new("t"), &bytes[..len], &net(0.0), LoadOptions::default());
        assert!(r.is_err(), "cut at {len} loaded");
    }
}

#[test]
fn corrupted_files_never_panic() {
    let bytes = valid_bytes();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // A garbage header: invalid JSON.
    let mut b = bytes.clone();
    b[8] = b'#';
    let e = message(load_bytes("bad.safetensors", &b).expect_err("must fail"));
    assert!(e.contains("invalid JSON"), "{e}");
    // A huge header length.
    let mut b = bytes.clone();
    b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = message(load_bytes("bad.safetensors", &b).expect_err("must fail"));
    assert!(e.contains("header length"), "{e}");
    // Offsets far past the end (would overflow naive arithmetic).
    let text = String::from_utf8(bytes[8..header_end].to_vec()).unwrap();
    let start = text.find("\"data_offsets\":[").unwrap() + "\"data_offsets\":[".len();
    let end = start + text[start..].find(']').unwrap();
    let hostile = format!("{}0,18446744073709551615{}", &text[..start], &text[end..]);
    let mut b = (hostile.len() as u64).to_le_bytes().to_vec();
    b.extend(hostile.as_bytes());
    b.extend(&bytes[header_end..]);
    let e = message(load_bytes("bad.safetensors", &b).expect_err("must fail"));
    assert!(e.contains("data offsets"), "{e}");
    // A text file.
    let e =
        message(load_bytes("bad.safetensors", b"hello, this is not a checkpoint").expect_err("must fail"));
    assert!(e.contains("not a safetensors file"), "{e}");
    // Every single-byte corruption of the header, and some of the data, is handled without a
    // panic (an error, or a load of different values for data bytes).
    for i in 0..bytes.len() {
        for v in [0u8, b'"', b'9', 0xff] {
            let mut b = bytes.clone();
            b[i] = v;
            let r = checkpoint::from_bytes_with(Path::new("fuzz"), &b, &net(0.0), LoadOptions::default())
                .map(|(v, _)| v);
            if let (true, Ok(v)) = (i < header_end, r) {
                // A header edit that still parses must still describe this model.
                assert_eq!(all_named(&v).len(), all_named(&net(0.0)).len());
            }
        }
    }
    // Invalid bool bytes are rejected.
    let t = BTreeMap::from([("m".to_string(), Tensor::from_vec(vec![true, false], &[2]))]);
    let mut b = checkpoint::to_bytes(&t, &BTreeMap::new()).unwrap();
    let n = b.len();
    b[n - 1] = 7;
    let path = tmp("bool.safetensors");
    std::fs::write(&path, &b).unwrap();
    let e = message(checkpoint::load(&path, &t).expect_err("must fail"));
    assert!(e.contains("tensor `m`: invalid bool byte 7"), "{e}");
}

#[test]
fn read_metadata_errors_on_bad_headers() {
    let path = tmp("meta-bad.safetensors");
    std::fs::write(&path, [1u8, 2, 3]).unwrap();
    assert!(message(checkpoint::read_metadata(&path).unwrap_err()).contains("not a safetensors file"));
    let header = br#"{"__metadata__":{"a":1}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend(header);
    std::fs::write(&path, &b).unwrap();
    assert!(message(checkpoint::read_metadata(&path).unwrap_err()).contains("metadata `a` is not a string"));
}

/// Save after three steps, load into a freshly built optimizer, and check that the next step
/// is identical.
fn resume_matches<O: Optimizer + Clone>(name: &str, make: impl Fn(&Net) -> O) {
    let mut model = net(1.0);
    let mut opt = make(&model);
    for k in 0..3 {
        let g = model.map_tensors(&mut |t| t * (k as f64 + 1.0) - 0.5);
        model = opt.step(&model, &g);
    }
    let bytes = checkpoint::to_bytes(&(model.clone(), opt.clone()), &BTreeMap::new()).expect("bytes");
    let fresh = net(0.0);
    let template = (fresh.clone(), make(&fresh));
    let (m2, mut o2) =
        checkpoint::from_bytes_with(Path::new(name), &bytes, &template, LoadOptions::default())
            .expect(name)
            .0;
    let g = model.map_tensors(&mut |t| t * 0.3);
    let a = opt.step(&model, &g);
    let b = o2.step(&m2, &g);
    assert_eq!(all_named(&a), all_named(&b), "{name}: the resumed step differs");
}

#[test]
fn every_optimizer_resumes_exactly_from_a_checkpoint() {
    use adjoint_nn::optim::*;
    resume_matches("sgd", |m| {
        Sgd::new(m, SgdConfig { lr: 0.1, momentum: 0.9, nesterov: true, ..Default::default() })
    });
    resume_matches("adamw", |m| AdamW::new(m, AdamWConfig { lr: 0.1, ..Default::default() }));
    resume_matches("rmsprop", |m| {
        RmsProp::new(m, RmsPropConfig { lr: 0.01, momentum: 0.5, centered: true, ..Default::default() })
    });
    resume_matches("adagrad", |m| {
        Adagrad::new(m, AdagradConfig { lr: 0.1, lr_decay: 0.1, ..Default::default() })
    });
}

#[test]
fn reduce_on_plateau_state_checkpoints() {
    use adjoint_nn::schedule::{PlateauConfig, ReduceOnPlateau, Schedule};
    let mut s = ReduceOnPlateau::new(0.1, PlateauConfig { patience: 0, ..Default::default() });
    s.observe(1.0);
    s.observe(2.0);
    let bytes = checkpoint::to_bytes(&s, &BTreeMap::new()).expect("bytes");
    let fresh = ReduceOnPlateau::new(0.1, PlateauConfig { patience: 0, ..Default::default() });
    let (r, _) = checkpoint::from_bytes_with(Path::new("plateau"), &bytes, &fresh, LoadOptions::default())
        .expect("load");
    assert!((r.lr_at(0) - 0.01).abs() < 1e-15);
    assert_eq!(r.best(), 1.0);
}
