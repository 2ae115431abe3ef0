"""float64 torch.autograd.gradcheck through a test-only autograd Function wrapping pyrnn.

The Function runs the pyrnn forward with training=True and its backward through the pyrnn
backward kernels, so gradcheck compares the BPTT kernels with finite differences of the forward
kernels w.r.t. x, h0 (and c0), w_ih, w_hh, b_ih, b_hh.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pyrnn import functional as F  # noqa: E402
from torch_oracle import CELL_IDS, CELLS, GATES  # noqa: E402

# nondet_tol=0: gradcheck also requires repeated backward calls (here: on a recomputed forward)
# to agree bitwise (the kernels are bitwise reproducible from call to call).
CHECK = dict(eps=1e-6, atol=1e-7, rtol=1e-5, nondet_tol=0.0)


class PyrnnRNN(torch.autograd.Function):
    """(x, h0, c0, w_ih, w_hh, b_ih, b_hh) -> (y, h_n[, c_n]); c0 and the biases may be None.

    spec = (cell, nonlinearity, reverse, lengths, num_threads), not differentiated.
    """

    @staticmethod
    def forward(ctx, spec, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        ctx.spec = spec
        ctx.inputs = [None if t is None else t.detach().numpy().copy()
                      for t in (x, h0, c0, w_ih, w_hh, b_ih, b_hh)]
        ctx.cache, outs = PyrnnRNN._run(spec, ctx.inputs)
        return tuple(torch.from_numpy(o) for o in outs)

    @staticmethod
    def _run(spec, inputs):
        cell, nl, reverse, lengths, num_threads = spec
        x, h0, c0, w_ih, w_hh, b_ih, b_hh = inputs
        kw = dict(reverse=reverse, lengths=lengths, training=True, num_threads=num_threads)
        if cell == "lstm":
            y, (h_n, c_n), cache = F.lstm_forward(x, w_ih, w_hh, b_ih, b_hh, (h0, c0), **kw)
            return cache, (y, h_n, c_n)
        if cell == "gru":
            y, h_n, cache = F.gru_forward(x, w_ih, w_hh, b_ih, b_hh, h0, **kw)
        else:
            y, h_n, cache = F.rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity=nl, **kw)
        return cache, (y, h_n)

    @staticmethod
    def backward(ctx, *grads):
        cell = ctx.spec[0]
        cache = ctx.cache
        if cache.consumed:  # gradcheck calls backward once per output element: recompute
            cache, _ = PyrnnRNN._run(ctx.spec, ctx.inputs)
        g = [gr.detach().numpy() for gr in grads]
        if cell == "lstm":
            dx, (dh0, dc0), dp = F.lstm_backward(cache, g[0], (g[1], g[2]))
        else:
            dx, dh0, dp = getattr(F, f"{cell}_backward")(cache, g[0], g[1])
            dc0 = None
        assert cache.consumed

        def t(a):
            return None if a is None else torch.from_numpy(np.ascontiguousarray(a))

        return (None, t(dx), t(dh0), t(dc0), t(dp["w_ih"]), t(dp["w_hh"]),
                t(dp.get("b_ih")), t(dp.get("b_hh")))


def _inputs(cell, T, B, I, H, bias, seed):
    gen = torch.Generator().manual_seed(seed)
    G = GATES[cell]

    def r(*shape, scale=1.0):
        return ((torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale
                ).requires_grad_()

    k = 1.0 / np.sqrt(H)
    x = r(T, B, I)
    h0 = r(B, H, scale=0.5)
    c0 = r(B, H, scale=0.5) if cell == "lstm" else None
    w_ih, w_hh = r(G * H, I, scale=k), r(G * H, H, scale=k)
    b_ih = r(G * H, scale=k) if bias else None
    b_hh = r(G * H, scale=k) if bias else None
    return x, h0, c0, w_ih, w_hh, b_ih, b_hh


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("reverse,lengths", [
    (False, None), (True, None), (False, [3, 0, 1]), (True, [2, 3, 0]),
], ids=["fwd", "rev", "fwd_lengths", "rev_lengths"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_gradcheck(cell, nl, reverse, lengths, bias):
    T, B, I, H = 3, 3, 2, 2
    inputs = _inputs(cell, T, B, I, H, bias, seed=len(CELL_IDS) * reverse + bias)
    lens = None if lengths is None else np.array(lengths)
    # Two OpenMP threads for one variant only: slow on a busy machine (a barrier per step).
    spec = (cell, nl, reverse, lens, 2 if (reverse and lens is not None and bias) else 1)

    def fn(*args):
        return PyrnnRNN.apply(spec, *args)

    assert torch.autograd.gradcheck(fn, inputs, **CHECK)


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
def test_gradcheck_i_ne_h_single_row(cell, nl):
    """I != H, B = 1, a longer sequence (gradients flow through 5 steps)."""
    inputs = _inputs(cell, 5, 1, 3, 2, True, seed=99)
    spec = (cell, nl, True, np.array([4]), 1)
    assert torch.autograd.gradcheck(lambda *a: PyrnnRNN.apply(spec, *a), inputs, **CHECK)


def test_wrapper_detects_wrong_gradient():
    """The check can fail: a deliberately wrong backward (dx scaled) is rejected."""

    class Wrong(PyrnnRNN):
        @staticmethod
        def backward(ctx, *grads):
            out = list(PyrnnRNN.backward(ctx, *grads))
            out[1] = out[1] * 1.01
            return tuple(out)

    inputs = _inputs("gru", 2, 2, 2, 2, True, seed=1)
    spec = ("gru", None, False, None, 1)
    assert not torch.autograd.gradcheck(lambda *a: Wrong.apply(spec, *a), inputs,
                                        raise_exception=False, **CHECK)
