"""The pieces the lectures' task examples share (pyrnn.examples.common)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pyrnn.examples.common import (PAD, UNK, ExampleError, Params, Vocab, base_parser, fit,
                                   pad_batch, stdlib_sources, valid_mask, write_summary)
from pyrnn.nn import Linear


def test_vocab_reserves_pad_and_unk_and_keeps_first_appearance_order():
    vocab = Vocab("abracadabra", min_count=2, extra=("<bos>",))
    assert vocab.itos[:3] == ["<pad>", "<unk>", "<bos>"] and (PAD, UNK) == (0, 1)
    assert vocab.itos[3:] == ["a", "b", "r"]          # c and d appear once: dropped
    assert vocab.encode("abcz").tolist() == [3, 4, UNK, UNK]
    assert vocab.decode([3, 5, 2]) == ["a", "r", "<bos>"]
    assert "a" in vocab and "c" not in vocab and len(vocab) == 6
    words = Vocab("the cat the hat".split())
    assert words.decode(words.encode("the hat".split())) == ["the", "hat"]


def test_pad_batch_is_time_major_with_lengths():
    x, lengths = pad_batch([np.array([5, 6, 7]), np.array([8]), np.array([9, 10])])
    assert x.shape == (3, 3) and x.dtype == np.int64
    assert lengths.tolist() == [3, 1, 2]
    assert x[:, 0].tolist() == [5, 6, 7] and x[:, 1].tolist() == [8, PAD, PAD]
    assert x[:, 2].tolist() == [9, 10, PAD]
    assert valid_mask(lengths, 3).tolist() == [[True, True, True], [True, False, True],
                                               [True, False, False]]
    with pytest.raises(ValueError, match="no sequences"):
        pad_batch([])


def test_params_share_the_layers_arrays():
    a, b = Linear(3, 2, seed=0), Linear(2, 1, bias=False, seed=1)
    params = Params(first=a, second=b)
    assert sorted(params.params) == ["first.bias", "first.weight", "second.weight"]
    assert params.params["first.weight"] is a.weight
    assert params.num_params == 3 * 2 + 2 + 2
    a.grads["weight"] += 1.0
    params.zero_grad()
    assert not a.grads["weight"].any()


def _least_squares(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
    layer = Linear(4, 1, seed=seed)

    def step(_):
        err = layer(x) - y
        layer.backward((2.0 / err.size) * err)
        return float(np.mean(err ** 2))
    return layer, step


def test_fit_trains_and_clips_the_gradient_norm():
    layer, step = _least_squares()
    params = Params(lin=layer)
    run = fit(params, step, 300, lr=0.05, clip=0.0, progress="off")
    assert run["steps"] == 300 and not run["interrupted"]
    assert run["losses"][-1] < 1e-3 * run["losses"][0]
    np.testing.assert_allclose(layer.weight.ravel(), [1.0, -2.0, 0.5, 3.0], atol=0.05)

    layer, step = _least_squares(1)
    params = Params(lin=layer)
    fit(params, step, 1, lr=0.01, clip=1e-3, progress="off")
    # the gradients left behind are the clipped ones the optimizer used
    norm = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in params.grads.values()))
    assert norm == pytest.approx(1e-3, rel=1e-3)


def test_fit_stops_at_the_time_budget_and_on_divergence():
    layer, step = _least_squares()
    run = fit(Params(lin=layer), step, 10**9, lr=0.01, clip=1.0, time_budget=0.2, progress="off")
    assert 0 < run["steps"] < 10**9 and run["seconds"] >= 0.2
    with pytest.raises(ExampleError, match="diverged at step 3"):
        fit(Params(lin=layer), lambda s: float("nan") if s == 3 else 1.0, 10, lr=0.01,
            clip=1.0, progress="off")


def test_summary_json(tmp_path):
    path = tmp_path / "s.json"
    out = write_summary(str(path), None, "accuracy", 0.75, 0.25, True, steps=3, tag="ы")
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved == out == {"metric": "accuracy", "value": 0.75, "baseline": 0.25,
                            "higher_is_better": True, "steps": 3, "tag": "ы"}
    with pytest.raises(ExampleError, match="cannot write"):
        write_summary(str(tmp_path), None, "accuracy", 0.5, 0.25, True)  # a directory
    parser = base_parser("prog", "d", steps=1, batch=1, lr=0.1, hidden=1)
    with pytest.raises(SystemExit):
        write_summary(str(tmp_path), parser, "accuracy", 0.5, 0.25, True)


def test_stdlib_sources_are_python_files_of_the_package():
    files = stdlib_sources("json")
    names = [n for n, _ in files]
    assert names == sorted(names) and any(n.endswith("decoder.py") for n in names)
    assert all(n.startswith("json") and n.endswith(".py") for n in names)
    assert all("def " in text or "import" in text for _, text in files)
    assert stdlib_sources("no_such_package_here") == []
    top = stdlib_sources()
    assert top and all("/" not in n and "\\" not in n for n, _ in top)


def test_fit_decays_the_learning_rate_along_a_cosine():
    """With a constant gradient every Adam step moves a parameter by the learning rate."""
    layer = Linear(1, 1, bias=False, seed=0)
    seen = []

    def step(_):
        seen.append(float(layer.weight[0, 0]))
        layer.grads["weight"][...] = 1.0
        return 0.0
    fit(Params(lin=layer), step, 6, lr=0.1, clip=0.0, lr_final=0.1, progress="off")
    seen.append(float(layer.weight[0, 0]))
    moves = -np.diff(seen)
    expected = [0.1 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t / 6))) for t in range(6)]
    np.testing.assert_allclose(moves, expected, rtol=1e-4)
