"""pyrnn.functional on bad and unusual input.

Bad input: one test per path, each checking the exception type and that the message names the
argument. Unusual but legal input: non-contiguous views, NaN/inf, empty sizes (T, B, H, I = 0),
all-zero lengths, NaN in the padding of packed sequences.
"""
import numpy as np
import pytest

from pyrnn import functional as F
from torch_oracle import CELL_IDS, CELLS, GATES

CELL_PARAMS = pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
T, B, I, H = 3, 2, 4, 5


def _arrays(cell, dtype=np.float64, seed=0, T=T, B=B, I=I, H=H):
    rng = np.random.default_rng(seed)
    G = GATES[cell]

    def u(*shape, s=0.5):
        return rng.uniform(-s, s, size=shape).astype(dtype)

    return dict(x=u(T, B, I, s=1.0), w_ih=u(G * H, I), w_hh=u(G * H, H), b_ih=u(G * H),
                b_hh=u(G * H), h0=u(B, H), c0=u(B, H) if cell == "lstm" else None,
                dy=u(T, B, H, s=1.0), dh=u(B, H, s=1.0),
                dc=u(B, H, s=1.0) if cell == "lstm" else None)


def fwd(cell, nl, a, **kw):
    """Forward with the arrays of dict ``a`` (keys as in _arrays; missing -> None)."""
    if cell == "rnn":
        kw.setdefault("nonlinearity", nl)
    kw.setdefault("num_threads", 1)  # fast on busy machines; threads are tested elsewhere
    state = a.get("h0")
    if cell == "lstm":
        state = kw.pop("state", (a.get("h0"), a.get("c0")))
    else:
        state = kw.pop("state", state)
    return getattr(F, f"{cell}_forward")(a["x"], a["w_ih"], a["w_hh"], a.get("b_ih"),
                                         a.get("b_hh"), state, **kw)


def bwd(cell, cache, dy, dstate=None):
    return getattr(F, f"{cell}_backward")(cache, dy, dstate)


def dstate_of(cell, a):
    return (a["dh"], a["dc"]) if cell == "lstm" else a["dh"]


# =========================================================================== bad input: forward

@CELL_PARAMS
@pytest.mark.parametrize("shape", [(B, I), (T, B, I, 1), (T * B * I,)], ids=["2d", "4d", "1d"])
def test_x_wrong_ndim(cell, nl, shape):
    a = _arrays(cell)
    a["x"] = np.zeros(shape)
    with pytest.raises(ValueError, match=r"^x: expected 3 dimensions"):
        fwd(cell, nl, a)


@CELL_PARAMS
@pytest.mark.parametrize("how", ["fewer_cols", "more_cols", "fewer_rows", "1d", "3d"])
def test_w_ih_wrong_shape(cell, nl, how):
    a = _arrays(cell)
    w = a["w_ih"]
    a["w_ih"] = {"fewer_cols": w[:, :-1], "more_cols": np.hstack([w, w[:, :1]]),
                 "fewer_rows": w[:-1], "1d": w.ravel(), "3d": w[None]}[how]
    with pytest.raises(ValueError, match=r"^w_ih: expected shape"):
        fwd(cell, nl, a)


@CELL_PARAMS
@pytest.mark.parametrize("how", ["fewer_rows", "square", "1d", "3d", "other_cell_gates"])
def test_w_hh_wrong_shape(cell, nl, how):
    a = _arrays(cell)
    w = a["w_hh"]
    other_g = 3 if cell == "lstm" else 4
    a["w_hh"] = {"fewer_rows": w[:-1], "square": np.zeros((H, H)) if cell != "rnn" else
                 np.zeros((H, H + 1)), "1d": w.ravel(), "3d": w[None],
                 "other_cell_gates": np.zeros((other_g * H, H))}[how]
    with pytest.raises(ValueError, match=r"^w_hh: expected shape"):
        fwd(cell, nl, a)


@CELL_PARAMS
@pytest.mark.parametrize("name", ["b_ih", "b_hh"])
@pytest.mark.parametrize("how", ["short", "long", "2d", "scalar"])
def test_bias_wrong_shape(cell, nl, name, how):
    a = _arrays(cell)
    b = a[name]
    a[name] = {"short": b[:-1], "long": np.append(b, 0.0), "2d": b[None],
               "scalar": np.float64(1.0)}[how]
    with pytest.raises(ValueError, match=rf"^{name}: expected shape"):
        fwd(cell, nl, a)


