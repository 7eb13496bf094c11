//! Passes: functions from a program to an equivalent program. Each is tested on the pattern it
//! targets (`tests/jit_passes.rs`); in debug builds the checker runs after every pass.

mod cse;
mod dce;
mod fold;
mod fuse;
mod simplify;

pub use cse::cse;
pub use dce::dce;
pub use fold::{fold_constants, FOLD_LIMIT};
pub use fuse::{classify, fuse};
pub use simplify::simplify;

use super::ir::Ir;

/// The pipeline `jit` runs on a freshly staged program: constant folding, algebraic
/// simplification, common-subexpression elimination, then dead-code elimination (which also
/// drops the constants and equations the others left unread). [`fuse`] runs after these, on
/// the plan for calls with no transform active only (see [`crate::jit::exec`]).
pub fn optimize(ir: Ir) -> Ir {
    let mut ir = ir;
    let pipeline = [
        ("fold_constants", fold_constants as fn(Ir) -> Ir),
        ("simplify", simplify),
        ("cse", cse),
        ("dce", dce),
    ];
    for (name, pass) in pipeline {
        ir = pass(ir);
        if cfg!(debug_assertions) {
            ir.assert_valid(name);
        }
    }
    ir
}
