//! Readers for [ADBench](https://github.com/microsoft/ADBench)'s input files: GMM, bundle
//! adjustment (BA), hand tracking (a model directory plus an input file) and LSTM.
//!
//! The formats are those of ADBench's C++ readers (`src/cpp/shared/utils.cpp`), written out in
//! `data/adbench/SPEC.md`: whitespace-separated tokens for GMM, BA, LSTM and the hand input; `:`
//! separated fields, one record per line, for the hand model's `bones.txt`, `vertices.txt` and
//! `triangles.txt`.
//!
//! These files come from outside the program, so every reader returns a [`Result`] and never
//! panics. An [`AdbenchError`] names the file, the line and the token or field that was wrong.
//! Stricter than `fscanf`:
//!
//! - counts must be plain non-negative decimal integers that fit a C `int` (ADBench reads them
//!   with `%i`), and the sizes they imply are computed with overflow checks and compared with the
//!   number of tokens actually in the file *before* anything is allocated, so a header claiming
//!   10¹² points is an error, not an allocation;
//! - every real number must be finite (`nan`, `inf` are rejected);
//! - tokens left over after the last expected one are an error (they mean the header and the
//!   body disagree, or the wrong reader — e.g. simple vs complicated hand — was chosen).
//!
//! BA files and GMM files in replicate-point mode (ADBench's 2.5M set) store one camera / point /
//! observation that ADBench copies n, m or p times. The readers keep the single copy and expose
//! the replication through accessors ([`BaInput::obs`], [`GmmInput::point`]), so the declared
//! counts are never turned into allocations.
//!
//! ```
//! use adjoint_gradbench::adbench::parse_gmm;
//! let text = b"1 1 2\n0.5\n0.1\n0.0\n1.0\n2.0\n1.0 0\n";
//! let g = parse_gmm(text, "tiny.txt", false).unwrap();
//! assert_eq!((g.d, g.k, g.n), (1, 1, 2));
//! assert_eq!(g.point(1), &[2.0]);
//! let e = parse_gmm(b"1 1 1000000000\n0.5\n", "huge.txt", false).unwrap_err();
//! assert!(e.to_string().starts_with("huge.txt:1:"), "{e}");
//! ```

use std::fmt;
use std::path::Path;

/// An ADBench input file that could not be read: which file, where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdbenchError {
    /// The file, as given to the reader.
    pub file: String,
    /// 1-based line of the offending token or record, when there is one.
    pub line: Option<usize>,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for AdbenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for AdbenchError {}

/// The result of an ADBench reader.
pub type Result<T> = std::result::Result<T, AdbenchError>;

/// Files larger than this are refused before being read (the largest ADBench input, a 10k-point
/// d=128 GMM file, is about 15 MB).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Number of pose parameters θ in ADBench's hand problem.
pub const HAND_THETA_COUNT: usize = 26;

/// Fewest bones ADBench's θ → pose mapping needs (it writes pose parameters up to bone 20).
pub const HAND_MIN_BONES: usize = 21;

fn err(file: &str, line: Option<usize>, message: impl Into<String>) -> AdbenchError {
    AdbenchError { file: file.to_string(), line, message: message.into() }
}

/// Read a whole file, refusing files over [`MAX_FILE_BYTES`].
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let file = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| err(&file, None, format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(
            &file,
            None,
            format!(
                "file is {} bytes, more than the {MAX_FILE_BYTES}-byte limit for ADBench inputs",
                meta.len()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| err(&file, None, format!("cannot read: {e}")))
}

/// A token shown in a message: lossy UTF-8, cut to 40 characters, quoted and escaped.
fn show(tok: &[u8]) -> String {
    let s = String::from_utf8_lossy(tok);
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(40).collect();
        format!("{cut:?}…")
    } else {
        format!("{s:?}")
    }
}

/// `fscanf`'s notion of white space.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// A plain non-negative decimal integer that fits a C `int`.
fn parse_count(tok: &[u8]) -> std::result::Result<usize, String> {
    let digits = tok.strip_prefix(b"+").unwrap_or(tok);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(if tok.first() == Some(&b'-') {
            format!("expected a non-negative integer, found {}", show(tok))
        } else {
            format!("expected an integer, found {}", show(tok))
        });
    }
    // Leading zeros cannot make a long string small: strip them before the length check.
    let significant = &digits[digits.iter().position(|&b| b != b'0').unwrap_or(digits.len())..];
    let value = if significant.len() > 10 {
        None
    } else {
        std::str::from_utf8(significant).ok().map(|s| {
            if s.is_empty() {
                0
            } else {
                s.parse::<u64>().unwrap_or(u64::MAX)
            }
        })
    };
    match value {
        Some(v) if v <= i32::MAX as u64 => Ok(v as usize),
        _ => Err(format!("integer {} is larger than {} (ADBench reads it as a C int)", show(tok), i32::MAX)),
    }
}

