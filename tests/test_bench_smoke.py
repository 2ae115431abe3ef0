"""Smoke test of bench/bench_rnn.py: runs the benchmark in-process on tiny shapes with one
timed round and checks the structure and consistency of the result (no timing thresholds)."""
import json
import math

import numpy as np
import pytest

import bench_scripts

torch = pytest.importorskip("torch")

bench = bench_scripts.load("bench_rnn")
Shape = bench.Shape
ONNXRT = bench.onnx_contender.AVAILABLE  # onnx and onnxruntime installed (the bench extra)

SHAPES = [
    Shape("lstm", 3, 2, 5, 4),
    Shape("gru", 2, 1, 3, 6, modes=("infer",)),
    Shape("rnn_tanh", 4, 3, 2, 5, modes=("train",)),
    Shape("rnn_relu", 1, 5, 7, 3),
]
THREADS = (1, 2)
MODES = ("infer", "train")


@pytest.fixture(scope="module")
def result():
    # numpy_max_gflop between the smallest and the largest shape: some rows skip the reference
    return bench.run(SHAPES, THREADS, MODES, repeats=1, min_run_ms=0.0, numpy_max_gflop=1e-6)


def _expected_rows():
    return {(s.cell, m, n, s.T, s.B, s.I, s.H)
            for s in SHAPES for m in s.modes for n in THREADS}


def test_all_requested_rows_present(result):
    got = [(r["cell"], r["mode"], r["threads"], r["T"], r["B"], r["I"], r["H"])
           for r in result["rows"]]
    assert len(got) == len(set(got))
    assert set(got) == _expected_rows()


def test_times_positive_and_speedups_are_time_ratios(result):
    for row in result["rows"]:
        assert row["pyrnn_ms"] > 0 and row["torch_ms"] > 0
        assert len(row["runs_ms"]["pyrnn"]) == 1 and len(row["runs_ms"]["torch"]) == 1
        assert math.isclose(row["speedup_vs_torch"], row["torch_ms"] / row["pyrnn_ms"])
        assert row["gemm_gflops"] > 0 and row["gemm_share"] > 0
        expected_flop = 2 * row["T"] * row["B"] * row["G"] * row["H"] * (row["I"] + row["H"])
        expected_flop *= 3 if row["mode"] == "train" else 1
        assert row["flop"] == expected_flop
        assert math.isclose(row["pyrnn_gflops"], row["flop"] / row["pyrnn_ms"] / 1e6)
        assert row["peak_gflops"] == result["peak_gflops"][str(row["threads"])] > 0
        assert math.isclose(row["ceiling_vs_torch"], row["peak_gflops"] / row["torch_gflops"])
        if row["numpy_skipped"] is None:
            assert row["numpy_ms"] > 0
            assert math.isclose(row["speedup_vs_numpy"], row["numpy_ms"] / row["pyrnn_ms"])
        else:
            assert row["numpy_ms"] is None and row["speedup_vs_numpy"] is None
            assert row["flop"] / 1e9 > 1e-6


def test_numpy_threshold_skips_only_big_rows(result):
    skipped = {r["numpy_skipped"] is not None for r in result["rows"]}
    assert skipped == {True, False}
    for row in result["rows"]:
        assert (row["numpy_skipped"] is not None) == (row["flop"] > 1e3)


def test_summary_consistent(result):
    rows, summary = result["rows"], result["summary"]
    speedups = [r["speedup_vs_torch"] for r in rows]
    assert summary["vs_torch"]["n"] == len(rows)
    assert math.isclose(summary["vs_torch"]["worst"], min(speedups))
    geo = math.exp(sum(map(math.log, speedups)) / len(speedups))
    assert math.isclose(summary["vs_torch"]["geomean"], geo)
    assert set(summary["vs_torch_by_group"]) == {f"threads={n} {m}" for n in THREADS
                                                  for m in MODES}
    small = [r for r in rows if r["mode"] == "infer" and r["B"] <= 4]
    assert summary["small_batch_infer_vs_torch"]["n"] == len(small)
    assert summary["large_shapes_gemm_share"] is None  # no B >= 32, H >= 512 here
    ceilings = [r["ceiling_vs_torch"] for r in rows]
    assert math.isclose(summary["ceiling_vs_torch"]["worst"], min(ceilings))
    assert summary["small_batch_infer_ceiling"]["n"] == len(small)
    assert summary["numpy_skipped_rows"] == sum(r["numpy_ms"] is None for r in rows)


