"""Building blocks the zoo's families share: a layer list that tracks inputs, and conv/BN/activation units."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from harness.spec import Activation, BatchNorm, Conv2D, Layer, Padding2D

# What a ModelOptions field means for the zoo; build_spec rejects a non-default value of any other field.
ZOO_OPTIONS_ALWAYS = frozenset({"width_multiplier"})
ZOO_OPTIONS_WITH_BN = frozenset({"bn_decay", "bn_epsilon", "bn_running_variance"})
ZOO_OPTIONS_WITH_DROPOUT = frozenset({"dropout", "dropout_kind"})


def scaled(channels: int, width: float) -> int:
    """Channels (or units) of a layer at ``width``: the one rounding rule of every family but MobileNetV2's.
    Width 1 gives the published architecture exactly."""
    return max(1, int(round(channels * width)))


def symmetric(pad: int) -> Padding2D:
    return ((pad, pad), (pad, pad))


@dataclass
class GraphBuilder:
    """An ordered layer list under construction; each ``add`` returns the new layer's name.

    Mutable on purpose: it lives only while one builder runs. Inputs are left implicit when a layer reads the
    previous layer's output, so chains stay as short as the hand-written specs.
    """

    bn_decay: float
    bn_epsilon: float
    bn_running_variance: str
    layers: list[Layer] = field(default_factory=list)

    @property
    def last(self) -> str:
        return self.layers[-1].name if self.layers else "input"

    def add(self, layer: Layer, *inputs: str) -> str:
        """Append ``layer`` reading ``inputs`` (default: the previous layer's output)."""
        if inputs and inputs != (self.last,):
            layer = replace(layer, inputs=tuple(inputs))
        self.layers.append(layer)
        return layer.name

    def conv(
        self,
        name: str,
        group: str,
        filters: int,
        kernel: int,
        stride: int = 1,
        pad: int | None = None,
        groups: int = 1,
        bias: bool = False,
        src: str | None = None,
    ) -> str:
        """A square conv, zero-padded by ``pad`` (default kernel // 2) on every side."""
        layer = Conv2D(
            name=name,
            group=group,
            filters=filters,
            kernel_size=(kernel, kernel),
            strides=(stride, stride),
            padding=symmetric(kernel // 2 if pad is None else pad),
            use_bias=bias,
            groups=groups,
        )
        return self.add(layer, *((src,) if src else ()))

    def bn(self, name: str, group: str, src: str | None = None) -> str:
        layer = BatchNorm(
            name=name,
            group=group,
            decay=self.bn_decay,
            epsilon=self.bn_epsilon,
            running_variance=self.bn_running_variance,
        )
        return self.add(layer, *((src,) if src else ()))

    def act(self, name: str, group: str, kind: str = "relu", src: str | None = None) -> str:
        return self.add(Activation(name=name, group=group, kind=kind), *((src,) if src else ()))
