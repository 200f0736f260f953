"""torchvision's MobileNetV2: inverted residual blocks with depthwise 3x3 convs, ReLU6, linear bottlenecks."""

from __future__ import annotations

from harness.spec import AdaptiveAvgPool2D, Add, Dense, Dropout, Flatten, Layer
from harness.zoo.graph import GraphBuilder

# (expansion t, output channels c, repeats n, first stride s), the paper's Table 2
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's (and the TF reference's) channel rounding: the nearest multiple of ``divisor``, never more
    than 10 % below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn_relu6(
    g: GraphBuilder, prefix: str, group: str, filters: int, kernel: int, stride: int = 1, groups: int = 1
) -> None:
    """torchvision's Conv2dNormActivation: conv (no bias), BN, ReLU6, as submodules 0, 1, 2."""
    g.conv(f"{prefix}_0", group, filters, kernel, stride, groups=groups)
    g.bn(f"{prefix}_1", group)
    g.act(f"{prefix}_2", group, "relu6")


def _inverted_residual(g: GraphBuilder, index: int, group: str, inp: int, out: int, stride: int, t: int) -> None:
    prefix = f"features_{index}_conv"
    block_input = g.last
    hidden = int(round(inp * t))
    part = 0
    if t != 1:
        _conv_bn_relu6(g, f"{prefix}_{part}", group, hidden, 1)
        part += 1
    _conv_bn_relu6(g, f"{prefix}_{part}", group, hidden, 3, stride, groups=hidden)
    g.conv(f"{prefix}_{part + 1}", group, out, 1)
    g.bn(f"{prefix}_{part + 2}", group)
    if stride == 1 and inp == out:
        g.add(Add(name=f"features_{index}_add", group=group), block_input, g.last)


def mobilenet_v2(g: GraphBuilder, num_classes: int, width: float, dropout_kind: str) -> list[Layer]:
    """Stem conv 3x3/2, seven stages of inverted residuals (stage1 .. stage7), a 1x1 conv to 1280 channels,
    global average, dropout 0.2, linear. ``width`` is torchvision's width_mult (channels rounded to multiples of 8;
    the last conv never narrows below 1280)."""
    channels = make_divisible(32 * width)
    _conv_bn_relu6(g, "features_0", "stem", channels, 3, 2)
    index = 1
    for stage, (t, c, n, s) in enumerate(SETTINGS, start=1):
        out = make_divisible(c * width)
        for repeat in range(n):
            _inverted_residual(g, index, f"stage{stage}", channels, out, s if repeat == 0 else 1, t)
            channels = out
            index += 1
    _conv_bn_relu6(g, f"features_{index}", "final_conv", make_divisible(1280 * max(1.0, width)), 1)
    g.add(AdaptiveAvgPool2D(name="avgpool", group="classifier", output_size=(1, 1)))
    g.add(Flatten(name="flatten", group="classifier"))
    g.add(Dropout(name="classifier_0", group="classifier", rate=0.2, kind=dropout_kind))
    g.add(Dense(name="classifier_1", group="classifier", units=num_classes))
    return g.layers
