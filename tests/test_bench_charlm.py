"""bench/bench_charlm.py on a tiny model: pyrnn's CharLM and its torch twin are the same model
and optimizer (losses and parameters agree over several steps), and the report's numbers hang
together (no timing thresholds)."""
import inspect
import json

import numpy as np
import pytest

import bench_scripts

torch = pytest.importorskip("torch")

TINY = dict(vocab=11, hidden=16, layers=2, embed=8)

bench = bench_scripts.load("bench_charlm")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_same_losses_and_parameters_over_several_steps(cell):
    model, twin = bench.make_models(cell=cell, **TINY)
    model.num_threads = 1
    x, y = bench.make_batch(TINY["vocab"], batch=4, seq=8)
    # clip 0.05 is below the gradient norm, so clipping scales every step
    mine = bench.pyrnn_stepper(model, x, y, clip=0.05)
    theirs = bench.torch_stepper(twin, x, y, clip=0.05)
    losses = []
    for _ in range(4):  # the carried state makes steps 2-4 differ from step 1
        a, b = mine(), theirs()
        losses.append(a)
        assert a == pytest.approx(b, rel=1e-4)
        reference = twin.state_dict()
        for name, value in model.params.items():
            np.testing.assert_allclose(value, reference[name].numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=name)
    assert len(set(losses)) == len(losses)  # the parameters did move


def test_first_step_check_raises_on_different_models():
    model, twin = bench.make_models(cell="lstm", **TINY)
    with torch.no_grad():
        twin.head.bias += 0.5 * torch.arange(TINY["vocab"], dtype=torch.float32)
    x, y = bench.make_batch(TINY["vocab"], batch=4, seq=8)
    with pytest.raises(RuntimeError, match="differ"):
        bench.check_same_loss(bench.pyrnn_stepper(model, x, y), bench.torch_stepper(twin, x, y))


def test_result_fields_and_speedups(tmp_path, capsys):
    out = tmp_path / "charlm.json"
    assert bench.main(["--threads", "1", "--repeats", "2", "--steps", "1", "--warmup", "1",
                       "--hidden", "16", "--embed", "8", "--batch", "4", "--seq", "8",
                       "--vocab", "11", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"config", "machine", "first_step_loss", "results"}
    assert {"cpu_model", "pyrnn_isa", "pyrnn", "torch", "numpy", "load_average",
            "load_average_end"} <= set(result["machine"])
    assert result["config"]["hidden"] == 16 and result["config"]["lr"] == bench.DEFAULTS.lr
    loss = result["first_step_loss"]
    assert loss["pyrnn"] == pytest.approx(loss["torch"], rel=1e-4)
    [row] = result["results"]
    assert row["threads"] == 1
    for name in ("pyrnn", "torch"):
        assert len(row[f"{name}_rounds_ms"]) == 2
        assert row[f"{name}_ms"] == pytest.approx(np.median(row[f"{name}_rounds_ms"]))
        assert row[f"{name}_chars_per_s"] == pytest.approx(4 * 8 / row[f"{name}_ms"] * 1e3)
    assert row["speedup"] == pytest.approx(row["torch_ms"] / row["pyrnn_ms"])
    paired = [t / p for p, t in zip(row["pyrnn_rounds_ms"], row["torch_rounds_ms"])]
    assert row["paired_speedup"] == pytest.approx(np.median(paired))
    # the step's products counted by hand: two LSTM layers (8 -> 16, 16 -> 16) and the head
    flop = 3 * 2 * (4 * 8) * (4 * 16 * (8 + 16) + 4 * 16 * (16 + 16) + 16 * 11)
    assert result["config"]["flop_per_step"] == flop
    for name in ("pyrnn", "torch"):
        assert row[f"{name}_gflops"] == pytest.approx(flop / row[f"{name}_ms"] / 1e6)
    assert row["peak_gflops"] > 0
    assert row["floor_ms"] == pytest.approx(flop / row["peak_gflops"] / 1e6)
    assert row["ceiling"] == pytest.approx(row["torch_ms"] / row["floor_ms"])
    out = capsys.readouterr().out
    assert "speedup" in out and "ceiling" in out


@pytest.mark.parametrize("cell, gates", [("lstm", 4), ("gru", 3), ("rnn", 1)])
def test_step_flop_counts_every_product_three_times(cell, gates):
    # one layer 5 -> 7, head 7 -> 3, 2 x 6 rows: forward products, then dX and dW of each
    forward = 2 * 12 * (gates * 7 * (5 + 7) + 7 * 3)
    assert bench.step_flop(cell, hidden=7, layers=1, embed=5, vocab=3, batch=2, seq=6) == \
        3 * forward


def test_defaults_are_the_training_defaults():
    from pyrnn.charlm import TrainConfig

    cfg = TrainConfig()
    params = inspect.signature(bench.run).parameters
    got = {k: params[k].default for k in ("cell", "hidden", "layers", "embed", "batch", "seq")}
    assert got == dict(cell=cfg.cell, hidden=cfg.hidden, layers=cfg.layers, embed=cfg.embed,
                       batch=cfg.batch, seq=cfg.bptt)
    assert (bench.DEFAULTS.lr, bench.DEFAULTS.clip) == (cfg.lr, cfg.clip)


@pytest.mark.parametrize("argv, message", [
    (["--threads", "1,x"], "positive integer"),
    (["--threads", "0"], "positive integer"),
    (["--threads", "1,1"], "repeat"),
    (["--hidden", "-3"], "positive integer"),
    (["--cell", "transformer"], "invalid choice"),
])
def test_bad_arguments_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
