"""Causal-LM fine-tuning in float32 vs bfloat16 autocast (``train_precision: mixed-bf16``) on zoo:smollm2-135m:
paired, interleaved timing (wall and CPU seconds per optimiser step) and the loss trajectories of the two runs.

Run: BIASBOARD_DATA_DIR=../shared/data pytest tests/benchmarks/bench_lm_precision.py -o python_files='bench_*.py' -s
     (optionally BENCH_STEPS=4 BENCH_ROUNDS=3; OMP_NUM_THREADS=1 on a shared machine). Each run prints as it ends.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from biasboard.harness.models.precision import fast_bf16
from biasboard.harness.training import lm as lf
from biasboard.harness.training.corpora import holistic_split
from biasboard.harness.training.objectives import ErmObjective

CORPUS = holistic_split("3bias", n_sentences=3000, seed=0)


def timed_run(handle, precision: str, steps: int) -> dict:
    """One ERM fine-tuning run of ``steps`` steps (the default batch 32 x 24 tokens); seconds exclude the copy."""
    config = lf.TrainConfig("lm", steps=steps, batch_size=32, max_length=24, precision=precision)
    model = handle.clone_model()
    wall, cpu = time.perf_counter(), time.process_time()
    history, rate = lf.train_lm(model, handle.tokenizer, "clm", CORPUS, config, ErmObjective())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = {"precision": precision, "wall_per_step": wall / steps, "cpu_per_step": cpu / steps,
           "tokens_per_s": rate, "losses": [row["loss"] for row in history]}
    print(f"\n{precision}: {steps} steps, wall {out['wall_per_step']:.2f} s/step, CPU {out['cpu_per_step']:.2f} s/step, "
          f"losses {[round(x, 4) for x in out['losses']]}", flush=True)
    return out


@pytest.mark.slow
@pytest.mark.skipif(not fast_bf16(), reason="no native bfloat16 on this machine")
def test_clm_bf16_autocast_speed_and_losses(smollm):
    steps, rounds = int(os.environ.get("BENCH_STEPS", 4)), int(os.environ.get("BENCH_ROUNDS", 3))
    timed_run(smollm, "float32", 1)  # one-off allocations
    runs = [timed_run(smollm, p, steps) for _ in range(rounds) for p in ("float32", "mixed-bf16")]
    by = {p: [r for r in runs if r["precision"] == p] for p in ("float32", "mixed-bf16")}
    for p, rs in by.items():
        print(f"\n{p}: wall s/step {[round(r['wall_per_step'], 2) for r in rs]}, "
              f"CPU s/step {[round(r['cpu_per_step'], 2) for r in rs]}, "
              f"tokens/s {[round(r['tokens_per_s']) for r in rs]}")
    ratio = [a["wall_per_step"] / b["wall_per_step"] for a, b in zip(by["float32"], by["mixed-bf16"])]
    cpu_ratio = [a["cpu_per_step"] / b["cpu_per_step"] for a, b in zip(by["float32"], by["mixed-bf16"])]
    fp32, bf16 = np.array(by["float32"][0]["losses"]), np.array(by["mixed-bf16"][0]["losses"])
    print(f"speed-up (fp32 / bf16 per step): wall {np.round(ratio, 2).tolist()}, CPU {np.round(cpu_ratio, 2).tolist()}")
    print(f"loss fp32 {np.round(fp32, 4).tolist()}\nloss bf16 {np.round(bf16, 4).tolist()}\n"
          f"max |diff| {np.abs(fp32 - bf16).max():.4f}")
    assert np.abs(fp32 - bf16).max() < 0.1 * fp32.max()
