"""Subnormal floats: the kernels' threads flush them to zero (FTZ/DAZ) during a call, on by
default, and the caller's floating-point mode is left as it was."""
import os
import time

import numpy as np
import pytest

import child_python
import pyrnn
import pyrnn.functional as F

TINY = np.float32(1e-39)  # subnormal in float32 (the smallest normal is 1.18e-38)


def _is_subnormal(a):
    a = np.abs(np.asarray(a, np.float32))
    return (a > 0) & (a < np.finfo(np.float32).tiny)


def _caller_keeps_subnormals() -> bool:
    """True while this thread computes IEEE subnormals (neither FTZ nor DAZ is set)."""
    x = np.array([1e-38], np.float32)
    return bool(_is_subnormal(x / np.float32(100)).all() and (x / np.float32(100) * 100 > 0).all())


def _lstm_args(T=60, B=8, I=32, H=64, seed=0):
    rng = np.random.default_rng(seed)
    s = 1 / np.sqrt(H)
    w = [rng.uniform(-s, s, shape).astype(np.float32)
         for shape in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    return x, w


def _train_step(x, w, dy, threads):
    """Every gradient of a forward+backward, as a list of arrays."""
    _, _, cache = F.lstm_forward(x, *w, training=True, num_threads=threads)
    dx, (dh0, dc0), dparams = F.lstm_backward(cache, dy)
    return [dx, dh0, dc0, *dparams.values()]


@pytest.fixture
def restore_flush():
    before = pyrnn.flush_denormals()
    yield
    pyrnn.set_flush_denormals(before)


def test_on_by_default_unless_the_environment_says_otherwise():
    if os.environ.get("PYRNN_FLUSH_DENORMALS") in (None, "", "1"):
        assert pyrnn.flush_denormals() is True


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("flush", [True, False])
def test_caller_floating_point_mode_unchanged(threads, flush, restore_flush):
    assert _caller_keeps_subnormals()
    pyrnn.set_flush_denormals(flush)
    x, w = _lstm_args()
    _train_step(x, w, np.full((x.shape[0], x.shape[1], 64), TINY), threads)
    assert _caller_keeps_subnormals()


def test_flushed_gradients_hold_no_subnormals_and_kept_ones_do(restore_flush):
    x, w = _lstm_args(T=8, B=4)
    dy = np.full((8, 4, 64), TINY, np.float32)
    pyrnn.set_flush_denormals(True)
    flushed = _train_step(x, w, dy, 1)
    assert not any(_is_subnormal(g).any() for g in flushed if g is not None)
    pyrnn.set_flush_denormals(False)
    kept = _train_step(x, w, dy, 1)
    assert any(_is_subnormal(g).any() for g in kept if g is not None)


def test_flushing_keeps_normal_results_exact(restore_flush):
    x, w = _lstm_args(T=10, B=3)
    dy = np.random.default_rng(1).standard_normal((10, 3, 64)).astype(np.float32)
    pyrnn.set_flush_denormals(True)
    on = _train_step(x, w, dy, 2)
    pyrnn.set_flush_denormals(False)
    off = _train_step(x, w, dy, 2)
    for a, b in zip(on, off):
        if a is not None:
            np.testing.assert_array_equal(a, b)


def test_subnormal_gradients_cost_about_what_normal_ones_do(restore_flush):
    """Not a speed claim: without flushing this forward+backward runs tens of times slower
    (every FMA on a subnormal takes a microcode assist); with it, the same as normal values.
    The bound (5x, against about 90x unflushed) leaves room for a shared, noisy machine: min of
    alternating rounds."""
    pyrnn.set_flush_denormals(True)
    x, w = _lstm_args(T=40, B=16, I=64, H=128)
    shape = (40, 16, 128)
    normal = np.full(shape, 1e-3, np.float32)
    tiny = np.full(shape, TINY, np.float32)
    times = {"normal": [], "tiny": []}
    for _ in range(7):
        for name, dy in (("normal", normal), ("tiny", tiny)):
            t0 = time.perf_counter()
            _train_step(x, w, dy, 1)
            times[name].append(time.perf_counter() - t0)
    ratio = min(times["tiny"]) / min(times["normal"])
    assert ratio <= 5.0, times


def test_bad_argument():
    with pytest.raises(TypeError, match="enabled must be a bool"):
        pyrnn.set_flush_denormals("yes")


@pytest.mark.parametrize("value,expect", [("0", "False"), ("1", "True")])
def test_environment_variable(value, expect):
    out = child_python.run("import pyrnn; print(pyrnn.flush_denormals())",
                           PYRNN_FLUSH_DENORMALS=value)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expect


def test_environment_variable_rejects_other_values():
    out = child_python.run("import pyrnn", PYRNN_FLUSH_DENORMALS="yes")
    assert out.returncode != 0
    assert "PYRNN_FLUSH_DENORMALS must be 0 or 1" in out.stderr
