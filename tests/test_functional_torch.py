"""The compiled kernels (pyrnn.functional) against torch.nn.LSTM/GRU/RNN autograd.

Outputs, final states and every gradient (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh) are compared
with random upstream gradients on y and on the final states:
``loss = (y*dy).sum() + (h_n*dh).sum() [+ (c_n*dc).sum()]``.
torch runs in float64 on the same (possibly float32-rounded) inputs, so float32 comparisons
measure the kernels' own rounding error. Also: agreement with pyrnn.reference, thread-count
independence and run-to-run determinism.
"""
import numpy as np
import pytest

pytest.importorskip("torch")

import pyrnn.reference as ref  # noqa: E402
from pyrnn import functional as F  # noqa: E402
from torch_oracle import (CELL_IDS, CELLS, compare, forward, make_case,  # noqa: E402
                          run_functional, shape_id, torch_run)

CELL_PARAMS = pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)


def _tag(cell, nl):
    return cell if nl is None else f"{cell}_{nl}"


# --------------------------------------------------------------------------- float64, full grid

SHAPES64 = [  # T, B, I, H
    (1, 1, 1, 1),
    (1, 3, 2, 3),
    (5, 1, 3, 1),
    (4, 3, 5, 3),
    (6, 4, 3, 33),
    (3, 33, 7, 5),
]


@CELL_PARAMS
@pytest.mark.parametrize("shape", SHAPES64, ids=shape_id)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("state", [True, False], ids=["h0", "noh0"])
def test_float64_against_torch(cell, nl, shape, bias, reverse, lengths, state):
    case = make_case(cell, *shape, bias=bias, dtype=np.float64, seed=sum(shape) + 17 * bias,
                     lengths=lengths, state=state)
    nt = 2 if (lengths and state) else 1  # a quarter of the grid with two OpenMP threads
    compare(run_functional(F, case, nl, reverse, num_threads=nt), torch_run(case, nl, reverse),
            np.float64, tag=_tag(cell, nl))


# --------------------------------------------------------------------------- float32

SHAPES32 = [(1, 1, 1, 1), (5, 1, 3, 1), (4, 3, 5, 3), (7, 5, 4, 33), (3, 33, 7, 5)]
VARIANTS32 = {  # id -> (bias, reverse, lengths, state)
    "fwd": (True, False, False, True),
    "rev": (True, True, False, True),
    "fwd_lengths": (True, False, True, True),
    "rev_lengths_noh0": (True, True, True, False),
    "nobias": (False, False, False, True),
}


@CELL_PARAMS
@pytest.mark.parametrize("shape", SHAPES32, ids=shape_id)
@pytest.mark.parametrize("variant", list(VARIANTS32))
def test_float32_against_torch(cell, nl, shape, variant):
    bias, reverse, lengths, state = VARIANTS32[variant]
    case = make_case(cell, *shape, bias=bias, dtype=np.float32, seed=7 + sum(shape),
                     lengths=lengths, state=state)
    nt = 2 if variant in ("rev", "rev_lengths_noh0") else 1
    compare(run_functional(F, case, nl, reverse, num_threads=nt), torch_run(case, nl, reverse),
            np.float32, tag=_tag(cell, nl))


# --------------------------------------------------------------------------- H = 257 (a few only)

@CELL_PARAMS
@pytest.mark.parametrize("dtype,shape,reverse,lengths", [
    (np.float64, (3, 4, 5, 257), False, False),
    (np.float32, (2, 5, 257, 257), True, True),
], ids=["f64_fwd", "f32_rev_lengths"])
def test_wide_hidden_against_torch(cell, nl, dtype, shape, reverse, lengths):
    case = make_case(cell, *shape, dtype=dtype, seed=257, lengths=lengths)
    tol = None
    if dtype == np.float32:
        # Sums over 257..1028 products: a slightly larger absolute floor than small shapes.
        tol = dict(rtol=1e-4, atol=1e-4)
    compare(run_functional(F, case, nl, reverse, num_threads=2), torch_run(case, nl, reverse),
            dtype, tag=_tag(cell, nl), tol=tol)


# --------------------------------------------------------------------------- many rows

@CELL_PARAMS
@pytest.mark.parametrize("reverse,lengths,num_threads", [(False, False, 1), (True, True, 2)],
                         ids=["fwd_1thr", "rev_lengths_2thr"])
def test_weight_gradients_over_several_row_chunks(cell, nl, reverse, lengths, num_threads):
    # T*B = 1120 rows: more than one chunk of the weight gradients' transposed gate gradients
    # (at most 1024 rows each, fewer where they fit L2), whose products add into dW in turn.
    case = make_case(cell, 70, 16, 5, 9, dtype=np.float64, seed=1120, lengths=lengths)
    compare(run_functional(F, case, nl, reverse, num_threads=num_threads),
            torch_run(case, nl, reverse), np.float64, tag=_tag(cell, nl))


