"""The character-level language model (pyrnn.charlm): learning, checkpoints, sampling, the
HTML cell visualisation and the command line's error handling."""
from __future__ import annotations

import json
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from pyrnn.charlm import (CharLM, CharLMError, Generator, TrainConfig, Vocab, load_checkpoint,
                          save_checkpoint, stdlib_corpus, train)
from pyrnn.charlm.cli import main
from pyrnn.charlm.data import split_train_val, streams, unigram_loss
from pyrnn.charlm.viz import make_page, text_features
from pyrnn.nn import softmax_cross_entropy
from pyrnn.optim import Adam


def _structured_text(n_chars: int, seed: int = 0) -> str:
    """Sentences from a tiny grammar: far more predictable than their letter frequencies."""
    rng = np.random.default_rng(seed)
    subjects = ["the cat", "a dog", "my bird", "the fox"]
    verbs = ["sat on", "ran to", "looked at", "jumped over"]
    objects = ["the mat.", "a log.", "the red box.", "my hat."]
    parts, size = [], 0
    while size < n_chars:
        s = f"{subjects[rng.integers(4)]} {verbs[rng.integers(4)]} {objects[rng.integers(4)]}\n"
        parts.append(s)
        size += len(s)
    return "".join(parts)[:n_chars]


@pytest.fixture(scope="module")
def tiny_trained():
    """A small LSTM trained for a few dozen steps on structured text (shared by tests)."""
    text = _structured_text(6000)
    cfg = TrainConfig(hidden=24, layers=2, embed=8, batch=8, bptt=16, lr=1e-2, time_budget=0,
                      max_steps=40, eval_every=1e9, threads=1)
    return train(text, cfg, progress="off"), text


# ---------------------------------------------------------------------- data
def test_vocab_round_trip_and_unknown_chars():
    text = "héllo wörld ✓ \n\t\"<&>\""
    vocab = Vocab.from_text(text)
    assert len(vocab) == len(set(text))
    assert vocab.decode(vocab.encode(text)) == text
    assert vocab.chars == "".join(sorted(set(text)))
    with pytest.raises(CharLMError, match="not in the model's vocabulary"):
        vocab.encode("z")


def test_streams_split_and_unigram():
    data = np.arange(103)
    train_part, val_part = split_train_val(data, 0.1)
    assert len(val_part) == 10 and np.array_equal(np.concatenate([train_part, val_part]), data)
    m = streams(train_part, 4)
    assert m.shape == (23, 4)
    assert np.array_equal(m[:, 1], np.arange(23, 46))  # stream b is a contiguous slice
    # uniform counts -> uniform distribution -> log(V)
    assert unigram_loss(np.arange(10), np.arange(10), 10) == pytest.approx(np.log(10))


def test_default_corpus_is_deterministic_python_source():
    a, files_a = stdlib_corpus(50_000)
    b, files_b = stdlib_corpus(50_000)
    assert a == b and files_a == files_b
    assert len(a) == 50_000 and files_a == sorted(files_a)
    assert "def " in a and "import " in a


# ---------------------------------------------------------------------- learning
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_hello_toy_predicts_ello(cell):
    """The classic toy: vocabulary h, e, l, o; from "hell" predict "ello". The two l's need
    different predictions (l then o), which only the recurrent state can tell apart."""
    vocab = Vocab.from_text("helo")
    model = CharLM(len(vocab), hidden=16, layers=1, embed=8, cell=cell, seed=0, num_threads=1)
    x = vocab.encode("hell")[:, None]   # [T=4, B=1]
    y = vocab.encode("ello")[:, None]
    opt = Adam(model.params, lr=0.05)
    losses = []
    for _ in range(60):
        model.zero_grad()
        logits, _ = model(x)
        loss, dlogits = softmax_cross_entropy(logits, y)
        model.backward(dlogits)
        opt.step(model.grads)
        losses.append(loss)
    model.eval()
    logits, _ = model(x)
    assert vocab.decode(logits.argmax(axis=-1)[:, 0]) == "ello"
    assert losses[-1] < 0.1 * losses[0]


def test_short_training_beats_unigram_baseline():
    text = _structured_text(30_000, seed=1)
    cfg = TrainConfig(hidden=64, layers=1, embed=16, batch=16, bptt=32, lr=1e-2, time_budget=0,
                      max_steps=120, eval_every=1e9, threads=1, val_fraction=0.1)
    result = train(text, cfg, progress="off")
    s = result.summary
    assert s["steps"] == 120
    assert s["val_loss"] < s["unigram_loss"] - 0.5, s
    assert s["val_bits_per_char"] == pytest.approx(s["val_loss"] / np.log(2))
    assert s["val_perplexity"] == pytest.approx(np.exp(s["val_loss"]))
    assert s["chars_per_s"] > 0 and s["corpus"]["vocab_size"] == len(set(text))
    assert result.history[-1]["val_loss"] == s["val_loss"]


