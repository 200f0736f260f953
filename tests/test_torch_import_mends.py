"""A user's torch module that the neutral spec cannot hold as it is, refused with what to change instead of being
silently changed: shared weights, one PReLU slope over many channels, frozen parameters, a final sigmoid, an
in-place op whose input is read again, a BatchNorm that train() keeps in evaluation mode, and a Linear on an
unflattened map (told to add a Flatten, not to choose another input size). Each model converts through
``python -m harness.import_worker``'s own code, as ``--model python:...`` does, run in the session's torch probe worker
(weight_file_probes.python_call) rather than a fresh torch process each: what is checked is the refusal, not the
process (tests/test_model_import.py runs a user's module in a fresh one). This process imports no framework."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from weight_file_probes import python_call

import harness.model_import
from harness.errors import InputError
from harness.model_import import model_spec
from harness.models import ModelOptions
from harness.spec import Activation, ModelSpec
from harness.weights import count_parameters

_NETS = textwrap.dedent("""
    import torch
    from torch import nn


    class Shared(nn.Module):  # one conv, one set of weights, applied twice
        def __init__(self, num_classes):
            super().__init__()
            self.stem = nn.Conv2d(1, 8, 3, padding=1)
            self.block = nn.Conv2d(8, 8, 3, padding=1)
            self.fc = nn.Linear(8 * 8 * 8, num_classes)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            x = torch.relu(self.block(x))
            x = torch.relu(self.block(x))
            return self.fc(torch.flatten(x, 1))


    class Tied(nn.Module):  # two Linear modules holding one weight tensor
        def __init__(self, num_classes):
            super().__init__()
            self.a = nn.Linear(64, 64)
            self.b = nn.Linear(64, 64)
            self.b.weight = self.a.weight
            self.fc = nn.Linear(64, num_classes)

        def forward(self, x):
            return self.fc(self.b(self.a(torch.flatten(x, 1))))


    class ReusedRelu(nn.Module):  # a module without weights applied twice computes the same unshared
        def __init__(self, num_classes):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
            self.act = nn.ReLU()
            self.fc = nn.Linear(4 * 8 * 8, num_classes)

        def forward(self, x):
            x = self.act(self.conv2(self.act(self.conv1(x))))
            return self.fc(torch.flatten(x, 1))


    class NoFlatten(nn.Module):
        def __init__(self, num_classes):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.fc = nn.Linear(8, num_classes)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)))


    def shared(num_classes):
        return Shared(num_classes)


    def tied(num_classes):
        return Tied(num_classes)


    def reused_relu(num_classes):
        return ReusedRelu(num_classes)


    def prelu_one(num_classes):
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.PReLU(), nn.Flatten(), nn.Linear(512, num_classes))


    def prelu_each(num_classes):
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.PReLU(8), nn.Flatten(), nn.Linear(512, num_classes))


    def frozen(num_classes):
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, num_classes))
        model[0].requires_grad_(False)
        return model


    def sigmoid_head(num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 1), nn.Sigmoid())


    def no_flatten(num_classes):
        return NoFlatten(num_classes)


    class SecondHead(nn.Module):  # keeps an embedding it does not return, computed after the classifier
        def __init__(self, num_classes):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, num_classes)
            self.proj = nn.Linear(4 * 6 * 6, num_classes)

        def forward(self, x):
            h = torch.flatten(torch.relu(self.conv(x)), 1)
            out = self.fc(h)
            self.embedding = self.proj(h)
            return out


    class DroppedInplace(nn.Module):  # an in-place ReLU whose result is not assigned
        def __init__(self, num_classes):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, num_classes)

        def forward(self, x):
            x = self.conv(x)
            torch.nn.functional.relu(x, inplace=True)
            return self.fc(torch.flatten(x, 1))


    class InPlaceReuse(nn.Module):  # an in-place op whose input the forward reads again after it
        def __init__(self, num_classes, kind="dropout"):
            super().__init__()
            self.conv, self.kind = nn.Conv2d(1, 4, 3, padding=1), kind
            self.other = nn.Conv2d(1, 4, 3, padding=1)
            self.drop = nn.Dropout(0.5, inplace=True) if kind == "dropout" else nn.ReLU(inplace=True)
            self.fc = nn.Linear(4 * 8 * 8, num_classes)

        def forward(self, x):
            y = self.conv(x)
            if self.kind in ("dropout", "relu"):
                z = self.drop(y)
            elif self.kind == "functional":
                z = torch.nn.functional.relu(y, inplace=True)
            else:  # z names y's tensor: z += ... changes y too
                z = y
                z += self.other(x)
            return self.fc(torch.flatten(z + y, 1))


    class Residual(nn.Module):  # torchvision's block: out += identity, then an in-place ReLU; nothing reads on
        def __init__(self, num_classes):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.relu = nn.ReLU(inplace=True)
            self.fc = nn.Linear(4 * 8 * 8, num_classes)

        def forward(self, x):
            identity = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(identity))
            out += identity
            out = self.relu(out)
            return self.fc(torch.flatten(out, 1))


    class FrozenStatistics(nn.Module):  # the fine-tuning idiom: BatchNorm kept in eval() while the rest trains
        def __init__(self, num_classes):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.fc = nn.Linear(4 * 8 * 8, num_classes)

        def train(self, mode=True):
            super().train(mode)
            self.bn.eval()
            return self

        def forward(self, x):
            return self.fc(torch.flatten(torch.relu(self.bn(self.conv(x))), 1))


    class TutorialNet(nn.Module):  # PyTorch's CIFAR-10 tutorial network, one self.pool applied after each conv
        def __init__(self, num_classes):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 3, padding=1)
            self.fc1 = nn.Linear(16 * 2 * 2, 32)
            self.fc2 = nn.Linear(32, num_classes)

        def forward(self, x):
            x = self.pool(torch.relu(self.conv1(x)))
            x = self.pool(torch.relu(self.conv2(x)))
            return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


    class MnistExample(nn.Module):  # pytorch/examples' mnist/main.py Net, sized for 8x8 images
        def __init__(self, num_classes):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(256, 128)
            self.fc2 = nn.Linear(128, num_classes)

        def forward(self, x):
            x = torch.nn.functional.relu(self.conv1(x))
            x = torch.nn.functional.relu(self.conv2(x))
            x = torch.nn.functional.max_pool2d(x, 2)
            x = torch.flatten(self.dropout1(x), 1)
            x = self.dropout2(torch.nn.functional.relu(self.fc1(x)))
            return torch.nn.functional.log_softmax(self.fc2(x), dim=1)


    class FunctionalForms(nn.Module):  # "same"/"valid" padding, F.avg_pool2d, a mean over the map
        def __init__(self, num_classes):
            super().__init__()
            self.same = nn.Conv2d(1, 4, 4, padding="same")
            self.valid = nn.Conv2d(4, 4, 3, padding="valid")
            self.fc = nn.Linear(4, num_classes)

        def forward(self, x):
            x = torch.nn.functional.avg_pool2d(torch.relu(self.same(x)), kernel_size=2, stride=1)
            return self.fc(self.valid(x).mean((2, 3)))


    class FunctionalDropout(nn.Module):
        def __init__(self, num_classes, follows_mode):
            super().__init__()
            self.fc, self.follows_mode = nn.Linear(64, num_classes), follows_mode

        def forward(self, x):
            x = torch.flatten(x, 1)
            if self.follows_mode == "never":
                return self.fc(torch.nn.functional.dropout(x, 0.5, training=False))
            if self.follows_mode:
                return self.fc(torch.nn.functional.dropout(x, 0.5, training=self.training))
            return self.fc(torch.nn.functional.dropout(x, 0.5))


    class NoisyInTraining(nn.Module):  # noise injection: ops that only training runs
        def __init__(self, num_classes):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 2, 3, padding=1), nn.Linear(128, num_classes)

        def forward(self, x):
            y = torch.relu(self.conv(x))
            if self.training:
                y = y + 0.5 * torch.randn_like(y)
            return self.fc(torch.flatten(y, 1))


    class MixedReluBlock(nn.Module):  # F.relu and its own self.relu in one block: both named block_relu
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2, self.relu = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1), nn.ReLU()

        def forward(self, x):
            return self.relu(self.conv2(torch.nn.functional.relu(self.conv1(x))))


    class MixedRelu(nn.Module):
        def __init__(self, num_classes, end_dim=-1):
            super().__init__()
            self.stem, self.block, self.end_dim = nn.Conv2d(1, 2, 3, padding=1), MixedReluBlock(), end_dim
            self.fc = nn.Linear(128, num_classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.block(self.stem(x)), 1, self.end_dim))


    class PaddedLeaky(nn.Module):  # a TF port's "same" padding at stride 2, functional activations with arguments
        def __init__(self, num_classes):
            super().__init__()
            self.pad, self.conv = nn.ZeroPad2d((1, 0, 0, 2)), nn.Conv2d(1, 3, 3, stride=2)
            self.fc = nn.Linear(3 * 4 * 4, num_classes)

        def forward(self, x):
            x = torch.nn.functional.leaky_relu(self.conv(self.pad(x)), negative_slope=0.2)
            return self.fc(torch.flatten(torch.nn.functional.elu(x, 0.5), 1))


    def padded_leaky(num_classes):
        return PaddedLeaky(num_classes)


    class FunctionalPad(nn.Module):  # F.pad and tensor-method activations, as ported code writes them
        def __init__(self, num_classes, pad=(1, 0, 0, 2), mode="constant", in_place=False):
            super().__init__()
            self.conv, self.pad, self.mode, self.in_place = nn.Conv2d(1, 3, 3, stride=2), pad, mode, in_place
            width = (8 + pad[0] + pad[1] - 3) // 2 + 2  # the second pad's column
            height = (8 + sum(pad[2:]) - 3) // 2 + 1
            self.fc = nn.Linear(3 * height * width, num_classes)

        def forward(self, x):
            x = self.conv(torch.nn.functional.pad(x, self.pad, mode=self.mode))
            if self.in_place:
                x.relu_()
            x = torch.nn.functional.pad(x.sigmoid(), (0, 1)).tanh()
            return self.fc(torch.flatten(x, 1))


    def functional_pad(num_classes):
        return FunctionalPad(num_classes)


    def reflect_pad(num_classes):
        return FunctionalPad(num_classes, pad=(1, 1, 1, 1), mode="reflect")


    def in_place_relu(num_classes):
        return FunctionalPad(num_classes, in_place=True)


    def adaptive_keeping_height(num_classes):  # None: the input's height kept
        pool = nn.AdaptiveAvgPool2d((None, 1))
        return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), pool, nn.Flatten(), nn.Linear(16, num_classes))


    def mixed_relu(num_classes):
        return MixedRelu(num_classes)


    def flatten_to_2(num_classes):
        return MixedRelu(num_classes, end_dim=2)


    class Rewired(nn.Module):  # the same ops in both modes, fed other inputs in training
        def __init__(self, num_classes):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1)
            self.fc = nn.Linear(64, num_classes)

        def forward(self, x):
            y = self.conv1(x)
            return self.fc(torch.flatten(self.conv2(y if self.training else x) + y, 1))


    def rewired_in_training(num_classes):
        return Rewired(num_classes)


    def cropping_pad(num_classes):  # a negative padding crops in torch
        return nn.Sequential(nn.ZeroPad2d(-1), nn.Flatten(), nn.Linear(36, num_classes))


    def dropout_never(num_classes):
        return FunctionalDropout(num_classes, "never")


    def noisy_in_training(num_classes):
        return NoisyInTraining(num_classes)


    def dropout_always(num_classes):
        return FunctionalDropout(num_classes, False)


    def dropout_in_training(num_classes):
        return FunctionalDropout(num_classes, True)


    def mnist_example(num_classes):
        return MnistExample(num_classes)


    def functional_forms(num_classes):
        return FunctionalForms(num_classes)


    def tutorial_net(num_classes):
        return TutorialNet(num_classes)


    def second_head(num_classes):
        return SecondHead(num_classes)


    def dropped_inplace(num_classes):
        return DroppedInplace(num_classes)


    def dropout_in_place_reused(num_classes):
        return InPlaceReuse(num_classes, "dropout")


    def relu_in_place_reused(num_classes):
        return InPlaceReuse(num_classes, "relu")


    def functional_in_place_reused(num_classes):
        return InPlaceReuse(num_classes, "functional")


    def iadd_reused(num_classes):
        return InPlaceReuse(num_classes, "iadd")


    def residual(num_classes):
        return Residual(num_classes)


    class AddAlpha(nn.Module):  # torch.add(y, y, alpha=2): y + 2y, no constant in it
        def __init__(self, num_classes):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4 * 8 * 8, num_classes)

        def forward(self, x):
            y = self.conv(x)
            return self.fc(torch.flatten(torch.add(y, y, alpha=2), 1))


    def add_alpha(num_classes):
        return AddAlpha(num_classes)


    def dropout_all(num_classes):  # p=1.0 drops every unit: torch takes it, the spec's Dropout refuses it
        return nn.Sequential(nn.Flatten(), nn.Dropout(1.0), nn.Linear(64, num_classes))


    def frozen_statistics(num_classes):
        return FrozenStatistics(num_classes)


    def spectral(num_classes):
        return nn.Sequential(nn.Flatten(), nn.utils.spectral_norm(nn.Linear(64, num_classes)))


    def weight_norm(num_classes):
        return nn.Sequential(nn.Flatten(), nn.utils.parametrizations.weight_norm(nn.Linear(64, num_classes)))


    def hooked(num_classes):
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
        model[1].register_forward_hook(lambda module, inputs, output: output * 2)
        return model


    def in_float64(num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes)).double()


    def in_bfloat16(num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes)).to(torch.bfloat16)


    def on_meta(num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes)).to("meta")


    def classes_named(classes=10):  # keras.applications' name for it, which xfbench does not read
        return nn.Sequential(nn.Flatten(), nn.Linear(64, classes))
