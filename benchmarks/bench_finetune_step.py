"""Seconds a fine-tuning step of the shipped model takes, by precision and memory layout.

``sanchari adapt`` gains by steps, so the step time sets what its budget buys. Each variant
runs the fine-tune's own step (`train_step`: the region loss, AdamW) on a random batch and the
shipped model; the variants take turns (A, B, C, D, A, B, ...) and the best round of each is
printed. It waits for the machine to settle idle first, prints the CPU, whether it has bfloat16
instructions, and the load average before and after, and warns when it did not start idle.

    python benchmarks/bench_finetune_step.py [--rounds 3] [--steps 8] [--crop 192] [--batch 4]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_flags, settle, warn_if_busy

from sanchari_processes.adapt.finetune import (
    native_bf16,
    train_step,
    trainable_copy,
)
from sanchari_processes.inference.checkpoint import load_checkpoint
from sanchari_processes.settings import SHIPPED_WEIGHTS

#: (name, bfloat16 autocast, channels-last)
VARIANTS = (
    ("float32, standard layout (before)", False, False),
    ("float32, channels-last", False, True),
    ("bfloat16 autocast, standard layout", True, False),
    ("bfloat16 autocast, channels-last (sanchari adapt)", True, True),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="steps timed per turn")
    parser.add_argument("--crop", type=int, default=192)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    before = settle()
    print(f"load average before: {before:.2f}")
    print(
        f"CPU: {cpu_flags()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"bfloat16 instructions: {'yes' if native_bf16() else 'no (emulated: slower)'}"
    )
    base = load_checkpoint(SHIPPED_WEIGHTS, "cpu").module
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((args.batch, 3, args.crop, args.crop), np.float32))
    y = torch.from_numpy(
        (rng.random((args.batch, 1, args.crop, args.crop)) < 0.05).astype(np.float32)
    )

    runs = []
    for _, bf16, channels_last in VARIANTS:
        model = trainable_copy(base, channels_last)
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
        inputs = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        step = functools.partial(train_step, model, optimiser, inputs, y, bf16)
        step()  # warm: first-call allocations and kernel choice
        runs.append(step)
    best = [float("inf")] * len(VARIANTS)
    for _ in range(args.rounds):
        for i, step in enumerate(runs):
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            best[i] = min(best[i], (time.perf_counter() - start) / args.steps)
    print(
        f"best of {args.rounds} interleaved rounds of {args.steps} steps "
        f"(batch {args.batch}, {args.crop} px):"
    )
    for (name, _, _), seconds in zip(VARIANTS, best, strict=True):
        print(f"  {name:50s} {seconds:.3f} s/step  ({best[0] / seconds:.2f}x)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    warn_if_busy([before])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
