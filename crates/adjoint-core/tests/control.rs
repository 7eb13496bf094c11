//! `fori_loop` and `scan` against hand-written loops, with their derivatives and under `vmap`
//! and `jit`.

use adjoint_core::{fori_loop, grad, jit, scan, vmap, Tensor};

fn v(x: &[f64]) -> Tensor {
    Tensor::from_slice(x, &[x.len()])
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec::<f64>().iter().map(|x| x.to_bits()).collect()
}

fn body(i: usize, c: &(Tensor, Tensor)) -> (Tensor, Tensor) {
    ((&c.0 * &c.1).sin() + i as f64, c.1.exp() * 0.5)
}

#[test]
fn fori_loop_is_the_loop() {
    let init = (v(&[0.1, 0.2]), v(&[0.3, -0.4]));
    let got = fori_loop(2, 6, body, init.clone());
    let mut want = init.clone();
    for i in 2..6 {
        want = body(i, &want);
    }
    assert_eq!((bits(&got.0), bits(&got.1)), (bits(&want.0), bits(&want.1)));
    let empty = fori_loop(3, 3, body, init.clone());
    assert_eq!(bits(&empty.0), bits(&init.0));
    let g = grad(|x: &Tensor| fori_loop(0, 3, |_, y: &Tensor| y.sin() * x, x.clone()).sum())(&v(&[0.5, 1.0]));
    let gl = grad(|x: &Tensor| {
        let mut y = x.clone();
        for _ in 0..3 {
            y = y.sin() * x;
        }
        y.sum()
    })(&v(&[0.5, 1.0]));
    assert_eq!(bits(&g), bits(&gl));
}

fn step(c: &Tensor, x: &(Tensor, Tensor)) -> (Tensor, (Tensor, Tensor)) {
    let h = (c * &x.0 + &x.1).tanh();
    (h.clone(), (h.sum(), &h * 2.0))
}

#[test]
fn scan_is_the_loop_with_stacked_outputs() {
    let xs = (
        Tensor::from_slice(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], &[3, 2]),
        Tensor::from_slice(&[1.0, -1.0, 0.5], &[3, 1]),
    );
    let init = v(&[0.5, -0.5]);
    let (c, (s, h)) = scan(step, &init, &xs);
    let mut carry = init.clone();
    let (mut ss, mut hs) = (vec![], vec![]);
    for i in 0..3 {
        let x = (xs.0.narrow(0, i, 1).squeeze(0), xs.1.narrow(0, i, 1).squeeze(0));
        let (c2, (a, b)) = step(&carry, &x);
        carry = c2;
        ss.push(a);
        hs.push(b);
    }
    assert_eq!(bits(&c), bits(&carry));
    assert_eq!((s.shape(), h.shape()), (&[3][..], &[3, 2][..]));
    assert_eq!(bits(&s), bits(&Tensor::stack(&ss.iter().collect::<Vec<_>>(), 0)));
    assert_eq!(bits(&h.flatten()), bits(&Tensor::stack(&hs.iter().collect::<Vec<_>>(), 0).flatten()));

    // Derivatives with respect to the initial carry and the scanned inputs, and under jit/vmap.
    let loss = |p: &(Tensor, Tensor, Tensor)| {
        let (c, (s, h)) = scan(step, &p.0, &(p.1.clone(), p.2.clone()));
        c.sum() + s.sum() + h.sum()
    };
    let p = (init.clone(), xs.0.clone(), xs.1.clone());
    let g = grad(loss)(&p);
    let gj = jit(grad(loss))(&p);
    assert_eq!((bits(&g.0), bits(&g.1.flatten())), (bits(&gj.0), bits(&gj.1.flatten())));
    let inits = Tensor::stack(&[&init, &(&init * 2.0)], 0);
    let batched = vmap(|c0: &Tensor| scan(step, c0, &xs).0)(&inits);
    assert_eq!(bits(&batched.narrow(0, 1, 1).squeeze(0)), bits(&scan(step, &(&init * 2.0), &xs).0));
}

#[test]
fn scan_over_zero_steps_keeps_the_shapes() {
    let xs = (Tensor::zeros(&[0, 2]).to_f64(), Tensor::zeros(&[0, 1]).to_f64());
    let (c, (s, h)) = scan(step, &v(&[1.0, 2.0]), &xs);
    assert_eq!(bits(&c), bits(&v(&[1.0, 2.0])));
    assert_eq!((s.shape(), h.shape()), (&[0][..], &[0, 2][..]));
}

#[test]
#[should_panic(expected = "adjoint: scan: the leaves of xs have different lengths along axis 0 (3 and 2)")]
fn scan_refuses_ragged_inputs() {
    scan(step, &v(&[1.0, 2.0]), &(Tensor::zeros(&[3, 2]).to_f64(), Tensor::zeros(&[2, 1]).to_f64()));
}
