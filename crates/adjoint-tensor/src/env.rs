//! The `ADJOINT_*` environment knobs (thresholds and on/off switches for measuring and
//! debugging), read through one parser so that every variable reads the same way and a value
//! that does not parse is reported — one line on stderr naming the variable, the value and
//! what is used instead — rather than silently ignored. Callers read most knobs once (a
//! `OnceLock`), so the line appears once per variable; `ADJOINT_CONV_WINOGRAD` is read per
//! call (a benchmark toggles it).

use std::fmt::Display;
use std::str::FromStr;

/// A numeric knob: the variable `name` parsed as `T` (surrounding spaces ignored), or `default`
/// when it is unset or empty, or — with a warning on stderr — when it does not parse.
///
/// ```
/// // Unset: the default.
/// assert_eq!(adjoint_tensor::env::knob("ADJOINT_DOC_EXAMPLE_UNSET", 7usize), 7);
/// ```
pub fn knob<T: FromStr + Display>(name: &str, default: T) -> T {
    let value = std::env::var(name).ok();
    parse_knob(name, value.as_deref(), default).unwrap_or_else(|(used, message)| {
        eprintln!("{message}");
        used
    })
}

/// An on/off knob: `0`, `false`, `off`, `no` turn it off and `1`, `true`, `on`, `yes` on (any
/// case, spaces ignored); unset or empty gives `default`, anything else `default` with a
/// warning on stderr.
///
/// ```
/// assert!(adjoint_tensor::env::switch("ADJOINT_DOC_EXAMPLE_UNSET", true));
/// ```
pub fn switch(name: &str, default: bool) -> bool {
    let value = std::env::var(name).ok();
    parse_switch(name, value.as_deref(), default).unwrap_or_else(|(used, message)| {
        eprintln!("{message}");
        used
    })
}

/// [`knob`]'s rule: `Ok(value)`, or `Err((default, warning))` for a value that does not parse.
fn parse_knob<T: FromStr + Display>(name: &str, value: Option<&str>, default: T) -> Result<T, (T, String)> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            let message = format!("adjoint: {name}={v:?} is not a valid number; using {default}");
            (default, message)
        }),
    }
}

/// [`switch`]'s rule, as [`parse_knob`].
fn parse_switch(name: &str, value: Option<&str>, default: bool) -> Result<bool, (bool, String)> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(default),
        Some("0" | "false" | "off" | "no") => Ok(false),
        Some("1" | "true" | "on" | "yes") => Ok(true),
        Some(v) => {
            let state = if default { "on" } else { "off" };
            Err((default, format!("adjoint: {name}={v:?} is neither 0 nor 1; leaving it {state}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_and_bad_values_fall_back_with_a_message() {
        assert_eq!(parse_knob("K", None, 5usize), Ok(5));
        assert_eq!(parse_knob("K", Some("  "), 5usize), Ok(5));
        assert_eq!(parse_knob("K", Some(" 12 "), 5usize), Ok(12));
        let (used, message) = parse_knob("ADJOINT_X", Some("4M"), 5usize).unwrap_err();
        assert_eq!(used, 5);
        assert_eq!(message, "adjoint: ADJOINT_X=\"4M\" is not a valid number; using 5");
        assert!(parse_knob("K", Some("-1"), 5usize).is_err());
    }

    #[test]
    fn switches_read_the_usual_spellings() {
        for (v, want) in [
            ("0", false),
            ("off", false),
            (" FALSE ", false),
            ("no", false),
            ("1", true),
            ("On", true),
            ("yes", true),
        ] {
            assert_eq!(parse_switch("S", Some(v), !want), Ok(want), "{v}");
        }
        assert_eq!(parse_switch("S", None, false), Ok(false));
        assert_eq!(parse_switch("S", Some(""), true), Ok(true));
        let (used, message) = parse_switch("ADJOINT_Y", Some("maybe"), true).unwrap_err();
        assert!(used);
        assert_eq!(message, "adjoint: ADJOINT_Y=\"maybe\" is neither 0 nor 1; leaving it on");
    }
}
