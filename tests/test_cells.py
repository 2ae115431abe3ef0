"""pyrnn.LSTMCell / GRUCell / RNNCell against torch.nn's cells (run in float64 on the same
values), every cell, both dtypes, with and without bias and state, batched and unbatched; their
bad inputs; and the cells of trained sequence layers."""
import pickle

import numpy as np
import pytest
import torch

import pyrnn

from torch_oracle import TOL

torch.set_num_threads(1)

CELLS = {
    "lstm": (pyrnn.LSTMCell, torch.nn.LSTMCell, {}),
    "gru": (pyrnn.GRUCell, torch.nn.GRUCell, {}),
    "rnn_tanh": (pyrnn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (pyrnn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
}


def torch_cell(kind, cell):
    """torch's cell in float64 holding `cell`'s parameters."""
    _, torch_cls, kw = CELLS[kind]
    t = torch_cls(cell.input_size, cell.hidden_size, bias=cell.bias, dtype=torch.float64, **kw)
    with torch.no_grad():
        for name, value in cell.params.items():
            getattr(t, name).copy_(torch.from_numpy(value.astype(np.float64)))
    return t


def torch_step(kind, tcell, x, h, c):
    args = [torch.from_numpy(x.astype(np.float64))]
    state = None
    if h is not None:
        state = torch.from_numpy(h.astype(np.float64))
        if kind == "lstm":
            state = (state, torch.from_numpy(c.astype(np.float64)))
    with torch.no_grad():
        out = tcell(*args, state) if state is not None else tcell(*args)
    if kind == "lstm":
        return out[0].numpy(), out[1].numpy()
    return out.numpy(), None


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("B,I,H", [(1, 5, 7), (3, 16, 32), (9, 33, 17)])
def test_cell_matches_torch(kind, dtype, bias, with_state, B, I, H):
    cls, _, kw = CELLS[kind]
    cell = cls(I, H, bias=bias, dtype=dtype, seed=B * 100 + H, **kw)
    rng = np.random.default_rng(H)
    x = rng.standard_normal((B, I)).astype(dtype)
    h = rng.standard_normal((B, H)).astype(dtype) if with_state else None
    c = rng.standard_normal((B, H)).astype(dtype) if with_state and kind == "lstm" else None
    state = ((h, c) if kind == "lstm" else h) if with_state else None
    out = cell(x, state)
    got_h, got_c = out if kind == "lstm" else (out, None)
    want_h, want_c = torch_step(kind, torch_cell(kind, cell), x, h, c)
    assert got_h.dtype == dtype and got_h.shape == (B, H)
    np.testing.assert_allclose(got_h, want_h, **TOL[np.dtype(dtype)])
    if kind == "lstm":
        assert got_c.dtype == dtype
        np.testing.assert_allclose(got_c, want_c, **TOL[np.dtype(dtype)])


@pytest.mark.parametrize("kind", list(CELLS))
def test_streaming_many_steps_matches_torch(kind):
    """200 steps with the state carried, as a streaming caller runs them."""
    cls, _, kw = CELLS[kind]
    cell = cls(6, 12, seed=3, **kw)
    tcell = torch_cell(kind, cell)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((200, 2, 6)).astype(np.float32)
    state, (th, tc) = None, (np.zeros((2, 12)), np.zeros((2, 12)))
    for x in xs:
        state = cell(x, state)
        th, tc = torch_step(kind, tcell, x, th, tc)
    got = state[0] if kind == "lstm" else state
    np.testing.assert_allclose(got, th, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", list(CELLS))
def test_unbatched_input_as_torch(kind):
    cls, _, kw = CELLS[kind]
    cell = cls(4, 6, seed=1, **kw)
    x = np.linspace(-1, 1, 4).astype(np.float32)
    batched = cell(x[None, :])
    single = cell(x)
    if kind == "lstm":
        assert single[0].shape == (6,) and single[1].shape == (6,)
        np.testing.assert_array_equal(single[0], batched[0][0])
        np.testing.assert_array_equal(single[1], batched[1][0])
        again = cell(x, single)
        assert again[0].shape == (6,)
    else:
        assert single.shape == (6,)
        np.testing.assert_array_equal(single, batched[0])
        assert cell(x, single).shape == (6,)


def test_load_state_dict_from_torch_cell():
    torch.manual_seed(0)
    tcell = torch.nn.GRUCell(5, 8)
    cell = pyrnn.GRUCell(5, 8)
    cell.load_state_dict({k: p.detach().numpy() for k, p in tcell.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((2, 5)).astype(np.float32)
    with torch.no_grad():
        want = tcell(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(cell(x), want, rtol=1e-5, atol=1e-6)


def test_parameters_are_attributes_and_init_as_torch():
    cell = pyrnn.LSTMCell(3, 10, seed=0)
    assert cell.weight_ih is cell.params["weight_ih"] and cell.weight_ih.shape == (40, 3)
    assert cell.weight_hh.shape == (40, 10) and cell.bias_ih.shape == (40,)
    bound = 1 / np.sqrt(10)
    for p in cell.params.values():
        assert np.abs(p).max() <= bound
    assert pyrnn.RNNCell(2, 3, bias=False).bias_ih is None
    assert repr(pyrnn.RNNCell(2, 3, nonlinearity="relu")) == "RNNCell(2, 3, nonlinearity='relu')"


def test_in_place_weight_edits_take_effect():
    cell = pyrnn.RNNCell(2, 3, seed=0)
    x = np.ones((1, 2), np.float32)
    before = cell(x)
    cell.weight_ih[...] = 0
    cell.bias_ih[...] = 0
    cell.bias_hh[...] = 0
    np.testing.assert_array_equal(cell(x), np.zeros((1, 3), np.float32))
    assert not np.array_equal(before, 0)


@pytest.mark.parametrize("kind,layer_cls", [("lstm", pyrnn.LSTM), ("gru", pyrnn.GRU),
                                            ("rnn_relu", pyrnn.RNN)])
def test_from_layer_steps_like_the_layer(kind, layer_cls):
    """A 2-layer bidirectional layer's reverse direction of layer 1, one step at a time."""
    kw = {"nonlinearity": "relu"} if kind == "rnn_relu" else {}
    layer = layer_cls(4, 6, num_layers=2, bidirectional=True, seed=2, **kw).eval()
    cls = CELLS[kind][0]
    x = np.random.default_rng(0).standard_normal((5, 3, 12)).astype(np.float32)  # layer 1 input
    single = layer_cls(12, 6, seed=0, **kw).eval()
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        single.params[name + "_l0"][...] = layer.params[name + "_l1_reverse"]
    y, _ = single(x[::-1].copy())
    cell = cls.from_layer(layer, layer_index=1, direction=1)
    state = None
    for t in range(5):
        state = cell(x[4 - t], state)
        h = state[0] if kind == "lstm" else state
        np.testing.assert_allclose(h, y[t], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no layer 2"):
        cls.from_layer(layer, layer_index=2)


def test_from_layer_refuses_variants():
    with pytest.raises(ValueError, match="plain LSTM"):
        pyrnn.LSTMCell.from_layer(pyrnn.LSTM(3, 4, peephole=True))
    with pytest.raises(ValueError, match="plain GRU"):
        pyrnn.GRUCell.from_layer(pyrnn.GRU(3, 4, reset_after=False))


def test_pickle_round_trip():
    cell = pyrnn.LSTMCell(3, 5, seed=4)
    copy = pickle.loads(pickle.dumps(cell))
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(copy(x)[0], cell(x)[0])


@pytest.mark.parametrize("make,call,err,match", [
    (lambda: pyrnn.LSTMCell(3, 4), lambda c: c(np.ones((2, 5), np.float32)), ValueError,
     "input_size"),
    (lambda: pyrnn.LSTMCell(3, 4), lambda c: c(np.ones((2, 3), np.float64)), TypeError,
     "does not match the cell's dtype float32"),
    (lambda: pyrnn.LSTMCell(3, 4), lambda c: c(np.ones((2, 3), np.int32)), TypeError,
     "float32 or float64"),
    (lambda: pyrnn.LSTMCell(3, 4), lambda c: c(np.ones((2, 2, 3), np.float32)), ValueError,
     r"\[B, I\] or \[I\]"),
    (lambda: pyrnn.LSTMCell(3, 4), lambda c: c(np.ones((0, 3), np.float32)), ValueError,
     "empty batch"),
    (lambda: pyrnn.LSTMCell(3, 4), lambda c: c(np.ones((2, 3), np.float32),
                                               np.zeros((2, 4), np.float32)), TypeError,
     r"tuple \(h, c\)"),
    (lambda: pyrnn.LSTMCell(3, 4), lambda c: c(np.ones((2, 3), np.float32),
                                               (np.zeros((2, 4), np.float32),
                                                np.zeros((3, 4), np.float32))), ValueError,
     "c: expected shape"),
    (lambda: pyrnn.GRUCell(3, 4), lambda c: c(np.ones((2, 3), np.float32),
                                              np.zeros((2, 5), np.float32)), ValueError,
     "h: expected shape"),
    (lambda: pyrnn.GRUCell(3, 4), lambda c: c(np.ones((2, 3), np.float32),
                                              np.zeros((2, 4), np.float64)), TypeError,
     "h: dtype float64"),
    (lambda: pyrnn.GRUCell(3, 4), lambda c: c(np.ones((2, 3), ">f4")), TypeError,
     "byte order"),
    (lambda: pyrnn.RNNCell(3, 4), lambda c: c.train(), NotImplementedError, "inference-only"),
])
def test_bad_input_raises_clearly(make, call, err, match):
    with pytest.raises(err, match=match):
        call(make())


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="hidden_size"):
        pyrnn.LSTMCell(3, 0)
    with pytest.raises(TypeError, match="input_size"):
        pyrnn.GRUCell(2.5, 3)
    with pytest.raises(ValueError, match="nonlinearity"):
        pyrnn.RNNCell(2, 3, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="dtype"):
        pyrnn.LSTMCell(2, 3, dtype=np.float16)


def test_non_contiguous_and_list_inputs_are_converted():
    cell = pyrnn.GRUCell(3, 4, seed=0)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)[:, :3] / 10  # not C-contiguous
    h = np.full((6, 4), 0.5, np.float32)[::2]
    np.testing.assert_array_equal(cell(x, h), cell(np.ascontiguousarray(x), h.copy()))
    np.testing.assert_array_equal(cell(x.tolist()), cell(np.ascontiguousarray(x)))


def test_nan_propagates():
    cell = pyrnn.LSTMCell(2, 3, seed=0)
    h, c = cell(np.array([[np.nan, 0]], np.float32))
    assert np.isnan(h).all() and np.isnan(c).all()


def test_raw_binding_refuses_variants_and_mismatched_biases():
    cell = pyrnn.GRUCell(2, 3)
    p = cell.params
    x = np.ones((1, 2), np.float32)
    with pytest.raises(ValueError, match="plain LSTM, GRU or RNN"):
        pyrnn._core.cell_step(5, x, None, None, p["weight_ih"], p["weight_hh"], None, None)
    with pytest.raises(ValueError, match="both biases or neither"):
        pyrnn._core.cell_step(1, x, None, None, p["weight_ih"], p["weight_hh"], p["bias_ih"],
                              None)
    with pytest.raises(ValueError, match="only the LSTM"):
        pyrnn._core.cell_step(1, x, None, x, p["weight_ih"], p["weight_hh"], None, None)
