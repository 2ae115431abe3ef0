"""The CUDA driver's algorithm, run on the CPU, against the CPU kernels.

tests/cuda_host_emulation.cpp runs csrc/cuda/recurrent.h (the driver), step.h (the per-element
pointwise work of the step kernels) and the CUDA cells with a sequential host "device" and a
reference column-major GEMM fed through the same row-major -> column-major mapping that blas.cu
hands to cuBLAS. It needs only a C++ compiler, so every CI run checks the CUDA code's indices,
step/time order, reverse, lengths, saved-activation layout, cell math and GEMM operand mapping
without a GPU. Kernel launches, streams and cuBLAS itself are tested on a GPU (test_cuda.py).
"""
import ctypes
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pyrnn import _core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "tests", "cuda_host_emulation.cpp")
CXX = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
CELLS = {"lstm": 0, "gru": 1, "rnn_tanh": 2, "rnn_relu": 3}
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}

pytestmark = pytest.mark.skipif(
    CXX is None or not sys.platform.startswith("linux")
    or not os.path.isdir(os.path.join(ROOT, "csrc", "cuda")),
    reason="needs a C++ compiler on Linux and the csrc/ sources beside tests/ (a source "
           "checkout) to build the host emulation of the CUDA driver")


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cuda_emu") / "libpyrnn_cuda_emu.so")
    cmd = [CXX, "-std=c++17", "-O1", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
           "-I", os.path.join(ROOT, "csrc"), SOURCE, "-o", out]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout}\n{res.stderr}"
    lib = ctypes.CDLL(out)
    lib.pyrnn_emu_forward.restype = ctypes.c_int
    lib.pyrnn_emu_backward.restype = ctypes.c_int
    return lib


def _p(a):
    return None if a is None else ctypes.c_void_p(a.ctypes.data)


def _poisoned(shape, dtype):
    return np.full(shape, np.nan, dtype)


def emu_forward(lib, cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, reverse, training):
    T, B, I = x.shape
    H = w_hh.shape[1]
    G = GATES[cell]
    dt = x.dtype
    y, h_n = _poisoned((T, B, H), dt), _poisoned((B, H), dt)
    c_n = _poisoned((B, H), dt) if cell == "lstm" else None
    gates = h_prev = aux = None
    if training:
        gates, h_prev = _poisoned((T, B, G * H), dt), _poisoned((T, B, H), dt)
        aux = _poisoned((T, B, H), dt) if cell in ("lstm", "gru") else None
    err = ctypes.create_string_buffer(512)
    rc = lib.pyrnn_emu_forward(
        CELLS[cell], int(dt == np.float64), ctypes.c_int64(T), ctypes.c_int64(B),
        ctypes.c_int64(I), ctypes.c_int64(H), _p(x), _p(w_ih), _p(w_hh), _p(b_ih), _p(b_hh),
        _p(h0), _p(c0), _p(lengths), int(reverse), _p(y), _p(h_n), _p(c_n), _p(gates),
        _p(h_prev), _p(aux), err, 512)
    assert rc == 0, err.value.decode()
    saves = (gates, h_prev, aux) if training else None
    return y, h_n, c_n, saves


def emu_backward(lib, cell, x, w_ih, w_hh, has_bias, lengths, reverse, saves, dy, dh_n, dc_n):
    T, B, I = x.shape
    H = w_hh.shape[1]
    G = GATES[cell]
    dt = x.dtype
    gates, h_prev, aux = saves
    dx, dh0 = _poisoned((T, B, I), dt), _poisoned((B, H), dt)
    dc0 = _poisoned((B, H), dt) if cell == "lstm" else None
    dw_ih, dw_hh = _poisoned((G * H, I), dt), _poisoned((G * H, H), dt)
    db_ih = _poisoned((G * H,), dt) if has_bias else None
    db_hh = _poisoned((G * H,), dt) if has_bias else None
    err = ctypes.create_string_buffer(512)
    rc = lib.pyrnn_emu_backward(
        CELLS[cell], int(dt == np.float64), ctypes.c_int64(T), ctypes.c_int64(B),
        ctypes.c_int64(I), ctypes.c_int64(H), _p(x), _p(w_ih), _p(w_hh), _p(lengths),
        int(reverse), _p(gates), _p(h_prev), _p(aux), _p(dy), _p(dh_n), _p(dc_n), _p(dx),
        _p(dh0), _p(dc0), _p(dw_ih), _p(dw_hh), _p(db_ih), _p(db_hh), err, 512)
    assert rc == 0, err.value.decode()
    return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh


