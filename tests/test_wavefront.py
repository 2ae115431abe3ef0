"""The wavefront over stacked layers (pyrnn.layers, eval mode) and the bindings it runs on
(_core.forward_group, _core.forward_threads): the same results as layer after layer and as
torch.nn, engaged exactly where it should be."""
import numpy as np
import pytest
import torch

import pyrnn
from pyrnn import _core
from pyrnn import functional as F
from pyrnn import layers

# (class, constructor keywords): every cell and variant the layers offer
VARIANTS = {
    "lstm": (pyrnn.LSTM, {}),
    "lstm_coupled": (pyrnn.LSTM, {"coupled": True}),
    "lstm_peephole": (pyrnn.LSTM, {"peephole": True}),
    "lstm_proj": (pyrnn.LSTM, {"proj_size": 5}),
    "gru": (pyrnn.GRU, {}),
    "gru_reset_before": (pyrnn.GRU, {"reset_after": False}),
    "rnn_tanh": (pyrnn.RNN, {}),
    "rnn_relu": (pyrnn.RNN, {"nonlinearity": "relu"}),
}
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of any size: the wavefront engages on the small problems of these tests."""
    monkeypatch.setattr(layers, "_WAVEFRONT_CHUNK_FLOPS", 1.0)


def _without_wavefront(layer, *args, **kwargs):
    saved = layers.WAVEFRONT
    layers.WAVEFRONT = False
    try:
        return layer(*args, **kwargs)
    finally:
        layers.WAVEFRONT = saved


def _states(layer, B, rng, dtype):
    L = layer.num_layers
    h0 = rng.standard_normal((L, B, layer.output_size)).astype(dtype)
    if isinstance(layer, pyrnn.LSTM):
        return h0, rng.standard_normal((L, B, layer.hidden_size)).astype(dtype)
    return h0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_matches_layer_after_layer(small_chunks, variant, dtype):
    cls, kw = VARIANTS[variant]
    rng = np.random.default_rng(7)
    T, B, I, H = 37, 4, 6, 9
    layer = cls(I, H, num_layers=3, dtype=dtype, seed=1, num_threads=2, **kw).eval()
    assert layer._wavefront_chunks(T, B, 2) == layers._WAVEFRONT_MAX_CHUNKS
    x = rng.standard_normal((T, B, I)).astype(dtype)
    state = _states(layer, B, rng, dtype)
    lengths = np.array([T, 0, 13, 20])  # whole, empty, ending inside a chunk and at its end
    for kwargs in ({}, {"state": state}, {"state": state, "lengths": lengths}):
        got_y, got_s = layer(x, **kwargs)
        want_y, want_s = _without_wavefront(layer, x, **kwargs)
        np.testing.assert_allclose(got_y, want_y, **TOL[dtype])
        for g, w in zip(got_s if isinstance(got_s, tuple) else (got_s,),
                        want_s if isinstance(want_s, tuple) else (want_s,)):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, **TOL[dtype])
        assert got_y.dtype == dtype
    if "lengths" in kwargs:
        assert not got_y[lengths[1]:, 1].any() and not got_y[13:, 2].any()


@pytest.mark.parametrize("cls,tcls", [(pyrnn.LSTM, torch.nn.LSTM), (pyrnn.GRU, torch.nn.GRU),
                                      (pyrnn.RNN, torch.nn.RNN)])
def test_matches_torch_batch_first(small_chunks, cls, tcls):
    rng = np.random.default_rng(3)
    B, T, I, H = 3, 50, 8, 16
    layer = cls(I, H, num_layers=2, batch_first=True, seed=2, num_threads=2).eval()
    ref = tcls(I, H, num_layers=2, batch_first=True).eval()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    assert layer._wavefront_chunks(T, B, 2) > 0
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    y, state = layer(x)
    with torch.no_grad():
        ty, tstate = ref(torch.from_numpy(x))
    np.testing.assert_allclose(y, ty.numpy(), rtol=1e-4, atol=2e-5)
    for got, want in zip(state if isinstance(state, tuple) else (state,),
                         tstate if isinstance(tstate, tuple) else (tstate,)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=2e-5)


def test_engages_only_where_it_should(monkeypatch):
    def chunks(T=1000, B=1, H=64, threads=2, cls=pyrnn.LSTM, **kw):
        layer = cls(H, H, num_threads=threads, seed=0, **{"num_layers": 2, **kw})
        return layer.eval()._wavefront_chunks(T, B, threads)

    assert chunks() == layers._WAVEFRONT_MAX_CHUNKS  # 2 x 65 MFLOP, steps of 33 kFLOP
    assert chunks(T=300) == 4                        # 20 MFLOP in chunks of >= 4
    assert chunks(cls=pyrnn.RNN, H=128, B=4) == layers._WAVEFRONT_MAX_CHUNKS
    assert chunks(T=100) == 0                        # chunks too small to repay a call
    assert chunks(threads=1) == 0
    assert chunks(num_layers=1) == 0
    assert chunks(bidirectional=True) == 0           # the directions already run concurrently
    assert chunks(H=128) == 0                        # each layer splits its steps by units
    assert chunks(H=512) == 0                        # ... or its weights
    assert chunks(B=32) == 0                         # or its batch rows
    assert chunks(T=2) == 0
    training = pyrnn.LSTM(64, 64, num_layers=2, num_threads=2)
    assert training._wavefront_chunks(1000, 1, 2) == 0
    monkeypatch.setattr(layers, "WAVEFRONT", False)
    assert chunks() == 0


def test_eval_forward_keeps_no_tape(small_chunks):
    layer = pyrnn.GRU(4, 8, num_layers=2, num_threads=2).eval()
    layer(np.ones((20, 2, 4), np.float32))
    with pytest.raises(RuntimeError, match="eval mode"):
        layer.backward(np.ones((20, 2, 8), np.float32))


def test_forward_threads_matches_the_kernels_plan():
    plan = _core.forward_threads
    # one thread asked: one thread; large weights: split by units; small weights and many
    # rows: split by batch rows, or by units where the batch split is not allowed
    # (peepholes, projections)
    assert plan(1, 100, 32, 512, 512, 512, 4, 4, True) == (1, False)
    assert plan(2, 100, 16, 512, 512, 512, 4, 4, True) == (2, False)
    assert plan(2, 100, 32, 128, 128, 128, 4, 4, True) == (2, True)
    assert plan(2, 100, 32, 128, 128, 128, 4, 4, False) == (2, False)
    # small steps: split by units from 120 kFLOP per step with 128 weight rows per thread
    assert plan(2, 1000, 1, 128, 128, 128, 4, 4, True) == (2, False)   # 131 kFLOP, 512 rows
    assert plan(2, 1000, 1, 64, 64, 64, 4, 4, True) == (1, False)      # 33 kFLOP
    assert plan(2, 1000, 4, 128, 128, 128, 1, 4, True) == (1, False)   # Elman: 128 rows
    assert plan(2, 5, 1, 128, 128, 128, 4, 4, True) == (1, False)      # 0.7 MFLOP in all
    assert plan(2, 500, 12, 64, 64, 64, 4, 4, True) == (2, True)       # 6 rows per thread
    with pytest.raises(ValueError):
        plan(0, 1, 1, 1, 1, 1, 4, 4, True)
    with pytest.raises(ValueError):
        plan(2, -1, 1, 1, 1, 1, 4, 4, True)


def _call(rng, cell="lstm", T=11, B=3, I=5, H=7, dtype=np.float32):
    G = {"lstm": 4, "gru": 3, "rnn_tanh": 1}[cell]
    a = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    return (F._CELL_IDS[cell], a(T, B, I), a(G * H, I), a(G * H, H), a(G * H), a(G * H),
            a(B, H), a(B, H) if cell == "lstm" else None, None, False, False, 1, None, None)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_forward_group_equals_separate_calls(threads):
    rng = np.random.default_rng(0)
    calls = [_call(rng, "lstm"), _call(rng, "gru", T=4), _call(rng, "rnn_tanh", B=1),
             _call(rng, "lstm", T=1, I=9)]
    got = _core.forward_group(calls, threads)
    assert len(got) == len(calls)
    for call, (y, h_n, c_n, saves) in zip(calls, got):
        want = _core.forward(*call)
        np.testing.assert_array_equal(y, want[0])
        np.testing.assert_array_equal(h_n, want[1])
        assert (c_n is None) == (want[2] is None) and saves is None
        if c_n is not None:
            np.testing.assert_array_equal(c_n, want[2])
    assert _core.forward_group([], 2) == []


def test_forward_group_rejects_bad_calls():
    rng = np.random.default_rng(0)
    good = _call(rng)
    with pytest.raises(ValueError, match="num_threads"):
        _core.forward_group([good], 0)
    with pytest.raises(ValueError, match="same dtype"):
        _core.forward_group([good, _call(rng, dtype=np.float64)], 2)
    with pytest.raises(ValueError, match="eval mode"):
        _core.forward_group([good[:10] + (True,) + good[11:]], 2)
    with pytest.raises(ValueError, match="14 arguments"):
        _core.forward_group([good[:5]], 2)
    with pytest.raises(ValueError, match="14 arguments"):
        _core.forward_group([[*good]], 2)
    with pytest.raises(ValueError, match="w_ih"):  # the forward binding's own checks
        _core.forward_group([good[:2] + (good[2][:, :3],) + good[3:]], 2)
