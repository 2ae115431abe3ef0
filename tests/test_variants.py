"""Cell variants (coupled input-forget LSTM, peephole LSTM, reset-before GRU) against reference
cells written here with torch operations, one step at a time, differentiated by torch autograd.

The reference runs each batch row on its own over its own length (``reverse`` flips within the
length), in float64 on the same (possibly float32-rounded) inputs:
``loss = (y*dy).sum() + (h_n*dh).sum() [+ (c_n*dc).sum()]``. Also: float64 gradcheck through a
torch.autograd.Function wrapping pyrnn, stacked bidirectional layers against the reference
composed by hand, thread-count independence, forget_bias initialisation and bad combinations.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pyrnn import _core  # noqa: E402
from pyrnn import functional as F  # noqa: E402
from pyrnn.layers import GRU, LSTM  # noqa: E402
from torch_oracle import compare  # noqa: E402

torch.set_num_threads(1)

# "lstm" and "gru" check the references against the base cells (themselves checked against
# torch.nn); "gru_rb" is the GRU with the reset before the recurrent product (reset_after=False).
VARIANTS = ["lstm", "coupled", "peephole", "gru", "gru_rb"]
GATES = {"lstm": 4, "coupled": 3, "peephole": 4, "gru": 3, "gru_rb": 3}
GRUS = ("gru", "gru_rb")
PEEP = ("w_ci", "w_cf", "w_co")


# --------------------------------------------------------------------------- torch reference

def ref_step(variant, x, h, c, p):
    """One step of the variant on torch tensors; p: dict of torch parameters (standard names).
    GRUs carry c through unchanged."""
    if variant in GRUS:
        gx = x @ p["w_ih"].T + (p["b_ih"] if "b_ih" in p else 0)
        bh = p["b_hh"] if "b_hh" in p else torch.zeros(p["w_hh"].shape[0], dtype=x.dtype)
        xr, xz, xn = gx.chunk(3, dim=-1)
        w_hr, w_hz, w_hn = p["w_hh"].chunk(3, dim=0)
        b_hr, b_hz, b_hn = bh.chunk(3, dim=-1)
        r = torch.sigmoid(xr + h @ w_hr.T + b_hr)
        z = torch.sigmoid(xz + h @ w_hz.T + b_hz)
        if variant == "gru":
            n = torch.tanh(xn + r * (h @ w_hn.T + b_hn))
        else:
            n = torch.tanh(xn + (r * h) @ w_hn.T + b_hn)
        return (1 - z) * n + z * h, c
    a = x @ p["w_ih"].T + h @ p["w_hh"].T
    if "b_ih" in p:
        a = a + p["b_ih"] + p["b_hh"]
    if variant == "coupled":
        f, g, o = a.chunk(3, dim=-1)
        f, g, o = torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + (1 - f) * g
    elif variant == "peephole":
        i, f, g, o = a.chunk(4, dim=-1)
        i = torch.sigmoid(i + p["w_ci"] * c)
        f = torch.sigmoid(f + p["w_cf"] * c)
        c = f * c + i * torch.tanh(g)
        o = torch.sigmoid(o + p["w_co"] * c)
    else:
        i, f, g, o = a.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        o = torch.sigmoid(o)
    h = o * torch.tanh(c)
    return (h @ p["w_hr"].T if "w_hr" in p else h), c


def ref_sequence(variant, x, h0, c0, p, lengths, reverse):
    """x [T, B, I] torch; returns y [T, B, H], h_n, c_n (torch, differentiable)."""
    T, B = x.shape[:2]
    H = p["w_hh"].shape[1]
    ys, hs, cs = [], [], []
    for b in range(B):
        n = T if lengths is None else int(lengths[b])
        h, c = h0[b], c0[b]
        steps = range(n - 1, -1, -1) if reverse else range(n)
        out = [None] * n
        for t in steps:
            h, c = ref_step(variant, x[t, b], h, c, p)
            out[t] = h
        rows = out + [x.new_zeros(H)] * (T - n)
        ys.append(torch.stack(rows) if T else x.new_zeros(0, H))
        hs.append(h)
        cs.append(c)
    return torch.stack(ys, 1), torch.stack(hs), torch.stack(cs)


def make_case(variant, T, B, I, H, *, dtype, seed, bias=True, lengths=False, state=True, proj=0):
    """``proj=P``: an LSTM variant with projection w_hr [P, H]; h and y are then P wide."""
    rng = np.random.default_rng(seed)
    G = GATES[variant]
    k = 1.0 / np.sqrt(H)
    R = proj or H

    def u(*shape, scale=1.0):
        return rng.uniform(-scale, scale, size=shape).astype(dtype)

    p = {"w_ih": u(G * H, I, scale=k), "w_hh": u(G * H, R, scale=k)}
    if proj:
        p["w_hr"] = u(proj, H, scale=k)
    if bias:
        p["b_ih"], p["b_hh"] = u(G * H, scale=k), u(G * H, scale=k)
    if variant == "peephole":
        for n in PEEP:
            p[n] = u(H, scale=1.0)  # larger than the init scale, so the peepholes matter
    lens = None
    if lengths:
        lens = rng.integers(1, T + 1, size=B)
        if B >= 2:
            lens[1] = 0
        if B >= 3:
            lens[2] = T
    return dict(variant=variant, p=p, x=u(T, B, I), h0=u(B, R, scale=0.5) if state else None,
                c0=u(B, H, scale=0.5) if state else None, dy=u(T, B, R), dh=u(B, R), dc=u(B, H),
                lengths=lens)


def run_pyrnn(case, reverse, num_threads=1):
    p, var = case["p"], case["variant"]
    if var in GRUS:
        y, h_n, cache = F.gru_forward(case["x"], p["w_ih"], p["w_hh"], p.get("b_ih"),
                                      p.get("b_hh"), case["h0"], reverse=reverse,
                                      lengths=case["lengths"], training=True,
                                      num_threads=num_threads, reset_after=var == "gru")
        dx, dh0, dp = F.gru_backward(cache, case["dy"], case["dh"])
        out = dict(y=y, h_n=h_n, dx=dx, dh0=dh0)
        out.update({"d" + k: v for k, v in dp.items()})
        return out
    kw = dict(coupled=var == "coupled",
              peephole=tuple(p[n] for n in PEEP) if var == "peephole" else None)
    y, (h_n, c_n), cache = F.lstm_forward(case["x"], p["w_ih"], p["w_hh"], p.get("b_ih"),
                                          p.get("b_hh"), (case["h0"], case["c0"]),
                                          reverse=reverse, lengths=case["lengths"], training=True,
                                          num_threads=num_threads, w_hr=p.get("w_hr"), **kw)
    dx, (dh0, dc0), dp = F.lstm_backward(cache, case["dy"], (case["dh"], case["dc"]))
    out = dict(y=y, h_n=h_n, c_n=c_n, dx=dx, dh0=dh0, dc0=dc0)
    out.update({"d" + k: v for k, v in dp.items()})
    return out


def run_torch(case, reverse):
    def t(a, grad=True):
        return torch.tensor(np.asarray(a, np.float64), requires_grad=grad)

    T, B, _ = case["x"].shape
    H = case["p"]["w_ih"].shape[0] // GATES[case["variant"]]
    R = case["p"]["w_hh"].shape[1]  # width of h: H, or P with a projection
    p = {k: t(v) for k, v in case["p"].items()}
    x = t(case["x"])
    h0 = t(case["h0"] if case["h0"] is not None else np.zeros((B, R)))
    c0 = t(case["c0"] if case["c0"] is not None else np.zeros((B, H)))
    gru = case["variant"] in GRUS
    y, h_n, c_n = ref_sequence(case["variant"], x, h0, c0, p, case["lengths"], reverse)
    loss = (y * t(case["dy"], False)).sum() + (h_n * t(case["dh"], False)).sum()
    if not gru:
        loss = loss + (c_n * t(case["dc"], False)).sum()
    loss.backward()

    def g(a):
        return a.grad.numpy() if a.grad is not None else np.zeros(a.shape)

    out = dict(y=y.detach().numpy(), h_n=h_n.detach().numpy(), c_n=c_n.detach().numpy(),
               dx=g(x), dh0=g(h0), dc0=g(c0))
    out.update({"d" + k: g(v) for k, v in p.items()})
    if gru:
        del out["c_n"], out["dc0"]
    return out


# --------------------------------------------------------------------------- kernels vs torch

SHAPES = [(1, 1, 1, 1), (5, 1, 3, 1), (4, 3, 5, 3), (6, 4, 3, 33), (3, 9, 7, 5)]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("mode", ["fwd", "rev", "fwd_lengths", "rev_lengths_noh0_nobias"])
def test_float64_against_torch_reference(variant, shape, mode):
    case = make_case(variant, *shape, dtype=np.float64, seed=sum(shape),
                     lengths="lengths" in mode, state="noh0" not in mode,
                     bias="nobias" not in mode)
    rev = mode.startswith("rev")
    compare(run_pyrnn(case, rev), run_torch(case, rev), np.float64, tag=variant)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", ["fwd", "rev", "fwd_lengths", "rev_lengths"])
def test_float32_against_torch_reference(variant, mode):
    case = make_case(variant, 7, 5, 4, 33, dtype=np.float32, seed=3,
                     lengths="lengths" in mode)
    rev = mode.startswith("rev")
    compare(run_pyrnn(case, rev), run_torch(case, rev), np.float32, tag=variant,
            tol=dict(rtol=1e-4, atol=3e-5))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_agree_and_match_reference(variant, dtype):
    """Big enough for two threads per step (each owning a block of units): results, the
    peephole gradient sums included, are close to one thread's (the per-thread GEMM blocking
    differs in the last bits), repeat bitwise, and match torch."""
    case = make_case(variant, 3, 16, 6, 160, dtype=dtype, seed=11, lengths=True)
    one = run_pyrnn(case, True, num_threads=1)
    two = run_pyrnn(case, True, num_threads=2)
    again = run_pyrnn(case, True, num_threads=2)
    close = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for k in one:
        np.testing.assert_allclose(one[k], two[k], err_msg=k, **close)
        np.testing.assert_array_equal(again[k], two[k], err_msg=k)
    tol = None if dtype == np.float64 else dict(rtol=1e-4, atol=3e-5)
    compare(two, run_torch(case, True), dtype, tag=variant, tol=tol)


@pytest.mark.parametrize("variant", ["coupled", "peephole"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["fwd", "rev_lengths_noh0"])
def test_projection_combined_with_variant(variant, dtype, mode):
    """LSTM projection (w_hr) on the coupled and peephole cells, against the reference cell
    followed by h = W_hr (o*tanh(c))."""
    case = make_case(variant, 5, 4, 3, 11, proj=4, dtype=dtype, seed=13,
                     lengths="lengths" in mode, state="noh0" not in mode)
    rev = mode.startswith("rev")
    got = run_pyrnn(case, rev)
    assert got["y"].shape == (5, 4, 4) and got["dw_hr"].shape == (4, 11)
    tol = None if dtype == np.float64 else dict(rtol=1e-4, atol=3e-5)
    compare(got, run_torch(case, rev), dtype, tag=variant + "_proj", tol=tol)


@pytest.mark.parametrize("variant", ["coupled", "peephole"])
def test_projection_combined_threads_agree(variant):
    case = make_case(variant, 3, 8, 5, 200, proj=60, dtype=np.float64, seed=14, lengths=True)
    one, two = run_pyrnn(case, True, num_threads=1), run_pyrnn(case, True, num_threads=2)
    for k in one:
        np.testing.assert_allclose(one[k], two[k], err_msg=k, rtol=1e-12, atol=1e-14)
    compare(two, run_torch(case, True), np.float64, tag=variant + "_proj")


def test_projection_wider_than_hidden():
    """The kernels take any P >= 1 (layers follow torch: P < H); P > H on two threads sizes
    each thread's scratch by the wider state."""
    case = make_case("lstm", 3, 8, 5, 200, proj=300, dtype=np.float64, seed=15, lengths=True)
    compare(run_pyrnn(case, True, num_threads=2), run_torch(case, True), np.float64,
            tag="lstm_proj")


