"""What a user's torch module holds that the neutral spec cannot, refused before it is silently changed.

The spec gives every applied layer weights and an output of its own, one PReLU slope per channel, trains every
weight, switches every BatchNorm and Dropout with the mode, and outputs logits from a layer that takes one flat vector
per sample. A module that shares weights between calls, shares one PReLU slope across channels, freezes parameters,
overwrites in place a tensor it reads again, keeps a BatchNorm or Dropout in evaluation mode while training, ends in
an activation or feeds a Linear an unflattened map would convert to another model (more parameters, other training,
other maths) or fail with advice about the input size: each is refused here as the user's model to change
(ModelInputError, passed to them as it is).
"""

from __future__ import annotations

import inspect
from collections import defaultdict

import torch
import torch.fx as fx
from torch import nn
from torch.nn.utils import parametrize

from backends.torch.model import module_tensor
from harness.importers import ModelInputError
from harness.shapes import TensorInfo
from harness.spec import Activation, Layer, ModelSpec


def _refusal(expected: str, received: str, fix: str) -> ModelInputError:
    return ModelInputError(f"Expected {expected}. Received: {received}. To fix, {fix}.")


def _first_few(names: list[str], shown: int = 4) -> str:
    return ", ".join(repr(n) for n in names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _called_modules(graph: fx.Graph, modules: dict[str, nn.Module]) -> list[tuple[str, nn.Module]]:
    """Every module application in the traced forward, in order (a module applied twice is listed twice)."""
    return [(str(n.target), modules[str(n.target)]) for n in graph.nodes if n.op == "call_module"]


def refuse_shared_weights(graph: fx.Graph, modules: dict[str, nn.Module], name: str) -> None:
    """A parameter used by more than one module application: one module applied twice, or two modules tied to one
    tensor. The spec would make each application a layer with its own copy, training twice the weights apart.
    A module without parameters (nn.ReLU) applied twice computes the same either way, and stays allowed."""
    users: dict[int, list[str]] = defaultdict(list)
    names: dict[int, str] = {}
    for path, module in _called_modules(graph, modules):
        for param_name, param in module.named_parameters():
            users[id(param)].append(path)
            names.setdefault(id(param), f"{path}.{param_name}")
    shared = next((key for key, paths in users.items() if len(paths) > 1), None)
    if shared is None:
        return
    paths = users[shared]
    if len(set(paths)) == 1:
        module = modules[paths[0]]
        received = f"module {paths[0]!r} ({type(module).__name__}) applied {len(paths)} times in the forward"
    else:
        received = f"parameter {names[shared]!r} shared by modules {', '.join(repr(p) for p in dict.fromkeys(paths))}"
    raise _refusal(
        f"model {name} to apply each module that holds weights once (xfbench's spec gives every application its "
        "own layer and weights, and cannot hold shared weights)",
        f"{received}: converted, each use would get a copy of its own and train apart",
        "give each use its own module (e.g. self.block2 = nn.Conv2d(...) beside self.block), which is a model "
        "without shared weights; a module without parameters such as nn.ReLU may be reused",
    )


def refuse_frozen_parameters(graph: fx.Graph, modules: dict[str, nn.Module], name: str) -> None:
    """Parameters with requires_grad=False: the spec carries no such flag, and both backends train every weight,
    so the freezing would be silently undone. xfbench freezes by strategy, alike in both backends."""
    frozen = list(
        dict.fromkeys(
            f"{path}.{param_name}"
            for path, module in _called_modules(graph, modules)
            for param_name, param in module.named_parameters()
            if not param.requires_grad
        )
    )
    if not frozen:
        return
    shown = _first_few(frozen)
    raise _refusal(
        f"model {name} to have every parameter trainable (xfbench trains every converted weight and freezes only "
        "through its strategies, alike in both backends)",
        f"{len(frozen)} frozen parameter(s) (requires_grad=False): {shown}",
        "leave requires_grad=True in the model and freeze with a strategy: --strategy feature_extraction (trains "
        "the classifier alone) or --strategy freeze_early --freeze-groups K (the first K layer groups, the model's "
        "top-level children, stay frozen)",
    )


def refuse_reparametrised_modules(graph: fx.Graph, modules: dict[str, nn.Module], name: str) -> None:
    """A module whose weight is recomputed on each call (spectral_norm's or the old weight_norm's forward pre-hook,
    torch.nn.utils.parametrize) or whose output a hook changes: torch.fx does not run a leaf module's hooks, so the
    conversion would copy the stored tensor (spectral_norm: the weight before normalisation, other logits) and
    train a plain kernel where the user's model trains the parametrisation's tensors."""
    for path, module in _called_modules(graph, modules):
        hooks = [kind for kind in ("_forward_pre_hooks", "_forward_hooks") if getattr(module, kind, None)]
        if not hooks and not parametrize.is_parametrized(module):
            continue
        what = f"hooks ({', '.join(h.strip('_') for h in hooks)})" if hooks else "a parametrization"
        raise _refusal(
            f"model {name} to compute each layer from its own stored weights (xfbench converts and trains the "
            "module's weight tensor as it is stored)",
            f"module {path!r} ({type(module).__name__}) with {what}, e.g. spectral_norm or weight_norm, which "
            "recompute the weight on each call: converted, it would compute with (and train) another weight",
            "remove the reparametrisation (nn.utils.remove_spectral_norm / remove_weight_norm, or "
            "parametrize.remove_parametrizations(module, 'weight')) and any forward hooks from the model; to bound "
            "the weights' norm while training, use --max-norm",
        )


# Ops that hand on their input's storage (an identity, a flattening view): an in-place write through one changes the
# tensor the others name too
_ALIASING_METHODS = ("view", "reshape", "flatten")
_ALIASING_FUNCTIONS = (torch.flatten, torch.reshape)


def _where(node: fx.Node) -> str:
    return str(node.target) if node.op == "call_module" else node.name


def _in_place_write(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[str, str] | None:
    """(what, how to write it instead) for a node that writes its first input in place: a module built with
    inplace=True or a function called with inplace=True; None for any other node. Tensor methods such as x.relu_()
    are refused by the converter itself; torch.fx traces ``x += y`` as x + y, which only the conversion's check
    against the model's logits can see."""
    if node.op == "call_module" and getattr(modules[str(node.target)], "inplace", False) is True:
        kind = type(modules[str(node.target)]).__name__
        return f"nn.{kind}(inplace=True)", f"build it with inplace=False (the default: nn.{kind}(...) without it)"
    if node.op == "call_function" and callable(node.target):
        try:
            bound = inspect.signature(node.target).bind(*node.args, **node.kwargs)
        except (TypeError, ValueError):  # a builtin without a signature, or other arguments: not an inplace= call
            return None
        if bound.arguments.get("inplace") is True:
            function = getattr(node.target, "__name__", str(node.target))
            fix = f"call it without inplace=True and use its result: x = F.{function}(x)"
            return f"F.{function}(..., inplace=True)", fix
    return None


def _aliases(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether ``node``'s output is its first input's storage."""
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], (nn.Identity, nn.Flatten))
    if node.op == "call_method":
        return node.target in _ALIASING_METHODS
    return node.target in _ALIASING_FUNCTIONS or _in_place_write(node, modules) is not None


def _storage(written: fx.Node, modules: dict[str, nn.Module]) -> set[fx.Node]:
    """The nodes whose outputs share ``written``'s storage: it, what it aliases and what aliases it, in turn."""
    found, todo = {written}, [written]
    while todo:
        node = todo.pop()
        linked = [u for u in node.users if _aliases(u, modules) and u.all_input_nodes[:1] == [node]]
        if _aliases(node, modules):
            linked += node.all_input_nodes[:1]
        todo += [other for other in linked if other not in found]
        found.update(linked)
    return found


def refuse_in_place_overwrites(graph: fx.Graph, modules: dict[str, nn.Module], name: str) -> None:
    """An in-place op whose input the forward reads again after it (nn.Dropout(inplace=True) on y, then y + z): torch
    reads the overwritten values there (the dropped ones, in training; the activated ones in both modes), while the
    spec gives every layer an output of its own, so the converted network would read the values from before."""
    order = {node: index for index, node in enumerate(graph.nodes)}
    for node in graph.nodes:
        write = _in_place_write(node, modules)
        if write is None or not node.all_input_nodes:
            continue
        written = node.all_input_nodes[0]
        before = [n for n in _storage(written, modules) if order[n] < order[node]]  # names of the old values
        readers = [u for n in before for u in n.users if order[u] > order[node]]
        if not readers:
            continue
        reader = min(readers, key=order.__getitem__)
        source = "the model's input" if written.op == "placeholder" else f"the output of {_where(written)!r}"
        raise _refusal(
            f"model {name} to read no tensor after an in-place op has overwritten it (xfbench's spec gives every "
            "layer an output of its own, so a converted network reads the values from before the overwrite)",
            f"{write[0]} at {_where(node)!r} overwrites {source}, which {_where(reader)!r} reads after it: torch "
            f"reads the overwritten values there{' (the dropped ones, while training)' if 'ropout' in write[0] else ''}"
            ", the conversion would read the values from before",
            f"{write[1]}, or read {source} only before {_where(node)!r}",
        )


def refuse_modules_kept_in_eval(graph: fx.Graph, modules: dict[str, nn.Module], name: str) -> None:
    """A BatchNorm or Dropout the forward applies that is still in evaluation mode after ``model.train()`` (called by
    the caller before this): a train() that keeps BatchNorm statistics frozen. The spec's BatchNorm trains on each
    batch's statistics and its Dropout drops while training, whatever a module's own train() did."""
    kinds = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)
    kept = [(path, m) for path, m in dict(_called_modules(graph, modules)).items() if isinstance(m, kinds)]
    evaluating = [(path, m) for path, m in kept if not m.training]
    if not evaluating:
        return
    path, module = evaluating[0]
    others = f" and {len(evaluating) - 1} more" if len(evaluating) > 1 else ""
    raise _refusal(
        f"model {name}'s train() to put every BatchNorm and Dropout it applies in training mode (xfbench's converted "
        "BatchNorm normalises by each batch's statistics and updates its running ones while training, its Dropout "
        "drops)",
        f"{path!r} ({type(module).__name__}){others} still in evaluation mode (training=False) after model.train(), "
        "as a train() that keeps BatchNorm statistics frozen leaves it: converted, "
        + (
            "it would drop units while training, where your model does not"
            if isinstance(module, nn.modules.dropout._DropoutNd)
            else "it would normalise by each batch's statistics while training, where your model uses its running ones"
        ),
        "let train() reach every module (remove the override or its .eval() calls); to train with layers frozen, "
        "use --strategy freeze_early --freeze-groups K or feature_extraction, which keep a frozen group's BatchNorm "
        "in evaluation mode",
    )


def refuse_unused_layers(layers: list[Layer], returned: str | None, name: str) -> None:
    """A layer the forward computes but whose output never reaches what it returns (a second head kept as an
    attribute, an in-place op whose result is dropped): the spec's output is its last layer, so the conversion would
    train another network (the unused head as the classifier) or drop the in-place op's effect."""
    names = [layer.name for layer in layers]
    end = names.index(returned) + 1 if returned in names else 0 if returned == "input" else len(layers)
    unused = list(ModelSpec(name, (1,), 1, tuple(layers[:end])).unused_layers()) if end else []
    unused += names[end:]
    if not unused:
        return
    shown = _first_few(unused)
    raise _refusal(
        f"every layer the forward of model {name} applies to lead to the output it returns (xfbench converts the "
        "network that computes the returned output, and its last layer is the classifier)",
        f"layer(s) {shown} computed but not used by the returned output"
        + (f" (the forward returns {returned!r})" if returned is not None else ""),
        "remove those calls from forward, or return their output; for an in-place op assign its result "
        "(x = F.relu(x), not F.relu(x, inplace=True) on its own)",
    )


def refuse_shared_prelu_slope(module: nn.Module, info: TensorInfo, model_name: str, module_path: str) -> None:
    """An nn.PReLU with one slope (num_parameters=1, PyTorch's default) on more than one channel: the spec learns a
    slope per channel, so the converted model would train ``channels`` slopes where the user's trains one."""
    slopes, channels = module_tensor(module, "weight").numel(), info.shape[-1]
    if slopes != 1 or channels == 1:
        return
    raise _refusal(
        f"model {model_name} to give each PReLU one slope per channel (xfbench's spec learns a slope per channel "
        "and has no shared one)",
        f"nn.PReLU at {module_path!r} with num_parameters=1, one slope shared by the {channels} channels it meets",
        f"build it as nn.PReLU(num_parameters={channels}), a slope for each channel",
    )


def ending_activation_refusal(head: Activation, name: str) -> ModelInputError:
    """A model whose output is an activation's: the loss expects logits and applies the softmax (or, for a binary
    task's one output, the sigmoid) itself, so a final activation would be applied twice or change the maths."""
    what = "a sigmoid output (probabilities, not logits)" if head.kind == "sigmoid" else f"a final {head.kind}"
    return _refusal(
        f"model {name} to end in an nn.Linear giving one logit per class (xfbench trains softmax cross-entropy over "
        "the classes, and for a binary task (--binary-positive) sigmoid cross-entropy over one logit: the loss "
        "applies the softmax or sigmoid itself)",
        f"{what}, layer {head.name!r}, after the last Linear",
        "end the model with nn.Linear(in_features, num_classes) and no activation after it (a binary classifier: "
        "nn.Linear(in_features, 1) with --classes A,B --binary-positive B, without the nn.Sigmoid)",
    )


def not_flat_refusal(module_path: str, source: str, shape: tuple[int, ...] | None, name: str) -> ModelInputError:
    """An nn.Linear applied to a (N, C, H, W) feature map: torch would apply it along the last axis alone, a layer
    the spec does not have (its Dense takes one flat vector per sample); no input size fixes that."""
    after = "the model's input" if source == "input" else f"the output of layer {source!r}"
    if shape is not None and len(shape) == 3:  # the spec's (H, W, C), said as torch's (N, C, H, W)
        height, width, channels = shape
        received = f"{after}, a feature map of shape (N, {channels}, {height}, {width}), not flattened"
        features = f"in_features={height * width * channels}"
    else:
        received, features = f"{after}, a 4-D feature map (N, C, H, W), not flattened", "in_features=C*H*W"
    return _refusal(
        f"the nn.Linear at {module_path!r} in model {name} to take a flat input, one vector per sample (N, features)",
        received,
        f"add nn.Flatten() (or torch.flatten(x, 1)) before {module_path!r}, and give it {features}",
    )
