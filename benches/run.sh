#!/usr/bin/env bash
# Side-by-side benchmarks: adjoint vs NumPy, PyTorch and JAX in one invocation; writes BENCHMARKS.md.
#
#   benches/run.sh            full suite (about 5-10 minutes on 2 cores, plus the first install)
#   benches/run.sh --quick    reduced sizes and samples (under 2 minutes once installed)
#   benches/run.sh --train-only [--quick]
#                             only the training-step table (adjoint-nn vs PyTorch eager, ~1 minute)
#
# Environment: PYTHON (interpreter for the venv, default python3), BENCH_OUT (output markdown,
# default BENCHMARKS.md), BENCH_SKIP_INSTALL=1 (use the venv as it is).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

QUICK=""
TRAIN_ONLY=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK="--quick" ;;
        --train-only) TRAIN_ONLY=1 ;;
        *) echo "usage: benches/run.sh [--quick] [--train-only]" >&2; exit 2 ;;
    esac
done

# Peer versions, pinned (all exist on PyPI for CPython 3.11-3.13, linux x86_64).
NUMPY_VERSION=2.4.6
TORCH_VERSION=2.15.0
JAX_VERSION=0.10.2
THREADPOOLCTL_VERSION=3.8.0

PYTHON="${PYTHON:-python3}"
VENV="benches/python/.venv"
PY="$VENV/bin/python"
OUT_MD="${BENCH_OUT:-BENCHMARKS.md}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RUN_DIR="runs/bench-$STAMP"
RESULTS="$RUN_DIR/results.jsonl"
mkdir -p "$RUN_DIR"
: >"$RESULTS"

loud() {
    echo "" >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!!! $*" >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "" >&2
}

FAILED=()   # peers that could not be installed or did not run to the end
declare -A OK=([numpy]=0 [torch]=0 [jax]=0)

# ---- 1. Peers into the venv ----------------------------------------------------------------
if [[ ! -x "$PY" ]]; then
    echo "== creating $VENV with $PYTHON" >&2
    "$PYTHON" -m venv "$VENV" || loud "could not create the venv $VENV: every peer will be missing"
fi
pip_install() { # name, requirement...
    local name="$1"; shift
    if [[ "${BENCH_SKIP_INSTALL:-0}" == "1" ]]; then return 0; fi
    echo "== pip install $*" >&2
    if ! "$PY" -m pip install --disable-pip-version-check -q "$@" >"$RUN_DIR/pip-$name.log" 2>&1; then
        tail -20 "$RUN_DIR/pip-$name.log" >&2
        loud "INSTALL FAILED for $name ($*): continuing without it (log: $RUN_DIR/pip-$name.log)"
        return 1
    fi
}
if [[ -x "$PY" ]]; then
    pip_install threadpoolctl "threadpoolctl==$THREADPOOLCTL_VERSION" || true
    pip_install numpy "numpy==$NUMPY_VERSION" && OK[numpy]=1
    # torch from PyPI is the CUDA build (several GB with its nvidia-* wheels); it runs on CPU.
    pip_install torch "torch==$TORCH_VERSION" && OK[torch]=1
    pip_install jax "jax[cpu]==$JAX_VERSION" && OK[jax]=1
    for lib in numpy torch jax; do
        if [[ ${OK[$lib]} == 1 ]] && ! "$PY" -c "import $lib" >"$RUN_DIR/import-$lib.log" 2>&1; then
            tail -5 "$RUN_DIR/import-$lib.log" >&2
            loud "IMPORT FAILED for $lib: continuing without it"
            OK[$lib]=0
        fi
    done
fi
for lib in numpy torch jax; do [[ ${OK[$lib]} == 1 ]] || FAILED+=("$lib (install)"); done

# ---- 2. adjoint in release -----------------------------------------------------------------
echo "== cargo build --release -p adjoint --example bench_suite" >&2
if ! cargo build --release -p adjoint --example bench_suite >&2; then
    loud "BUILD FAILED for adjoint's bench_suite: nothing to compare"
    exit 1
