#!/usr/bin/env bash
# Valgrind memcheck over a short forward/backward of every cell (float32/float64, forward and
# reverse, with and without lengths, inference and training, 1 and 2 OpenMP threads) through
# the compiled extension, for each instruction-set build (PYRNN_ISA=avx2 and baseline; valgrind
# 3.19 does not decode AVX-512, so the avx512 build is covered by tests/sanitize.sh instead).
#
#   tests/valgrind.sh            # the extension built in the source tree
#   tests/valgrind.sh --selftest # shows the check has teeth: feeds the kernels an uninitialised
#                                # x (np.empty) and succeeds only if memcheck flags pyrnn stacks
#
# Fails (exit 1) when memcheck reports, in a stack that goes through pyrnn's libraries
# (_core*.so, libpyrnn_kernels_*.so): an invalid read/write/free, a use of uninitialised
# values, overlapping memcpy, a mismatched free, or memory definitely lost. Reports whose stacks
# do not touch pyrnn (CPython, NumPy, libgomp start-up) are counted and listed, not failed on:
# they are not ours and vary with the Python build. Also fails if the driver itself fails
# (its own checks: finite results, equal to the pure-NumPy reference).
#
# Environment: PYTHON (default /work/venv/bin/python if present, else python3),
#              PYRNN_VG_KEEP=1 keeps the logs (path printed), PYRNN_VG_ISAS="avx2 baseline".
# The kernels keep scratch memory uninitialised between calls (csrc/pyrnn/workspace.h), so the
# "uninitialised" checks here are meaningful: any read of scratch before it is written shows.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x /work/venv/bin/python ]]; then PYTHON=/work/venv/bin/python; else PYTHON=python3; fi
fi
SELFTEST=0
[[ "${1:-}" == "--selftest" ]] && SELFTEST=1
command -v valgrind >/dev/null || { echo "valgrind: not installed" >&2; exit 2; }
WORK=$(mktemp -d /tmp/pyrnn-vg.XXXXXX)
cleanup() {
  if [[ "${PYRNN_VG_KEEP:-0}" == 1 ]]; then echo "== kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

cat >"$WORK/driver.py" <<'EOF'
import sys
import numpy as np
import pyrnn
from pyrnn import functional as F, reference as R

print("pyrnn", pyrnn.__file__, "isa", pyrnn._config.config()["isa"], flush=True)
G = {"lstm": 4, "gru": 3, "rnn": 1}
checked = 0


def case(cell, nl, dtype, T, B, I, H, reverse, lengths, nt, seed, w_scale=0.5):
    global checked
    rng = np.random.default_rng(seed)
    u = lambda *s, scale=0.5: rng.uniform(-scale, scale, s).astype(dtype)  # noqa: E731
    GH = G[cell] * H
    x = u(T, B, I)
    w = [u(*s, scale=w_scale) for s in ((GH, I), (GH, H), (GH,), (GH,))]
    lstm = cell == "lstm"
    state = (u(B, H), u(B, H)) if lstm else u(B, H)
    dstate = (u(B, H), u(B, H)) if lstm else u(B, H)
    dy = u(T, B, H)
    lens = rng.integers(0, T + 1, B) if lengths else None
    kw = dict(reverse=reverse, lengths=lens)
    if nl:
        kw["nonlinearity"] = nl
    outs = []
    for mod in (F, R):
        fwd, bwd = getattr(mod, cell + "_forward"), getattr(mod, cell + "_backward")
        extra = dict(num_threads=nt) if mod is F else {}
        y_inf = fwd(x, *w, state, training=False, **kw, **extra)[0]
        y, st, cache = fwd(x, *w, state, training=True, **kw, **extra)
        dx, dst, dp = bwd(cache, dy, dstate)
        flat = [y_inf, y, dx] + list(st if lstm else [st]) + list(dst if lstm else [dst])
        outs.append(flat + [dp[k] for k in sorted(dp)])
    tol = 1e-9 if dtype == np.float64 else 2e-3
    for got, want in zip(*outs):
        if not np.isfinite(got).all():
            sys.exit(f"non-finite result: {cell} {nl} {dtype} reverse={reverse}")
        if not np.allclose(got, want, rtol=tol, atol=tol):
            sys.exit(f"differs from reference: {cell} {nl} {dtype} reverse={reverse}")
    checked += 1


import os
if os.environ.get("PYRNN_VG_SELFTEST") == "1":
    # Deliberately bad input to the raw binding: lengths in uninitialised memory (a fresh
    # malloc, which memcheck marks undefined). The binding's range check and the kernel's
    # per-row length tests branch on them: memcheck must report that in pyrnn's stacks.
    # (Kernel arithmetic itself is branch-free, so undefined *values* in x would only be
    # reported where a later consumer branches on the results, outside pyrnn.)
    from pyrnn import _core
    x = np.ones((3, 32, 64))
    w = np.full((64, 64), 0.01)
    lens = np.empty(32, np.int64)
    try:
        _core.forward(3, x, w, w, None, None, None, None, lens, False, False, 1)
    except ValueError:
        pass  # garbage out of range: refused, after branching on it
    print("selftest: called the kernel binding with uninitialised lengths", flush=True)
    sys.exit(0)

for cell, nl in (("lstm", None), ("gru", None), ("rnn", "tanh"), ("rnn", "relu")):
    for dtype in (np.float32, np.float64):
        for i, (reverse, lengths) in enumerate(((False, False), (True, False), (False, True),
                                                (True, True))):
            case(cell, nl, dtype, 3, 3, 5, 9, reverse, lengths, 1, seed=i)
    # Two OpenMP threads really used: per-step recurrent work >= 2M flops (step_threads).
    H = 256 if cell == "rnn" else 128
    case(cell, nl, np.float32, 2, 32, 8, H, True, True, 2, seed=9)
    # Single steps and batches of 1-2: weights used unpacked, products as row dot products.
    for T, B in ((1, 2), (4, 1)):
        case(cell, nl, np.float32, T, B, 5, 9, True, True, 1, seed=5)
    # Batches of 1-2 on large float32 weights, packed: the backward from 1 MiB of them (LSTM
    # H=256), the forward where one thread streams 10 MiB or more over 16 steps (GRU H=936).
    # Weights of scale 1/sqrt(H): at +-0.5 a layer this wide is chaotic, and float32 rounding
    # alone (NumPy's as much as pyrnn's) moves h by 5e-3 within 16 steps.
    if cell == "lstm":
        case(cell, nl, np.float32, 4, 1, 5, 256, True, True, 1, seed=8, w_scale=256 ** -0.5)
    if cell == "gru":
        case(cell, nl, np.float32, 16, 2, 5, 936, False, False, 1, seed=8, w_scale=936 ** -0.5)


def proj_case(dtype, T, B, I, H, P, nt, seed):
    """LSTM with projection (no NumPy reference): finite, inference == training forward."""
    global checked
    rng = np.random.default_rng(seed)
    u = lambda *s: rng.uniform(-0.5, 0.5, s).astype(dtype)  # noqa: E731
    x, w = u(T, B, I), [u(4 * H, I), u(4 * H, P), u(4 * H), u(4 * H)]
    kw = dict(reverse=True, lengths=rng.integers(0, T + 1, B), num_threads=nt, w_hr=u(P, H))
    state = (u(B, P), u(B, H))
    y_inf = F.lstm_forward(x, *w, state, **kw)[0]
    y, (h, c), cache = F.lstm_forward(x, *w, state, training=True, **kw)
    dx, (dh, dc), dp = F.lstm_backward(cache, u(T, B, P), (u(B, P), u(B, H)))
    for a in [y, h, c, dx, dh, dc] + list(dp.values()):
        if not np.isfinite(a).all():
            sys.exit("non-finite result: lstm projection")
    if not np.array_equal(y_inf, y):
        sys.exit("lstm projection: inference and training forward differ")
    checked += 1


proj_case(np.float64, 3, 3, 5, 9, 4, 1, seed=6)
proj_case(np.float32, 2, 8, 5, 200, 60, 2, seed=7)  # two threads, P split unevenly
# Empty and degenerate sizes.
for T, B, I, H in ((0, 2, 3, 4), (2, 0, 3, 4), (2, 2, 0, 4), (2, 2, 3, 0), (1, 1, 1, 1)):
    case("lstm", None, np.float64, T, B, I, H, True, True, 1, seed=3)
print("driver: checked", checked, "cases", flush=True)
EOF

status=0
flagged=0
ISAS=${PYRNN_VG_ISAS:-avx2 baseline}
[[ $SELFTEST == 1 ]] && ISAS=${PYRNN_VG_ISAS:-avx2}
for isa in $ISAS; do
  log="$WORK/memcheck-$isa.log"
  echo "== valgrind memcheck, PYRNN_ISA=$isa"
  rc=0
  # OPENBLAS_NUM_THREADS=1: valgrind runs one thread at a time, and the NumPy reference's
  # BLAS threads spinning for work made the larger cases take minutes instead of seconds.
  (cd "$ROOT" && PYRNN_VG_SELFTEST=$SELFTEST PYRNN_ISA=$isa PYTHONMALLOC=malloc OMP_NUM_THREADS=2 \
    OPENBLAS_NUM_THREADS=1 PYTHONPATH="$ROOT" \
    valgrind --tool=memcheck --error-limit=no --track-origins=yes --leak-check=full \
      --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=40 \
      --log-file="$log" \
      "$PYTHON" "$WORK/driver.py") || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "valgrind.sh: the driver failed under valgrind (rc $rc, PYRNN_ISA=$isa); log tail:" >&2
    tail -40 "$log" >&2
    status=1
    continue
  fi
  # Split the log into error blocks (one per report; blank '==PID== ' lines separate them) and
  # keep those whose stack goes through pyrnn's libraries.
  arc=0
  "$PYTHON" - "$log" "$isa" <<'EOF' || arc=$?
import re, sys
log, isa = sys.argv[1], sys.argv[2]
text = open(log, errors="replace").read()
lines = [re.sub(r"^==\d+== ?", "", l) for l in text.splitlines()]
blocks, cur = [], []
for l in lines:
    if l.strip() == "":
        if cur:
            blocks.append(cur)
        cur = []
    else:
        cur.append(l)
if cur:
    blocks.append(cur)
KINDS = ("Invalid read", "Invalid write", "Invalid free", "uninitialised",
         "Mismatched free", "overlap", "definitely lost", "Syscall param")
PYRNN = re.compile(r"libpyrnn_kernels_|/_core\.cpython|pyrnn::")
errors = [b for b in blocks if any(k in b[0] for k in KINDS)]
ours = [b for b in errors if any(PYRNN.search(l) for l in b)]
summary = [l for l in lines if l.startswith("ERROR SUMMARY")]
print(f"   {isa}: {len(errors)} memcheck report(s) in total, {len(ours)} in pyrnn stacks;",
      summary[-1] if summary else "no ERROR SUMMARY line")
others = {}
for b in errors:
    if b not in ours:
        others[b[0]] = others.get(b[0], 0) + 1
for head, n in sorted(others.items()):
    print(f"     not ours ({n}x): {head}")
for b in ours:
    print("---- pyrnn report:\n" + "\n".join(b))
if not summary:
    print("valgrind.sh: no ERROR SUMMARY: memcheck did not finish", file=sys.stderr)
    sys.exit(2)
sys.exit(1 if ours else 0)
EOF
  if [[ $arc -eq 1 ]]; then flagged=1; status=1; elif [[ $arc -ne 0 ]]; then status=1; fi
done

if [[ $SELFTEST == 1 ]]; then
  if [[ $flagged -eq 1 ]]; then
    echo "== valgrind selftest: OK (the uninitialised input was reported in pyrnn stacks)"
    exit 0
  fi
  echo "== valgrind selftest: FAILED (memcheck did not flag the uninitialised input)" >&2
  exit 1
fi
if [[ $status -eq 0 ]]; then
  echo "== valgrind: OK (no memcheck reports in pyrnn stacks)"
else
  echo "== valgrind: FAILED" >&2
fi
exit $status
