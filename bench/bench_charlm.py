"""One training step of the main job (pyrnn-charlm) against the same model in PyTorch.

    python bench/bench_charlm.py --threads 1,2 --repeats 5 [--json out.json]

(uses the importable pyrnn: the installed package, or the in-tree build with PYTHONPATH=.)

pyrnn side: ``pyrnn.charlm.training.train_step``, the function the training loop calls
(forward from the carried state, softmax cross-entropy, backward, gradient-norm clipping, Adam),
with one NumPy BLAS thread held for the whole run as ``train()`` holds it for its loop.
torch side: nn.Embedding -> nn.LSTM/GRU/RNN
(num_layers) -> nn.Linear, F.cross_entropy, clip_grad_norm_, torch.optim.Adam with the same
hyper-parameters, the carried state detached (truncated BPTT). Both start from the same weights
(copied from pyrnn's CharLM) and train on the same random batch; before timing, the losses of
the first step must agree or the script raises. Per thread count (pyrnn's num_threads and
torch.set_num_threads alike), after warm-up steps, rounds of --steps steps alternate
pyrnn, torch, pyrnn, torch...; the median round gives ms per step, and the median of the
rounds' torch / pyrnn ratios a speedup that a host slowing both for a while leaves steadier.
Every round also times the machine's peak (bench_rnn's square GEMM): the step's products at the
best peak round give a floor no implementation can pass, and torch's time over it the ceiling
on any speedup over torch, as in bench_rnn's rows.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as TF

import pyrnn
from pyrnn import _core
from pyrnn.charlm import CharLM, TrainConfig
from pyrnn.charlm._blas import single_blas_thread
from pyrnn.charlm.cli import _positive_int  # the CLI's argument type, shared
from pyrnn.charlm.training import train_step
from pyrnn.optim import Adam

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_rnn, also when loaded by path
from bench_rnn import PEAK_N, calibrate, peak_step, timed_run  # noqa: E402
from shapes import GATES  # noqa: E402

DEFAULTS = TrainConfig()  # the main job's defaults: model size, batch, bptt, lr, clip, seed
DEFAULT_VOCAB = 100       # the vocabulary of the default corpus (the stdlib's source)
TORCH_CELLS = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
PEAK_MIN_S = 0.01  # each timed peak run repeats the square GEMM to last about this
LOSS_RTOL = 1e-4


class TorchCharLM(torch.nn.Module):
    """CharLM in torch; its state_dict keys are pyrnn's ``CharLM.params`` names."""

    def __init__(self, vocab, hidden, layers, embed, cell):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, embed)
        self.rnn = TORCH_CELLS[cell](embed, hidden, num_layers=layers)  # RNN: tanh, as pyrnn's
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, idx, state=None):
        y, state = self.rnn(self.embed(idx), state)
        return self.head(y), state


def make_models(vocab, hidden, layers, embed, cell, seed=DEFAULTS.seed):
    """pyrnn's CharLM (initialised as in training) and a torch copy of its weights."""
    model = CharLM(vocab, hidden, layers, embed, cell, seed=seed)
    twin = TorchCharLM(vocab, hidden, layers, embed, cell)
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.params.items()})
    return model, twin


def make_batch(vocab, batch, seq, seed=0):
    """Random symbols ``[seq + 1, batch]`` cut as the training chunks are: inputs and the
    targets one step later."""
    streams = np.random.default_rng(seed).integers(0, vocab, size=(seq + 1, batch))
    return streams[:-1], streams[1:]


def step_flop(cell, hidden, layers, embed, vocab, batch, seq):
    """Multiply-add FLOPs of one training step: every product of the layers and the head
    forward, and twice that backward (the input and the weight gradient of each). The
    embedding (a gather), the cells' element-wise work, the loss and Adam are not counted."""
    gates = GATES["rnn_tanh" if cell == "rnn" else cell]  # the CharLM's RNN is tanh
    per_row = sum(gates * hidden * ((embed if layer == 0 else hidden) + hidden)
                  for layer in range(layers)) + hidden * vocab
    return 3 * 2.0 * batch * seq * per_row


def pyrnn_stepper(model, x, y, lr=DEFAULTS.lr, clip=DEFAULTS.clip):
    """A function running one training step per call (state carried), returning the loss."""
    opt = Adam(model.params, lr=lr)
    carried = [None]

    def step():
        loss, carried[0] = train_step(model, opt, x, y, carried[0], clip)
        return loss
    return step


