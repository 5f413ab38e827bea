"""The fine-tune itself on the tiny model: it learns, leaves its input alone, saves cleanly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sanchari_processes.adapt import finetune as finetune_module
from sanchari_processes.adapt.finetune import FinetuneConfig, TrainRegion, finetune, native_bf16
from sanchari_processes.adapt.labels import IGNORE
from sanchari_processes.inference.checkpoint import load_checkpoint


def _region() -> TrainRegion:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 96, 96)).astype(np.float32)
    labels = np.zeros((96, 96), np.uint8)
    labels[40:48, :] = 1
    x[:, 40:48, :] += 2.0  # a bright road the model can learn
    labels[:8] = IGNORE
    return TrainRegion(x, labels)


@pytest.mark.parametrize("bf16", [False, True])
def test_fine_tune_changes_a_copy_in_either_precision(tiny_checkpoint: Path, bf16: bool) -> None:
    loaded = load_checkpoint(tiny_checkpoint, "cpu")
    before = {k: v.clone() for k, v in loaded.module.state_dict().items()}
    config = FinetuneConfig(max_steps=3, seconds=60.0, crop=64, batch=2, lr=1e-3, bf16=bf16)
    model, steps = finetune(loaded.module, [_region()], config)
    assert steps == 3
    after = model.state_dict()
    assert all(torch.equal(v, loaded.module.state_dict()[k]) for k, v in before.items())
    assert any(not torch.equal(after[k], v) for k, v in before.items() if v.is_floating_point())
    # float32 and in the standard layout again: what safetensors writes and the exporter traces
    assert all(v.dtype == torch.float32 and v.is_contiguous() for v in model.parameters())
    assert not model.training


def test_bf16_only_where_the_cpu_has_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    real_open = open

    def fake_open(path: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        return real_open(cpuinfo if path == "/proc/cpuinfo" else path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    for flags, expected in (("fpu avx2 fma", False), ("fpu avx512f avx512_bf16", True)):
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        native_bf16.cache_clear()
        assert finetune_module.native_bf16() is expected
    native_bf16.cache_clear()


def test_the_loss_rewards_the_labels_and_skips_ignored_pixels() -> None:
    labels = torch.zeros(1, 1, 16, 16)
    labels[..., 6:10, :] = 1.0
    labels[..., :3, :] = IGNORE
    right = torch.where(labels == 1, 4.0, -4.0)
    wrong = -right
    assert finetune_module.region_loss(right, labels) < finetune_module.region_loss(wrong, labels)
    # what the model says where nothing is known changes nothing
    noisy = right.clone()
    noisy[..., :3, :] = torch.randn(1, 1, 3, 16) * 10
    assert torch.allclose(
        finetune_module.region_loss(noisy, labels), finetune_module.region_loss(right, labels)
    )
    # no labelled pixel: zero, and still differentiable
    nothing = torch.full_like(labels, IGNORE)
    logits = right.clone().requires_grad_(True)
    loss = finetune_module.region_loss(logits, nothing)
    loss.backward()
    assert float(loss.detach()) == 0.0 and logits.grad is not None