# --------------------------------------------------------------------------- gradcheck

class PyrnnLSTM(torch.autograd.Function):
    """pyrnn's LSTM variant as a torch op (test only). backward reruns the training forward,
    since gradcheck calls backward more than once per forward and a cache is single-use.
    ``extra``: w_ci, w_cf, w_co for the peephole variant, then w_hr when ``proj``."""

    @staticmethod
    def forward(ctx, variant, proj, reverse, lengths, x, h0, c0, w_ih, w_hh, b_ih, b_hh, *extra):
        ctx.args = (variant, proj, reverse, lengths)
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, *extra)
        y, (h_n, c_n), _ = _run(*ctx.args, (x, h0, c0, w_ih, w_hh, b_ih, b_hh, *extra),
                                training=False)
        return torch.from_numpy(y), torch.from_numpy(h_n), torch.from_numpy(c_n)

    @staticmethod
    def backward(ctx, dy, dh, dc):
        variant, proj = ctx.args[:2]
        _, _, cache = _run(*ctx.args, ctx.saved_tensors, training=True)
        dx, (dh0, dc0), dp = F.lstm_backward(cache, dy.numpy(), (dh.numpy(), dc.numpy()))
        grads = [dx, dh0, dc0, dp["w_ih"], dp["w_hh"], dp["b_ih"], dp["b_hh"]]
        if variant == "peephole":
            grads += [dp[n] for n in PEEP]
        if proj:
            grads.append(dp["w_hr"])
        return (None,) * 4 + tuple(torch.from_numpy(g) for g in grads)


