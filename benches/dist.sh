#!/usr/bin/env bash
# Distributed benchmarks (docs/distributed.md, BENCHMARKS.md "Data-parallel training"):
#   1. allreduce, 8 B to 64 MiB, 2 local ranks: adjoint-dist (Dist's polled MPI_Iallreduce, and
#      DataParallel::allreduce_mean with its bucketing) next to Open MPI's own MPI_Allreduce
#      (benches/dist/allreduce.c, built with mpicc);
#   2. the W2 step at the global batch of W2 (128): 1 rank x 2 threads (no MPI) against
#      2 ranks x 1 thread (DataParallel), and PyTorch DDP (gloo) on the same 2 ranks from the
#      benches venv (benches/python/.venv) when torch is installed there.
#
#   benches/dist.sh            # prints the raw lines; results also in runs/dist-<stamp>/
#
# Needs Open MPI (apt-get install openmpi-bin libopenmpi-dev libclang-dev). Reports the load
# average before each part: numbers taken with a load above 0.5 need a re-measure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="runs/dist-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
cargo build --release -p adjoint-dist --features mpi --bin adjoint-dist-worker
W="${CARGO_TARGET_DIR:-target}/release/adjoint-dist-worker"
mpicc -O2 -o "$OUT/allreduce" benches/dist/allreduce.c

echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/load.txt"
echo "== allreduce (2 ranks)"
RAYON_NUM_THREADS=1 "${MPIRUN[@]}" -np 2 "$OUT/allreduce" | tee "$OUT/allreduce-openmpi.txt"
RAYON_NUM_THREADS=1 "${MPIRUN[@]}" -np 2 "$W" bench-allreduce | tee "$OUT/allreduce-adjoint.txt"

echo "== W2 step, global batch 128 (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT/load.txt"
for rep in 1 2 3; do
    RAYON_NUM_THREADS=2 "$W" bench-step --plain --global-batch 128 --steps 100
    RAYON_NUM_THREADS=1 "${MPIRUN[@]}" -np 2 "$W" bench-step --global-batch 128 --steps 100
done | tee "$OUT/w2-adjoint.txt"
PY=benches/python/.venv/bin/python
if "$PY" -c "import torch" 2>/dev/null; then
    for rep in 1 2 3; do
        "$PY" benches/dist/ddp_w2.py --ranks 1 --threads 2 --steps 100
        "$PY" benches/dist/ddp_w2.py --ranks 2 --threads 1 --steps 100
    done | tee "$OUT/w2-pytorch.txt"
else
    echo "!!! torch is not installed in $PY: no PyTorch DDP numbers" | tee "$OUT/w2-pytorch.txt"
fi
echo "== results in $OUT"
