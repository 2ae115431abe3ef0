"""pyrnn on an NVIDIA GPU: pyrnn.cuda, device="cuda" in pyrnn.functional, layer.to("cuda").

Everywhere: is_available() is a bool that never raises and agrees with the build; device="cuda"
and layer.to("cuda") raise a RuntimeError that says why where CUDA is not available; bad device
names are refused.
With a GPU (skipped with the reason otherwise): the CUDA kernels against torch autograd and
against the CPU kernels (outputs, final states, every gradient; all cells, float32/float64,
reverse, lengths, no bias, no initial state, awkward shapes), the saved activations' layout,
and layers moved to the GPU against the same layers on the CPU.
"""
import functools
import threading
import types

import numpy as np
import pytest

import pyrnn
from pyrnn import _core, cuda
from pyrnn import functional as F
from pyrnn.layers import GRU, LSTM, RNN

AVAILABLE = cuda.is_available()
gpu = pytest.mark.skipif(not AVAILABLE, reason=f"CUDA not available: {cuda.unavailable_reason()}")
no_gpu = pytest.mark.skipif(AVAILABLE, reason="CUDA is available here")

CELL_IDS = {"lstm": 0, "gru": 1, "rnn_tanh": 2, "rnn_relu": 3}
# GPU against CPU kernels: two independently rounded results (different GEMM summation order,
# CUDA's vs Eigen's exp/tanh), so about twice what each may differ from float64 torch.
TOL_VS_CPU = {np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12),
              np.dtype(np.float32): dict(rtol=2e-4, atol=6e-5)}
F64_TOL = TOL_VS_CPU[np.dtype(np.float64)]


def _case(cell, T=4, B=3, I=5, H=6, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    u = lambda *s: rng.uniform(-0.5, 0.5, size=s).astype(dtype)  # noqa: E731
    return u(T, B, I), u(G * H, I), u(G * H, H), u(G * H), u(G * H)


def _states(s):
    """A layer/functional state as a tuple of arrays: (h, c) for LSTM, (h,) else."""
    return tuple(s) if isinstance(s, tuple) else (s,)


# --------------------------------------------------------------------------- everywhere

def test_is_available_is_a_bool_consistent_with_info():
    avail = cuda.is_available()
    assert isinstance(avail, bool)
    info = cuda.info()
    assert info["available"] is avail
    if avail:
        assert isinstance(cuda.device_name(), str) and cuda.device_name()
        assert cuda.unavailable_reason() is None
    else:
        assert cuda.device_name() is None
        reason = cuda.unavailable_reason()
        assert isinstance(reason, str) and reason


def test_build_flag_agrees_with_the_module():
    built = bool(_core.build_info()["cuda"])
    assert built == hasattr(_core, "cuda_forward") == hasattr(_core, "cuda_backward")
    assert built == hasattr(_core, "cuda_device_info") == cuda.info()["built"]
    if not built:
        assert cuda.is_available() is False
        assert "built without CUDA" in cuda.unavailable_reason()


def test_no_device_means_not_available():
    info = cuda.info()
    if info.get("device_count", 0) == 0:
        assert cuda.is_available() is False
        assert cuda.unavailable_reason()


def test_show_config_has_a_cuda_line(capsys):
    pyrnn.show_config()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("CUDA")]
    assert len(lines) == 1
    if not cuda.info()["built"]:
        assert "not built" in lines[0]
    elif AVAILABLE:
        assert cuda.device_name() in lines[0]
    else:
        assert "not usable" in lines[0]


@no_gpu
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("training", [False, True])
def test_device_cuda_without_cuda_raises_runtime_error(cell, training):
    x, w_ih, w_hh, b_ih, b_hh = _case(cell)
    fwd = getattr(F, f"{cell}_forward")
    with pytest.raises(RuntimeError, match="device='cuda': CUDA is not available: .+"):
        fwd(x, w_ih, w_hh, b_ih, b_hh, training=training, device="cuda")


