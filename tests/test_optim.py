"""pyrnn.optim against torch.optim, step by step; state dicts; a small training loop."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pyrnn import nn
from pyrnn.clip import clip_grad_norm
from pyrnn.optim import SGD, Adam
from pyrnn.serialization import load, save

SHAPES = {"weight": (4, 3), "bias": (4,), "scalar": (), "empty": (0, 2)}
TOL = {np.float64: dict(rtol=1e-13, atol=1e-15), np.float32: dict(rtol=1e-5, atol=1e-6)}

SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.8, dampening=0.3),
    dict(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True),
]
ADAM_CONFIGS = [
    dict(),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.1, betas=(0.5, 0.9), eps=1e-3),
    dict(lr=0.003, betas=(0.0, 0.99)),
]
PAIRS = [(SGD, torch.optim.SGD, c) for c in SGD_CONFIGS] + [
    (Adam, torch.optim.Adam, c) for c in ADAM_CONFIGS]
PAIR_IDS = [f"{ours.__name__}-{cfg}" for ours, _, cfg in PAIRS]


def _make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {k: np.array(rng.standard_normal(s), dtype=dtype) for k, s in SHAPES.items()}


def _grad_stream(params, steps, seed=1, skip_every=3):
    """Random gradients per step; 'bias' has no gradient every ``skip_every`` steps."""
    rng = np.random.default_rng(seed)
    for step in range(steps):
        grads = {k: np.array(rng.standard_normal(v.shape), dtype=v.dtype)
                 for k, v in params.items()}
        if step % skip_every == skip_every - 1:
            del grads["bias"]
        yield grads


def _torch_twin(params, torch_cls, config):
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    return tparams, torch_cls(list(tparams.values()), **config)


def _torch_step(tparams, opt, grads):
    for k, p in tparams.items():
        p.grad = torch.from_numpy(grads[k].copy()) if k in grads else None
    opt.step()


def _assert_same(params, tparams, dtype):
    for k, p in params.items():
        np.testing.assert_allclose(p, tparams[k].detach().numpy(), **TOL[dtype], err_msg=k)


@pytest.mark.parametrize("ours_cls, torch_cls, config", PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_optimizer_matches_torch_step_by_step(ours_cls, torch_cls, config, dtype):
    params = _make_params(dtype)
    tparams, ref = _torch_twin(params, torch_cls, config)
    arrays = {k: v for k, v in params.items()}
    opt = ours_cls(params, **config)
    for grads in _grad_stream(params, steps=7):
        opt.step(grads)
        _torch_step(tparams, ref, grads)
        _assert_same(params, tparams, dtype)
    assert all(params[k] is arrays[k] and params[k].dtype == dtype for k in params)


@pytest.mark.parametrize("ours_cls, torch_cls, config", PAIRS, ids=PAIR_IDS)
def test_state_dict_round_trip_through_npz(ours_cls, torch_cls, config, tmp_path):
    params = _make_params(np.float64)
    tparams, ref = _torch_twin(params, torch_cls, config)
    stream = list(_grad_stream(params, steps=6))
    opt = ours_cls(params, **config)
    for grads in stream[:3]:
        opt.step(grads)
    save(tmp_path / "opt", opt)
    resumed_params = {k: v.copy() for k, v in params.items()}
    resumed = ours_cls(resumed_params, lr=123.0)  # hyperparameters come from the file
    resumed.load_state_dict(load(tmp_path / "opt.npz"))
    assert resumed.lr == opt.lr
    for grads in stream:
        _torch_step(tparams, ref, grads)
    for grads in stream[3:]:
        resumed.step(grads)
    _assert_same(resumed_params, tparams, np.float64)


def test_state_dict_is_flat_and_copied():
    params = _make_params(np.float64)
    opt = Adam(params)
    opt.step({"weight": np.ones((4, 3))})
    sd = opt.state_dict()
    assert sd["lr"] == 1e-3 and sd["betas"] == (0.9, 0.999) and sd["step.weight"] == 1
    assert set(sd) == {"lr", "betas", "eps", "weight_decay",
                       "step.weight", "exp_avg.weight", "exp_avg_sq.weight"}
    sd["exp_avg.weight"][...] = 5
    assert not np.any(opt.state["weight"]["exp_avg"] == 5)
    sgd = SGD(params, lr=0.1, momentum=0.5)
    sgd.step({"bias": np.ones(4)})
    assert set(sgd.state_dict()) == {"lr", "momentum", "dampening", "weight_decay", "nesterov",
                                     "momentum_buffer.bias"}


def test_optimizer_accepts_module_and_updates_in_place():
    lin = nn.Linear(3, 2, dtype=np.float64, seed=0)
    weight = lin.params["weight"]
    before = weight.copy()
    opt = SGD(lin, lr=0.5)
    lin.grads["weight"][...] = 1.0
    opt.step(lin.grads)
    assert lin.params["weight"] is weight
    np.testing.assert_allclose(weight, before - 0.5)


@pytest.mark.parametrize("make, match", [
    (lambda p: SGD(p, lr=-0.1), "learning rate"),
    (lambda p: SGD(p, lr=float("nan")), "learning rate"),
    (lambda p: SGD(p, lr=0.1, momentum=-1), "momentum"),
    (lambda p: SGD(p, lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda p: SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: Adam(p, lr=-1e-3), "learning rate"),
    (lambda p: Adam(p, eps=-1e-8), "eps"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), "betas"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), "betas"),
    (lambda p: Adam(p, betas=(0.9,)), "betas"),
    (lambda p: Adam(p, weight_decay=-0.1), "weight_decay"),
])
def test_invalid_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make(_make_params(np.float64))


def test_invalid_params_and_grads():
    with pytest.raises(TypeError, match="floating"):
        SGD({"w": np.zeros(3, dtype=np.int64)}, lr=0.1)
    with pytest.raises(TypeError, match="dict of arrays"):
        SGD([np.zeros(3)], lr=0.1)
    opt = Adam(_make_params(np.float64))
    with pytest.raises(KeyError, match="not parameters"):
        opt.step({"nope": np.zeros(1)})
    with pytest.raises(ValueError, match=r"grads\['bias'\]: expected shape \(4,\)"):
        opt.step({"bias": np.zeros(5)})


def test_invalid_optimizer_state_dict():
    params = _make_params(np.float64)
    opt = Adam(params)
    opt.step({"weight": np.ones((4, 3))})
    good = opt.state_dict()
    for broken, exc, match in [
        ({**good, "exp_avg.nope": np.zeros(1)}, KeyError, "unexpected key"),
        ({k: v for k, v in good.items() if k != "lr"}, KeyError, "lacks hyperparameters"),
        ({k: v for k, v in good.items() if k != "step.weight"}, KeyError, "incomplete state"),
        ({**good, "exp_avg.weight": np.zeros(3)}, ValueError, "expected shape"),
        ({**good, "betas": (2.0, 0.5)}, ValueError, "betas"),
    ]:
        with pytest.raises(exc, match=match):
            opt.load_state_dict(broken)
        assert opt.betas == (0.9, 0.999) and opt.state["weight"]["step"] == 1


def test_training_loop_matches_torch():
    """Embedding -> Linear -> cross-entropy, clipped, Adam: losses and weights equal torch's."""
    rng = np.random.default_rng(5)
    emb = nn.Embedding(11, 6, dtype=np.float64, seed=0)
    lin = nn.Linear(6, 11, dtype=np.float64, seed=1)
    temb = torch.nn.Embedding(11, 6, dtype=torch.float64)
    tlin = torch.nn.Linear(6, 11, dtype=torch.float64)
    temb.load_state_dict({k: torch.from_numpy(v) for k, v in emb.state_dict().items()})
    tlin.load_state_dict({k: torch.from_numpy(v) for k, v in lin.state_dict().items()})
    params = {**{f"emb.{k}": v for k, v in emb.params.items()},
              **{f"lin.{k}": v for k, v in lin.params.items()}}
    grads = {**{f"emb.{k}": v for k, v in emb.grads.items()},
             **{f"lin.{k}": v for k, v in lin.grads.items()}}
    opt = Adam(params, lr=0.05)
    topt = torch.optim.Adam([*temb.parameters(), *tlin.parameters()], lr=0.05)
    losses = []
    for _ in range(8):
        tokens = rng.integers(0, 11, size=(5, 4))
        targets = np.roll(tokens, -1, axis=1)
        targets[:, -1] = -100
        emb.zero_grad()
        lin.zero_grad()
        loss, dlogits = nn.softmax_cross_entropy(lin(emb(tokens)), targets, ignore_index=-100)
        emb.backward(lin.backward(dlogits))
        clip_grad_norm(grads, 0.5)
        opt.step(grads)

        topt.zero_grad()
        tlogits = tlin(temb(torch.from_numpy(tokens)))
        tloss = F.cross_entropy(tlogits.reshape(-1, 11), torch.from_numpy(targets).reshape(-1))
        tloss.backward()
        torch.nn.utils.clip_grad_norm_([*temb.parameters(), *tlin.parameters()], 0.5)
        topt.step()
        np.testing.assert_allclose(loss, tloss.item(), rtol=1e-12)
        losses.append(loss)
    np.testing.assert_allclose(emb.params["weight"], temb.weight.detach().numpy(), rtol=1e-11)
    np.testing.assert_allclose(lin.params["weight"], tlin.weight.detach().numpy(), rtol=1e-11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_equals_the_numpy_steps(dtype):
    """The fused kernel (contiguous arrays) and the NumPy path (any other layout) run the same
    operations in the same order: equal results, a parameter laid out either way."""
    rng = np.random.default_rng(5)
    base = rng.standard_normal((70, 300)).astype(dtype)
    contiguous, strided = base.copy(), np.asfortranarray(base.copy())
    assert contiguous.flags.c_contiguous and not strided.flags.c_contiguous
    opts = [Adam({"w": p}, lr=3e-3, weight_decay=0.01) for p in (contiguous, strided)]
    for _ in range(5):
        grad = rng.standard_normal(base.shape).astype(dtype)
        for opt in opts:
            opt.step({"w": grad})
    np.testing.assert_allclose(contiguous, strided, rtol=2 * np.finfo(dtype).eps, atol=0)
    assert np.abs(contiguous - base).max() > 1e-3  # the steps did move the parameter


def test_adam_num_threads_same_result_and_validated():
    """The fused step is elementwise: any thread count gives the same bits (arrays large
    enough to be split); num_threads is a setting, not optimizer state."""
    rng = np.random.default_rng(6)
    base = rng.standard_normal(300_001).astype(np.float32)
    grads = [rng.standard_normal(base.shape).astype(np.float32) for _ in range(3)]
    results = []
    for threads in (1, 2, 3, None):
        p = base.copy()
        opt = Adam({"w": p}, lr=1e-2)
        opt.num_threads = threads
        for g in grads:
            opt.step({"w": g})
        results.append(p)
        assert "num_threads" not in opt.state_dict()
    for p in results[1:]:
        np.testing.assert_array_equal(p, results[0])
    with pytest.raises(ValueError, match="num_threads"):
        Adam({"w": base.copy()}).num_threads = 0
    with pytest.raises(ValueError, match="num_threads"):
        Adam({"w": base.copy()}, num_threads=-1)
    assert SGD({"w": base.copy()}, lr=0.1, num_threads=2).num_threads == 2
    with pytest.raises(TypeError, match="num_threads"):
        SGD({"w": base.copy()}, lr=0.1).num_threads = 1.5


def test_adam_step_binding_rejects_bad_arrays():
    from pyrnn import _core
    p = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.adam_step(p.astype(np.float16), p, p, p, .1, .999, .001, 1., 1e-8, 1e-3, 1)
    with pytest.raises(ValueError, match="'grad': expected shape"):
        _core.adam_step(p, np.zeros(5, np.float32), p.copy(), p.copy(), .1, .999, .001, 1.,
                        1e-8, 1e-3, 1)
    with pytest.raises(ValueError, match="num_threads"):
        _core.adam_step(p, p.copy(), p.copy(), p.copy(), .1, .999, .001, 1., 1e-8, 1e-3, 0)
