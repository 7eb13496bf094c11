//! `ht`: not implemented yet; `ht` is not in [`MODULES`](crate::MODULES), so `define` refuses it
//! and this is only reached by an `evaluate` sent without a successful `define`.

use serde_json::Value;

use crate::Evaluated;

/// Not implemented yet: the module is not offered in `define`.
pub fn evaluate(_function: &str, _input: &Value) -> Option<Result<Evaluated, String>> {
    Some(Err("ht: not implemented".into()))
}
