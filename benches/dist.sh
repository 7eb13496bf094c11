#!/usr/bin/env bash
# Distributed benchmarks (docs/distributed.md, benches/LOG.md "Data-parallel training"):
#   1. allreduce, 8 B to 64 MiB, 2 local ranks: adjoint-dist (Dist's polled MPI_Iallreduce, and
#      DataParallel::allreduce_mean: packing, Dist's own ring allreduce, views out) next to Open
#      MPI's own MPI_Allreduce and MPI_Iallreduce + MPI_Test (benches/dist/allreduce.c, mpicc);
#   2. the W2 step at the global batch of W2 (128): 1 rank x 2 threads (no MPI) against
#      2 ranks x 1 thread (DataParallel: step, and train_step overlapping the backward sweep;
#      each also with the sharded update through shared memory, --shard),
#      and PyTorch (1 x 2 threads; DDP with gloo on the same 2 ranks) from the benches venv
#      (benches/python/.venv) when torch is installed there;
#   3. the compute of one W2 / W3 step on 1 thread by per-rank batch (benches/dist/model.py).
#
#   benches/dist.sh            # prints the raw lines; results also in runs/dist-<stamp>/, and
#                              # the data-parallel section of BENCHMARKS.md (benches/dist_report.py)
#   PY=../other-checkout/benches/python/.venv/bin/python benches/dist.sh   # torch from another venv
#
# Needs Open MPI (apt-get install openmpi-bin libopenmpi-dev libclang-dev). Reports the load
# average before each part: numbers taken with a load above 0.5 need a re-measure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="runs/dist-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
# No --oversubscribe: 2 ranks fit the 2 cores, and Open MPI then polls instead of yielding.
MPIRUN=(mpirun --allow-run-as-root --bind-to none)
cargo build --release -p adjoint-dist --features mpi --bin adjoint-dist-worker
W="${CARGO_TARGET_DIR:-target}/release/adjoint-dist-worker"
mpicc -O2 -o "$OUT/allreduce" benches/dist/allreduce.c
export RAYON_NUM_THREADS=1

echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/load.txt"
echo "== allreduce (2 ranks): Open MPI, then adjoint-dist"
"${MPIRUN[@]}" -np 2 "$OUT/allreduce" | tee "$OUT/allreduce-openmpi.txt"
"${MPIRUN[@]}" -np 2 "$W" bench-allreduce | tee "$OUT/allreduce-adjoint.txt"

echo "== W2 step, global batch 128 (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT/load.txt"
PY="${PY:-benches/python/.venv/bin/python}"  # PY=/path/to/python to use another venv
HAVE_TORCH=0
"$PY" -c "import torch" 2>/dev/null && HAVE_TORCH=1
for rep in 1 2 3; do
    RAYON_NUM_THREADS=2 "$W" bench-step --plain --global-batch 128 --steps 100
    "${MPIRUN[@]}" -np 2 "$W" bench-step --global-batch 128 --steps 100
    "${MPIRUN[@]}" -np 2 "$W" bench-step --overlap --global-batch 128 --steps 100
    "${MPIRUN[@]}" -np 2 "$W" bench-step --shard --global-batch 128 --steps 100
    "${MPIRUN[@]}" -np 2 "$W" bench-step --shard --overlap --global-batch 128 --steps 100
    if [[ $HAVE_TORCH == 1 ]]; then
        OMP_PROC_BIND=true OMP_PLACES=cores "$PY" benches/dist/ddp_w2.py --ranks 1 --threads 2 --steps 100
        "$PY" benches/dist/ddp_w2.py --ranks 2 --threads 1 --steps 100
    fi
done 2>&1 | grep -v -i warning | tee "$OUT/w2.txt"
[[ $HAVE_TORCH == 1 ]] || echo "!!! torch is not installed in $PY: no PyTorch DDP numbers" | tee -a "$OUT/w2.txt"

echo "== compute of one step on 1 thread by per-rank batch (inputs of benches/dist/model.py)"
for b in 128 64 16 2; do "$W" bench-step --plain --model w2 --global-batch $b --steps 40; done | tee "$OUT/compute.txt"
for b in 64 8 1; do "$W" bench-step --plain --model w3 --global-batch $b --steps 20; done | tee -a "$OUT/compute.txt"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt"
# The data-parallel section of BENCHMARKS.md (between its markers; the rest is left alone).
python3 benches/dist_report.py "$OUT" --md BENCHMARKS.md --command "benches/dist.sh"
echo "== results in $OUT (edit MEASURED in benches/dist/model.py from them, then run it)"
