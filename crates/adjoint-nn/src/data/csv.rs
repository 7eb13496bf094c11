//! CSV files into tensors.
//!
//! A small RFC 4180 reader (quoted fields with `""` escapes, quoted newlines, CRLF), written
//! here rather than pulled in as a dependency because the error reporting is the point: every
//! problem becomes [`NnError::Parse`] with the file, the 1-based line where the record starts and
//! the 1-based field number, and a message that names the column. The whole file is read at once
//! (after a size check against [`CsvOptions::max_bytes`]), so nothing grows without bound on a
//! hostile input, and no input makes it panic.
//!
//! Only the selected columns are parsed as numbers; the others (dates, tickers) may hold any
//! text and can be used to filter rows ([`CsvOptions::filter_eq`]).

use std::path::{Path, PathBuf};

use adjoint_core::{DType, Tensor};

use crate::error::{NnError, Result};

/// Which columns become tensor columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Columns {
    /// Every column.
    #[default]
    All,
    /// Columns by header name, in this order (needs a header).
    Names(Vec<String>),
    /// Columns by 0-based position, in this order.
    Indices(Vec<usize>),
}

/// What to do with a missing value: an empty field or one of [`CsvOptions::missing_tokens`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Missing {
    /// Fail with the line and column (the default).
    #[default]
    Error,
    /// Replace with this value.
    Fill(f64),
    /// Keep as NaN (to impute later, e.g. after a split).
    Nan,
    /// Skip the whole row.
    DropRow,
}

/// How to read a CSV file (see [`read_csv`]).
#[derive(Clone, Debug)]
pub struct CsvOptions {
    /// Field separator (default `,`).
    pub delimiter: char,
    /// The first record names the columns (default `true`).
    pub has_header: bool,
    /// Columns to return (default all).
    pub columns: Columns,
    /// Missing-value policy (default [`Missing::Error`]).
    pub missing: Missing,
    /// Field values (after trimming) that count as missing; an empty field always does.
    /// Default: `NA`, `N/A`, `NaN`, `nan`, `null`.
    pub missing_tokens: Vec<String>,
    /// Keep only rows whose column (by header name) equals the value (after trimming).
    pub filters: Vec<(String, String)>,
    /// Element type of the result (`F32` default, or `F64`).
    pub dtype: DType,
    /// Refuse files larger than this many bytes (default 1 GiB).
    pub max_bytes: u64,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: ',',
            has_header: true,
            columns: Columns::All,
            missing: Missing::Error,
            missing_tokens: ["NA", "N/A", "NaN", "nan", "null"].iter().map(|s| s.to_string()).collect(),
            filters: Vec::new(),
            dtype: DType::F32,
            max_bytes: 1 << 30,
        }
    }
}

impl CsvOptions {
    /// Select columns by header name.
    pub fn columns<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        self.columns = Columns::Names(names.iter().map(|s| s.as_ref().to_string()).collect());
        self
    }
    /// Select columns by 0-based position.
    pub fn column_indices(mut self, indices: &[usize]) -> Self {
        self.columns = Columns::Indices(indices.to_vec());
        self
    }
    /// Set the missing-value policy.
    pub fn missing(mut self, policy: Missing) -> Self {
        self.missing = policy;
        self
    }
    /// Whether the first record is a header.
    pub fn has_header(mut self, yes: bool) -> Self {
        self.has_header = yes;
        self
    }
    /// Field separator.
    pub fn delimiter(mut self, d: char) -> Self {
        self.delimiter = d;
        self
    }
    /// Element type of the result.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }
    /// Keep only rows where `column == value`.
    pub fn filter_eq(mut self, column: &str, value: &str) -> Self {
        self.filters.push((column.to_string(), value.to_string()));
        self
    }
}

/// Numeric columns read from a CSV file.
#[derive(Clone, Debug)]
pub struct CsvTable {
    /// Names of the returned columns (`c0`, `c1`, … by position when there is no header).
    pub names: Vec<String>,
    /// `[rows, columns]`, of [`CsvOptions::dtype`].
    pub data: Tensor,
    /// 1-based file line where each returned row starts.
    pub lines: Vec<usize>,
}