@CELL_PARAMS
@pytest.mark.parametrize("missing", ["b_ih", "b_hh"])
def test_only_one_bias(cell, nl, missing):
    a = _arrays(cell)
    a[missing] = None
    with pytest.raises(ValueError, match=r"b_ih, b_hh: give both biases or neither"):
        fwd(cell, nl, a)


@CELL_PARAMS
@pytest.mark.parametrize("shape", [(B + 1, H), (B, H - 1), (H,), (1, B, H)],
                         ids=["B+1", "H-1", "1d", "3d"])
def test_h0_wrong_shape(cell, nl, shape):
    a = _arrays(cell)
    a["h0"] = np.zeros(shape)
    with pytest.raises(ValueError, match=r"^h0: expected shape \(2, 5\)"):
        fwd(cell, nl, a)


@pytest.mark.parametrize("shape", [(B + 1, H), (B, H + 1), (B * H,)])
def test_c0_wrong_shape(shape):
    a = _arrays("lstm")
    a["c0"] = np.zeros(shape)
    with pytest.raises(ValueError, match=r"^c0: expected shape \(2, 5\)"):
        fwd("lstm", None, a)


@pytest.mark.parametrize("state", ["array", "triple", "single"])
def test_lstm_state_not_a_pair(state):
    a = _arrays("lstm")
    st = {"array": a["h0"], "triple": (a["h0"], a["c0"], a["c0"]), "single": (a["h0"],)}[state]
    with pytest.raises(TypeError, match=r"^state: expected a tuple \(h, c\)"):
        fwd("lstm", None, a, state=st)


@CELL_PARAMS
@pytest.mark.parametrize("odd", ["w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0", "x"])
@pytest.mark.parametrize("x_dtype", [np.float32, np.float64], ids=["x_f32", "x_f64"])
def test_mixed_dtypes(cell, nl, odd, x_dtype):
    """Every array must have x's dtype; one array of the other float dtype -> TypeError."""
    if odd == "c0" and cell != "lstm":
        pytest.skip("no c0")
    other = np.float64 if x_dtype == np.float32 else np.float32
    a = _arrays(cell, dtype=x_dtype)
    if odd == "x":  # x of the other dtype: the first weight checked is named
        a["x"] = a["x"].astype(other)
        pattern = r"^w_(hh|ih): dtype"
    else:
        a[odd] = a[odd].astype(other)
        pattern = rf"^{odd}: dtype \S+ does not match x's dtype"
    with pytest.raises(TypeError, match=pattern):
        fwd(cell, nl, a)


@CELL_PARAMS
@pytest.mark.parametrize("name", ["x", "w_ih", "w_hh", "b_ih", "h0"])
@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.complex128, np.bool_])
def test_unsupported_dtype(cell, nl, name, dtype):
    a = _arrays(cell)
    if name == "x":  # all arrays of the same unsupported dtype: still refused, x named
        for k in ("x", "w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0"):
            if a[k] is not None:
                a[k] = a[k].astype(dtype)
    else:
        a[name] = a[name].astype(dtype)
    with pytest.raises(TypeError, match=rf"^{name}: expected dtype float32 or float64"):
        fwd(cell, nl, a)


@CELL_PARAMS
def test_object_and_none_x(cell, nl):
    a = _arrays(cell)
    a["x"] = None
    with pytest.raises(TypeError, match=r"^x: expected an array, got None"):
        fwd(cell, nl, a)
    a["x"] = np.empty((T, B, I), dtype=object)
    with pytest.raises(TypeError, match=r"^x: expected dtype"):
        fwd(cell, nl, a)


@CELL_PARAMS
@pytest.mark.parametrize("lengths", [[1, T + 1], [-1, 2], [0, 2**40]], ids=["gtT", "neg", "huge"])
def test_lengths_out_of_range(cell, nl, lengths):
    a = _arrays(cell)
    with pytest.raises(ValueError, match=r"^lengths: entry \d+ is -?\d+, expected 0 <= length"):
        fwd(cell, nl, a, lengths=np.array(lengths))


