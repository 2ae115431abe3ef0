"""Which cells track what: run a trained model over a text and colour each character by
``tanh(c)`` of chosen LSTM cells (``h`` for GRU/RNN), in a self-contained HTML page.

The layers below the chosen one run over the whole text in one kernel call each; the chosen
layer runs one step per kernel call (T=1, B=1, inference mode, state carried) so that its
state after every character is seen. ``cells="auto"`` picks, for each simple feature of the
text, the cell whose activation has the largest absolute Pearson correlation with it:

- ``inside quotes``: 1 inside a string literal (``'...'``, ``"..."`` or triple-quoted, with
  backslash escapes; ``#`` comments are skipped), quote characters included, else 0;
- ``bracket depth``: how many ``(``, ``[``, ``{`` are open (outside strings and comments);
- ``position in line``: the column, 0 at the start of each line.
"""
from __future__ import annotations

import html
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import functional as F
from ._blas import single_blas_thread
from .data import CharLMError, Vocab
from .model import CharLM

__all__ = ["text_features", "cell_activations", "pick_cells", "parse_cells", "render_html",
           "make_page", "FEATURES"]

FEATURES = ("inside quotes", "bracket depth", "position in line")


def text_features(text: str) -> Dict[str, np.ndarray]:
    """The per-character features listed in the module docstring, as float arrays."""
    n = len(text)
    quotes = np.zeros(n)
    depth = np.zeros(n)
    column = np.zeros(n)
    col, level = 0, 0
    string = None        # the open quote ("'", '"', "'''" or '"""') or None
    comment = False
    i = 0
    while i < n:
        ch = text[i]
        column[i] = col
        depth[i] = level
        step = 1
        if string is not None:
            quotes[i] = 1
            if ch == "\\" and i + 1 < n:
                quotes[i + 1] = 1
                column[i + 1], depth[i + 1] = col + 1, level
                step = 2
            elif text.startswith(string, i):
                step = len(string)
                quotes[i:i + step] = 1
                string = None
            elif ch == "\n" and len(string) == 1:
                quotes[i] = 0  # an unterminated one-line string ends with its line
                string = None
        elif comment:
            comment = ch != "\n"
        elif ch == "#":
            comment = True
        elif ch in "'\"":
            string = ch * 3 if text.startswith(ch * 3, i) else ch
            step = len(string)
            quotes[i:i + step] = 1
        elif ch in "([{":
            level += 1
        elif ch in ")]}":
            level = max(level - 1, 0)
        for k in range(i + 1, min(i + step, n)):  # characters consumed with this one
            column[k], depth[k] = col + (k - i), level
        for k in range(i, min(i + step, n)):
            col = 0 if text[k] == "\n" else col + 1
        i += step
    return {"inside quotes": quotes, "bracket depth": depth, "position in line": column}


