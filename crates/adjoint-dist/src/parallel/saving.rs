//! [`DataParallel`]'s checkpoints: rank 0 writes them with the whole optimizer state (gathered
//! from the ranks' parts when the update is sharded); a run resumes from one on any number of
//! ranks, rank 0 reading and broadcasting it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use adjoint_core::{Params, Tensor};
use adjoint_nn::checkpoint::{self, LoadOptions};
use adjoint_nn::optim::Optimizer;
use adjoint_tensor::DType;

use super::{DataParallel, DataParallelConfig};
use crate::comm::Dist;
use crate::shard::row_range;
use crate::DistError;

impl<'d, P: Params + Clone, O: Optimizer + Clone> DataParallel<'d, P, O> {
    /// Resume from the checkpoint at `path` (written by [`save_checkpoint`](Self::save_checkpoint)
    /// on any number of ranks): rank 0 reads it and broadcasts it; `params` and `opt` are
    /// templates. Returns the checkpoint's metadata too.
    pub fn resume(
        dist: &'d Dist,
        path: &Path,
        params: P,
        opt: O,
        config: DataParallelConfig,
    ) -> Result<(Self, BTreeMap<String, String>), DistError> {
        // Rank 0 reads; its outcome (bytes or the error) reaches every rank.
        let mut packet = Vec::new();
        if dist.is_root() {
            match std::fs::read(path).map_err(|e| format!("{}: {e}", path.display())).and_then(|b| {
                let meta = checkpoint::read_metadata(path).map_err(|e| e.to_string())?;
                Ok((b, meta))
            }) {
                Ok((b, meta)) => {
                    packet.push(0u8);
                    let meta_text: String = meta.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
                    packet.extend((meta_text.len() as u64).to_le_bytes());
                    packet.extend(meta_text.as_bytes());
                    packet.extend(b);
                }
                Err(e) => {
                    packet.push(1u8);
                    packet.extend(e.as_bytes());
                }
            }
        }
        let packet = dist.broadcast_bytes(&packet)?;
        if packet.first() != Some(&0) {
            let msg = String::from_utf8_lossy(packet.get(1..).unwrap_or_default()).into_owned();
            return Err(DistError::Resume(format!("rank 0 could not read the checkpoint: {msg}")));
        }
        let bad = || DistError::Resume(format!("{}: broadcast checkpoint is truncated", path.display()));
        let n = u64::from_le_bytes(packet.get(1..9).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
        let meta_text = std::str::from_utf8(packet.get(9..9 + n).ok_or_else(bad)?).map_err(|_| bad())?;
        let meta =
            meta_text.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.into(), v.into())).collect();
        let (params, opt) = decode(path, &packet[9 + n..], &(params, opt))?;
        // Every rank now holds the same values; `new` broadcasts them once more (cheap, and the
        // one code path that guarantees equal replicas).
        Ok((DataParallel::new(dist, params, opt, config)?, meta))
    }
}

pub(super) fn decode<T: Params>(path: &Path, bytes: &[u8], template: &T) -> Result<T, DistError> {
    Ok(checkpoint::from_bytes_with(path, bytes, template, LoadOptions::default())?.0)
}

impl<P: Params, O: Optimizer> DataParallel<'_, P, O> {
    /// The whole optimizer: [`optimizer`](Self::optimizer) when the update is not sharded
    /// (a copy); with a sharded update, every rank's part gathered (collective: every rank
    /// calls it, and every rank gets the whole).
    pub fn full_optimizer(&self) -> Result<O, DistError> {
        let Some(sh) = &self.sharding else {
            return Ok(self.opt.with_leaves(&self.opt.leaves()));
        };
        if self.poisoned {
            return Err(DistError::Poisoned);
        }
        let (w, r) = (self.dist.world_size(), self.dist.rank());
        let mut full = Vec::new();
        for (t, shape) in self.opt.leaves().iter().zip(&sh.opt_full) {
            let Some(shape) = shape else {
                full.push(t.clone());
                continue;
            };
            // Each rank's rows in place in a zero tensor, summed over the ranks (a checkpoint's
            // worth of traffic, not a step's: simplicity over speed).
            let row = shape[1..].iter().product::<usize>();
            let (lo, _) = row_range(shape[0], w, r);
            let n = shape[0] * row;
            full.push(match t.dtype() {
                DType::F32 => {
                    let mut v = vec![0.0f32; n];
                    let mine = t.to_vec::<f32>();
                    v[lo * row..lo * row + mine.len()].copy_from_slice(&mine);
                    self.dist.allreduce_sum(&mut v)?;
                    Tensor::from_vec(v, shape)
                }
                _ => {
                    let mut v = vec![0.0f64; n];
                    let mine = t.to_vec::<f64>();
                    v[lo * row..lo * row + mine.len()].copy_from_slice(&mine);
                    self.dist.allreduce_sum(&mut v)?;
                    Tensor::from_vec(v, shape)
                }
            });
        }
        Ok(self.opt.with_leaves(&full))
    }

    /// Save `(params, optimizer)` with `metadata` to `path` on rank 0 only, then wait for every
    /// rank (collective). Returns the path on rank 0, `None` elsewhere. Rank 0's write error
    /// reaches every rank.
    pub fn save_checkpoint(
        &self,
        path: &Path,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Option<PathBuf>, DistError>
    where
        P: Clone,
        O: Clone,
    {
        let mut status = Vec::new();
        // With a sharded update the whole optimizer state is gathered first (on every rank).
        let opt = if self.sharding.is_some() { self.full_optimizer()? } else { self.opt.clone() };
        if self.dist.is_root()
            && let Err(e) = checkpoint::save(path, &(self.params.clone(), opt), metadata)
        {
            status = e.to_string().into_bytes();
        }
        let status = self.dist.broadcast_bytes(&status)?;
        if !status.is_empty() {
            return Err(DistError::Checkpoint(String::from_utf8_lossy(&status).into_owned()));
        }
        Ok(self.dist.is_root().then(|| path.to_path_buf()))
    }
}
