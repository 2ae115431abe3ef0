"""Arrays are accepted by dtype equality, not by the identity of the dtype object: pickled
arrays (every multiprocessing, joblib, Dask or Ray worker gets those) and other instances of
the float32/float64 dtypes work; non-native byte order is refused with a message naming it."""
import pickle

import numpy as np
import pytest

import pyrnn
import pyrnn.functional as F

DTYPES = [np.float32, np.float64]


def _args(dtype, G=4, T=5, B=3, I=6, H=7):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    w = [rng.uniform(-0.3, 0.3, s).astype(dtype) for s in ((G * H, I), (G * H, H), (G * H,),
                                                            (G * H,))]
    return x, w


def _equal_distinct_dtype(a):
    """`a` with a dtype object equal to its own but not the same object."""
    b = pickle.loads(pickle.dumps(a))
    if b.dtype is a.dtype:  # NumPy may hand back its cached instance: force another one
        b = b.view(np.dtype(a.dtype.str).newbyteorder("="))
    assert b.dtype == a.dtype
    return b


@pytest.mark.parametrize("dtype", DTYPES)
def test_pickled_arrays_run_and_give_the_same_result(dtype):
    x, w = _args(dtype)
    y, (h, c), _ = F.lstm_forward(x, *w)
    y2, (h2, c2), _ = F.lstm_forward(_equal_distinct_dtype(x), *map(_equal_distinct_dtype, w))
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(c2, c)


@pytest.mark.parametrize("dtype", DTYPES)
def test_other_dtype_instances_reach_the_kernels(dtype):
    """Past the Python checks, straight to the compiled bindings: training forward and
    backward with every array's dtype a distinct but equal instance."""
    x, w = _args(dtype, G=3)
    x2, w2 = _equal_distinct_dtype(x), [_equal_distinct_dtype(a) for a in w]
    y, h, cache = F.gru_forward(x2, *w2, training=True)
    dy = _equal_distinct_dtype(np.ones_like(y))
    dx, dh0, grads = F.gru_backward(cache, dy)
    want = F.gru_backward(F.gru_forward(x, *w, training=True)[2], np.ones_like(y))
    np.testing.assert_array_equal(dx, want[0])
    np.testing.assert_array_equal(grads["w_hh"], want[2]["w_hh"])


@pytest.mark.parametrize("layer", [pyrnn.LSTM, pyrnn.GRU, pyrnn.RNN])
def test_pickled_layer_runs(layer):
    net = layer(4, 6, num_layers=2, bidirectional=True)
    x = np.random.default_rng(1).standard_normal((5, 2, 4)).astype(np.float32)
    want = net(x)[0]
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(clone(x)[0], want)


@pytest.mark.parametrize("which", ["x", "w_hh"])
def test_big_endian_is_refused_with_the_byte_order(which):
    x, w = _args(np.float32)
    args = {"x": x, "w_ih": w[0], "w_hh": w[1]}
    args[which] = args[which].astype(">f4")
    with pytest.raises(TypeError, match=f"{which}: expected native byte order, got big-endian"):
        F.lstm_forward(args["x"], args["w_ih"], args["w_hh"])
