"""The char-LM on non-ASCII text: the lectures' exercise continues Russian verse. Train briefly on
Cyrillic text, sample from it, and show it on the viz page (issue 22, item 5)."""
from __future__ import annotations

import codecs
import json
from html.parser import HTMLParser

import pytest

from pyrnn.charlm.cli import main
from pyrnn.charlm.data import read_text

from child_python import run

# A. S. Pushkin, "Winter Morning" (1829), the first three stanzas; public domain.
VERSE = """\
Мороз и солнце; день чудесный!
Еще ты дремлешь, друг прелестный —
Пора, красавица, проснись:
Открой сомкнуты негой взоры
Навстречу северной Авроры,
Звездою севера явись!

Вечор, ты помнишь, вьюга злилась,
На мутном небе мгла носилась;
Луна, как бледное пятно,
Сквозь тучи мрачные желтела,
И ты печальная сидела —
А нынче... погляди в окно:

Под голубыми небесами
Великолепными коврами,
Блестя на солнце, снег лежит;
Прозрачный лес один чернеет,
И ель сквозь иней зеленеет,
И речка подо льдом блестит.

"""


def _cyrillic(text: str) -> int:
    return sum("\u0400" <= ch <= "\u04ff" for ch in text)


@pytest.fixture(scope="module")
def verse_model(tmp_path_factory):
    """A small LSTM trained through the CLI on the verse (repeated: it is short)."""
    folder = tmp_path_factory.mktemp("verse")
    corpus = folder / "verse.txt"
    corpus.write_text(VERSE * 8, encoding="utf-8")
    ckpt, summary = folder / "lm.npz", folder / "s.json"
    code = main(["--text", str(corpus), "--steps", "80", "--time-budget", "0", "--hidden", "64",
                 "--layers", "1", "--embed", "16", "--batch", "8", "--bptt", "32", "--lr", "0.01",
                 "--threads", "1", "--seed", "0", "--checkpoint", str(ckpt),
                 "--summary-json", str(summary), "--sample-length", "60", "--progress", "off"])
    assert code == 0
    return folder, corpus, ckpt, summary


def test_training_on_cyrillic_beats_the_unigram_baseline_and_samples_cyrillic(verse_model,
                                                                             capsys):
    folder, corpus, ckpt, summary = verse_model
    raw = summary.read_text(encoding="utf-8")
    s = json.loads(raw)
    assert s["corpus"]["vocab_size"] == len(set(VERSE))
    assert s["val_loss"] < s["unigram_loss"] - 0.3
    for sample in s["samples"].values():
        assert _cyrillic(sample) > 20 and set(sample) <= set(VERSE)
    assert _cyrillic(raw) > 40  # the JSON keeps the letters, not \u escapes

    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(ckpt), "--prime", "Мороз и", "--length", "50",
                 "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Мороз и") and _cyrillic(text) > 20 and set(text) <= set(VERSE)
    with pytest.raises(SystemExit):  # a Latin prime is outside this vocabulary
        main(["sample", "--checkpoint", str(ckpt), "--prime", "Frost"])
    assert "vocabulary" in capsys.readouterr().err


class _Page(HTMLParser):
    """The characters of each <pre class="text"> block, one per <span>, and the meta charset."""

    def __init__(self):
        super().__init__()
        self.blocks, self.span, self.charset = [], None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "meta" and "charset" in attrs:
            self.charset = attrs["charset"]
        elif tag == "pre" and attrs.get("class") == "text":
            self.blocks.append([])
        elif tag == "span" and self.blocks:
            self.span = ""

    def handle_endtag(self, tag):
        if tag == "span" and self.span is not None and self.blocks:
            self.blocks[-1].append(self.span)
            self.span = None

    def handle_data(self, data):
        if self.span is not None:
            self.span += data


def test_viz_page_shows_the_cyrillic_text(verse_model):
    folder, corpus, ckpt, _ = verse_model
    shown = folder / "shown.txt"
    text = VERSE[:200]
    shown.write_text(text, encoding="utf-8")
    page_path = folder / "page.html"
    assert main(["viz", "--checkpoint", str(ckpt), "--text", str(shown),
                 "--out", str(page_path)]) == 0
    raw = page_path.read_bytes()
    page = raw.decode("utf-8")  # written as UTF-8 ...
    parser = _Page()
    parser.feed(page)
    assert parser.charset and codecs.lookup(parser.charset).name == "utf-8"  # ... and says so
    assert len(parser.blocks) == 3
    for spans in parser.blocks:
        assert spans == list(text)  # one span per character, every letter intact
    for letter in set(text) - set(" \n"):  # the letters themselves, not entities or escapes
        assert f">{letter}</span>" in page


def test_cyrillic_samples_survive_an_ascii_stdout(verse_model):
    """Printed to a stream that cannot encode Cyrillic, the sample comes out as escapes."""
    _, _, ckpt, _ = verse_model
    code = ("from pyrnn.charlm.cli import main\n"
            f"main(['sample', '--checkpoint', {str(ckpt)!r}, '--prime', 'Мороз', "
            "'--length', '20', '--seed', '1'])\n")
    result = run(code, PYTHONIOENCODING="ascii")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    decoded = result.stdout.encode("ascii").decode("unicode_escape")
    assert decoded.startswith("Мороз") and _cyrillic(decoded) >= 10


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + VERSE.encode("utf-8"))
    assert read_text(path) == VERSE
    assert read_text(path, max_chars=5) == VERSE[:5]