# ---------------------------------------------------------------------- checkpoints, sampling
def test_checkpoint_round_trip_same_logits(tiny_trained, tmp_path):
    result, text = tiny_trained
    path = save_checkpoint(tmp_path / "m.npz", result.model, result.vocab, {"note": "test"})
    raw = np.load(path, allow_pickle=False)  # readable without pickle
    assert raw["vocab"].dtype.kind == "i" and raw["config"].dtype == np.uint8
    assert json.loads(raw["config"].tobytes())["note"] == "test"
    model, vocab, config = load_checkpoint(path)
    assert vocab.chars == result.vocab.chars
    assert config["model"] == result.model.config
    idx = result.vocab.encode(text[:50])[:, None]
    result.model.eval()
    model.eval()
    a, state_a = result.model(idx)
    b, state_b = model(idx)
    assert np.array_equal(a, b)
    assert all(np.array_equal(s, t) for s, t in zip(state_a, state_b))


def test_sampling_is_reproducible_with_a_seed(tiny_trained, tmp_path):
    result, _ = tiny_trained
    gen = Generator(result.model, result.vocab)
    first = gen.generate(80, temperature=1.0, prime="the ", seed=7)
    again = gen.generate(80, temperature=1.0, prime="the ", seed=7)
    assert first == again and len(first) == 80
    assert set(first) <= set(result.vocab.chars)
    path = save_checkpoint(tmp_path / "m.npz", result.model, result.vocab)
    model, vocab, _ = load_checkpoint(path)
    assert Generator(model, vocab).generate(80, 1.0, "the ", seed=7) == first
    others = {gen.generate(80, 1.0, "the ", seed=s) for s in range(3)}
    assert len(others) > 1
    assert gen.generate(0, 0.5, "the ") == ""


