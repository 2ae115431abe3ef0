"""Property-based fuzzing of pyrnn.functional (and of the raw pyrnn._core bindings).

Every generated call either returns a correct result (forward and backward checked against the
pure-NumPy oracle pyrnn.reference) or raises a clean ValueError/TypeError; it never crashes,
never writes into its inputs, never returns garbage.

Drawn: cell, T, B, I, H in 0..5 (including 0 and 1), lengths (as list / int32 / int64 /
strided array), reverse, bias or not, initial state (none, partial, full), dtype, memory layout
of every array (C, Fortran, transposed, strided, negative strides, read-only), dy and dstate
None / partial / given, num_threads 1..3, value scales that saturate the gates.

Examples per test: 60 by default, derandomized (CI runs are reproducible; no example database).
Longer runs: ``PYRNN_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py``; another fixed sequence of
examples: ``PYRNN_FUZZ_SEED=<int>`` (reproducible for that seed) or ``PYRNN_FUZZ_SEED=random``.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from pyrnn import _core
from pyrnn import functional as F
from pyrnn import reference as R

CELLS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
CELL_IDS = {"lstm": 0, "gru": 1, "rnn_tanh": 2, "rnn_relu": 3}
MAX_DIM = 5

_seed = os.environ.get("PYRNN_FUZZ_SEED")
FUZZ = settings(
    max_examples=int(os.environ.get("PYRNN_FUZZ_EXAMPLES", "60")),
    derandomize=_seed is None,  # an explicit seed replaces derandomization (see fuzz())
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
if _seed not in (None, "random"):
    from hypothesis import seed as _hyp_seed
else:
    _hyp_seed = None


def fuzz(fn=None, *, fraction=1):
    """The shared settings (and seed, when PYRNN_FUZZ_SEED is an int) on a test; ``fraction``
    divides the number of examples (for the expensive tests)."""
    def wrap(f):
        conf = FUZZ if fraction == 1 else settings(
            FUZZ, max_examples=max(5, FUZZ.max_examples // fraction))
        f = conf(f)
        if _hyp_seed is not None:
            f = _hyp_seed(int(_seed))(f)
        return f
    return wrap(fn) if fn is not None else wrap


TOL = {np.dtype(np.float64): (1e-9, 1e-11), np.dtype(np.float32): (3e-4, 3e-5)}

# --------------------------------------------------------------------------- layouts


LAYOUTS = ["c", "fortran", "transposed", "strided", "negative", "readonly"]


def with_layout(arr: np.ndarray, how: str) -> np.ndarray:
    """An array equal to ``arr`` with the memory layout ``how`` (a view where that is the point)."""
    if how == "c":
        return arr
    if how == "fortran":
        return np.asfortranarray(arr)
    if how == "transposed":  # axis order reversed in memory
        return np.ascontiguousarray(arr.T).T
    if how == "strided":  # every other element along each axis of a bigger buffer
        big = np.zeros(tuple(2 * s + 1 for s in arr.shape), arr.dtype)
        idx = tuple(slice(1, None, 2) for _ in arr.shape)
        big[idx] = arr
        return big[idx]
    if how == "negative":  # negative strides along every axis
        idx = tuple(slice(None, None, -1) for _ in arr.shape)
        return np.ascontiguousarray(arr[idx])[idx]
    if how == "readonly":
        out = arr.copy()
        out.setflags(write=False)
        return out
    raise AssertionError(how)


# --------------------------------------------------------------------------- cases


@st.composite
def threaded_dims(draw):
    """(cell, T, B, I, H) on which the kernels split the hidden units between 2-3 threads
    (per-step recurrent work 2*B*G*H*H >= 2M flops; step_threads in csrc/pyrnn/recurrent.h),
    with uneven splits (H not a multiple of 8 or of the thread count)."""
    cell = draw(st.sampled_from(CELLS))
    B = draw(st.integers(24, 40))
    lo = 184 if GATES[cell] == 1 else 112
    H = draw(st.integers(lo, lo + 80))
    return cell, draw(st.integers(1, 3)), B, draw(st.integers(1, 9)), H


@st.composite
def cases(draw, max_dim=MAX_DIM, dims=None):
    """A valid functional call: a dict with everything forward() and backward() below need."""
    if dims is None:
        cell = draw(st.sampled_from(CELLS))
        T, B, I, H = (draw(st.integers(0, max_dim)) for _ in range(4))
    else:
        cell, T, B, I, H = draw(dims)
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    G = GATES[cell]
    x_scale = draw(st.sampled_from([0.1, 1.0, 4.0]))
    w_scale = draw(st.sampled_from([0.5, 1.0, 2.0]))
    k = w_scale / np.sqrt(max(H, 1))

    def u(shape, s):
        return rng.uniform(-s, s, size=shape).astype(dtype)

    c = dict(cell=cell, T=T, B=B, I=I, H=H, dtype=dtype, seed=seed)
    c["x"] = u((T, B, I), x_scale)
    c["w_ih"] = u((G * H, I), k)
    c["w_hh"] = u((G * H, H), k)
    bias = draw(st.booleans())
    c["b_ih"] = u((G * H,), k) if bias else None
    c["b_hh"] = u((G * H,), k) if bias else None
    if cell == "lstm":
        which = draw(st.sampled_from(["none", "h", "c", "both"]))
        h0 = u((B, H), 1.0) if which in ("h", "both") else None
        c0 = u((B, H), 2.0) if which in ("c", "both") else None
        c["state"] = None if which == "none" else (h0, c0)
    else:
        c["state"] = u((B, H), 1.0) if draw(st.booleans()) else None
    c["reverse"] = draw(st.booleans())
    lens_kind = draw(st.sampled_from(["none", "list", "int64", "int32", "strided"]))
    if lens_kind == "none":
        c["lengths"] = None
    else:
        lens = [draw(st.integers(0, T)) for _ in range(B)]
        if lens_kind == "list":
            c["lengths"] = lens
        elif lens_kind == "strided":
            c["lengths"] = np.repeat(np.array(lens, np.int64), 2)[::2]
        else:
            c["lengths"] = np.array(lens, dtype=lens_kind)
    c["num_threads"] = draw(st.sampled_from([None, 1, 2, 3] if dims is None else [2, 3]))
    # Upstream gradients.
    c["dy"] = u((T, B, H), 1.0) if draw(st.booleans()) else None
    if cell == "lstm":
        which = draw(st.sampled_from(["none", "h", "c", "both"]))
        dh = u((B, H), 1.0) if which in ("h", "both") else None
        dc = u((B, H), 1.0) if which in ("c", "both") else None
        c["dstate"] = None if which == "none" else (dh, dc)
    else:
        c["dstate"] = u((B, H), 1.0) if draw(st.booleans()) else None
    # Memory layout of every array argument.
    for name in ("x", "w_ih", "w_hh", "b_ih", "b_hh", "dy"):
        if c[name] is not None:
            c[name] = with_layout(c[name], draw(st.sampled_from(LAYOUTS)))
    for name in ("state", "dstate"):
        if isinstance(c[name], tuple):
            c[name] = tuple(None if a is None else with_layout(a, draw(st.sampled_from(LAYOUTS)))
                            for a in c[name])
        elif c[name] is not None:
            c[name] = with_layout(c[name], draw(st.sampled_from(LAYOUTS)))
    return c


def _mod_fns(mod, cell):
    base = "rnn" if cell.startswith("rnn") else cell
    return getattr(mod, f"{base}_forward"), getattr(mod, f"{base}_backward")


def forward(mod, c, training=True, **over):
    a = dict(c, **over)
    fwd, _ = _mod_fns(mod, a["cell"])
    kw = dict(reverse=a["reverse"], lengths=a["lengths"], training=training,
              num_threads=a["num_threads"])
    if a["cell"].startswith("rnn"):
        kw["nonlinearity"] = a["cell"][4:]
    return fwd(a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], a["state"], **kw)


def backward(mod, c, cache, **over):
    a = dict(c, **over)
    _, bwd = _mod_fns(mod, a["cell"])
    return bwd(cache, a["dy"], a["dstate"])


def flatten(result, prefix):
    """Named arrays of a forward (y, state, cache) or backward (dx, dstate, dparams) result."""
    first, state, third = result
    out = {prefix + "0": first}
    states = state if isinstance(state, tuple) else (state,)
    for i, s in enumerate(states):
        out[f"{prefix}state{i}"] = s
    if isinstance(third, dict):
        out.update({prefix + k: v for k, v in third.items()})
    return out


def assert_close(got: dict, want: dict, c):
    assert set(got) == set(want), (sorted(got), sorted(want))
    rtol, atol = TOL[c["dtype"]]
    for k in want:
        g, w = got[k], want[k]
        assert isinstance(g, np.ndarray), (k, type(g))
        assert g.dtype == c["dtype"], (k, g.dtype)
        assert g.shape == w.shape, (k, g.shape, w.shape)
        scale = max(1.0, float(np.max(np.abs(w)))) if w.size else 1.0
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol * scale, err_msg=k)


def snapshot(c):
    """Copies of every input array, to check that no call writes into its inputs."""
    out = {}
    for k in ("x", "w_ih", "w_hh", "b_ih", "b_hh", "dy", "lengths"):
        if isinstance(c[k], np.ndarray):
            out[k] = (c[k], c[k].copy())
    for k in ("state", "dstate"):
        parts = c[k] if isinstance(c[k], tuple) else (c[k],)
        for i, p in enumerate(parts):
            if p is not None:
                out[f"{k}{i}"] = (p, p.copy())
    return out


def describe(c):
    layout = {k: (v.shape, v.strides, v.flags.c_contiguous) for k, v in c.items()
              if isinstance(v, np.ndarray)}
    return (f"{c['cell']} T={c['T']} B={c['B']} I={c['I']} H={c['H']} {c['dtype']} "
            f"reverse={c['reverse']} lengths={c['lengths']!r} threads={c['num_threads']} "
            f"seed={c['seed']} layouts={layout}")


# --------------------------------------------------------------------------- valid calls


@fuzz
@given(cases())
def test_valid_calls_match_reference(c):
    note(describe(c))
    before = snapshot(c)
    want_f = forward(R, c)
    got_f = forward(F, c)
    assert got_f[2] is not None
    wf = flatten(want_f[:2] + (None,), "f")
    assert_close(flatten(got_f[:2] + (None,), "f"), wf, c)
    # Inference gives the same forward results, and no cache.
    inf = forward(F, c, training=False)
    assert inf[2] is None
    assert_close(flatten(inf[:2] + (None,), "f"), wf, c)

    want_b = backward(R, c, want_f[2])
    got_b = backward(F, c, got_f[2])
    assert_close(flatten(got_b, "b"), flatten(want_b, "b"), c)
    assert set(got_b[2]) == ({"w_ih", "w_hh", "b_ih", "b_hh"} if c["b_ih"] is not None
                             else {"w_ih", "w_hh"})
    # Inputs untouched (read-only ones would have raised on a write attempt through NumPy, but
    # the kernels write through raw pointers, so compare the values).
    for k, (arr, copy) in before.items():
        np.testing.assert_array_equal(arr, copy, err_msg=f"{k} was modified by the call")
    # The cache is consumed exactly once.
    with pytest.raises(ValueError, match="cache"):
        backward(F, c, got_f[2])


@fuzz(fraction=6)
@given(cases(dims=threaded_dims()))
def test_threaded_shapes_match_reference(c):
    """Shapes on which the kernels really run 2-3 threads (the small shapes above always run
    one): uneven unit splits, lengths, reverse, every layout."""
    note(describe(c))
    want_f, got_f = forward(R, c), forward(F, c)
    assert_close(flatten(got_f[:2] + (None,), "f"), flatten(want_f[:2] + (None,), "f"), c)
    assert_close(flatten(backward(F, c, got_f[2]), "b"),
                 flatten(backward(R, c, want_f[2]), "b"), c)


@fuzz
@given(cases(max_dim=3), st.sampled_from(["y", "state0", "dx", "dw_hh"]))
def test_outputs_are_fresh_arrays(c, victim):
    """Results own their memory: overwriting one result changes no other result and no input,
    and the same call again returns the original values (bitwise: same call, same bits)."""
    note(describe(c))
    before = snapshot(c)

    def run():
        y, state, cache = forward(F, c)
        dx, _, dparams = backward(F, c, cache)
        out = {"y": y, "dx": dx}
        states = state if isinstance(state, tuple) else (state,)
        out.update({f"state{i}": s for i, s in enumerate(states)})
        out.update({"d" + k: v for k, v in dparams.items()})
        return out

    first = run()
    for k, a in first.items():
        assert a.flags.writeable and a.flags.c_contiguous, k
    saved = {k: v.copy() for k, v in first.items()}
    first[victim][...] = 123.0
    for k, v in saved.items():
        if k != victim:
            np.testing.assert_array_equal(first[k], v, err_msg=k)
    for k, (arr, copy) in before.items():
        np.testing.assert_array_equal(arr, copy, err_msg=f"{k} changed")
    again = run()
    for k, v in saved.items():
        np.testing.assert_array_equal(again[k], v, err_msg=k)


# --------------------------------------------------------------------------- invalid calls

BAD_DTYPES = [np.int32, np.int64, np.float16, np.complex64, np.bool_, object, np.uint8]


@st.composite
def invalid_cases(draw):
    """A valid case plus one mutation that must be refused; returns (case, stage, names, exc)."""
    c = draw(cases(max_dim=4))
    cell, T, B, I, H, dtype = c["cell"], c["T"], c["B"], c["I"], c["H"], c["dtype"]
    G = GATES[cell]
    other = np.float32 if dtype == np.float64 else np.float64
    kind = draw(st.sampled_from([
        "x_dtype", "w_dtype", "mixed_dtype", "x_ndim", "w_ih_shape", "w_hh_shape",
        "w_hh_not_gates", "bias_shape", "one_bias", "h0_shape", "c0_shape", "state_type",
        "lengths_shape", "lengths_range", "lengths_float", "lengths_bool", "threads",
        "threads_type", "nonlinearity", "none_weight", "dy_shape", "dy_dtype", "dh_shape",
        "dstate_type", "cache_type", "x_string",
    ]))
    stage = "forward"
    exc = (ValueError, TypeError)
    names = ()

    def bump(shape, axis):
        shape = list(shape)
        shape[axis] += draw(st.sampled_from([1, 2, -1] if shape[axis] > 0 else [1, 2]))
        return tuple(shape)

    if kind == "x_dtype":
        bad = draw(st.sampled_from(BAD_DTYPES))
        c["x"] = np.zeros((T, B, I), dtype=bad)
        exc, names = TypeError, ("x",)
    elif kind == "w_dtype":
        name = draw(st.sampled_from(["w_ih", "w_hh"]))
        c[name] = np.asarray(c[name]).astype(draw(st.sampled_from(BAD_DTYPES)))
        exc, names = TypeError, (name,)
    elif kind == "mixed_dtype":
        options = ["w_ih", "w_hh"] + (["b_ih", "b_hh"] if c["b_ih"] is not None else [])
        name = draw(st.sampled_from(options))
        c[name] = np.asarray(c[name]).astype(other)
        exc, names = TypeError, (name,)
    elif kind == "x_ndim":
        ndim = draw(st.sampled_from([0, 1, 2, 4]))
        c["x"] = np.zeros((2,) * ndim, dtype)
        names = ("x",)
    elif kind == "w_ih_shape":
        c["w_ih"] = np.zeros(bump((G * H, I), draw(st.integers(0, 1))), dtype)
        exc, names = ValueError, ("w_ih",)
    elif kind == "w_hh_shape":
        shape = bump((G * H, H), draw(st.integers(0, 1)))
        c["w_hh"] = np.zeros(shape, dtype)
        # Either w_hh itself is refused, or it reads as (G*H', H') with H' != H and w_ih,
        # whose G*H rows no longer match, is.
        exc, names = ValueError, ("w_hh", "w_ih")
    elif kind == "w_hh_not_gates":
        c["w_hh"] = np.zeros((G * H + 1, H + 1), dtype) if G > 1 else np.zeros((H + 1, H), dtype)
        exc, names = ValueError, ("w_hh",)
    elif kind == "bias_shape":
        assume(c["b_ih"] is not None)
        name = draw(st.sampled_from(["b_ih", "b_hh"]))
        shape = draw(st.sampled_from([(G * H + 1,), (G * H, 1), (1, G * H), ()]))
        c[name] = np.zeros(shape, dtype)
        exc, names = ValueError, (name,)
    elif kind == "one_bias":
        name = draw(st.sampled_from(["b_ih", "b_hh"]))
        c["b_ih"] = c["b_hh"] = None
        c[name] = np.zeros(G * H, dtype)
        exc, names = ValueError, ("b_ih",)
    elif kind == "h0_shape":
        h0 = np.zeros(bump((B, H), draw(st.integers(0, 1))), dtype)
        c["state"] = (h0, None) if cell == "lstm" else h0
        exc, names = ValueError, ("h0",)
    elif kind == "c0_shape":
        assume(cell == "lstm")
        c["state"] = (None, np.zeros(bump((B, H), draw(st.integers(0, 1))), dtype))
        exc, names = ValueError, ("c0",)
    elif kind == "state_type":
        assume(cell == "lstm")
        c["state"] = draw(st.sampled_from([np.zeros((B, H), dtype), (None,), (None, None, None),
                                           "hc"]))
        exc, names = TypeError, ("state",)
    elif kind == "lengths_shape":
        c["lengths"] = np.zeros(draw(st.sampled_from([(B + 1,), (B, 1), ()])), np.int64)
        exc, names = ValueError, ("lengths",)
    elif kind == "lengths_range":
        assume(B > 0)
        lens = np.zeros(B, np.int64)
        lens[draw(st.integers(0, B - 1))] = draw(st.sampled_from([-1, T + 1, 2**62, -(2**62)]))
        c["lengths"] = lens
        exc, names = ValueError, ("lengths",)
    elif kind == "lengths_float":
        assume(B > 0)
        c["lengths"] = np.full(B, float(T), dtype=draw(st.sampled_from([np.float32, np.float64])))
        exc, names = TypeError, ("lengths",)
    elif kind == "lengths_bool":
        assume(B > 0)
        c["lengths"] = np.ones(B, bool)
        exc, names = TypeError, ("lengths",)
    elif kind == "threads":
        c["num_threads"] = draw(st.sampled_from([0, -1, -(2**40)]))
        exc, names = ValueError, ("num_threads",)
    elif kind == "threads_type":
        c["num_threads"] = draw(st.sampled_from([1.0, "2", True, [1]]))
        exc, names = TypeError, ("num_threads",)
    elif kind == "nonlinearity":
        assume(cell.startswith("rnn"))
        c["cell"] = "rnn_" + draw(st.sampled_from(["sigmoid", "Tanh", "", "gelu"]))
        exc, names = ValueError, ("nonlinearity",)
    elif kind == "none_weight":
        c[draw(st.sampled_from(["w_ih", "w_hh"]))] = None
        exc = TypeError
    elif kind == "x_string":
        c["x"] = draw(st.sampled_from(["abc", [[["a"]]], [[[1.0, "x"]]]]))
    elif kind == "dy_shape":
        stage = "backward"
        c["dy"] = np.zeros(bump((T, B, H), draw(st.integers(0, 2))), dtype)
        exc, names = ValueError, ("dy",)
    elif kind == "dy_dtype":
        stage = "backward"
        c["dy"] = np.zeros((T, B, H), draw(st.sampled_from([other] + BAD_DTYPES)))
        exc, names = TypeError, ("dy",)
    elif kind == "dh_shape":
        stage = "backward"
        dh = np.zeros(bump((B, H), draw(st.integers(0, 1))), dtype)
        c["dstate"] = (dh, None) if cell == "lstm" else dh
        exc, names = ValueError, ("dh_n",)
    elif kind == "dstate_type":
        assume(cell == "lstm")
        stage = "backward"
        c["dstate"] = draw(st.sampled_from([np.zeros((B, H), dtype), (None,), 3]))
        exc, names = TypeError, ("dstate",)
    elif kind == "cache_type":
        stage = "cache"
        exc = (ValueError, TypeError)
        names = ("cache",)
    return c, kind, stage, names, exc


@fuzz
@given(invalid_cases())
def test_invalid_calls_raise_cleanly(args):
    c, kind, stage, names, exc = args
    note(f"{kind} {stage} {describe(c)}")
    if stage == "forward":
        with pytest.raises(exc) as info:
            forward(F, c)
    elif stage == "cache":
        other = "gru" if c["cell"] == "lstm" else "lstm"
        G = GATES[other]
        H = c["H"]
        T, B, I = c["T"], c["B"], c["I"]
        dt = c["dtype"]
        made = _mod_fns(F, other)[0](np.zeros((T, B, I), dt), np.zeros((G * H, I), dt),
                                    np.zeros((G * H, H), dt), training=True)
        for bad in (made[2], None, {"cell": c["cell"]}, object()):
            with pytest.raises(exc) as info:
                backward(F, c, bad)
            assert "cache" in str(info.value)
        return
    else:
        _, _, cache = forward(F, c)
        with pytest.raises(exc) as info:
            backward(F, c, cache)
        # A refused backward leaves the cache usable.
        ok = dict(c, dy=None, dstate=None)
        got = backward(F, ok, cache)
        want = backward(R, ok, forward(R, c)[2])
        assert_close(flatten(got, "b"), flatten(want, "b"), c)
    msg = str(info.value)
    assert msg, "empty error message"
    if names:
        assert any(n in msg for n in names), (names, msg)


# --------------------------------------------------------------------------- raw bindings


@st.composite
def raw_calls(draw):
    """A _core.forward/backward argument list with zero or more corrupted arguments.

    The functional layer validates first, so the raw checks are only reached through direct use;
    they still must never let a kernel read or write out of bounds."""
    c = draw(cases(max_dim=4))
    cell, T, B, I, H, dtype = c["cell"], c["T"], c["B"], c["I"], c["H"], c["dtype"]
    G = GATES[cell]
    rng = np.random.default_rng(c["seed"])
    arr = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    fw = dict(cell=CELL_IDS[cell], x=arr(T, B, I), w_ih=arr(G * H, I), w_hh=arr(G * H, H),
              b_ih=arr(G * H), b_hh=arr(G * H), h0=arr(B, H),
              c0=arr(B, H) if cell == "lstm" else None,
              lengths=np.array([draw(st.integers(0, T)) for _ in range(B)], np.int64),
              reverse=c["reverse"], training=True, num_threads=draw(st.integers(1, 3)))
    mutate_fw = draw(st.lists(st.sampled_from(sorted(fw)), max_size=2, unique=True))
    stage = draw(st.sampled_from(["forward", "backward"]))
    if stage == "forward":
        for name in mutate_fw:
            fw[name] = draw(_corrupt(fw[name], dtype))
        return "forward", fw, None
    bw = dict(cell=fw["cell"], x=fw["x"], w_ih=fw["w_ih"], w_hh=fw["w_hh"], has_bias=True,
              lengths=fw["lengths"], reverse=fw["reverse"], gates=None, h_prev=None, aux=None,
              dy=arr(T, B, H), dh_n=arr(B, H), dc_n=arr(B, H) if cell == "lstm" else None,
              num_threads=fw["num_threads"])
    saves_ok = _core.forward(**fw)[3]
    bw["gates"], bw["h_prev"], bw["aux"] = saves_ok
    mutate_bw = draw(st.lists(st.sampled_from(sorted(bw)), max_size=2, unique=True))
    for name in mutate_bw:
        bw[name] = draw(_corrupt(bw[name], dtype))
    return "backward", bw, fw


@st.composite
def _corrupt(draw, value, dtype):
    other = np.float32 if dtype == np.float64 else np.float64
    if isinstance(value, bool):
        return draw(st.sampled_from([not value, 0, 1, None]))
    if isinstance(value, int):
        return draw(st.sampled_from([0, -1, 4, -(2**31), 2**31 - 1, 7]))
    if value is None:
        return draw(st.sampled_from([None, np.zeros((1, 1), dtype), np.zeros(3, dtype)]))
    how = draw(st.sampled_from(["none", "dtype", "shape", "ndim", "noncontig", "list", "int",
                                "lengths"]))
    if how == "none":
        return None
    if how == "dtype":
        with np.errstate(all="ignore"):  # e.g. huge lengths cast to float16
            return value.astype(draw(st.sampled_from([other, np.int64, np.int32, np.float16])))
    if how == "shape":
        if value.ndim == 0:
            return value.reshape(1)
        shape = list(value.shape)
        ax = draw(st.integers(0, value.ndim - 1))
        shape[ax] = max(0, shape[ax] + draw(st.sampled_from([-1, 1, 5])))
        return np.zeros(shape, value.dtype)
    if how == "ndim":
        return value.reshape(value.shape + (1,))
    if how == "noncontig":
        if value.ndim == 0 or value.size < 2:
            return value
        big = np.repeat(value, 2, axis=-1)
        return big[..., ::2]
    if how == "list":
        return value.tolist()
    if how == "int":
        return 3
    if how == "lengths":  # values out of range for an index array; floats for others
        if value.dtype == np.int64:
            return value + draw(st.sampled_from([-(2**40), 2**40, 1, -1]))
        return value
    raise AssertionError(how)


@fuzz
@given(raw_calls())
def test_raw_bindings_never_crash(call):
    stage, args, _ = call
    fn = _core.forward if stage == "forward" else _core.backward
    try:
        out = fn(**args)
    except (ValueError, TypeError) as e:  # pybind11 argument mismatches are TypeErrors
        assert str(e)
        return
    # Accepted: the outputs must have the shapes the (possibly corrupted) arguments imply.
    x = np.asarray(args["x"])
    T, B, I = x.shape
    w_hh = np.asarray(args["w_hh"])
    GH, H = w_hh.shape
    if stage == "forward":
        y, h_n, c_n, saves = out
        assert y.shape == (T, B, H) and h_n.shape == (B, H)
        if args["training"]:
            assert saves[0].shape == (T, B, GH)
        assert np.isfinite(y).all() or not np.isfinite(x).all()
    else:
        dx, dh0 = out[0], out[1]
        assert dx.shape == (T, B, I) and dh0.shape == (B, H)
        assert out[3].shape == np.asarray(args["w_ih"]).shape
