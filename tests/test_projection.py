"""LSTM with projection (``w_hr`` / ``proj_size``) against ``torch.nn.LSTM(proj_size=P)``.

Functional kernels: outputs, final states and every gradient (w_hr included) from torch autograd
in float64, forward and reverse, with and without lengths, bias and initial state, one and two
threads; layer shapes and initialisation; bad input gets clear errors. Elsewhere: layers against
torch (test_layers.py), gradcheck and the coupled/peephole combinations (test_variants.py).
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pyrnn  # noqa: E402
from pyrnn import _core  # noqa: E402
from pyrnn import functional as F  # noqa: E402
from torch_oracle import compare, make_case, run_functional, shape_id, torch_run  # noqa: E402

# (T, B, I, H, P): P = 1, P not a multiple of 8, H*4 not a multiple of the GEMM panel width.
SHAPES = [(1, 1, 1, 2, 1), (5, 3, 4, 6, 2), (4, 5, 3, 33, 7), (3, 2, 7, 9, 8)]


def _id(s):
    return shape_id(s[:4]) + f"P{s[4]}"


@pytest.mark.parametrize("shape", SHAPES, ids=_id)
@pytest.mark.parametrize("mode", ["fwd", "rev", "fwd_lengths", "rev_lengths", "noh0_nobias"])
def test_float64_against_torch(shape, mode):
    T, B, I, H, P = shape
    case = make_case("lstm", T, B, I, H, proj=P, dtype=np.float64, seed=sum(shape),
                     lengths="lengths" in mode, state="noh0" not in mode,
                     bias="nobias" not in mode)
    rev = mode.startswith("rev")
    got = run_functional(F, case, reverse=rev)
    assert got["y"].shape == (T, B, P) and got["h_n"].shape == (B, P)
    assert got["c_n"].shape == (B, H) and got["dw_hr"].shape == (P, H)
    compare(got, torch_run(case, reverse=rev), np.float64, tag="lstm_proj")


@pytest.mark.parametrize("mode", ["fwd", "rev_lengths"])
def test_float32_against_torch(mode):
    case = make_case("lstm", 6, 4, 5, 40, proj=12, dtype=np.float32, seed=9,
                     lengths="lengths" in mode)
    rev = mode.startswith("rev")
    compare(run_functional(F, case, reverse=rev), torch_run(case, reverse=rev), np.float32,
            tag="lstm_proj")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_threads_agree_and_match_torch(dtype):
    """Big enough that two threads each own a block of the H cell units and of the P state
    units; P = 100 splits unevenly. Results are close to one thread's and repeat bitwise."""
    case = make_case("lstm", 4, 6, 5, 300, proj=100, dtype=dtype, seed=3, lengths=True)
    one = run_functional(F, case, reverse=True, num_threads=1)
    two = run_functional(F, case, reverse=True, num_threads=2)
    again = run_functional(F, case, reverse=True, num_threads=2)
    close = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for k in one:
        np.testing.assert_allclose(one[k], two[k], err_msg=k, **close)
        np.testing.assert_array_equal(again[k], two[k], err_msg=k)
    compare(two, torch_run(case, reverse=True), dtype, tag="lstm_proj")


def test_inference_matches_training_forward():
    case = make_case("lstm", 5, 3, 4, 10, proj=3, dtype=np.float64, seed=2, lengths=True)
    p = case["params"]
    args = (case["x"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], (case["h0"], case["c0"]))
    y0, (h0, c0), cache0 = F.lstm_forward(*args, w_hr=p["w_hr"], lengths=case["lengths"])
    y1, (h1, c1), cache1 = F.lstm_forward(*args, w_hr=p["w_hr"], lengths=case["lengths"],
                                          training=True)
    assert cache0 is None and "P=3" in repr(cache1)
    for a, b in ((y0, y1), (h0, h1), (c0, c1)):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- layers
# (float64 gradcheck: tests/test_variants.py::test_gradcheck_projection; stacked bidirectional
# layers against torch with a loaded state_dict: tests/test_layers.py::
# test_lstm_projection_matches_torch)


