"""pyrnn.save / pyrnn.load: .npz round trips without pickle."""
import io
import os
import zipfile

import numpy as np
import pytest
import torch

from pyrnn import nn
from pyrnn.serialization import load, save


def _sample():
    rng = np.random.default_rng(0)
    return {
        "weight": rng.standard_normal((3, 4)).astype(np.float32),
        "bias": rng.standard_normal(4),
        "steps": np.array(7, dtype=np.int64),
        "flags": np.array([True, False]),
        "empty": np.zeros((0, 5), dtype=np.float16),
        "layer.0/weight": np.arange(6, dtype=np.int32).reshape(2, 3),
        "file": np.ones(2),          # np.savez would reject these two names
        "allow_pickle": np.zeros(1),
    }


def _assert_same_arrays(got, expected):
    assert set(got) == set(expected)
    for k, v in expected.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        np.testing.assert_array_equal(got[k], v, err_msg=k)


@pytest.mark.parametrize("compress", [False, True])
def test_dict_round_trip_preserves_dtype_and_shape(tmp_path, compress):
    written = save(tmp_path / "state.npz", _sample(), compress=compress)
    assert written == str(tmp_path / "state.npz")
    _assert_same_arrays(load(written), _sample())
    # what we write is a plain .npz that numpy itself reads without pickle
    with np.load(written, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["weight"], _sample()["weight"])


def test_suffix_added_and_no_temporary_files_left(tmp_path):
    assert save(str(tmp_path / "ckpt"), {"a": np.ones(3)}) == str(tmp_path / "ckpt.npz")
    save(tmp_path / "ckpt", {"a": np.zeros(3)})  # overwrite in place
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    np.testing.assert_array_equal(load(tmp_path / "ckpt.npz")["a"], np.zeros(3))


def test_file_object_round_trip():
    buffer = io.BytesIO()
    assert save(buffer, _sample()) is buffer
    buffer.seek(0)
    _assert_same_arrays(load(buffer), _sample())


def test_scalars_and_lists_become_arrays(tmp_path):
    path = save(tmp_path / "misc", {"lr": 0.1, "betas": (0.9, 0.999), "nesterov": True})
    got = load(path)
    assert got["lr"].shape == () and float(got["lr"]) == 0.1
    np.testing.assert_array_equal(got["betas"], [0.9, 0.999])
    assert bool(got["nesterov"]) is True


def test_never_pickles(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        save(tmp_path / "bad", {"obj": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(TypeError, match="pickle"):
        save(tmp_path / "bad", {"ragged": np.array([[1], [1, 2]], dtype=object)})
    assert not list(tmp_path.iterdir())
    # a file that does contain pickled data is refused on load
    np.savez(tmp_path / "pickled.npz", obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load(tmp_path / "pickled.npz")


def test_bad_inputs(tmp_path):
    with pytest.raises(TypeError, match="Module or a dict"):
        save(tmp_path / "x", [np.ones(2)])
    with pytest.raises(TypeError, match="non-empty strings"):
        save(tmp_path / "x", {1: np.ones(2)})
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match="not an .npz"):
        load(tmp_path / "single.npy")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")
    assert zipfile.is_zipfile(save(tmp_path / "ok", {"a": np.ones(1)}))


def test_module_round_trip(tmp_path):
    lin = nn.Linear(5, 3, dtype=np.float64, seed=0)
    path = save(tmp_path / "lin", lin)
    _assert_same_arrays(load(path), lin.state_dict())
    fresh = nn.Linear(5, 3, dtype=np.float64, seed=1)
    fresh.load_state_dict(load(path))
    x = np.random.default_rng(2).standard_normal((4, 5))
    np.testing.assert_array_equal(fresh(x), lin(x))


def test_torch_state_dict_round_trip(tmp_path):
    ref = torch.nn.Linear(4, 2)
    save(tmp_path / "torch", {k: v.detach().numpy() for k, v in ref.state_dict().items()})
    lin = nn.Linear(4, 2)
    lin.load_state_dict(load(tmp_path / "torch.npz"))
    x = np.random.default_rng(3).standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_allclose(lin(x), ref(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-6, atol=1e-6)