/// A finite real number.
fn parse_real(tok: &[u8]) -> std::result::Result<f64, String> {
    let v = std::str::from_utf8(tok)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| format!("expected a number, found {}", show(tok)))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{} is not a finite number", show(tok)))
    }
}

/// A cursor over the white-space separated tokens of a file, tracking line numbers.
struct Tokens<'a> {
    file: &'a str,
    text: &'a [u8],
    pos: usize,
    line: usize,
    /// Tokens not yet consumed.
    remaining: usize,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a [u8], file: &'a str) -> Tokens<'a> {
        let mut remaining = 0;
        let mut in_token = false;
        for &b in text {
            let space = is_space(b);
            if !space && !in_token {
                remaining += 1;
            }
            in_token = !space;
        }
        Tokens { file, text, pos: 0, line: 1, remaining }
    }

    /// The next token and its line, or an error saying the file ends where `what` was expected.
    fn next(&mut self, what: &dyn fmt::Display) -> Result<(&'a [u8], usize)> {
        while self.pos < self.text.len() && is_space(self.text[self.pos]) {
            if self.text[self.pos] == b'\n' {
                self.line += 1;
            }
            self.pos += 1;
        }
        if self.pos == self.text.len() {
            return Err(err(
                self.file,
                Some(self.line),
                format!("file ends where {what} was expected (truncated?)"),
            ));
        }
        let start = self.pos;
        while self.pos < self.text.len() && !is_space(self.text[self.pos]) {
            self.pos += 1;
        }
        self.remaining -= 1;
        Ok((&self.text[start..self.pos], self.line))
    }

    fn count(&mut self, what: &str) -> Result<usize> {
        let (tok, line) = self.next(&what)?;
        parse_count(tok).map_err(|m| err(self.file, Some(line), format!("{what}: {m}")))
    }

    fn real(&mut self, what: &dyn fmt::Display) -> Result<f64> {
        let (tok, line) = self.next(what)?;
        parse_real(tok).map_err(|m| err(self.file, Some(line), format!("{what}: {m}")))
    }

    /// `rows × cols` reals named `what[row][col]`; the sizes must already have been checked
    /// against [`Tokens::need`].
    fn matrix(&mut self, rows: usize, cols: usize, what: &str) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                out.push(self.real(&format_args!("{what}[{r}][{c}]"))?);
            }
        }
        Ok(out)
    }

    fn vector(&mut self, n: usize, what: &str) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            out.push(self.real(&format_args!("{what}[{i}]"))?);
        }
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[f64; N]> {
        let mut out = [0.0; N];
        for (i, v) in out.iter_mut().enumerate() {
            *v = self.real(&format_args!("{what}[{i}]"))?;
        }
        Ok(out)
    }

    /// Check that the file holds at least the `needed` tokens (None: the size overflowed) that
    /// the header `header` implies, before any of them is allocated.
    fn need(&self, needed: Option<usize>, header: &str, header_line: usize) -> Result<()> {
        match needed {
            Some(n) if n <= self.remaining => Ok(()),
            Some(n) => Err(err(
                self.file,
                Some(header_line),
                format!(
                    "header {header} needs {n} more numbers but the file has only {} more tokens (truncated, or wrong sizes?)",
                    self.remaining
                ),
            )),
            None => Err(err(self.file, Some(header_line), format!("header {header} declares impossibly large sizes"))),
        }
    }

    /// Every token must have been consumed.
    fn finish(mut self) -> Result<()> {
        if self.remaining == 0 {
            return Ok(());
        }
        let n = self.remaining;
        let (tok, line) = self.next(&"")?;
        Err(err(
            self.file,
            Some(line),
            format!("{n} unexpected trailing token(s) starting with {} (header sizes too small, or wrong format?)", show(tok)),
        ))
    }
}

fn positive(file: &str, line: usize, name: &str, v: usize) -> Result<usize> {
    if v == 0 {
        Err(err(file, Some(line), format!("{name} must be at least 1, found 0")))
    } else {
        Ok(v)
    }
}

