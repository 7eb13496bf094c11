//! The counter-based PRNG: Threefry known answers, key derivation, thread-count independence,
//! loose statistical checks of every sampler (fixed seeds), and misuse messages.

use std::panic::{catch_unwind, UnwindSafe};

use adjoint_tensor::random::{
    bernoulli, categorical, normal, permutation, threefry2x32, try_bernoulli, try_uniform, uniform, Key,
};
use adjoint_tensor::{Array, DType};

fn panic_message<R>(f: impl FnOnce() -> R + UnwindSafe) -> String {
    let err = catch_unwind(f).err().expect("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("string payload")
}

fn assert_panics<R>(f: impl FnOnce() -> R + UnwindSafe, parts: &[&str]) {
    let msg = panic_message(f);
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
    assert!(msg.contains("tests/random.rs"), "message {msg:?} lacks the caller's file");
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (m, v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n)
}

#[test]
fn threefry_known_answers() {
    // Random123's known-answer vectors for threefry2x32_20 (also in JAX's tests).
    assert_eq!(threefry2x32([0, 0], [0, 0]), [0x6b200159, 0x99ba4efe]);
    assert_eq!(threefry2x32([0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]), [0x1cb996fc, 0xbb002be7]);
    assert_eq!(threefry2x32([0x13198a2e, 0x03707344], [0x243f6a88, 0x85a308d3]), [0xc4923a9c, 0x483df7a0]);
    // JAX's legacy (non-partitionable) `split(PRNGKey(0))` is [[4146024105, 967050713],
    // [2718843009, 1272950319]]: threefry of the counters ([0, 1], [2, 3]) laid out column-wise.
    assert_eq!(threefry2x32([0, 0], [0, 2]), [4146024105, 2718843009]);
    assert_eq!(threefry2x32([0, 0], [1, 3]), [967050713, 1272950319]);
    // The partitionable scheme (JAX's default) gives split(PRNGKey(0)) =
    // [[1797259609, 2579123966], [928981903, 3453687069]].
    let keys = Key::new(0).split(2);
    assert_eq!((keys[0].raw(), keys[1].raw()), ([1797259609, 2579123966], [928981903, 3453687069]));
}

#[test]
fn key_derivation_follows_jax() {
    assert_eq!(Key::new(0).raw(), [0, 0]);
    assert_eq!(Key::new(42).raw(), [0, 42]);
    assert_eq!(Key::new((7 << 32) | 5).raw(), [7, 5]);
    assert_eq!(Key::from_raw([3, 4]).raw(), [3, 4]);
    // Partitionable scheme: split(n)[i] encrypts the counter (0, i); fold_in(d) encrypts d.
    let k = Key::new(123);
    let keys = k.split(3);
    for (i, s) in keys.iter().enumerate() {
        assert_eq!(s.raw(), threefry2x32(k.raw(), [0, i as u32]));
        assert_eq!(*s, k.fold_in(i as u64));
    }
    assert_eq!(k.fold_in(1 << 40).raw(), threefry2x32(k.raw(), [1 << 8, 0]));
    let [a, b] = threefry2x32(k.raw(), [0, 2]);
    assert_eq!(k.bits(3)[2], a ^ b);
}

#[test]
fn split_keys_give_different_streams() {
    let k = Key::new(0);
    let keys = k.split(8);
    assert_eq!(k.split2(), (keys[0], keys[1]));
    let mut seen = std::collections::HashSet::new();
    for key in keys.iter().chain([&k]) {
        assert!(seen.insert(key.bits(4)), "two keys share a stream");
    }
    assert_ne!(k.fold_in(1), k.fold_in(2));
    assert_ne!(Key::new(1), Key::new(2));
    let (a, b) = k.split2();
    let (ua, ub) = (uniform(&a, &[64], 0.0, 1.0, DType::F64), uniform(&b, &[64], 0.0, 1.0, DType::F64));
    assert_ne!(ua.to_vec::<f64>(), ub.to_vec::<f64>());
}

#[test]
fn elements_depend_only_on_key_and_index() {
    let k = Key::new(9);
    assert_eq!(k.bits(5), k.bits(1000)[..5].to_vec());
    let small = uniform(&k, &[7], -1.0, 1.0, DType::F32).to_vec::<f32>();
    let big = uniform(&k, &[100_000], -1.0, 1.0, DType::F32).to_vec::<f32>();
    assert_eq!(small, big[..7].to_vec());
    assert_eq!(
        normal(&k, &[3], DType::F64).to_vec::<f64>(),
        normal(&k, &[2, 3], DType::F64).to_vec::<f64>()[..3]
    );
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let k = Key::new(2024);
    let n = 200_000; // above the parallel threshold
    let logits = uniform(&k.fold_in(1), &[n / 4, 4], -2.0, 2.0, DType::F32);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            (
                k.bits(n),
                uniform(&k, &[n], 0.0, 1.0, DType::F32).to_vec::<f32>(),
                uniform(&k, &[n], 0.0, 1.0, DType::F64).to_vec::<f64>(),
                normal(&k, &[n], DType::F32).to_vec::<f32>(),
                bernoulli(&k, 0.5, &[n]).to_vec::<bool>(),
                permutation(&k, n).to_vec::<i64>(),
                categorical(&k, &logits, 1).to_vec::<i64>(),
            )
        })
    };
    assert!(run(1) == run(2), "results differ between 1 and 2 threads");
}