fi
echo "== cargo build --release -p adjoint-nn --example train_bench" >&2
if ! cargo build --release -p adjoint-nn --example train_bench >&2; then
    loud "BUILD FAILED for adjoint-nn's train_bench: the training table will be missing"
    FAILED+=("adjoint (build: train_bench)")
fi
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
BIN="$TARGET_DIR/release/examples/bench_suite"
TRAIN_BIN="$TARGET_DIR/release/examples/train_bench"

cpu_jiffies() { # "busy idle" jiffies of the whole machine
    local _c u n sy i w irq sirq st _rest
    read -r _c u n sy i w irq sirq st _rest </proc/stat
    echo "$((u + n + sy + irq + sirq + st)) $((i + w))"
}
NCPU="$(nproc)"

# Wait (bounded) until other processes leave the machine mostly idle; the machine is shared.
wait_quiet() {
    local limit="${BENCH_WAIT_QUIET:-$([[ -n "$QUICK" ]] && echo 20 || echo 180)}" waited=0 b0 i0 b1 i1 busy
    while :; do
        read -r b0 i0 < <(cpu_jiffies); sleep 2; read -r b1 i1 < <(cpu_jiffies)
        busy=$(( 100 * (b1 - b0) / (b1 - b0 + i1 - i0 + 1) ))
        if (( busy < 25 )); then
            echo "machine busy ${busy}% just before the run (waited ${waited}s for it to be < 25%)"
            return
        fi
        if (( waited >= limit )); then
            echo "machine still ${busy}% busy with other processes after waiting ${waited}s: running anyway (expect noise)"
            return
        fi
        sleep 8; waited=$((waited + 10))
    done
}

# ---- 3. Machine --------------------------------------------------------------------------------
MACHINE="$RUN_DIR/machine.txt"
echo "== waiting (bounded) for other processes to leave the machine quiet" >&2
{
    lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|L1d|L2|L3|Flags)' \
        | sed -E 's/^(Flags:\s+).*/\1(avx2: '"$(grep -qw avx2 /proc/cpuinfo && echo yes || echo no)"', avx512f: '"$(grep -qw avx512f /proc/cpuinfo && echo yes || echo no)"')/'
    free -h | head -2
    echo "kernel: $(uname -sr)"
    echo "rustc: $(rustc --version)"
    echo "python: $("$PY" --version 2>&1)"
    echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    wait_quiet
    # Is the second core free (not shared with another guest, not kept busy)? report.py warns if not.
    echo "second core before the run: $("$PY" benches/core_probe.py 2>/dev/null || echo '{}')"
} >"$MACHINE"

PIN1=()
if command -v taskset >/dev/null; then PIN1=(taskset -c 0); fi

xla_flags() { # threads -> XLA_FLAGS value
    if [[ "$1" == 1 ]]; then
        echo "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    else
        echo "--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=$1"
    fi
}

