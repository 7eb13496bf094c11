//! `Optimizer::step_flat` (raw buffers updated in place, the gradient a scaled sum of parts)
//! against `Optimizer::step` on tensors holding the same values: the same bits, over several
//! steps, for Adam, AdamW and SGD (weight decay, AMSGrad, momentum, Nesterov, maximize,
//! per-leaf groups with a frozen leaf), in `f32` and `f64`, with one, two and three gradient
//! parts, with mirrors (a copy of the new parameter written in the same pass), and leaves large
//! enough for the parallel path.

use adjoint_core::Tensor;
use adjoint_nn::optim::{
    Adam, AdamConfig, AdamW, AdamWConfig, Flat, FlatLeaf, LeafOptions, Optimizer, ParamGroups, RmsProp,
    RmsPropConfig, Sgd, SgdConfig,
};
use adjoint_tensor::FloatElement;

/// Deterministic pseudo-random values in about [-1, 1].
fn values(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

/// An element type of [`Flat`].
trait Elem: FloatElement {
    fn wrap(leaf: FlatLeaf<'_, Self>) -> Flat<'_>;
    fn bits(self) -> u64;
}

impl Elem for f32 {
    fn wrap(leaf: FlatLeaf<'_, f32>) -> Flat<'_> {
        Flat::F32(leaf)
    }
    fn bits(self) -> u64 {
        self.to_bits().into()
    }
}

impl Elem for f64 {
    fn wrap(leaf: FlatLeaf<'_, f64>) -> Flat<'_> {
        Flat::F64(leaf)
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

fn cast<T: FloatElement>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

/// Leaf sizes: a matrix past two parallel chunks, a vector, a scalar-sized leaf.
const SIZES: [usize; 3] = [70_001, 33, 1];

/// Three updates of `make()` by `step` and by `step_flat` with the gradient split in `parts`
/// parts, compared bit for bit after each step; the flat path's state and step count too.
fn check<T: Elem, O: Optimizer + Clone>(make: impl Fn(&Vec<Tensor>) -> O, parts: usize) {
    let params: Vec<Tensor> = SIZES
        .iter()
        .enumerate()
        .map(|(i, &n)| Tensor::from_vec(cast::<T>(&values(i as u64, n)), &[n]))
        .collect();
    let mut opt = make(&params);
    let mut flat_opt = opt.clone();
    let mut p = params.clone();
    let mut flat: Vec<Vec<T>> = params.iter().map(|t| t.to_vec::<T>()).collect();
    let scale = T::from_f64(1.0 / parts as f64);
    let mut mirrors: Vec<Option<Vec<T>>> =
        SIZES.iter().map(|&n| (parts == 2).then(|| vec![T::zero(); n])).collect();
    for step in 0..3u64 {
        // Each leaf's parts, and the tensor path's gradient summed the same way.
        let split: Vec<Vec<Vec<T>>> = SIZES
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                (0..parts).map(|k| cast::<T>(&values(100 * step + 10 * i as u64 + k as u64 + 7, n))).collect()
            })
            .collect();
        let grads: Vec<Tensor> = split
            .iter()
            .zip(SIZES)
            .map(|(ps, n)| {
                let sum: Vec<T> =
                    (0..n).map(|j| ps[1..].iter().fold(ps[0][j], |acc, q| acc + q[j]) * scale).collect();
                Tensor::from_vec(sum, &[n])
            })
            .collect();
        p = opt.step(&p, &grads);
        let refs: Vec<Vec<&[T]>> = split.iter().map(|ps| ps.iter().map(|v| &v[..]).collect()).collect();
        let mut leaves: Vec<Flat<'_>> = flat
            .iter_mut()
            .zip(&refs)
            .zip(&mut mirrors)
            .map(|((param, grads), m)| T::wrap(FlatLeaf { param, grads, scale, mirror: m.as_deref_mut() }))
            .collect();
        assert!(flat_opt.step_flat(&mut leaves));
        drop(leaves);
        // The mirrors (given with two parts) hold the new parameters, the frozen leaf's too.
        for (i, m) in mirrors.iter().enumerate() {
            if let Some(m) = m {
                assert!(
                    m.iter().zip(&flat[i]).all(|(a, b)| a.bits() == b.bits()),
                    "step {step}, leaf {i}: mirror"
                );
            }
        }
        for (i, (t, f)) in p.iter().zip(&flat).enumerate() {
            let want = t.to_vec::<T>();
            assert!(
                want.iter().zip(f).all(|(a, b)| a.bits() == b.bits()),
                "step {step}, leaf {i}, {parts} parts: step_flat differs from step"
            );
        }
    }
    for (a, b) in opt.leaves().iter().zip(flat_opt.leaves()) {
        assert_eq!(a.shape(), b.shape());
        assert_eq!(a.to_vec::<f64>(), b.to_vec::<f64>(), "optimizer state");
    }
}

fn groups(p: &Vec<Tensor>) -> ParamGroups {
    ParamGroups::by_name(p, |name| match name {
        "1" => LeafOptions { lr_scale: 2.0, weight_decay: Some(0.0), ..Default::default() },
        "2" => LeafOptions { frozen: true, ..Default::default() },
        _ => LeafOptions::default(),
    })
}

fn all_adams<T: Elem>() {
    for parts in 1..=3 {
        check::<T, _>(|p| Adam::new(p, AdamConfig { lr: 0.01, ..Default::default() }), parts);
        check::<T, _>(
            |p| {
                Adam::new(
                    p,
                    AdamConfig {
                        lr: 0.01,
                        weight_decay: 0.1,
                        amsgrad: true,
                        maximize: true,
                        ..Default::default()
                    },
                )
            },
            parts,
        );
        check::<T, _>(
            |p| {
                AdamW::new(p, AdamWConfig { lr: 0.01, weight_decay: 0.1, ..Default::default() })
                    .with_groups(groups(p))
            },
            parts,
        );
    }
}

fn all_sgds<T: Elem>() {
    for parts in 1..=3 {
        check::<T, _>(|p| Sgd::new(p, SgdConfig { lr: 0.1, ..Default::default() }), parts);
        check::<T, _>(
            |p| {
                let c = SgdConfig {
                    lr: 0.1,
                    momentum: 0.9,
                    weight_decay: 0.01,
                    nesterov: true,
                    ..Default::default()
                };
                Sgd::new(p, c).with_groups(groups(p))
            },
            parts,
        );
        check::<T, _>(
            |p| {
                let c = SgdConfig {
                    lr: 0.1,
                    momentum: 0.9,
                    dampening: 0.1,
                    maximize: true,
                    ..Default::default()
                };
                Sgd::new(p, c)
            },
            parts,
        );
    }
}

#[test]
fn sgd_step_flat_gives_steps_bits() {
    all_sgds::<f32>();
    all_sgds::<f64>();
}

#[test]
fn adam_step_flat_gives_steps_bits_in_f32() {
    all_adams::<f32>();
}

#[test]
fn adam_step_flat_gives_steps_bits_in_f64() {
    all_adams::<f64>();
}

#[test]
fn adam_step_flat_gives_steps_bits_on_two_threads() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
    pool.install(all_adams::<f32>);
}

#[test]
fn optimizers_without_a_flat_path_change_nothing() {
    let w = Tensor::from_vec(vec![1.0f32, 2.0], &[2]);
    let mut opt = RmsProp::new(&w, RmsPropConfig::default());
    let mut p = [1.0f32, 2.0];
    let g = [1.0f32, 1.0];
    assert!(!opt.step_flat(&mut [Flat::F32(FlatLeaf {
        param: &mut p,
        grads: &[&g],
        scale: 1.0,
        mirror: None
    })]));
    assert_eq!(p, [1.0, 2.0]);
}

#[test]
#[should_panic(expected = "Adam::step_flat: state `exp_avg.0` has 2 elements but the parameter 3")]
fn a_leaf_of_the_wrong_size_is_a_caller_bug() {
    let w = Tensor::from_vec(vec![1.0f32, 2.0], &[2]);
    let mut opt = Adam::new(&w, AdamConfig::default());
    let mut p = [1.0f32, 2.0, 3.0];
    let g = [1.0f32; 3];
    opt.step_flat(&mut [Flat::F32(FlatLeaf { param: &mut p, grads: &[&g], scale: 1.0, mirror: None })]);
}
