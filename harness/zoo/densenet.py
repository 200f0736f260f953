"""torchvision's DenseNet-121: dense blocks whose layers read the concatenation of every earlier output."""

from __future__ import annotations

from harness.spec import AdaptiveAvgPool2D, AvgPool2D, Concat, Dense, Flatten, Layer, MaxPool2D
from harness.zoo.graph import GraphBuilder, scaled

BLOCKS_121 = (6, 12, 24, 16)
GROWTH, INIT_FEATURES, BOTTLENECK_FACTOR = 32, 64, 4


def _dense_block(g: GraphBuilder, block: int, group: str, layers: int, growth: int) -> None:
    """As torchvision runs it: layer i concatenates the block input and the i-1 new feature maps before it (the
    first reads the block input as it is), BN-ReLU-1x1 conv-BN-ReLU-3x3 conv; the block outputs the
    concatenation of all of them."""
    prefix = f"features_denseblock{block}"
    features = [g.last]
    for i in range(1, layers + 1):
        name = f"{prefix}_denselayer{i}"
        source = features[0] if len(features) == 1 else g.add(Concat(name=f"{name}_cat", group=group), *features)
        g.bn(f"{name}_norm1", group, src=source)
        g.act(f"{name}_relu1", group)
        g.conv(f"{name}_conv1", group, BOTTLENECK_FACTOR * growth, 1)
        g.bn(f"{name}_norm2", group)
        g.act(f"{name}_relu2", group)
        features.append(g.conv(f"{name}_conv2", group, growth, 3))
    g.add(Concat(name=f"{prefix}_cat", group=group), *features)


def densenet121(g: GraphBuilder, num_classes: int, width: float) -> list[Layer]:
    """Stem 7x7/2 conv, 3x3/2 max pool padded 1; four dense blocks (6, 12, 24, 16 layers, growth 32) with
    transitions (BN, ReLU, 1x1 conv halving the channels, 2x2 average pool) between; final BN and ReLU, global
    average, linear. ``width`` scales the growth rate and the stem's 64 channels."""
    growth, channels = scaled(GROWTH, width), scaled(INIT_FEATURES, width)
    g.conv("features_conv0", "stem", channels, 7, 2, 3)
    g.bn("features_norm0", "stem")
    g.act("features_relu0", "stem")
    g.add(MaxPool2D(name="features_pool0", group="stem", pool_size=(3, 3), strides=(2, 2), padding=((1, 1), (1, 1))))
    for block, layers in enumerate(BLOCKS_121, start=1):
        group = f"block{block}"
        _dense_block(g, block, group, layers, growth)
        channels += layers * growth
        if block < len(BLOCKS_121):
            prefix = f"features_transition{block}"
            g.bn(f"{prefix}_norm", group)
            g.act(f"{prefix}_relu", group)
            channels //= 2
            g.conv(f"{prefix}_conv", group, channels, 1)
            g.add(AvgPool2D(name=f"{prefix}_pool", group=group, pool_size=(2, 2), strides=(2, 2)))
    g.bn("features_norm5", "block4")
    g.act("relu", "block4")
    g.add(AdaptiveAvgPool2D(name="avgpool", group="classifier", output_size=(1, 1)))
    g.add(Flatten(name="flatten", group="classifier"))
    g.add(Dense(name="classifier", group="classifier", units=num_classes))
    return g.layers
