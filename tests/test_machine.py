"""What the kernels read off the machine: the instruction-set build (PYRNN_ISA) and the cache
sizes that their tuning rules are derived from."""
import os
from pathlib import Path

import numpy as np
import pytest

import child_python
import pyrnn
from pyrnn import _core

SUPPORTED = [s.strip() for s in _core.supported_isas().split(",")]
BUILT = [s.strip() for s in _core.available_isas().split(",")]


def _python(code, **env):
    return child_python.run(code, **env)


def _sysfs_cache(level):
    """cpu0's data or unified cache of this level from sysfs, in bytes, or None."""
    root = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(root.glob("index*")):
        try:
            if (index / "level").read_text().strip() != str(level):
                continue
            if (index / "type").read_text().strip() == "Instruction":
                continue
            size = (index / "size").read_text().strip()
        except OSError:
            return None
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1], 1)
        return int(size.rstrip("KMG")) * scale
    return None


def test_supported_builds_are_built_and_best_first():
    assert SUPPORTED[-1] == "baseline"
    assert set(SUPPORTED) <= set(BUILT)
    assert [b for b in BUILT if b in SUPPORTED] == SUPPORTED


def test_default_is_a_supported_build():
    if os.environ.get("PYRNN_ISA") in (None, "", "auto"):
        assert _core.isa() in SUPPORTED


@pytest.mark.parametrize("isa", SUPPORTED)
def test_forcing_each_supported_build(isa):
    out = _python("from pyrnn import _core; print(_core.isa())", PYRNN_ISA=isa)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == isa


@pytest.mark.parametrize("isa", [b for b in BUILT if b not in SUPPORTED])
def test_forcing_an_unsupported_build_is_refused(isa):
    out = _python("import pyrnn", PYRNN_ISA=isa)
    assert out.returncode != 0
    assert f"PYRNN_ISA={isa}, but this CPU lacks" in out.stderr


def test_unknown_build_name_is_refused_with_the_choices():
    out = _python("import pyrnn", PYRNN_ISA="sse9")
    assert out.returncode != 0
    assert "PYRNN_ISA='sse9' is not one of: auto, " + _core.available_isas() in out.stderr


_SAME_RESULT = """
import numpy as np, pyrnn.functional as F
rng = np.random.default_rng(3)
x = rng.standard_normal((7, 5, 9)).astype(np.float32)
w = [rng.uniform(-.3, .3, s).astype(np.float32) for s in ((4*33, 9), (4*33, 33), (4*33,), (4*33,))]
y, (h, c), _ = F.lstm_forward(x, *w, num_threads=2)
np.save({path!r}, y)
"""


def test_every_supported_build_computes_the_same_lstm(tmp_path):
    results = {}
    for isa in SUPPORTED:
        path = str(tmp_path / f"{isa}.npy")
        out = _python(_SAME_RESULT.format(path=path), PYRNN_ISA=isa)
        assert out.returncode == 0, out.stderr
        results[isa] = np.load(path)
    for isa, y in results.items():
        np.testing.assert_allclose(y, results["baseline"], rtol=2e-5, atol=2e-6, err_msg=isa)


def test_cache_sizes_are_the_machines():
    caches = _core.cache_sizes()
    assert caches["l1d"] > 0 and caches["l2"] > 0 and caches["l3"] > 0
    if os.environ.get("PYRNN_CACHE_L2"):
        pytest.skip("PYRNN_CACHE_L2 overrides the L2 size")
    for level, key in ((1, "l1d"), (2, "l2"), (3, "l3")):
        want = _sysfs_cache(level)
        if want is not None:
            assert caches["source"] == "sysfs"
            assert caches[key] == want, (key, caches)


def test_show_config_names_cpu_caches_and_build(capsys):
    pyrnn.show_config()
    out = capsys.readouterr().out
    caches = _core.cache_sizes()
    assert f"L2 {caches['l2'] >> 10} KiB per core" in out
    assert pyrnn._config.cpu_model() in out
    assert f"instruction set in use  {_core.isa()}" in out
    assert "subnormals" in out


# LSTM H=128 float32: 256 KiB of recurrent weights. The batch split (every thread a copy of the
# weights) is taken while they fit a core's L2 with room (1.25 x L2), so it follows the L2 size.
_PLAN = "from pyrnn import _core; print(_core.forward_threads(2, 100, 32, 128, 128, 128, 4, 4, True))"


@pytest.mark.parametrize("l2,batch", [("4M", True), ("128K", False)])
def test_thread_plan_follows_the_l2_size(l2, batch):
    out = _python(_PLAN, PYRNN_CACHE_L2=l2)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"(2, {batch})"


def test_l2_override_is_reported():
    out = _python("from pyrnn import _core; print(_core.cache_sizes())", PYRNN_CACHE_L2="3M")
    assert "'l2': 3145728" in out.stdout and "PYRNN_CACHE_L2" in out.stdout


@pytest.mark.parametrize("l2", ["128K", "64M"])
def test_results_do_not_depend_on_the_tuning(l2, tmp_path):
    """Other cache sizes pick other paths (thread splits, packing, depth blocks): the results
    stay within float32 rounding of the default's."""
    default, other = str(tmp_path / "a.npy"), str(tmp_path / "b.npy")
    assert _python(_SAME_RESULT.format(path=default)).returncode == 0
    out = _python(_SAME_RESULT.format(path=other), PYRNN_CACHE_L2=l2)
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose(np.load(other), np.load(default), rtol=2e-5, atol=2e-6)
