//! Checkpoints: any [`Params`] value (with its buffers) as a safetensors file.
//!
//! - **Format.** [safetensors](https://github.com/huggingface/safetensors): a JSON header of
//!   names, dtypes, shapes and byte ranges, then raw little-endian data. Tensor names are the
//!   dotted leaf names of [`Params::for_each_named`] (`encoder.layers.0.weight`) plus the
//!   buffers of [`Params::for_each_buffer`] (`bn.running_mean`), so files open in Python
//!   (`safetensors.torch.load_file`) with PyTorch-style keys. Saving `(model, optimizer)`
//!   gives `0.…` and `1.…` names. The string map passed as metadata goes into the header's
//!   `__metadata__` entry. `f32`, `f64`, `i64` and `bool` tensors are supported.
//! - **Atomic.** [`save`] writes a temporary file in the target's directory, fsyncs it,
//!   renames it over the target and fsyncs the directory: a crash leaves the old checkpoint or
//!   the new one, never a torn file.
//! - **Strict loading into a template.** [`load`] rebuilds a value shaped like a template
//!   (typically a freshly built model and optimizer) and reports *every* missing,
//!   unexpected, mis-shaped and mis-typed tensor by name in one error, before changing
//!   anything. [`load_with`] can allow missing or unexpected names (fine-tuning from a
//!   backbone). Buffers are shared cells, so loading sets the template's buffers, which the
//!   returned value shares.
//! - **Never panics on a bad file.** Truncated, corrupted or hostile files give
//!   [`NnError::Checkpoint`] naming the file and what is wrong.
//!
//! ```
//! use std::collections::BTreeMap;
//! use adjoint_core::{Params, Tensor};
//! use adjoint_nn::checkpoint;
//!
//! #[derive(Clone, Params)]
//! #[params(crate = adjoint_core)]
//! struct Linear { weight: Tensor, bias: Tensor }
//! let model = Linear { weight: Tensor::ones(&[2, 3]), bias: Tensor::zeros(&[2]) };
//! let path = std::env::temp_dir().join(format!("adjoint-doc-{}.safetensors", std::process::id()));
//! let meta = BTreeMap::from([("epoch".to_string(), "3".to_string())]);
//! checkpoint::save(&path, &model, &meta)?;
//!
//! let template = Linear { weight: Tensor::zeros(&[2, 3]), bias: Tensor::ones(&[2]) };
//! let loaded = checkpoint::load(&path, &template)?;
//! assert_eq!(loaded.weight.to_vec::<f32>(), vec![1.0; 6]);
//! assert_eq!(checkpoint::read_metadata(&path)?["epoch"], "3");
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), adjoint_nn::NnError>(())
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::Path;

use adjoint_core::params::Buffer;
use adjoint_core::{Params, Tensor};
use adjoint_tensor::{Array, DType};
use safetensors::tensor::{Dtype, SafeTensors, View};

use crate::error::{NnError, Result};

/// safetensors' own limit on the header size.
const MAX_HEADER: u64 = 100_000_000;
/// Names listed per kind of problem in a mismatch error before "… and N more".
const MAX_LISTED: usize = 20;

fn err(path: &Path, message: impl Into<String>) -> NnError {
    NnError::Checkpoint { path: path.to_path_buf(), message: message.into() }
}

fn io_err(path: &Path, source: std::io::Error) -> NnError {
    NnError::Io { path: path.to_path_buf(), source }
}

/// One tensor ready for serialisation.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn raw_of(a: &Array) -> Raw {
    let shape = a.shape().to_vec();
    let (dtype, bytes) = match a.dtype() {
        DType::F32 => (Dtype::F32, a.to_vec::<f32>().iter().flat_map(|x| x.to_le_bytes()).collect()),
        DType::F64 => (Dtype::F64, a.to_vec::<f64>().iter().flat_map(|x| x.to_le_bytes()).collect()),
        DType::I64 => (Dtype::I64, a.to_vec::<i64>().iter().flat_map(|x| x.to_le_bytes()).collect()),
        DType::Bool => (Dtype::BOOL, a.to_vec::<bool>().iter().map(|&x| x as u8).collect()),
    };
    Raw { dtype, shape, bytes }
}