def torch_stepper(twin, x, y, lr=DEFAULTS.lr, clip=DEFAULTS.clip):
    opt = torch.optim.Adam(twin.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).reshape(-1)
    carried = [None]

    def step():
        opt.zero_grad()
        logits, state = twin(xt, carried[0])
        loss = TF.cross_entropy(logits.reshape(-1, logits.shape[-1]), yt)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(twin.parameters(), clip)
        opt.step()
        # truncated BPTT: the next chunk starts from the state's values, not its graph
        carried[0] = (tuple(s.detach() for s in state) if isinstance(state, tuple)
                      else state.detach())
        return float(loss.detach())
    return step


def check_same_loss(pyrnn_step, torch_step):
    """Run the first step of both; raise unless the losses agree to float32 tolerance."""
    a, b = pyrnn_step(), torch_step()
    if not abs(a - b) <= LOSS_RTOL * abs(b):
        raise RuntimeError(f"the models differ: first-step loss pyrnn {a:.7g}, torch {b:.7g} "
                           f"(rtol {LOSS_RTOL:g})")
    return a, b


def machine_info():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    return {"cpu_model": cpu, "logical_cpus": os.cpu_count(), "pyrnn": pyrnn.__version__,
            "pyrnn_isa": _core.isa(), "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "load_average": _load()}


def _load():
    return [round(v, 2) for v in os.getloadavg()]


def run(threads=(1, 2), cell=DEFAULTS.cell, hidden=DEFAULTS.hidden, layers=DEFAULTS.layers,
        embed=DEFAULTS.embed, batch=DEFAULTS.batch, seq=DEFAULTS.bptt, vocab=DEFAULT_VOCAB,
        repeats=5, steps=3, warmup=2):
    """Time both per thread count; returns every number as a JSON-ready dict."""
    flop = step_flop(cell, hidden, layers, embed, vocab, batch, seq)
    config = dict(cell=cell, hidden=hidden, layers=layers, embed=embed, batch=batch, seq=seq,
                  vocab=vocab, lr=DEFAULTS.lr, clip=DEFAULTS.clip, repeats=repeats,
                  steps_per_round=steps, warmup=warmup, flop_per_step=flop)
    model, twin = make_models(vocab, hidden, layers, embed, cell)
    x, y = make_batch(vocab, batch, seq)
    steppers = {"pyrnn": pyrnn_stepper(model, x, y), "torch": torch_stepper(twin, x, y)}
    machine = machine_info()  # the load average before the run; its end is added below
    # One BLAS thread for the whole run, as train() holds it around its loop (entering it finds
    # the loaded OpenBLAS through /proc/self/maps, about 2 ms, which train() pays once).
    with single_blas_thread():
        rows, first = _time_rounds(steppers, model, threads, repeats, steps, warmup, batch, seq,
                                   flop)
    machine["load_average_end"] = _load()
    return {"config": config, "machine": machine,
            "first_step_loss": {"pyrnn": first[0], "torch": first[1]}, "results": rows}


def _time_rounds(steppers, model, threads, repeats, steps, warmup, batch, seq, flop):
    """Per thread count: warm-up, then alternating timed rounds of pyrnn, torch and the peak
    GEMM. Returns the rows and the first-step losses (that first step of both checks that they
    compute the same loss)."""
    saved_torch_threads = torch.get_num_threads()
    rows, first = [], None
    try:
        for n in threads:
            model.num_threads = n
            torch.set_num_threads(n)
            if not rows:  # the very first step of both, from the same weights
                first = check_same_loss(steppers["pyrnn"], steppers["torch"])
            for fn in steppers.values():
                for _ in range(warmup):
                    fn()
            rounds = {k: [] for k in steppers}
            peak_runs = []
            peak = peak_step()
            peak_calls = calibrate(peak, PEAK_MIN_S)
            for _ in range(repeats):
                for name, fn in steppers.items():  # alternating: pyrnn, torch, pyrnn, ...
                    t0 = time.perf_counter()
                    for _ in range(steps):
                        fn()
                    rounds[name].append(1e3 * (time.perf_counter() - t0) / steps)
                peak_runs.append(timed_run(peak, peak_calls))  # side by side with both
            row = {"threads": n}
            for name, ms in rounds.items():
                row[f"{name}_ms"] = statistics.median(ms)
                row[f"{name}_rounds_ms"] = ms
                row[f"{name}_chars_per_s"] = batch * seq / row[f"{name}_ms"] * 1e3
                row[f"{name}_gflops"] = flop / row[f"{name}_ms"] / 1e6
            row["speedup"] = row["torch_ms"] / row["pyrnn_ms"]  # > 1: pyrnn faster
            # The best peak round: the rate a kernel doing the step's products at the peak
            # would reach; the ceiling is its speedup over torch (no code can beat it).
            row["peak_gflops"] = 2.0 * PEAK_N ** 3 / min(peak_runs) / 1e9
            row["floor_ms"] = flop / row["peak_gflops"] / 1e6
            row["ceiling"] = row["torch_ms"] / row["floor_ms"]
            # Each round's torch / pyrnn, side by side in time: a host that slows both for a
            # while cancels out of it, where it shifts the two medians apart.
            row["paired_speedup"] = statistics.median(
                t / p for p, t in zip(rounds["pyrnn"], rounds["torch"]))
            rows.append(row)
    finally:
        torch.set_num_threads(saved_torch_threads)
    return rows, first


def format_report(result):
    c, m = result["config"], result["machine"]
    lines = [f"pyrnn-charlm training step: embedding {c['embed']} -> {c['layers']} x "
             f"{c['cell'].upper()} {c['hidden']} -> linear {c['vocab']}, batch {c['batch']} x "
             f"seq {c['seq']}, Adam lr {c['lr']:g}, clip {c['clip']:g}",
             f"CPU {m['cpu_model']}; pyrnn {m['pyrnn']} ({m['pyrnn_isa']}), torch {m['torch']}; "
             f"load average {m['load_average'][0]:g} at start, "
             f"{m['load_average_end'][0]:g} at end ({m['logical_cpus']} CPUs: above that, other "
             "jobs take cores and multi-thread times mean little)",
             f"first-step loss: pyrnn {result['first_step_loss']['pyrnn']:.6f}, "
             f"torch {result['first_step_loss']['torch']:.6f}",
             f"median of {c['repeats']} alternating rounds of {c['steps_per_round']} steps",
             "threads | pyrnn ms/step | torch ms/step | pyrnn chars/s | torch chars/s | speedup "
             "| paired | pyrnn % peak | torch % peak | peak GFLOP/s | ceiling"]
    for r in result["results"]:
        lines.append(f"{r['threads']:7d} | {r['pyrnn_ms']:13.2f} | {r['torch_ms']:13.2f} | "
                     f"{r['pyrnn_chars_per_s']:13,.0f} | {r['torch_chars_per_s']:13,.0f} | "
                     f"{r['speedup']:6.2f}x | {r['paired_speedup']:5.2f}x | "
                     f"{100 * r['pyrnn_gflops'] / r['peak_gflops']:11.0f}% | "
                     f"{100 * r['torch_gflops'] / r['peak_gflops']:11.0f}% | "
                     f"{r['peak_gflops']:12.0f} | {r['ceiling']:6.2f}x")
    lines.append("speedup: torch's median / pyrnn's; paired: the median of each round's torch / "
                 "pyrnn (steadier on a busy host)")
    lines.append(f"% peak: the step's {c['flop_per_step'] / 1e9:.3g} GFLOP of products (forward, "
                 f"and twice that backward) at the step's rate, over the peak: a square "
                 f"float32 torch.mm (n = {PEAK_N}), its best round, timed in every round beside "
                 "both; ceiling: torch's time over the step's products at that peak, the "
                 "speedup no implementation of the same arithmetic can pass")
    return "\n".join(lines)


def _thread_list(text):
    values = [_positive_int(t) for t in text.split(",")]
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"thread counts repeat in {text!r}")
    return values


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--threads", type=_thread_list, default=[1, 2], help="e.g. 1,2")
    ap.add_argument("--cell", choices=sorted(TORCH_CELLS), default=DEFAULTS.cell)
    for name, default in (("hidden", DEFAULTS.hidden), ("layers", DEFAULTS.layers),
                          ("embed", DEFAULTS.embed), ("batch", DEFAULTS.batch),
                          ("seq", DEFAULTS.bptt), ("vocab", DEFAULT_VOCAB), ("repeats", 5),
                          ("steps", 3), ("warmup", 2)):
        ap.add_argument(f"--{name}", type=_positive_int, default=default)
    ap.add_argument("--json", metavar="PATH", help="write every number to PATH")
    args = ap.parse_args(argv)
    result = run(args.threads, args.cell, args.hidden, args.layers, args.embed, args.batch,
                 args.seq, args.vocab, args.repeats, args.steps, args.warmup)
    print(format_report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
