"""Vision backbones for worst-group image classification.

Every backbone is an ``nn.Module`` whose ``forward(images)`` returns a list of globally average-pooled feature
vectors, one per stage (early to late). Tasks put their own heads on top: the last stage feeds the classifier,
and methods that distil into early layers (Debiasify) read ``handle.extras["shallow_stage"]``. The three
architectures:

- ``vision:small-cnn``: four conv stages (16-32-64-128 channels), random init, for the synthetic digits set;
- ``vision:resnet18``: ResNet-18 (He et al. 2016), random init; torchvision's when it imports, else our own
  implementation with torchvision's state-dict names, so ``{"id": "weights.pth", "family": "vision"}`` loads
  torchvision ResNet-18 weights (``weights_only=True``);
- ``zoo:efficientnet-lite0``: ImageNet EfficientNet-Lite0 from the efficientnet-lite-pytorch code and the zoo
  weights file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from biasboard.harness.errors import BiasboardError, UnsupportedError

BUILTIN_PREFIX = "vision:"


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU stages with strides 1, 2, 2, 2; about 100k parameters, trains on CPU in seconds."""

    channels = (16, 32, 64, 128)

    def __init__(self):
        super().__init__()
        layers, c_in = [], 3
        for i, c in enumerate(self.channels):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(
                nn.Conv2d(c_in, c, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
            c_in = c
        self.stages = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x.mean(dim=(2, 3)))
        return out


class BasicBlock(nn.Module):
    """ResNet basic block; attribute names match torchvision's so its state dicts load."""

    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 with torchvision's layout (conv1, bn1, layer1-4, fc) and initialisation."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        widths, c_in = (64, 128, 256, 512), 64
        for i, c in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(c_in, c, stride), BasicBlock(c, c)))
            c_in = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


class ResNetStages(nn.Module):
    """Pooled outputs of layer1..layer4 of a torchvision-style ResNet (ours or torchvision's)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        out = []
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(n, name)(x)
            out.append(x.mean(dim=(2, 3)))
        return out


class EfficientNetStages(nn.Module):
    """Pooled features of EfficientNet-Lite0 at strides 4, 8, 16 and the 1280-d head (ResNet layer1-4 analogues)."""

    stage_ends = (2, 4, 10)
    """Indices of the last MBConv block at stride 4 (24 ch), 8 (40 ch) and 16 (112 ch)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        n = self.net
        x = n._swish(n._bn0(n._conv_stem(x)))
        out, rate = [], n._global_params.drop_connect_rate
        for idx, block in enumerate(n._blocks):
            x = block(x, drop_connect_rate=rate * idx / len(n._blocks) if rate else None)
            if idx in self.stage_ends:
                out.append(x.mean(dim=(2, 3)))
        x = n._swish(n._bn1(n._conv_head(x)))
        out.append(x.mean(dim=(2, 3)))
        return out


@dataclass(frozen=True)
class VisionArch:
    """What a task needs to know about a backbone besides its weights."""

    name: str
    stage_dims: tuple[int, ...]
    """Channels of each pooled stage output, early to late."""
    shallow_stage: int
    """Index of the "early" stage Debiasify distils into (ResNet layer2 or its equivalent)."""
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    """Input normalisation applied by the task to images in [0, 1]."""
    min_input: int = 0
    """Smaller images are upsampled (bilinear) to this size, e.g. 16x16 digits for an ImageNet network."""


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
ARCHS = {
    "small-cnn": VisionArch("small-cnn", SmallCNN.channels, 1, (0.5,) * 3, (0.25,) * 3),
    "resnet18": VisionArch("resnet18", (64, 128, 256, 512), 1, *IMAGENET, min_input=32),
    # The TF Lite builder normalises with mean 127 and std 128 on 0-255 pixels.
    "efficientnet-lite0": VisionArch("efficientnet-lite0", (24, 40, 112, 1280), 1, (127 / 255,) * 3, (128 / 255,) * 3,
                                     min_input=64),
}


