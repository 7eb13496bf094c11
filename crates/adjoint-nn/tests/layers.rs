//! Every layer against PyTorch (f64 fixtures from `fixtures/gen_layers.py`, parameters loaded
//! by their state_dict names) and through `check_grads`.

#[path = "fixtures/fixture.rs"]
mod fixture;

use adjoint_core::testing::{check_grads, Mode, BOTH};
use adjoint_core::{grad, Params, Tensor};
use adjoint_nn::layers::*;
use adjoint_tensor::random::{normal, Key};
use adjoint_tensor::DType;
use fixture::{assert_close, get, load, load_params, ti};

const F64: DType = DType::F64;
const TOL: f64 = 1e-10;

fn key() -> Key {
    Key::new(7)
}

fn randn(seed: u64, shape: &[usize]) -> Tensor {
    Tensor::from_array(normal(&Key::new(seed), shape, F64))
}

#[test]
fn linear_matches_pytorch() {
    let fx = load("linear");
    let m = load_params(&Linear::config(3, 4).dtype(F64).init(&key()), &fx);
    assert_close(&m.forward(&get(&fx, "inputs", "x")), &get(&fx, "outputs", "y"), TOL);
}

#[test]
fn linear_grads() {
    let m = Linear::config(3, 2).dtype(F64).init(&key());
    check_grads(|(m, x): &(Linear, Tensor)| m.forward(x), &(m, randn(1, &[2, 4, 3])), 2, BOTH);
    let m = Linear::config(3, 2).bias(false).dtype(F64).init(&key());
    assert!(m.bias.is_none());
    check_grads(|(m, x): &(Linear, Tensor)| m.forward(x), &(m, randn(1, &[2, 3])), 1, BOTH);
}

#[test]
fn conv2d_matches_pytorch() {
    let fx = load("conv2d");
    let m = Conv2d::config(4, 6, [3, 2]).stride([2, 1]).padding([1, 1]).dilation([1, 2]).groups(2).dtype(F64);
    let m = load_params(&m.init(&key()), &fx);
    assert_close(&m.forward(&get(&fx, "inputs", "x")), &get(&fx, "outputs", "y"), TOL);
}

#[test]
fn conv2d_grads() {
    let m = Conv2d::config(2, 4, [2, 2]).padding([1, 0]).stride([1, 2]).groups(2).dtype(F64).init(&key());
    check_grads(|(m, x): &(Conv2d, Tensor)| m.forward(x), &(m, randn(2, &[1, 2, 3, 4])), 2, BOTH);
}

#[test]
fn conv1d_matches_pytorch_and_grads() {
    let fx = load("conv1d");
    let m = Conv1d::config(4, 6, 3).stride(2).padding(2).dilation(2).groups(2).dtype(F64);
    let m = load_params(&m.init(&key()), &fx);
    assert_close(&m.forward(&get(&fx, "inputs", "x")), &get(&fx, "outputs", "y"), TOL);
    let m = Conv1d::config(2, 3, 2).padding(1).dtype(F64).init(&key());
    check_grads(|(m, x): &(Conv1d, Tensor)| m.forward(x), &(m, randn(3, &[2, 2, 4])), 2, BOTH);
}