/// Checked sum of checked products.
fn total(terms: &[&[usize]]) -> Option<usize> {
    terms.iter().try_fold(0usize, |acc, factors| {
        acc.checked_add(factors.iter().try_fold(1usize, |p, &f| p.checked_mul(f))?)
    })
}

// ---------------------------------------------------------------------------------------------
// GMM

/// An ADBench GMM input (SPEC.md §1): `d K n`, α, μ, icf, the points, then `γ m`.
#[derive(Debug, Clone, PartialEq)]
pub struct GmmInput {
    /// Dimension d.
    pub d: usize,
    /// Number of components K.
    pub k: usize,
    /// Number of points n (in replicate-point mode, the number of copies of the one stored point).
    pub n: usize,
    /// `alphas[K]`.
    pub alphas: Vec<f64>,
    /// `means[K][d]`, row-major.
    pub means: Vec<f64>,
    /// `icf[K][d(d+1)/2]`, row-major; each row is q (d values) then l (column-major lower triangle).
    pub icf: Vec<f64>,
    /// The stored points, row-major: n × d, or 1 × d in replicate-point mode. Use [`GmmInput::point`].
    pub x: Vec<f64>,
    /// Whether the file stores a single point standing for all n (ADBench's 2.5M set).
    pub replicated: bool,
    /// Wishart γ (> 0).
    pub wishart_gamma: f64,
    /// Wishart m.
    pub wishart_m: usize,
}

impl GmmInput {
    /// Length of one icf row, d(d+1)/2.
    pub fn icf_len(&self) -> usize {
        self.d * (self.d + 1) / 2
    }

    /// Point `i` (0 ≤ i < n); in replicate-point mode every i gives the stored point.
    ///
    /// # Panics
    /// If `i >= n` (a bug in the caller).
    #[track_caller]
    pub fn point(&self, i: usize) -> &[f64] {
        assert!(i < self.n, "GmmInput::point: index {i} out of range for n = {}", self.n);
        let row = if self.replicated { 0 } else { i };
        &self.x[row * self.d..(row + 1) * self.d]
    }
}

/// Parse a GMM input. `replicate_point` is ADBench's flag for the 2.5M set: the file holds one
/// point that stands for all n.
pub fn parse_gmm(text: &[u8], file: &str, replicate_point: bool) -> Result<GmmInput> {
    let mut t = Tokens::new(text, file);
    let d = t.count("d (dimension)")?;
    let k = t.count("K (components)")?;
    let n = t.count("n (points)")?;
    let line = t.line;
    let d = positive(file, line, "d", d)?;
    let k = positive(file, line, "K", k)?;
    let n = positive(file, line, "n", n)?;
    let icf_len = d.checked_add(1).and_then(|d1| d.checked_mul(d1)).map(|v| v / 2);
    let stored = if replicate_point { 1 } else { n };
    let needed = icf_len.and_then(|icf| total(&[&[k], &[k, d], &[k, icf], &[stored, d], &[2]]));
    let header =
        format!("`d K n` = `{d} {k} {n}`{}", if replicate_point { " (replicate-point mode)" } else { "" });
    t.need(needed, &header, line)?;
    let icf_len = icf_len.unwrap_or(0);
    let alphas = t.vector(k, "alpha")?;
    let means = t.matrix(k, d, "mean")?;
    let icf = t.matrix(k, icf_len, "icf")?;
    let x = t.matrix(stored, d, "x")?;
    let wishart_gamma = t.real(&"Wishart gamma")?;
    if wishart_gamma <= 0.0 {
        return Err(err(
            file,
            Some(t.line),
            format!("Wishart gamma must be positive, found {wishart_gamma}"),
        ));
    }
    let wishart_m = t.count("Wishart m")?;
    t.finish()?;
    Ok(GmmInput { d, k, n, alphas, means, icf, x, replicated: replicate_point, wishart_gamma, wishart_m })
}

/// Read a GMM input file; see [`parse_gmm`].
pub fn read_gmm(path: &Path, replicate_point: bool) -> Result<GmmInput> {
    parse_gmm(&read_bytes(path)?, &path.display().to_string(), replicate_point)
}

// ---------------------------------------------------------------------------------------------
// BA

