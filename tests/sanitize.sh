#!/usr/bin/env bash
# Build pyrnn with AddressSanitizer + UndefinedBehaviorSanitizer and run the kernel and layer
# tests against that build. Exits non-zero on any sanitizer report or test failure.
#
#   tests/sanitize.sh                 # default test selection (see TESTS below)
#   tests/sanitize.sh -k lstm         # extra arguments go to pytest
#   tests/sanitize.sh --selftest      # shows the pipeline has teeth: a deliberate heap overflow
#                                     # (through ASan's memmove interceptor) must be reported
#
# Environment:
#   PYTHON            interpreter with numpy, pytest, hypothesis, pybind11, cmeel-eigen (and torch)
#                     (default: /work/venv/bin/python if present, else python3)
#   PYRNN_ASAN_BUILD  build directory (default /tmp/pyrnn-asan); reused between runs
#   PYRNN_SAN_TESTS   space-separated test files to run instead of the default selection
#   PYRNN_SAN_TORCH   1 (default): include the kernel/layer tests that use torch as the oracle;
#                     0: only the torch-free tests (fuzz vs the NumPy reference, stress,
#                     determinism)
#   PYRNN_SAN_BASELINE 1 (default): also run the torch-free tests with PYRNN_ISA=baseline (the
#                     portable kernel build has its own code paths)
#   PYRNN_SAN_KEEP    1: keep the temporary package copy and the sanitizer logs
#
# How it works: cmake configures/builds the extension in its own build dir with
# -fsanitize=address,undefined, installs the three shared libraries into a temporary copy of the
# pyrnn package, and runs pytest there with the ASan runtime preloaded (CPython itself is not
# instrumented, so the runtime must be loaded first). Leak detection is off (CPython's
# interned objects would all be reported; tests/test_leaks.py covers leaks instead). Every
# report goes to a log file; any log file at the end fails the run, even when a report did not
# stop the process.
#
# torch under ASan: the preloaded runtime intercepts malloc/free for torch as well; torch
# imports and runs fine with it (checked at the start; with PYRNN_SAN_TORCH=1 a failing torch
# import is an error, not a silent skip). Tests that measure RSS or set RLIMIT_AS
# (test_leaks.py, test_memory.py) are not run here: ASan's shadow memory and quarantine make
# them meaningless; they skip themselves when PYRNN_SANITIZED=1.
set -euo pipefail

SELFTEST=0
if [[ "${1:-}" == "--selftest" ]]; then SELFTEST=1; shift; fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x /work/venv/bin/python ]]; then PYTHON=/work/venv/bin/python; else PYTHON=python3; fi
fi
BUILD=${PYRNN_ASAN_BUILD:-/tmp/pyrnn-asan}
WITH_TORCH=${PYRNN_SAN_TORCH:-1}
CXX_BIN=${CXX:-g++}

# Kernel and layer tests (tests/test_reference.py checks only the NumPy reference: not here).
TORCH_TESTS="tests/test_functional_torch.py tests/test_bad_input.py tests/test_threads.py
             tests/test_gradcheck.py tests/test_layers.py tests/test_array_pool.py
             tests/test_wavefront.py tests/test_cells.py"
PLAIN_TESTS="tests/test_fuzz.py tests/test_stress.py tests/test_determinism.py"
if [[ -n "${PYRNN_SAN_TESTS:-}" ]]; then
  TESTS=$PYRNN_SAN_TESTS
elif [[ "$WITH_TORCH" == 1 ]]; then
  TESTS="$TORCH_TESTS $PLAIN_TESTS"
else
  TESTS=$PLAIN_TESTS
fi

echo "== sanitize: configure + build in $BUILD"
SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$CXX_BIN" \
  -DCMAKE_CXX_FLAGS="$SAN_FLAGS" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_MODULE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DPython_EXECUTABLE="$PYTHON" \
  -Dpybind11_DIR="$("$PYTHON" -m pybind11 --cmakedir)" >/dev/null
cmake --build "$BUILD" -j "${PYRNN_SAN_JOBS:-2}"

