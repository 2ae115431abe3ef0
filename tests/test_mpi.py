"""pyrnn.distributed and the char-LM's data-parallel path, on 2 MPI ranks.

Run as ``mpiexec -n 2 pytest -q tests/test_mpi.py`` (.ci/run does, after installing
the 'mpi' extra); a plain pytest run skips these tests and says why. Every rank runs every test
in the same order; each test does its collectives before asserting, so a failing rank never
leaves the other waiting in a collective.

- broadcast_params: every rank ends with root's arrays (root 0 and 1, mixed dtypes);
- allreduce_grads: the mean (and with average=False the sum) of every rank's arrays, in place;
  ranks holding different arrays all get a ValueError;
- rank_seed differs between ranks and is fixed by the seed; threads_per_rank never
  oversubscribes the node, and the char-LM caps --threads to it;
- the char-LM: 2 ranks with half the streams each end with the parameters (float64: to 1e-9;
  float32 through train(): to float32 tolerance) and the validation loss of one process with
  all the streams, with clipping active (so it must act on the global norm after the allreduce).
"""
import copy
import os

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="needs the 'mpi' extra: pip install '.[mpi]'")

from pyrnn import distributed as dist  # noqa: E402

if dist.launched_size() < 2:
    pytest.skip("needs 2 MPI ranks: mpiexec -n 2 pytest tests/test_mpi.py",
                allow_module_level=True)

from pyrnn.charlm.model import CharLM  # noqa: E402
from pyrnn.charlm.training import TrainConfig, _rank_columns, train, train_step  # noqa: E402
from pyrnn.optim import Adam  # noqa: E402

MPI = dist.mpi()
COMM = MPI.COMM_WORLD
RANK, SIZE = COMM.Get_rank(), COMM.Get_size()


def _arrays(value):
    return {"w": np.full((3, 4), value, np.float32), "b": np.full(5, value + 0.5, np.float64),
            "v": np.arange(7, dtype=np.float32) * value}


@pytest.mark.parametrize("root", [0, 1])
def test_broadcast_params(root):
    params = _arrays(float(RANK + 1))
    dist.broadcast_params(params, root=root)
    want = _arrays(float(root + 1))
    for k in want:
        assert params[k].dtype == want[k].dtype
        np.testing.assert_array_equal(params[k], want[k], err_msg=k)


@pytest.mark.parametrize("average", [True, False])
def test_allreduce_grads(average):
    grads = _arrays(float(RANK + 1))
    dist.allreduce_grads(grads, average=average)
    for k in grads:
        want = sum(_arrays(float(r + 1))[k] for r in range(SIZE))
        if average:
            want = want / SIZE
        np.testing.assert_allclose(grads[k], want, rtol=1e-6, err_msg=k)


def test_allreduce_grads_mismatch_raises_on_every_rank():
    grads = {"w": np.zeros(3 + RANK, np.float32)}
    with pytest.raises(ValueError, match="different arrays"):
        dist.allreduce_grads(grads)


def test_rank_seed_and_threads():
    seeds = COMM.allgather(dist.rank_seed(7))
    again = COMM.allgather(dist.rank_seed(7))
    threads = COMM.allgather(dist.threads_per_rank())
    assert seeds == again and len(set(seeds)) == SIZE
    node_ranks = COMM.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert all(t >= 1 for t in threads)
    if cores >= node_ranks:
        assert sum(threads) <= cores * (SIZE // node_ranks), threads


def _text(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    words = ["def ", "return ", "self", ".x", " = ", "(a, b)", ":\n    ", "# note\n", "if "]
    return "".join(words[i] for i in rng.integers(0, len(words), n // 4))[:n]


def test_charlm_steps_equal_one_process_float64():
    """train_step with comm: 2 x 3 streams == 1 x 6 streams, clipping active."""
    rng = np.random.default_rng(1)
    data = rng.integers(0, 11, size=(4 * 8 + 1, 6))     # [steps, streams]
    ref = CharLM(11, hidden=12, layers=2, embed=5, cell="lstm", seed=3, dtype=np.float64)
    par = copy.deepcopy(ref)
    cols = _rank_columns(data.shape[1], COMM)
    share = cols.size / data.shape[1]
    ref_opt, par_opt = Adam(ref.params, lr=1e-2), Adam(par.params, lr=1e-2)
    ref_state = par_state = None
    losses = []
    for k in range(4):
        x, y = data[8 * k: 8 * k + 8], data[8 * k + 1: 8 * k + 9]
        ref_loss, ref_state = train_step(ref, ref_opt, x, y, ref_state, clip=0.05)
        par_loss, par_state = train_step(par, par_opt, x[:, cols], y[:, cols], par_state,
                                         clip=0.05, comm=COMM, share=share)
        losses.append((ref_loss, par_loss))
    gathered = COMM.allgather({k: p for k, p in par.params.items()})
    for ref_l, par_l in losses:
        assert par_l == pytest.approx(ref_l, rel=1e-12)
    for k, p in ref.params.items():
        np.testing.assert_allclose(par.params[k], p, rtol=1e-9, atol=1e-12, err_msg=k)
        for other in gathered:  # every rank holds the same parameters
            np.testing.assert_array_equal(other[k], par.params[k], err_msg=k)


def test_charlm_train_equals_one_process_float32():
    """The main job's train(): 2 ranks x 4 streams == 1 process x 8 streams after 6 steps."""
    cfg = TrainConfig(cell="gru", layers=1, hidden=16, embed=8, batch=8, bptt=16, lr=1e-2,
                      clip=0.1, time_budget=0, max_steps=6, eval_every=1e9, threads=1)
    text = _text()
    par = train(text, cfg, progress="off", comm=COMM)
    ref = train(text, cfg, progress="off")
    gathered = COMM.allgather(par.summary["val_loss"])
    assert par.summary["ranks"] == SIZE and par.summary["steps"] == 6
    assert par.summary["chars_seen"] == ref.summary["chars_seen"]
    assert len(set(gathered)) == 1
    assert par.summary["val_loss"] == pytest.approx(ref.summary["val_loss"], rel=1e-5)
    for k, p in ref.model.params.items():
        np.testing.assert_allclose(par.model.params[k], p, rtol=1e-4, atol=2e-6, err_msg=k)


def test_charlm_threads_capped_to_the_ranks_share():
    """--threads above the node's cores / its ranks would oversubscribe: capped."""
    cfg = TrainConfig(cell="rnn", layers=1, hidden=8, embed=4, batch=4, bptt=8,
                      time_budget=0, max_steps=1, eval_every=1e9, threads=64)
    result = train(_text(600), cfg, progress="off", comm=COMM)
    assert result.summary["threads"] == dist.threads_per_rank()
