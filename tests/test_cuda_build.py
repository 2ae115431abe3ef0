"""The optional CUDA sources compile (so they cannot rot unseen on machines without a GPU).

Where nvcc is on PATH, every csrc/cuda/*.cu is compiled with ``nvcc -c`` into a temporary folder,
for one GPU architecture (sm_80) to keep the time down, two files at a time.
kernel_table.cu, which is cheap, is also compiled for two architectures, as a multi-architecture
build is compiled (its __CUDA_ARCH_LIST__ then holds a comma). Sources that include cuBLAS need
its headers: from the CUDA toolkit, PYRNN_CUBLAS_ROOT, or an installed nvidia-cublas wheel;
without them those sources are skipped, with the reason.
The full CMake build with -DPYRNN_CUDA=ON is not repeated here (minutes); see README.
"""
import glob
import importlib.util
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUDA_DIR = os.path.join(ROOT, "csrc", "cuda")
SOURCES = sorted(glob.glob(os.path.join(CUDA_DIR, "*.cu")))
NVCC = shutil.which("nvcc")

pytestmark = pytest.mark.skipif(
    NVCC is None or not SOURCES,
    reason="needs nvcc on PATH and the csrc/cuda sources beside tests/ (a source checkout): "
           "the CUDA sources are compiled only where a CUDA toolkit is installed")


def _uses_cublas(path):
    with open(path) as f:
        return re.search(r"#include\s*[<\"]cublas", f.read()) is not None


def _cublas_include():
    """A folder with cublas_v2.h, or None."""
    candidates = []
    root = os.environ.get("PYRNN_CUBLAS_ROOT")
    if root:
        candidates.append(os.path.join(root, "include"))
    nvcc_root = os.path.dirname(os.path.dirname(os.path.realpath(NVCC))) if NVCC else None
    for base in filter(None, [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
                              nvcc_root, "/usr/local/cuda"]):
        candidates += [os.path.join(base, "include"),
                       os.path.join(base, "targets", "x86_64-linux", "include")]
    for name in ("nvidia.cu13", "nvidia.cublas", "nvidia.cu12"):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            candidates += [os.path.join(d, "include") for d in spec.submodule_search_locations]
    for d in candidates:
        if os.path.isfile(os.path.join(d, "cublas_v2.h")):
            return d
    return None


def _compile(src, out_dir, arch_flags, extra_includes=()):
    out = os.path.join(out_dir, os.path.basename(src) + ".o")
    cmd = [NVCC, "-c", "-std=c++17", *arch_flags, "-I", os.path.join(ROOT, "csrc"),
           *[f"-I{d}" for d in extra_includes], "-Xcompiler=-Wall,-Wextra", src, "-o", out]
    res = subprocess.run(cmd, capture_output=True, text=True)
    return src, cmd, res


def _check(results):
    failures = [f"{' '.join(cmd)}\n{res.stdout}{res.stderr}"
                for _, cmd, res in results if res.returncode != 0]
    assert not failures, "nvcc failed:\n" + "\n\n".join(failures)
    warnings = [f"{os.path.basename(src)}: {res.stderr}" for src, _, res in results
                if "warning" in res.stderr.lower()]
    assert not warnings, "nvcc warnings:\n" + "\n".join(warnings)


SM80 = ["-gencode", "arch=compute_80,code=sm_80"]


def test_cuda_sources_exist():
    names = {os.path.basename(p) for p in SOURCES}
    assert {"kernel_table.cu", "blas.cu", "lstm.cu", "gru.cu", "rnn.cu"} <= names, names


def test_cuda_sources_without_cublas_compile(tmp_path):
    sources = [s for s in SOURCES if not _uses_cublas(s)]
    assert sources
    jobs = [(s, SM80) for s in sources]
    # As a real multi-architecture build compiles it (comma-separated __CUDA_ARCH_LIST__).
    jobs.append((os.path.join(CUDA_DIR, "kernel_table.cu"),
                 SM80 + ["-gencode", "arch=compute_90,code=sm_90"]))

    def run(numbered):
        i, (src, flags) = numbered
        out = tmp_path / f"job{i}"
        out.mkdir()
        return _compile(src, str(out), flags)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, enumerate(jobs)))
    _check(results)


def test_cuda_sources_with_cublas_compile(tmp_path):
    sources = [s for s in SOURCES if _uses_cublas(s)]
    assert sources, "expected the cuBLAS wrapper (blas.cu) among the CUDA sources"
    include = _cublas_include()
    if include is None:
        pytest.skip("cuBLAS headers (cublas_v2.h) not found in the CUDA toolkit, "
                    "PYRNN_CUBLAS_ROOT or an installed nvidia-cublas wheel: "
                    + ", ".join(os.path.basename(s) for s in sources) + " not compiled")
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda s: _compile(s, str(tmp_path), SM80, [include]), sources))
    _check(results)