@CELL_PARAMS
@pytest.mark.parametrize("lengths", [[1], [1, 2, 3], [[1, 2]], 2], ids=["short", "long", "2d",
                                                                         "scalar"])
def test_lengths_wrong_shape(cell, nl, lengths):
    a = _arrays(cell)
    with pytest.raises(ValueError, match=r"^lengths: expected shape \(2,\)"):
        fwd(cell, nl, a, lengths=lengths)


@CELL_PARAMS
@pytest.mark.parametrize("lengths", [np.array([1.0, 2.0]), np.array([True, False]),
                                     np.array(["1", "2"])], ids=["float", "bool", "str"])
def test_lengths_not_integer(cell, nl, lengths):
    a = _arrays(cell)
    with pytest.raises(TypeError, match=r"^lengths: expected integers"):
        fwd(cell, nl, a, lengths=lengths)


@pytest.mark.parametrize("nonlinearity", ["sigmoid", "TANH", "", None, 1])
def test_unknown_nonlinearity(nonlinearity):
    a = _arrays("rnn")
    with pytest.raises(ValueError, match=r"^nonlinearity: expected 'tanh' or 'relu'"):
        F.rnn_forward(a["x"], a["w_ih"], a["w_hh"], nonlinearity=nonlinearity)


@CELL_PARAMS
@pytest.mark.parametrize("num_threads,exc", [
    (0, ValueError), (-1, ValueError), (-8, ValueError),
    (1.5, TypeError), (2.0, TypeError), ("2", TypeError), (True, TypeError), ([2], TypeError),
], ids=["0", "-1", "-8", "1.5", "2.0", "str", "bool", "list"])
def test_bad_num_threads(cell, nl, num_threads, exc):
    a = _arrays(cell)
    with pytest.raises(exc, match=r"^num_threads: expected"):
        fwd(cell, nl, a, num_threads=num_threads)


@CELL_PARAMS
def test_numpy_integer_num_threads_accepted(cell, nl):
    a = _arrays(cell)
    y0 = fwd(cell, nl, a, num_threads=1)[0]
    y1 = fwd(cell, nl, a, num_threads=np.int64(1))[0]
    np.testing.assert_array_equal(y0, y1)


# =========================================================================== bad input: backward

def _cache(cell, nl, a=None, **kw):
    a = _arrays(cell) if a is None else a
    return fwd(cell, nl, a, training=True, **kw)[2]


@CELL_PARAMS
@pytest.mark.parametrize("shape", [(T, B, H + 1), (T - 1, B, H), (T, B + 1, H), (B, H),
                                   (T, B, H, 1)])
def test_dy_wrong_shape(cell, nl, shape):
    with pytest.raises(ValueError, match=r"^dy: expected shape \(3, 2, 5\)"):
        bwd(cell, _cache(cell, nl), np.zeros(shape))


@CELL_PARAMS
def test_dy_wrong_dtype(cell, nl):
    with pytest.raises(TypeError, match=r"^dy: dtype float32 does not match"):
        bwd(cell, _cache(cell, nl), np.zeros((T, B, H), np.float32))
    with pytest.raises(TypeError, match=r"^dy: expected dtype float32 or float64"):
        bwd(cell, _cache(cell, nl), np.zeros((T, B, H), np.int64))


@CELL_PARAMS
@pytest.mark.parametrize("shape", [(B, H + 1), (B + 1, H), (H,), (1, B, H)])
def test_dh_n_wrong_shape(cell, nl, shape):
    d = np.zeros(shape)
    dstate = (d, None) if cell == "lstm" else d
    with pytest.raises(ValueError, match=r"^dh_n: expected shape \(2, 5\)"):
        bwd(cell, _cache(cell, nl), None, dstate)


@pytest.mark.parametrize("shape", [(B, H + 1), (B + 1, H), (H,)])
def test_dc_n_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"^dc_n: expected shape \(2, 5\)"):
        bwd("lstm", _cache("lstm", None), None, (None, np.zeros(shape)))


