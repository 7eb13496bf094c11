//! [`DistributedSampler`]: each rank's disjoint shard of an epoch's permutation, as PyTorch's
//! `torch.utils.data.DistributedSampler`. Pure Rust (no MPI), so it is tested everywhere.
//!
//! The epoch's order is the one a single-process [`DataLoader`](adjoint_nn::data::DataLoader)
//! with `.shuffle(seed)` uses ([`epoch_order`]), so a run on W
//! ranks sees exactly the examples a one-rank run sees: rank `r` takes positions
//! `r, r + W, r + 2W, …` of it. With per-rank batch `b`, batch `k` of every rank together is
//! positions `kWb .. (k+1)Wb` of the order, i.e. batch `k` of a one-rank run with batch `Wb`
//! (in another order within the batch, which a mean loss does not see).
//!
//! When `n` is not a multiple of W the order is either padded by repeating its first positions
//! (the default, so every example is seen and every rank has the same count) or truncated
//! (`drop_last`), exactly as PyTorch does.

use std::sync::Arc;

use adjoint_nn::data::{epoch_order, DataLoader, Dataset, Subset};

/// The shard of one rank (what a run manifest records for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// The rank.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
    /// Examples this rank reads per epoch.
    pub num_samples: usize,
    /// Positions of the (padded or truncated) epoch permutation all ranks read together
    /// (`num_samples * world_size`).
    pub total_size: usize,
}

/// Disjoint per-rank shards of each epoch's permutation, deterministic for a seed and a world
/// size.
///
/// ```
/// use adjoint_dist::DistributedSampler;
/// let shards: Vec<Vec<usize>> =
///     (0..3).map(|r| DistributedSampler::new(10, 3, r).shuffle(7).indices(0)).collect();
/// assert!(shards.iter().all(|s| s.len() == 4)); // 10 padded to 12
/// let mut all: Vec<usize> = shards.concat();
/// all.sort();
/// all.dedup();
/// assert_eq!(all, (0..10).collect::<Vec<_>>()); // every example, each rank the same count
/// ```
#[derive(Clone, Debug)]
pub struct DistributedSampler {
    len: usize,
    world_size: usize,
    rank: usize,
    seed: Option<u64>,
    drop_last: bool,
}

impl DistributedSampler {
    /// Rank `rank` of `world_size` over a dataset of `len` examples, in dataset order (no
    /// shuffle), padded.
    #[track_caller]
    pub fn new(len: usize, world_size: usize, rank: usize) -> DistributedSampler {
        assert!(world_size > 0, "adjoint-dist: DistributedSampler: world_size must be at least 1");
        assert!(
            rank < world_size,
            "adjoint-dist: DistributedSampler: rank {rank} out of range for a world of {world_size}"
        );
        DistributedSampler { len, world_size, rank, seed: None, drop_last: false }
    }

    /// Shuffle every epoch from `seed` (the same order as `DataLoader::shuffle(seed)`).
    pub fn shuffle(mut self, seed: u64) -> DistributedSampler {
        self.seed = Some(seed);
        self
    }

    /// Drop the tail that does not divide evenly among the ranks instead of padding.
    pub fn drop_last(mut self, drop_last: bool) -> DistributedSampler {
        self.drop_last = drop_last;
        self
    }

    /// Examples per rank per epoch (PyTorch's `num_samples`).
    pub fn num_samples(&self) -> usize {
        let (n, w) = (self.len, self.world_size);
        if self.drop_last {
            n / w
        } else {
            n.div_ceil(w)
        }
    }

    /// This rank's shard description.
    pub fn shard(&self) -> Shard {
        Shard {
            rank: self.rank,
            world_size: self.world_size,
            num_samples: self.num_samples(),
            total_size: self.num_samples() * self.world_size,
        }
    }

