"""The Dask batch-inference example (pyrnn.examples.dask_inference) on small data: a
LocalCluster of 2 worker processes, the model scattered to them once, buckets of
variable-length sequences as tasks.

- Every run (1 worker, then 2) returns the in-process predictions (to float32 rounding: the
  thread counts differ), and the padded, bucketed batches give each sequence's own result
  (checked against the sequence run alone).
- The kernel threads per worker are the cores divided by the workers in use.
"""
import numpy as np
import pytest

pytest.importorskip("distributed", reason="needs dask and distributed (the 'test' extra)")

from pyrnn.examples.dask_inference import (  # noqa: E402
    SequenceClassifier, buckets, main, make_sequences, predict_bucket)


def test_buckets_match_single_sequence_runs():
    rng = np.random.default_rng(0)
    model = SequenceClassifier(5, 12, seed=1)
    seqs = make_sequences(23, 5, 17, rng)
    groups = buckets(seqs, 8)
    assert sorted(i for g in groups for i in g) == list(range(23))
    for g in groups:
        lens = [len(seqs[i]) for i in g]
        assert lens == sorted(lens)
        probs = predict_bucket(model, [seqs[i] for i in g], 1)
        alone = np.array([predict_bucket(model, [seqs[i]], 1)[0] for i in g])
        np.testing.assert_allclose(probs, alone, rtol=1e-5, atol=1e-6)


def test_example_runs_on_a_local_cluster(capsys):
    out = main(["--sequences", "120", "--max-len", "30", "--min-len", "1", "--hidden", "16",
                "--features", "4", "--bucket", "16", "--train-steps", "3"])
    runs = out["runs"]
    assert [r["workers"] for r in runs] == [1, 2]
    for r in runs:
        assert r["threads"] == max(1, out["cores"] // r["workers"])
        assert r["max_abs_diff_vs_local"] < 1e-5, r
        assert r["sequences_per_s"] > 0
    assert out["local"].shape == (120,)
    text = capsys.readouterr().out
    assert "sequences/s" in text and "2 workers x 1 thread" in text
