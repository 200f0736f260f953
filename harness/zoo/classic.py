"""AlexNet (the lessons' and torchvision's) and VGG: plain conv stacks with a large dense classifier."""

from __future__ import annotations

from harness.spec import AdaptiveAvgPool2D, Dense, Dropout, Flatten, Layer, MaxPool2D
from harness.zoo.graph import GraphBuilder, scaled


def _dense_head(
    g: GraphBuilder, hidden: int, num_classes: int, dropout: float, kind: str, dropout_first: bool, names: list[str]
) -> None:
    """Two hidden dense layers with ReLU and dropout, then the logits; ``names`` are the layer names in order.
    torchvision's AlexNet drops out *before* each hidden dense layer, VGG and the lessons' AlexNet after its ReLU."""
    it = iter(names)
    for _ in range(2):
        if dropout_first:
            g.add(Dropout(name=next(it), group="classifier", rate=dropout, kind=kind))
        g.add(Dense(name=next(it), group="classifier", units=hidden))
        g.act(next(it), "classifier")
        if not dropout_first:
            g.add(Dropout(name=next(it), group="classifier", rate=dropout, kind=kind))
    g.add(Dense(name=next(it), group="classifier", units=num_classes))


def alexnet(g: GraphBuilder, num_classes: int, width: float, dropout_kind: str) -> list[Layer]:
    """The lessons' AlexNet (SUITES.md S1, for 227x227 inputs): conv 96 11x11/4 (no padding), three max pools 3/2,
    dense 4096 x 2 with dropout 0.5 after each ReLU."""
    convs = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (384, 3, 1, 1), (256, 3, 1, 1))
    for i, (filters, kernel, stride, pad) in enumerate(convs, start=1):
        g.conv(f"conv{i}", "features", scaled(filters, width), kernel, stride, pad, bias=True)
        g.act(f"relu{i}", "features")
        if i in (1, 2, 5):
            g.add(MaxPool2D(name=f"pool{i}", group="features", pool_size=(3, 3), strides=(2, 2)))
    g.add(Flatten(name="flatten", group="features"))
    _dense_head(
        g,
        scaled(4096, width),
        num_classes,
        0.5,
        dropout_kind,
        dropout_first=False,
        names=["fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8"],
    )
    return g.layers


def _torchvision_head(
    g: GraphBuilder, pool: tuple[int, int], num_classes: int, width: float, dropout_kind: str, dropout_first: bool
) -> list[Layer]:
    """torchvision's AlexNet / VGG tail: adaptive average pool, flatten, dense 4096 x 2 with dropout 0.5 (before
    each dense in AlexNet, after each ReLU in VGG), named classifier_0 ... classifier_6 as torchvision has them."""
    g.add(AdaptiveAvgPool2D(name="avgpool", group="features", output_size=pool))
    g.add(Flatten(name="flatten", group="features"))
    names = [f"classifier_{i}" for i in range(7)]
    _dense_head(g, scaled(4096, width), num_classes, 0.5, dropout_kind, dropout_first=dropout_first, names=names)
    return g.layers


def alexnet_tv(g: GraphBuilder, num_classes: int, width: float, dropout_kind: str) -> list[Layer]:
    """torchvision's AlexNet (one-GPU variant: 64-192-384-256-256 filters, adaptive (6, 6) pool)."""
    convs = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))
    index = 0
    for i, (filters, kernel, stride, pad) in enumerate(convs, start=1):
        g.conv(f"features_{index}", "features", scaled(filters, width), kernel, stride, pad, bias=True)
        g.act(f"features_{index + 1}", "features")
        index += 2
        if i in (1, 2, 5):
            g.add(MaxPool2D(name=f"features_{index}", group="features", pool_size=(3, 3), strides=(2, 2)))
            index += 1
    return _torchvision_head(g, (6, 6), num_classes, width, dropout_kind, dropout_first=True)


VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}


def vgg(
    g: GraphBuilder, num_classes: int, width: float, dropout_kind: str, config: str, batchnorm: bool
) -> list[Layer]:
    """torchvision's VGG: 3x3 convs padded 1 (with bias, also before BatchNorm, as torchvision has them),
    max pools 2/2, adaptive (7, 7) pool, dense 4096 x 2 with dropout 0.5 after each ReLU."""
    index = 0
    for item in VGG_CONFIGS[config]:
        if item == "M":
            g.add(MaxPool2D(name=f"features_{index}", group="features", pool_size=(2, 2), strides=(2, 2)))
            index += 1
            continue
        g.conv(f"features_{index}", "features", scaled(int(item), width), 3, bias=True)
        if batchnorm:
            g.bn(f"features_{index + 1}", "features")
        g.act(f"features_{index + 1 + batchnorm}", "features")
        index += 2 + batchnorm
    return _torchvision_head(g, (7, 7), num_classes, width, dropout_kind, dropout_first=False)
