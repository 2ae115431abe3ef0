"""Memory: impossible requests fail cleanly; inference memory does not grow with T beyond y.

Impossible scratch. No cheap public input makes the kernels' scratch memory fail while the
outputs fit: every scratch buffer is at most ~G times an output or an input of the same call
(input projection chunk [Tc*B, G*H] vs h_n [B, H]; backward gate gradients [T, B, G*H] vs the
saved gates [T, B, G*H]), and the outputs are allocated (by NumPy) before the kernel runs. Huge
sizes therefore fail in NumPy's allocation of y first: MemoryError ("Unable to allocate ...")
when the byte count is representable, ValueError ("array is too big") when it overflows int64.
To reach the kernels' own allocation, the tests run in a subprocess under an address-space
limit (RLIMIT_AS) set just above what the outputs need, with x of shape [T, B, 0] (free): the
scratch allocation then fails, std::bad_alloc must reach Python as MemoryError (not a crash, not
ValueError), the process stays healthy, and a refused backward leaves its cache usable.
The limit also makes every huge request in these tests safe on machines that overcommit.

Bounded inference: the input projection is computed in chunks of steps, so an inference forward
needs y plus scratch independent of T. Peak RSS growth of an LSTM forward with T=1000 vs
T=20000 (B=4, I=16, H=128, float32) is measured (VmHWM, reset through /proc/self/clear_refs)
and must be y plus a few MB.

Huge pages: the scratch block a thread keeps between calls is advised into transparent huge
pages (csrc/pyrnn/workspace.h); a fresh process must show them (AnonHugePages) after one call
with 16 MiB of packed weights, where the system has THP in "madvise" or "always" mode.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import pyrnn

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.environ.get("PYRNN_SANITIZED") == "1",
    reason="needs Linux RLIMIT_AS and /proc; ASan reserves terabytes of shadow memory")

MB = 1 << 20


def _run_script(body: str, timeout=240, **env_vars):
    """Run ``body`` in a fresh interpreter that imports this pyrnn; returns its last JSON line."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyrnn.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", **env_vars)
    prelude = textwrap.dedent("""
        import ctypes, gc, json, os, resource, sys
        import numpy as np
        from pyrnn import functional as F

        def status(key):
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1]) * 1024
            raise KeyError(key)

        def settle():
            gc.collect()
            try:
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            except (OSError, AttributeError):
                pass

        def limit(extra_bytes):
            # Address space: what is mapped now plus extra_bytes (the safety net of this test).
            settle()
            soft = status("VmSize") + int(extra_bytes)
            resource.setrlimit(resource.RLIMIT_AS, (soft, resource.RLIM_INFINITY))

        def unlimited():
            resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

        def attempt(fn):
            try:
                fn()
                return ["ok", ""]
            except BaseException as e:
                return [type(e).__name__, str(e)[:300]]
    """)
    out = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(body)], env=env, cwd=root,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"subprocess died (rc {out.returncode}):\n{out.stderr[-4000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


_SCRATCH_SCRIPT = """
    res = {}
    G, H = 4, 16

    # 1. Backward: the gate-gradient scratch [T, B, G*H] cannot be allocated. A fresh process,
    #    so no freed memory of earlier calls can serve it. Outputs (dx [T,B,0], dh0, dc0,
    #    dw_ih [G*H,0], dw_hh) are tiny.
    T, B = 128, 1024                      # scratch 64 MiB (float64), outputs < 1 MiB
    w_hh = np.full((G * H, H), 0.05)
    x = np.ones((T, B, 0))
    w_ih = np.empty((G * H, 0))
    dh = np.ones((B, H))
    y, st, cache = F.lstm_forward(x, w_ih, w_hh, training=True, num_threads=1)
    limit(8 << 20)
    res["backward"] = attempt(lambda: F.lstm_backward(cache, None, (dh, None)))
    unlimited()
    res["cache_after"] = repr(cache)
    dx, (dh0, dc0), dp = F.lstm_backward(cache, None, (dh, None))
    want = F.lstm_backward(F.lstm_forward(x, w_ih, w_hh, training=True, num_threads=1)[2],
                           None, (dh, None))
    res["retry_equal"] = bool(np.array_equal(dh0, want[1][0]) and
                              np.array_equal(dp["w_hh"], want[2]["w_hh"]))
    del y, st, cache, dx, dh0, dc0, dp, want

    # 2. Inference forward: the outputs y, h_n, c_n ([1, B, H], [B, H], [B, H]: 3 x 32 MiB,
    #    never touched before the kernel runs) fit under the limit, the scratch (input
    #    projection chunk and recurrent projection, each [B, G*H]: 2 x 128 MiB) does not.
    T, B = 1, 1 << 18
    x = np.empty((T, B, 0))
    outputs = 3 * B * H * 8
    limit(outputs + (48 << 20))
    res["inference"] = attempt(lambda: F.lstm_forward(x, w_ih, w_hh, num_threads=1))
    res["inference_train"] = attempt(lambda: F.lstm_forward(x, w_ih, w_hh, training=True,
                                                            num_threads=1))
    unlimited()

    # 3. Absurd sizes: y itself cannot be allocated (256 TiB; > the x86-64 address space),
    #    or its byte count overflows int64. x is [T, B, 0] (free). Under a 4 GiB limit.
    limit(4 << 30)
    for name, (T, B, H) in {"y_256TiB": (1 << 25, 1 << 20, 1),
                            "y_bytes_overflow": (1 << 39, 1 << 20, 2)}.items():
        x = np.empty((T, B, 0))  # NumPy checks T*B*8 < 2**63 even for I = 0
        res[name] = attempt(lambda: F.rnn_forward(x, np.empty((H, 0)), np.ones((H, H)),
                                                  num_threads=1))
    unlimited()

    # 4. Healthy afterwards.
    y = F.gru_forward(np.ones((3, 2, 4)), np.full((9, 4), 0.1), np.full((9, 3), 0.1))[0]
    res["healthy"] = bool(np.isfinite(y).all() and y.shape == (3, 2, 3))
    print(json.dumps(res))
"""


