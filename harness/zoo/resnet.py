"""Residual networks: torchvision's ResNet-18/34/50 (V1.5) and the CIFAR ResNet-20 of He et al. (2016)."""

from __future__ import annotations

from harness.spec import AdaptiveAvgPool2D, Add, Dense, Flatten, Layer, MaxPool2D
from harness.zoo.graph import GraphBuilder, scaled

# (block kind, blocks per stage) of the ImageNet ResNets; stage widths 64, 128, 256, 512 (x4 out for bottlenecks)
IMAGENET_RESNETS: dict[str, tuple[str, tuple[int, ...]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}


def _block(
    g: GraphBuilder, prefix: str, group: str, kind: str, planes: int, out: int, stride: int, project: bool
) -> None:
    """One block in torchvision's execution order: the residual branch, then the projection shortcut (1x1 conv
    + BN, where the shape changes), the add, the ReLU. Bottlenecks stride in the 3x3 conv (V1.5)."""
    block_input = g.last
    if kind == "basic":
        g.conv(f"{prefix}_conv1", group, planes, 3, stride)
        g.bn(f"{prefix}_bn1", group)
        g.act(f"{prefix}_relu", group)
        g.conv(f"{prefix}_conv2", group, out, 3)
        g.bn(f"{prefix}_bn2", group)
    else:
        g.conv(f"{prefix}_conv1", group, planes, 1)
        g.bn(f"{prefix}_bn1", group)
        g.act(f"{prefix}_relu", group)
        g.conv(f"{prefix}_conv2", group, planes, 3, stride)
        g.bn(f"{prefix}_bn2", group)
        g.act(f"{prefix}_relu_1", group)
        g.conv(f"{prefix}_conv3", group, out, 1)
        g.bn(f"{prefix}_bn3", group)
    branch = g.last
    shortcut = block_input
    if project:
        g.conv(f"{prefix}_downsample_0", group, out, 1, stride, src=block_input)
        shortcut = g.bn(f"{prefix}_downsample_1", group)
    g.add(Add(name=f"{prefix}_add", group=group), branch, shortcut)
    g.act(f"{prefix}_relu_{2 if kind == 'bottleneck' else 1}", group)


def _stages(g: GraphBuilder, kind: str, blocks: tuple[int, ...], widths: tuple[int, ...], channels: int) -> None:
    for stage, (count, planes) in enumerate(zip(blocks, widths, strict=True), start=1):
        out = planes * EXPANSION[kind]
        for index in range(count):
            stride = 2 if stage > 1 and index == 0 else 1
            _block(
                g,
                f"layer{stage}_{index}",
                f"stage{stage}",
                kind,
                planes,
                out,
                stride,
                project=stride != 1 or channels != out,
            )
            channels = out


def _head(g: GraphBuilder, num_classes: int, dense_name: str = "fc") -> None:
    g.add(AdaptiveAvgPool2D(name="avgpool", group="classifier", output_size=(1, 1)))
    g.add(Flatten(name="flatten", group="classifier"))
    g.add(Dense(name=dense_name, group="classifier", units=num_classes))


def resnet(g: GraphBuilder, num_classes: int, width: float, depth: str) -> list[Layer]:
    """torchvision's ResNet: 7x7/2 stem conv, 3x3/2 max pool padded 1, four stages, global average, fc."""
    kind, blocks = IMAGENET_RESNETS[depth]
    stem = scaled(64, width)
    g.conv("conv1", "stem", stem, 7, 2, 3)
    g.bn("bn1", "stem")
    g.act("relu", "stem")
    g.add(MaxPool2D(name="maxpool", group="stem", pool_size=(3, 3), strides=(2, 2), padding=((1, 1), (1, 1))))
    _stages(g, kind, blocks, tuple(scaled(c, width) for c in (64, 128, 256, 512)), stem)
    _head(g, num_classes)
    return g.layers


def resnet20(g: GraphBuilder, num_classes: int, width: float) -> list[Layer]:
    """The CIFAR ResNet-20 (He et al. 2016, section 4.2): 3x3 conv 16, three stages of three basic blocks with
    16, 32, 64 filters, global average, fc. Where a block changes shape the shortcut is a 1x1 conv + BN projection
    (the paper's option B) rather than option A's zero-padded identity, which the spec cannot express; that
    adds 2,752 parameters to option A's 269,722 (272,474 for 10 classes)."""
    stem = scaled(16, width)
    g.conv("conv1", "stem", stem, 3)
    g.bn("bn1", "stem")
    g.act("relu", "stem")
    _stages(g, "basic", (3, 3, 3), tuple(scaled(c, width) for c in (16, 32, 64)), stem)
    _head(g, num_classes)
    return g.layers