def test_lstm_dstate_not_a_pair():
    with pytest.raises(TypeError, match=r"^dstate: expected a tuple"):
        F.lstm_backward(_cache("lstm", None), None, np.zeros((B, H)))


@CELL_PARAMS
def test_cache_reused_after_backward(cell, nl):
    a = _arrays(cell)
    cache = _cache(cell, nl, a)
    bwd(cell, cache, a["dy"])
    with pytest.raises(ValueError, match=r"^cache: already consumed"):
        bwd(cell, cache, a["dy"])


@CELL_PARAMS
def test_backward_with_cache_none(cell, nl):
    a = _arrays(cell)
    cache = fwd(cell, nl, a)[2]  # inference forward: no cache
    assert cache is None
    with pytest.raises(ValueError, match=r"^cache: is None; run the forward with training=True"):
        bwd(cell, cache, a["dy"])


@CELL_PARAMS
@pytest.mark.parametrize("obj", [{}, "cache", (1, 2, 3)], ids=["dict", "str", "tuple"])
def test_backward_with_foreign_object(cell, nl, obj):
    with pytest.raises(TypeError, match=r"^cache: expected the Cache"):
        bwd(cell, obj, None)


@pytest.mark.parametrize("made_by,used_by", [
    ("gru", "lstm"), ("rnn", "lstm"), ("lstm", "gru"), ("rnn", "gru"), ("lstm", "rnn"),
    ("gru", "rnn"),
])
def test_cache_of_another_cell(made_by, used_by):
    a = _arrays(made_by)
    cache = _cache(made_by, "tanh", a)
    with pytest.raises(ValueError, match=rf"^cache: was made by a {made_by}\w* forward, not "
                                         rf"usable by {used_by}_backward"):
        bwd(used_by, cache, a["dy"])
    # the refused call did not consume the cache: its own backward still works
    assert bwd(made_by, cache, a["dy"])[0].shape == (T, B, I)


@CELL_PARAMS
def test_failed_backward_does_not_consume_cache(cell, nl):
    a = _arrays(cell)
    cache = _cache(cell, nl, a)
    with pytest.raises(ValueError, match=r"^dy:"):
        bwd(cell, cache, np.zeros((1, 1, 1)))
    dx = bwd(cell, cache, a["dy"])[0]
    assert dx.shape == (T, B, I) and np.isfinite(dx).all()


# =========================================================================== defined results

def assert_close(got, want, err_msg=""):
    """Equal to the last few bits. Stride or padding mistakes give large errors; bitwise
    reproducibility is the subject of test_functional_torch.py (determinism tests)."""
    tol = dict(rtol=1e-13, atol=1e-15) if got.dtype == np.float64 else dict(rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got, want, err_msg=err_msg, **tol)


def _full_run(cell, nl, a, **kw):
    """Forward (training) + backward; every result in one flat dict."""
    y, st, cache = fwd(cell, nl, a, training=True, **kw)
    dx, dst, dp = bwd(cell, cache, a["dy"], dstate_of(cell, a))
    out = {"y": y, "dx": dx}
    if cell == "lstm":
        out["h_n"], out["c_n"] = st
        out["dh0"], out["dc0"] = dst
    else:
        out["h_n"], out["dh0"] = st, dst
    out.update({"d" + k: v for k, v in dp.items()})
    return out


def _noncontiguous(arr, how):
    """A non-contiguous view holding the same values as arr."""
    if how == "transposed":  # reverse the axis order in memory
        return np.ascontiguousarray(arr.T).T
    if how == "sliced":  # every other element along the last axis of a bigger buffer
        big = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],), arr.dtype)
        big[..., ::2] = arr
        return big[..., ::2]
    if how == "reversed":  # negative strides
        return np.ascontiguousarray(arr[::-1])[::-1]
    raise AssertionError(how)