/// An ADBench BA input (SPEC.md §2): `n m p`, then the one camera, point, weight and feature that
/// ADBench replicates to n cameras, m points and p observations.
#[derive(Debug, Clone, PartialEq)]
pub struct BaInput {
    /// Number of cameras (≥ 1).
    pub n: usize,
    /// Number of points (≥ 1).
    pub m: usize,
    /// Number of observations.
    pub p: usize,
    /// The camera every camera equals: `[r1 r2 r3 | C1 C2 C3 | f | u0 v0 | k1 k2]`.
    pub cam: [f64; 11],
    /// The point every point equals.
    pub x: [f64; 3],
    /// The weight of every observation.
    pub w: f64,
    /// The feature of every observation.
    pub feat: [f64; 2],
}

impl BaInput {
    /// Camera and point of observation `i`: `(i % n, i % m)`, as ADBench's reader sets them.
    pub fn obs(&self, i: usize) -> (usize, usize) {
        (i % self.n, i % self.m)
    }
}

/// Parse a BA input.
pub fn parse_ba(text: &[u8], file: &str) -> Result<BaInput> {
    let mut t = Tokens::new(text, file);
    let n = t.count("n (cameras)")?;
    let m = t.count("m (points)")?;
    let p = t.count("p (observations)")?;
    let line = t.line;
    let n = positive(file, line, "n", n)?;
    let m = positive(file, line, "m", m)?;
    t.need(Some(11 + 3 + 1 + 2), &format!("`n m p` = `{n} {m} {p}`"), line)?;
    let cam = t.array::<11>("camera")?;
    let x = t.array::<3>("point")?;
    let w = t.real(&"weight")?;
    let feat = t.array::<2>("feature")?;
    t.finish()?;
    Ok(BaInput { n, m, p, cam, x, w, feat })
}

/// Read a BA input file; see [`parse_ba`].
pub fn read_ba(path: &Path) -> Result<BaInput> {
    parse_ba(&read_bytes(path)?, &path.display().to_string())
}

// ---------------------------------------------------------------------------------------------
// LSTM

/// An ADBench LSTM input (SPEC.md §3): `l c b`, then main params, extra params, state, sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmInput {
    /// Layers l (≥ 1).
    pub l: usize,
    /// Characters c (≥ 2: the loss divides by c − 1).
    pub c: usize,
    /// Bits per character b (≥ 1).
    pub b: usize,
    /// `main_params[2l][4b]`, row-major.
    pub main_params: Vec<f64>,
    /// `extra_params[3][b]`, row-major.
    pub extra_params: Vec<f64>,
    /// `state[2l][b]`, row-major.
    pub state: Vec<f64>,
    /// `sequence[c][b]`, row-major; every entry is 0 or 1.
    pub sequence: Vec<f64>,
}

/// Parse an LSTM input.
pub fn parse_lstm(text: &[u8], file: &str) -> Result<LstmInput> {
    let mut t = Tokens::new(text, file);
    let l = t.count("l (layers)")?;
    let c = t.count("c (characters)")?;
    let b = t.count("b (bits per character)")?;
    let line = t.line;
    let l = positive(file, line, "l", l)?;
    let b = positive(file, line, "b", b)?;
    if c < 2 {
        return Err(err(
            file,
            Some(line),
            format!("c must be at least 2 (the loss divides by c - 1), found {c}"),
        ));
    }
    let needed = total(&[&[2, l, 4, b], &[3, b], &[2, l, b], &[c, b]]);
    t.need(needed, &format!("`l c b` = `{l} {c} {b}`"), line)?;
    let main_params = t.matrix(2 * l, 4 * b, "main_params")?;
    let extra_params = t.matrix(3, b, "extra_params")?;
    let state = t.matrix(2 * l, b, "state")?;
    let mut sequence = Vec::with_capacity(c * b);
    for r in 0..c {
        for j in 0..b {
            let (tok, tline) = t.next(&format_args!("sequence[{r}][{j}]"))?;
            let v =
                parse_real(tok).map_err(|m| err(file, Some(tline), format!("sequence[{r}][{j}]: {m}")))?;
            if v != 0.0 && v != 1.0 {
                return Err(err(
                    file,
                    Some(tline),
                    format!("sequence[{r}][{j}] must be 0 or 1, found {}", show(tok)),
                ));
            }
            sequence.push(v);
        }
    }
    t.finish()?;
    Ok(LstmInput { l, c, b, main_params, extra_params, state, sequence })
}

/// Read an LSTM input file; see [`parse_lstm`].
pub fn read_lstm(path: &Path) -> Result<LstmInput> {
    parse_lstm(&read_bytes(path)?, &path.display().to_string())
}

mod hand;
pub use hand::*;
