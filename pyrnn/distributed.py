"""Data-parallel training over MPI (mpi4py): every rank holds the whole model, trains on its
own share of the batch, and the ranks sum their gradients before each optimizer step.

    mpiexec -n 2 python train.py          # pip install "pyrnn-kernels[mpi]" (mpi4py + mpich)

    from pyrnn import distributed as dist
    model.num_threads = dist.threads_per_rank()      # never oversubscribe the node's cores
    dist.broadcast_params(model.params)              # everyone starts from rank 0's weights
    ... forward/backward on this rank's streams ...
    dist.allreduce_grads(model.grads)                # mean over the ranks, in place
    clip_grad_norm(model.grads, 1.0)                 # after the allreduce: the global norm
    opt.step(model.grads)

``comm=None`` means ``MPI.COMM_WORLD``. Arrays travel in one fused buffer per dtype, not one
message per array. Importing this module does not import mpi4py (that initialises MPI); the
first call does, and raises ImportError saying how to install it when it is missing.
"""
from __future__ import annotations

import os
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

__all__ = ["broadcast_params", "allreduce_grads", "rank_seed", "threads_per_rank",
           "launched_size", "mpi"]

_INSTALL_HINT = ("pyrnn.distributed needs mpi4py and an MPI library: "
                 "pip install 'pyrnn-kernels[mpi]' (mpi4py and the mpich wheel from PyPI; "
                 "no system MPI needed on one machine)")

# Environment variables the common launchers set in every rank (MPICH/Hydra, Open MPI, PMIx,
# Slurm): a job launched by mpiexec can be told from a plain run without importing mpi4py.
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def mpi():
    """The ``mpi4py.MPI`` module (ImportError with the install command when missing)."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from None
    return MPI


def launched_size() -> int:
    """The number of ranks the launcher started this process among, from its environment
    (1 in a plain run). Does not import mpi4py."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def _comm(comm):
    return mpi().COMM_WORLD if comm is None else comm


def _as_arrays(arrays, what: str) -> Dict[str, np.ndarray]:
    arrays = getattr(arrays, "params" if what == "params" else "grads", arrays)  # a Module
    if not isinstance(arrays, Mapping):
        raise TypeError(f"{what}: expected a dict of NumPy arrays (or a module), "
                        f"got {type(arrays).__name__}")
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{what}[{name!r}]: expected a NumPy array, got {type(a).__name__}")
        if not a.flags.writeable:
            raise ValueError(f"{what}[{name!r}]: the array is read-only (updated in place)")
    return dict(arrays)


def _layout(arrays: Dict[str, np.ndarray]) -> Tuple:
    return tuple((name, a.shape, a.dtype.str) for name, a in sorted(arrays.items()))


def _check_same_layout(comm, arrays, what: str, root: int = 0) -> None:
    """All ranks raise together (never some raising while others wait in a collective) when
    the ranks' names, shapes or dtypes differ."""
    mine = _layout(arrays)
    theirs = comm.bcast(mine, root=root)
    same = comm.allreduce(int(mine == theirs), op=mpi().MIN)
    if not same:
        diff = sorted(set(mine) ^ set(theirs))[:4]
        raise ValueError(f"{what}: the ranks hold different arrays (names, shapes or dtypes); "
                         f"rank {comm.Get_rank()} vs rank {root} differ in e.g. {diff}")


# Layouts already checked, per communicator: the check costs two collectives, the training
# loop calls with the same dict every step.
_checked: Dict[Tuple[int, Tuple], bool] = {}


def _checked_once(comm, arrays, what: str) -> None:
    key = (id(comm), _layout(arrays))
    if key not in _checked:
        _check_same_layout(comm, arrays, what)
        _checked[key] = True


def _groups(arrays: Dict[str, np.ndarray]):
    """Arrays grouped by dtype, each group in name order (the same order on every rank)."""
    groups: Dict[str, list] = {}
    for name in sorted(arrays):
        groups.setdefault(arrays[name].dtype.str, []).append(arrays[name])
    return [groups[k] for k in sorted(groups)]


def _pack(group):
    return np.concatenate([a.ravel() for a in group]) if len(group) > 1 else \
        np.ascontiguousarray(group[0]).reshape(-1).copy()


def _unpack(buf, group) -> None:
    offset = 0
    for a in group:
        a[...] = buf[offset:offset + a.size].reshape(a.shape)
        offset += a.size


def broadcast_params(params, root: int = 0, comm=None) -> None:
    """Every rank's ``params`` (a dict of arrays, or a module) becomes root's, in place.

    Call it once after building the model, so ranks that initialised differently (another
    seed, a checkpoint only root has read) start from the same weights."""
    comm = _comm(comm)
    arrays = _as_arrays(params, "params")
    if not 0 <= int(root) < comm.Get_size():
        raise ValueError(f"root: expected a rank in [0, {comm.Get_size()}), got {root}")
    _check_same_layout(comm, arrays, "params", root=int(root))
    for group in _groups(arrays):
        buf = _pack(group)
        comm.Bcast(buf, root=int(root))
        _unpack(buf, group)


def allreduce_grads(grads, average: bool = True, comm=None) -> None:
    """Sum ``grads`` (a dict of arrays, or a module's ``grads``) over all ranks in place; with
    ``average`` divide by the number of ranks. One fused buffer (one message) per dtype.

    With equal shares of the batch on every rank, the average is the gradient of the whole
    batch's mean loss. With unequal shares, scale each rank's gradients by its share of the
    batch and pass ``average=False``."""
    comm = _comm(comm)
    arrays = _as_arrays(grads, "grads")
    if not arrays:
        return
    _checked_once(comm, arrays, "grads")
    MPI = mpi()
    size = comm.Get_size()
    for group in _groups(arrays):
        buf = _pack(group)
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        if average and size > 1:
            buf /= buf.dtype.type(size)
        _unpack(buf, group)


def rank_seed(seed: Optional[int], comm=None) -> int:
    """A seed for this rank, independent of every other rank's and fixed by ``seed``
    (``numpy.random.SeedSequence(seed).spawn``): for what must differ between ranks (dropout
    masks, data shuffling). Weights must not differ: broadcast them instead. ``seed=None``
    draws fresh entropy on rank 0 and shares it."""
    comm = _comm(comm)
    if seed is None:
        seed = comm.bcast(int(np.random.SeedSequence().generate_state(1)[0]), root=0)
    child = np.random.SeedSequence(int(seed)).spawn(comm.Get_size())[comm.Get_rank()]
    return int(child.generate_state(1)[0])


def threads_per_rank(comm=None) -> int:
    """Kernel threads for this rank: the node's cores divided by the ranks on the node (at
    least 1, at most the cores this rank may run on), so the ranks never oversubscribe.

    The node's cores are the union of the CPU sets the node's ranks may run on (a launcher that
    binds each rank to its own cores gives each rank only those)."""
    comm = _comm(comm)
    MPI = mpi()
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        mine = _cpu_set()
        node_cores = len(set().union(*node.allgather(mine)))
        share = node_cores // node.Get_size()
    finally:
        node.Free()
    return max(1, min(share, len(mine)))


def _cpu_set() -> set:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return set(range(os.cpu_count() or 1))
