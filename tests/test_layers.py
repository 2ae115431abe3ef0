"""pyrnn.layers (LSTM, GRU, RNN) against torch.nn given the same state_dict: outputs, final
states, input, initial-state and parameter gradients; stacking, bidirectional, batch_first,
variable lengths (packed sequences), dropout, state dicts and error messages."""
import warnings

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from pyrnn.layers import GRU, LSTM, RNN
from pyrnn.module import StateDictError

TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
CELLS = {
    "lstm": (LSTM, torch.nn.LSTM, {}),
    "gru": (GRU, torch.nn.GRU, {}),
    "rnn_tanh": (RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
}


@pytest.fixture(autouse=True, scope="module")
def _torch_single_thread():
    """torch is only the oracle here; on a busy shared machine its spinning intra-op threads
    cost seconds per tiny call, so run it single-threaded (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _tol(dtype):
    return dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=1e-4, atol=2e-5)


def _make(cell, *args, **kwargs):
    """A pyrnn layer and the torch.nn layer with the same configuration and parameters."""
    cls, tcls, extra = CELLS[cell]
    dtype = kwargs.get("dtype", np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dropout with one layer
        layer = cls(*args, **extra, **kwargs)
        tkw = {k: v for k, v in kwargs.items() if k not in ("dtype", "seed", "num_threads")}
        ref = tcls(*args, **extra, **tkw, dtype=TORCH_DTYPE[dtype])
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    return layer, ref


def _torch_run(ref, x, state, lengths, batch_first):
    """Torch forward; returns (y, state) as tensors; x and state leaves require grad."""
    T = x.shape[1] if batch_first else x.shape[0]
    if lengths is not None:
        packed = pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=batch_first,
                                      enforce_sorted=False)
        out, st = ref(packed, state)
        y, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    else:
        y, st = ref(x, state)
    return y, st


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def _compare_with_torch(cell, num_layers, bidirectional, batch_first, with_lengths, with_state,
                        dtype, T=5, B=4, I=3, H=6, seed=0, proj_size=0):
    """``proj_size`` (LSTM): h is proj_size wide, c stays H wide, as torch.nn.LSTM."""
    rng = np.random.default_rng(seed)
    extra = {"proj_size": proj_size} if proj_size else {}
    layer, ref = _make(cell, I, H, num_layers=num_layers, bidirectional=bidirectional,
                       batch_first=batch_first, dtype=dtype, seed=seed, **extra)
    D = 2 if bidirectional else 1
    widths = (proj_size or H, H)  # h, c
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(dtype)
    lengths = None
    if with_lengths:
        lengths = rng.integers(1, T + 1, size=B)
        lengths[rng.integers(B)] = T if B > 1 else lengths[0]  # one full row, unsorted others
    n_state = 2 if cell == "lstm" else 1
    state = None
    if with_state:
        state = tuple(rng.standard_normal((num_layers * D, B, w)).astype(dtype)
                      for w in widths[:n_state])
    # pyrnn
    y, st = layer(x, None if state is None else (state if n_state == 2 else state[0]), lengths)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dstate = tuple(rng.standard_normal((num_layers * D, B, w)).astype(dtype)
                   for w in widths[:n_state])
    dx = layer.backward(dy, dstate if n_state == 2 else dstate[0])
    # torch
    xt = torch.from_numpy(x.copy()).requires_grad_()
    st0 = None
    if state is not None:
        st0 = tuple(torch.from_numpy(s.copy()).requires_grad_() for s in state)
    yt, stt = _torch_run(ref, xt, None if st0 is None else (st0 if n_state == 2 else st0[0]),
                         lengths, batch_first)
    loss = (yt * torch.from_numpy(dy)).sum()
    for s, d in zip(_as_tuple(stt), dstate):
        loss = loss + (s * torch.from_numpy(d)).sum()
    loss.backward()

    errors = {}

    def check(name, got, want):
        want = want.detach().numpy()
        assert got.shape == want.shape, name
        assert got.dtype == dtype, name
        np.testing.assert_allclose(got, want, err_msg=name, **_tol(dtype))
        scale = max(1.0, float(np.abs(want).max(initial=0)))
        errors[name] = float(np.abs(got - want).max(initial=0)) / scale

    check("y", y, yt)
    for i, (s, s_ref) in enumerate(zip(_as_tuple(st), _as_tuple(stt))):
        check(f"state[{i}]", s, s_ref)
    check("dx", dx, xt.grad)
    if state is not None:
        for i, (g, s0) in enumerate(zip(_as_tuple(layer.state_grad), st0)):
            check(f"dstate0[{i}]", g, s0.grad)
    names = [n for n, _ in ref.named_parameters()]
    assert sorted(names) == sorted(layer.grads)
    for name, p in ref.named_parameters():
        check(name, layer.grads[name], p.grad)
    if lengths is not None:  # outputs past each row's length are exactly zero
        yb = y if batch_first else y.transpose(1, 0, 2)
        for b, n in enumerate(lengths):
            assert not np.any(yb[b, n:])
    return errors


# A reduced grid: for each cell, the rows of an 8-run two-level orthogonal array over
# (bidirectional, batch_first, lengths, initial state, dtype), so every pair of those axes
# meets in all four combinations, with num_layers cycling through 1..3.
_OA8 = [(0, 0, 0, 0, 0), (0, 0, 0, 1, 1), (0, 1, 1, 0, 0), (0, 1, 1, 1, 1),
        (1, 0, 1, 0, 1), (1, 0, 1, 1, 0), (1, 1, 0, 0, 1), (1, 1, 0, 1, 0)]
GRID = [
    (cell, (row + c) % 3 + 1, bool(bi), bool(bf), bool(ln), bool(st),
     np.float64 if dt else np.float32)
    for c, cell in enumerate(CELLS) for row, (bi, bf, ln, st, dt) in enumerate(_OA8)
]


def _grid_id(p):
    cell, L, bi, bf, ln, st, dt = p
    return (f"{cell}-L{L}-{'bi' if bi else 'uni'}-{'bf' if bf else 'tm'}"
            f"-{'len' if ln else 'full'}-{'h0' if st else 'zero'}-{np.dtype(dt).name}")


@pytest.mark.parametrize("params", GRID, ids=[_grid_id(p) for p in GRID])
def test_matches_torch(params):
    _compare_with_torch(*params)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("T,B,I,H", [(1, 1, 1, 1), (7, 3, 33, 17), (4, 2, 5, 33)])
def test_awkward_shapes_match_torch(cell, T, B, I, H):
    _compare_with_torch(cell, 2, True, False, True, True, np.float64, T=T, B=B, I=I, H=H)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_projection_matches_torch(dtype, batch_first):
    """proj_size: a torch state_dict with weight_hr loads as-is; stacked, bidirectional, lengths."""
    _compare_with_torch("lstm", 2, True, batch_first, True, True, dtype, T=6, B=4, I=5, H=12,
                        seed=4, proj_size=5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_no_bias_matches_torch(cell):
    rng = np.random.default_rng(3)
    layer, ref = _make(cell, 4, 5, num_layers=2, bias=False, bidirectional=True,
                       dtype=np.float64, seed=1)
    assert sorted(layer.params) == sorted(n for n, _ in ref.named_parameters())
    x = rng.standard_normal((6, 2, 4))
    y, _ = layer(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    xt = torch.from_numpy(x).requires_grad_()
    yt, _ = ref(xt)
    (yt * torch.from_numpy(dy)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(layer.grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_lengths_shorter_than_T_and_zero_row():
    """All rows shorter than T (torch pads to total_length); a zero-length row keeps h0."""
    rng = np.random.default_rng(5)
    layer, ref = _make("gru", 3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    x = rng.standard_normal((6, 3, 3))
    h0 = rng.standard_normal((4, 3, 4))
    lengths = np.array([2, 4, 3])
    y, h = layer(x, h0, lengths)
    yt, ht = _torch_run(ref, torch.from_numpy(x), torch.from_numpy(h0), lengths, False)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h, ht.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert not np.any(y[4:])
    # length 0 (torch refuses it): nothing runs, output zero, final state = initial state
    y, h = layer(x, h0, [0, 6, 1])
    assert not np.any(y[:, 0])
    np.testing.assert_array_equal(h[:, 0], h0[:, 0])


@pytest.mark.parametrize("cell", ["lstm", "rnn_tanh"])
def test_dstate_elements_may_be_none(cell):
    rng = np.random.default_rng(6)
    layer, ref = _make(cell, 3, 4, num_layers=2, dtype=np.float64)
    x = rng.standard_normal((5, 2, 3))
    y, st = layer(x)
    dh = rng.standard_normal((2, 2, 4))
    dx = layer.backward(None, (dh, None) if cell == "lstm" else dh)
    xt = torch.from_numpy(x).requires_grad_()
    _, stt = ref(xt)
    h_t = stt[0] if cell == "lstm" else stt
    (h_t * torch.from_numpy(dh)).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(layer.grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_gradients_accumulate_over_two_backward_calls_and_zero_grad_clears():
    rng = np.random.default_rng(7)
    layer, ref = _make("lstm", 3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    xs = [rng.standard_normal((5, 2, 3)) for _ in range(2)]
    dys = [rng.standard_normal((5, 2, 8)) for _ in range(2)]
    for x, dy in zip(xs, dys):
        layer(x)
        layer.backward(dy)
        yt, _ = ref(torch.from_numpy(x))
        (yt * torch.from_numpy(dy)).sum().backward()  # torch accumulates into .grad too
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(layer.grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-12)
    single = ref.weight_hh_l1_reverse.grad.clone()
    ref.zero_grad()
    yt, _ = ref(torch.from_numpy(xs[1]))
    (yt * torch.from_numpy(dys[1])).sum().backward()
    assert not torch.allclose(single, ref.weight_hh_l1_reverse.grad)  # the sum really is a sum
    layer.zero_grad()
    assert all(not np.any(g) for g in layer.grads.values())


@pytest.mark.parametrize("num_threads", [1, 2])
def test_bidirectional_thread_counts_agree_with_torch(num_threads):
    """One thread runs the directions one after the other, two run them concurrently."""
    rng = np.random.default_rng(8)
    layer, ref = _make("gru", 6, 16, num_layers=2, bidirectional=True, dtype=np.float64,
                       num_threads=num_threads)
    x = rng.standard_normal((9, 5, 6))
    y, h = layer(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    xt = torch.from_numpy(x).requires_grad_()
    yt, ht = ref(xt)
    (yt * torch.from_numpy(dy)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h, ht.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(layer.grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_empty_sequence_and_batch():
    layer = LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    y, (h, c) = layer(np.zeros((0, 2, 3)))
    assert y.shape == (0, 2, 8) and h.shape == (4, 2, 4) and not np.any(h) and not np.any(c)
    assert layer.backward(np.zeros((0, 2, 8))).shape == (0, 2, 3)
    y, (h, c) = layer(np.zeros((5, 0, 3)))
    assert y.shape == (5, 0, 8) and h.shape == (4, 0, 4)
    assert layer.backward(np.zeros((5, 0, 8))).shape == (5, 0, 3)


# ----------------------------------------------------------------------------- dropout

@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_relu"])
def test_dropout_eval_matches_torch_eval(cell):
    rng = np.random.default_rng(9)
    layer, ref = _make(cell, 3, 5, num_layers=3, dropout=0.5, bidirectional=True,
                       dtype=np.float64, seed=2)
    layer.eval()
    ref.eval()
    x = rng.standard_normal((6, 2, 3))
    y, st = layer(x)
    yt, stt = ref(torch.from_numpy(x))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-12)
    for s, s_ref in zip(_as_tuple(st), _as_tuple(stt)):
        np.testing.assert_allclose(s, s_ref.detach().numpy(), rtol=1e-9, atol=1e-12)
    # training mode really drops: outputs differ from eval
    layer.train()
    y_train, _ = layer(x)
    assert not np.allclose(y_train, y)


def test_dropout_training_equals_torch_layers_with_the_same_masks():
    """Stack torch single-layer modules by hand, multiplying each layer's input by the mask
    pyrnn drew (recovered by replaying the layer's generator), and compare everything."""
    rng = np.random.default_rng(10)
    p, L, H = 0.4, 3, 5
    layer = LSTM(3, H, num_layers=L, dropout=p, bidirectional=True, dtype=np.float64, seed=4)
    x = rng.standard_normal((6, 4, 3))
    state = layer.rng.bit_generator.state
    y, (h, c) = layer(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    # torch: per-layer modules, masks by replaying the generator exactly as documented
    replay = np.random.default_rng()
    replay.bit_generator.state = state
    xt = torch.from_numpy(x).requires_grad_()
    inp, hs = xt, []
    mods = []
    for k in range(L):
        mod = torch.nn.LSTM(3 if k == 0 else 2 * H, H, bidirectional=True, dtype=torch.float64)
        mod.load_state_dict({n: torch.from_numpy(layer.params[n.replace("_l0", f"_l{k}")])
                             for n, _ in mod.named_parameters()})
        mods.append(mod)
        if k > 0:
            mask = (replay.random(tuple(inp.shape)) < 1 - p) / (1 - p)
            inp = inp * torch.from_numpy(mask)
        inp, (hk, ck) = mod(inp)
        hs.append(hk)
    np.testing.assert_allclose(y, inp.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h, torch.cat(hs).detach().numpy(), rtol=1e-9, atol=1e-12)
    (inp * torch.from_numpy(dy)).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for k, mod in enumerate(mods):
        for n, prm in mod.named_parameters():
            np.testing.assert_allclose(layer.grads[n.replace("_l0", f"_l{k}")],
                                       prm.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_dropout_training_gradient_matches_finite_differences(cell):
    """float64 central differences with the masks held fixed (generator reseeded per forward)."""
    cls, _, _ = CELLS[cell]
    rng = np.random.default_rng(11)
    layer = cls(3, 4, num_layers=2, dropout=0.3, bidirectional=True, dtype=np.float64, seed=5)
    x = rng.standard_normal((5, 3, 3))
    lengths = np.array([5, 2, 4])
    dy = rng.standard_normal((5, 3, 8))

    def loss():
        layer.rng = np.random.default_rng(99)
        y, _ = layer(x, lengths=lengths)
        return float(np.sum(y * dy))

    loss()
    dx = layer.backward(dy)
    eps = 1e-6
    picks = [("x", idx) for idx in [(0, 0, 0), (1, 2, 1), (4, 0, 2), (3, 1, 0)]]
    for name in ["weight_ih_l0", "weight_hh_l0_reverse", "weight_ih_l1", "bias_hh_l1_reverse"]:
        shape = layer.params[name].shape
        picks += [(name, tuple(int(rng.integers(s)) for s in shape)) for _ in range(3)]
    for name, idx in picks:
        arr = x if name == "x" else layer.params[name]
        analytic = dx[idx] if name == "x" else layer.grads[name][idx]
        old = arr[idx]
        arr[idx] = old + eps
        up = loss()
        arr[idx] = old - eps
        down = loss()
        arr[idx] = old
        numeric = (up - down) / (2 * eps)
        assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(numeric)), (name, idx)
    # the masks were not all ones: some layer-1 gradient columns see dropped inputs
    layer.rng = np.random.default_rng(99)
    y_a, _ = layer(x, lengths=lengths)
    layer.eval()
    y_b, _ = layer(x, lengths=lengths)
    assert not np.allclose(y_a, y_b)


def test_dropout_one_drops_everything_and_rate_is_right():
    layer = RNN(4, 200, num_layers=2, dropout=1.0, seed=0)
    x = np.random.default_rng(0).standard_normal((3, 2, 4)).astype(np.float32)
    y, h = layer(x)
    # layer 1 sees only zeros: its output is act(b_ih + W_hh h) independent of x
    y2, _ = layer(2 * x)
    np.testing.assert_allclose(y, y2, rtol=1e-6)
    layer = GRU(4, 500, num_layers=2, dropout=0.25, seed=0)
    mask = layer._dropout_mask((4, 50, 500))
    kept = mask != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(mask[kept], 1 / 0.75, rtol=1e-6)


# ----------------------------------------------------------------------------- seeds, init

def test_seed_reproducible_and_init_like_torch():
    a = LSTM(5, 16, num_layers=2, dropout=0.5, bidirectional=True, seed=123)
    b = LSTM(5, 16, num_layers=2, dropout=0.5, bidirectional=True, seed=123)
    c = LSTM(5, 16, num_layers=2, dropout=0.5, bidirectional=True, seed=124)
    torch_names = [n for n, _ in torch.nn.LSTM(5, 16, num_layers=2, bidirectional=True)
                   .named_parameters()]
    assert list(a.params) == torch_names  # same names, same order
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
        assert not np.array_equal(a.params[name], c.params[name])
        p = a.params[name]
        assert p.dtype == np.float32
        assert np.abs(p).max() <= 0.25 and np.abs(p).max() > 0.2  # U(-1/sqrt(16), 1/sqrt(16))
    allp = np.concatenate([p.ravel() for p in a.params.values()])
    assert abs(allp.mean()) < 0.01 and abs(allp.std() - 0.25 / np.sqrt(3)) < 0.01
    x = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(np.float32)
    ya, _ = a(x)
    yb, _ = b(x)
    np.testing.assert_array_equal(ya, yb)  # same dropout masks from the same seed
    ya2, _ = a(x)
    assert not np.array_equal(ya, ya2)  # fresh masks on the next call


# ----------------------------------------------------------------------------- modes, errors

def test_eval_then_backward_raises_and_backward_twice_raises():
    layer = GRU(3, 4, num_layers=2)
    x = np.zeros((2, 1, 3), np.float32)
    with pytest.raises(RuntimeError, match="no forward"):
        layer.backward(np.zeros((2, 1, 4), np.float32))
    layer.eval()
    y, _ = layer(x)
    with pytest.raises(RuntimeError, match="eval mode"):
        layer.backward(np.zeros_like(y))
    layer.train()
    y, _ = layer(x)
    layer.backward(np.zeros_like(y))
    with pytest.raises(RuntimeError, match="already ran"):
        layer.backward(np.zeros_like(y))


def test_eval_keeps_no_activations():
    layer = LSTM(3, 4, num_layers=2, bidirectional=True).eval()
    layer(np.zeros((5, 2, 3), np.float32))
    assert layer._tape is None


def test_bad_inputs_raise_clear_errors():
    layer = LSTM(3, 4, num_layers=2, bidirectional=True)
    x = np.zeros((5, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"expected input_size 3.*got 7"):
        layer(np.zeros((5, 2, 7), np.float32))
    with pytest.raises(ValueError, match="3 dimensions"):
        layer(np.zeros((5, 3), np.float32))
    with pytest.raises(TypeError, match="float32.*float64"):
        layer(x.astype(np.float64))
    with pytest.raises(TypeError, match="dtype"):
        layer(x.astype(np.int32))
    h = np.zeros((4, 2, 4), np.float32)
    with pytest.raises(ValueError, match=r"expected shape \(4, 2, 4\).*got \(2, 2, 4\)"):
        layer(x, (h[:2], h))
    with pytest.raises(ValueError, match=r"state\[1\].*expected shape \(4, 2, 4\)"):
        layer(x, (h, h[:, :1]))
    with pytest.raises(TypeError, match=r"tuple \(h, c\)"):
        layer(x, h)
    with pytest.raises(TypeError, match="float32"):
        layer(x, (h, h.astype(np.float64)))
    with pytest.raises(ValueError, match="lengths.*shape"):
        layer(x, lengths=[5, 5, 5])
    with pytest.raises(ValueError, match="lengths.*T = 5"):
        layer(x, lengths=[6, 1])
    with pytest.raises(ValueError, match="lengths"):
        layer(x, lengths=[-1, 1])
    with pytest.raises(TypeError, match="lengths.*integers"):
        layer(x, lengths=[1.5, 2.0])
    gru = GRU(3, 4)
    with pytest.raises(TypeError, match="no cell state"):
        gru(x, (h[:1], h[:1]))
    with pytest.raises(ValueError, match=r"state: expected shape \(1, 2, 4\)"):
        gru(x, h)
    y, _ = layer(x)
    with pytest.raises(ValueError, match=r"dy: expected shape \(5, 2, 8\)"):
        layer.backward(np.zeros((5, 2, 4), np.float32))
    with pytest.raises(ValueError, match=r"dstate\[0\].*expected shape"):
        layer.backward(y, (h[:1], None))
    layer.backward(y)  # the failed calls did not consume the activations
    bf = LSTM(3, 4, batch_first=True)
    with pytest.raises(ValueError, match=r"\[B, T, input_size\]"):
        bf(np.zeros((2, 3), np.float32))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout"):
        LSTM(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size"):
        GRU(3, 0)
    with pytest.raises(TypeError, match="num_layers"):
        GRU(3, 4, num_layers=2.0)
    with pytest.raises(TypeError, match="dtype"):
        LSTM(3, 4, dtype=np.int32)
    with pytest.raises(ValueError, match="num_threads"):
        LSTM(3, 4, num_threads=0)
    with pytest.warns(UserWarning, match="dropout"):
        LSTM(3, 4, dropout=0.2)


# ----------------------------------------------------------------------------- state dicts

def test_state_dict_round_trip():
    a = GRU(3, 5, num_layers=2, bidirectional=True, seed=0)
    b = GRU(3, 5, num_layers=2, bidirectional=True, seed=1)
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    sd = a.state_dict()
    sd["weight_ih_l0"] += 0  # a copy: changing it does not touch a
    sd["weight_ih_l0"][0, 0] = 42.0
    assert a.params["weight_ih_l0"][0, 0] != 42.0
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x)[0], b(x)[0])


@pytest.mark.parametrize("cell", list(CELLS))
def test_load_torch_state_dict(cell):
    cls, tcls, extra = CELLS[cell]
    torch.manual_seed(0)
    ref = tcls(3, 5, num_layers=2, bidirectional=True, batch_first=True, **extra)
    layer = cls(3, 5, num_layers=2, bidirectional=True, batch_first=True, **extra)
    layer.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 6, 3)).astype(np.float32)
    y, _ = layer(x)
    np.testing.assert_allclose(y, ref(torch.from_numpy(x))[0].detach().numpy(),
                               rtol=1e-4, atol=1e-6)


def test_load_state_dict_mismatch_raises():
    layer = LSTM(3, 5, num_layers=2, bidirectional=True)
    uni = torch.nn.LSTM(3, 5, num_layers=2)
    with pytest.raises(StateDictError, match="missing keys.*weight_ih_l0_reverse"):
        layer.load_state_dict({k: v.numpy() for k, v in uni.state_dict().items()})
    other = torch.nn.LSTM(3, 6, num_layers=2, bidirectional=True)
    with pytest.raises(ValueError, match=r"wrong shapes.*weight_hh_l0"):
        layer.load_state_dict({k: v.numpy() for k, v in other.state_dict().items()})
    gru = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True)  # 3 gates, not 4
    with pytest.raises(ValueError, match="wrong shapes"):
        layer.load_state_dict({k: v.numpy() for k, v in gru.state_dict().items()})
