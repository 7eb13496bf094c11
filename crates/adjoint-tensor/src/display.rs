//! NumPy-style printing: `impl Display for Array`.
//!
//! ```
//! use adjoint_tensor::Array;
//! let a = Array::from_vec(vec![1.0f32, 2.5, -3.0, 4.0], &[2, 2]);
//! assert_eq!(a.to_string(), "array([[ 1. ,  2.5],\n       [-3. ,  4. ]], dtype=float32)");
//! ```
//!
//! ## Design choices
//! - **Output follows NumPy's `repr`** (NumPy 2.2, default print options) so it reads the same
//!   as the reference implementations we test against: the `array(` prefix, hanging indents,
//!   rows wrapped at 75 columns, a blank line between blocks of rank-3 and higher arrays,
//!   `True`/`False` for booleans, and arrays of more than 1000 elements summarised with `...`
//!   showing the 3 leading and trailing items of each long dimension (plus `shape=(…)`).
//! - **Floats use NumPy's rules**: each value's shortest round-trip digits (for its own type,
//!   so `0.1f32` prints `0.1`), at most 8 fractional digits (`{:.3}` lowers that), trailing
//!   zeros trimmed but the point kept (`1.`), and one column layout for the whole array —
//!   integer parts right-aligned, fractions left-aligned. Scientific notation is used for the
//!   whole array when a magnitude reaches `1e8`, falls below `1e-4`, or the largest is over
//!   1000 times the smallest. Only the printed elements decide the layout.
//! - **The dtype is always shown** (`dtype=float64`, `dtype=int64` too, unlike NumPy, where
//!   those are implied): adjoint's default float is `float32`, so no dtype goes without saying.

use std::fmt;

use crate::array::Array;
use crate::dtype::{DType, Element, FloatElement};

/// Line width, as NumPy's default `linewidth`.
const LINE_WIDTH: usize = 75;
/// Arrays with more elements than this are summarised (NumPy's `threshold`).
const THRESHOLD: usize = 1000;
/// Items shown at each end of a summarised dimension (NumPy's `edgeitems`).
const EDGE_ITEMS: usize = 3;
/// Maximum fractional digits of floats (NumPy's `precision`).
const DEFAULT_PRECISION: usize = 8;

impl fmt::Display for Array {
    /// NumPy's `repr`; a precision (`{:.3}`) caps the fractional digits of floats.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&repr(self, f.precision().unwrap_or(DEFAULT_PRECISION)))
    }
}