def _run(variant, proj, reverse, lengths, tensors, training):
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, *extra = (a.detach().numpy() for a in tensors)
    w_hr = extra.pop() if proj else None
    return F.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, (h0, c0), reverse=reverse,
                          lengths=lengths, training=training, num_threads=1,
                          coupled=variant == "coupled", peephole=tuple(extra) or None, w_hr=w_hr)


def _gradcheck_lstm(variant, reverse, lengths, H, proj=0):
    case = make_case(variant, 3, 3, 2, H, dtype=np.float64, seed=5, proj=proj)
    p = case["p"]
    order = [case["x"], case["h0"], case["c0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"]]
    if variant == "peephole":
        order += [p[n] for n in PEEP]
    if proj:
        order.append(p["w_hr"])
    inputs = [torch.tensor(a, requires_grad=True) for a in order]
    lens = None if lengths is None else np.asarray(lengths)
    assert torch.autograd.gradcheck(
        lambda *a: PyrnnLSTM.apply(variant, bool(proj), reverse, lens, *a), inputs, eps=1e-6,
        atol=1e-7)


@pytest.mark.parametrize("variant", ["coupled", "peephole"])
@pytest.mark.parametrize("reverse,lengths", [(False, None), (True, [3, 1, 2])],
                         ids=["fwd", "rev_lengths"])