#[test]
fn pools_match_pytorch_and_grads() {
    let fx = load("pools");
    let (x, x1) = (get(&fx, "inputs", "x"), get(&fx, "inputs", "x1"));
    let out = |n| get(&fx, "outputs", n);
    assert_close(&MaxPool2d::with([3, 3], [2, 2], [1, 1]).forward(&x), &out("max2d_k3s2p1"), TOL);
    assert_close(&MaxPool2d::new([2, 2]).forward(&x), &out("max2d_k2"), TOL);
    assert_close(&AvgPool2d::with([2, 3], [2, 1], [1, 1], true).forward(&x), &out("avg2d_k23s21p11"), TOL);
    assert_close(
        &AvgPool2d::with([2, 3], [2, 1], [1, 1], false).forward(&x),
        &out("avg2d_k23s21p11_nopad"),
        TOL,
    );
    let mp1 = MaxPool1d { kernel: 3, stride: 2, padding: 1 };
    assert_close(&mp1.forward(&x1), &out("max1d_k3s2p1"), TOL);
    assert_close(&AvgPool1d::new(2).forward(&x1), &out("avg1d_k2"), TOL);
    // Distinct values (no ties), so max pooling is differentiable at the point.
    let x = randn(4, &[1, 2, 4, 4]);
    check_grads(move |x: &Tensor| MaxPool2d::with([3, 3], [2, 2], [1, 1]).forward(x), &x, 2, BOTH);
    check_grads(|x: &Tensor| AvgPool2d::with([2, 3], [2, 1], [1, 1], false).forward(x), &x, 2, BOTH);
    check_grads(move |x: &Tensor| mp1.forward(x), &randn(5, &[2, 2, 5]), 1, BOTH);
}

fn batchnorm_case(name: &str, cfg: BatchNormConfig) {
    let fx = load(name);
    let bn = load_params(&cfg.dtype(F64).init(&key()), &fx);
    let mut ctx = Ctx::train(key());
    assert_close(&bn.forward_with(&get(&fx, "inputs", "x1"), &mut ctx), &get(&fx, "outputs", "y1"), TOL);
    assert_close(&bn.forward_with(&get(&fx, "inputs", "x2"), &mut ctx), &get(&fx, "outputs", "y2"), TOL);
    assert_close(&bn.forward(&get(&fx, "inputs", "x3")), &get(&fx, "outputs", "y3"), TOL);
    let after = &fx["buffers_after"];
    assert_close(&bn.running_mean.as_ref().unwrap().get(), &fixture::tf(&after["running_mean"]), TOL);
    assert_close(&bn.running_var.as_ref().unwrap().get(), &fixture::tf(&after["running_var"]), TOL);
    assert_eq!(bn.num_batches_tracked.as_ref().unwrap().get().to_vec::<i64>(), vec![2]);
}

#[test]
fn batchnorm_matches_pytorch() {
    batchnorm_case("batchnorm2d", BatchNorm2d::config(3));
    batchnorm_case("batchnorm1d", BatchNorm1d::config(2).momentum(None).eps(1e-3));
}

#[test]
fn batchnorm_grads_and_buffers() {
    let bn = BatchNorm::config(2).dtype(F64).init(&key());
    let bn = bn.map_tensors(&mut |t| t + randn(9, t.shape()) * 0.3);
    let train = |(m, x): &(BatchNorm, Tensor)| m.forward_with(x, &mut Ctx::train(Key::new(0)));
    check_grads(train, &(bn.clone(), randn(6, &[3, 2, 2])), 2, BOTH);
    let eval = |(m, x): &(BatchNorm, Tensor)| m.forward(x);
    check_grads(eval, &(bn.clone(), randn(6, &[3, 2, 2])), 2, BOTH);
    // Buffers are state, not parameters: not leaves, but named for checkpoints.
    let mut names = vec![];
    bn.for_each_buffer("bn", &mut |n, _| names.push(n.to_string()));
    assert_eq!(names, ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]);
    assert_eq!(bn.named_leaves().len(), 2);
}

#[test]
fn layernorm_and_rmsnorm_match_pytorch_and_grads() {
    let fx = load("layernorm");
    let m = load_params(&LayerNorm::config(&[3, 4]).dtype(F64).init(&key()), &fx);
    assert_close(&m.forward(&get(&fx, "inputs", "x")), &get(&fx, "outputs", "y"), TOL);
    let m = m.map_tensors(&mut |t| t.narrow(0, 0, 1).reshape(&[4]));
    let m = LayerNorm { normalized_shape: vec![4], ..m };
    check_grads(|(m, x): &(LayerNorm, Tensor)| m.forward(x), &(m, randn(3, &[2, 4])), 2, BOTH);

    let fx = load("rmsnorm");
    let m = load_params(&RmsNorm::config(&[4]).dtype(F64).init(&key()), &fx);
    assert_close(&m.forward(&get(&fx, "inputs", "x")), &get(&fx, "outputs", "y"), TOL);
    check_grads(|(m, x): &(RmsNorm, Tensor)| m.forward(x), &(m, randn(3, &[2, 4])), 2, BOTH);
}

