"""The lessons' real networks as neutral builders (SUITES.md S1-S3): AlexNet, VGG, ResNet, MobileNetV2,
DenseNet and the CIFAR ResNet-20.

Every family takes ``ModelOptions.width_multiplier`` so a CPU can train a narrow version; at width 1 the
torchvision-named models are torchvision's architectures exactly, with torchvision's module paths as layer names
('.' written '_'), so a torchvision state dict maps onto them by name. Layer groups (``stem``, ``stage1`` ...,
``features``, ``classifier``) let ``freeze_early`` and per-group learning rates address them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from harness.spec import Layer
from harness.zoo import classic, densenet, mobilenet, resnet
from harness.zoo.graph import ZOO_OPTIONS_ALWAYS, ZOO_OPTIONS_WITH_BN, ZOO_OPTIONS_WITH_DROPOUT, GraphBuilder

# builder(graph, num_classes, width, dropout_kind) -> layers; families without dropout take no dropout_kind
FamilyBuilder = Callable[[GraphBuilder, int, float, str], list[Layer]]


@dataclass(frozen=True)
class ZooModel:
    build: FamilyBuilder
    description: str
    natural_input: tuple[int, int, int]  # (H, W, C) the architecture was designed for
    options: frozenset[str]  # the ModelOptions fields it honours
    natural_classes: int = 1000  # the classes of the task it was designed for (ImageNet's, unless said)


def _no_dropout(build: Callable[..., list[Layer]]) -> FamilyBuilder:
    return lambda g, classes, width, _kind: build(g, classes, width)


_BN = ZOO_OPTIONS_ALWAYS | ZOO_OPTIONS_WITH_BN
_DROP = ZOO_OPTIONS_ALWAYS | ZOO_OPTIONS_WITH_DROPOUT
IMAGENET = (224, 224, 3)

ZOO: dict[str, ZooModel] = {
    "alexnet": ZooModel(
        classic.alexnet,
        "the lessons' AlexNet: conv96 11x11/4 ... dense 4096 x2, dropout .5 (227 px)",
        (227, 227, 3),
        _DROP,
    ),
    "alexnet_tv": ZooModel(
        classic.alexnet_tv, "torchvision's AlexNet (64-192-384-256-256, adaptive 6x6 pool)", IMAGENET, _DROP
    ),
    **{
        f"{config}{'_bn' if bn else ''}": ZooModel(
            partial(classic.vgg, config=config, batchnorm=bn),
            f"torchvision's VGG-{config[3:]}{' with BatchNorm' if bn else ''}",
            IMAGENET,
            (_BN | _DROP) if bn else _DROP,
        )
        for config in classic.VGG_CONFIGS
        for bn in (False, True)
    },
    **{
        depth: ZooModel(
            _no_dropout(partial(resnet.resnet, depth=depth)),
            f"torchvision's ResNet-{depth[6:]} ({resnet.IMAGENET_RESNETS[depth][0]} blocks, V1.5)",
            IMAGENET,
            _BN,
        )
        for depth in resnet.IMAGENET_RESNETS
    },
    "resnet20": ZooModel(
        _no_dropout(resnet.resnet20),
        "the CIFAR ResNet-20 (He et al. 2016; 1x1 projection shortcuts)",
        (32, 32, 3),
        _BN,
        natural_classes=10,  # CIFAR-10
    ),
    "mobilenet_v2": ZooModel(
        mobilenet.mobilenet_v2, "torchvision's MobileNetV2 (inverted residuals, ReLU6)", IMAGENET, _BN | _DROP
    ),
    "densenet121": ZooModel(
        _no_dropout(densenet.densenet121), "torchvision's DenseNet-121 (growth 32, 6-12-24-16)", IMAGENET, _BN
    ),
}