@pytest.fixture(scope="module")
def scratch_results():
    return _run_script(_SCRATCH_SCRIPT)


def _is_kernel_memory_error(result):
    kind, msg = result
    return kind == "MemoryError" and "Unable to allocate" not in msg  # not NumPy's (outputs)


def test_backward_scratch_failure_is_memory_error(scratch_results):
    r = scratch_results
    assert _is_kernel_memory_error(r["backward"]), r["backward"]
    assert "ready" in r["cache_after"], r["cache_after"]  # a refused backward consumes nothing
    assert r["retry_equal"]


def test_inference_scratch_failure_is_memory_error(scratch_results):
    r = scratch_results
    assert _is_kernel_memory_error(r["inference"]), r["inference"]
    # Training additionally allocates the saves [T, B, G*H] in NumPy: either may fail first,
    # but it must be a MemoryError.
    assert r["inference_train"][0] == "MemoryError", r["inference_train"]


def test_absurd_sizes_fail_cleanly(scratch_results):
    r = scratch_results
    assert r["y_256TiB"][0] == "MemoryError", r["y_256TiB"]
    # Byte counts beyond int64: NumPy refuses to even describe the array, with a ValueError.
    # Measured behaviour, asserted so that a change is noticed: the binding passes NumPy's
    # ValueError through ("array is too big; ...") rather than raising MemoryError.
    for key in ("y_bytes_overflow",):
        kind, msg = r[key]
        assert kind in ("MemoryError", "ValueError"), r[key]
        if kind == "ValueError":
            assert "too big" in msg, r[key]


def test_process_healthy_after_memory_errors(scratch_results):
    assert scratch_results["healthy"]


_PEAK_SCRIPT = """
    B, I, H = 4, 16, 128
    rng = np.random.default_rng(0)
    w = [rng.uniform(-0.1, 0.1, s).astype(np.float32)
         for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    res = {}
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError as e:
        print(json.dumps({"skip": f"cannot reset VmHWM: {e}"}))
        sys.exit(0)
    F.lstm_forward(np.ones((50, B, I), np.float32), *w, num_threads=1)  # warm up
    for T in (1000, 20000):
        x = rng.standard_normal((T, B, I)).astype(np.float32)
        settle()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                       # VmHWM := VmRSS
        before = status("VmRSS")
        y, (h, c), _ = F.lstm_forward(x, *w, num_threads=1)
        peak = status("VmHWM")
        assert np.isfinite(y).all()
        res[str(T)] = dict(growth=peak - before, y_bytes=y.nbytes)
        del x, y, h, c
    print(json.dumps(res))
"""


@pytest.fixture(scope="module")
def peak_results():
    r = _run_script(_PEAK_SCRIPT)
    if "skip" in r:
        pytest.skip(r["skip"])
    return r


def test_inference_peak_memory_is_y_plus_bounded_scratch(peak_results):
    r = peak_results
    small, big = r["1000"], r["20000"]
    msg = {k: {kk: round(vv / MB, 2) for kk, vv in v.items()} for k, v in r.items()}
    # y of T=20000 is 39 MiB: it must all be there, and little more.
    assert big["growth"] >= 0.95 * big["y_bytes"], msg
    extra_small = small["growth"] - small["y_bytes"]
    extra_big = big["growth"] - big["y_bytes"]
    assert extra_big < 12 * MB, msg          # scratch: chunked input projection (~4 MiB) etc.
    assert extra_big - extra_small < 4 * MB, msg  # ...which does not grow with T
    assert big["growth"] - small["growth"] < (big["y_bytes"] - small["y_bytes"]) + 4 * MB, msg


_HUGE_PAGE_SCRIPT = """
    def anon_huge_kb():
        with open("/proc/self/smaps") as f:
            return sum(int(line.split()[1]) for line in f if line.startswith("AnonHugePages:"))

    before = anon_huge_kb()
    # float32 LSTM, B=8, H=1024: 16 MiB of packed w_hh in the kept workspace block (with 3-4
    # rows the AVX-512 build reads weights this large in place).
    G, H, T, B = 4, 1024, 8, 8
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((G * H, H)) * 0.03).astype(np.float32)
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    y = F.lstm_forward(x, w, w, num_threads=1)[0]
    print(json.dumps(dict(before=before, after=anon_huge_kb(), finite=bool(np.isfinite(y).all()))))
"""


def _thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.index("[") + 1:text.index("]")] if "[" in text else None


@pytest.mark.skipif(_thp_mode() not in ("madvise", "always"),
                    reason="transparent huge pages are off (or not reported) on this system")
def test_kept_workspace_gets_huge_pages():
    # The workspace block a thread keeps between calls is advised into 2 MiB pages (weights of
    # several MiB are streamed from it every step). Huge pages are best effort, but a fresh
    # process on a machine with free memory gets them for a 16 MiB block. NumPy gives the same
    # advice for its own arrays of 4 MiB and more (w here): switched off, so that only pyrnn's
    # block can account for huge pages.
    r = _run_script(_HUGE_PAGE_SCRIPT, NUMPY_MADVISE_HUGEPAGE="0")
    assert r["finite"]
    assert r["after"] - r["before"] >= 2048, r
