"""pyrnn.clip against torch.nn.utils.clip_grad_norm_ / clip_grad_value_."""
import math

import numpy as np
import pytest
import torch

from pyrnn.clip import clip_grad_norm, clip_grad_value

SHAPES = [(4, 3), (3,), (), (2, 0), (5, 2, 2)]


def _grads(dtype, scale=1.0, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return {f"g{i}": np.array(scale * rng.standard_normal(shape), dtype=dtype)
            for i, shape in enumerate(shapes)}


def _torch_params(grads):
    params = []
    for g in grads.values():
        p = torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
        p.grad = torch.from_numpy(g.copy())
        params.append(p)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, 0.5, math.inf, -math.inf, 0.0])
@pytest.mark.parametrize("max_norm", [0.1, 1.0, 1e6])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    # torch refuses +-inf norms of empty tensors; pyrnn allows them (tested below)
    shapes = [s for s in SHAPES if 0 not in s] if math.isinf(norm_type) else SHAPES
    grads = _grads(dtype, shapes=shapes)
    params = _torch_params(grads)
    ref_total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type).item()
    total = clip_grad_norm(grads, max_norm, norm_type=norm_type)
    tol = dict(rtol=1e-12, atol=0) if dtype == np.float64 else dict(rtol=2e-6, atol=1e-7)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, ref_total, **tol)
    for g, p in zip(grads.values(), params):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, p.grad.numpy(), **tol)


@pytest.mark.parametrize("norm_type", [math.inf, -math.inf])
def test_clip_grad_norm_inf_norms_ignore_empty_grads(norm_type):
    grads = _grads(np.float64, scale=3.0)
    total = clip_grad_norm(grads, 1.0, norm_type=norm_type)
    nonempty = {k: v for k, v in _grads(np.float64, scale=3.0).items() if v.size}
    params = _torch_params(nonempty)
    assert total == torch.nn.utils.clip_grad_norm_(params, 1.0, norm_type=norm_type).item()
    for p in params:
        assert any(np.array_equal(g, p.grad.numpy()) for g in grads.values())
    assert clip_grad_norm([np.zeros((0, 3))], 1.0, norm_type=math.inf) == 0.0


def test_clip_grad_norm_clips_to_max_norm_and_leaves_small_grads_alone():
    grads = _grads(np.float64, scale=10.0)
    total = clip_grad_norm(grads, 1.0)
    new_total = math.sqrt(sum(float((g ** 2).sum()) for g in grads.values()))
    assert total > 10 and abs(new_total - 1.0) < 1e-5
    small = _grads(np.float64, scale=1e-3)
    before = {k: v.copy() for k, v in small.items()}
    clip_grad_norm(small, 1.0)
    for k in small:
        np.testing.assert_array_equal(small[k], before[k])


def test_clip_grad_norm_float32_large_arrays_accurate():
    """Float32 gradients of millions of elements (squares summed in double on the kernels'
    threads): the total norm within 1e-6 of the exact float64 norm (torch's own float32 norm is
    1e-4 off on these), and every element scaled by max_norm / (total + 1e-6)."""
    rng = np.random.default_rng(5)
    n = 3_000_000
    grads = {"big": (rng.standard_normal(n) * rng.uniform(0, 3, n)).astype(np.float32),
             "mid": rng.standard_normal((300, 301)).astype(np.float32),
             "odd": rng.standard_normal(32769).astype(np.float32)[::2]}  # not contiguous
    before = {k: g.astype(np.float64) for k, g in grads.items()}
    exact = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in before.values()))
    total = clip_grad_norm(grads, 1.0)
    assert abs(total - exact) / exact < 1e-6
    for k, g in grads.items():
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, before[k] / (exact + 1e-6), rtol=2e-6, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_clip_grad_norm_same_on_any_thread_count(dtype):
    # Blocks of squares summed in a fixed order: one and two threads give the same bits.
    rng = np.random.default_rng(6)
    grads = [rng.standard_normal(n).astype(dtype) for n in (1_000_003, 70_000, 5)]
    totals = [clip_grad_norm([g.copy() for g in grads], 0.5, num_threads=t) for t in (1, 2)]
    exact = math.sqrt(sum(float(np.dot(g.astype(np.float64), g.astype(np.float64)))
                          for g in grads))
    assert totals[0] == totals[1]
    assert abs(totals[0] - exact) / exact < 1e-12
    with pytest.raises(ValueError, match="num_threads"):
        clip_grad_norm(grads, 0.5, num_threads=0)


def test_sum_squares_binding_errors():
    from pyrnn import _core
    with pytest.raises(TypeError, match="numpy array"):
        _core.sum_squares([1.0, 2.0], 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.sum_squares(np.ones(3, np.int64), 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.sum_squares(np.ones((4, 4))[:, ::2], 1)
    with pytest.raises(ValueError, match="num_threads"):
        _core.sum_squares(np.ones(3), 0)
    assert _core.sum_squares(np.ones(0, np.float32), 2) == 0.0


def test_clip_grad_norm_accepts_list_single_array_and_none():
    grads = _grads(np.float64, scale=5.0)
    as_list = [g.copy() for g in grads.values()] + [None]
    total_dict = clip_grad_norm(grads, 0.5)
    total_list = clip_grad_norm(as_list, 0.5)
    assert total_dict == total_list
    for a, b in zip(grads.values(), as_list):
        np.testing.assert_array_equal(a, b)
    single = np.array([3.0, 4.0])
    assert clip_grad_norm(single, 1.0) == 5.0
    ref = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    ref.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    torch.nn.utils.clip_grad_norm_(ref, 1.0)
    np.testing.assert_allclose(single, ref.grad.numpy(), rtol=1e-15)
    assert clip_grad_norm({}, 1.0) == 0.0 and clip_grad_norm([None], 1.0) == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_nonfinite(bad):
    grads = _grads(np.float64)
    grads["g0"][1, 1] = bad
    before = {k: v.copy() for k, v in grads.items()}
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])
    params = _torch_params(grads)
    ref_total = torch.nn.utils.clip_grad_norm_(params, 1.0).item()
    total = clip_grad_norm(grads, 1.0)
    np.testing.assert_equal(total, ref_total)
    for g, p in zip(grads.values(), params):
        np.testing.assert_array_equal(g, p.grad.numpy())  # NaN where torch has NaN


def test_clip_grad_norm_rejects_non_arrays():
    with pytest.raises(TypeError, match="floating-point NumPy arrays"):
        clip_grad_norm([[1.0, 2.0]], 1.0)
    with pytest.raises(TypeError, match="floating-point NumPy arrays"):
        clip_grad_norm({"a": np.array([1, 2])}, 1.0)


@pytest.mark.parametrize("clip_value", [0.0, 0.3, 2.0])
def test_clip_grad_value_matches_torch(clip_value):
    grads = _grads(np.float32, scale=2.0)
    grads["g0"][0, 0] = np.nan
    params = _torch_params(grads)
    torch.nn.utils.clip_grad_value_(params, clip_value)
    assert clip_grad_value(grads, clip_value) is None
    for g, p in zip(grads.values(), params):
        np.testing.assert_array_equal(g, p.grad.numpy())
        assert np.nanmax(np.abs(g), initial=0) <= clip_value