/// Shape as a Python tuple: `(2000,)`, `(3, 4)`.
fn shape_tuple(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

fn repr(a: &Array, precision: usize) -> String {
    let prefix = "array(";
    let shape = a.shape();
    let summarize = a.numel() > THRESHOLD;
    let lst = if a.numel() == 0 {
        "[]".to_string()
    } else {
        let shown: Vec<Vec<usize>> = shape
            .iter()
            .map(|&n| {
                if summarize && n > 2 * EDGE_ITEMS {
                    (0..EDGE_ITEMS).chain(n - EDGE_ITEMS..n).collect()
                } else {
                    (0..n).collect()
                }
            })
            .collect();
        let strs = match a.dtype() {
            DType::F32 => float_strings(&collect_shown::<f32>(a, &shown), precision),
            DType::F64 => float_strings(&collect_shown::<f64>(a, &shown), precision),
            DType::I64 => {
                let v: Vec<String> = collect_shown::<i64>(a, &shown).iter().map(|x| x.to_string()).collect();
                let w = v.iter().map(|s| s.len()).max().unwrap_or(0);
                v.into_iter().map(|s| format!("{s:>w$}")).collect()
            }
            DType::Bool => {
                let t = if a.rank() == 0 { "True" } else { " True" };
                collect_shown::<bool>(a, &shown)
                    .iter()
                    .map(|&b| if b { t } else { "False" }.to_string())
                    .collect()
            }
        };
        let ctx = Ctx {
            dims: shown.iter().map(|s| s.len()).collect(),
            summarized: shape.iter().map(|&n| summarize && n > 2 * EDGE_ITEMS).collect(),
            strs,
        };
        // The hanging indent skips "array(" and "["; the width leaves room for the ")".
        let hanging = " ".repeat(prefix.len() + 1);
        ctx.recurse(0, 0, &hanging, LINE_WIDTH - 1)
    };
    let mut extras = Vec::new();
    if (a.numel() == 0 && shape != [0]) || summarize {
        extras.push(format!("shape={}", shape_tuple(shape)));
    }
    extras.push(format!("dtype={}", a.dtype()));
    let arr_str = format!("{prefix}{lst},");
    let extra_str = format!("{})", extras.join(", "));
    let last_line_len = arr_str.len() - arr_str.rfind('\n').map_or(0, |i| i + 1);
    let spacer = if last_line_len + extra_str.len() + 1 > LINE_WIDTH {
        format!("\n{}", " ".repeat(prefix.len()))
    } else {
        " ".to_string()
    };
    format!("{arr_str}{spacer}{extra_str}")
}

/// The shown elements (the cross product of `shown` indices), in row-major order.
fn collect_shown<T: Element>(a: &Array, shown: &[Vec<usize>]) -> Vec<T> {
    let l = a.layout();
    let data = a.storage_slice::<T>();
    let total: usize = shown.iter().map(|s| s.len()).product();
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0usize; shown.len()];
    for _ in 0..total {
        let o = l.offset as isize
            + idx.iter().enumerate().map(|(d, &i)| shown[d][i] as isize * l.strides[d]).sum::<isize>();
        out.push(data[o as usize]);
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < shown[d].len() {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// Pre-formatted shown elements and the grid they sit in.
struct Ctx {
    dims: Vec<usize>,
    summarized: Vec<bool>,
    strs: Vec<String>,
}

impl Ctx {
    /// NumPy's `_formatArray` recursion (non-legacy mode), over the grid of shown elements.
    fn recurse(&self, axis: usize, base: usize, hanging: &str, width: usize) -> String {
        let nd = self.dims.len();
        if axis == nd {
            return self.strs[base].clone();
        }
        let next_hanging = format!("{hanging} ");
        let next_width = width.saturating_sub(1);
        let stride: usize = self.dims[axis + 1..].iter().product();
        let items: Vec<Option<usize>> = if self.summarized[axis] {
            (0..EDGE_ITEMS).map(Some).chain([None]).chain((EDGE_ITEMS..2 * EDGE_ITEMS).map(Some)).collect()
        } else {
            (0..self.dims[axis]).map(Some).collect()
        };
        let word = |it: &Option<usize>| match it {
            Some(i) => self.recurse(axis + 1, base + i * stride, &next_hanging, next_width),
            None => "...".to_string(),
        };
        let mut s = String::new();
        if axis + 1 == nd {
            // Rows: wrap elements that would pass the width (minus room for "," or "]").
            let elem_width = width.saturating_sub(1);
            let mut line = hanging.to_string();
            for (j, it) in items.iter().enumerate() {
                let w = word(it);
                if line.len() + w.len() > elem_width && line.len() > hanging.len() {
                    s.push_str(line.trim_end());
                    s.push('\n');
                    line = hanging.to_string();
                }
                line.push_str(&w);
                if j + 1 < items.len() {
                    line.push_str(", ");
                }
            }
            s.push_str(&line);
        } else {
            let line_sep = format!(",{}", "\n".repeat(nd - axis - 1));
            for (j, it) in items.iter().enumerate() {
                s.push_str(hanging);
                s.push_str(&word(it));
                if j + 1 < items.len() {
                    s.push_str(&line_sep);
                }
            }
        }
        format!("[{}]", &s[hanging.len()..])
    }
}

/// Shortest round-trip digits of `|x|` and the decimal exponent: `1.25e-3` → `("125", -3)`.
fn sci_digits(s: &str) -> (String, i32) {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    (mant.replace('.', ""), exp.parse().unwrap_or(0))
}

/// `|x|` positionally with its shortest digits, rounded to at most `p` fractional digits,
/// trailing zeros trimmed: the integer and fractional parts.
fn positional<T: FloatElement + fmt::LowerExp>(x: T, p: usize) -> (String, String) {
    let ax = x.abs();
    let (digits, e) = sci_digits(&format!("{ax:e}"));
    let frac_len = (digits.len() as i32 - 1 - e).max(0) as usize;
    if frac_len <= p {
        if e >= 0 {
            let e = e as usize;
            let mut int = digits.chars().take(e + 1).collect::<String>();
            while int.len() < e + 1 {
                int.push('0');
            }
            (int, digits.chars().skip(e + 1).collect())
        } else {
            ("0".to_string(), "0".repeat((-e - 1) as usize) + &digits)
        }
    } else {
        let s = format!("{ax:.p$}");
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        (int.to_string(), frac.trim_end_matches('0').to_string())
    }
}

/// `|x|` in scientific notation with its shortest digits, rounded to at most `p` mantissa
/// fractional digits, trailing zeros trimmed: leading digit, fraction, exponent.
fn scientific<T: FloatElement + fmt::LowerExp>(x: T, p: usize) -> (String, String, i32) {
    let ax = x.abs();
    let (mut digits, mut e) = sci_digits(&format!("{ax:e}"));
    if digits.len() - 1 > p {
        (digits, e) = sci_digits(&format!("{ax:.p$e}"));
        let trimmed = digits.trim_end_matches('0');
        digits = if trimmed.is_empty() { "0".to_string() } else { trimmed.to_string() };
    }
    (digits[..1].to_string(), digits[1..].to_string(), e)
}

/// NumPy's `FloatingFormat` in `maxprec` mode: every element formatted to a common layout.
fn float_strings<T: FloatElement + fmt::LowerExp>(vals: &[T], precision: usize) -> Vec<String> {
    let finite: Vec<T> = vals.iter().copied().filter(|x| x.is_finite()).collect();
    let nonzero: Vec<f64> =
        finite.iter().filter(|x| !x.is_zero()).map(|x| Element::to_f64(x.abs())).collect();
    let exp_mode = !nonzero.is_empty() && {
        let max = nonzero.iter().copied().fold(f64::MIN, f64::max);
        let min = nonzero.iter().copied().fold(f64::MAX, f64::min);
        max >= 1e8 || min < 1e-4 || max / min > 1000.0
    };
    let sign = |x: T| if x.is_sign_negative() { "-" } else { "" };
    // Integer part (with sign), fraction, and exponent (scientific mode only) of each finite value.
    let parts: Vec<(String, String, i32)> = finite
        .iter()
        .map(|&x| {
            if exp_mode {
                let (d, f, e) = scientific(x, precision);
                (format!("{}{d}", sign(x)), f, e)
            } else {
                let (i, f) = positional(x, precision);
                (format!("{}{i}", sign(x)), f, 0)
            }
        })
        .collect();
    let mut pad_left = parts.iter().map(|p| p.0.len()).max().unwrap_or(0);
    let frac_len = parts.iter().map(|p| p.1.len()).max().unwrap_or(0);
    let exp_size = parts.iter().map(|p| p.2.unsigned_abs().to_string().len()).max().unwrap_or(0).max(2);
    let pad_right = if finite.is_empty() {
        0
    } else if exp_mode {
        exp_size + 2 + frac_len
    } else {
        frac_len
    };
    if finite.len() != vals.len() {
        let neginf = vals.iter().any(|x| x.is_infinite() && x.is_sign_negative()) as usize;
        let offset = pad_right + 1;
        pad_left = pad_left.max(3usize.saturating_sub(offset)).max((3 + neginf).saturating_sub(offset));
    }
    let mut finite_strs = parts.iter().map(|(i, f, e)| {
        if exp_mode {
            let es = if *e < 0 { '-' } else { '+' };
            format!("{i:>pad_left$}.{f:0<frac_len$}e{es}{:0>exp_size$}", e.unsigned_abs())
        } else {
            format!("{i:>pad_left$}.{f:<frac_len$}")
        }
    });
    let width = pad_left + pad_right + 1;
    vals.iter()
        .map(|x| {
            if x.is_nan() {
                format!("{:>width$}", "nan")
            } else if x.is_infinite() {
                format!("{:>width$}", if x.is_sign_negative() { "-inf" } else { "inf" })
            } else {
                finite_strs.next().expect("one string per finite value")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_layouts() {
        assert_eq!(float_strings(&[1.5f64, 2.25, -3.0], 8), vec![" 1.5 ", " 2.25", "-3.  "]);
        assert_eq!(float_strings(&[0.1f64, 1e-5], 8), vec!["1.e-01", "1.e-05"]);
        assert_eq!(float_strings(&[1.5e-5f64, 1.0], 8), vec!["1.5e-05", "1.0e+00"]);
        assert_eq!(float_strings(&[f64::NAN, 1.0, f64::NEG_INFINITY], 8), vec![" nan", "  1.", "-inf"]);
        assert_eq!(float_strings(&[0.1f32], 8), vec!["0.1"]);
        assert_eq!(float_strings(&[1.0f64 / 3.0], 8), vec!["0.33333333"]);
        assert_eq!(float_strings(&[1e-300f64, 1.0], 8), vec!["1.e-300", "1.e+000"]);
    }
}
