//! The facade's `dist` feature: adjoint-dist as `adjoint::dist` (the parts that need no MPI
//! job; the mpirun tests are adjoint-dist's).
#![cfg(feature = "dist")]

use adjoint::dist::{BucketPlan, DistributedSampler, DEFAULT_BUCKET_BYTES};
use adjoint::tensor::DType;

#[test]
fn the_sampler_and_the_bucket_plan_are_reachable_through_the_facade() {
    let shards: Vec<Vec<usize>> =
        (0..2).map(|r| DistributedSampler::new(6, 2, r).shuffle(1).indices(0)).collect();
    let mut all = shards.concat();
    all.sort();
    assert_eq!(all, (0..6).collect::<Vec<_>>());
    assert_eq!(DEFAULT_BUCKET_BYTES, 25 << 20);
    let plan = BucketPlan::new(&[(DType::F32, 10), (DType::F32, 10)], DEFAULT_BUCKET_BYTES);
    assert_eq!(plan.buckets.len(), 1);
    assert_eq!(plan.buckets[0].leaves, vec![1, 0]);
}
