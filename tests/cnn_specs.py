"""Specs that use the layers real CNNs need (grouped and depthwise convs, ReLU6, explicit zero padding, padded max
pooling, adaptive average pooling, BatchNorm with per-layer settings), for the parity and spec tests."""

from __future__ import annotations

from harness.spec import (
    Activation,
    AdaptiveAvgPool2D,
    BatchNorm,
    Concat,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ModelSpec,
    ZeroPad2D,
)

P1 = ((1, 1), (1, 1))


def mobile_block_spec(input_shape: tuple[int, ...], num_classes: int) -> ModelSpec:
    """A MobileNet-like chain on 8x8 inputs, map sizes in the comments. The pool is ResNet's stem pool (3, stride
    2, padding 1: PyTorch's own padded MaxPool2d); the adaptive pool then has unequal, overlapping windows
    (3 -> 2: rows 0-1 and 1-2); the two BatchNorms differ in decay and epsilon."""
    return ModelSpec(
        name="mobile_block",
        input_shape=input_shape,
        num_classes=num_classes,
        layers=(
            ZeroPad2D(name="pad", group="features", padding=((1, 2), (1, 2))),  # 11x11x1
            Conv2D(name="stem", group="features", filters=8, kernel_size=(3, 3), strides=(2, 2), use_bias=False),  # 5x5
            BatchNorm(name="stem_bn", group="features", decay=0.9, epsilon=1e-3),
            Activation(name="stem_act", group="features", kind="relu6"),
            # Depthwise with channel multiplier 2: 8 groups of one input channel, two filters each.
            Conv2D(name="dw", group="features", filters=16, kernel_size=(3, 3), padding=P1, groups=8, use_bias=False),
            BatchNorm(name="dw_bn", group="features", decay=0.7, epsilon=0.1),
            Activation(name="dw_act", group="features", kind="relu6"),
            Conv2D(name="pw", group="features", filters=12, kernel_size=(1, 1)),
            Conv2D(name="grouped", group="features", filters=12, kernel_size=(3, 3), padding=P1, groups=2),
            MaxPool2D(name="pool", group="features", pool_size=(3, 3), strides=(2, 2), padding=P1),  # 3x3x12
            AdaptiveAvgPool2D(name="adapt", group="features", output_size=(2, 2)),  # 2x2x12
            Flatten(name="flatten", group="features"),
            Dense(name="logits", group="classifier", units=num_classes),
        ),
    )


def pooled_branches_spec(input_shape: tuple[int, ...], num_classes: int) -> ModelSpec:
    """The other paths: a strided depthwise conv with asymmetric padding, max pooling with asymmetric padding
    (explicit -inf padding in PyTorch), adaptive pooling whose windows are a plain pool, and the global (1, 1)."""
    return ModelSpec(
        name="pooled_branches",
        input_shape=input_shape,
        num_classes=num_classes,
        layers=(
            Conv2D(name="stem", group="features", filters=6, kernel_size=(3, 3), padding=P1),  # 8x8x6
            Activation(name="stem_act", group="features", kind="relu6"),
            Conv2D(
                name="dw",
                group="features",
                filters=12,
                kernel_size=(3, 3),
                strides=(2, 2),
                padding=((0, 1), (0, 1)),
                groups=6,
            ),  # 4x4x12
            Activation(name="dw_act", group="features", kind="relu6"),
            MaxPool2D(name="pool", group="features", pool_size=(2, 2), strides=(1, 1), padding=((0, 1), (0, 1))),  # 4x4
            AdaptiveAvgPool2D(name="adapt", group="features", output_size=(2, 2)),  # 2x2x12: AvgPool 2x2
            Flatten(name="flat_adapt", group="features"),
            # A Dense between Flatten and Concat: a flattened map concatenated straight into a Dense is not
            # converted to PyTorch's C,H,W order (the Concat drops where its inputs came from).
            Dense(name="proj", group="features", units=8),
            AdaptiveAvgPool2D(name="gap", group="features", output_size=(1, 1), inputs=("pool",)),
            Flatten(name="flat_gap", group="features"),
            Concat(name="head_in", group="classifier", inputs=("proj", "flat_gap")),
            Dense(name="logits", group="classifier", units=num_classes),
        ),
    )


CNN_SPECS = {"mobile_block": mobile_block_spec, "pooled_branches": pooled_branches_spec}
