"""ONNX Runtime as a contender of bench_rnn.py's inference rows.

One ONNX ``LSTM``, ``GRU`` (``linear_before_reset=1``, PyTorch's form) or ``RNN`` node, built
with ``onnx.helper`` from PyTorch-layout weights (not torch.onnx.export, which may need
onnxscript), run by an ``InferenceSession`` on the CPU with the row's thread count and its
thread pools set not to spin. onnx and onnxruntime are optional: ``AVAILABLE`` says whether
both import.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

try:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # the bench runs without it; the column shows "—"
    onnx = ort = None

AVAILABLE = ort is not None
VERSION = ort.__version__ if AVAILABLE else None
NOT_INSTALLED = ("ONNX Runtime is not installed (pip install onnx onnxruntime): its columns "
                 "show '—'.")

OPSET = 14  # LSTM/GRU/RNN as used here are unchanged since 14; old runtimes load it too
IR_VERSION = 8  # pinned: a newer onnx writes an IR version an older onnxruntime rejects
TOLERANCE = 1e-4  # max abs difference from torch's output, relative to max(1, |y|)

# ONNX's gate blocks as indices of PyTorch's: LSTM torch i,f,g,o -> ONNX i,o,f,c;
# GRU torch r,z,n -> ONNX z,r,h; RNN has one block.
GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn_tanh": (0,), "rnn_relu": (0,)}
OP_TYPE = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}


def onnx_gates(cell: str, a: np.ndarray) -> np.ndarray:
    """PyTorch's [G*H, ...] gate blocks (weights or a bias) in ONNX's gate order."""
    blocks = np.split(a, len(GATE_ORDER[cell]))
    return np.concatenate([blocks[k] for k in GATE_ORDER[cell]])


def make_model(cell: str, w_ih, w_hh, b_ih, b_hh, x_shape) -> "onnx.ModelProto":
    """One recurrent node, X [T, B, I] -> Y [T, 1, B, H], weights as initializers."""
    hidden = w_hh.shape[1]
    attrs = dict(hidden_size=hidden)
    if cell == "gru":
        attrs["linear_before_reset"] = 1
    elif cell.startswith("rnn_"):
        attrs["activations"] = [cell[4:].capitalize()]  # "Tanh" or "Relu"
    tensors = dict(W=onnx_gates(cell, w_ih)[None], R=onnx_gates(cell, w_hh)[None],
                   B=np.concatenate([onnx_gates(cell, b_ih), onnx_gates(cell, b_hh)])[None])
    initializers = [numpy_helper.from_array(np.ascontiguousarray(v, np.float32), name)
                    for name, v in tensors.items()]
    T, B, _ = x_shape
    graph = helper.make_graph(
        [helper.make_node(OP_TYPE[cell], ["X", "W", "R", "B"], ["Y"], **attrs)],
        f"pyrnn_bench_{cell}",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, 1, B, hidden])],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model


def make_session(model, threads: int) -> "ort.InferenceSession":
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # spinning pool threads would steal the cores of the contender timed next
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                providers=["CPUExecutionProvider"])


def check_output(cell: str, y: np.ndarray, expected: np.ndarray) -> None:
    """Raise unless ``y`` matches ``expected`` (torch's output) within TOLERANCE."""
    if y.shape != expected.shape:
        raise RuntimeError(f"ONNX Runtime {cell}: output shape {y.shape}, torch's "
                           f"{expected.shape}")
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    err = float(np.abs(y - expected).max(initial=0.0))
    if not err <= TOLERANCE * scale:  # also catches NaN
        raise RuntimeError(
            f"ONNX Runtime {cell}: output differs from torch's by {err:.3g} (max abs, scale "
            f"{scale:.3g}, tolerance {TOLERANCE:g} x scale); wrong weights or gate order, "
            "not benchmarking it")


def infer_step(cell: str, params, x: np.ndarray, threads: int,
               expected: np.ndarray) -> Callable[[], np.ndarray]:
    """A zero-argument call running the model on ``x`` (float32 [T, B, I]) and returning
    y [T, B, H]; checked once against ``expected`` (torch's y) before it is returned."""
    session = make_session(make_model(cell, *params, x.shape), threads)
    feeds = {"X": np.ascontiguousarray(x, np.float32)}

    def step():
        return session.run(["Y"], feeds)[0][:, 0]  # drop the direction axis

    check_output(cell, step(), expected)
    return step
