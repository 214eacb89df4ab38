"""A TF.js graph model as a TensorFlow function. Importing this module imports TensorFlow.

``modelTopology`` is a GraphDef written as JSON whose Const nodes lost their values to the weight
files. The values go back in, and the fused kernels the converter left (``_FusedConv2D`` and friends:
grappler internals, some TF.js-only) are spelled out as the plain ops they stand for, so both
TensorFlow and the TFLite converter take the graph.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf
from google.protobuf import json_format

from streamproc.core.errors import ModelError
from streamproc.inference.tfjs.function import TfjsFunction
from streamproc.inference.tfjs.modeljson import ModelJson

log = logging.getLogger(__name__)

_BASE_OPS = {
    "_FusedConv2D": "Conv2D",
    "_FusedMatMul": "MatMul",
    "_FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
    "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
}
_BASE_ATTRS = {
    "Conv2D": (
        "T",
        "strides",
        "padding",
        "dilations",
        "data_format",
        "explicit_paddings",
        "use_cudnn_on_gpu",
    ),
    "DepthwiseConv2dNative": ("T", "strides", "padding", "dilations", "data_format", "explicit_paddings"),
    "MatMul": ("T", "transpose_a", "transpose_b"),
}
_UNARY = ("Relu", "Relu6", "Elu", "Selu", "Sigmoid", "Tanh")


def graph_function(model: ModelJson, weights: Mapping[str, np.ndarray]) -> TfjsFunction:
    """The graph model as a TensorFlow function of its single image input."""
    graph_def = tf.compat.v1.GraphDef()
    try:
        json_format.ParseDict(model.topology, graph_def, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise ModelError(f"{model.path}: modelTopology is not a GraphDef ({exc})") from None
    nodes: list[tf.compat.v1.NodeDef] = []
    for node in graph_def.node:
        node.device = ""
        if node.op == "Const":
            _fill_const(model, node, weights)
        nodes.extend(_unfuse(model, node) if node.op in _BASE_OPS else [node])
    del graph_def.node[:]
    graph_def.node.extend(nodes)
    placeholders = [node for node in nodes if node.op == "Placeholder"]
    if len(placeholders) != 1:
        raise ModelError(f"{model.path} has {len(placeholders)} inputs, expected 1 image input")
    outputs = _output_names(model, nodes)
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    graph = wrapped.graph
    try:
        feed = graph.get_tensor_by_name(f"{placeholders[0].name}:0")
        fetches = [graph.get_tensor_by_name(f"{name}:0") for name in outputs]
    except KeyError as exc:
        raise ModelError(f"{model.path}: {exc}") from None
    pruned = wrapped.prune(feed, fetches)
    # Grappler's remapper fuses Conv2D+BiasAdd+Add for oneDNN, and that kernel crashes (SIGSEGV, TF 2.21)
    # on BlazeFace's residual adds. Plain kernels give the same numbers.
    tf.config.optimizer.set_experimental_options({"remapping": False})
    log.debug("%s: graph model, input %s %s, outputs %s", model.path, feed.name, feed.shape, outputs)
    return TfjsFunction(lambda x: pruned(x), tuple(feed.shape.as_list()), feed.dtype, outputs, wrapped)


def _fill_const(model: ModelJson, node: tf.compat.v1.NodeDef, weights: Mapping[str, np.ndarray]) -> None:
    value = weights.get(node.name)
    tensor = node.attr["value"].tensor
    if value is None:
        if tensor.tensor_content or tensor.float_val or tensor.int_val:
            return  # a constant the converter kept inline
        raise ModelError(f"{model.path}: constant {node.name!r} has no entry in the weight manifest")
    dtype = tf.dtypes.as_dtype(node.attr["dtype"].type) if "dtype" in node.attr else None
    proto = tf.make_tensor_proto(value, dtype=dtype)
    tensor.CopyFrom(proto)


def _unfuse(model: ModelJson, node: tf.compat.v1.NodeDef) -> list[tf.compat.v1.NodeDef]:
    """The plain ops a fused kernel stands for; the last one keeps the fused node's name."""
    base = _BASE_OPS[node.op]
    data = [name for name in node.input if not name.startswith("^")]
    control = [name for name in node.input if name.startswith("^")]
    args = data[2:]
    steps: list[tf.compat.v1.NodeDef] = []

    def add(op: str, inputs: list[str], **attrs: tf.compat.v1.AttrValue) -> str:
        step = tf.compat.v1.NodeDef(name=f"{node.name}/unfused_{len(steps)}", op=op, input=inputs)
        step.attr["T"].CopyFrom(node.attr["T"])
        for key, value in attrs.items():
            step.attr[key].CopyFrom(value)
        steps.append(step)
        return step.name

    base_attrs = {key: node.attr[key] for key in _BASE_ATTRS[base] if key in node.attr and key != "T"}
    current = add(base, data[:2] + control, **base_attrs)
    for fused in (value.decode() for value in node.attr["fused_ops"].list.s):
        if fused == "BiasAdd":
            layout = {"data_format": node.attr["data_format"]} if "data_format" in node.attr else {}
            current = add("BiasAdd", [current, args.pop(0)], **layout)
        elif fused in ("Add", "AddV2"):
            current = add("AddV2", [current, args.pop(0)])
        elif fused in _UNARY:
            current = add(fused, [current])
        elif fused == "LeakyRelu":
            current = add("LeakyRelu", [current], alpha=tf.compat.v1.AttrValue(f=_alpha(node)))
        elif fused == "Prelu":  # TF.js only: max(x, 0) - alpha * max(-x, 0)
            alpha = args.pop(0)
            negative = add("Relu", [add("Neg", [current])])
            current = add("Sub", [add("Relu", [current]), add("Mul", [alpha, negative])])
        elif fused == "FusedBatchNorm":
            current = _batch_norm(node, current, args, add)
        else:
            raise ModelError(f"{model.path}: node {node.name!r} fuses {fused!r}, which streamproc cannot run")
    steps[-1].name = node.name
    return steps


def _alpha(node: tf.compat.v1.NodeDef) -> float:
    return node.attr["leakyrelu_alpha"].f if "leakyrelu_alpha" in node.attr else 0.2


def _batch_norm(node: tf.compat.v1.NodeDef, current: str, args: list[str], add: Callable[..., str]) -> str:
    scale, offset, mean, variance = (args.pop(0) for _ in range(4))
    return add(
        "FusedBatchNormV3",
        [current, scale, offset, mean, variance],
        U=tf.compat.v1.AttrValue(type=tf.float32.as_datatype_enum),
        epsilon=node.attr["epsilon"],
        data_format=node.attr["data_format"],
        is_training=tf.compat.v1.AttrValue(b=False),
    )


def _output_names(model: ModelJson, nodes: list[tf.compat.v1.NodeDef]) -> list[str]:
    """The signature's outputs (as TF.js orders them), else the nodes nothing consumes."""
    if model.signature and model.signature.get("outputs"):
        outputs = model.signature["outputs"]
        return [str(spec.get("name") or key).split(":")[0] for key, spec in outputs.items()]
    consumed = {name.lstrip("^").split(":")[0] for node in nodes for name in node.input}
    return [node.name for node in nodes if node.name not in consumed and node.op not in ("Const", "NoOp")]