def test_stepwise_generation_matches_whole_sequence_forward(tiny_trained):
    """Feeding one character per kernel call gives the same logits as one call over all."""
    result, text = tiny_trained
    model, vocab = result.model, result.vocab
    model.eval()
    logits, _ = model(vocab.encode(text[:30])[:, None])
    gen = Generator(model, vocab)
    gen.feed(text[0])
    for t in range(1, 30):
        gen.feed(text[t])
    np.testing.assert_allclose(gen.logits, logits[-1, 0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_cell_stepped_sampling_matches_whole_sequence_forward(cell):
    """generate() steps pyrnn's cells one character at a time: its final logits are those of
    one forward over the prime and everything it generated."""
    vocab = Vocab.from_text("abcdefgh \n")
    model = CharLM(len(vocab), hidden=24, layers=2, embed=8, cell=cell, seed=3).eval()
    gen = Generator(model, vocab)
    out = gen.generate(40, temperature=1.0, prime="abc ", seed=1)
    logits, _ = model(vocab.encode("abc " + out)[:, None])
    np.testing.assert_allclose(gen.logits, logits[-1, 0], rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------- visualisation
class _SpanCollector(HTMLParser):
    """Per <pre class="text"> block, the text of every span with a background colour."""

    def __init__(self):
        super().__init__()
        self.blocks, self.in_pre, self.span, self.stray = [], False, None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "pre" and "text" in (attrs.get("class") or ""):
            self.in_pre = True
            self.blocks.append([])
        elif tag == "span" and self.in_pre:
            assert "background:#" in (attrs.get("style") or "")
            self.span = ""

    def handle_endtag(self, tag):
        if tag == "span" and self.in_pre:
            self.blocks[-1].append(self.span)
            self.span = None
        elif tag == "pre":
            self.in_pre = False

    def handle_data(self, data):
        if self.in_pre:
            if self.span is None:
                self.stray.append(data)
            else:
                self.span += data


def test_viz_page_has_one_coloured_span_per_character(tiny_trained):
    result, text = tiny_trained
    sample = text[:300]
    page, chosen = make_page(result.model, result.vocab, sample, cells="auto", layer=-1)
    parser = _SpanCollector()
    parser.feed(page)
    parser.close()
    assert len(parser.blocks) == len(chosen) == 3
    for spans in parser.blocks:
        assert len(spans) == len(sample)
        assert all(len(s) == 1 for s in spans)
        assert "".join(spans) == sample
    assert not "".join(parser.stray).strip()
    # this text has no quotes or brackets: only "position in line" varies; other cells fill in
    assert chosen[0][1] == "position in line" and -1 <= chosen[0][2] <= 1
    assert f"position in line, r = {chosen[0][2]:+.3f}" in page


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_viz_escapes_html(cell):
    text = 'if a < b and c > d: s = "<b>&amp;</b>"  # \'x\'\n'
    vocab = Vocab.from_text(text)
    model = CharLM(len(vocab), hidden=8, layers=2, embed=4, cell=cell, seed=1)
    page, chosen = make_page(model, vocab, text, cells="0,3", layer=0)
    assert [c for c, _, _ in chosen] == [0, 3]
    assert "<b>&amp;" not in page
    parser = _SpanCollector()
    parser.feed(page)
    assert len(parser.blocks) == 2
    assert all("".join(spans) == text and len(spans) == len(text) for spans in parser.blocks)


def test_text_features():
    text = 'f(a, "b(") # it\'s\nx'
    f = text_features(text)
    assert f["inside quotes"].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert f["bracket depth"][:10].tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert f["bracket depth"][10] == 0
    assert f["position in line"][-1] == 0 and f["position in line"][-2] == 17


# ---------------------------------------------------------------------- command line
def _error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code not in (0, None)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_cli_bad_arguments(tmp_path, capsys, monkeypatch, tiny_trained):
    missing = tmp_path / "missing.txt"
    assert "not found" in _error(capsys, ["--text", str(missing)])
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert "empty" in _error(capsys, ["--text", str(empty)])
    result = tiny_trained[0]
    ckpt = save_checkpoint(tmp_path / "m.npz", result.model, result.vocab)
    for t in ("0", "-1", "nan"):
        assert "temperature" in _error(capsys, ["sample", "--checkpoint", ckpt,
                                                "--temperature", t])
    assert "length" in _error(capsys, ["sample", "--checkpoint", ckpt, "--length", "-1"])
    assert "not found" in _error(capsys, ["sample", "--checkpoint", str(tmp_path / "no.npz")])
    assert "vocabulary" in _error(capsys, ["sample", "--checkpoint", ckpt, "--prime", "Z€"])
    page_text = tmp_path / "t.txt"
    page_text.write_text(tiny_trained[1][:100])
    viz = ["viz", "--checkpoint", ckpt, "--text", str(page_text), "--out", str(tmp_path / "p.html")]
    assert "--cells" in _error(capsys, viz + ["--cells", "1,999"])
    assert "--cells" in _error(capsys, viz + ["--cells", "one"])
    assert "--layer" in _error(capsys, viz + ["--layer", "5"])
    assert "--cell" in _error(capsys, ["--cell", "transformer"])
    assert "hidden" in _error(capsys, ["--hidden", "0"])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert "matplotlib" in _error(capsys, ["--plot", str(tmp_path / "p.png")])
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert "checkpoint" in _error(capsys, ["sample", "--checkpoint", str(bad)])


def test_cli_train_sample_viz_end_to_end(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(_structured_text(8000, seed=2))
    ckpt, summary, page = tmp_path / "lm.npz", tmp_path / "s.json", tmp_path / "v.html"
    code = main(["--text", str(corpus), "--steps", "25", "--time-budget", "0", "--hidden", "32",
                 "--layers", "1", "--embed", "8", "--batch", "8", "--bptt", "16", "--lr", "0.01",
                 "--threads", "1", "--checkpoint", str(ckpt), "--summary-json", str(summary),
                 "--sample-length", "40", "--progress", "off"])
    assert code == 0
    out = capsys.readouterr().out
    assert "unigram baseline" in out and "temperature 0.5" in out and "temperature 1.0" in out
    s = json.loads(summary.read_text())
    for key in ("val_loss", "val_bits_per_char", "val_perplexity", "unigram_loss",
                "train_time_s", "chars_per_s", "config"):
        assert key in s
    assert s["config"]["hidden"] == 32 and s["steps"] == 25
    assert ckpt.exists()

    assert main(["sample", "--checkpoint", str(ckpt), "--length", "30", "--seed", "1",
                 "--prime", "the "]) == 0
    first = capsys.readouterr().out
    main(["sample", "--checkpoint", str(ckpt), "--length", "30", "--seed", "1", "--prime", "the "])
    assert capsys.readouterr().out == first and first.startswith("the ")
    assert len(first.rstrip("\n")) >= 4 + 30 - 1

    assert main(["viz", "--checkpoint", str(ckpt), "--text", str(corpus), "--out", str(page),
                 "--max-chars", "200", "--cells", "auto"]) == 0
    parser = _SpanCollector()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.blocks and all(len(b) == 200 for b in parser.blocks)
