"""Shared helpers for the tests of pyrnn.functional against PyTorch.

- ``make_case``: random inputs, parameters, optional initial states, optional lengths and
  random upstream gradients for one cell.
- ``run_functional``: forward (training) + backward through ``pyrnn.functional`` (or any module
  with the same API, e.g. ``pyrnn.reference``), returning a flat dict of results.
- ``torch_run``: the same quantities from torch.nn.LSTM/GRU/RNN autograd in float64 on the same
  (possibly float32-rounded) inputs. ``reverse`` is emulated by flipping each row within its own
  length; rows of length 0 (refused by ``pack_padded_sequence``) are left out of the torch run and
  get their results from the definition (y = 0, h_n = h0, dh0 = dh_n, dx = 0).
- ``compare``: assert closeness of every key, keep the largest errors seen for the report.

Result keys: y, h_n, [c_n], dx, dh0, [dc0], dw_ih, dw_hh, [db_ih, db_hh], [dw_hr].
``proj=P`` (LSTM only) adds a projection ``w_hr [P, H]`` as ``torch.nn.LSTM(proj_size=P)``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# The oracle runs tiny problems: one torch thread is faster than two and is not slowed down
# by a busy machine (an intra-op thread team waiting on a descheduled thread).
torch.set_num_threads(1)

# (cell, nonlinearity) pairs; the nonlinearity only matters for "rnn".
CELLS = [("lstm", None), ("gru", None), ("rnn", "tanh"), ("rnn", "relu")]
CELL_IDS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
TORCH_NAMES = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0",
               "b_hh": "bias_hh_l0", "w_hr": "weight_hr_l0"}

TOL = {
    np.dtype(np.float64): dict(rtol=1e-9, atol=1e-11),
    np.dtype(np.float32): dict(rtol=1e-4, atol=3e-5),
}

# (cell id, dtype name) -> (largest |got - want| / (|want| + 1e-3), largest |got - want|) seen.
MAX_ERR: dict = {}


def shape_id(s):
    return "T{}B{}I{}H{}".format(*s)


def make_case(cell, T, B, I, H, *, bias=True, dtype=np.float64, seed=0, lengths=False,
              state=True, proj=0):
    """Random case. ``lengths=True`` draws lengths in [1, T] with row 1 of length 0 and row 2
    full; ``state=False`` leaves h0 (and c0) None; ``proj=P`` adds an LSTM projection."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    k = 1.0 / np.sqrt(max(H, 1))
    R = proj or H  # width of h and y

    def u(*shape, scale=1.0):
        return rng.uniform(-scale, scale, size=shape).astype(dtype)

    params = {"w_ih": u(G * H, I, scale=k), "w_hh": u(G * H, R, scale=k)}
    if bias:
        params["b_ih"] = u(G * H, scale=k)
        params["b_hh"] = u(G * H, scale=k)
    if proj:
        assert cell == "lstm"
        params["w_hr"] = u(proj, H, scale=k)
    lstm = cell == "lstm"
    case = dict(cell=cell, params=params, x=u(T, B, I),
                h0=u(B, R, scale=0.5) if state else None,
                c0=u(B, H, scale=0.5) if (state and lstm) else None,
                dy=u(T, B, R), dh=u(B, R), dc=u(B, H) if lstm else None, lengths=None)
    if lengths:
        lens = rng.integers(1, T + 1, size=B) if T > 0 else np.zeros(B, np.int64)
        if B >= 2:
            lens[1] = 0
        if B >= 3:
            lens[2] = T
        case["lengths"] = lens
    return case


def state_of(case):
    if case["cell"] == "lstm":
        return None if case["h0"] is None and case["c0"] is None else (case["h0"], case["c0"])
    return case["h0"]


def dstate_of(case):
    return (case["dh"], case["dc"]) if case["cell"] == "lstm" else case["dh"]


def forward(mod, case, nl=None, **kw):
    """mod.<cell>_forward on the case; returns (y, state, cache)."""
    cell, p = case["cell"], case["params"]
    if cell == "rnn":
        kw["nonlinearity"] = nl
    kw.setdefault("lengths", case["lengths"])
    if "w_hr" in p:
        kw["w_hr"] = p["w_hr"]
    fwd = getattr(mod, f"{cell}_forward")
    return fwd(case["x"], p["w_ih"], p["w_hh"], p.get("b_ih"), p.get("b_hh"), state_of(case),
               **kw)


def run_functional(mod, case, nl=None, reverse=False, num_threads=None):
    """Forward (training=True) and backward through ``mod``; a dict of all results."""
    cell = case["cell"]
    lstm = cell == "lstm"
    kw = {} if num_threads is None else {"num_threads": num_threads}
    y, st, cache = forward(mod, case, nl, reverse=reverse, training=True, **kw)
    dx, dst, dp = getattr(mod, f"{cell}_backward")(cache, case["dy"], dstate_of(case))
    out = {"y": y, "dx": dx}
    if lstm:
        out["h_n"], out["c_n"] = st
        out["dh0"], out["dc0"] = dst
    else:
        out["h_n"], out["dh0"] = st, dst
    out.update({"d" + k: v for k, v in dp.items()})
    return out