def _resnet18() -> nn.Module:
    """torchvision's ResNet-18 when it imports against the installed torch, else ours (same state-dict names)."""
    try:
        from torchvision.models import resnet18

        return resnet18(weights=None)
    except Exception:  # torchvision missing or built for another torch: both end in our implementation
        return ResNet18()


def _load_state(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BiasboardError(f"{path}: cannot read weights as a torch state dict: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k.removeprefix("module."): v for k, v in state.items()}


def build_backbone(arch: str, weights: Path | None = None) -> nn.Module:
    """A stage-feature backbone of ``arch``, with ``weights`` (a state dict file of the underlying net) if given."""
    if arch == "small-cnn":
        net, wrap = SmallCNN(), None
    elif arch == "resnet18":
        net, wrap = _resnet18(), ResNetStages
    elif arch == "efficientnet-lite0":
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise UnsupportedError("zoo:efficientnet-lite0 needs the package efficientnet-lite-pytorch==0.1.0") from exc
        # image_size=None: "same" padding computed per input, so any image size works (static padding assumes 224)
        net, wrap = EfficientNet.from_name("efficientnet-lite0", image_size=None), EfficientNetStages
    else:
        raise UnsupportedError(f"unknown vision architecture {arch!r}; known: {', '.join(ARCHS)}")
    if weights is not None:
        try:
            missing, unexpected = net.load_state_dict(_load_state(Path(weights)), strict=False)
        except RuntimeError as exc:  # shape mismatches
            raise BiasboardError(f"{weights}: weights do not fit {arch}: {str(exc)[:300]}") from None
        if missing or unexpected:
            raise BiasboardError(f"{weights}: weights do not fit {arch}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return net if wrap is None else wrap(net)


def _arch_of(resolved) -> str:
    spec_id = resolved.spec.id
    if spec_id.startswith(BUILTIN_PREFIX):
        return spec_id[len(BUILTIN_PREFIX):]
    if resolved.fmt == "efficientnet":
        return "efficientnet-lite0"
    if Path(resolved.path).is_file():
        return "resnet18"  # a user's weights file: ResNet-18 is the architecture we accept weights for
    raise UnsupportedError(f"model {spec_id!r}: a vision model is {BUILTIN_PREFIX}<arch>, zoo:efficientnet-lite0, "
                           f"or a ResNet-18 weights file (.pth)")


def resolve_builtin(spec):
    """Resolve ``vision:<arch>`` (random init: no files; the digest names the architecture and torch version)."""
    from biasboard.harness.digest import json_sha256
    from biasboard.harness.models.types import ModelSpec, ResolvedModel

    spec = ModelSpec.parse(spec)
    arch = spec.id[len(BUILTIN_PREFIX):]
    if arch not in ARCHS or arch == "efficientnet-lite0":
        raise BiasboardError(f"unknown vision model {spec.id!r}; built-in: "
                             f"{', '.join(BUILTIN_PREFIX + a for a in ARCHS if a != 'efficientnet-lite0')}")
    digest = json_sha256({"arch": arch, "init": "random", "impl": "biasboard-1"})
    return ResolvedModel(spec, "vision", Path("."), "builtin", digest)


def load_vision_handle(resolved):
    """A handle whose ``model`` maps images to per-stage pooled features; ``extras`` describe the stages."""
    from biasboard.harness.models.types import ModelHandle

    arch = _arch_of(resolved)
    weights = None if resolved.fmt == "builtin" else Path(resolved.path)
    with torch.random.fork_rng():  # a random-init handle is the same whatever the global RNG state
        torch.manual_seed(0)
        backbone = build_backbone(arch, weights).eval()
    info = ARCHS[arch]
    return ModelHandle(resolved.spec.id, "vision", backbone, None, resolved.weights_sha256,
                       extras={"arch": arch, "stage_dims": info.stage_dims, "shallow_stage": info.shallow_stage,
                               "mean": info.mean, "std": info.std, "min_input": info.min_input,
                               "pretrained": weights is not None})


def builtin_handle(arch: str):
    """Shortcut for ``vision:<arch>`` without going through the model resolver."""
    return load_vision_handle(resolve_builtin(BUILTIN_PREFIX + arch))
