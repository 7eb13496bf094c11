//! The `adjoint-gradbench` binary: GradBench's protocol on stdin/stdout (see the library docs).

use std::io::{BufRead, Read, Write};

use adjoint_gradbench::{handle, max_message_bytes, Limits};
use serde_json::json;

fn main() {
    let limits = match Limits::from_env() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("adjoint-gradbench: {e}");
            std::process::exit(2);
        }
    };
    // Panics inside evals are caught and reported in the response; keep stderr quiet for them.
    std::panic::set_hook(Box::new(|_| {}));
    let max_line = max_message_bytes(&limits);
    let mut stdin = std::io::stdin().lock();
    let stdout = std::io::stdout();
    let mut line = Vec::new();
    loop {
        line.clear();
        // At most `max_line` bytes (plus the newline) of one message are held.
        match (&mut stdin).take(max_line + 1).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let response = if line.last() != Some(&b'\n') && line.len() as u64 > max_line {
            if skip_line(&mut stdin).is_err() {
                break;
            }
            let error =
                format!("message longer than {max_line} bytes (the limit is a 32nd of the memory budget)");
            json!({"id": null, "success": false, "error": error})
        } else {
            match std::str::from_utf8(&line) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => handle(text, &limits).json,
                Err(e) => {
                    json!({"id": null, "success": false, "error": format!("message is not UTF-8: {e}")})
                }
            }
        };
        let mut out = stdout.lock();
        if writeln!(out, "{response}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
}

/// Discard input up to and including the next newline (or EOF), without holding it.
fn skip_line(input: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    }
}
