//! Passes: functions from a program to an equivalent program. Each is tested on the pattern it
//! targets (`tests/jit_passes.rs`); in debug builds the checker runs after every pass.

mod cse;
mod dce;
mod fold;

pub use cse::cse;
pub use dce::dce;
pub use fold::{fold_constants, FOLD_LIMIT};

use super::ir::Ir;

/// The pipeline `jit` runs on a freshly staged program: constant folding, then
/// common-subexpression elimination, then dead-code elimination (which also drops the
/// constants the first two left unread).
pub fn optimize(ir: Ir) -> Ir {
    let mut ir = ir;
    for (name, pass) in [("fold_constants", fold_constants as fn(Ir) -> Ir), ("cse", cse), ("dce", dce)] {
        ir = pass(ir);
        if cfg!(debug_assertions) {
            ir.assert_valid(name);
        }
    }
    ir
}