#[test]
fn embedding_matches_pytorch_and_padding_gets_no_gradient() {
    let fx = load("embedding");
    let m = load_params(&Embedding::config(7, 3).padding_idx(Some(2)).dtype(F64).init(&key()), &fx);
    let ids = ti(&fx["inputs"]["ids"]);
    assert_close(&m.forward(&ids), &get(&fx, "outputs", "y"), TOL);
    let g = grad(|m: &Embedding| m.forward(&ids).sum())(&m).weight.to_vec::<f64>();
    // rows: 0 once, 1 once, 2 padding, 5 twice, 6 once
    let rows: Vec<f64> = (0..7).map(|r| g[r * 3]).collect();
    assert_eq!(rows, [1.0, 1.0, 0.0, 0.0, 0.0, 2.0, 1.0]);
    let w = m.weight.clone();
    check_grads(
        move |w: &Tensor| Embedding { weight: w.clone(), padding_idx: None }.forward(&ids),
        &w,
        2,
        BOTH,
    );
}

#[test]
fn lstm_matches_pytorch() {
    let fx = load("lstm");
    let m = load_params(&Lstm::config(3, 4).num_layers(2).dtype(F64).init_lstm(&key()), &fx);
    let x = get(&fx, "inputs", "x");
    let (h0, c0) = (get(&fx, "inputs", "h0"), get(&fx, "inputs", "c0"));
    let (y, (h, c)) = m.forward_state(&x, Some((&h0, &c0)));
    assert_close(&y, &get(&fx, "outputs", "y"), TOL);
    assert_close(&h, &get(&fx, "outputs", "h_n"), TOL);
    assert_close(&c, &get(&fx, "outputs", "c_n"), TOL);
    assert_close(&m.forward(&x), &get(&fx, "outputs", "y_zero_state"), TOL);
}

#[test]
fn gru_matches_pytorch() {
    let fx = load("gru");
    let m = load_params(&Gru::config(3, 4).num_layers(2).dtype(F64).init_gru(&key()), &fx);
    let x = get(&fx, "inputs", "x");
    let (y, h) = m.forward_state(&x, Some(&get(&fx, "inputs", "h0")));
    assert_close(&y, &get(&fx, "outputs", "y"), TOL);
    assert_close(&h, &get(&fx, "outputs", "h_n"), TOL);
    assert_close(&m.forward(&x), &get(&fx, "outputs", "y_zero_state"), TOL);
}

#[test]
fn recurrent_grads() {
    let lstm = Lstm::config(2, 3).num_layers(2).dtype(F64).init_lstm(&key());
    let x = randn(1, &[2, 3, 2]);
    let st = (randn(2, &[2, 2, 3]), randn(3, &[2, 2, 3]));
    let f = |(m, x, (h, c)): &(Lstm, Tensor, (Tensor, Tensor))| {
        let (y, (h, c)) = m.forward_state(x, Some((h, c)));
        (y, h, c)
    };
    check_grads(f, &(lstm, x.clone(), st.clone()), 1, BOTH);
    let gru = Gru::config(2, 3).dtype(F64).init_gru(&key());
    let f = |(m, x, h): &(Gru, Tensor, Tensor)| m.forward_state(x, Some(h));
    check_grads(f, &(gru, x.clone(), st.0.narrow(0, 0, 1)), 2, BOTH);
    let lstm = Lstm::config(2, 2).dtype(F64).init_lstm(&key());
    check_grads(|(m, x): &(Lstm, Tensor)| m.forward(x), &(lstm, x.narrow(1, 0, 2)), 2, &[Mode::Rev]);
}