""")


@pytest.fixture
def nets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers) -> Path:
    (tmp_path / "mend_nets.py").write_text(_NETS)
    monkeypatch.chdir(tmp_path)
    # about 4 s of torch imports per conversion in a fresh process; well under 1 s in the warm worker
    monkeypatch.setattr(harness.model_import, "_fresh_process", python_call(workers, "torch"))
    return tmp_path / "cache"


def _spec(factory: str, cache: Path, classes: int = 10) -> ModelSpec:
    return model_spec(f"python:mend_nets:{factory}", (8, 8, 1), classes, ModelOptions(), cache)


def _refusal(factory: str, cache: Path, classes: int = 10) -> str:
    with pytest.raises(InputError) as refused:
        _spec(factory, cache, classes)
    message = str(refused.value)
    # the user's model to change, not a request to choose another input size
    assert "Expected " in message and "Received: " in message and "To fix, " in message, message
    assert "--input-size" not in message, message
    return message


@pytest.mark.parametrize(
    "factory, received",
    [
        ("in_float64", "Received: '1.weight' as torch.float64 on cpu."),
        ("in_bfloat16", "Received: '1.weight' as torch.bfloat16 on cpu."),
        ("on_meta", "Received: '1.weight' as torch.float32 on meta."),
    ],
)
def test_a_model_in_another_dtype_or_on_another_device_is_refused_as_such(nets, factory, received):
    """The review's cases: each failed in the conversion's forward and was told to change its input size, channels
    or classes."""
    message = _refusal(factory, nets)
    assert "Expected a model with float32 parameters and buffers on the CPU" in message, message
    assert received in message and "--precision" in message, message


def test_a_factory_that_builds_its_own_class_count_is_told_to_take_num_classes(nets):
    """It was told to "export the spec for this task", which means nothing for a python: factory."""
    message = _refusal("classes_named", nets, classes=3)
    assert "Received: the factory built (8, 8, 1) and 10 classes" in message, message
    assert "give the factory a parameter named num_classes and build its last layer with it" in message, message
    assert "num_classes=3" in message and "export the spec" not in message, message


def test_weights_applied_twice_are_refused_and_a_reused_module_without_weights_converts(nets):
    """The spec made each application of a module a layer of its own: the shared conv became two convs with
    separate weights (more parameters, trained apart). A shared module, or a tensor tied between two modules, is
    refused; a reused nn.ReLU computes the same unshared and still converts."""
    message = _refusal("shared", nets)
    assert "module 'block' (Conv2d) applied 2 times" in message and "shared weights" in message, message
    assert "its own module" in message, message
    message = _refusal("tied", nets)
    assert "parameter 'a.weight' shared by modules 'a', 'b'" in message, message
    spec = _spec("reused_relu", nets)
    assert [l.kind for l in spec.layers if isinstance(l, Activation)] == ["relu", "relu"]
    assert count_parameters(spec) == (9 * 4 + 4) + (9 * 4 * 4 + 4) + (256 * 10 + 10)  # the user's own count


def test_a_prelu_with_one_slope_over_several_channels_is_refused_and_one_slope_per_channel_converts(nets):
    """nn.PReLU() shares one slope; the spec learns one per channel, so it became 8 learnable slopes."""
    message = _refusal("prelu_one", nets)
    assert "num_parameters=1" in message and "the 8 channels" in message, message
    assert "nn.PReLU(num_parameters=8)" in message, message
    spec = _spec("prelu_each", nets)
    assert count_parameters(spec) == (9 * 8 + 8) + 8 + (512 * 10 + 10)


def test_frozen_parameters_are_refused_pointing_to_the_strategies_that_freeze(nets):
    """requires_grad=False does not reach the spec: both backends would train the frozen conv."""
    message = _refusal("frozen", nets)
    assert "requires_grad=False" in message and "'0.weight', '0.bias'" in message, message
    assert "--strategy freeze_early --freeze-groups" in message and "feature_extraction" in message, message


def test_a_final_sigmoid_is_refused_as_a_sigmoid_output_with_the_head_to_write(nets):
    """It was refused as 'a model ending in Activation', which says neither what is wrong nor what to write."""
    message = _refusal("sigmoid_head", nets, classes=1)
    assert "a sigmoid output" in message and "softmax cross-entropy" in message, message
    assert "nn.Linear(in_features, num_classes) and no activation" in message, message
    assert "--binary-positive" in message, message


def test_a_linear_on_an_unflattened_map_is_told_to_add_a_flatten_not_to_change_the_input_size(nets):
    """torch applies such a Linear along the last axis; the spec's Dense cannot, whatever the input size."""
    message = _refusal("no_flatten", nets)
    assert "nn.Linear at 'fc'" in message and "(N, 4, 8, 8)" in message, message
    assert "add nn.Flatten()" in message and "in_features=256" in message, message