/// The named tensors of `value`: leaves, then buffers. Names must be unique.
fn named_tensors<P: Params>(value: &P) -> std::result::Result<Vec<(String, Tensor)>, String> {
    let mut out = value.named_leaves();
    if out.len() != value.num_leaves() {
        return Err(format!(
            "the value names {} leaves but has {} (inconsistent Params impl)",
            out.len(),
            value.num_leaves()
        ));
    }
    value.for_each_buffer("", &mut |name, b| out.push((name.to_string(), b.get())));
    let mut seen = BTreeSet::new();
    for (name, _) in &out {
        if !seen.insert(name.as_str()) {
            return Err(format!("the value has two tensors named `{name}`"));
        }
    }
    Ok(out)
}

/// The safetensors bytes of `value` with `metadata` in the header.
///
/// ```
/// use std::collections::BTreeMap;
/// use adjoint_core::Tensor;
/// let bytes = adjoint_nn::checkpoint::to_bytes(&(Tensor::scalar(1.0f32),), &BTreeMap::new())?;
/// let named = adjoint_nn::checkpoint::tensors_from_bytes(&bytes)?;
/// assert_eq!(named["0"].item(), 1.0);
/// # Ok::<(), adjoint_nn::NnError>(())
/// ```
pub fn to_bytes<P: Params>(value: &P, metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let named = named_tensors(value).map_err(|m| err(Path::new("<memory>"), m))?;
    let raws: Vec<(String, Raw)> = named.iter().map(|(n, t)| (n.clone(), raw_of(t.value()))).collect();
    let meta: Option<HashMap<String, String>> = if metadata.is_empty() {
        None
    } else {
        Some(metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    };
    safetensors::serialize(raws.iter().map(|(n, r)| (n.as_str(), r)), meta)
        .map_err(|e| err(Path::new("<memory>"), format!("cannot serialise: {e:?}")))
}

/// Save `value` (leaves and buffers) with `metadata` to `path`, atomically.
pub fn save<P: Params>(path: impl AsRef<Path>, value: &P, metadata: &BTreeMap<String, String>) -> Result<()> {
    let path = path.as_ref();
    let bytes = to_bytes(value, metadata).map_err(|e| match e {
        NnError::Checkpoint { message, .. } => err(path, message),
        other => other,
    })?;
    write_atomic(path, &bytes)
}

/// The store's atomic write, compiled here from its one source file: this crate must not
/// depend on adjoint-store, and the store depends on nothing of ours.
#[path = "../../adjoint-store/src/atomic.rs"]
mod atomic;

/// Write `bytes` to `path` atomically (temporary in the same directory, fsync, rename, fsync
/// the directory; on any failure the old file stays and no temporary remains).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic::write_atomic(path, |f| f.write_all(bytes)).map_err(|e| io_err(path, e))
}

/// Options for [`load_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Keep the template's value for tensors the file lacks instead of failing.
    pub allow_missing: bool,
    /// Ignore tensors in the file that the template lacks instead of failing.
    pub allow_unexpected: bool,
}

/// What [`load_with`] tolerated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Template tensors the file lacked (they keep the template's values).
    pub missing: Vec<String>,
    /// File tensors the template lacked (ignored).
    pub unexpected: Vec<String>,
}

/// Load the checkpoint at `path` into a value shaped like `template`: every leaf and buffer
/// must be in the file with the template's shape and dtype, and the file must hold nothing
/// else; otherwise the error lists every difference by name. Buffers are set only when the
/// whole file matches.
pub fn load<P: Params>(path: impl AsRef<Path>, template: &P) -> Result<P> {
    load_with(path, template, LoadOptions::default()).map(|(v, _)| v)
}

/// [`load`] with options to tolerate missing or unexpected tensors; returns what was
/// tolerated.
pub fn load_with<P: Params>(
    path: impl AsRef<Path>,
    template: &P,
    options: LoadOptions,
) -> Result<(P, LoadReport)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    from_bytes_with(path, &bytes, template, options)
}