#[test]
fn uniform_is_in_range_with_the_right_moments() {
    let k = Key::new(1);
    for dtype in [DType::F32, DType::F64] {
        let x = uniform(&k, &[100_000], 2.0, 5.0, dtype);
        assert_eq!((x.dtype(), x.shape()), (dtype, &[100_000usize][..]));
        let v = x.to_vec::<f64>();
        assert!(v.iter().all(|&x| (2.0..5.0).contains(&x)));
        let (m, var) = mean_var(&v);
        assert!((m - 3.5).abs() < 0.02, "{dtype}: mean {m}");
        assert!((var - 0.75).abs() < 0.02, "{dtype}: variance {var}");
    }
    // A range so narrow that rounding would reach `high` still stays below it.
    let x = uniform(&k, &[10_000], 1.0, 1.0 + 2.0 * f32::EPSILON as f64, DType::F32).to_vec::<f32>();
    assert!(x.iter().all(|&v| (1.0..1.0 + 2.0 * f32::EPSILON).contains(&v)));
    assert_eq!(uniform(&k, &[0, 3], 0.0, 1.0, DType::F32).shape(), &[0, 3]);
}

#[test]
fn normal_has_zero_mean_unit_variance() {
    let k = Key::new(2);
    for dtype in [DType::F32, DType::F64] {
        let x = normal(&k, &[100_000], dtype);
        assert_eq!(x.dtype(), dtype);
        let v = x.to_vec::<f64>();
        assert!(v.iter().all(|x| x.is_finite()));
        let (m, var) = mean_var(&v);
        assert!(m.abs() < 0.02, "{dtype}: mean {m}");
        assert!((var - 1.0).abs() < 0.03, "{dtype}: variance {var}");
        let within = v.iter().filter(|x| x.abs() < 1.0).count() as f64 / v.len() as f64;
        assert!((within - 0.6827).abs() < 0.01, "{dtype}: P(|x| < 1) = {within}");
    }
}

#[test]
fn bernoulli_frequency_matches_p() {
    let k = Key::new(3);
    let x = bernoulli(&k, 0.3, &[100_000]);
    assert_eq!(x.dtype(), DType::Bool);
    let freq = x.to_vec::<bool>().iter().filter(|&&b| b).count() as f64 / 1e5;
    assert!((freq - 0.3).abs() < 0.01, "frequency {freq}");
    assert!(bernoulli(&k, 0.0, &[1000]).to_vec::<bool>().iter().all(|&b| !b));
    assert!(bernoulli(&k, 1.0, &[1000]).to_vec::<bool>().iter().all(|&b| b));
}