def make(cell, T, B, I, H, dtype, seed, bias=True, lengths=False, state=True):
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    k = 1.0 / np.sqrt(max(H, 1))

    def u(*shape, s=1.0):
        return rng.uniform(-s, s, size=shape).astype(dtype)

    lens = None
    if lengths:
        lens = rng.integers(0, T + 1, size=B).astype(np.int64)
        if B >= 2:
            lens[1] = 0
        if B >= 3:
            lens[2] = T
    lstm = cell == "lstm"
    return dict(
        x=u(T, B, I), w_ih=u(G * H, I, s=k), w_hh=u(G * H, H, s=k),
        b_ih=u(G * H, s=k) if bias else None, b_hh=u(G * H, s=k) if bias else None,
        h0=u(B, H, s=0.5) if state else None, c0=u(B, H, s=0.5) if (state and lstm) else None,
        lengths=lens, dy=u(T, B, H), dh_n=u(B, H), dc_n=u(B, H) if lstm else None)


def active_steps(T, B, lengths):
    """[T, B] mask of (step, row) pairs that ran (s < len_b)."""
    lens = np.full(B, T) if lengths is None else lengths
    return np.arange(T)[:, None] < lens[None, :]


TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}

SHAPES = [(1, 1, 1, 1), (4, 3, 5, 3), (6, 4, 3, 9), (3, 5, 2, 4), (0, 2, 3, 4), (3, 0, 2, 2)]


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("variant", ["fwd", "rev", "lengths", "rev_lengths_noh0", "nobias"])
def test_emulated_cuda_driver_matches_cpu_kernels(emu, cell, dtype, shape, variant):
    bias = variant != "nobias"
    reverse = variant.startswith("rev")
    c = make(cell, *shape, dtype, seed=sum(shape) + len(variant), bias=bias,
             lengths="lengths" in variant, state="noh0" not in variant)
    T, B, _, H = shape
    args = (c["x"], c["w_ih"], c["w_hh"], c["b_ih"], c["b_hh"], c["h0"], c["c0"], c["lengths"],
            reverse)
    tol = TOL[dtype]

    # Inference and training forward.
    for training in (False, True):
        got = emu_forward(emu, cell, *args, training)
        want = _core.forward(CELLS[cell], *args, training, 1)
        for name, g, w in zip(("y", "h_n", "c_n"), got[:3], want[:3]):
            if w is None:
                assert g is None
                continue
            np.testing.assert_allclose(g, w, err_msg=f"{name} training={training}", **tol)
    saves, cpu_saves = got[3], want[3]

    # Saved activations: same layout and step order as the CPU kernels on every step that ran
    # (idle steps: h_prev zero in both; gates/aux unspecified).
    act = active_steps(T, B, c["lengths"])
    for name, g, w in zip(("gates", "h_prev", "aux"), saves, cpu_saves):
        if w is None:
            assert g is None
            continue
        np.testing.assert_allclose(g[act], w[act], err_msg=name, **tol)
    np.testing.assert_array_equal(saves[1][~act], 0)

    bwd = (c["x"], c["w_ih"], c["w_hh"], bias, c["lengths"], reverse)
    got = emu_backward(emu, cell, *bwd, saves, c["dy"], c["dh_n"], c["dc_n"])
    want = _core.backward(CELLS[cell], *bwd, *cpu_saves, c["dy"], c["dh_n"], c["dc_n"], 1)
    names = ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh")
    for name, g, w in zip(names, got, want):
        if w is None:
            assert g is None, name
            continue
        assert g.shape == w.shape, name
        np.testing.assert_allclose(g, w, err_msg=name, **tol)


@pytest.mark.parametrize("cell", list(CELLS))
def test_emulated_backward_ignores_padding_and_optional_gradients(emu, cell):
    """NaN in the padding of x and dy never reaches a gradient; dy/dh_n/dc_n may be absent."""
    c = make(cell, 5, 4, 3, 6, np.float64, seed=3, lengths=True)
    lens = c["lengths"]
    for b in range(4):
        c["x"][lens[b]:, b] = np.nan
        c["dy"][lens[b]:, b] = np.nan
    for reverse in (False, True):
        args = (c["x"], c["w_ih"], c["w_hh"], c["b_ih"], c["b_hh"], c["h0"], c["c0"], lens,
                reverse)
        saves = emu_forward(emu, cell, *args, True)[3]
        bwd = (c["x"], c["w_ih"], c["w_hh"], True, lens, reverse)
        for dy, dh_n, dc_n in ((c["dy"], c["dh_n"], c["dc_n"]), (None, c["dh_n"], None),
                               (c["dy"], None, None)):
            got = emu_backward(emu, cell, *bwd, saves, dy, dh_n, dc_n)
            for name, g in zip(("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh"), got):
                if g is not None:
                    assert np.isfinite(g).all(), f"{name} reverse={reverse}"