def cell_activations(model: CharLM, vocab: Vocab, text: str, layer: int = -1) -> np.ndarray:
    """``[len(text), hidden]``: tanh(c) (LSTM) or h (GRU/RNN) of ``layer`` after each char."""
    if not text:
        raise CharLMError("the text to visualise is empty")
    L = model.layers
    if not -L <= layer < L:
        raise CharLMError(f"--layer must be in 0..{L - 1} for this {L}-layer model, got {layer}")
    layer %= L
    p = model.params
    weights = [tuple(np.ascontiguousarray(p[f"rnn.{k}_l{n}"])
                     for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")) for n in range(L)]
    x = np.ascontiguousarray(model.params["embed.weight"][vocab.encode(text)][:, None, :])
    forward = {"lstm": F.lstm_forward, "gru": F.gru_forward, "rnn": F.rnn_forward}[model.cell]
    with single_blas_thread():
        for n in range(layer):
            x = forward(x, *weights[n], num_threads=1)[0]
        T, H = x.shape[0], model.hidden
        out = np.empty((T, H), dtype=np.float64)
        if model.cell != "lstm":  # the output sequence is the state sequence
            out[:] = forward(x, *weights[layer], num_threads=1)[0][:, 0, :]
            return out
        w = weights[layer]
        h = np.zeros((1, H), model.dtype)
        c = np.zeros((1, H), model.dtype)
        for t in range(T):
            _, (h, c), _ = F.lstm_forward(x[t:t + 1], *w, state=(h, c), num_threads=1)
            out[t] = c[0]
    return np.tanh(out)


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each column of ``a [n, k]`` with ``b [n]``; NaN where either is constant."""
    a = a - a.mean(axis=0)
    b = b - b.mean()
    denom = np.sqrt((a * a).sum(axis=0) * (b * b).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b[:, None]).sum(axis=0) / np.where(denom > 0, denom, 1),
                        np.nan)


def pick_cells(acts: np.ndarray, features: Dict[str, np.ndarray], count: int = 3
               ) -> List[Tuple[int, str, float]]:
    """For each feature (in order), the not yet chosen cell with the largest |r|:
    ``[(cell, feature, r), ...]``; features that are constant in the text are skipped. With
    fewer features than ``count``, the most variable remaining cells fill the list."""
    chosen: List[Tuple[int, str, float]] = []
    used = set()
    for name, values in features.items():
        r = _pearson(acts, values)
        order = [int(i) for i in np.argsort(-np.nan_to_num(np.abs(r), nan=-1.0))
                 if not np.isnan(r[i]) and int(i) not in used]
        if order:
            used.add(order[0])
            chosen.append((order[0], name, float(r[order[0]])))
    for i in np.argsort(-acts.std(axis=0)):
        if len(chosen) >= count:
            break
        if int(i) not in used:
            used.add(int(i))
            chosen.append((int(i), "", float("nan")))
    return chosen


def parse_cells(spec: str, hidden: int) -> Optional[List[int]]:
    """``"auto"`` -> None; ``"3,17,42"`` -> [3, 17, 42], each in 0..hidden-1."""
    spec = spec.strip()
    if spec == "auto":
        return None
    try:
        cells = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise CharLMError(f"--cells must be 'auto' or comma-separated integers, got {spec!r}") \
            from None
    if not cells:
        raise CharLMError("--cells is empty; give 'auto' or cell numbers like 3,17,42")
    bad = [c for c in cells if not 0 <= c < hidden]
    if bad:
        raise CharLMError(f"--cells: {bad} out of range; this model's cells are 0..{hidden - 1}")
    return cells


def _colour(v: float) -> str:
    """-1 -> blue, 0 -> white, +1 -> red."""
    v = max(-1.0, min(1.0, float(v)))
    target = (214, 39, 40) if v > 0 else (31, 119, 180)
    a = abs(v)
    r, g, b = (round(255 + (t - 255) * a) for t in target)
    return f"#{r:02x}{g:02x}{b:02x}"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
pre.text { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px;
           line-height: 1.45; white-space: pre-wrap; border: 1px solid #ddd; padding: 0.8em; }
pre.text span { padding: 1px 0; }
.legend span { display: inline-block; width: 3.2em; text-align: center; font-size: 12px; }
table.info td, table.info th { padding: 0.2em 0.8em; text-align: left; }
"""


def render_html(text: str, acts: np.ndarray, cells: Sequence[Tuple[int, str, float]],
                title: str, notes: Sequence[str] = ()) -> str:
    """The page: for each ``(cell, feature, r)`` a block with one ``<span>`` per character of
    ``text``, its background the cell's value there."""
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{esc(title)}</h1>"]
    for note in notes:
        parts.append(f"<p>{esc(note)}</p>")
    legend = "".join(f'<span style="background:{_colour(v)}">{v:+.1f}</span>'
                     for v in np.linspace(-1, 1, 9))
    parts.append(f'<p class="legend">colour scale: {legend}</p>')
    parts.append('<table class="info"><tr><th>cell</th><th>matches feature</th>'
                 "<th>Pearson r</th></tr>")
    for cell, feature, r in cells:
        shown_r = "" if np.isnan(r) else f"{r:+.3f}"
        parts.append(f"<tr><td>{cell}</td><td>{esc(feature or '(chosen)')}</td>"
                     f"<td>{shown_r}</td></tr>")
    parts.append("</table>")
    chars = list(text)
    for cell, feature, r in cells:
        head = f"cell {cell}"
        if feature:
            head += f": {feature}, r = {r:+.3f}"
        parts.append(f'<h2>{esc(head)}</h2><pre class="text" data-cell="{cell}">')
        values = acts[:, cell]
        parts.append("".join(
            f'<span style="background:{_colour(v)}" title="{v:+.2f}">{esc(ch)}</span>'
            for ch, v in zip(chars, values)))
        parts.append("</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def make_page(model: CharLM, vocab: Vocab, text: str, cells: str = "auto", layer: int = -1,
              source: str = "") -> Tuple[str, List[Tuple[int, str, float]]]:
    """Activations, cell choice and page in one go: ``(html, [(cell, feature, r), ...])``."""
    L = model.layers
    if not -L <= layer < L:
        raise CharLMError(f"--layer must be in 0..{L - 1} for this {L}-layer model, got {layer}")
    chosen_ids = parse_cells(cells, model.hidden)
    acts = cell_activations(model, vocab, text, layer)
    feats = text_features(text)
    if chosen_ids is None:
        chosen = pick_cells(acts, feats)
    else:
        chosen = []
        for cell in chosen_ids:
            rs = {name: float(_pearson(acts[:, cell:cell + 1], f)[0]) for name, f in feats.items()}
            valid = {k: v for k, v in rs.items() if not np.isnan(v)}
            best = max(valid, key=lambda k: abs(valid[k])) if valid else ""
            chosen.append((cell, best, valid.get(best, float("nan"))))
    what = "tanh(c), the LSTM cell state" if model.cell == "lstm" else \
        f"h, the {model.cell.upper()} hidden state"
    title = f"pyrnn-charlm: {model.cell.upper()} cells of layer {layer % L}"
    notes = [f"Each character is coloured by {what} of one cell right after reading it "
             f"(blue -1, white 0, red +1); hover for the value.",
             f"Model: {L} x {model.cell.upper()} {model.hidden}, vocabulary {len(vocab)}. "
             f"Text: {source or 'given text'}, {len(text):,} characters.",
             "Features: inside quotes (string literals), bracket depth (open ( [ {), "
             "position in line (column); r is the Pearson correlation over the text."]
    return render_html(text, acts, chosen, title, notes), chosen
