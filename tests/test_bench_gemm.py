"""The packed step product that bench/bench_gemm.py times (_core.packed_product) computes
X W^T, and the script runs on a small shape."""
import json

import numpy as np
import pytest

import bench_scripts
from pyrnn import _core


@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (3, 50, 7), (33, 517, 300), (64, 1024, 1100),
                                   (5, 96, 0)])
def test_packed_product_is_x_times_w_transposed(M, N, K):
    rng = np.random.default_rng(M * 1000 + N)
    X = rng.standard_normal((M, K), dtype=np.float32)
    W = rng.standard_normal((N, K), dtype=np.float32)
    want = X.astype(np.float64) @ W.T.astype(np.float64)
    got = _core.packed_product(X, W, 3)
    assert got.shape == (M, N) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1, np.sqrt(K)))


def test_packed_product_rejects_bad_input():
    X = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="'W': expected shape"):
        _core.packed_product(X, np.ones((4, 5), np.float32))
    with pytest.raises(TypeError, match="'X': expected dtype float32"):
        _core.packed_product(X.astype(np.float64), np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="'W': expected a 2-d array"):
        _core.packed_product(X, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="reps must be >= 1"):
        _core.packed_product(X, np.ones((4, 3), np.float32), 0)


def test_bench_gemm_runs(tmp_path, capsys):
    pytest.importorskip("torch")
    bench_gemm = bench_scripts.load("bench_gemm")
    out = tmp_path / "g.json"
    assert bench_gemm.main(["--shape", "8,64,32", "--shape", "4,48,16", "--rounds", "2",
                            "--min-ms", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [(r["M"], r["N"], r["K"]) for r in result["rows"]] == [(8, 64, 32), (4, 48, 16)]
    for r in result["rows"]:
        best = {k: min(v) for k, v in r["rounds"].items()}
        assert r["ratio"] == pytest.approx(best["torch"] / best["pyrnn"])
    text = capsys.readouterr().out
    assert "pyrnn / torch.mm: geometric mean" in text and "| M=8 N=64 K=32 |" in text
    with pytest.raises(SystemExit):
        bench_gemm.main(["--shape", "8,0,32"])
