"""pyrnn.distributed without MPI: clear errors, and no MPI import in a plain run.

- every collective raises ImportError naming the install command when mpi4py is missing;
- a char-LM launched by mpiexec (the launcher's environment) without mpi4py ends with that
  message and exit status 2, not a traceback;
- launched_size reads the launchers' environment variables and is 1 in a plain run;
- importing pyrnn.distributed or running the char-LM in a plain run does not import mpi4py.
"""
import sys

import numpy as np
import pytest

import child_python
from pyrnn import distributed as dist


@pytest.fixture
def no_mpi4py(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py -> ImportError


@pytest.mark.parametrize("call", [
    lambda: dist.broadcast_params({"w": np.zeros(3)}),
    lambda: dist.allreduce_grads({"w": np.zeros(3)}),
    lambda: dist.rank_seed(0),
    lambda: dist.threads_per_rank(),
])
def test_missing_mpi4py_says_how_to_install(no_mpi4py, call):
    with pytest.raises(ImportError, match=r"pip install 'pyrnn-kernels\[mpi\]'"):
        call()


def test_launched_size(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    assert dist.launched_size() == 1
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "3")
    assert dist.launched_size() == 3


def test_bad_arguments_before_any_mpi_call():
    with pytest.raises(TypeError, match="dict of NumPy arrays"):
        dist.allreduce_grads([np.zeros(3)], comm=object())
    with pytest.raises(TypeError, match=r"grads\['w'\]: expected a NumPy array"):
        dist.allreduce_grads({"w": [1.0]}, comm=object())
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        dist.broadcast_params({"w": frozen}, comm=object())


def test_charlm_under_mpiexec_without_mpi4py_fails_cleanly():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "from pyrnn.charlm.cli import main\n"
            "sys.exit(main(['--steps', '1', '--time-budget', '0', '--no-save']))")
    proc = child_python.run(code, timeout=120, PMI_SIZE="2")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "launched under mpiexec" in proc.stderr and "pyrnn-kernels[mpi]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_plain_run_does_not_import_mpi():
    code = ("import sys\nimport pyrnn.distributed\nfrom pyrnn.charlm.training import "
            "TrainConfig, train\n"
            "train('abcdefgh' * 50, TrainConfig(hidden=8, layers=1, embed=4, batch=4, bptt=8, "
            "time_budget=0, max_steps=2, threads=1), progress='off')\n"
            "print('mpi4py.MPI' in sys.modules)")
    proc = child_python.run(code, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"
