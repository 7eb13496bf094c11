//! The `adjoint-gradbench` binary: GradBench's protocol on stdin/stdout (see the library docs).

use std::io::{BufRead, Write};

fn main() {
    // Panics inside evals are caught and reported in the response; keep stderr quiet for them.
    std::panic::set_hook(Box::new(|_| {}));
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let response = adjoint_gradbench::respond(&line);
        let mut out = stdout.lock();
        if writeln!(out, "{response}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
}