@no_gpu
def test_layer_to_cuda_without_cuda_raises_and_stays_on_cpu():
    layer = LSTM(5, 6, seed=0, dtype=np.float64)
    with pytest.raises(RuntimeError, match=r"LSTM.to\('cuda'\): CUDA is not available"):
        layer.to("cuda")
    assert layer.device == "cpu"
    y, _ = layer(np.zeros((2, 3, 5)))
    assert y.shape == (2, 3, 6)
    assert layer.to("cpu") is layer


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_bad_device_is_refused(cell):
    x, w_ih, w_hh, b_ih, b_hh = _case(cell)
    fwd = getattr(F, f"{cell}_forward")
    with pytest.raises(ValueError, match="device: expected 'cpu' or 'cuda', got 'gpu'"):
        fwd(x, w_ih, w_hh, b_ih, b_hh, device="gpu")
    with pytest.raises(TypeError, match="device: expected 'cpu' or 'cuda', got int"):
        fwd(x, w_ih, w_hh, b_ih, b_hh, device=0)
    with pytest.raises(ValueError, match="device"):
        GRU(5, 6).to("tpu")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_backward_runs_where_its_forward_ran(cell):
    x, w_ih, w_hh, b_ih, b_hh = _case(cell)
    y, _, cache = getattr(F, f"{cell}_forward")(x, w_ih, w_hh, b_ih, b_hh, training=True)
    bwd = getattr(F, f"{cell}_backward")
    with pytest.raises(ValueError, match="the cache was made by a forward on 'cpu'"):
        bwd(cache, np.ones_like(y), device="cuda")
    dx = bwd(cache, np.ones_like(y), device="cpu")[0]
    assert dx.shape == x.shape


# --------------------------------------------------------------------------- GPU

def _on_cuda():
    """pyrnn.functional with device="cuda" on every forward (for torch_oracle.run_functional)."""
    ns = {}
    for c in ("lstm", "gru", "rnn"):
        ns[f"{c}_forward"] = functools.partial(getattr(F, f"{c}_forward"), device="cuda")
        ns[f"{c}_backward"] = getattr(F, f"{c}_backward")
    return types.SimpleNamespace(**ns)


CUDA_F = _on_cuda()
SHAPES = [(1, 1, 1, 1), (5, 1, 3, 1), (4, 3, 5, 3), (7, 5, 4, 33), (3, 33, 7, 5), (6, 4, 3, 257)]
VARIANTS = {  # id -> (bias, reverse, lengths, state)
    "fwd": (True, False, False, True),
    "rev": (True, True, False, True),
    "fwd_lengths": (True, False, True, True),
    "rev_lengths_noh0": (True, True, True, False),
    "nobias": (False, False, False, True),
}


def _tag(cell, nl):
    return cell if nl is None else f"{cell}_{nl}"


@gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("cell,nl", [("lstm", None), ("gru", None), ("rnn", "tanh"),
                                     ("rnn", "relu")], ids=list(CELL_IDS))
def test_cuda_matches_torch_and_cpu(cell, nl, shape, variant, dtype):
    torch_oracle = pytest.importorskip("torch_oracle")
    bias, reverse, lengths, state = VARIANTS[variant]
    case = torch_oracle.make_case(cell, *shape, bias=bias, dtype=dtype, seed=11 + sum(shape),
                                  lengths=lengths, state=state)
    got = torch_oracle.run_functional(CUDA_F, case, nl, reverse)
    torch_oracle.compare(got, torch_oracle.torch_run(case, nl, reverse), dtype,
                         tag=_tag(cell, nl) + "_cuda")
    cpu = torch_oracle.run_functional(F, case, nl, reverse)
    torch_oracle.compare(got, cpu, dtype, tol=TOL_VS_CPU[np.dtype(dtype)])


@gpu
@pytest.mark.parametrize("cell", list(CELL_IDS))
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_cuda_saves_have_the_cpu_layout(cell, reverse):
    base = "rnn" if cell.startswith("rnn") else cell
    x, w_ih, w_hh, b_ih, b_hh = _case(base, T=5, B=4, I=3, H=9)
    lengths = np.array([5, 0, 3, 1], np.int64)
    h0 = np.full((4, 9), 0.25)
    c0 = np.full((4, 9), -0.5) if cell == "lstm" else None
    k = CELL_IDS[cell]
    cpu = _core.forward(k, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, reverse, True, 1)
    weights = _core.CudaWeights(k, w_ih, w_hh, b_ih, b_hh)
    gpu_out = _core.cuda_forward(k, x, weights, h0, c0, lengths, reverse, True)
    for a, b in zip(cpu[:3], gpu_out[:3]):
        if a is not None:
            np.testing.assert_allclose(b, a, **F64_TOL)
    ran = np.arange(5)[:, None] < lengths[None, :]
    for name, a, b in zip(("gates", "h_prev", "aux"), cpu[3], gpu_out[3].numpy()):
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_allclose(b[ran], a[ran], err_msg=name, **F64_TOL)
    for name, a, b in zip(("w_ih", "w_hh", "b_ih", "b_hh"), (w_ih, w_hh, b_ih, b_hh),
                          weights.numpy()):
        np.testing.assert_array_equal(b, a, err_msg=name)


