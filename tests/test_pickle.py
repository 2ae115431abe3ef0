"""Layers, models and optimizers survive pickle and copy.deepcopy, so they can be shipped to
worker processes (multiprocessing, joblib, Dask, Ray, MPI).

For every layer kind and variant, a copy taken after a training step (gradients accumulated)
and during a training forward (a live tape):
- has the same class, configuration (repr), parameters, gradients and dtypes;
- gives the original's outputs bitwise, in eval and in training mode (the dropout generator's
  state travels too), and the original's gradients after the same forward/backward;
- owns its arrays (a change to the copy leaves the original alone);
- does not carry the tape: its backward before a forward raises, while the original can still
  run its pending backward.
Optimizers: a copy continues exactly as the original would (same parameters after further
steps); pickled together with their model they keep sharing its arrays.
A layer on "cuda" (where a GPU is present) uploads its weights again in the copy.
"""
import copy
import pickle

import numpy as np
import pytest

import pyrnn
from pyrnn import nn, optim
from pyrnn.charlm.model import CharLM

T, B, I = 5, 3, 6

LAYERS = {
    "lstm": lambda: pyrnn.LSTM(I, 8, seed=1),
    "lstm_stacked_bidir_dropout": lambda: pyrnn.LSTM(I, 8, num_layers=2, bidirectional=True,
                                                      dropout=0.3, seed=2),
    "lstm_coupled": lambda: pyrnn.LSTM(I, 8, coupled=True, seed=3),
    "lstm_peephole": lambda: pyrnn.LSTM(I, 8, peephole=True, forget_bias=1.0, seed=4),
    "lstm_proj": lambda: pyrnn.LSTM(I, 8, proj_size=5, num_layers=2, seed=5),
    "lstm_f64_nobias_batch_first": lambda: pyrnn.LSTM(I, 7, bias=False, batch_first=True,
                                                       dtype=np.float64, seed=6),
    "gru": lambda: pyrnn.GRU(I, 9, num_layers=2, seed=7),
    "gru_reset_before": lambda: pyrnn.GRU(I, 9, reset_after=False, bidirectional=True, seed=8),
    "rnn_tanh": lambda: pyrnn.RNN(I, 10, seed=9, num_threads=1),
    "rnn_relu_f64": lambda: pyrnn.RNN(I, 10, nonlinearity="relu", dtype=np.float64, seed=10),
}


def _input(layer, seed=0):
    shape = (B, T, I) if layer.batch_first else (T, B, I)
    return np.random.default_rng(seed).standard_normal(shape).astype(layer.dtype)


def _train_step(layer, seed):
    layer.train()
    y, _ = layer(_input(layer, seed))
    layer.backward(np.ones_like(y))
    return y


COPIERS = {"pickle": lambda obj: pickle.loads(pickle.dumps(obj)), "deepcopy": copy.deepcopy}


def _copies(obj):
    return {how: copier(obj) for how, copier in COPIERS.items()}


def _assert_same_arrays(got: dict, want: dict):
    assert list(got) == list(want)
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_recurrent_layer_copies(kind):
    layer = LAYERS[kind]()
    _train_step(layer, seed=1)          # gradients accumulated
    layer(_input(layer, seed=2))        # a live tape: backward pending
    for how, twin in _copies(layer).items():
        assert type(twin) is type(layer) and repr(twin) == repr(layer), how
        _assert_same_arrays(twin.params, layer.params)
        _assert_same_arrays(twin.grads, layer.grads)
        with pytest.raises(RuntimeError):
            twin.backward(np.ones((T, B, twin.output_size * twin.num_directions)))
        # its own arrays
        first = next(iter(twin.params))
        twin.params[first][...] += 1
        assert not np.array_equal(twin.params[first], layer.params[first])
        twin.params[first][...] -= 1
    layer.backward(np.ones_like(layer(_input(layer, seed=2))[0]))  # the original still can
    for how, copier in COPIERS.items():
        twin = copier(layer)  # taken now: the original's dropout generator moves on below
        layer.eval(), twin.eval()
        np.testing.assert_array_equal(twin(_input(layer, 3))[0], layer(_input(layer, 3))[0])
        layer.zero_grad(), twin.zero_grad()
        # training mode: dropout masks come from the copied generator state
        np.testing.assert_array_equal(_train_step(twin, 4), _train_step(layer, 4), err_msg=how)
        _assert_same_arrays(twin.grads, layer.grads)