def test_machine_info_and_json(result, tmp_path):
    machine = result["machine"]
    for key in ("cpu_model", "date", "pyrnn", "pyrnn_isa", "torch", "numpy"):
        assert machine[key]
    path = tmp_path / "bench.json"
    bench.write_json(result, str(path))
    loaded = json.loads(path.read_text())
    assert loaded["rows"] == json.loads(json.dumps(result["rows"]))
    assert {(g["threads"], g["B"], g["H"], g["G"]) for g in loaded["gemm_limits"]} == {
        (r["threads"], r["B"], r["H"], r["G"]) for r in result["rows"]}


def test_report_has_a_table_line_per_row(result):
    report = bench.format_report(result)
    table = [line for line in report.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(result["rows"])  # header + rows
    assert all(line.rstrip(" |").endswith("x") for line in table[1:])  # the ceiling column
    assert "Peak (square float32 GEMM): 1 thread " in report and "2 threads " in report
    assert "—" in report  # skipped NumPy reference
    assert "3 x forward" in report


def test_peak_is_the_best_of_the_rows_measurements(result):
    for n in THREADS:
        mine = [r for r in result["rows"] if r["threads"] == n]
        assert all(0 < r["peak_gflops_row"] < math.inf for r in mine)
        assert result["peak_gflops"][str(n)] == max(r["peak_gflops_row"] for r in mine)


def test_add_ceilings():
    rows = [dict(threads=1, peak_gflops_row=90.0, torch_gflops=30.0),
            dict(threads=1, peak_gflops_row=100.0, torch_gflops=50.0),
            dict(threads=2, peak_gflops_row=150.0, torch_gflops=200.0)]
    assert bench.add_ceilings(rows) == {1: 100.0, 2: 150.0}
    assert [r["peak_gflops"] for r in rows] == [100.0, 100.0, 150.0]
    assert [r["ceiling_vs_torch"] for r in rows] == [100.0 / 30.0, 2.0, 0.75]


def test_shape_sets():
    shapes = bench.shape_sets
    quick, deep, every = shapes.get("quick"), shapes.get("deepbench"), shapes.get("all")
    assert {s.cell for s in quick} == set(shapes.CELLS)
    assert {s.key for s in every} == {s.key for s in quick} | {s.key for s in deep}
    assert all(s.I == s.H for s in deep)
    assert len({s.key for s in deep}) == len(deep)
    with pytest.raises(ValueError):
        shapes.get("nope")
    held, held2, held3 = (shapes.get(n) for n in ("heldout", "heldout2", "heldout3"))
    for h in (held, held2, held3):
        assert len(h) == 24 and {s.cell for s in h} == set(shapes.CELLS)
        assert not {s.key for s in h} & {s.key for s in every}  # disjoint from the tuned sets
    assert not {s.key for s in held} & {s.key for s in held2}
    assert not {s.key for s in held3} & ({s.key for s in held} | {s.key for s in held2})
    # the same draws each time
    assert [s.key for s in held] == [s.key for s in shapes._heldout()]
    assert [s.key for s in held2] == [s.key for s in shapes._heldout(seed=31337)]
    assert [s.key for s in held3] == [s.key for s in shapes._heldout(seed=20261205)]
    mid = shapes.get("lstm_mid")
    assert len(mid) == len({s.key for s in mid}) == 9
    assert all(s.cell == "lstm" and s.I == s.H and s.T == 100 for s in mid)
    assert all(s.modes == shapes.MODES for s in mid)


@pytest.mark.parametrize("text", ["lstm", "lstm:1,2,3", "lstm:1,2,3,x", "lstm:0,2,3,4",
                                  "lstm:1,2,3,4,5", "lsmt:1,2,3,4"])
def test_parse_shape_rejects(text):
    with pytest.raises(ValueError):
        bench.shape_sets.parse_shape(text)


def test_main_shape_option(tmp_path, capsys):
    path = tmp_path / "out.json"
    code = bench.main(["--shape", "rnn_relu:3,2,5,4", "--shape", "gru:2,1,3,6", "--modes",
                       "train", "--threads", "1", "--repeats", "1", "--min-run-ms", "0",
                       "--json", str(path)])
    assert code == 0
    rows = json.loads(path.read_text())["rows"]
    assert [(r["cell"], r["mode"], r["T"], r["B"], r["I"], r["H"]) for r in rows] == [
        ("rnn_relu", "train", 3, 2, 5, 4), ("gru", "train", 2, 1, 3, 6)]
    with pytest.raises(SystemExit):
        bench.main(["--shape", "lstm:1,2,3"])
    assert "CELL:T,B,I,H" in capsys.readouterr().err


def test_main_filter_json_and_plot_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "matplotlib_pyplot", lambda: None)
    path, png = tmp_path / "out.json", tmp_path / "out.png"
    code = bench.main(["--shapes", "deepbench", "--filter", "cell=gru,T=1,B=1",
                       "--threads", "1", "--repeats", "1", "--min-run-ms", "0",
                       "--json", str(path), "--plot", str(png)])
    assert code == 0
    rows = json.loads(path.read_text())["rows"]
    assert [(r["cell"], r["mode"], r["T"], r["B"], r["H"]) for r in rows] == [
        ("gru", "infer", 1, 1, 512)]
    captured = capsys.readouterr()
    assert "| gru " in captured.out
    assert "matplotlib is not installed" in captured.out + captured.err
    assert not png.exists()