    /// The whole epoch's order before sharding (no padding).
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        epoch_order(self.seed, epoch, self.len)
    }

    /// This rank's dataset indices for `epoch`, in reading order.
    pub fn indices(&self, epoch: usize) -> Vec<usize> {
        let order = self.order(epoch);
        if order.is_empty() {
            return Vec::new();
        }
        // Positions past the end wrap to the start: PyTorch's padding.
        (0..self.num_samples()).map(|j| order[(self.rank + j * self.world_size) % order.len()]).collect()
    }

    /// A loader over this rank's shard of `epoch` in batches of `batch_size` (no further
    /// shuffling: the order is already the epoch's).
    #[track_caller]
    pub fn loader<D: Dataset>(
        &self,
        dataset: Arc<D>,
        epoch: usize,
        batch_size: usize,
    ) -> DataLoader<Subset<D>> {
        assert_eq!(
            dataset.len(),
            self.len,
            "adjoint-dist: DistributedSampler::loader: the dataset has {} examples, the sampler was built for {}",
            dataset.len(),
            self.len
        );
        DataLoader::new(Subset::new(dataset, self.indices(epoch)), batch_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(n: usize, w: usize, drop_last: bool, epoch: usize) -> Vec<Vec<usize>> {
        (0..w)
            .map(|r| DistributedSampler::new(n, w, r).shuffle(3).drop_last(drop_last).indices(epoch))
            .collect()
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_epoch() {
        for n in [0, 1, 7, 12, 13, 100] {
            for w in 1..=5 {
                for epoch in 0..3 {
                    let padded = shards(n, w, false, epoch);
                    let per = n.div_ceil(w);
                    assert!(padded.iter().all(|s| s.len() == per), "n={n} w={w}");
                    let mut all: Vec<usize> = padded.concat();
                    all.sort();
                    let distinct = {
                        let mut d = all.clone();
                        d.dedup();
                        d
                    };
                    // Every example once, plus exactly the padding repeats.
                    assert_eq!(distinct, (0..n).collect::<Vec<_>>(), "n={n} w={w}");
                    assert_eq!(all.len() - distinct.len(), per * w - n, "n={n} w={w}");

                    let dropped = shards(n, w, true, epoch);
                    let mut all: Vec<usize> = dropped.concat();
                    assert!(dropped.iter().all(|s| s.len() == n / w));
                    all.sort();
                    let len = all.len();
                    all.dedup();
                    assert_eq!(all.len(), len, "drop_last shards overlap: n={n} w={w}");
                    assert_eq!(len, n / w * w);
                }
            }
        }
    }

    #[test]
    fn rank_batches_together_are_the_one_rank_batch() {
        // The order of a one-rank DataLoader with `.shuffle(3)`: batches of W*b there are the
        // union of the ranks' batches of b here.
        let (n, w, b) = (24, 3, 2);
        let one = DistributedSampler::new(n, 1, 0).shuffle(3).indices(5);
        let ranks = shards(n, w, false, 5);
        for k in 0..n / (w * b) {
            let mut global: Vec<usize> = one[k * w * b..(k + 1) * w * b].to_vec();
            let mut union: Vec<usize> = ranks.iter().flat_map(|s| s[k * b..(k + 1) * b].to_vec()).collect();
            global.sort();
            union.sort();
            assert_eq!(global, union, "batch {k}");
        }
    }

    #[test]
    fn deterministic_per_seed_and_epoch() {
        let a = DistributedSampler::new(50, 2, 1).shuffle(9);
        assert_eq!(a.indices(4), a.clone().indices(4));
        assert_ne!(a.indices(4), a.indices(5));
        assert_ne!(a.indices(4), DistributedSampler::new(50, 2, 1).shuffle(10).indices(4));
        assert_eq!(DistributedSampler::new(5, 2, 0).indices(0), vec![0, 2, 4]);
        assert_eq!(DistributedSampler::new(5, 2, 1).indices(0), vec![1, 3, 0]);
    }

    #[test]
    fn same_order_as_the_data_loader() {
        use adjoint_core::Tensor;
        use adjoint_nn::data::TensorDataset;
        let loader = DataLoader::new(TensorDataset::new(Tensor::arange(20)), 4).shuffle(11);
        assert_eq!(loader.order(2), DistributedSampler::new(20, 1, 0).shuffle(11).indices(2));
    }

    #[test]
    #[should_panic(expected = "rank 2 out of range for a world of 2")]
    fn rank_out_of_range_panics() {
        DistributedSampler::new(10, 2, 2);
    }
}
