"""Test-session helpers. Only reporting: prints the largest errors against torch seen by the
tests that use tests/torch_oracle.py (never affects pass/fail)."""
import sys


def pytest_terminal_summary(terminalreporter):
    oracle = sys.modules.get("torch_oracle")
    errors = getattr(oracle, "MAX_ERR", None)
    if not errors:
        return
    terminalreporter.section("largest error vs torch")
    terminalreporter.write_line("cell       dtype    |got-want|/(|want|+1e-3)  |got-want|")
    for (cell, dtype), (rel, ab) in sorted(errors.items()):
        terminalreporter.write_line(f"{cell:10s} {dtype:8s} {rel:24.3e}  {ab:.3e}")