@CELL_PARAMS
@pytest.mark.parametrize("how", ["transposed", "sliced", "reversed"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_noncontiguous_inputs_equal_contiguous(cell, nl, how, dtype):
    a = _arrays(cell, dtype=dtype, seed=3)
    lengths = np.array([3, 1])
    want = _full_run(cell, nl, a, lengths=lengths, num_threads=1)
    views = {k: (None if v is None else _noncontiguous(v, how)) for k, v in a.items()}
    for k, v in views.items():
        if v is not None and v.size > 1 and v.ndim > 1:
            assert not v.flags.c_contiguous, k
        if v is not None:
            np.testing.assert_array_equal(v, a[k])
    lens_view = np.array([3, 0, 1, 0])[::2]
    got = _full_run(cell, nl, views, lengths=lens_view, num_threads=1)
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
        assert_close(got[k], want[k], err_msg=k)


@CELL_PARAMS
def test_fortran_order_weights(cell, nl):
    a = _arrays(cell, seed=4)
    want = _full_run(cell, nl, a, num_threads=1)
    f = dict(a, w_ih=np.asfortranarray(a["w_ih"]), w_hh=np.asfortranarray(a["w_hh"]),
             x=np.asfortranarray(a["x"]))
    assert not f["w_hh"].flags.c_contiguous
    got = _full_run(cell, nl, f, num_threads=1)
    for k in want:
        assert_close(got[k], want[k], err_msg=k)


def _expected_nan_rows(T, lens, t_bad, b_bad, reverse):
    """[T, B] mask of the outputs that depend on x[t_bad, b_bad]."""
    mask = np.zeros((T, len(lens)), bool)
    n = lens[b_bad]
    if t_bad < n:
        if reverse:
            mask[: t_bad + 1, b_bad] = True
        else:
            mask[t_bad:n, b_bad] = True
    return mask


@CELL_PARAMS
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_nan_in_x_propagates(cell, nl, reverse, dtype):
    """A NaN in x[t, b] makes y[., b] NaN on every step that depends on it (and h_n[b]); the
    other rows and the earlier steps of row b are untouched, and nothing raises."""
    Tn, Bn = 5, 3
    a = _arrays(cell, dtype=dtype, seed=6, T=Tn, B=Bn)
    lens = np.array([5, 4, 5])
    clean = fwd(cell, nl, a, reverse=reverse, lengths=lens, num_threads=1)
    t_bad, b_bad = 2, 1
    a["x"][t_bad, b_bad, 0] = np.nan
    y, st, _ = fwd(cell, nl, a, reverse=reverse, lengths=lens, num_threads=1)
    h_n = st[0] if cell == "lstm" else st
    want = _expected_nan_rows(Tn, lens, t_bad, b_bad, reverse)
    np.testing.assert_array_equal(np.isnan(y).all(axis=-1), want)
    np.testing.assert_array_equal(np.isnan(y).any(axis=-1), want)
    assert np.isnan(h_n[b_bad]).all() and not np.isnan(np.delete(h_n, b_bad, 0)).any()
    assert_close(y[~want], clean[0][~want])


@CELL_PARAMS
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_nonfinite_x_matches_torch(cell, nl, value, reverse):
    """inf saturates gates exactly as torch does (tanh(inf) = 1, sigmoid(-inf) = 0, relu(inf)
    = inf, inf - inf = NaN): the NaN pattern and the finite values equal torch's."""
    import torch_oracle

    case = torch_oracle.make_case(cell, 4, 3, 2, 3, seed=12, bias=True)
    case["x"][1, 0, 0] = value
    case["x"][2, 2, :] = value
    got = torch_oracle.forward(F, case, nl, reverse=reverse, num_threads=1)[0]
    want = torch_oracle.torch_run(case, nl, reverse)["y"]
    assert np.isnan(got).any() == np.isnan(want).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, equal_nan=True)


@CELL_PARAMS
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_nan_in_padding_is_ignored(cell, nl, reverse):
    """Values of x and dy past a row's length are never read: NaN there changes nothing."""
    Tn, Bn = 4, 3
    a = _arrays(cell, seed=8, T=Tn, B=Bn)
    lens = np.array([2, 0, 4])
    want = _full_run(cell, nl, a, reverse=reverse, lengths=lens, num_threads=1)
    pad = np.arange(Tn)[:, None] >= lens[None, :]
    a["x"][pad] = np.nan
    a["dy"][pad] = np.nan
    got = _full_run(cell, nl, a, reverse=reverse, lengths=lens, num_threads=1)
    for k in want:
        assert np.isfinite(got[k]).all(), k
        assert_close(got[k], want[k], err_msg=k)
    np.testing.assert_array_equal(got["y"][pad], 0)
    np.testing.assert_array_equal(got["dx"][pad], 0)


EMPTY = [(0, 3, 2, 3), (4, 0, 2, 3), (0, 0, 2, 3), (4, 3, 2, 0), (0, 0, 0, 0)]


@CELL_PARAMS
@pytest.mark.parametrize("shape", EMPTY, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("with_state", [True, False], ids=["h0", "noh0"])
def test_empty_sizes(cell, nl, shape, dtype, with_state):
    """T=0, B=0 and H=0 are legal: results of the right shapes and dtype, final state = initial
    state (zeros without one), dh0 = dh_n when T=0, zero parameter gradients."""
    Tn, Bn, In, Hn = shape
    lstm = cell == "lstm"
    a = _arrays(cell, dtype=dtype, T=Tn, B=Bn, I=In, H=Hn)
    if not with_state:
        a["h0"] = a["c0"] = None
    y, st, cache = fwd(cell, nl, a, training=True, num_threads=2)
    assert y.shape == (Tn, Bn, Hn) and y.dtype == dtype
    states = st if lstm else (st,)
    inits = (a["h0"], a["c0"]) if lstm else (a["h0"],)
    for s, s0 in zip(states, inits):
        assert s.shape == (Bn, Hn) and s.dtype == dtype
        if Tn == 0:
            np.testing.assert_array_equal(s, np.zeros((Bn, Hn)) if s0 is None else s0)
    dx, dst, dp = bwd(cell, cache, a["dy"], dstate_of(cell, a))
    assert dx.shape == (Tn, Bn, In) and dx.dtype == dtype
    if Hn == 0 or Tn == 0 or Bn == 0:
        np.testing.assert_array_equal(dx, 0)
    dstates = dst if lstm else (dst,)
    douts = (a["dh"], a["dc"]) if lstm else (a["dh"],)
    for d, d_n in zip(dstates, douts):
        assert d.shape == (Bn, Hn) and d.dtype == dtype
        if Tn == 0:
            np.testing.assert_array_equal(d, d_n)
    assert set(dp) == {"w_ih", "w_hh", "b_ih", "b_hh"}
    for k, g in dp.items():
        assert g.shape == a[k].shape and g.dtype == dtype, k
        if Tn == 0 or Bn == 0:
            np.testing.assert_array_equal(g, 0)


@CELL_PARAMS
def test_zero_input_features(cell, nl):
    """I = 0 equals I = 1 with a zero input column of w_ih (only biases and h drive the cell)."""
    a = _arrays(cell, seed=9, I=1)
    a["w_ih"][:] = 0
    want = _full_run(cell, nl, a, num_threads=1)
    a0 = dict(a, x=a["x"][:, :, :0], w_ih=a["w_ih"][:, :0])
    got = _full_run(cell, nl, a0, num_threads=1)
    assert got["dx"].shape == (T, B, 0) and got["dw_ih"].shape == (GATES[cell] * H, 0)
    for k in want:
        if k not in ("dx", "dw_ih"):
            assert_close(got[k], want[k], err_msg=k)


@CELL_PARAMS
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("with_state", [True, False], ids=["h0", "noh0"])
def test_all_lengths_zero(cell, nl, reverse, with_state):
    a = _arrays(cell, seed=10)
    if not with_state:
        a["h0"] = a["c0"] = None
    lens = np.zeros(B, np.int64)
    out = _full_run(cell, nl, a, reverse=reverse, lengths=lens)
    np.testing.assert_array_equal(out["y"], 0)
    zeros = np.zeros((B, H))
    np.testing.assert_array_equal(out["h_n"], zeros if a["h0"] is None else a["h0"])
    np.testing.assert_array_equal(out["dh0"], a["dh"])
    np.testing.assert_array_equal(out["dx"], 0)
    if cell == "lstm":
        np.testing.assert_array_equal(out["c_n"], zeros if a["c0"] is None else a["c0"])
        np.testing.assert_array_equal(out["dc0"], a["dc"])
    for k in ("dw_ih", "dw_hh", "db_ih", "db_hh"):
        np.testing.assert_array_equal(out[k], 0, err_msg=k)