WORK=$(mktemp -d /tmp/pyrnn-san.XXXXXX)
cleanup() {
  if [[ "${PYRNN_SAN_KEEP:-0}" == 1 ]]; then echo "== kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# A copy of the package (Python files only) plus the sanitized libraries, and the tests.
mkdir -p "$WORK/pyrnn" "$WORK/logs"
(cd "$ROOT" && tar --exclude='__pycache__' --exclude='*.so' -cf - pyrnn tests) | tar -xf - -C "$WORK"
cmake --install "$BUILD" --prefix "$WORK" >/dev/null
for lib in _core libpyrnn_kernels_baseline libpyrnn_kernels_avx2 libpyrnn_kernels_avx512; do
  if ! ls "$WORK"/pyrnn/$lib*.so >/dev/null 2>&1; then
    [[ $lib == libpyrnn_kernels_avx* && $(uname -m) != x86_64 ]] && continue
    echo "sanitize: $lib was not installed into $WORK/pyrnn" >&2; exit 2
  fi
done

ASAN_RT=$("$CXX_BIN" -print-file-name=libasan.so)
UBSAN_RT=$("$CXX_BIN" -print-file-name=libubsan.so)
[[ -f "$ASAN_RT" ]] || { echo "sanitize: no ASan runtime ($ASAN_RT)" >&2; exit 2; }
export LD_PRELOAD="$ASAN_RT${UBSAN_RT:+:$UBSAN_RT}"
# allocator_may_return_null=1: a failed huge allocation throws std::bad_alloc (MemoryError) as
# without ASan instead of aborting. detect_leaks=0: CPython "leaks" by design.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$WORK/logs/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$WORK/logs/ubsan"
export PYTHONPATH="$WORK"
export PYTHONDONTWRITEBYTECODE=1
export PYRNN_SANITIZED=1           # lets RSS-based tests skip themselves
export PYRNN_FUZZ_EXAMPLES=${PYRNN_FUZZ_EXAMPLES:-30}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
cd "$WORK"

echo "== sanitize: check the sanitized build is the one imported"
"$PYTHON" - <<'EOF'
import os, sys
import pyrnn, pyrnn._core as core
work = os.environ["PYTHONPATH"]
assert pyrnn.__file__.startswith(work), pyrnn.__file__
assert core.__file__.startswith(work), core.__file__
with open(f"/proc/{os.getpid()}/maps") as f:
    maps = f.read()
assert "libasan" in maps, "ASan runtime not loaded"
import glob
in_use = f"libpyrnn_kernels_{pyrnn._core.isa()}"
for lib in ("libpyrnn_kernels_baseline", "libpyrnn_kernels_avx2", "libpyrnn_kernels_avx512",
            "_core"):
    paths = glob.glob(f"{work}/pyrnn/{lib}*.so")
    if not paths and "avx" in lib:
        continue
    assert paths, lib
    if lib in (in_use, "_core"):
        assert f"{work}/pyrnn/{lib}" in maps, f"{lib} not loaded from the sanitized copy"
    data = open(paths[0], "rb").read()
    assert b"__asan_report_load" in data, f"{lib} is not ASan-instrumented"
    assert b"__ubsan_handle_" in data, f"{lib} is not UBSan-instrumented"
print("pyrnn from", os.path.dirname(pyrnn.__file__), "ISA", pyrnn._config.config().get("isa"))
EOF

if [[ $SELFTEST == 1 ]]; then
  echo "== sanitize selftest: a deliberate heap-buffer-overflow must be reported"
  (set +e; "$PYTHON" -c "
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
p = libc.malloc(16)
dst = ctypes.create_string_buffer(64)
ctypes.memmove(dst, ctypes.c_void_p(p), 32)   # reads 16 bytes past the block
"; true) >/dev/null 2>&1
  if grep -qs "heap-buffer-overflow" "$WORK"/logs/asan*; then
    echo "== sanitize selftest: OK (reported and logged)"
    exit 0
  fi
  echo "== sanitize selftest: FAILED (no report logged)" >&2
  exit 1
fi

if [[ "$WITH_TORCH" == 1 && -z "${PYRNN_SAN_TESTS:-}" ]]; then
  echo "== sanitize: torch under ASan"
  "$PYTHON" -c "import torch; t = torch.randn(8, 8); print('torch', torch.__version__, float((t @ t).sum()) == float((t @ t).sum()))"
fi

echo "== sanitize: pytest $TESTS $*"
status=0
# shellcheck disable=SC2086
"$PYTHON" -m pytest -q -p no:cacheprovider $TESTS "$@" || status=$?

if [[ "${PYRNN_SAN_BASELINE:-1}" == 1 && -z "${PYRNN_SAN_TESTS:-}" ]]; then
  echo "== sanitize: PYRNN_ISA=baseline pytest $PLAIN_TESTS $*"
  # shellcheck disable=SC2086
  PYRNN_ISA=baseline "$PYTHON" -m pytest -q -p no:cacheprovider $PLAIN_TESTS "$@" || status=$?
fi

reports=$(ls "$WORK"/logs 2>/dev/null | wc -l)
if [[ $reports -ne 0 ]]; then
  echo "== sanitize: $reports sanitizer report file(s):" >&2
  for f in "$WORK"/logs/*; do echo "---- $f" >&2; cat "$f" >&2; done
  [[ $status -eq 0 ]] && status=3
fi
if [[ $status -eq 0 ]]; then
  echo "== sanitize: OK (no ASan/UBSan reports, tests passed)"
else
  echo "== sanitize: FAILED (status $status)" >&2
fi
exit $status