/// Check a safetensors buffer's header before handing it to the `safetensors` crate, so that
/// truncation gets a clear message and absurd offsets cannot reach its arithmetic.
fn precheck(path: &Path, bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 {
        return Err(err(
            path,
            format!("not a safetensors file: {} bytes, shorter than the 8-byte header length", bytes.len()),
        ));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if n > MAX_HEADER || n > (bytes.len() - 8) as u64 {
        return Err(err(
            path,
            format!(
                "not a safetensors file or truncated: header length {n} but the file has {} bytes",
                bytes.len()
            ),
        ));
    }
    let header = &bytes[8..8 + n as usize];
    let value: serde_json::Value = serde_json::from_slice(header)
        .map_err(|e| err(path, format!("corrupt safetensors header (invalid JSON: {e})")))?;
    let map = value.as_object().ok_or_else(|| err(path, "corrupt safetensors header (not a JSON object)"))?;
    let data_len = (bytes.len() - 8 - n as usize) as u64;
    for (name, info) in map {
        if name == "__metadata__" {
            continue;
        }
        let offsets = info.get("data_offsets").and_then(|o| o.as_array());
        let ok = offsets.map(|o| o.len() == 2 && o.iter().all(|x| x.as_u64().is_some())).unwrap_or(false);
        if !ok {
            return Err(err(
                path,
                format!("corrupt safetensors header: tensor `{name}` has no valid data_offsets"),
            ));
        }
        let o = offsets.expect("checked");
        let (s, e) = (o[0].as_u64().expect("checked"), o[1].as_u64().expect("checked"));
        if s > e || e > data_len {
            return Err(err(
                path,
                format!(
                    "tensor `{name}`: data offsets [{s}, {e}] outside the {data_len} bytes of data (file truncated or corrupt)"
                ),
            ));
        }
    }
    Ok(())
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>> {
    precheck(path, bytes)?;
    SafeTensors::deserialize(bytes).map_err(|e| err(path, format!("corrupt safetensors file: {e:?}")))
}

fn dtype_of(d: Dtype) -> Option<DType> {
    match d {
        Dtype::F32 => Some(DType::F32),
        Dtype::F64 => Some(DType::F64),
        Dtype::I64 => Some(DType::I64),
        Dtype::BOOL => Some(DType::Bool),
        _ => None,
    }
}

/// Decode one stored tensor (its dtype must be supported).
fn decode(path: &Path, name: &str, dtype: DType, shape: &[usize], data: &[u8]) -> Result<Tensor> {
    let a = match dtype {
        DType::F32 => Array::try_from_vec(
            data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect(),
            shape,
        ),
        DType::F64 => Array::try_from_vec(
            data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8"))).collect(),
            shape,
        ),
        DType::I64 => Array::try_from_vec(
            data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8"))).collect(),
            shape,
        ),
        DType::Bool => {
            if let Some(b) = data.iter().find(|&&b| b > 1) {
                return Err(err(path, format!("tensor `{name}`: invalid bool byte {b}")));
            }
            Array::try_from_vec(data.iter().map(|&b| b == 1).collect(), shape)
        }
    };
    a.map(Tensor::from_array).map_err(|e| err(path, format!("tensor `{name}`: {e}")))
}

/// Every tensor in a safetensors buffer by name (supported dtypes only).
pub fn tensors_from_bytes(bytes: &[u8]) -> Result<BTreeMap<String, Tensor>> {
    let path = Path::new("<memory>");
    let st = parse(path, bytes)?;
    let mut out = BTreeMap::new();
    for (name, view) in st.iter() {
        let dtype = dtype_of(view.dtype())
            .ok_or_else(|| err(path, format!("tensor `{name}` has unsupported dtype {:?}", view.dtype())))?;
        out.insert(name.to_string(), decode(path, name, dtype, view.shape(), view.data())?);
    }
    Ok(out)
}

/// Every tensor in the file at `path` by name (for inspection and conversion).
pub fn read_tensors(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    tensors_from_bytes(&bytes).map_err(|e| match e {
        NnError::Checkpoint { message, .. } => err(path, message),
        other => other,
    })
}

fn list(names: &[String]) -> String {
    let mut s = names.iter().take(MAX_LISTED).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > MAX_LISTED {
        s.push_str(&format!(" … and {} more", names.len() - MAX_LISTED));
    }
    s
}

/// [`load_with`] from bytes already in memory; `path` is only used in messages.
pub fn from_bytes_with<P: Params>(
    path: &Path,
    bytes: &[u8],
    template: &P,
    options: LoadOptions,
) -> Result<(P, LoadReport)> {
    let st = parse(path, bytes)?;
    let names = named_tensors(template).map_err(|m| err(path, m))?;
    let n_leaves = template.num_leaves();
    let mut loaded: Vec<Option<Tensor>> = Vec::with_capacity(names.len());
    let (mut missing, mut shape_bad, mut dtype_bad) = (Vec::new(), Vec::new(), Vec::new());
    for (name, t) in &names {
        let view = match st.tensor(name) {
            Ok(v) => v,
            Err(_) => {
                missing.push(name.clone());
                loaded.push(None);
                continue;
            }
        };
        let file_dtype = dtype_of(view.dtype());
        if file_dtype != Some(t.dtype()) {
            let fd =
                file_dtype.map(|d| d.name().to_string()).unwrap_or_else(|| format!("{:?}", view.dtype()));
            dtype_bad.push(format!("{name} (file {fd}, model {})", t.dtype()));
        }
        if view.shape() != t.shape() {
            shape_bad.push(format!("{name} (file {:?}, model {:?})", view.shape(), t.shape()));
        }
        if file_dtype == Some(t.dtype()) && view.shape() == t.shape() {
            loaded.push(Some(decode(path, name, t.dtype(), view.shape(), view.data())?));
        } else {
            loaded.push(None);
        }
    }
    let expected: BTreeSet<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    let mut unexpected: Vec<String> =
        st.names().into_iter().filter(|n| !expected.contains(*n)).map(|n| n.to_string()).collect();
    unexpected.sort();
    let mut problems = Vec::new();
    if !missing.is_empty() && !options.allow_missing {
        problems.push(format!("missing {}: {}", missing.len(), list(&missing)));
    }
    if !unexpected.is_empty() && !options.allow_unexpected {
        problems.push(format!("unexpected {}: {}", unexpected.len(), list(&unexpected)));
    }
    if !shape_bad.is_empty() {
        problems.push(format!("wrong shape {}: {}", shape_bad.len(), list(&shape_bad)));
    }
    if !dtype_bad.is_empty() {
        problems.push(format!("wrong dtype {}: {}", dtype_bad.len(), list(&dtype_bad)));
    }
    if !problems.is_empty() {
        return Err(err(path, format!("does not match the model: {}", problems.join("; "))));
    }
    // Everything checked: build the value, then set buffers.
    let mut it = loaded.iter().zip(&names).take(n_leaves);
    let value = template.map_tensors(&mut |t| match it.next() {
        Some((Some(new), _)) => new.clone(),
        _ => t.clone(),
    });
    let mut buffers: Vec<Buffer> = Vec::new();
    template.for_each_buffer("", &mut |_, b| buffers.push(b.clone()));
    for (b, new) in buffers.iter().zip(&loaded[n_leaves..]) {
        if let Some(new) = new {
            b.set(new.clone());
        }
    }
    Ok((value, LoadReport { missing, unexpected }))
}

/// The `__metadata__` map of the safetensors file at `path` (empty when it has none). Reads
/// only the header.
pub fn read_metadata(path: impl AsRef<Path>) -> Result<BTreeMap<String, String>> {
    let path = path.as_ref();
    let mut f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let file_len = f.metadata().map_err(|e| io_err(path, e))?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| err(path, format!("not a safetensors file: only {file_len} bytes")))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER || n > file_len.saturating_sub(8) {
        return Err(err(
            path,
            format!(
                "not a safetensors file or truncated: header length {n} but the file has {file_len} bytes"
            ),
        ));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|e| io_err(path, e))?;
    let value: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| err(path, format!("corrupt safetensors header (invalid JSON: {e})")))?;
    let mut out = BTreeMap::new();
    if let Some(meta) = value.get("__metadata__") {
        let obj = meta
            .as_object()
            .ok_or_else(|| err(path, "corrupt safetensors header: __metadata__ is not an object"))?;
        for (k, v) in obj {
            let v = v.as_str().ok_or_else(|| {
                err(path, format!("corrupt safetensors header: metadata `{k}` is not a string"))
            })?;
            out.insert(k.clone(), v.to_string());
        }
    }
    Ok(out)
}