def test_a_layer_whose_output_is_not_returned_is_refused_not_made_the_classifier(nets):
    """The converter took the last layer it converted as the output: an embedding computed after the classifier
    became the classifier (torch trained another network, TensorFlow failed mid-run), and an in-place ReLU whose
    result was dropped was converted as a layer nothing used."""
    message = _refusal("second_head", nets)
    assert "layer(s) 'proj' computed but not used by the returned output (the forward returns 'fc')" in message
    assert "remove those calls from forward" in message, message
    # refused as what it is: the conv's output, read by the flatten after it, is the in-place ReLU's
    message = _refusal("dropped_inplace", nets)
    assert "F.relu(..., inplace=True) at 'relu' overwrites the output of 'conv', which 'flatten' reads" in message
    assert "x = F.relu(x)" in message, message


@pytest.mark.parametrize(
    "factory, write",
    [
        ("dropout_in_place_reused", "nn.Dropout(inplace=True) at 'drop'"),
        ("relu_in_place_reused", "nn.ReLU(inplace=True) at 'drop'"),
        ("functional_in_place_reused", "F.relu(..., inplace=True) at 'relu'"),
    ],
)
def test_an_in_place_op_whose_input_is_read_again_is_refused_naming_both(nets, factory, write):
    """torch reads the overwritten tensor after the in-place op (z + y is 2 * dropout(y) while training); the spec
    gives every layer its own output, so the conversion computed dropout(y) + y: the dropout converted silently,
    and the ReLU was refused by the probe as a hook or a conversion fault to report."""
    message = _refusal(factory, nets)
    assert f"Received: {write} overwrites the output of 'conv', which 'add' reads after it" in message, message
    assert "hook" not in message and "report it" not in message, message
    # torchvision's own residual (out += identity; self.relu(out), in place) reads nothing after: it converts
    assert [type(layer).__name__ for layer in _spec("residual", nets).layers].count("Add") == 1