def test_gradcheck(variant, reverse, lengths):
    _gradcheck_lstm(variant, reverse, lengths, H=3)


@pytest.mark.parametrize("reverse,lengths", [(False, None), (True, [3, 1, 0])],
                         ids=["fwd", "rev_lengths"])
def test_gradcheck_projection(reverse, lengths):
    """The LSTM with projection (w_hr [2, 4]) through float64 gradcheck."""
    _gradcheck_lstm("lstm", reverse, lengths, H=4, proj=2)


class PyrnnGRU(torch.autograd.Function):
    """pyrnn's reset-before GRU as a torch op (test only); backward reruns the forward."""

    @staticmethod
    def forward(ctx, reverse, lengths, x, h0, w_ih, w_hh, b_ih, b_hh):
        ctx.args = (reverse, lengths)
        ctx.save_for_backward(x, h0, w_ih, w_hh, b_ih, b_hh)
        y, h_n, _ = _run_gru(reverse, lengths, x, h0, w_ih, w_hh, b_ih, b_hh, False)
        return torch.from_numpy(y), torch.from_numpy(h_n)

    @staticmethod
    def backward(ctx, dy, dh):
        reverse, lengths = ctx.args
        _, _, cache = _run_gru(reverse, lengths, *ctx.saved_tensors, True)
        dx, dh0, dp = F.gru_backward(cache, dy.numpy(), dh.numpy())
        grads = [dx, dh0, dp["w_ih"], dp["w_hh"], dp["b_ih"], dp["b_hh"]]
        return (None, None) + tuple(torch.from_numpy(g) for g in grads)


def _run_gru(reverse, lengths, x, h0, w_ih, w_hh, b_ih, b_hh, training):
    n = [a.detach().numpy() for a in (x, h0, w_ih, w_hh, b_ih, b_hh)]
    return F.gru_forward(n[0], n[2], n[3], n[4], n[5], n[1], reverse=reverse, lengths=lengths,
                         training=training, num_threads=1, reset_after=False)


@pytest.mark.parametrize("reverse,lengths", [(False, None), (True, [3, 1, 2])],
                         ids=["fwd", "rev_lengths"])
