"""The scripts of bench/ loaded as modules, for the tests that exercise them."""
import importlib.util
import pathlib
import sys

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"


def load(name: str):
    """bench/NAME.py as the module NAME (registered in sys.modules: dataclasses look their
    module up there; the scripts put bench/ on sys.path for bench/shapes.py themselves)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
