"""pyrnn.nn layers and loss against torch autograd; Module state-dict behaviour."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pyrnn import nn
from pyrnn.module import Module, StateDictError

RNG = np.random.default_rng(1234)


def _tol(dtype):
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- Linear

@pytest.mark.parametrize("lead", [(), (1,), (5,), (2, 3), (2, 1, 4)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_forward_backward_matches_torch(lead, bias, dtype):
    lin = nn.Linear(7, 3, bias=bias, dtype=dtype, seed=0)
    ref = torch.nn.Linear(7, 3, bias=bias, dtype=torch.from_numpy(np.zeros(0, dtype)).dtype)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in lin.state_dict().items()})
    x = RNG.standard_normal(lead + (7,)).astype(dtype)
    dy = RNG.standard_normal(lead + (3,)).astype(dtype)

    y = lin(x)
    dx = lin.backward(dy)
    xt = torch.from_numpy(x).requires_grad_()
    yt = ref(xt)
    (yt * torch.from_numpy(dy)).sum().backward()

    assert y.dtype == dtype and y.shape == lead + (3,) and dx.shape == x.shape
    np.testing.assert_allclose(y, yt.detach().numpy(), **_tol(dtype))
    np.testing.assert_allclose(dx, xt.grad.numpy(), **_tol(dtype))
    np.testing.assert_allclose(lin.grads["weight"], ref.weight.grad.numpy(), **_tol(dtype))
    if bias:
        np.testing.assert_allclose(lin.grads["bias"], ref.bias.grad.numpy(), **_tol(dtype))
    assert set(lin.grads) == set(lin.params) == ({"weight", "bias"} if bias else {"weight"})


def test_linear_backward_accumulates_and_zero_grad_resets():
    lin = nn.Linear(4, 2, dtype=np.float64, seed=1)
    x, dy = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 2))
    lin(x)
    lin.backward(dy)
    once = {k: v.copy() for k, v in lin.grads.items()}
    lin.backward(dy)
    for k in once:
        np.testing.assert_allclose(lin.grads[k], 2 * once[k], rtol=1e-14)
    lin.zero_grad()
    assert all(not g.any() for g in lin.grads.values())


def test_linear_init_like_torch():
    lin = nn.Linear(16, 300, seed=3)
    bound = 1 / np.sqrt(16)
    for name in ("weight", "bias"):
        p = lin.params[name]
        assert p.dtype == np.float32
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound
    assert lin.params["weight"].shape == (300, 16) and lin.params["bias"].shape == (300,)
    np.testing.assert_array_equal(nn.Linear(16, 300, seed=3).params["weight"], lin.params["weight"])
    assert not np.array_equal(nn.Linear(16, 300, seed=4).params["weight"], lin.params["weight"])


def test_linear_zero_sizes():
    lin = nn.Linear(0, 3, dtype=np.float64, seed=0)
    y = lin(np.zeros((2, 0)))
    np.testing.assert_array_equal(y, np.broadcast_to(lin.params["bias"], (2, 3)))
    assert lin.backward(np.ones((2, 3))).shape == (2, 0)
    lin2 = nn.Linear(3, 2, seed=0)
    assert lin2(np.zeros((0, 3))).shape == (0, 2)
    assert lin2.backward(np.zeros((0, 2))).shape == (0, 3)


def test_linear_errors():
    lin = nn.Linear(4, 2)
    with pytest.raises(RuntimeError, match="before forward"):
        lin.backward(np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"x: expected shape \[\.\.\., 4\], got \[3, 5\]"):
        lin(np.zeros((3, 5)))
    lin(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"dy: expected shape \[3, 2\]"):
        lin.backward(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="floating"):
        nn.Linear(2, 2, dtype=np.int32)
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(-1, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_threaded_products_match_torch(dtype, bias):
    """Shapes big enough for several kernel threads (rows not a multiple of a GEMM panel):
    every thread count matches torch, and each other."""
    M, K, N = 701, 130, 97
    x = RNG.standard_normal((M, K)).astype(dtype)
    dy = RNG.standard_normal((M, N)).astype(dtype)
    ref = torch.nn.Linear(K, N, bias=bias, dtype=torch.from_numpy(np.zeros(0, dtype)).dtype)
    outs = []
    for threads in (1, 2, 3):
        lin = nn.Linear(K, N, bias=bias, dtype=dtype, seed=5, num_threads=threads)
        ref.load_state_dict({k: torch.from_numpy(v) for k, v in lin.state_dict().items()})
        ref.zero_grad()
        y, dx = lin(x), lin.backward(dy)
        xt = torch.from_numpy(x).requires_grad_()
        (ref(xt) * torch.from_numpy(dy)).sum().backward()
        tol = dict(rtol=1e-11, atol=1e-11) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(y, ref(xt).detach().numpy(), **tol)
        np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
        np.testing.assert_allclose(lin.grads["weight"], ref.weight.grad.numpy(), **tol)
        if bias:
            np.testing.assert_allclose(lin.grads["bias"], ref.bias.grad.numpy(), **tol)
        outs.append((y, dx, lin.grads["weight"]))
    for y, dx, dw in outs[1:]:
        np.testing.assert_allclose(y, outs[0][0], rtol=1e-5 if dtype == np.float32 else 1e-13)
        np.testing.assert_allclose(dx, outs[0][1], rtol=1e-5 if dtype == np.float32 else 1e-13)
        np.testing.assert_allclose(dw, outs[0][2], rtol=1e-5 if dtype == np.float32 else 1e-13)


def test_linear_float32_bias_gradient_sums_many_rows_accurately():
    # A running float32 sum over 200,000 rows drifts by ~1e-4 relative; summed in double it
    # stays within float32 rounding of the exact sum.
    lin = nn.Linear(2, 3, seed=0)
    dy = (1 + RNG.random((200_000, 3))).astype(np.float32)
    lin(np.zeros((200_000, 2), np.float32))
    lin.backward(dy)
    exact = dy.astype(np.float64).sum(axis=0)
    np.testing.assert_allclose(lin.grads["bias"], exact, rtol=2e-7)


def test_linear_non_contiguous_input_and_float16_fallback():
    lin = nn.Linear(6, 4, dtype=np.float64, seed=2)
    x = RNG.standard_normal((6, 5)).T  # [5, 6], Fortran order
    np.testing.assert_allclose(lin(x), x @ lin.weight.T + lin.bias, rtol=1e-13)
    np.testing.assert_allclose(lin.backward(np.ones((5, 4))), np.ones((5, 4)) @ lin.weight,
                               rtol=1e-13)
    half = nn.Linear(6, 4, dtype=np.float16, seed=2)  # NumPy's path
    y = half(x)
    assert y.dtype == np.float16 and y.shape == (5, 4)
    assert half.backward(np.ones((5, 4), np.float16)).dtype == np.float16


def test_linear_num_threads_validated():
    with pytest.raises(ValueError, match="num_threads"):
        nn.Linear(2, 2, num_threads=0)
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="num_threads"):
        lin.num_threads = True
    lin.num_threads = 2
    assert lin.num_threads == 2


def test_linear_raw_binding_rejects_bad_arrays():
    from pyrnn import _core
    w = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="argument 'x': expected shape"):
        _core.linear_forward(np.zeros((2, 5), np.float32), w, None, 1)
    with pytest.raises(TypeError, match="argument 'x': expected dtype float32"):
        _core.linear_forward(np.zeros((2, 4)), w, None, 1)
    with pytest.raises(ValueError, match="num_threads"):
        _core.linear_forward(np.zeros((2, 4), np.float32), w, None, 0)
    dw = np.zeros((3, 4), np.float32)
    dw.flags.writeable = False
    with pytest.raises(ValueError, match="argument 'dw': must be writeable"):
        _core.linear_backward(np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32), w,
                              dw, None, 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.linear_forward(np.zeros((2, 4), np.int32), w.astype(np.int32), None, 1)


# ----------------------------------------------------------------------------- Module

def test_state_dict_is_a_copy_and_load_is_in_place():
    lin = nn.Linear(3, 2, dtype=np.float64, seed=0)
    weight = lin.params["weight"]
    sd = lin.state_dict()
    sd["weight"][...] = 7.0
    assert not np.any(weight == 7.0)
    lin.load_state_dict(sd)
    assert lin.params["weight"] is weight and np.all(weight == 7.0)
    assert lin.parameters() is lin.params


def test_load_state_dict_from_torch_casts_dtype():
    ref = torch.nn.Linear(5, 4)  # float32
    lin = nn.Linear(5, 4, dtype=np.float64)
    lin.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    assert lin.params["weight"].dtype == np.float64
    np.testing.assert_array_equal(lin.params["weight"], ref.weight.detach().numpy())
    lin.load_state_dict({"weight": ref.weight.detach().numpy().tolist(), "bias": [0, 1, 2, 3]})
    np.testing.assert_array_equal(lin.params["bias"], [0.0, 1.0, 2.0, 3.0])


def test_load_state_dict_reports_all_problems_at_once_and_writes_nothing():
    lin = nn.Linear(3, 2, seed=0)
    before = lin.state_dict()
    bad = {"weight": np.zeros((3, 2)), "extra": np.zeros(1)}  # bias missing
    for exc in (KeyError, ValueError, StateDictError):
        with pytest.raises(exc) as info:
            lin.load_state_dict(bad)
        msg = str(info.value)
        assert "missing keys ['bias']" in msg and "unexpected keys ['extra']" in msg
        assert "weight: expected (2, 3), got (3, 2)" in msg
    np.testing.assert_array_equal(lin.params["weight"], before["weight"])


def test_load_state_dict_non_strict():
    lin = nn.Linear(3, 2, seed=0)
    result = lin.load_state_dict({"weight": np.ones((2, 3)), "extra": 1}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    assert np.all(lin.params["weight"] == 1)
    with pytest.raises(ValueError, match="wrong shapes"):
        lin.load_state_dict({"weight": np.ones((3, 3))}, strict=False)


def test_train_eval_and_base_forward():
    m = Module()
    assert m.training
    assert m.eval() is m and not m.training
    assert m.train() is m and m.training
    with pytest.raises(NotImplementedError):
        m(1)
    p = m.add_param("w", np.ones((2, 2)))
    assert m.params["w"] is p and m.grads["w"].shape == (2, 2) and not m.grads["w"].any()
    assert m.add_param("s", np.float64(2.0)).shape == ()  # 0-d stays 0-d
    assert m.grads["s"].shape == () and isinstance(m.grads["s"], np.ndarray)


# ----------------------------------------------------------------------------- Embedding

@pytest.mark.parametrize("shape", [(), (1,), (9,), (3, 4), (2, 0), (2, 3, 5)])
def test_embedding_forward_backward_matches_torch(shape):
    emb = nn.Embedding(6, 4, dtype=np.float64, seed=0)
    idx = RNG.integers(0, 6, size=shape)  # small table: many repeated indices
    dy = RNG.standard_normal(shape + (4,))
    weight = torch.from_numpy(emb.params["weight"].copy()).requires_grad_()
    yt = F.embedding(torch.from_numpy(idx), weight)
    (yt * torch.from_numpy(dy)).sum().backward()

    y = emb(idx)
    emb.backward(dy)
    assert y.shape == shape + (4,)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_allclose(emb.grads["weight"], weight.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_embedding_repeated_indices_accumulate():
    emb = nn.Embedding(3, 2, dtype=np.float64, seed=0)
    emb(np.array([1, 1, 1, 2]))
    emb.backward(np.ones((4, 2)))
    np.testing.assert_array_equal(emb.grads["weight"], [[0, 0], [3, 3], [1, 1]])


def test_embedding_init_is_standard_normal():
    w = nn.Embedding(400, 50, seed=0).params["weight"]
    assert w.dtype == np.float32 and w.shape == (400, 50)
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02


def test_embedding_errors():
    emb = nn.Embedding(5, 2)
    for bad in ([5], [-1], [[0, 7]]):
        with pytest.raises(IndexError, match=r"\[0, 5\)"):
            emb(np.array(bad))
    for bad in (np.array([1.0]), np.array([True]), ["a"]):
        with pytest.raises(TypeError, match="integer"):
            emb(bad)
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Embedding(5, 2).backward(np.zeros((1, 2)))
    emb(np.array([[0, 1]]))
    with pytest.raises(ValueError, match=r"dy: expected shape \[1, 2, 2\]"):
        emb.backward(np.zeros((2, 2)))


# ----------------------------------------------------------------------------- losses

def _torch_ce(logits, targets, ignore_index=-100, reduction="mean"):
    """torch loss and dlogits for logits [..., C] (torch wants the class dim second)."""
    lt = torch.from_numpy(logits).requires_grad_()
    flat = lt.reshape(-1, logits.shape[-1])
    loss = F.cross_entropy(flat, torch.from_numpy(targets).reshape(-1),
                           ignore_index=ignore_index, reduction=reduction)
    loss.backward()
    return loss.item(), lt.grad.numpy()


@pytest.mark.parametrize("shape", [(1,), (8,), (3, 5), (2, 3, 4)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_matches_torch(shape, reduction, dtype):
    logits = (3 * RNG.standard_normal(shape + (7,))).astype(dtype)
    targets = RNG.integers(0, 7, size=shape)
    loss, dlogits = nn.softmax_cross_entropy(logits, targets, reduction=reduction)
    ref_loss, ref_grad = _torch_ce(logits, targets, reduction=reduction)
    assert isinstance(loss, float) and dlogits.dtype == dtype and dlogits.shape == logits.shape
    np.testing.assert_allclose(loss, ref_loss, **_tol(dtype))
    np.testing.assert_allclose(dlogits, ref_grad, **_tol(dtype))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_ignore_index_and_mask_match_torch(reduction):
    logits = RNG.standard_normal((4, 6, 5))
    targets = RNG.integers(0, 5, size=(4, 6))
    targets[0, :3] = -100
    mask = RNG.random((4, 6)) < 0.7
    # torch has no mask: express it as extra ignored positions
    torch_targets = np.where(mask, targets, -100)
    ref_loss, ref_grad = _torch_ce(logits, torch_targets, reduction=reduction)

    loss, dlogits = nn.softmax_cross_entropy(logits, targets, ignore_index=-100, mask=mask,
                                             reduction=reduction)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(dlogits, ref_grad, rtol=1e-12, atol=1e-15)
    assert not dlogits[torch_targets == -100].any()

    # ignore_index alone, with a non-default value and an out-of-range target left ignored
    targets2 = np.where(torch_targets == -100, 99, targets)
    loss2, grad2 = nn.softmax_cross_entropy(logits, targets2, ignore_index=99, reduction=reduction)
    ref_loss2, ref_grad2 = _torch_ce(logits, targets2, ignore_index=99, reduction=reduction)
    np.testing.assert_allclose(loss2, ref_loss2, rtol=1e-12)
    np.testing.assert_allclose(grad2, ref_grad2, rtol=1e-12, atol=1e-15)


def test_cross_entropy_mask_broadcasts():
    logits = RNG.standard_normal((3, 4, 5))
    targets = RNG.integers(0, 5, size=(3, 4))
    time_mask = np.array([1, 1, 0, 1])
    loss, grad = nn.softmax_cross_entropy(logits, targets, mask=time_mask)
    ref_loss, ref_grad = _torch_ce(logits, np.where(time_mask.astype(bool), targets, -100))
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_all_ignored_is_zero_not_nan(reduction):
    logits = RNG.standard_normal((3, 4))
    loss, grad = nn.softmax_cross_entropy(logits, np.full(3, -1), ignore_index=-1,
                                          reduction=reduction)
    assert loss == 0.0 and grad.shape == (3, 4) and not grad.any()
    loss, grad = nn.softmax_cross_entropy(logits, np.zeros(3, int), mask=np.zeros(3, bool))
    assert loss == 0.0 and not grad.any()
    loss, grad = nn.softmax_cross_entropy(np.zeros((0, 4)), np.zeros(0, int))
    assert loss == 0.0 and grad.shape == (0, 4)


@pytest.mark.parametrize("scale", [1e4, 1e30])
def test_cross_entropy_stable_with_huge_logits(scale):
    base = RNG.standard_normal((6, 5))
    logits = (base * scale).astype(np.float32)
    targets = RNG.integers(0, 5, size=6)
    loss, grad = nn.softmax_cross_entropy(logits, targets)
    ref_loss, ref_grad = _torch_ce(logits.astype(np.float64), targets)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-7)


def test_cross_entropy_nan_at_ignored_position_gets_zero_grad():
    logits = RNG.standard_normal((3, 4))
    logits[1] = np.nan
    loss, grad = nn.softmax_cross_entropy(logits, np.array([0, 0, 2]), mask=[True, False, True])
    ref_loss, ref_grad = _torch_ce(logits[[0, 2]], np.array([0, 2]))
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(grad[[0, 2]], ref_grad, rtol=1e-12)
    assert not grad[1].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_on_threads_matches_torch_and_one_thread(dtype):
    # The char-LM's shape (2048 rows of 100 classes): enough work for the fused kernel to use
    # two threads, each row computed alike on any thread count.
    logits = (2 * RNG.standard_normal((32, 64, 100))).astype(dtype)
    targets = RNG.integers(0, 100, size=(32, 64))
    targets[3, :10] = -100
    one = nn.softmax_cross_entropy(logits, targets, ignore_index=-100, num_threads=1)
    two = nn.softmax_cross_entropy(logits, targets, ignore_index=-100, num_threads=2)
    assert one[0] == two[0] and np.array_equal(one[1], two[1])
    ref_loss, ref_grad = _torch_ce(logits.astype(np.float64), targets)
    np.testing.assert_allclose(one[0], ref_loss, **_tol(dtype))
    np.testing.assert_allclose(one[1], ref_grad, **_tol(dtype))
    assert one[1].dtype == dtype and not one[1][3, :10].any()


def test_cross_entropy_nan_logits_at_counted_position_give_nan():
    logits = RNG.standard_normal((3, 4)).astype(np.float32)
    logits[1, 2] = np.nan
    loss, grad = nn.softmax_cross_entropy(logits, np.array([0, 1, 2]))
    ref_loss, ref_grad = _torch_ce(logits, np.array([0, 1, 2]))
    assert np.isnan(loss) and np.isnan(ref_loss)
    assert np.isnan(grad[1]).all() and np.isnan(ref_grad[1]).all()
    np.testing.assert_allclose(grad[[0, 2]], ref_grad[[0, 2]], **_tol(np.float32))


def test_cross_entropy_float16_takes_numpy_path():
    logits = RNG.standard_normal((5, 6))
    targets = RNG.integers(0, 6, size=5)
    loss, grad = nn.softmax_cross_entropy(logits.astype(np.float16), targets)
    ref_loss, ref_grad = _torch_ce(logits.astype(np.float16).astype(np.float64), targets)
    assert grad.dtype == np.float16
    np.testing.assert_allclose(loss, ref_loss, rtol=2e-3)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-2, atol=1e-3)


def test_cross_entropy_kernel_binding_errors():
    from pyrnn import _core
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="expected < 4"):
        _core.softmax_xent(x, np.array([0, 4, 1]), 1.0, 1)
    with pytest.raises(TypeError, match="int64"):
        _core.softmax_xent(x, np.array([0, 1, 1], np.int32), 1.0, 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.softmax_xent(x.astype(np.float16), np.array([0, 1, 1]), 1.0, 1)
    with pytest.raises(ValueError, match="2-D"):
        _core.softmax_xent(np.zeros(4, np.float32), np.array([0]), 1.0, 1)
    with pytest.raises(ValueError, match="num_threads"):
        _core.softmax_xent(x, np.array([0, 1, 1]), 1.0, 0)
    with pytest.raises(ValueError, match="num_threads"):
        nn.softmax_cross_entropy(x, np.array([0, 1, 1]), num_threads=0)


def test_cross_entropy_errors():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"targets: expected shape \[3\]"):
        nn.softmax_cross_entropy(logits, np.zeros((3, 1), int))
    with pytest.raises(TypeError, match="integer"):
        nn.softmax_cross_entropy(logits, np.zeros(3))
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        nn.softmax_cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(IndexError):
        nn.softmax_cross_entropy(logits, np.array([0, -100, 1]))  # not ignored
    with pytest.raises(ValueError, match="reduction"):
        nn.softmax_cross_entropy(logits, np.zeros(3, int), reduction="none")
    with pytest.raises(ValueError, match="mask"):
        nn.softmax_cross_entropy(logits, np.zeros(3, int), mask=np.ones(2, bool))


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_softmax_and_log_softmax_match_torch(scale):
    x = RNG.standard_normal((3, 4, 6)) * scale
    for axis in (-1, 0, 1):
        np.testing.assert_allclose(nn.log_softmax(x, axis=axis),
                                   F.log_softmax(torch.from_numpy(x), dim=axis).numpy(),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(nn.softmax(x, axis=axis),
                                   F.softmax(torch.from_numpy(x), dim=axis).numpy(),
                                   rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(nn.softmax(x).sum(-1), 1.0, rtol=1e-12)
    assert nn.log_softmax(np.array([1, 2, 3])).dtype == np.float64