def test_an_in_place_add_whose_old_value_is_read_again_is_named_by_the_conversions_check(nets):
    """torch.fx traces `z += w` as z = z + w, so no trace shows it; the conversion's check against the model's own
    logits refuses it, and its message names it first (it sent the user to look for hooks)."""
    message = _refusal("iadd_reused", nets)
    assert "Received: a gap of" in message and "an in-place update of a tensor that is read again" in message
    assert "write x = x + y" in message, message


def test_torch_add_with_alpha_is_refused_as_that_not_as_a_constant(nets):
    message = _refusal("add_alpha", nets)
    assert "Received: torch.add with alpha=2 (a + alpha * b)" in message and "constant" not in message, message
    assert "To fix, add the tensors alone (a + b)" in message, message


def test_a_layer_setting_the_spec_refuses_is_the_models_to_change_not_the_input_sizes(nets):
    """nn.Dropout(1.0) failed in the spec's Dropout and was worded as a conversion that another input size, channel
    count or class count could fix."""
    message = _refusal("dropout_all", nets)
    assert "Expected a dropout rate in [0, 1)" in message and "rate=1.0" in message, message
    assert "To fix, give a rate below 1" in message and "conversion failed" not in message, message


def test_a_batchnorm_that_train_keeps_in_evaluation_mode_is_refused_with_the_strategies_that_freeze(nets):
    """A train() that keeps BatchNorm statistics frozen converted to a BatchNorm that trains on batch statistics:
    the eval-mode probe cannot see it."""
    message = _refusal("frozen_statistics", nets)
    assert "'bn' (BatchNorm2d) still in evaluation mode (training=False) after model.train()" in message, message
    assert "--strategy freeze_early --freeze-groups K or feature_extraction" in message, message


