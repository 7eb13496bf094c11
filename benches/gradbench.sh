#!/usr/bin/env bash
# Run GradBench's evals against adjoint-gradbench and GradBench's `manual` C++ tool (optionally
# its pytorch and jax tools) through GradBench's own CLI (`gradbench run`), each tool pinned to
# the same core and run back to back, then render the scores with gradbench_table.py.
#
# Usage: benches/gradbench.sh GRADBENCH_CHECKOUT [EVAL...]
#   env: GRADBENCH_CLI (default GRADBENCH_CHECKOUT/target/release/gradbench): the CLI, built with
#          `cargo build --release -p gradbench` in the checkout;
#        VENV (default /work/gbvenv): a Python venv with the gradbench package installed
#          (pip install -e GRADBENCH/python/gradbench pydantic numpy scipy dataclasses-json;
#          torch / jax for those tools);
#        TOOLS (default "adjoint manual"); EVAL_ARGS (extra eval flags, e.g. "--min-seconds 0"
#          for a quick validation pass), EVAL_ARGS_<eval> (for one eval, e.g. EVAL_ARGS_ht=
#          "--max 11"); CPU (default 1): the core both tools run on;
#        LOGS (default benches/gradbench-logs): where `gradbench run -o` writes EVAL/TOOL.jsonl;
#        CARGO_TARGET_DIR (if set): where the adjoint-gradbench binary is built and taken from;
#        SUMMARY: where the scores go as JSON (default benches/gradbench-summary.json for a run
#          of every eval, LOGS/summary.json for a run of some: a subset never overwrites the
#          committed summary of a full run).
# Nothing of GradBench is copied into this repo: the checkout is used in place. The manual tool
# is built there by GradBench's cpp.py (needs nlohmann/json: apt-get install nlohmann-json3-dev,
# linked as GRADBENCH/cpp/json.hpp).
set -euo pipefail
GB=$(realpath "${1:?usage: benches/gradbench.sh GRADBENCH_CHECKOUT [EVAL...]}")
shift
HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-/work/gbvenv}
PY="$VENV/bin/python"
CLI=${GRADBENCH_CLI:-$GB/target/release/gradbench}
CPU=${CPU:-1}
TOOLS=${TOOLS:-"adjoint manual"}
ALL="hello lse llsq det ode kmeans gmm lstm ba ht particle saddle"
EVALS=${*:-$ALL}
LOGS=${LOGS:-$HERE/benches/gradbench-logs}
export RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

(cd "$HERE" && cargo build --release -p adjoint-gradbench)
BIN="${CARGO_TARGET_DIR:-$HERE/target}/release/adjoint-gradbench"
[ -x "$CLI" ] || { echo "gradbench CLI not found at $CLI (cargo build --release -p gradbench in $GB)" >&2; exit 2; }
[ -e "$GB/cpp/json.hpp" ] || ln -s /usr/include/nlohmann/json.hpp "$GB/cpp/json.hpp"
make -C "$GB/cpp" >/dev/null
# Several evals validate against the manual tool's binaries (GradBench's eval images build them).
make -C "$GB/tools/manual" -j2 >/dev/null

# Which evals each reference tool implements (GradBench's tools/*/evals.txt).
implements() { grep -qx "$2" "$GB/tools/$1/evals.txt" 2>/dev/null; }

cd "$GB"
for ev in $EVALS; do
  mkdir -p "$LOGS/$ev"
  for tool in $TOOLS; do
    case $tool in
      adjoint) cmd="$BIN" ;;
      manual) implements manual "$ev" || continue; cmd="$PY python/gradbench/gradbench/cpp.py manual" ;;
      pytorch) implements pytorch "$ev" || continue; cmd="$PY python/gradbench/gradbench/tools/pytorch/run.py" ;;
      jax) implements jax "$ev" || continue; cmd="$PY python/gradbench/gradbench/tools/jax/run.py" ;;
    esac
    echo "== $tool $ev" >&2
    # `gradbench run` exits non-zero when the eval or the tool fails or an output is invalid;
    # the table reports that tool as failed.
    extra=EVAL_ARGS_$ev
    rc=0
    "$CLI" run -o "$LOGS/$ev/$tool.jsonl" \
      --eval "$PY python/gradbench/gradbench/evals/$ev/run.py ${EVAL_ARGS:-} ${!extra:-}" \
      --tool "taskset -c $CPU $cmd" > "$LOGS/$ev/$tool.out" 2>&1 || rc=$?
    echo "$rc" > "$LOGS/$ev/$tool.rc"
  done
done
if [ "$EVALS" = "$ALL" ]; then DEFAULT_SUMMARY=$HERE/benches/gradbench-summary.json; else DEFAULT_SUMMARY=$LOGS/summary.json; fi
"$PY" "$HERE/benches/gradbench_table.py" "$LOGS" "${SUMMARY:-$DEFAULT_SUMMARY}"