def test_plot(result, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "speedups.png"
    assert bench.write_plot(result, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readme_table_from_the_json(result, tmp_path, capsys):
    readme_table = bench_scripts.load("readme_table")
    path = tmp_path / "bench.json"
    bench.write_json(result, str(path))
    assert readme_table.main([str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    table = [l for l in lines if l.startswith("| ")]
    keys = {(r["cell"], r["mode"], r["T"], r["B"], r["I"], r["H"]) for r in result["rows"]}
    assert len(table) == 1 + len(keys)  # header + one line per shape and mode
    # 6 shape columns, 5 for the first thread count (with vs numpy), 4 for the second, and
    # one more per thread count with ONNX Runtime
    assert all(l.count("|") == 6 + 5 + 4 + 2 * ONNXRT + 1 for l in table)
    for n in THREADS:
        mine = [r["speedup_vs_torch"] for r in result["rows"] if r["threads"] == n]
        geo = math.exp(sum(map(math.log, mine)) / len(mine))
        summary = [l for l in lines if l.startswith(f"- {n} thread")]
        assert len(summary) == 1
        assert f"**{geo:.2f}x**" in summary[0]
        assert f"rows below 1.0x: {sum(v < 1 for v in mine)} of {len(mine)}" in summary[0]
        assert "ceilings" in summary[0]
        onnx = [r["speedup_vs_onnxrt"] for r in result["rows"]
                if r["threads"] == n and r["mode"] == "infer"]
        if ONNXRT:
            geo = math.exp(sum(map(math.log, onnx)) / len(onnx))
            assert f"inference vs ONNX Runtime {geo:.2f}x (worst {min(onnx):.2f}x" in summary[0]
            assert (f"rows below 0.95x: {sum(v < 0.95 for v in onnx)} of {len(onnx)})"
                    in summary[0])
        else:
            assert "ONNX Runtime" not in summary[0]


def _without_onnxrt(result):
    """``result`` as a JSON file from before ONNX Runtime was a contender would have it."""
    old = json.loads(json.dumps(result))
    for row in old["rows"]:
        for key in [k for k in row if "onnxrt" in k]:
            del row[key]
        row["runs_ms"].pop("onnxrt", None)  # train rows have none
    del old["summary"]["vs_onnxrt_by_group"], old["machine"]["onnxruntime"]
    old["notes"] = [n for n in old["notes"] if "ONNX Runtime" not in n]
    return old


def test_readme_table_and_report_read_older_json(result):
    if not ONNXRT:
        pytest.skip("onnxruntime not installed: the smoke run has no ONNX Runtime data")
    readme_table = bench_scripts.load("readme_table")
    old = _without_onnxrt(result)
    out = readme_table.report(old)
    assert "ONNX Runtime" not in out
    table = [l for l in out.splitlines() if l.startswith("| ")]
    assert all(l.count("|") == 6 + 5 + 4 + 1 for l in table)
    assert table[0].endswith("| vs torch | ceiling |")
    report = bench.format_report(old)
    assert "ONNX Runtime" not in report
    rows = _onnxrt_cells(report)
    assert rows == [("—", "—")] * len(old["rows"])


def _onnxrt_cells(report):
    """The (onnxrt ms, vs onnxrt) cells of each row of bench_rnn's printed table."""
    table = [[c.strip() for c in l.split("|")] for l in report.splitlines()
             if l.startswith("| ")]
    ms, vs = table[0].index("onnxrt ms"), table[0].index("vs onnxrt")
    return [(cells[ms], cells[vs]) for cells in table[1:]]


# --------------------------------------------------------------------------- ONNX Runtime


@pytest.mark.parametrize("cell", bench.CELLS)
@pytest.mark.parametrize("threads", [1, 2])
def test_onnxrt_output_equals_torch(cell, threads):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    problem = bench.make_problem(Shape(cell, 6, 3, 5, 7), seed=3)
    step = bench.onnxrt_step(problem, threads)
    with torch.no_grad():
        expected = problem.module(torch.from_numpy(problem.x))[0].numpy()
    y = step()
    assert y.shape == (6, 3, 7) and y.dtype == np.float32
    assert np.abs(expected).max() > 0.1  # not a trivially small output
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(step(), y)  # the callable runs the same model again


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_onnxrt_wrong_gate_order_is_refused(cell, monkeypatch):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    oc = bench.onnx_contender
    identity = tuple(range(len(oc.GATE_ORDER[cell])))  # PyTorch's order, unconverted
    monkeypatch.setitem(oc.GATE_ORDER, cell, identity)
    problem = bench.make_problem(Shape(cell, 4, 2, 3, 5), seed=0)
    with pytest.raises(RuntimeError, match=f"ONNX Runtime {cell}: output differs from torch"):
        bench.onnxrt_step(problem, 1)


def test_onnxrt_only_on_infer_rows(result):
    if not ONNXRT:
        pytest.skip("onnxruntime not installed")
    for row in result["rows"]:
        if row["mode"] == "infer":
            assert row["onnxrt_ms"] > 0 and len(row["runs_ms"]["onnxrt"]) == 1
            assert math.isclose(row["onnxrt_ms"], row["runs_ms"]["onnxrt"][0])
            assert math.isclose(row["speedup_vs_onnxrt"], row["onnxrt_ms"] / row["pyrnn_ms"])
            assert math.isclose(row["onnxrt_gflops"], row["flop"] / row["onnxrt_ms"] / 1e6)
        else:
            assert row["onnxrt_ms"] is None and row["speedup_vs_onnxrt"] is None
            assert row["onnxrt_gflops"] is None and "onnxrt" not in row["runs_ms"]
    assert result["machine"]["onnxruntime"] == bench.onnx_contender.ort.__version__


def test_onnxrt_summary_and_report(result):
    if not ONNXRT:
        pytest.skip("onnxruntime not installed")
    summary = result["summary"]["vs_onnxrt_by_group"]
    assert set(summary) == {f"threads={n} infer" for n in THREADS}
    report = bench.format_report(result)
    lines = report.splitlines()
    header = lines.index("Speedup vs ONNX Runtime (inference rows):")
    for k, n in enumerate(THREADS):
        mine = [r for r in result["rows"] if r["threads"] == n and r["mode"] == "infer"]
        speedups = [r["speedup_vs_onnxrt"] for r in mine]
        stats = summary[f"threads={n} infer"]
        assert stats["n"] == len(mine) == 3
        assert math.isclose(stats["geomean"], math.exp(sum(map(math.log, speedups)) / 3))
        assert stats["worst"] == min(speedups)
        assert stats["n_below"] == sum(v < 0.95 for v in speedups) and stats["below"] == 0.95
        worst = min(mine, key=lambda r: r["speedup_vs_onnxrt"])
        assert lines[header + 1 + k] == (
            f"  threads={n} infer: geometric mean {stats['geomean']:.2f}x, worst "
            f"{stats['worst']:.2f}x ({bench.row_label(worst)}), 3 rows, "
            f"{stats['n_below']} below 0.95x")
    for row, (ms, vs) in zip(result["rows"], _onnxrt_cells(report)):
        assert (ms, vs) == ((bench.fmt(row["onnxrt_ms"], "ms"), bench.fmt(
            row["speedup_vs_onnxrt"], "x")) if row["mode"] == "infer" else ("—", "—"))
    assert f"vs ONNX Runtime {result['machine']['onnxruntime']} on " in lines[0]


def test_without_onnxrt_the_bench_runs_and_says_so_once(monkeypatch):
    monkeypatch.setattr(bench.onnx_contender, "AVAILABLE", False)
    monkeypatch.setattr(bench.onnx_contender, "VERSION", None)
    result = bench.run([Shape("gru", 2, 1, 3, 4)], (1,), ("infer",), repeats=1, min_run_ms=0.0)
    (row,) = result["rows"]
    assert row["pyrnn_ms"] > 0 and row["torch_ms"] > 0
    assert row["onnxrt_ms"] is None and row["speedup_vs_onnxrt"] is None
    assert "onnxrt" not in row["runs_ms"]
    assert result["summary"]["vs_onnxrt_by_group"] == {"threads=1 infer": None}
    report = bench.format_report(result)
    assert report.count("ONNX Runtime") == 1
    assert bench.onnx_contender.NOT_INSTALLED in report
    assert _onnxrt_cells(report) == [("—", "—")]
