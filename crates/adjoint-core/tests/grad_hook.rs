//! `value_and_grad_with_hook`: every leaf's gradient reported exactly once, equal to the
//! returned gradient, and as soon as the backward sweep has finished with it (last layers
//! first), which is what lets data-parallel training start communicating during the sweep.

use adjoint_core::{value_and_grad, value_and_grad_with_hook, Tensor};

fn layer(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    (x.matmul(w) + b).tanh()
}

#[test]
fn each_leaf_once_with_its_gradient_and_the_last_layer_first() {
    let t = |v: Vec<f64>, s: &[usize]| Tensor::from_vec(v, s);
    // Three layers, leaves in forward order: (w0, b0, w1, b1, w2, b2, unused).
    let p = vec![
        t(vec![0.1, -0.2, 0.3, 0.4], &[2, 2]),
        t(vec![0.01, 0.02], &[2]),
        t(vec![0.5, 0.1, -0.3, 0.2], &[2, 2]),
        t(vec![0.0, 0.1], &[2]),
        t(vec![0.7, -0.6], &[2, 1]),
        t(vec![0.3], &[1]),
        t(vec![9.0, 9.0, 9.0], &[3]),
    ];
    let x = t(vec![1.0, 2.0, -1.0, 0.5, 0.3, 0.3], &[3, 2]);
    let f = |p: &Vec<Tensor>| {
        let h = layer(&x, &p[0], &p[1]);
        let h = layer(&h, &p[2], &p[3]);
        (h.matmul(&p[4]) + &p[5]).square().mean()
    };
    let mut seen: Vec<(usize, Vec<f64>)> = Vec::new();
    let (v, g) = value_and_grad_with_hook(f, &p, &mut |i, g| seen.push((i, g.to_vec::<f64>())));
    let (v_ref, g_ref) = value_and_grad(f)(&p);
    assert_eq!(v.item(), v_ref.item());
    let mut order: Vec<usize> = seen.iter().map(|s| s.0).collect();
    // The unused leaf first (final before the sweep), then the last layer's before the first's.
    assert_eq!(order[0], 6);
    let pos = |i: usize| order.iter().position(|&j| j == i).unwrap();
    assert!(pos(4) < pos(2) && pos(5) < pos(3) && pos(2) < pos(0) && pos(3) < pos(1), "{order:?}");
    for (i, gi) in &seen {
        assert_eq!(gi, &g[*i].to_vec::<f64>(), "leaf {i}: the reported gradient is the returned one");
        assert_eq!(gi, &g_ref[*i].to_vec::<f64>(), "leaf {i}: as value_and_grad");
    }
    assert_eq!(seen[0].1, vec![0.0; 3], "a leaf the loss does not read has a zero gradient");
    order.sort();
    assert_eq!(order, (0..7).collect::<Vec<_>>(), "each leaf exactly once");
}

#[test]
fn an_output_independent_of_the_inputs_reports_zeros() {
    let p = (Tensor::scalar(1.0f64), Tensor::from_vec(vec![1.0f64, 2.0], &[2]));
    let mut seen = Vec::new();
    let (v, _) = value_and_grad_with_hook(|_: &(Tensor, Tensor)| Tensor::scalar(3.0f64), &p, &mut |i, g| {
        seen.push((i, g.to_vec::<f64>()))
    });
    assert_eq!(v.item(), 3.0);
    assert_eq!(seen, vec![(0, vec![0.0]), (1, vec![0.0, 0.0])]);
}
