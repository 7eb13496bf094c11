#!/usr/bin/env bash
# Run GradBench's evals against adjoint-gradbench and the reference tools (manual, pytorch, jax)
# on this machine, single-threaded and pinned, and print one summary JSON line per
# (tool, eval) into benches/gradbench-results.jsonl (then render with gradbench_table.py).
#
# Usage: benches/gradbench.sh GRADBENCH_CHECKOUT [EVAL...]
#   env: VENV (default /work/gbvenv): a Python venv with the gradbench package installed
#          (pip install -e GRADBENCH/python/gradbench pydantic numpy scipy dataclasses-json)
#          and torch + jax for the pytorch/jax tools;
#        TOOLS (default "adjoint manual pytorch jax"); EVAL_ARGS (extra eval flags, e.g.
#          "--min-seconds 0" for a quick validation pass); CPU (default 1): core to pin to.
# Nothing of GradBench is copied into this repo: the checkout is used in place. The manual
# tool is built there with the system compiler (needs nlohmann/json: apt-get install
# nlohmann-json3-dev, linked as GRADBENCH/cpp/json.hpp).
set -euo pipefail
GB=$(realpath "${1:?usage: benches/gradbench.sh GRADBENCH_CHECKOUT [EVAL...]}")
shift
HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-/work/gbvenv}
PY="$VENV/bin/python"
CPU=${CPU:-1}
TOOLS=${TOOLS:-"adjoint manual pytorch jax"}
EVALS=${*:-"hello lse llsq det ode kmeans gmm lstm ba particle saddle"}
OUT=${OUT:-$HERE/benches/gradbench-results.jsonl}
export RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

(cd "$HERE" && cargo build --release -p adjoint-gradbench)
BIN="$HERE/target/release/adjoint-gradbench"
[ -e "$GB/cpp/json.hpp" ] || ln -s /usr/include/nlohmann/json.hpp "$GB/cpp/json.hpp"

# Which evals each reference tool implements (GradBench's tools/*/evals.txt).
implements() { grep -qx "$2" "$GB/tools/$1/evals.txt" 2>/dev/null; }

: > "$OUT"
for ev in $EVALS; do
  for tool in $TOOLS; do
    case $tool in
      adjoint) cmd="$BIN" ;;
      manual) implements manual "$ev" || continue; cmd="$PY python/gradbench/gradbench/cpp.py manual" ;;
      pytorch) implements pytorch "$ev" || continue; cmd="$PY python/gradbench/gradbench/tools/pytorch/run.py" ;;
      jax) implements jax "$ev" || continue; cmd="$PY python/gradbench/gradbench/tools/jax/run.py" ;;
    esac
    echo "== $tool $ev" >&2
    # shellcheck disable=SC2086
    "$PY" "$HERE/benches/gradbench_driver.py" --cwd "$GB" --name "$tool/$ev" \
      --eval "$PY python/gradbench/gradbench/evals/$ev/run.py ${EVAL_ARGS:-}" \
      --tool "taskset -c $CPU $cmd" >> "$OUT" || echo "{\"name\": \"$tool/$ev\", \"ok\": false, \"error\": \"driver failed\"}" >> "$OUT"
  done
done
"$PY" "$HERE/benches/gradbench_table.py" "$OUT"