def test_layer_shapes_repr_and_init():
    layer = pyrnn.LSTM(3, 8, num_layers=2, bidirectional=True, proj_size=3, seed=0)
    assert "proj_size=3" in repr(layer) and layer.output_size == 3
    assert layer.params["weight_hr_l1_reverse"].shape == (3, 8)
    assert layer.params["weight_hh_l0"].shape == (32, 3)
    assert layer.params["weight_ih_l1"].shape == (32, 6)  # D*P inputs from the layer below
    k = 1 / np.sqrt(8)  # every parameter U(-k, k), k = 1/sqrt(hidden_size), as torch
    assert all(np.abs(v).max() <= k for v in layer.params.values())
    layer.eval()
    y, (h, c) = layer(np.ones((4, 2, 3), np.float32))
    assert y.shape == (4, 2, 6) and h.shape == (4, 2, 3) and c.shape == (4, 2, 8)


# --------------------------------------------------------------------------- bad input

def test_bad_input_raises():
    case = make_case("lstm", 2, 2, 3, 4, proj=2, seed=0)
    p = case["params"]
    x, w_ih, w_hh, w_hr = case["x"], p["w_ih"], p["w_hh"], p["w_hr"]
    with pytest.raises(ValueError, match=r"w_hh: expected shape \(16, 2\)"):
        F.lstm_forward(x, w_ih, np.zeros((16, 4)), w_hr=w_hr)
    with pytest.raises(ValueError, match=r"w_hr: expected shape \(P, H\)"):
        F.lstm_forward(x, w_ih, w_hh, w_hr=np.zeros(4))
    with pytest.raises(ValueError, match=r"w_hr: expected shape \(P, H\)"):
        F.lstm_forward(x, w_ih, np.zeros((16, 0)), w_hr=np.zeros((0, 4)))
    with pytest.raises(TypeError, match="w_hr: dtype float32 does not match"):
        F.lstm_forward(x, w_ih, w_hh, w_hr=w_hr.astype(np.float32))
    with pytest.raises(ValueError, match=r"h0: expected shape \(2, 2\) = \(B, P\)"):
        F.lstm_forward(x, w_ih, w_hh, state=(np.zeros((2, 4)), None), w_hr=w_hr)
    with pytest.raises(ValueError, match="'cuda' has no kernel for the LSTM projection"):
        F.lstm_forward(x, w_ih, w_hh, w_hr=w_hr, device="cuda")
    _, _, cache = F.lstm_forward(x, w_ih, w_hh, w_hr=w_hr, training=True)
    with pytest.raises(ValueError, match=r"dy: expected shape \(2, 2, 2\) = \(T, B, P\)"):
        F.lstm_backward(cache, np.zeros((2, 2, 4)))
    # the raw kernels: only LSTM cells take a projection, and proj_in needs one
    args = (x, w_ih[:12], w_hh[:12], None, None, None, None, None, False, False, 1)
    with pytest.raises(ValueError, match="only the LSTM cells take a projection"):
        _core.forward(1, *args, None, w_hr)
    with pytest.raises(ValueError, match=r"argument 'w_hh': expected shape \(16, 3\)"):
        _core.forward(0, x, w_ih, w_hh, None, None, None, None, None, False, False, 1, None,
                      np.zeros((3, 4)))  # P = 3 from w_hr, but w_hh has 2 columns
    with pytest.raises(ValueError, match="argument 'w_hr': expected P >= 1"):
        _core.forward(0, x, w_ih, w_hh, None, None, None, None, None, False, False, 1, None,
                      np.zeros((0, 4)))
    with pytest.raises(ValueError, match="proj_in"):
        _core.backward(0, x, w_ih, np.zeros((16, 4)), False, None, False, np.zeros((2, 2, 16)),
                       np.zeros((2, 2, 4)), np.zeros((2, 2, 4)), None, None, None, 1,
                       proj_in=np.zeros((2, 2, 4)))
    # layers: 0 < proj_size < hidden_size as torch, CPU only
    with pytest.raises(ValueError, match="proj_size: expected 0 <= proj_size < hidden_size"):
        pyrnn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="proj_size"):
        pyrnn.LSTM(3, 4, proj_size=-1)
    with pytest.raises(TypeError, match="proj_size"):
        pyrnn.LSTM(3, 4, proj_size=1.5)
    with pytest.raises(ValueError, match="no CUDA kernel for the LSTM projection"):
        pyrnn.LSTM(3, 4, proj_size=2).to("cuda")
    layer = pyrnn.LSTM(3, 4, proj_size=2, dtype=np.float64)
    with pytest.raises(ValueError, match=r"expected shape \(1, 2, 2\).*proj_size"):
        layer(x, (np.zeros((1, 2, 4)), np.zeros((1, 2, 4))))
