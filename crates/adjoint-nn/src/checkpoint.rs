//! Checkpoints: any [`Params`] value (with its buffers) as a safetensors file.
//!
//! Planned API (being built):
//! - `save<P: Params>(path: &Path, value: &P, metadata: &BTreeMap<String, String>) -> Result<()>`
//!   (atomic: temp file, fsync, rename, fsync dir; dotted names from `Params::for_each_named`
//!   and `for_each_buffer`),
//! - `load<P: Params>(path: &Path, template: &P) -> Result<P>` (reports missing, unexpected and
//!   mis-shaped tensors by name; sets buffers),
//! - `read_metadata(path) -> Result<BTreeMap<String, String>>`.
