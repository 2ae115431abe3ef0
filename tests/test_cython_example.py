"""examples/cython_stream, a downstream package that cimports pyrnn's C-level API, built and
run exactly as its README says: `pip install --no-build-isolation` (here into a temporary
target), then `python -m cython_stream`, which checks its nogil loops against pyrnn's cells."""
import os
import shutil
import subprocess
import sys

import pytest

from child_python import ROOT

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "examples", "cython_stream")


def _missing_build_tools():
    if not os.path.isdir(EXAMPLE):
        return "examples/cython_stream is not beside the tests (the wheel-only CI step)"
    if not (shutil.which("cc") or shutil.which("gcc")):
        return "no C compiler on PATH (the wheel-only CI step installs without one)"
    for module in ("Cython", "cython_cmake", "scikit_build_core"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install '.[test]' brings it)"
    return None


@pytest.mark.skipif(_missing_build_tools() is not None, reason=str(_missing_build_tools()))
def test_cython_stream_builds_and_matches_the_python_cells(tmp_path):
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
         "--no-index", "--target", str(target), EXAMPLE],
        capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), ROOT]))
    run = subprocess.run([sys.executable, "-m", "cython_stream"], capture_output=True, text=True,
                         timeout=300, env=env, cwd=str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all checks passed" in run.stdout
    assert "MISMATCH" not in run.stdout
    assert "time per step: Cython nogil loop" in run.stdout


def test_capi_module_ships_its_pxd_and_uses_the_same_kernels():
    import pyrnn
    from pyrnn import capi

    package = os.path.dirname(os.path.abspath(pyrnn.__file__))
    assert os.path.isfile(os.path.join(package, "capi.pxd"))
    assert capi.isa_name() == pyrnn._core.isa()  # the same build, PYRNN_ISA included
    assert capi.VERSION >= 1
    assert capi.STATUS["OK"] == 0 and set(capi.CELL) == {"lstm", "gru", "rnn_tanh", "rnn_relu"}
    assert capi.message(capi.STATUS["ERR_OVERLAP"]) == "an output array overlaps an input array"
    assert capi.message(99) == "unknown status"