def torch_module(cell, I, H, bias, nonlinearity=None, proj=0):
    kw = dict(bias=bias, dtype=torch.float64)
    if cell == "lstm":
        return torch.nn.LSTM(I, H, proj_size=proj, **kw)
    if cell == "gru":
        return torch.nn.GRU(I, H, **kw)
    return torch.nn.RNN(I, H, nonlinearity=nonlinearity, **kw)


def flip_within_lengths(a, lengths):
    """Reverse each row b of a time-major array over its first lengths[b] steps (an involution)."""
    T, B = a.shape[:2]
    lens = np.full(B, T) if lengths is None else np.asarray(lengths)
    t = np.arange(T)[:, None]
    src = np.where(t < lens[None, :], lens[None, :] - 1 - t, t)
    return np.take_along_axis(a, src.reshape(T, B, *([1] * (a.ndim - 2))), axis=0)


def torch_run(case, nl=None, reverse=False):
    """The quantities of run_functional from torch autograd, in float64."""
    cell, p = case["cell"], case["params"]
    lstm = cell == "lstm"
    T, B, I = case["x"].shape
    H = p["w_ih"].shape[0] // GATES[cell]
    R = p["w_hh"].shape[1]  # width of h and y: H, or P with a projection
    lengths = case["lengths"]

    def f64(a):
        return np.asarray(a, dtype=np.float64)

    x, dy, dh = f64(case["x"]), f64(case["dy"]), f64(case["dh"])
    h0 = np.zeros((B, R)) if case["h0"] is None else f64(case["h0"])
    c0 = dc = None
    if lstm:
        c0 = np.zeros((B, H)) if case["c0"] is None else f64(case["c0"])
        dc = f64(case["dc"])
    if reverse:
        x, dy = flip_within_lengths(x, lengths), flip_within_lengths(dy, lengths)
    keep = np.ones(B, bool) if lengths is None else np.asarray(lengths) > 0

    out = {"y": np.zeros((T, B, R)), "h_n": h0.copy(), "dh0": dh.copy(),
           "dx": np.zeros((T, B, I))}
    if lstm:
        out["c_n"], out["dc0"] = c0.copy(), dc.copy()
    for k in p:
        out["d" + k] = np.zeros(p[k].shape)

    if keep.any() and T > 0:
        mod = torch_module(cell, I, H, "b_ih" in p, nl, proj=R if "w_hr" in p else 0)
        with torch.no_grad():
            for k, v in p.items():
                getattr(mod, TORCH_NAMES[k]).copy_(torch.from_numpy(f64(v)))
        xt = torch.tensor(x[:, keep], requires_grad=True)
        h0t = torch.tensor(h0[keep][None], requires_grad=True)
        c0t = torch.tensor(c0[keep][None], requires_grad=True) if lstm else None
        hx = (h0t, c0t) if lstm else h0t
        if lengths is None:
            yt, st = mod(xt, hx)
        else:
            packed = pack_padded_sequence(
                xt, torch.as_tensor(np.asarray(lengths)[keep], dtype=torch.int64),
                enforce_sorted=False)
            yp, st = mod(packed, hx)
            yt, _ = pad_packed_sequence(yp, total_length=T)
        hnt, cnt = st if lstm else (st, None)
        loss = (yt * torch.from_numpy(dy[:, keep])).sum()
        loss = loss + (hnt[0] * torch.from_numpy(dh[keep])).sum()
        if lstm:
            loss = loss + (cnt[0] * torch.from_numpy(dc[keep])).sum()
        loss.backward()
        out["y"][:, keep] = yt.detach().numpy()
        out["dx"][:, keep] = xt.grad.numpy()
        out["h_n"][keep] = hnt[0].detach().numpy()
        out["dh0"][keep] = h0t.grad[0].numpy()
        if lstm:
            out["c_n"][keep] = cnt[0].detach().numpy()
            out["dc0"][keep] = c0t.grad[0].numpy()
        for k in p:
            out["d" + k] = getattr(mod, TORCH_NAMES[k]).grad.numpy().copy()
    if reverse:
        out["y"] = flip_within_lengths(out["y"], lengths)
        out["dx"] = flip_within_lengths(out["dx"], lengths)
    return out


def rel_err(got, want):
    if not np.size(want):
        return 0.0
    got = np.asarray(got, np.float64)
    return float(np.max(np.abs(got - want) / (np.abs(want) + 1e-3)))


def compare(got, want, dtype, tag=None, tol=None):
    """Every key of ``want`` present in ``got`` with the input dtype, shape and close values."""
    dtype = np.dtype(dtype)
    tol = TOL[dtype] if tol is None else tol
    assert set(got) == set(want), (sorted(got), sorted(want))
    for k in sorted(want):
        assert got[k].dtype == dtype, f"{k}: dtype {got[k].dtype}, expected {dtype}"
        assert got[k].shape == want[k].shape, f"{k}: shape {got[k].shape} vs {want[k].shape}"
        np.testing.assert_allclose(got[k], want[k], err_msg=f"{tag} {k}", **tol)
        if tag is not None and want[k].size:
            key = (tag, dtype.name)
            rel, ab = MAX_ERR.get(key, (0.0, 0.0))
            err = float(np.max(np.abs(np.asarray(got[k], np.float64) - want[k])))
            MAX_ERR[key] = (max(rel, rel_err(got[k], want[k])), max(ab, err))
