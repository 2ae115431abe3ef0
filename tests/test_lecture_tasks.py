"""The lectures' task examples (pyrnn.examples.classify, .tagging, .captioning): their data,
their gradients against finite differences, short runs that must beat their baselines, and
their argument errors."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from pyrnn.examples import captioning, classify, tagging
from pyrnn.examples.captioning import COLOURS, SIZE, Captioner, draw_images
from pyrnn.examples.classify import Classifier
from pyrnn.examples.common import Vocab, pad_batch
from pyrnn.examples.tagging import TAGS, Tagger, char_tags


# ---------------------------------------------------------------------- gradients
def _check_gradients(params, loss, rng, per_param=4, eps=1e-6):
    """Central differences of ``loss()`` (float64 model) against the gradients it leaves in
    ``params.grads``, at the largest-gradient entry and a few random ones of every parameter."""
    params.zero_grad()
    loss()
    grads = {k: g.copy() for k, g in params.grads.items()}
    for name, p in params.params.items():
        g = grads[name]
        flat = [int(np.argmax(np.abs(g)))] + list(rng.integers(0, g.size, per_param))
        for i in flat:
            idx = np.unravel_index(i, g.shape)
            old = p[idx]
            p[idx] = old + eps
            up = loss()
            p[idx] = old - eps
            down = loss()
            p[idx] = old
            numeric = (up - down) / (2 * eps)
            assert g[idx] == pytest.approx(numeric, rel=1e-5, abs=1e-9), (name, idx)
    assert any(np.abs(g).max() > 1e-4 for g in grads.values())


@pytest.mark.parametrize("cell,pool", [("lstm", "mean"), ("lstm", "last"), ("gru", "mean"),
                                       ("gru", "last")])
def test_classifier_gradients(cell, pool):
    rng = np.random.default_rng(0)
    model = Classifier(9, 3, embed=4, hidden=5, cell=cell, pool=pool, seed=1, dtype=np.float64)
    x, lengths = pad_batch([rng.integers(2, 9, n) for n in (6, 1, 4, 6)])
    labels = np.array([0, 2, 1, 2])
    _check_gradients(model.params, lambda: model.loss_and_grads(x, lengths, labels), rng)


def test_tagger_gradients():
    rng = np.random.default_rng(1)
    model = Tagger(8, embed=3, hidden=4, layers=2, seed=2, dtype=np.float64)
    x, lengths = pad_batch([rng.integers(2, 8, n) for n in (5, 3, 7)])
    tags = rng.integers(0, len(TAGS), x.shape)
    _check_gradients(model.params, lambda: model.loss_and_grads(x, lengths, tags), rng)


def test_captioner_gradients_reach_the_image_encoder():
    rng = np.random.default_rng(2)
    vocab = Vocab("a big red blue square circle at the top left".split(), extra=("<bos>", "<eos>"))
    model = Captioner(len(vocab), embed=4, hidden=5, seed=3, dtype=np.float64)
    images, caps = draw_images(rng, 3)
    batch = captioning._teacher_batch(vocab, ["a red square", "a big blue circle at the top",
                                              "a circle"])
    _check_gradients(model.params,
                     lambda: model.loss_and_grads(images.astype(np.float64), *batch), rng)
    assert np.abs(model.params.grads["encoder.weight"]).max() > 0


# ---------------------------------------------------------------------- data
def test_char_tags_follow_tokenize():
    source = "if x1 == 0x1F:  # yes\n    s = 'a b'\n"
    spans = [("if", "keyword"), (" ", "whitespace"), ("x1", "name"), (" ", "whitespace"),
             ("==", "operator"), (" ", "whitespace"), ("0x1F", "number"), (":", "operator"),
             ("  ", "whitespace"), ("# yes", "comment"), ("\n    ", "whitespace"),
             ("s", "name"), (" ", "whitespace"), ("=", "operator"), (" ", "whitespace"),
             ("'a b'", "string"), ("\n", "whitespace")]
    assert "".join(text for text, _ in spans) == source
    expected = [TAGS.index(tag) for text, tag in spans for _ in text]
    assert char_tags(source).tolist() == expected
    multi = 'x = """one\ntwo"""\n'
    assert [TAGS[t] for t in char_tags(multi)[4:16]] == ["string"] * 12


def test_drawn_images_match_their_captions():
    images, captions = draw_images(np.random.default_rng(5), 200)
    assert images.shape == (200, SIZE, SIZE, 3) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    areas = {}
    for image, caption in zip(images, captions):
        words = caption.split()
        assert words[0] == "a" and words[-4:-2] == ["at", "the"] and len(words) in (7, 8)
        colour, shape = words[-6], words[-5]
        shape_pixels = np.linalg.norm(image - 0.1, axis=-1) > 0.5
        mean = image[shape_pixels].mean(axis=0)
        nearest = min(COLOURS, key=lambda c: np.linalg.norm(mean - np.array(COLOURS[c])))
        assert nearest == colour, caption
        ys, xs = np.nonzero(shape_pixels)
        assert (ys.mean() < SIZE / 2) == (words[-2] == "top"), caption
        assert (xs.mean() < SIZE / 2) == (words[-1] == "left"), caption
        areas.setdefault((shape, words[1] == "big"), []).append(shape_pixels.sum())
    for shape in captioning.SHAPES:  # big shapes are bigger
        assert min(areas[(shape, True)]) > max(areas[(shape, False)])


# ---------------------------------------------------------------------- short runs vs baselines
# Budgets and margins: over seeds 0..3 these runs beat their baselines by at least 0.17
# (classify), 0.31 (tagging) and 0.5 (captioning, exact match), well above the asserted margins.
def _summary(module, tmp_path, argv):
    path = tmp_path / "summary.json"
    returned = module.main(argv + ["--progress", "off", "--summary-json", str(path)])
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(returned))
    for key in ("metric", "value", "baseline", "higher_is_better"):
        assert key in saved
    assert saved["higher_is_better"] is True
    return saved


def test_classify_short_run_beats_the_majority_class(tmp_path, capsys):
    s = _summary(classify, tmp_path, ["--steps", "200", "--batch", "16", "--hidden", "32",
                                      "--embed", "16", "--max-len", "120", "--test-size", "400",
                                      "--seed", "0"])
    assert s["metric"] == "test accuracy" and 0.1 < s["baseline"] < 0.5
    assert s["value"] > s["baseline"] + 0.1
    assert set(s["per_class_accuracy"]) == set(classify.DEFAULT_PACKAGES)
    assert "baseline (always" in capsys.readouterr().out


def test_tagging_short_run_beats_the_most_frequent_tag(tmp_path):
    s = _summary(tagging, tmp_path, ["--steps", "200", "--lr", "0.02", "--hidden", "24",
                                     "--embed", "16", "--corpus-chars", "120000",
                                     "--test-windows", "60", "--seed", "0"])
    assert s["metric"] == "per-character accuracy" and 0.3 < s["baseline"] < 0.9
    assert s["value"] > s["baseline"] + 0.15
    assert set(s["per_tag_accuracy"]) == set(TAGS)


def test_captioning_short_run_beats_the_most_frequent_caption(tmp_path, capsys):
    s = _summary(captioning, tmp_path, ["--steps", "800", "--hidden", "48", "--test-size", "200",
                                        "--show", "4",
                                        "--grid", "", "--seed", "0"])
    assert s["metric"] == "exact-match caption accuracy" and s["baseline"] < 0.05
    assert s["value"] > s["baseline"] + 0.15
    assert s["word_accuracy"] > 0.7
    out = capsys.readouterr().out
    assert "temperature 0.7" in out and "(r/g/b/y" in out
    assert all(e["greedy"].startswith("a ") for e in s["examples"])


def test_captioning_shows_a_png_grid_or_text(tmp_path, monkeypatch, capsys):
    images, captions = draw_images(np.random.default_rng(0), 3)
    with monkeypatch.context() as patch:  # restores the real module (if any) afterwards
        patch.setitem(sys.modules, "matplotlib", None)  # as if not installed
        note = captioning.show(images, captions, captions[::-1], str(tmp_path / "g.png"))
    assert "not installed" in note and not (tmp_path / "g.png").exists()
    out = capsys.readouterr().out
    assert out.count("\n") >= SIZE and captions[0] in out and "(true: " in out
    pytest.importorskip("matplotlib")
    note = captioning.show(images, captions, captions, str(tmp_path / "g.png"))
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------- argument errors
@pytest.mark.parametrize("module,argv,message", [
    (classify, ["--steps", "0"], "--steps"),
    (classify, ["--lr", "-1"], "--lr"),
    (classify, ["--min-len", "50", "--max-len", "10"], "--min-len"),
    (classify, ["--packages", "email"], "at least 2"),
    (classify, ["--packages", "email,no_such_package"], "no_such_package"),
    (classify, ["--pool", "max"], "--pool"),
    (tagging, ["--hidden", "x"], "--hidden"),
    (tagging, ["--corpus-chars", "10"], "--corpus-chars"),
    (tagging, ["--summary-json", "/no/such/folder/s.json"], "--summary-json"),
    (tagging, ["--max-len", "50000"], "--max-len"),
    (captioning, ["--grid", "/no/such/folder/g.png"], "--grid"),
    (captioning, ["--temperature", "0"], "--temperature"),
    (captioning, ["--show", "9", "--test-size", "5"], "--show"),
    (captioning, ["--clip", "-1"], "--clip"),
])
def test_bad_arguments_end_with_a_message(module, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        module.main(argv + ["--progress", "off"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
