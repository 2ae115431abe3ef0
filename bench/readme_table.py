"""The README's performance tables from a bench_rnn.py ``--json`` file: one line per shape and
mode with every thread count side by side, then one summary line per thread count.

    python bench/bench_rnn.py --shapes quick --threads 1,2 --json quick.json
    python bench/readme_table.py quick.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from statistics import geometric_mean as geomean

_BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
if _BENCH_DIR not in sys.path:  # bench/shapes.py, also when this file is loaded by path
    sys.path.insert(0, _BENCH_DIR)
from shapes import ONNXRT_BEHIND, SMALL_BATCH_MAX, is_large, is_small_batch_infer  # noqa: E402


def num(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


def times(value) -> str:
    return "—" if value is None else f"{value:.2f}x"


def shape_key(row: dict) -> tuple:
    return row["cell"], row["mode"], row["T"], row["B"], row["I"], row["H"]


def label(row: dict) -> str:
    return f"{row['cell']} {row['mode']} T={row['T']} B={row['B']} I={row['I']} H={row['H']}"


def has_onnxrt(rows: list) -> bool:
    """Whether ONNX Runtime was measured (JSON files from before it have no such field)."""
    return any(r.get("speedup_vs_onnxrt") is not None for r in rows)


def table(rows: list) -> str:
    threads = sorted({r["threads"] for r in rows})
    by_key = {(shape_key(r), r["threads"]): r for r in rows}
    keys = list(dict.fromkeys(shape_key(r) for r in rows))
    onnxrt = has_onnxrt(rows)
    header = ["cell", "mode", "T", "B", "I", "H"]
    align = ["---"] * 2 + ["--:"] * 4
    for k, n in enumerate(threads):
        what = f"{n} thread{'s' * (n > 1)}"
        cols = ([f"{what}: pyrnn ms", "torch ms", "vs torch", "ceiling"]
                + (["vs numpy"] if k == 0 else []) + (["vs ONNX Runtime"] if onnxrt else []))
        header += cols
        align += ["--:"] * len(cols)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for key in keys:
        cells = [str(v) for v in key]
        for k, n in enumerate(threads):
            r = by_key.get((key, n))
            if r is None:
                cells += ["—"] * (4 + (k == 0) + onnxrt)
                continue
            cells += [num(r["pyrnn_ms"]), num(r["torch_ms"]), times(r["speedup_vs_torch"]),
                      times(r.get("ceiling_vs_torch"))]
            if k == 0:
                cells.append(times(r["speedup_vs_numpy"]))
            if onnxrt:
                cells.append(times(r.get("speedup_vs_onnxrt")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_line(rows: list, n: int) -> str:
    """The summary of thread count ``n``, as in the README."""
    mine = [r for r in rows if r["threads"] == n]
    vs = [r["speedup_vs_torch"] for r in mine]
    worst = min(mine, key=lambda r: r["speedup_vs_torch"])
    line = f"- {n} thread{'s' * (n > 1)}: geometric mean vs torch **{geomean(vs):.2f}x**"
    by_mode = {m: [r["speedup_vs_torch"] for r in mine if r["mode"] == m]
               for m in ("infer", "train")}
    if all(by_mode.values()):
        line += f" (infer {geomean(by_mode['infer']):.2f}x, train {geomean(by_mode['train']):.2f}x)"
    line += f", worst {worst['speedup_vs_torch']:.2f}x ({label(worst)})"
    numpy = [r["speedup_vs_numpy"] for r in mine if r["speedup_vs_numpy"] is not None]
    if numpy:
        line += f"; vs NumPy {geomean(numpy):.2f}x"
    onnxrt = [r for r in mine if r.get("speedup_vs_onnxrt") is not None]
    if onnxrt:
        ov = [r["speedup_vs_onnxrt"] for r in onnxrt]
        low = min(onnxrt, key=lambda r: r["speedup_vs_onnxrt"])
        line += (f"; inference vs ONNX Runtime {geomean(ov):.2f}x (worst "
                 f"{low['speedup_vs_onnxrt']:.2f}x, {label(low)}; rows below {ONNXRT_BEHIND}x: "
                 f"{sum(v < ONNXRT_BEHIND for v in ov)} of {len(ov)})")
    small = [r for r in mine if is_small_batch_infer(r)]
    if small:
        sv = [r["speedup_vs_torch"] for r in small]
        line += f"; batch 1-{SMALL_BATCH_MAX} inference {geomean(sv):.2f}x (worst {min(sv):.2f}x)"
    large = [r["gemm_share"] for r in mine if is_large(r)]
    if large:
        line += (f"; large shapes {100 * geomean(large):.0f}% of the GEMM limit "
                 f"(min {100 * min(large):.0f}%)")
    line += f"; rows below 1.0x: {sum(v < 1 for v in vs)} of {len(vs)}"
    ceilings = [r for r in mine if r.get("ceiling_vs_torch") is not None]
    if ceilings:
        low = min(ceilings, key=lambda r: r["ceiling_vs_torch"])
        line += (f"; ceilings {geomean([r['ceiling_vs_torch'] for r in ceilings]):.2f}x "
                 f"(lowest {low['ceiling_vs_torch']:.2f}x, {label(low)}) at a peak of "
                 f"{mine[0]['peak_gflops']:.0f} GFLOP/s")
    return line


def report(result: dict) -> str:
    rows = result["rows"]
    if not rows:
        raise ValueError("the result has no rows")
    lines = [table(rows), ""]
    lines += [summary_line(rows, n) for n in sorted({r["threads"] for r in rows})]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("json", help="a bench_rnn.py --json file")
    args = p.parse_args(argv)
    with open(args.json) as f:
        print(report(json.load(f)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