def test_gradcheck_gru_reset_before(reverse, lengths):
    case = make_case("gru_rb", 3, 3, 2, 3, dtype=np.float64, seed=6)
    p = case["p"]
    inputs = [torch.tensor(a, requires_grad=True)
              for a in (case["x"], case["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])]
    lens = None if lengths is None else np.asarray(lengths)
    assert torch.autograd.gradcheck(
        lambda *a: PyrnnGRU.apply(reverse, lens, *a), inputs, eps=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- layers

def _ref_layer(layer, x, lengths, h0, c0, dy, dh, dc):
    """The layer composed by hand from ref_sequence; returns outputs and grads (numpy)."""
    gru = isinstance(layer, GRU)
    if gru:
        variant = "gru" if layer.reset_after else "gru_rb"
    else:
        variant = "coupled" if layer.coupled else "peephole" if layer.peephole else "lstm"
    P = {k: torch.tensor(np.asarray(v, np.float64), requires_grad=True)
         for k, v in layer.params.items()}
    xt = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    h0t = torch.tensor(np.asarray(h0, np.float64), requires_grad=True)
    c0t = torch.tensor(np.asarray(c0, np.float64), requires_grad=True)
    D = layer.num_directions
    inp, hs, cs = xt, [], []
    for lay in range(layer.num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{lay}" + ("_reverse" if d else "")
            p = {"w_ih": P["weight_ih" + sfx], "w_hh": P["weight_hh" + sfx],
                 "b_ih": P["bias_ih" + sfx], "b_hh": P["bias_hh" + sfx]}
            if not gru and layer.peephole:
                p.update({n: P[f"weight_{n[2:]}" + sfx] for n in PEEP})
            if "weight_hr" + sfx in P:
                p["w_hr"] = P["weight_hr" + sfx]
            y, h, c = ref_sequence(variant, inp, h0t[lay * D + d], c0t[lay * D + d], p,
                                   lengths, d == 1)
            outs.append(y)
            hs.append(h)
            cs.append(c)
        inp = torch.cat(outs, dim=2)
    h_n, c_n = torch.stack(hs), torch.stack(cs)
    loss = (inp * torch.from_numpy(np.asarray(dy, np.float64))).sum() \
        + (h_n * torch.from_numpy(np.asarray(dh, np.float64))).sum()
    if not gru:
        loss = loss + (c_n * torch.from_numpy(np.asarray(dc, np.float64))).sum()
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in P.items()}
    if gru:
        return (inp.detach().numpy(), h_n.detach().numpy(), xt.grad.numpy(), h0t.grad.numpy(),
                grads)
    return (inp.detach().numpy(), h_n.detach().numpy(), c_n.detach().numpy(), xt.grad.numpy(),
            h0t.grad.numpy(), c0t.grad.numpy(), grads)


@pytest.mark.parametrize("flag", ["coupled", "peephole"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_stacked_bidirectional(flag, dtype):
    T, B, I, H, L = 5, 3, 4, 6, 2
    layer = LSTM(I, H, num_layers=L, bidirectional=True, dtype=dtype, seed=7,
                 **{flag: True}, num_threads=2)
    names = {"weight_ci", "weight_cf", "weight_co"}
    has_peep = {n.split("_l")[0] for n in layer.params} & names
    assert has_peep == (names if flag == "peephole" else set())
    if flag == "coupled":
        assert layer.params["weight_ih_l0"].shape == (3 * H, I)
        assert layer.params["weight_hh_l1_reverse"].shape == (3 * H, H)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    lengths = np.array([5, 2, 4])
    h0, c0 = (rng.uniform(-0.5, 0.5, (L * 2, B, H)).astype(dtype) for _ in range(2))
    dy = rng.standard_normal((T, B, 2 * H)).astype(dtype)
    dh, dc = (rng.standard_normal((L * 2, B, H)).astype(dtype) for _ in range(2))
    layer.train()
    y, (h_n, c_n) = layer(x, (h0, c0), lengths=lengths)
    dx = layer.backward(dy, (dh, dc))
    dh0, dc0 = layer.state_grad
    want = _ref_layer(layer, x, lengths, h0, c0, dy, dh, dc)
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=1e-4, atol=3e-5)
    for got, exp, name in zip((y, h_n, c_n, dx, dh0, dc0), want[:6],
                              ("y", "h_n", "c_n", "dx", "dh0", "dc0")):
        np.testing.assert_allclose(got, exp, err_msg=name, **tol)
    assert set(layer.grads) == set(want[6])
    for k, g in want[6].items():
        np.testing.assert_allclose(layer.grads[k], g, err_msg=k, **tol)


@pytest.mark.parametrize("flag", ["coupled", "peephole"])
def test_layer_with_projection_stacked_bidirectional(flag):
    T, B, I, H, P, L = 4, 3, 4, 7, 3, 2
    layer = LSTM(I, H, num_layers=L, bidirectional=True, dtype=np.float64, seed=9, proj_size=P,
                 **{flag: True})
    assert layer.params["weight_ih_l1"].shape == (layer._gates * H, 2 * P)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, B, I))
    lengths = np.array([4, 1, 3])
    h0, dh = (rng.uniform(-0.5, 0.5, (L * 2, B, P)) for _ in range(2))
    c0, dc = (rng.uniform(-0.5, 0.5, (L * 2, B, H)) for _ in range(2))
    dy = rng.standard_normal((T, B, 2 * P))
    layer.train()
    y, (h_n, c_n) = layer(x, (h0, c0), lengths=lengths)
    dx = layer.backward(dy, (dh, dc))
    want = _ref_layer(layer, x, lengths, h0, c0, dy, dh, dc)
    for got, exp, name in zip((y, h_n, c_n, dx) + tuple(layer.state_grad), want[:6],
                              ("y", "h_n", "c_n", "dx", "dh0", "dc0")):
        np.testing.assert_allclose(got, exp, err_msg=name, rtol=1e-9, atol=1e-11)
    assert set(layer.grads) == set(want[6])
    for k, g in want[6].items():
        np.testing.assert_allclose(layer.grads[k], g, err_msg=k, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gru_layer_reset_before_stacked_bidirectional(dtype):
    T, B, I, H, L = 5, 3, 4, 6, 2
    layer = GRU(I, H, num_layers=L, bidirectional=True, dtype=dtype, seed=8, reset_after=False,
                num_threads=2)
    assert "reset_after=False" in repr(layer)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    lengths = np.array([5, 2, 4])
    h0 = rng.uniform(-0.5, 0.5, (L * 2, B, H)).astype(dtype)
    dy = rng.standard_normal((T, B, 2 * H)).astype(dtype)
    dh = rng.standard_normal((L * 2, B, H)).astype(dtype)
    layer.train()
    y, h_n = layer(x, h0, lengths=lengths)
    dx = layer.backward(dy, dh)
    dh0 = layer.state_grad
    c_dummy = np.zeros_like(h0)
    want = _ref_layer(layer, x, lengths, h0, c_dummy, dy, dh, None)
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=1e-4, atol=3e-5)
    for got, exp, name in zip((y, h_n, dx, dh0), want[:4], ("y", "h_n", "dx", "dh0")):
        np.testing.assert_allclose(got, exp, err_msg=name, **tol)
    assert set(layer.grads) == set(want[4])
    for k, g in want[4].items():
        np.testing.assert_allclose(layer.grads[k], g, err_msg=k, **tol)


@pytest.mark.parametrize("coupled", [False, True])
def test_forget_bias_initialisation(coupled):
    H = 5
    base = LSTM(3, H, num_layers=2, bidirectional=True, seed=4, coupled=coupled)
    fb = LSTM(3, H, num_layers=2, bidirectional=True, seed=4, coupled=coupled, forget_bias=1.0)
    f0 = 0 if coupled else H
    assert set(base.params) == set(fb.params)
    for k in base.params:
        diff = fb.params[k].astype(np.float64) - base.params[k]
        if k.startswith("bias_ih"):
            np.testing.assert_allclose(diff[f0:f0 + H], 1.0, rtol=0, atol=1e-6, err_msg=k)
            diff[f0:f0 + H] = 0
        assert not diff.any(), k
    assert "forget_bias=1.0" in repr(fb)


def test_peephole_layer_state_dict_roundtrip_names():
    layer = LSTM(2, 3, bidirectional=True, peephole=True, seed=0)
    for n in ("weight_ci_l0", "weight_cf_l0", "weight_co_l0", "weight_ci_l0_reverse"):
        assert layer.params[n].shape == (3,)
        assert layer.grads[n].shape == (3,)
    assert "peephole=True" in repr(layer)


# --------------------------------------------------------------------------- bad combinations

def _small(G=4, H=3, I=2, T=2, B=2):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((T, B, I)), rng.standard_normal((G * H, I)),
            rng.standard_normal((G * H, H)))


def test_bad_combinations_raise():
    x, w_ih, w_hh = _small()
    peep = tuple(np.zeros(3) for _ in range(3))
    with pytest.raises(ValueError, match="coupled=True and peephole cannot be combined"):
        F.lstm_forward(x, w_ih, w_hh, coupled=True, peephole=peep)
    with pytest.raises(ValueError, match="coupled=True and peephole cannot be combined"):
        LSTM(2, 3, coupled=True, peephole=True)
    with pytest.raises(ValueError, match="forget_bias: needs bias=True"):
        LSTM(2, 3, bias=False, forget_bias=1.0)
    with pytest.raises(ValueError, match="forget_bias"):
        LSTM(2, 3, forget_bias=float("nan"))
    with pytest.raises(TypeError, match="coupled"):
        LSTM(2, 3, coupled="yes")
    # coupled takes three gate blocks, not four
    with pytest.raises(ValueError, match=r"w_hh: expected shape \(3\*H, H\)"):
        F.lstm_forward(x, w_ih, w_hh, coupled=True)
    with pytest.raises(TypeError, match="peephole: expected a tuple"):
        F.lstm_forward(x, w_ih, w_hh, peephole=np.zeros((3, 3)))
    with pytest.raises(TypeError, match="w_cf is None"):
        F.lstm_forward(x, w_ih, w_hh, peephole=(np.zeros(3), None, np.zeros(3)))
    with pytest.raises(ValueError, match="w_co"):
        F.lstm_forward(x, w_ih, w_hh, peephole=(np.zeros(3), np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match="'cuda' has no kernel"):
        F.lstm_forward(x, w_ih, w_hh, peephole=peep, device="cuda")
    with pytest.raises(ValueError, match="no CUDA kernel"):
        LSTM(2, 3, coupled=True).to("cuda")
    # the raw kernels refuse a missing or unexpected peephole
    args = (x, w_ih, w_hh, None, None, None, None, None, False, False, 1)
    with pytest.raises(ValueError, match="peephole"):
        _core.forward(5, *args)
    with pytest.raises(ValueError, match="peephole"):
        _core.forward(0, *args, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="cell kind"):
        _core.forward(7, *args)
    with pytest.raises(TypeError, match="reset_after"):
        F.gru_forward(x, w_ih[:9], w_hh[:9], reset_after=None)
    with pytest.raises(TypeError, match="reset_after"):
        GRU(2, 3, reset_after="no")
    with pytest.raises(ValueError, match="'cuda' has no kernel"):
        F.gru_forward(x, w_ih[:9], w_hh[:9], reset_after=False, device="cuda")
    with pytest.raises(ValueError, match="no CUDA kernel"):
        GRU(2, 3, reset_after=False).to("cuda")
    _, _, gcache = F.gru_forward(x, w_ih[:9], w_hh[:9], reset_after=False, training=True)
    with pytest.raises(ValueError, match="gru_reset_before forward"):
        F.lstm_backward(gcache, None)
    # a variant's cache is not usable by another cell's backward
    xc, wc_ih, wc_hh = _small(G=3)
    _, _, cache = F.lstm_forward(xc, wc_ih, wc_hh, coupled=True, training=True)
    with pytest.raises(ValueError, match="lstm_coupled forward"):
        F.gru_backward(cache, None)
    dx, (dh0, dc0), dp = F.lstm_backward(cache, None)
    assert set(dp) == {"w_ih", "w_hh"} and dx.shape == xc.shape


def test_empty_batch_and_sequence():
    for T, B in ((0, 2), (3, 0)):
        x, w_ih, w_hh = _small(T=T, B=B)
        peep = tuple(np.ones(3) for _ in range(3))
        y, (h, c), cache = F.lstm_forward(x, w_ih, w_hh, peephole=peep, training=True)
        assert y.shape == (T, B, 3)
        dx, _, dp = F.lstm_backward(cache, None)
        assert dx.shape == x.shape
        for n in PEEP:
            assert dp[n].shape == (3,) and not dp[n].any()


def test_gru_reset_before_empty():
    for T, B in ((0, 2), (3, 0)):
        x, w_ih, w_hh = _small(G=3, T=T, B=B)
        y, h, cache = F.gru_forward(x, w_ih, w_hh, np.ones(9), np.ones(9), reset_after=False,
                                    training=True)
        assert y.shape == (T, B, 3) and h.shape == (B, 3)
        dx, dh0, dp = F.gru_backward(cache, None)
        assert dx.shape == x.shape and not dp["w_hh"].any() and not dp["b_ih"].any()
