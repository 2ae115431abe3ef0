"""bench/bench_small.py runs its rows and reports what it says it does (no timing asserted)."""
import json

import numpy as np
import pytest

import bench_scripts

bench = bench_scripts.load("bench_small")


def test_the_small_set_covers_the_issue_grid():
    rows = bench.small_rows()
    assert {r.cell for r in rows} == {"lstm", "lstm_peephole", "gru", "rnn_tanh"}
    assert {r.H for r in rows} == {16, 25, 32, 64, 128}
    assert {r.B for r in rows} == {1, 2, 4} and {r.T for r in rows} == {1000, 3000}
    assert {r.layers for r in rows} == {1, 2, 3} and {r.bidirectional for r in rows} == {True, False}


@pytest.mark.parametrize("row", bench.small_rows(quick=True), ids=lambda r: r.label())
def test_kernel_calls_compute_what_the_layer_does(row):
    """The 'kernels' contender runs the layer's own calls: its last call's output is the
    layer's last layer, direction by direction."""
    layer = bench.make_layers(row, 1)
    x = np.random.default_rng(0).standard_normal((row.T, row.B, row.H)).astype(np.float32)
    y, _ = layer(x)
    run = bench.kernel_calls(row, layer, x)
    run()  # runs without error on the prepared inputs
    module = bench.make_torch(row, layer)
    if row.cell != "lstm_peephole":  # torch has no peephole LSTM: a plain one stands in
        import torch
        with torch.no_grad():
            want = module(torch.from_numpy(x))[0].numpy()
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_quick_run_reports_every_column(tmp_path, capsys):
    out = tmp_path / "small.json"
    assert bench.main(["--quick", "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["rows"]) == len(bench.small_rows(quick=True))
    for r in result["rows"]:
        assert r["pyrnn_ms"] > 0 and r["torch_ms"] > 0 and r["kernels_ms"] > 0
        assert r["limit_us"] > 0 and r["x_limit"] == pytest.approx(r["step_us"] / r["limit_us"])
        assert ("direction_speedup" in r) == r["bidirectional"]
    assert result["l2_bandwidth_gbs"] > 0
    text = capsys.readouterr().out
    assert "per-step cost / limit" in text and "vs torch (one thread each)" in text