@pytest.mark.parametrize(
    "factory, what",
    [
        ("spectral", "hooks (forward_pre_hooks)"),
        ("weight_norm", "a parametrization"),  # torch names the class of a parametrized module anew
        ("hooked", "hooks (forward_hooks)"),
    ],
)
def test_a_reparametrised_or_hooked_module_is_refused_not_converted_with_its_stored_weight(nets, factory, what):
    """fx does not run a leaf module's hooks: spectral_norm's un-normalised weight was copied (logits off by 29
    against 30), weight_norm's g and v became one plain kernel, a forward hook's change was lost."""
    message = _refusal(factory, nets)
    module = "ParametrizedLinear" if factory == "weight_norm" else "Linear"
    assert f"module '1' ({module}) with {what}" in message and "remove_parametrizations" in message, message


def test_a_module_without_weights_applied_in_several_places_joins_the_group_before_each(nets):
    """The tutorial's self.pool, applied after each conv, was its own group at both places: groups conv1, pool,
    conv2, pool, fc1, classifier; freeze_early refused the model as 'pool' interrupted by others, and a group
    without weights counted in --freeze-groups."""
    spec = _spec("tutorial_net", nets)
    assert [(l.name, l.group) for l in spec.layers if type(l).__name__ == "MaxPool2D"] == [
        ("pool", "conv1"),
        ("pool_1", "conv2"),
    ]
    order = [l.group for l in spec.layers]
    runs = [g for i, g in enumerate(order) if i == 0 or order[i - 1] != g]  # each group one run of layers
    assert runs == ["conv1", "conv2", "fc1", "classifier"]


