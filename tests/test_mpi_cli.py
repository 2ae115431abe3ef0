"""``mpiexec -n 2 pyrnn-charlm``: the data-parallel main job end to end (the 'mpi' extra gives
mpi4py and an mpiexec in the environment's bin directory).

Only rank 0 reports and writes: the output holds one summary, one checkpoint is written, and
the summary says 2 ranks with all 8 streams' characters counted. Skipped, with the reason,
without mpi4py or mpiexec, and inside an MPI job (no nested mpiexec).
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py", reason="needs the 'mpi' extra: pip install '.[mpi]'")

from pyrnn import distributed as dist  # noqa: E402

import child_python  # noqa: E402

MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")


@pytest.mark.skipif(dist.launched_size() > 1, reason="already inside an MPI job")
@pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec on PATH or beside the Python")
def test_mpiexec_two_ranks_charlm(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("def f(a, b):\n    return a + b\n" * 200, encoding="utf-8")
    ckpt, summary = tmp_path / "model.npz", tmp_path / "summary.json"
    code = ("import sys; from pyrnn.charlm.cli import main; sys.exit(main(sys.argv[1:]))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([child_python.ROOT,
                                                        os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [MPIEXEC, "-n", "2", sys.executable, "-c", code, "--text", str(text), "--steps", "4",
         "--time-budget", "0", "--hidden", "16", "--layers", "1", "--embed", "8", "--batch", "8",
         "--bptt", "16", "--threads", "1", "--checkpoint", str(ckpt), "--summary-json",
         str(summary), "--sample-length", "10", "--progress", "plain"],
        capture_output=True, text=True, timeout=300, cwd=child_python.ROOT, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("validation loss") == 1, proc.stdout
    assert "data parallel: 2 MPI ranks, 4 streams on rank 0" in proc.stdout
    assert ckpt.exists()
    s = json.loads(summary.read_text(encoding="utf-8"))
    assert s["ranks"] == 2 and s["steps"] == 4
    assert s["chars_seen"] == 4 * 16 * 8
