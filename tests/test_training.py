"""End-to-end training: Embedding -> LSTM -> Linear -> softmax cross-entropy with Adam and
gradient clipping learns a toy sequence task; the truncated-BPTT example learns too."""
import numpy as np

from pyrnn.clip import clip_grad_norm
from pyrnn.examples import tbptt
from pyrnn.layers import LSTM
from pyrnn.nn import Embedding, Linear, softmax_cross_entropy
from pyrnn.optim import Adam


def test_bidirectional_lstm_learns_to_reverse_a_sequence():
    V, T, B, E, H = 6, 6, 32, 12, 32
    rng = np.random.default_rng(0)
    embed = Embedding(V, E, seed=1)
    # tiny sizes: one thread beats synchronising two (and is robust on a busy machine)
    lstm = LSTM(E, H, num_layers=2, bidirectional=True, batch_first=True, seed=2,
                num_threads=1)
    head = Linear(2 * H, V, seed=3)
    modules = {"embed": embed, "lstm": lstm, "head": head}
    params = {f"{m}.{k}": p for m, mod in modules.items() for k, p in mod.params.items()}
    grads = {f"{m}.{k}": g for m, mod in modules.items() for k, g in mod.grads.items()}
    opt = Adam(params, lr=1e-2)

    def step(tokens, train=True):
        for mod in modules.values():
            mod.zero_grad()
        lstm.train(train)
        y, _ = lstm(embed(tokens))                  # [B, T, 2H]
        loss, dlogits = softmax_cross_entropy(head(y), tokens[:, ::-1])
        if train:
            embed.backward(lstm.backward(head.backward(dlogits)))
            clip_grad_norm(grads, 1.0)
            opt.step(grads)
        return loss

    test_tokens = rng.integers(V, size=(256, T))
    initial = step(test_tokens, train=False)
    assert abs(initial - np.log(V)) < 0.3  # chance level at initialisation
    for _ in range(250):
        step(rng.integers(V, size=(B, T)))
    final = step(test_tokens, train=False)
    assert final < 0.3 * initial, (initial, final)


def test_tbptt_example_loss_decreases_and_uses_the_carried_state():
    losses = tbptt.main(steps=200, verbose=False)
    assert len(losses) == 200 and np.all(np.isfinite(losses))
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.3 * first, (first, last)
    # The first DELAY targets of each chunk depend on the previous chunk's symbols: without
    # the carried state their loss alone would be >= DELAY/chunk * log(vocab) ~ 0.48.
    assert last < 0.25, last
