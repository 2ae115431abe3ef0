"""Character-level language modelling with pyrnn's fused kernels: the package's showcase.

``pyrnn-charlm`` (or ``python -m pyrnn.charlm``) trains an embedding -> stacked LSTM/GRU/RNN ->
linear -> softmax model with truncated BPTT, Adam and gradient clipping, by default on the
Python standard library's own source code, and prints the validation loss against the
unigram baseline and samples; ``pyrnn-charlm sample`` generates text from a checkpoint and
``pyrnn-charlm viz`` writes an HTML page of cell activations over a text.

From Python::

    from pyrnn.charlm import TrainConfig, train, generate
    result = train(open("input.txt").read(), TrainConfig(time_budget=60))
    print(generate(result.model, result.vocab, 200, temperature=0.7, prime="The "))
"""
from .data import CharLMError, Vocab, read_text, stdlib_corpus
from .model import CharLM, load_checkpoint, save_checkpoint
from .sample import Generator, generate
from .training import TrainConfig, TrainResult, evaluate, train

__all__ = [
    "CharLMError", "Vocab", "read_text", "stdlib_corpus",
    "CharLM", "load_checkpoint", "save_checkpoint",
    "Generator", "generate",
    "TrainConfig", "TrainResult", "evaluate", "train",
]