run_side() { # lib threads suite [extra args...]
    local lib="$1" t="$2" suite="$3"; shift 3
    local pin=(); [[ "$t" == 1 ]] && pin=("${PIN1[@]}")
    local tag="$suite${*:+-$(printf '%s' "$*" | tr -c 'A-Za-z0-9' _)}"
    local log="$RUN_DIR/$lib-t$t-$tag.err" tfile="$RUN_DIR/$lib-t$t-$tag.time"
    [[ "$lib" == adjoint || ${OK[$lib]} == 1 ]] || return 0
    echo "== $lib, $t thread(s), suite $suite $*" >&2
    local b0 i0 b1 i1
    read -r b0 i0 < <(cpu_jiffies)
    local timer=(); [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f "%e %U %S" -o "$tfile")
    if [[ "$lib" == adjoint ]]; then
        local bin="$BIN"; [[ "$suite" == train ]] && bin="$TRAIN_BIN"
        env RAYON_NUM_THREADS="$t" "${timer[@]}" "${pin[@]}" "$bin" --suite "$suite" $QUICK "$@" >>"$RESULTS" 2>"$log"
    else
        local unset=()
        [[ "$lib" == numpy ]] && unset=(-u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
        env "${unset[@]}" OMP_PROC_BIND=true OMP_PLACES=cores \
            OMP_NUM_THREADS="$t" MKL_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" \
            XLA_FLAGS="$(xla_flags "$t")" \
            "${timer[@]}" "${pin[@]}" "$PY" benches/python/peers.py --lib "$lib" --threads "$t" --suite "$suite" $QUICK "$@" \
            >>"$RESULTS" 2>"$log"
    fi
    local rc=$?
    read -r b1 i1 < <(cpu_jiffies)
    if [[ -s "$tfile" ]]; then # how much of the machine other processes used meanwhile
        local tk; tk="$(getconf CLK_TCK)"
        read -r e u sy < <(tail -1 "$tfile")
        "$PYTHON" -c 'import json,sys; lib,t,suite,e,u,s,busy,tk,ncpu=sys.argv[1:]; e,u,s,busy,tk,ncpu=map(float,(e,u,s,busy,tk,ncpu)); busy/=tk; print(json.dumps({"lib":"noise","meta":True,"side":lib,"threads":int(t),"suite":suite,"wall_s":e,"own_cpu_s":u+s,"others_cpu_frac":max(0.0,(busy-u-s)/(e*ncpu)) if e>0 else None}))' \
            "$lib" "$t" "$suite" "$e" "$u" "$sy" "$((b1 - b0))" "$tk" "$NCPU" >>"$RESULTS" 2>/dev/null || true
    fi
    if [[ $rc != 0 ]]; then
        tail -15 "$log" >&2
        loud "$lib ($t thread(s), $suite) exited with $rc: its remaining results are missing (log: $log)"
        FAILED+=("$lib (run: $t thread(s), $suite, rc $rc)")
    fi
}

# ---- 4. The runs -------------------------------------------------------------------------------
START=$(date +%s)
if [[ $TRAIN_ONLY == 1 ]]; then
    :
elif [[ -n "$QUICK" ]]; then
    # 1 thread: matmul only (checks that the rayon pool scales); 2 threads: everything, smaller.
    for lib in adjoint numpy torch jax; do run_side "$lib" 1 tensor --only matmul; done
    for lib in adjoint numpy torch jax; do run_side "$lib" 2 all; done
else
    for t in 1 2; do
        for lib in adjoint numpy torch jax; do run_side "$lib" "$t" tensor; done
    done
    for lib in adjoint numpy torch jax; do run_side "$lib" 2 transforms; done
    for lib in adjoint torch jax; do run_side "$lib" 2 vmap; done
fi
# Training steps (adjoint-nn vs PyTorch eager), 2 threads, one process per workload so that the
# peak-RSS figures do not mix; the two sides alternate per workload.
# Then adjoint's jitted step (`--jit`, its own process too): issue 16's peak memory ≤ eager's.
for w in mlp cnn lstm; do
    for lib in adjoint torch; do run_side "$lib" 2 train --only "$w"; done
    run_side adjoint 2 train --only "$w" --jit
done
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$MACHINE"
echo "second core after the run: $("$PY" benches/core_probe.py 2>/dev/null || echo '{}')" >>"$MACHINE"
echo "suite wall time: $(( $(date +%s) - START )) s" >>"$MACHINE"

# ---- 5. Report ---------------------------------------------------------------------------------
CMD="benches/run.sh${QUICK:+ --quick}"; [[ $TRAIN_ONLY == 1 ]] && CMD="$CMD --train-only"
"$PYTHON" benches/report.py "$RESULTS" --machine "$MACHINE" --command "$CMD" \
    --date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" --log "$RESULTS" \
    --failures "$(printf '%s; ' "${FAILED[@]}" | sed 's/; $//')" ${QUICK:+--quick} --out "$OUT_MD"
if ((${#FAILED[@]})); then
    loud "some peers are missing from $OUT_MD: ${FAILED[*]}"
fi
echo "== wrote $OUT_MD (raw results in $RESULTS)" >&2
