"""The dot tiles' batched lane sums (simd.h F32::sums) against F32::sum, bitwise, on every
vector width this CPU runs (tests/simd_sums.cpp, built here with the C++ compiler)."""
import os
import shutil
import subprocess
import sys

import pytest

from pyrnn import _core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "tests", "simd_sums.cpp")
CXX = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
FLAGS = {"avx2": ["-mavx2", "-mfma"],
         "avx512": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl"]}

pytestmark = pytest.mark.skipif(
    CXX is None or not sys.platform.startswith("linux")
    or not os.path.isdir(os.path.join(ROOT, "csrc", "pyrnn")),
    reason="needs a C++ compiler on Linux and the csrc/ sources beside tests/ (a source checkout)")


@pytest.mark.parametrize("isa", sorted(FLAGS))
def test_batched_lane_sums_equal_one_at_a_time(isa, tmp_path):
    if isa not in [s.strip() for s in _core.supported_isas().split(",")]:
        pytest.skip(f"this CPU does not run {isa}")
    exe = str(tmp_path / f"simd_sums_{isa}")
    cmd = [CXX, "-std=c++17", "-O2", *FLAGS[isa], "-I", os.path.join(ROOT, "csrc"), SOURCE,
           "-o", exe]
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, f"{' '.join(cmd)}\n{built.stdout}\n{built.stderr}"
    ran = subprocess.run([exe], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"{16 if isa == 'avx512' else 8} lanes: 0 of 20000 trials differ" in ran.stdout