@CELL_PARAMS
@pytest.mark.parametrize("shape", [(5, 3, 4000, 64), (4, 3, 40, 600)], ids=shape_id)
@pytest.mark.parametrize("num_threads", [1, 2])
def test_weights_packed_in_several_row_groups(cell, nl, shape, num_threads):
    # Weights are packed a group of rows at a time, each group's rows within half of L2: w_ih
    # rows of 4000 doubles, or w_hh packed for the backward G*600 deep, make several groups
    # (the last one partial) on any L2 of a few MiB.
    case = make_case(cell, *shape, dtype=np.float64, seed=4000)
    compare(run_functional(F, case, nl, False, num_threads=num_threads),
            torch_run(case, nl, False), np.float64, tag=_tag(cell, nl))


# --------------------------------------------------------------------------- vs pyrnn.reference

@CELL_PARAMS
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (5, 3, 4, 33), (4, 6, 3, 5)], ids=shape_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("reverse,lengths", [(False, False), (True, True)],
                         ids=["fwd", "rev_lengths"])
def test_matches_reference(cell, nl, shape, dtype, reverse, lengths):
    case = make_case(cell, *shape, dtype=dtype, seed=5, lengths=lengths)
    want = run_functional(ref, case, nl, reverse)
    got = run_functional(F, case, nl, reverse, num_threads=1)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=5e-5)
    compare(got, want, dtype, tol=tol)


# --------------------------------------------------------------------------- threads, determinism

THREAD_SHAPES = [(4, 3, 5, 3), (6, 33, 4, 33), (5, 16, 7, 257)]
# Tiny GEMMs (G*H + T*B + I < 20) take Eigen's coefficient-based product path.
TINY_SHAPES = [(3, 2, 4, 5), (3, 2, 5, 2)]


@CELL_PARAMS
@pytest.mark.parametrize("shape", THREAD_SHAPES, ids=shape_id)
@pytest.mark.parametrize("dtype,num_threads", [(np.float64, 2), (np.float32, 2), (np.float64, 3),
                                               (np.float32, None)],
                         ids=["f64_t2", "f32_t2", "f64_t3", "f32_tdefault"])
def test_num_threads_close_to_single_thread(cell, nl, shape, dtype, num_threads):
    """Results do not depend on the thread count beyond rounding.

    They are NOT bitwise equal in general (measured: for most shapes, both dtypes, results of
    num_threads=1 and 2 differ in the last bits), so only closeness is asserted.
    """
    case = make_case(cell, *shape, dtype=dtype, seed=21, lengths=True)
    one = run_functional(F, case, nl, reverse=True, num_threads=1)
    many = run_functional(F, case, nl, reverse=True, num_threads=num_threads)
    tol = dict(rtol=1e-11, atol=1e-13) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    compare(many, one, dtype, tol=tol)


# The product paths chosen by batch size and step count (csrc/pyrnn/recurrent.h,
# prepack_forward/prepack_backward/kBackwardDotRows; gemm.h, use_dots): single steps use the
# weights unpacked; the forward with B <= 2 runs the recurrent products on the weights in
# place at any T (float32: as dot products, with the exceptions in PATH_SHAPES32; the float32
# backward with B <= 2 as dot products on a transposed copy of weights below 1 MiB, packed
# from 1 MiB on); B = 3, 6 and 11 leave a partial panel of rows that the packed kernel pads
# (packed_gemm.h); H = 600 is large enough for two threads per step even at B = 1 (LSTM,
# GRU) and gives three depth blocks.
PATH_SHAPES = [(1, 1, 7, 600), (1, 2, 7, 600), (1, 6, 7, 600), (1, 11, 7, 600),
               (6, 1, 5, 600), (5, 2, 5, 600), (4, 3, 5, 600)]


