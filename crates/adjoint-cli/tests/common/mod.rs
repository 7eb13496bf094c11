//! What the binary's tests share.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `adjoint` binary with `HOME` at `home` (its default key lives there), no key or
/// output folder from the environment, and the repository's `data/`.
pub fn adjoint(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adjoint"))
        .args(args)
        .env("HOME", home)
        .env_remove("ADJOINT_KEY")
        .env_remove("ADJOINT_OUT")
        .env("ADJOINT_DATA", Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data"))
        .output()
        .expect("run adjoint")
}
