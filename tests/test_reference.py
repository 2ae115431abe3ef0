"""Tests of the pure-NumPy reference (pyrnn.reference) against torch.nn.LSTM/GRU/RNN.

Every result (outputs, final states and all gradients) is compared with PyTorch autograd
using random upstream gradients on y and on the final states:
``loss = (y*dy).sum() + (h_n*dh).sum() [+ (c_n*dc).sum()]``.
torch always runs in float64 on the same (possibly float32-rounded) inputs, so float32
comparisons measure the reference's own rounding error.
"""

import importlib.util
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

try:
    import pyrnn.reference as ref
except ImportError:  # compiled core not built yet: load the module by path
    _path = pathlib.Path(__file__).resolve().parents[1] / "pyrnn" / "reference.py"
    _spec = importlib.util.spec_from_file_location("pyrnn_reference", _path)
    ref = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(ref)


# (cell, nonlinearity) pairs; nonlinearity only matters for "rnn".
CELLS = [("lstm", None), ("gru", None), ("rnn", "tanh"), ("rnn", "relu")]
CELL_IDS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
PARAM_NAMES = ("w_ih", "w_hh", "b_ih", "b_hh")
TOL = {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=1e-4, atol=2e-5)}


# --------------------------------------------------------------------------- helpers


def make_case(cell, T, B, I, H, *, bias=True, dtype=np.float64, seed=0, lengths=False):
    """Random inputs, parameters, initial states and upstream gradients."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    k = 1.0 / np.sqrt(max(H, 1))

    def u(*shape, scale=1.0):
        return rng.uniform(-scale, scale, size=shape).astype(dtype)

    params = {"w_ih": u(G * H, I, scale=k), "w_hh": u(G * H, H, scale=k)}
    if bias:
        params["b_ih"] = u(G * H, scale=k)
        params["b_hh"] = u(G * H, scale=k)
    case = dict(cell=cell, params=params, x=u(T, B, I), h0=u(B, H, scale=0.5),
                c0=u(B, H, scale=0.5) if cell == "lstm" else None,
                dy=u(T, B, H), dh=u(B, H), dc=u(B, H) if cell == "lstm" else None,
                lengths=None)
    if lengths:
        lens = rng.integers(1, T + 1, size=B)
        if B >= 2:
            lens[1] = 0  # a row that processes nothing
        if B >= 3:
            lens[2] = T  # a full-length row
        case["lengths"] = lens
    return case


def _fns(cell):
    return getattr(ref, f"{cell}_forward"), getattr(ref, f"{cell}_backward")


def ref_run(case, nonlinearity=None, reverse=False):
    """Run the reference forward (training) and backward; return a dict of results."""
    cell, p = case["cell"], case["params"]
    fwd, bwd = _fns(cell)
    kw = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    lstm = cell == "lstm"
    state = (case["h0"], case["c0"]) if lstm else case["h0"]
    y, st, cache = fwd(case["x"], p["w_ih"], p["w_hh"], p.get("b_ih"), p.get("b_hh"), state,
                       reverse=reverse, lengths=case["lengths"], training=True, **kw)
    dstate = (case["dh"], case["dc"]) if lstm else case["dh"]
    dx, dst, dp = bwd(cache, case["dy"], dstate)
    out = {"y": y, "dx": dx}
    if lstm:
        out["h_n"], out["c_n"] = st
        out["dh0"], out["dc0"] = dst
    else:
        out["h_n"], out["dh0"] = st, dst
    out.update({"d" + k: v for k, v in dp.items()})
    return out


def torch_module(cell, I, H, bias, nonlinearity=None, bidirectional=False):
    kw = dict(bias=bias, bidirectional=bidirectional, dtype=torch.float64)
    if cell == "lstm":
        return torch.nn.LSTM(I, H, **kw)
    if cell == "gru":
        return torch.nn.GRU(I, H, **kw)
    return torch.nn.RNN(I, H, nonlinearity=nonlinearity, **kw)


def flip_within_lengths(a, lengths):
    """Reverse each row b of a time-major array over its first lengths[b] steps.

    The map is an involution, so the same call also undoes it.
    """
    T, B = a.shape[:2]
    lens = np.full(B, T) if lengths is None else np.asarray(lengths)
    t = np.arange(T)[:, None]
    src = np.where(t < lens[None, :], lens[None, :] - 1 - t, t)  # [T, B]
    return np.take_along_axis(a, src.reshape(T, B, *([1] * (a.ndim - 2))), axis=0)


def torch_run(case, nonlinearity=None, reverse=False, method="flip"):
    """The same quantities as ref_run, from torch autograd in float64.

    reverse=True is emulated either by flipping every row within its own length and
    running a forward module ("flip"), or by the reverse direction of a bidirectional
    module ("bidir"). Rows of length 0 (which pack_padded_sequence refuses) are left
    out of the torch run; their expected results follow from the definition.
    """
    cell, p = case["cell"], case["params"]
    lstm = cell == "lstm"
    T, B, I = case["x"].shape
    H = p["w_hh"].shape[1]
    bias = "b_ih" in p
    lengths = case["lengths"]
    f64 = lambda a: None if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    x, dy, h0, c0, dh, dc = (f64(case[k]) for k in ("x", "dy", "h0", "c0", "dh", "dc"))

    bidir = reverse and method == "bidir"
    flip = reverse and not bidir
    if flip:
        x, dy = flip_within_lengths(x, lengths), flip_within_lengths(dy, lengths)
    keep = np.ones(B, bool) if lengths is None else np.asarray(lengths) > 0

    # Defaults, correct for rows that are not run through torch (length 0).
    y = np.zeros((T, B, H))
    out = {"h_n": h0.copy(), "dh0": dh.copy(), "dx": np.zeros((T, B, I))}
    if lstm:
        out["c_n"], out["dc0"] = c0.copy(), dc.copy()
    for k in p:
        out["d" + k] = np.zeros(p[k].shape)

    if keep.any():
        mod = torch_module(cell, I, H, bias, nonlinearity, bidirectional=bidir)
        suffix = "_l0_reverse" if bidir else "_l0"
        names = {"w_ih": "weight_ih", "w_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh"}
        with torch.no_grad():
            for k, v in p.items():
                getattr(mod, names[k] + suffix).copy_(torch.from_numpy(f64(v)))
        d = 1 if bidir else 0

        def state_tensor(s):  # [B, H] -> leaf [D, B', H] with our state in slot d
            full = np.zeros((2 if bidir else 1, int(keep.sum()), H))
            full[d] = s[keep]
            return torch.tensor(full, requires_grad=True)

        xt = torch.tensor(x[:, keep], requires_grad=True)
        h0t = state_tensor(h0)
        hx = (h0t, state_tensor(c0)) if lstm else h0t
        if lengths is None:
            yt, st = mod(xt, hx)
        else:
            packed = pack_padded_sequence(xt, torch.as_tensor(lengths[keep], dtype=torch.int64),
                                          enforce_sorted=False)
            yp, st = mod(packed, hx)
            yt, _ = pad_packed_sequence(yp, total_length=T)
        if bidir:
            yt = yt[..., H:]
        hnt, cnt = st if lstm else (st, None)
        loss = (yt * torch.from_numpy(dy[:, keep])).sum()
        loss = loss + (hnt[d] * torch.from_numpy(dh[keep])).sum()
        if lstm:
            loss = loss + (cnt[d] * torch.from_numpy(dc[keep])).sum()
        loss.backward()

        y[:, keep] = yt.detach().numpy()
        out["dx"][:, keep] = xt.grad.numpy()
        out["h_n"][keep] = hnt[d].detach().numpy()
        out["dh0"][keep] = h0t.grad[d].numpy()
        if lstm:
            out["c_n"][keep] = cnt[d].detach().numpy()
            out["dc0"][keep] = hx[1].grad[d].numpy()
        for k in p:
            out["d" + k] = getattr(mod, names[k] + suffix).grad.numpy().copy()

    out["y"] = y
    if flip:
        out["y"] = flip_within_lengths(out["y"], lengths)
        out["dx"] = flip_within_lengths(out["dx"], lengths)
    return out


MAX_ERR = {}  # dtype name -> largest relative error seen (for reporting)


def assert_matches(got, want, dtype):
    """Compare every key of want; results must also keep the input dtype."""
    assert set(got) == set(want), (sorted(got), sorted(want))
    for k in want:
        assert got[k].dtype == dtype, f"{k}: dtype {got[k].dtype}, expected {dtype}"
        assert got[k].shape == want[k].shape, f"{k}: shape {got[k].shape} vs {want[k].shape}"
        np.testing.assert_allclose(got[k], want[k], err_msg=k, **TOL[dtype])
        if want[k].size:
            err = np.max(np.abs(got[k] - want[k]) / (np.abs(want[k]) + 1e-3))
            name = np.dtype(dtype).name
            MAX_ERR[name] = max(MAX_ERR.get(name, 0.0), float(err))


# --------------------------------------------------------------------------- torch comparisons

SHAPES = [  # T, B, I, H
    (1, 1, 1, 1),
    (1, 3, 2, 3),
    (5, 1, 3, 1),
    (4, 3, 5, 3),
    (6, 4, 3, 33),
    (3, 33, 7, 5),
]


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
def test_against_torch_float64(cell, nl, shape, bias, reverse, lengths):
    case = make_case(cell, *shape, bias=bias, dtype=np.float64, seed=sum(shape), lengths=lengths)
    assert_matches(ref_run(case, nl, reverse), torch_run(case, nl, reverse), np.float64)


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (4, 3, 5, 3), (7, 5, 4, 33)],
                         ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("reverse,lengths", [(False, False), (True, False), (True, True)],
                         ids=["fwd", "rev", "rev_lengths"])
def test_against_torch_float32(cell, nl, shape, reverse, lengths):
    case = make_case(cell, *shape, dtype=np.float32, seed=7, lengths=lengths)
    assert_matches(ref_run(case, nl, reverse), torch_run(case, nl, reverse), np.float32)


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
def test_reverse_matches_bidirectional_torch(cell, nl, lengths):
    """reverse=True (with lengths) is the reverse direction of a packed bidirectional module."""
    case = make_case(cell, 6, 5, 4, 3, seed=3, lengths=lengths)
    if lengths:
        case["lengths"] = np.array([4, 0, 6, 1, 3])
    assert_matches(ref_run(case, nl, True), torch_run(case, nl, True, method="bidir"),
                   np.float64)


# --------------------------------------------------------------------------- finite differences


def _loss(case, nl, reverse):
    """Scalar loss of the reference forward, as used in the gradient checks."""
    cell, p = case["cell"], case["params"]
    fwd, _ = _fns(cell)
    kw = {"nonlinearity": nl} if cell == "rnn" else {}
    state = (case["h0"], case["c0"]) if cell == "lstm" else case["h0"]
    y, st, _ = fwd(case["x"], p["w_ih"], p["w_hh"], p.get("b_ih"), p.get("b_hh"), state,
                   reverse=reverse, lengths=case["lengths"], **kw)
    loss = np.sum(y * case["dy"])
    if cell == "lstm":
        return loss + np.sum(st[0] * case["dh"]) + np.sum(st[1] * case["dc"])
    return loss + np.sum(st * case["dh"])


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("lengths", [None, [3, 1, 0]], ids=["full", "lengths"])
def test_finite_differences(cell, nl, reverse, lengths):
    case = make_case(cell, 3, 3, 2, 2, seed=11)
    case["lengths"] = None if lengths is None else np.array(lengths)
    grads = ref_run(case, nl, reverse)
    # (gradient key, array to perturb)
    targets = [("dx", case["x"]), ("dh0", case["h0"])]
    if cell == "lstm":
        targets.append(("dc0", case["c0"]))
    targets += [("d" + k, v) for k, v in case["params"].items()]
    eps = 1e-6
    for key, arr in targets:
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            plus = _loss(case, nl, reverse)
            arr[idx] = old - eps
            minus = _loss(case, nl, reverse)
            arr[idx] = old
            num[idx] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(grads[key], num, rtol=1e-6, atol=1e-8, err_msg=key)


# --------------------------------------------------------------------------- empty shapes


def _call(cell, nl, x, params, state, **kw):
    fwd, _ = _fns(cell)
    if cell == "rnn":
        kw["nonlinearity"] = nl
    return fwd(x, params["w_ih"], params["w_hh"], params.get("b_ih"), params.get("b_hh"),
               state, **kw)


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("T,B", [(0, 3), (4, 0), (0, 0)])
@pytest.mark.parametrize("with_state", [True, False], ids=["state", "nostate"])
def test_empty(cell, nl, T, B, with_state):
    I, H = 2, 3
    case = make_case(cell, T, B, I, H, seed=1)
    lstm = cell == "lstm"
    state = None
    if with_state:
        state = (case["h0"], case["c0"]) if lstm else case["h0"]
    y, st, cache = _call(cell, nl, case["x"], case["params"], state, training=True,
                         lengths=np.zeros(B, np.int64) if T == 0 else None)
    assert y.shape == (T, B, H)
    h0_want = case["h0"] if with_state else np.zeros((B, H))
    if lstm:
        c0_want = case["c0"] if with_state else np.zeros((B, H))
        np.testing.assert_array_equal(st[0], h0_want)
        np.testing.assert_array_equal(st[1], c0_want)
        dstate = (case["dh"], case["dc"])
    else:
        np.testing.assert_array_equal(st, h0_want)
        dstate = case["dh"]
    _, bwd = _fns(cell)
    dx, dst, dp = bwd(cache, case["dy"], dstate)
    assert dx.shape == (T, B, I)
    if T == 0:  # the final-state gradient passes straight through
        if lstm:
            np.testing.assert_array_equal(dst[0], case["dh"])
            np.testing.assert_array_equal(dst[1], case["dc"])
        else:
            np.testing.assert_array_equal(dst, case["dh"])
    for k, v in case["params"].items():
        assert dp[k].shape == v.shape
        np.testing.assert_array_equal(dp[k], 0)


# --------------------------------------------------------------------------- API behaviour


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
def test_cache_none_unless_training_and_single_use(cell, nl):
    case = make_case(cell, 3, 2, 2, 2)
    assert _call(cell, nl, case["x"], case["params"], None)[2] is None
    _, bwd = _fns(cell)
    with pytest.raises(ValueError):
        bwd(None, case["dy"])
    cache = _call(cell, nl, case["x"], case["params"], None, training=True)[2]
    bwd(cache, case["dy"])
    with pytest.raises(ValueError):
        bwd(cache, case["dy"])


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("bias", [True, False])
def test_dparams_keys(cell, nl, bias):
    case = make_case(cell, 2, 2, 3, 2, bias=bias)
    _, bwd = _fns(cell)
    cache = _call(cell, nl, case["x"], case["params"], None, training=True)[2]
    dp = bwd(cache, case["dy"])[2]
    assert set(dp) == set(case["params"])


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_none_defaults_equal_zeros(cell, nl, reverse):
    """state=None, dy=None, dstate=None (or partly None) mean zeros; num_threads is ignored."""
    case = make_case(cell, 4, 3, 2, 3, seed=5)
    lstm = cell == "lstm"
    fwd, bwd = _fns(cell)
    zeros = np.zeros((3, 3))
    zstate = (zeros, zeros) if lstm else zeros
    p = case["params"]

    def run(state, dy, dstate, **kw):
        y, st, cache = _call(cell, nl, case["x"], p, state, training=True, reverse=reverse, **kw)
        return y, st, bwd(cache, dy, dstate)

    y0, st0, (dx0, ds0, dp0) = run(zstate, np.zeros_like(case["dy"]), zstate)
    y1, st1, (dx1, ds1, dp1) = run(None, None, None, num_threads=3)
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_array_equal(dx0, dx1)
    for k in dp0:
        np.testing.assert_array_equal(dp0[k], dp1[k])
    # Only dy given: equals dy with explicit zero state gradients.
    _, _, (dx2, _, _) = run(None, case["dy"], None)
    _, _, (dx3, _, _) = run(None, case["dy"], zstate)
    np.testing.assert_array_equal(dx2, dx3)
    if lstm:  # either element of an LSTM state / dstate may be None
        _, _, (dx4, _, _) = run((None, case["c0"]), case["dy"], (None, case["dc"]))
        _, _, (dx5, _, _) = run((zeros, case["c0"]), case["dy"], (zeros, case["dc"]))
        np.testing.assert_array_equal(dx4, dx5)
        assert np.any(dx4 != dx3)


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse", [False, True])
def test_full_lengths_equal_no_lengths(cell, nl, reverse):
    case = make_case(cell, 5, 3, 2, 4, seed=9)
    a = ref_run(case, nl, reverse)
    case["lengths"] = np.full(3, 5)
    b = ref_run(case, nl, reverse)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
def test_bad_inputs_raise(cell, nl):
    case = make_case(cell, 3, 2, 4, 5)
    p = dict(case["params"])
    x = case["x"]
    with pytest.raises(ValueError):  # w_ih with the wrong input width
        _call(cell, nl, x, dict(p, w_ih=p["w_ih"][:, :-1]), None)
    with pytest.raises(ValueError):  # w_hh not [G*H, H]
        _call(cell, nl, x, dict(p, w_hh=p["w_hh"][:-1]), None)
    with pytest.raises(ValueError):  # only one bias
        _call(cell, nl, x, dict(p, b_hh=None), None)
    with pytest.raises(ValueError):  # x not 3-D
        _call(cell, nl, x[0], p, None)
    with pytest.raises(ValueError):  # state of the wrong shape
        h = np.zeros((3, 5))
        _call(cell, nl, x, p, (h, h) if cell == "lstm" else h)
    with pytest.raises(ValueError):  # a length beyond T
        _call(cell, nl, x, p, None, lengths=np.array([1, 4]))
    with pytest.raises(ValueError):  # lengths of the wrong size
        _call(cell, nl, x, p, None, lengths=np.array([1, 2, 3]))
    _, bwd = _fns(cell)
    cache = _call(cell, nl, x, p, None, training=True)[2]
    with pytest.raises(ValueError):  # dy of the wrong shape
        bwd(cache, case["dy"][:-1])
    other = "gru" if cell != "gru" else "lstm"
    cache = _call(cell, nl, x, p, None, training=True)[2]
    with pytest.raises(ValueError):  # a cache from another cell
        getattr(ref, f"{other}_backward")(cache, case["dy"])


def test_rnn_bad_nonlinearity():
    case = make_case("rnn", 2, 2, 2, 2)
    with pytest.raises(ValueError):
        _call("rnn", "sigmoid", case["x"], case["params"], None)