def test_functional_pools_a_spatial_mean_and_string_padding_convert_as_the_modules_they_equal(nets):
    """PyTorch's own MNIST example was refused at F.max_pool2d, Conv2d(padding="same") as "string padding" and
    x.mean((2, 3)) as "mean": each computes what a supported layer does. The conversion's probe (the converted
    network against the model's own logits) holds the numbers."""
    spec = _spec("mnist_example", nets)
    assert [type(l).__name__ for l in spec.layers] == [
        "Conv2D", "Activation", "Conv2D", "Activation", "MaxPool2D", "Dropout", "Flatten", "Dense", "Activation",
        "Dropout", "Dense",
    ]  # fmt: skip
    spec = _spec("functional_forms", nets)
    kinds = {l.name: l for l in spec.layers}
    assert kinds["same"].padding == ((1, 2), (1, 2)) and kinds["valid"].padding == ((0, 0), (0, 0))
    assert [type(l).__name__ for l in spec.layers] == [
        "Conv2D", "Activation", "AvgPool2D", "Conv2D", "GlobalAvgPool2D", "Dense"
    ]  # fmt: skip


def test_a_functional_dropout_that_drops_at_inference_too_is_refused_naming_training(nets):
    """F.dropout's training defaults to True: the model drops in eval() too, which the spec's Dropout does not; the
    conversion's probe refused it as a conversion fault to report. training=self.training converts."""
    message = str(pytest.raises(InputError, _spec, "dropout_always", nets).value)
    assert "F.dropout without training=self.training" in message and "training=self.training" in message, message
    assert [type(l).__name__ for l in _spec("dropout_in_training", nets).layers] == ["Flatten", "Dropout", "Dense"]