#[test]
fn mha_matches_pytorch_and_grads() {
    let fx = load("mha");
    let m = load_params(&MultiheadSelfAttention::config(6, 2).dtype(F64).init(&key()), &fx);
    let x = get(&fx, "inputs", "x");
    assert_close(&m.forward(&x), &get(&fx, "outputs", "y"), TOL);
    let causal = MultiheadSelfAttention { causal: true, ..m.clone() };
    assert_close(&causal.forward(&x), &get(&fx, "outputs", "y_causal"), TOL);
    // An explicit mask equals the causal flag.
    let masked = m.forward_masked(&x, Some(&causal_mask(4)), &mut Ctx::eval());
    assert_close(&masked, &get(&fx, "outputs", "y_causal"), TOL);
    let small = MultiheadSelfAttention::config(4, 2).causal(true).dtype(F64).init(&key());
    let small = small.map_tensors(&mut |t| t + randn(11, t.shape()) * 0.1);
    check_grads(
        |(m, x): &(MultiheadSelfAttention, Tensor)| m.forward(x),
        &(small, randn(8, &[2, 3, 4])),
        2,
        BOTH,
    );
}

#[test]
fn transformer_matches_pytorch() {
    for (name, norm_first, gelu) in [("transformer_post", false, false), ("transformer_pre", true, true)] {
        let fx = load(name);
        let cfg = TransformerEncoderLayer::config(4, 2).dim_feedforward(8).dropout(0.0);
        let m = load_params(&cfg.norm_first(norm_first).gelu(gelu).dtype(F64).init(&key()), &fx);
        let x = get(&fx, "inputs", "x");
        assert_close(&m.forward(&x), &get(&fx, "outputs", "y"), TOL);
        let y = m.forward_masked(&x, Some(&causal_mask(3)), &mut Ctx::eval());
        assert_close(&y, &get(&fx, "outputs", "y_causal"), TOL);
    }
}

#[test]
fn transformer_grads() {
    for norm_first in [false, true] {
        let cfg = TransformerEncoderLayer::config(4, 2).dim_feedforward(6).dropout(0.0).causal(true);
        let m = cfg.norm_first(norm_first).gelu(true).dtype(F64).init(&key());
        let f = |(m, x): &(TransformerEncoderLayer, Tensor)| m.forward(x);
        check_grads(f, &(m, randn(3, &[1, 3, 4])), 1, BOTH);
    }
}

#[test]
fn sequential_and_tuples_match_pytorch() {
    let fx = load("sequential");
    let k = key().split(2);
    let x = get(&fx, "inputs", "x");
    let tuple = (
        Linear::config(4, 5).dtype(F64).init(&k[0]),
        Relu,
        Linear::config(5, 3).dtype(F64).init(&k[1]),
        Tanh,
    );
    let tuple = load_params(&tuple, &fx);
    assert_close(&tuple.forward(&x), &get(&fx, "outputs", "y"), TOL);
    let seq = Sequential::new()
        .add(Linear::config(4, 5).dtype(F64).init(&k[0]))
        .add(Relu)
        .add(Linear::config(5, 3).dtype(F64).init(&k[1]))
        .add(Tanh);
    let seq = load_params(&seq, &fx);
    assert_close(&seq.forward(&x), &get(&fx, "outputs", "y"), TOL);
    check_grads(|(m, x): &(Sequential, Tensor)| m.forward(x), &(seq, x), 2, BOTH);
}

#[test]
fn activations_match_pytorch_and_grads() {
    let fx = load("activations");
    let x = get(&fx, "inputs", "x");
    let cases: Vec<(&str, Layer)> = vec![
        ("relu", Relu.into()),
        ("leaky_relu", LeakyRelu { slope: 0.1 }.into()),
        ("gelu", Gelu.into()),
        ("silu", Silu.into()),
        ("tanh", Tanh.into()),
        ("sigmoid", Sigmoid.into()),
        ("softmax", Softmax { axis: 1 }.into()),
        ("log_softmax", LogSoftmax { axis: 1 }.into()),
    ];
    for (name, layer) in cases {
        assert_close(&layer.forward(&x), &get(&fx, "outputs", name), TOL);
        check_grads(move |x: &Tensor| layer.forward(x), &x, 2, BOTH);
    }
}