@gpu
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_cuda_inference_equals_training_forward_and_empty_shapes(cell):
    fwd = getattr(F, f"{cell}_forward")
    for T, B, I, H in [(5, 3, 4, 7), (0, 3, 4, 7), (4, 0, 4, 7)]:
        x, w_ih, w_hh, b_ih, b_hh = _case(cell, T, B, I, H)
        yi, si, ci = fwd(x, w_ih, w_hh, b_ih, b_hh, device="cuda")
        yt, st, ct = fwd(x, w_ih, w_hh, b_ih, b_hh, training=True, device="cuda")
        yc, sc, _ = fwd(x, w_ih, w_hh, b_ih, b_hh)
        assert ci is None and ct.device == "cuda"
        np.testing.assert_allclose(yi, yt, **F64_TOL)
        np.testing.assert_allclose(yi, yc, **F64_TOL)
        for a, b in zip(_states(si), _states(sc)):
            np.testing.assert_allclose(a, b, **F64_TOL)
        dx = getattr(F, f"{cell}_backward")(ct, np.ones_like(yt))[0]
        assert dx.shape == x.shape and np.isfinite(dx).all()
        assert ct.consumed


@gpu
def test_cuda_raw_bindings_check_their_input():
    x, w_ih, w_hh, b_ih, b_hh = _case("lstm")
    w = _core.CudaWeights(0, w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="argument 'x'"):
        _core.cuda_forward(0, x[:, :, :2].copy(), w, None, None, None, False, False)
    with pytest.raises(TypeError, match="dtype"):
        _core.cuda_forward(0, x.astype(np.float32), w, None, None, None, False, False)
    with pytest.raises(ValueError, match="made for a lstm cell, not gru"):
        _core.cuda_forward(1, x, w, None, None, None, False, False)
    with pytest.raises(ValueError, match="argument 'lengths'"):
        _core.cuda_forward(0, x, w, None, None, np.array([1, 2, 9]), False, False)
    # A backward refuses weights updated after its forward.
    saves = _core.cuda_forward(0, x, w, None, None, None, False, True)[3]
    w.update(w_ih * 2, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="updated after this forward"):
        _core.cuda_backward(0, saves, None, None, None)
    saves.release()
    with pytest.raises(ValueError, match="released"):
        _core.cuda_backward(0, saves, None, None, None)


@gpu
@pytest.mark.parametrize("layer_cls,kw", [(LSTM, {}), (GRU, {}), (RNN, {"nonlinearity": "relu"})],
                         ids=["lstm", "gru", "rnn_relu"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_layer_to_cuda_matches_cpu(layer_cls, kw, dtype):
    tol = TOL_VS_CPU[np.dtype(dtype)]
    make = lambda: layer_cls(5, 7, num_layers=2, bidirectional=True, batch_first=True,  # noqa
                             dtype=dtype, seed=3, **kw)
    cpu, gpu_layer = make(), make()
    assert gpu_layer.to("cuda") is gpu_layer and gpu_layer.device == "cuda"
    assert "device='cuda'" in repr(gpu_layer)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 5)).astype(dtype)
    lengths = np.array([6, 0, 3, 1])

    def run(layer):
        y, state = layer(x, lengths=lengths)
        dy = np.cos(np.arange(y.size)).reshape(y.shape).astype(dtype)
        dx = layer.backward(dy)
        return y, state, dx, {k: g.copy() for k, g in layer.grads.items()}, layer.state_grad

    def check(a, b):
        ya, sa, dxa, ga, sga = a
        yb, sb, dxb, gb, sgb = b
        np.testing.assert_allclose(yb, ya, **tol)
        np.testing.assert_allclose(dxb, dxa, **tol)
        for u, v in zip(_states(sa) + _states(sga), _states(sb) + _states(sgb)):
            np.testing.assert_allclose(v, u, **tol)
        for k in ga:
            np.testing.assert_allclose(gb[k], ga[k], err_msg=k, **tol)

    check(run(cpu), run(gpu_layer))
    # Host parameters stay the source of truth: an in-place update reaches the GPU.
    for layer in (cpu, gpu_layer):
        layer.zero_grad()
        for p in layer.params.values():
            p *= 0.5
    check(run(cpu), run(gpu_layer))
    # Inference on the GPU, then back to the CPU.
    cpu.eval()
    gpu_layer.eval()
    np.testing.assert_allclose(gpu_layer(x)[0], cpu(x)[0], **tol)
    gpu_layer.to("cpu")
    assert gpu_layer.device == "cpu" and gpu_layer._cuda_weights is None
    np.testing.assert_array_equal(gpu_layer(x)[0], cpu(x)[0])


@gpu
def test_cuda_calls_from_several_threads():
    x, w_ih, w_hh, b_ih, b_hh = _case("gru", T=20, B=8, I=16, H=32)
    want = F.gru_forward(x, w_ih, w_hh, b_ih, b_hh)[0]
    results, errors = [None] * 6, []

    def work(i):
        try:
            results[i] = F.gru_forward(x, w_ih, w_hh, b_ih, b_hh, device="cuda")[0]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for r in results:
        np.testing.assert_allclose(r, want, **F64_TOL)