@pytest.mark.parametrize("make", [lambda: nn.Linear(I, 4, seed=1),
                                  lambda: nn.Linear(I, 4, bias=False, dtype=np.float64, seed=2)],
                         ids=["linear", "linear_f64_nobias"])
def test_linear_copies(make):
    layer = make()
    x = np.random.default_rng(0).standard_normal((T, B, I))
    layer.backward(np.ones_like(layer(x)))
    layer(x)  # pending input
    for twin in _copies(layer).values():
        assert twin._x is None
        _assert_same_arrays(twin.params, layer.params)
        _assert_same_arrays(twin.grads, layer.grads)
        with pytest.raises(RuntimeError):
            twin.backward(np.ones((T, B, 4)))
        np.testing.assert_array_equal(twin(x), layer(x))


def test_embedding_copies():
    layer = nn.Embedding(11, 4, seed=3)
    idx = np.arange(T * B).reshape(T, B) % 11
    layer(idx)
    layer.backward(np.ones((T, B, 4)))
    for twin in _copies(layer).values():
        assert twin._indices is None
        _assert_same_arrays(twin.params, layer.params)
        _assert_same_arrays(twin.grads, layer.grads)
        np.testing.assert_array_equal(twin(idx), layer(idx))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_charlm_copies_keep_shared_arrays(cell):
    """The model's flat params/grads dicts share the layers' arrays; so do the copies'."""
    model = CharLM(13, hidden=8, layers=2, embed=4, cell=cell, seed=0)
    idx = np.arange(T * B).reshape(T, B) % 13
    for twin in _copies(model).values():
        assert twin.params["rnn.weight_hh_l1"] is twin.rnn.params["weight_hh_l1"]
        assert twin.grads["head.weight"] is twin.head.grads["weight"]
        _assert_same_arrays(twin.params, model.params)
        model.eval(), twin.eval()
        np.testing.assert_array_equal(twin(idx)[0], model(idx)[0])


OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.1),
    "sgd_nesterov_wd": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                           weight_decay=1e-2),
    "adam": lambda p: optim.Adam(p, lr=1e-2),
    "adam_wd_f64": lambda p: optim.Adam(p, lr=1e-2, betas=(0.8, 0.9), weight_decay=0.1),
}


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_optimizer_copies_continue_identically(kind):
    dtype = np.float64 if kind.endswith("f64") else np.float32
    layer = pyrnn.GRU(I, 6, seed=11, dtype=dtype)
    opt = OPTIMIZERS[kind](layer.params)
    rng = np.random.default_rng(5)
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in layer.params.items()}
             for _ in range(4)]
    for g in grads[:2]:
        opt.step(g)
    for how in ("pickle", "deepcopy"):
        twin_layer, twin_opt = (pickle.loads(pickle.dumps((layer, opt))) if how == "pickle"
                                else copy.deepcopy((layer, opt)))
        assert repr(twin_opt) == repr(opt)
        # pickled together, the optimizer still updates the model's own arrays
        for name, p in twin_layer.params.items():
            assert twin_opt.params[name] is p, (how, name)
        saved = {k: p.copy() for k, p in layer.params.items()}
        saved_state = copy.deepcopy(opt.state)
        for g in grads[2:]:
            opt.step(g)
            twin_opt.step(g)
        _assert_same_arrays(twin_layer.params, layer.params)
        # rewind the original for the next copy
        for k, p in layer.params.items():
            p[...] = saved[k]
        opt.state = saved_state


@pytest.mark.skipif(not pyrnn.cuda.is_available(),
                    reason=f"CUDA not available: {pyrnn.cuda.unavailable_reason()}")
def test_layer_on_cuda_copies_upload_again():
    layer = pyrnn.GRU(I, 8, num_layers=2, seed=12).to("cuda").eval()
    x = _input(layer, 5)
    want = layer(x)[0]
    for twin in _copies(layer).values():
        assert twin.device == "cuda" and twin._cuda_weights is not None
        assert twin._cuda_weights is not layer._cuda_weights
        np.testing.assert_array_equal(twin(x)[0], want)