#[test]
fn dropout_is_seeded_scaled_and_off_in_eval() {
    let d = Dropout::new(0.25);
    let x = randn(1, &[4000]);
    assert_eq!(d.forward(&x).to_vec::<f64>(), x.to_vec::<f64>());
    let y1 = d.forward_with(&x, &mut Ctx::train(Key::new(3))).to_vec::<f64>();
    let y2 = d.forward_with(&x, &mut Ctx::train(Key::new(3))).to_vec::<f64>();
    let y3 = d.forward_with(&x, &mut Ctx::train(Key::new(4))).to_vec::<f64>();
    assert_eq!(y1, y2);
    assert_ne!(y1, y3);
    let xv = x.to_vec::<f64>();
    let dropped = y1.iter().filter(|v| **v == 0.0).count() as f64 / 4000.0;
    assert!((dropped - 0.25).abs() < 0.03, "dropped fraction {dropped}");
    for (a, b) in y1.iter().zip(&xv) {
        assert!(*a == 0.0 || (a - b / 0.75).abs() < 1e-12);
    }
    // Two dropout layers in one pass draw different masks.
    let mut ctx = Ctx::train(Key::new(3));
    let a = d.forward_with(&x, &mut ctx).to_vec::<f64>();
    let b = d.forward_with(&x, &mut ctx).to_vec::<f64>();
    assert_ne!(a, b);
    assert_eq!(Dropout::new(1.0).forward_with(&x, &mut ctx).to_vec::<f64>(), vec![0.0; 4000]);
    check_grads(
        |x: &Tensor| Dropout::new(0.5).forward_with(x, &mut Ctx::train(Key::new(1))),
        &randn(2, &[10]),
        2,
        BOTH,
    );
}

#[test]
fn misuse_panics_with_a_message() {
    let lin = Linear::new(3, 2, &key());
    let r = std::panic::catch_unwind(|| lin.forward(&Tensor::zeros(&[2, 4])));
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("Linear") && msg.contains("[2, 4]"), "{msg}");
    let r = std::panic::catch_unwind(|| Conv2d::config(3, 4, [3, 3]).groups(2).init(&key()));
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("groups 2"), "{msg}");
    let lstm = Lstm::new(3, 2, &key());
    let r = std::panic::catch_unwind(|| lstm.forward(&Tensor::zeros(&[2, 4, 5])));
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("Lstm") && msg.contains("[2, 4, 5]"), "{msg}");
    let r = std::panic::catch_unwind(|| Dropout::new(1.5));
    assert!(r.is_err());
    let emb = Embedding::new(3, 2, &key());
    let r = std::panic::catch_unwind(|| emb.forward(&Tensor::from_vec(vec![3i64], &[1])));
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("out of range"), "{msg}");
}