# float32 row-dot kernel of the AVX2 build (csrc/pyrnn/dots_avx2.h, gemm.h use_dots): every
# row count it switches on (1, 2, 3, 4; from 5 on tiles of 3 rows with 1 or 2 left over, and
# prefetching), single steps up to 32 rows (33 goes to Eigen's GEMM), depths with and without
# a partial group of 8 (5, 7, 9, 13, 17, 37, 600) and gate-row counts that leave a remainder
# for its blocks of 8, 4 and 3 weight rows and for the 8 x 8 transposes (G*37, 37).
# Multi-step calls read w_ih in place while all of x is one chunk (T*B <= 64: 26 rows, 64
# rows through Eigen with small weights, 40 rows as dot tiles with weights of 2^20 elements
# and more) and pack it beyond (66 rows). Two rows over several steps meet the packed
# recurrent weights (dots::panel_rows) when the weights are small (H=37) or the steps many
# (34 steps, H=300: two depth blocks), and run as dot products otherwise (20 steps, H=512).
# With 10 MiB of weights or more (H=936: 10.03 MiB for the GRU, 13.4 MiB for the LSTM; the
# Elman RNN stays on dot products there; four depth blocks) one row meets packed weights over
# 32 steps or more (34), and two rows from 16 steps on when one thread has all the weights
# (20 steps: packed on one thread, dot products on two).
PATH_SHAPES32 = [(1, 1, 7, 37), (1, 2, 9, 37), (1, 3, 13, 37), (1, 4, 7, 37), (1, 5, 17, 37),
                 (1, 7, 7, 37), (1, 8, 7, 37), (1, 9, 7, 37), (1, 33, 7, 37), (6, 1, 17, 600),
                 (5, 2, 5, 37), (5, 3, 5, 600), (13, 2, 9, 37), (32, 2, 5, 37), (33, 2, 5, 37),
                 (20, 2, 2048, 512), (34, 2, 5, 300), (34, 1, 5, 936),
                 (20, 2, 5, 936)]


PATH_CASES = ([(np.float64, 31, shape) for shape in PATH_SHAPES] +
              [(np.float32, 32, shape) for shape in PATH_SHAPES32])


@CELL_PARAMS
@pytest.mark.parametrize("dtype,seed,shape", PATH_CASES,
                         ids=[f"{np.dtype(d).name}-{shape_id(s)}" for d, _, s in PATH_CASES])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_small_batch_and_single_step_paths(cell, nl, dtype, seed, shape, num_threads):
    case = make_case(cell, *shape, dtype=dtype, seed=seed, lengths=True)
    got = run_functional(F, case, nl, reverse=True, num_threads=num_threads)
    compare(got, torch_run(case, nl, reverse=True), dtype, tag=_tag(cell, nl))


@CELL_PARAMS
@pytest.mark.parametrize("shape", TINY_SHAPES + THREAD_SHAPES, ids=shape_id)
@pytest.mark.parametrize("dtype,num_threads", [(np.float64, 1), (np.float32, 1), (np.float64, 2)],
                         ids=["f64_t1", "f32_t1", "f64_t2"])
def test_repeated_calls_bitwise_identical(cell, nl, shape, dtype, num_threads):
    """Identical calls give identical bits, whatever the state of the heap.

    Earlier results are kept alive (as a caller would) and a few arrays of odd sizes are
    allocated between calls, so internal buffers land at different addresses each time.
    """
    case = make_case(cell, *shape, dtype=dtype, seed=4, lengths=True)
    results = []
    for i in range(8 if num_threads == 1 else 4):
        results.append(run_functional(F, case, nl, num_threads=num_threads))
        results.append([np.empty(3 + 5 * i + 7 * j) for j in range(3)])  # shift the heap
    first = results[0]
    for again in results[2::2]:
        for k in first:
            np.testing.assert_array_equal(again[k], first[k], err_msg=k)


def _at_offset(a, offset):
    """A C-contiguous copy of ``a`` starting ``offset`` bytes past a 64-byte boundary."""
    if a is None:
        return None
    buf = np.empty(a.nbytes + 128, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@CELL_PARAMS
@pytest.mark.parametrize("shape", TINY_SHAPES + [(6, 33, 4, 33)], ids=shape_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_results_independent_of_input_alignment(cell, nl, shape, dtype):
    """The same values at different addresses (offsets 0..56 bytes from a 64-byte boundary)
    give bitwise identical results: nothing depends on where NumPy put the arrays."""
    case = make_case(cell, *shape, dtype=dtype, seed=6, lengths=True)
    want = run_functional(F, case, nl, num_threads=1)
    step = np.dtype(dtype).itemsize
    for offset in range(step, 64, step):
        moved = dict(case, params={k: _at_offset(v, offset) for k, v in case["params"].items()})
        for k in ("x", "h0", "c0", "dy", "dh", "dc"):
            moved[k] = _at_offset(case[k], offset)
        got = run_functional(F, moved, nl, num_threads=1)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"{k}, offset {offset}")


@CELL_PARAMS
def test_inference_forward_equals_training_forward(cell, nl):
    """training=False returns cache None and the same y and final state as training=True."""
    case = make_case(cell, 5, 4, 3, 6, seed=8, lengths=True)
    y0, s0, c0 = forward(F, case, nl, training=False, num_threads=1)
    y1, s1, c1 = forward(F, case, nl, training=True, num_threads=1)
    assert c0 is None and c1 is not None
    np.testing.assert_array_equal(y0, y1)
    if cell != "lstm":
        s0, s1 = (s0,), (s1,)
    for a, b in zip(s0, s1):
        np.testing.assert_array_equal(a, b)