impl CsvTable {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.shape()[0]
    }

    /// The columns `names`, as `[rows, names.len()]`. An unknown name is an error listing the
    /// available ones.
    pub fn select<S: AsRef<str>>(&self, names: &[S]) -> Result<Tensor> {
        let mut idx = Vec::with_capacity(names.len());
        for n in names {
            let n = n.as_ref();
            match self.names.iter().position(|c| c == n) {
                Some(i) => idx.push(i as i64),
                None => {
                    return Err(NnError::Other(format!(
                        "CsvTable: no column '{n}' (columns: {})",
                        self.names.join(", ")
                    )))
                }
            }
        }
        let k = idx.len();
        Ok(self.data.index_select(1, &Tensor::from_vec(idx, &[k])))
    }

    /// One column as a 1-D tensor `[rows]`.
    pub fn column(&self, name: &str) -> Result<Tensor> {
        Ok(self.select(&[name])?.squeeze(1))
    }
}

/// Read numeric columns of the CSV file at `path` into a `[rows, columns]` tensor.
///
/// Errors (never panics): the file cannot be read or is over [`CsvOptions::max_bytes`]; it is
/// not UTF-8; a record has a different number of fields than the header; a quote is not closed
/// or is followed by text; a selected field is not a number or is missing under
/// [`Missing::Error`]; a named column or filter column is not in the header; no data rows
/// remain. Each message names the file, the line and the field number, and the column.
///
/// ```no_run
/// use adjoint_nn::data::{read_csv, CsvOptions};
/// let t = read_csv("data/imaging_digits_8x8.csv", &CsvOptions::default())?;
/// let labels = t.column("label")?;
/// # Ok::<(), adjoint_nn::NnError>(())
/// ```
pub fn read_csv(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<CsvTable> {
    let path = path.as_ref();
    let io = |source| NnError::Io { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > opts.max_bytes {
        return Err(NnError::Other(format!(
            "{}: file is {size} bytes, over the limit of {} (CsvOptions::max_bytes)",
            path.display(),
            opts.max_bytes
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse_bytes(&bytes, path, opts)
}

/// Like [`read_csv`] for text already in memory; `source` names it in error messages.
///
/// ```
/// use adjoint_nn::data::{parse_csv, CsvOptions};
/// let t = parse_csv("a,b\n1,2\n3,x\n", "inline.csv", &CsvOptions::default());
/// assert_eq!(t.unwrap_err().to_string(), "inline.csv:3:2: cannot parse 'x' as a number (column 'b')");
/// ```
pub fn parse_csv(text: &str, source: impl AsRef<Path>, opts: &CsvOptions) -> Result<CsvTable> {
    parse_bytes(text.as_bytes(), source.as_ref(), opts)
}

struct Record {
    line: usize,
    fields: Vec<String>,
}

fn parse_bytes(bytes: &[u8], path: &Path, opts: &CsvOptions) -> Result<CsvTable> {
    let perr = |line: usize, column: usize, message: String| NnError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message,
    };
    if !matches!(opts.dtype, DType::F32 | DType::F64) {
        return Err(NnError::Other(format!(
            "{}: CsvOptions::dtype must be F32 or F64, got {}",
            path.display(),
            opts.dtype
        )));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            let d = opts.delimiter as u32;
            let field = good[line_start..].iter().filter(|&&b| u32::from(b) == d).count() + 1;
            return Err(perr(line, field, format!("invalid UTF-8 (byte offset {})", e.valid_up_to())));
        }
    };
    let records = split_records(text, opts.delimiter, path)?;
    let mut records = records.into_iter();
    let header: Option<Record> = if opts.has_header { records.next() } else { None };
    if opts.has_header && header.is_none() {
        return Err(perr(1, 1, "empty file: expected a header line".into()));
    }
    let data: Vec<Record> = records.collect();
    let width = match (&header, data.first()) {
        (Some(h), _) => h.fields.len(),
        (None, Some(r)) => r.fields.len(),
        (None, None) => return Err(perr(1, 1, "empty file: no data rows".into())),
    };
    let all_names: Vec<String> = match &header {
        Some(h) => h.fields.iter().map(|s| s.trim().to_string()).collect(),
        None => (0..width).map(|i| format!("c{i}")).collect(),
    };
    let find = |name: &str, what: &str| -> Result<usize> {
        if header.is_none() {
            return Err(NnError::Other(format!(
                "{}: {what} '{name}' selected by name, but the file has no header (CsvOptions::has_header)",
                path.display()
            )));
        }
        all_names.iter().position(|c| c == name).ok_or_else(|| {
            NnError::Other(format!(
                "{}: {what} '{name}' is not in the header (columns: {})",
                path.display(),
                all_names.join(", ")
            ))
        })
    };
    let selected: Vec<usize> = match &opts.columns {
        Columns::All => (0..width).collect(),
        Columns::Names(names) => names.iter().map(|n| find(n, "column")).collect::<Result<_>>()?,
        Columns::Indices(idx) => {
            if let Some(&i) = idx.iter().find(|&&i| i >= width) {
                return Err(NnError::Other(format!(
                    "{}: column index {i} is out of range: the file has {width} columns",
                    path.display()
                )));
            }
            idx.clone()
        }
    };
    let filters: Vec<(usize, &str)> =
        opts.filters.iter().map(|(c, v)| Ok((find(c, "filter column")?, v.trim()))).collect::<Result<_>>()?;

    let is_missing = |s: &str| s.is_empty() || opts.missing_tokens.iter().any(|t| t == s);
    let mut values: Vec<f64> = Vec::new();
    let mut lines = Vec::new();
    'rows: for r in &data {
        if r.fields.len() != width {
            let col = r.fields.len().min(width) + 1;
            let what = if header.is_some() { "the header" } else { "the first row" };
            return Err(perr(
                r.line,
                col,
                format!("expected {width} fields (as in {what}), found {}", r.fields.len()),
            ));
        }
        for &(c, v) in &filters {
            if r.fields[c].trim() != v {
                continue 'rows;
            }
        }
        let start = values.len();
        for &c in &selected {
            let s = r.fields[c].trim();
            let v = if is_missing(s) {
                match opts.missing {
                    Missing::Error => {
                        return Err(perr(
                            r.line,
                            c + 1,
                            format!("missing value in column '{}'", all_names[c]),
                        ))
                    }
                    Missing::Fill(x) => x,
                    Missing::Nan => f64::NAN,
                    Missing::DropRow => {
                        values.truncate(start);
                        continue 'rows;
                    }
                }
            } else {
                match s.parse::<f64>() {
                    Ok(v) => v,
                    Err(_) => {
                        let hint = if r.line == 1 && header.is_none() {
                            " (is line 1 a header? set CsvOptions::has_header)"
                        } else {
                            ""
                        };
                        let shown: String = s.chars().take(40).collect();
                        return Err(perr(
                            r.line,
                            c + 1,
                            format!("cannot parse '{shown}' as a number (column '{}'){hint}", all_names[c]),
                        ));
                    }
                }
            };
            values.push(v);
        }
        lines.push(r.line);
    }
    if lines.is_empty() {
        let last = data.last().map_or(header.as_ref().map_or(1, |h| h.line), |r| r.line);
        let why =
            if data.is_empty() { "no data rows" } else { "no data rows left after filtering / dropping" };
        return Err(perr(last, 1, why.into()));
    }
    let shape = [lines.len(), selected.len()];
    let data = if opts.dtype == DType::F64 {
        Tensor::from_vec(values, &shape)
    } else {
        Tensor::from_vec(values.into_iter().map(|v| v as f32).collect::<Vec<f32>>(), &shape)
    };
    Ok(CsvTable { names: selected.iter().map(|&c| all_names[c].clone()).collect(), data, lines })
}

/// Split text into records, honouring quotes. Blank lines are skipped.
fn split_records(text: &str, delim: char, path: &Path) -> Result<Vec<Record>> {
    let perr = |line, column, message: &str| NnError::Parse {
        path: PathBuf::from(path),
        line,
        column,
        message: message.to_string(),
    };
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    while chars.peek().is_some() {
        let start_line = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut at_field_start = true;
        let mut blank = true;
        while let Some(c) = chars.next() {
            match c {
                '"' if at_field_start => {
                    blank = false;
                    let quote_line = line;
                    loop {
                        match chars.next() {
                            None => {
                                return Err(perr(
                                    quote_line,
                                    fields.len() + 1,
                                    "unterminated quoted field (no closing '\"' before the end of the file)",
                                ))
                            }
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some(ch) => {
                                if ch == '\n' {
                                    line += 1;
                                }
                                field.push(ch);
                            }
                        }
                    }
                    match chars.peek() {
                        None | Some('\n') | Some('\r') => {}
                        Some(&d) if d == delim => {}
                        Some(_) => {
                            return Err(perr(
                                line,
                                fields.len() + 1,
                                "unexpected text after a closing quote (a quote inside a quoted field must be doubled: \"\")",
                            ))
                        }
                    }
                    at_field_start = false;
                }
                c if c == delim => {
                    blank = false;
                    fields.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    break;
                }
                c => {
                    if !c.is_whitespace() {
                        blank = false;
                    }
                    at_field_start = false;
                    field.push(c);
                }
            }
        }
        if !blank {
            fields.push(field);
            out.push(Record { line: start_line, fields });
        }
    }
    Ok(out)
}
