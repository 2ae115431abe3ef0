"""The adding-problem example (pyrnn.examples.adding): its data and a short training run."""
from __future__ import annotations

import numpy as np
import pytest

from pyrnn.examples.adding import TRIVIAL_MSE, adding_batch, main, train_model, trivial_mse


def test_adding_batch_targets_are_the_sum_of_the_marked_values():
    rng = np.random.default_rng(0)
    T, B = 100, 256
    x, y = adding_batch(rng, B, T)
    assert x.shape == (T, B, 2) and y.shape == (B,)
    assert x.dtype == np.float32 and y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert np.all(markers.sum(axis=0) == 2)
    # one marker in each half
    assert np.all(markers[: T // 2].sum(axis=0) == 1) and np.all(markers[T // 2:].sum(axis=0) == 1)
    np.testing.assert_allclose(y, (values * markers).sum(axis=0), rtol=1e-6)
    for b in range(5):  # spelled out, for a few rows
        first, second = np.flatnonzero(markers[:, b])
        assert first < T // 2 <= second
        assert y[b] == pytest.approx(values[first, b] + values[second, b], rel=1e-6)


def test_trivial_baseline_is_the_variance_of_the_sum():
    _, y = adding_batch(np.random.default_rng(1), 20000, 10)
    assert TRIVIAL_MSE == pytest.approx(1 / 6)
    assert trivial_mse(y) == pytest.approx(1 / 6, rel=0.05)
    assert np.mean(y) == pytest.approx(1.0, abs=0.02)


def test_batches_are_reproducible():
    a = adding_batch(np.random.default_rng(3), 4, 20)
    b = adding_batch(np.random.default_rng(3), 4, 20)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))


@pytest.mark.parametrize("clip", [1.0, None])
def test_tiny_lstm_run_lowers_the_loss(clip):
    """From the untrained output (about 0, so MSE about E[sum^2] = 7/6) to near the mean."""
    test = adding_batch(np.random.default_rng(99), 256, 20)
    row = train_model("lstm", clip, steps=60, T=20, batch=32, hidden=16, lr=1e-2, seed=0,
                      test=test)
    losses = row["losses"]
    assert len(losses) == 60 and not row["diverged"]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    assert row["test_mse"] < 0.5 * row["first_mse"]


def test_main_prints_a_table(capsys):
    rows = main(["--T", "12", "--steps", "5", "--batch", "8", "--hidden", "8", "--cells", "rnn"])
    out = capsys.readouterr().out
    assert "trivial baseline" in out and "0.1667" in out
    assert len(rows) == 2 and {r["clip"] for r in rows} == {1.0, None}
    assert out.count("rnn ") >= 2


def test_main_rejects_bad_arguments():
    with pytest.raises(SystemExit) as exc:
        main(["--cells", "gru"])
    assert exc.value.code != 0
