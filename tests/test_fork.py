"""Kernels in a child of fork() after the parent ran multi-threaded kernel calls.

GNU libgomp keeps its thread pool's bookkeeping across fork() but the child has none of its
threads: without pyrnn's fork handling the child's first multi-threaded kernel waits forever.
Each scenario runs in a fresh interpreter (tests/child_python.py) whose parent side kills a child
that does not finish within a deadline, so a regression fails in seconds instead of hanging CI.

- os.fork(): the child's LSTM forward/backward with 2 threads equals the parent's result bitwise,
  runs on more than one thread (new threads appear in the child), and a grandchild works too.
- multiprocessing 'fork' Pool: workers run a layer's forward with 2 threads, same results.
- forward_group (the stacked layers' wavefront) in a forked child.
- a bidirectional layer (its reverse direction runs on a Python thread pool, which a child
  inherits without threads) in a forked child.
"""
import json
import sys

import pytest

import child_python

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")

# Shared by the scenarios: a parent that has run 2-thread kernels (so libgomp's pool exists).
_PRELUDE = r"""
import json, os, signal, sys, time
import numpy as np
import pyrnn
from pyrnn import _core, functional as F

def case(seed=0, T=7, B=4, I=48, H=256):
    rng = np.random.default_rng(seed)
    u = lambda *s: rng.uniform(-0.1, 0.1, s).astype(np.float32)
    return u(T, B, I), u(4 * H, I), u(4 * H, H), u(4 * H), u(4 * H)

def lstm_run(num_threads=2):
    x, w_ih, w_hh, b_ih, b_hh = case()
    y, (h, c), cache = F.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, training=True,
                                      num_threads=num_threads)
    dx, (dh0, dc0), dparams = F.lstm_backward(cache, np.ones_like(y))
    return [y, h, c, dx, dh0, dc0] + [dparams[k] for k in sorted(dparams)]

def threads_now():
    return len(os.listdir("/proc/self/task"))

def wait_child(pid, deadline_s=30):
    # the parent's side of os.fork(): a child that overruns is killed and reported as hung
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"

assert _core.forward_threads(2, 7, 4, 48, 256, 256, 4, 4, True)[0] == 2, "sizes must use 2 threads"
want = lstm_run()          # the parent runs 2 kernel threads: libgomp's pool now exists
"""


def _run(body: str) -> dict:
    proc = child_python.run(_PRELUDE + body, timeout=180, OMP_NUM_THREADS="2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_os_fork_child_runs_threaded_kernels():
    out = _run(r"""
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    try:
        before = threads_now()
        got = lstm_run()
        report = dict(same=all(np.array_equal(a, b) for a, b in zip(got, want)),
                      threads_before=before, threads_after=threads_now(),
                      backend=_core.threads_backend())
        # a grandchild: forked from a child whose own team has threads
        pid2 = os.fork()
        if pid2 == 0:
            ok = all(np.array_equal(a, b) for a, b in zip(lstm_run(), want))
            os._exit(0 if ok else 3)
        report["grandchild"] = wait_child(pid2)
        os.write(w, json.dumps(report).encode())
    finally:
        os._exit(0)
os.close(w)
status = wait_child(pid)
data = os.read(r, 65536).decode()
print(json.dumps(dict(status=status, child=json.loads(data) if data else None,
                      parent_backend=_core.threads_backend())))
""")
    assert out["status"] == 0, f"forked child: {out['status']} (hung: kernel waited for threads)"
    child = out["child"]
    assert child["same"], "the forked child's results differ from the parent's"
    assert child["grandchild"] == 0, f"grandchild: {child['grandchild']}"
    # the child's 2-thread kernel ran on threads of its own (libgomp's are gone after fork)
    assert child["threads_after"] > child["threads_before"], child
    assert "forked child" in child["backend"], child
    assert out["parent_backend"] == "OpenMP"


def test_multiprocessing_fork_pool():
    out = _run(r"""
import multiprocessing as mp
layer = pyrnn.LSTM(48, 256, num_layers=2, num_threads=2, seed=1).eval()
x = case(seed=2)[0]
want_y = layer(x)[0]

def work(seed):
    return layer(case(seed=2)[0])[0], threads_now()

pool = mp.get_context("fork").Pool(2)
try:
    results = [pool.apply_async(work, (i,)) for i in range(4)]
    got = [r.get(timeout=30) for r in results]
    status = "ok"
except mp.TimeoutError:
    got, status = [], "hung"
finally:
    pool.terminate()
print(json.dumps(dict(status=status, same=all(np.array_equal(y, want_y) for y, _ in got),
                      threads=[t for _, t in got])))
""")
    assert out["status"] == "ok", "a 'fork' Pool worker hung in a multi-threaded kernel"
    assert out["same"]
    # workers: the main thread plus the pool's own helper threads are absent in a child, so
    # more than one thread means the kernel's team started there
    assert all(t >= 2 for t in out["threads"]), out


def test_forward_group_in_forked_child():
    """The stacked layers' wavefront (one parallel region over several layer calls)."""
    out = _run(r"""
layer = pyrnn.GRU(16, 64, num_layers=3, num_threads=2, seed=3).eval()
x = np.random.default_rng(4).standard_normal((600, 1, 16)).astype(np.float32)
assert layer._wavefront_chunks(600, 1, 2) >= 3, "the sizes must take the wavefront"
want_y = layer(x)[0]
pid = os.fork()
if pid == 0:
    os._exit(0 if np.array_equal(layer(x)[0], want_y) else 3)
print(json.dumps(dict(status=wait_child(pid))))
""")
    assert out["status"] == 0, out


def test_bidirectional_layer_in_forked_child():
    out = _run(r"""
layer = pyrnn.LSTM(8, 16, bidirectional=True, num_threads=2, seed=5).eval()
x = np.random.default_rng(6).standard_normal((9, 3, 8)).astype(np.float32)
want_y = layer(x)[0]     # the parent's direction pool now has a thread
pid = os.fork()
if pid == 0:
    os._exit(0 if np.array_equal(layer(x)[0], want_y) else 3)
print(json.dumps(dict(status=wait_child(pid))))
""")
    assert out["status"] == 0, out