#[test]
fn default_inits_have_pytorch_bounds() {
    let lin = Linear::new(50, 40, &key());
    let b = 1.0 / 50f64.sqrt();
    let w = lin.weight.to_vec::<f64>();
    assert!(w.iter().all(|v| v.abs() <= b));
    assert!(w.iter().any(|v| v.abs() > 0.9 * b), "should fill the range");
    let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
    assert!((var / (b * b / 3.0) - 1.0).abs() < 0.1, "variance of U(-b, b) is b²/3, got {var}");
    assert!(lin.bias.unwrap().to_vec::<f64>().iter().all(|v| v.abs() <= b));
    let conv = Conv2d::config(4, 8, [3, 3]).groups(2).init(&key());
    let b = 1.0 / ((2 * 9) as f64).sqrt();
    assert!(conv.weight.to_vec::<f64>().iter().all(|v| v.abs() <= b));
    let lstm = Lstm::config(5, 16).num_layers(2).init_lstm(&key());
    let names: Vec<String> = lstm.named_leaves().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[4..], ["weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"]);
    assert!(lstm.leaves().iter().all(|t| t.to_vec::<f64>().iter().all(|v| v.abs() <= 0.25)));
    let att = MultiheadSelfAttention::new(8, 2, &key());
    assert!(att.in_proj_bias.unwrap().to_vec::<f64>().iter().all(|v| *v == 0.0));
    assert_eq!(
        Linear::new(3, 2, &key()).weight.to_vec::<f32>(),
        Linear::new(3, 2, &key()).weight.to_vec::<f32>()
    );
    let emb = Embedding::config(100, 50).padding_idx(Some(3)).init(&key()).weight.to_vec::<f64>();
    assert!(emb[150..200].iter().all(|v| *v == 0.0));
    let std = (emb.iter().map(|v| v * v).sum::<f64>() / emb.len() as f64).sqrt();
    assert!((std - 1.0).abs() < 0.05, "N(0, 1) rows, std {std}");
}

#[test]
fn modes_compose_in_models() {
    let k = key().split(3);
    let net = (
        Conv2d::config(2, 3, [3, 3]).padding([1, 1]).dtype(F64).init(&k[0]),
        BatchNorm2d::config(3).dtype(F64).init(&k[1]),
        Relu,
        Dropout::new(0.3),
        Flatten::default(),
        Linear::config(3 * 16, 2).dtype(F64).init(&k[2]),
    );
    let mut buffers = vec![];
    net.for_each_buffer("", &mut |n, _| buffers.push(n.to_string()));
    assert_eq!(buffers, ["1.running_mean", "1.running_var", "1.num_batches_tracked"]);
    let x = randn(3, &[2, 2, 4, 4]);
    // Evaluation is deterministic and does not touch the running statistics.
    assert_eq!(net.forward(&x).to_vec::<f64>(), net.forward(&x).to_vec::<f64>());
    assert_eq!(net.1.running_mean.as_ref().unwrap().get().to_vec::<f64>(), vec![0.0; 3]);
    // A training pass under `grad` with a fixed key is an ordinary function of the parameters.
    let train = move |(m, x): &(_, Tensor)| {
        let m: &(Conv2d, BatchNorm, Relu, Dropout, Flatten, Linear) = m;
        m.forward_with(x, &mut Ctx::train(Key::new(9)))
    };
    check_grads(train, &(net.clone(), x.clone()), 1, BOTH);
    assert!(net.1.num_batches_tracked.as_ref().unwrap().get().item() > 0.0);

    // Dropout between recurrent layers acts in training only.
    let lstm = Lstm::config(2, 3).num_layers(2).dropout(0.5).dtype(F64).init_lstm(&key());
    let plain = Lstm { dropout: 0.0, ..lstm.clone() };
    let xs = randn(4, &[2, 3, 2]);
    assert_eq!(lstm.forward(&xs).to_vec::<f64>(), plain.forward(&xs).to_vec::<f64>());
    let yt = lstm.forward_with(&xs, &mut Ctx::train(Key::new(1))).to_vec::<f64>();
    assert_ne!(yt, plain.forward(&xs).to_vec::<f64>());

    // A per-example [B, T, T] mask equal to the causal mask gives the causal result.
    let att = MultiheadSelfAttention::config(4, 2).dtype(F64).init(&key());
    let xa = randn(5, &[2, 3, 4]);
    let m3 = Tensor::stack(&[&causal_mask(3), &causal_mask(3)], 0);
    let a = att.forward_masked(&xa, Some(&m3), &mut Ctx::eval()).to_vec::<f64>();
    let b = MultiheadSelfAttention { causal: true, ..att.clone() }.forward(&xa).to_vec::<f64>();
    assert_eq!(a, b);
}
