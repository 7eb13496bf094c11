//! `#[derive(Params)]` with `#[params(crate = path)]`: the generated impl names the path it is
//! given (an alias, a path through a module) instead of `::adjoint`, so a crate that sees
//! adjoint under another name needs no `extern crate … as adjoint`. The default path is tested
//! through the facade (`crates/adjoint/tests/`).

use adjoint_core as ad;
use adjoint_core::{grad, Params, Tensor};

mod reexport {
    pub use adjoint_core as inner;
}

/// An alias, a generic field (it gets a `Params` bound through the same path) and a skipped
/// configuration field.
#[derive(Clone, Debug, ad::Params)]
#[params(crate = ad)]
struct Pair<T> {
    a: ad::Tensor,
    rest: T,
    #[params(skip)]
    name: String,
}

/// A relative path through a module, on an enum with unit, tuple and struct variants.
#[derive(Clone, Debug, Params)]
#[params(crate = reexport::inner)]
enum Shape {
    Empty,
    One(Tensor),
    Two { x: Tensor, y: Tensor },
}

fn s(x: f64) -> Tensor {
    Tensor::scalar(x)
}

#[test]
fn an_aliased_crate_path_derives_a_working_impl() {
    let p = Pair { a: s(2.0), rest: (s(3.0), s(4.0)), name: "cfg".into() };
    let names: Vec<String> = p.named_leaves().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "rest.0", "rest.1"]);
    let g = grad(|p: &Pair<(Tensor, Tensor)>| (&p.a * &p.rest.0 * &p.rest.1).sum())(&p);
    assert_eq!((g.a.item(), g.rest.0.item(), g.rest.1.item()), (12.0, 8.0, 6.0));
    assert_eq!(g.name, "cfg", "skipped fields are cloned on rebuild");
}

#[test]
fn a_module_path_derives_a_working_impl_for_enums() {
    assert_eq!(Shape::Empty.num_leaves(), 0);
    assert_eq!(Shape::One(s(1.0)).num_leaves(), 1);
    let two = Shape::Two { x: s(2.0), y: s(5.0) };
    let names: Vec<String> = two.named_leaves().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["x", "y"]);
    let g = grad(|v: &Shape| match v {
        Shape::Two { x, y } => (x * y).sum(),
        _ => unreachable!(),
    })(&two);
    match g {
        Shape::Two { x, y } => assert_eq!((x.item(), y.item()), (5.0, 2.0)),
        other => panic!("gradient changed the variant: {other:?}"),
    }
}
