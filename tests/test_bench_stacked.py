"""Smoke test of bench/bench_stacked.py: one round on small stacks, the table's structure and
the wavefront's chunk count (no timing thresholds)."""
import pytest

import bench_scripts

pytest.importorskip("torch")

from pyrnn import layers  # noqa: E402

bench = bench_scripts.load("bench_stacked")


def test_table_has_a_row_per_stack_with_ratios(capsys):
    code = bench.main(["--threads", "2", "--repeats", "1", "--stack", "lstm:2,1000,1,64",
                       "--stack", "rnn_relu:2,5,2,8"])
    assert code == 0
    out = capsys.readouterr().out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ")]
    assert [r[0].strip() for r in rows] == ["cell", "lstm", "rnn_relu"]
    lstm, tiny = rows[1], rows[2]
    assert int(lstm[5]) == layers._WAVEFRONT_MAX_CHUNKS  # the wavefront engages here
    assert int(tiny[5]) == 0                             # and not on a tiny stack
    for row in rows[1:]:
        ms = [float(v) for v in row[6:9]]
        assert all(t > 0 for t in ms)
        # ratios printed with two decimals, times with three significant digits
        assert float(row[9].strip(" x")) == pytest.approx(ms[1] / ms[0], rel=0.02, abs=0.006)
        assert float(row[10].strip(" x")) == pytest.approx(ms[2] / ms[0], rel=0.02, abs=0.006)
    assert layers.WAVEFRONT is True  # restored


def test_bad_stack_is_refused(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--stack", "lstm:2,10,1"])
    assert "CELL:L,T,B,H" in capsys.readouterr().err