#[test]
fn permutation_is_a_permutation() {
    for n in [0usize, 1, 2, 10, 1000] {
        let p = permutation(&Key::new(n as u64), n);
        assert_eq!((p.dtype(), p.shape()), (DType::I64, &[n][..]));
        let mut v = p.to_vec::<i64>();
        v.sort();
        assert_eq!(v, (0..n as i64).collect::<Vec<_>>());
    }
    let (a, b) = (permutation(&Key::new(1), 1000), permutation(&Key::new(2), 1000));
    assert_ne!(a.to_vec::<i64>(), b.to_vec::<i64>());
    assert_ne!(a.to_vec::<i64>(), (0..1000).collect::<Vec<i64>>());
    // Each value lands in each half about equally often across keys.
    let first_half = (0..2000u64).filter(|&s| permutation(&Key::new(s), 10).to_vec::<i64>()[0] < 5).count();
    assert!((first_half as f64 / 2000.0 - 0.5).abs() < 0.05);
}

#[test]
fn categorical_frequencies_follow_softmax() {
    let logits = [1.0f64, 2.0, 0.5, f64::NEG_INFINITY];
    let z: f64 = logits.iter().map(|l| l.exp()).sum();
    let probs: Vec<f64> = logits.iter().map(|l| l.exp() / z).collect();
    let n = 40_000;
    let rows: Vec<f64> = (0..n).flat_map(|_| logits).collect();
    let check = |samples: Vec<i64>| {
        assert_eq!(samples.len(), n);
        for (c, &p) in probs.iter().enumerate() {
            let f = samples.iter().filter(|&&s| s == c as i64).count() as f64 / n as f64;
            assert!((f - p).abs() < 0.01, "class {c}: frequency {f}, probability {p}");
        }
    };
    let k = Key::new(4);
    let by_row = Array::from_vec(rows.clone(), &[n, 4]);
    let s = categorical(&k, &by_row, 1);
    assert_eq!((s.dtype(), s.shape()), (DType::I64, &[n][..]));
    check(s.to_vec::<i64>());
    // Along axis 0 of a transposed f32 view.
    let by_col = Array::from_vec(rows, &[n, 4]).cast(DType::F32).transpose(0, 1);
    check(categorical(&k.fold_in(1), &by_col, 0).to_vec::<i64>());
    // Rank-1 logits give a rank-0 sample.
    let one = categorical(&k, &Array::from_vec(vec![0.0f32, 0.0], &[2]), 0);
    assert_eq!(one.shape(), &[] as &[usize]);
}

#[test]
fn random_misuse_messages() {
    let k = Key::new(0);
    assert_panics(|| uniform(&k, &[2], 0.0, 1.0, DType::I64), &["uniform", "float", "int64"]);
    assert_panics(|| uniform(&k, &[2], 1.0, 1.0, DType::F32), &["uniform", "low=1", "high=1"]);
    assert_panics(|| uniform(&k, &[2], 0.0, f64::INFINITY, DType::F64), &["uniform", "high=inf"]);
    assert_panics(|| normal(&k, &[2], DType::Bool), &["normal", "float", "bool"]);
    assert_panics(|| bernoulli(&k, 1.5, &[2]), &["bernoulli", "1.5", "[2]"]);
    assert_panics(|| bernoulli(&k, f64::NAN, &[2]), &["bernoulli", "NaN"]);
    let logits = Array::zeros(&[2, 3], DType::F32);
    assert_panics(|| categorical(&k, &logits, 2), &["categorical", "axis 2", "[2, 3]"]);
    assert_panics(
        || categorical(&k, &Array::zeros(&[2, 3], DType::I64), 1),
        &["categorical", "float", "int64"],
    );
    assert_panics(
        || categorical(&k, &Array::zeros(&[2, 0], DType::F32), 1),
        &["categorical", "empty", "[2, 0]"],
    );
    assert_eq!(try_uniform(&k, &[1], 0.0, 1.0, DType::Bool).unwrap_err().op, "uniform");
    assert_eq!(try_bernoulli(&k, -0.1, &[1]).unwrap_err().op, "bernoulli");
}
