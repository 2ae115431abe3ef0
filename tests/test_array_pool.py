"""The array pool (csrc/bindings/array_pool.h): freed output arrays keep their memory for the
next arrays of the same size, bounded by PYRNN_ARRAY_POOL_MB.

Reused memory holds whatever the previous arrays held, so the first test poisons the pool with
NaN outputs of exactly the sizes the next call needs and checks every result of that call
against torch: an output element the kernels forgot to write would show up as NaN.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pyrnn
from pyrnn import _core
from pyrnn import functional as F

torch = pytest.importorskip("torch")

from torch_oracle import CELL_IDS, CELLS, compare, make_case, run_functional, torch_run  # noqa: E402


def _pool():
    return _core.array_pool()


@pytest.mark.parametrize("cell,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_reused_memory_never_leaks_into_results(cell, nl, dtype):
    case = make_case(cell, 6, 5, 4, 9, dtype=dtype, seed=41, lengths=True)
    poisoned = dict(case, x=np.full_like(case["x"], np.nan))
    for _ in range(2):  # every output and saved array of these sizes, full of NaN, then freed
        res = run_functional(F, poisoned, nl, reverse=True)
        assert np.isnan(res["y"]).any()
        del res
    assert _pool()["kept_blocks"] > 0
    got = run_functional(F, case, nl, reverse=True)
    compare(got, torch_run(case, nl, reverse=True), dtype)


def _address(a):
    return a.__array_interface__["data"][0]


def test_freed_outputs_are_reused_not_reallocated():
    _core.array_pool_clear()
    x = np.ones((7, 3, 5), np.float32)
    w_ih, w_hh = np.full((12, 5), 0.1, np.float32), np.full((12, 4), 0.1, np.float32)
    y, state, cache = F.gru_forward(x, w_ih, w_hh, training=True)
    assert _pool()["kept_blocks"] == 0  # all still alive
    # (the cache's private copies of x and the weights come from the pool as well)
    outputs = [y, state, cache.x, cache.w_ih, cache.w_hh] + [a for a in cache.saves
                                                             if a is not None]
    addresses = {_address(a) for a in outputs}
    del y, state, cache, outputs
    kept = _pool()
    assert kept["kept_blocks"] >= 4 and kept["kept_bytes"] > 0
    y2, _, cache2 = F.gru_forward(x, w_ih, w_hh, training=True)
    assert _pool()["kept_blocks"] < kept["kept_blocks"]  # taken back out of the pool
    assert _address(y2) in addresses
    assert y2.flags.writeable and y2.flags.c_contiguous and y2.dtype == np.float32
    assert y2.base is not None  # owned through the pool's capsule, not by NumPy
    _core.array_pool_clear()
    assert _pool()["kept_bytes"] == 0


def test_outputs_outlive_later_calls():
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    w_ih, w_hh = np.full((4, 3), 0.2), np.full((4, 4), 0.1)
    y = F.rnn_forward(x, w_ih, w_hh)[0]
    keep = y.copy()
    for _ in range(5):
        F.rnn_forward(x * 2.0, w_ih, w_hh)
    np.testing.assert_array_equal(y, keep)


def _run(env_mb, body):
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyrnn.__file__)))
    env = dict(os.environ, PYRNN_ARRAY_POOL_MB=env_mb,
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], env=env, cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


_LIMIT_BODY = """
    import json
    import numpy as np
    from pyrnn import _core, functional as F
    small = np.ones((2, 2, 3))                  # outputs of a few hundred bytes
    big = np.ones((400, 64, 3))                 # y: 400*64*16*8 bytes = 3.3 MB
    w_ih, w_hh = np.full((16, 3), 0.1), np.full((16, 16), 0.1)
    for x in (small, big):
        F.rnn_forward(x, w_ih, w_hh)
    print(json.dumps(_core.array_pool()))
"""


@pytest.mark.parametrize("env_mb,limit,big_kept", [("0", 0, False), ("1", 1 << 20, False),
                                                   ("64", 64 << 20, True)])
def test_limit_from_environment(env_mb, limit, big_kept):
    pool = _run(env_mb, _LIMIT_BODY)
    assert pool["limit_bytes"] == limit
    assert pool["kept_bytes"] <= limit
    if limit == 0:
        assert pool["kept_blocks"] == 0
    else:
        assert pool["kept_blocks"] >= 2  # the small call's y and h_n
    assert (pool["kept_bytes"] > 3 << 20) == big_kept  # y of the big call only under 64 MB


@pytest.mark.parametrize("value", ["-5", "lots", ""])
def test_bad_limit_values_give_the_default(value):
    assert _run(value, "import json; from pyrnn import _core; "
                       "print(json.dumps(_core.array_pool()))")["limit_bytes"] == 256 << 20


def test_show_config_reports_the_pool(capsys):
    pyrnn.show_config()
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("array pool")]
    assert line and f"{_pool()['limit_bytes'] >> 20} MB" in line[0] and "PYRNN_ARRAY_POOL_MB" in line[0]


def test_training_cache_copies_come_from_the_pool_and_are_private():
    """The copies a training forward keeps of x and the weights (so that an optimizer step
    before the backward cannot change them) are pooled arrays, equal to the originals and
    independent of them."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3, 5)).astype(np.float32)
    w_ih = rng.standard_normal((16, 5)).astype(np.float32)
    w_hh = rng.standard_normal((16, 4)).astype(np.float32)
    _, _, cache = F.lstm_forward(x, w_ih, w_hh, training=True)
    for mine, theirs in ((cache.x, x), (cache.w_ih, w_ih), (cache.w_hh, w_hh)):
        assert mine.base is not None and not np.shares_memory(mine, theirs)
        np.testing.assert_array_equal(mine, theirs)
    w_hh += 1.0  # an optimizer step between forward and backward
    assert not np.array_equal(cache.w_hh, w_hh)
    with pytest.raises(TypeError, match="expected float32, float64 or int64"):
        _core.pooled_copy(np.zeros(3, np.int8))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.pooled_copy(np.zeros((3, 4), np.float32).T)