def test_code_that_only_training_runs_is_refused_and_a_dropout_that_never_drops_converts_to_nothing(nets):
    """Traced in evaluation alone, code under `if self.training:` vanished from the converted network without a
    word (both backends trained another network than the user's), and F.dropout(x, p, training=False), which never
    drops, became a dropout that dropped in training."""
    message = _refusal("noisy_in_training", nets)
    assert "a forward that runs other ops in training than in evaluation (first: call_function randn_like" in message
    assert "remove what `if self.training:` guards" in message, message
    assert [type(l).__name__ for l in _spec("dropout_never", nets).layers] == ["Flatten", "Dense"]
    rewired = _refusal("rewired_in_training", nets)  # the same ops, other inputs: compared as well
    assert "a forward that runs other ops in training than in evaluation (first: call_module conv2" in rewired
    cropping = _refusal("cropping_pad", nets)  # refused in the spec, it was told to choose another input size
    assert "Received: ZeroPad2d with a negative padding (a crop) at '0'" in cropping


def test_a_functional_op_beside_a_module_of_the_same_name_converts_and_a_partial_flatten_is_refused(nets):
    """F.relu in a block that applies its own self.relu too: both layers were named block_relu, and the model was
    refused as a spec with duplicate names, told to choose another input size. torch.flatten(x, 1, 2) converted as
    a whole flatten, then its Linear's weights were refused as the wrong shape."""
    names = [layer.name for layer in _spec("mixed_relu", nets).layers]
    assert names == ["stem", "block_conv1", "block_relu_1", "block_conv2", "block_relu", "flatten", "fc"], names
    # ZeroPad2d, F.leaky_relu and F.elu were refused though the spec holds each (and the Keras importer converts
    # ZeroPadding2D); the conversion's check holds the numbers against torch's own forward
    layers = _spec("padded_leaky", nets).layers
    assert [type(layer).__name__ for layer in layers] == [
        "ZeroPad2D", "Conv2D", "Activation", "Activation", "Flatten", "Dense"
    ]  # fmt: skip
    assert layers[0].padding == ((0, 2), (1, 0))  # torch's (left, right, top, bottom) as ((top, bottom), (l, r))
    assert [(layer.kind, layer.alpha) for layer in layers[2:4]] == [("leaky_relu", 0.2), ("elu", 0.5)]
    # F.pad, x.sigmoid() and x.tanh() were refused though the spec holds a zero padding and both activations
    layers = _spec("functional_pad", nets).layers
    assert [(type(layer).__name__, getattr(layer, "kind", None)) for layer in layers] == [
        ("ZeroPad2D", None), ("Conv2D", None), ("Activation", "sigmoid"), ("ZeroPad2D", None),
        ("Activation", "tanh"), ("Flatten", None), ("Dense", None),
    ]  # fmt: skip
    assert (layers[0].padding, layers[3].padding) == (((0, 2), (1, 0)), ((0, 0), (0, 1)))  # (l, r) pads the width
    assert "Received: F.pad with mode='reflect'" in _refusal("reflect_pad", nets)
    # converted, x.relu_() would leave the conv's output to the next node unchanged: refused, told to use the result
    in_place = _refusal("in_place_relu", nets)
    assert "Received: the in-place x.relu_()" in in_place and "x = x.relu()" in in_place, in_place
    # AdaptiveAvgPool2d((None, 1)) failed as int(None), told to choose another input size
    pools = [
        layer for layer in _spec("adaptive_keeping_height", nets).layers if type(layer).__name__ == "AdaptiveAvgPool2D"
    ]
    assert [pool.output_size for pool in pools] == [(8, 1)]
    message = _refusal("flatten_to_2", nets)
    assert "Received: flatten to a dimension other than the last" in message and "torch.flatten(x, 1)" in message
