#!/usr/bin/env python3
"""Builds the ONNX test models with seeded random weights, and their reference
outputs from onnxruntime.

usage: make_onnx_models.py OUT_DIR [--only NAME,...] [--batch N]
needs: pip install -r scripts/requirements-test.txt   (onnx, onnxruntime, numpy)

For every model NAME it writes OUT_DIR/NAME.onnx, OUT_DIR/NAME.input.npy (NCHW
float32, batch N, seeded) and OUT_DIR/NAME.output.npy (onnxruntime's output on
that input, all graph optimizations off so nothing is fused differently).

Models:
  resnet50     ResNet-50 v1.5 (stride on the 3x3 conv), BatchNormalization kept
  mobilenet    MobileNet v2 style: depthwise and grouped convs, Clip as ReLU6
               (opset 13 inputs), SAME_UPPER and asymmetric pads, residual adds,
               Reshape to [0, -1], Dropout, Gemm
  biased       convs with biases and no BN, dilation, MaxPool with ceil_mode,
               AveragePool with count_include_pad, Concat, per-channel Mul/Add
               constants, general Clip, Flatten of a 4x4 map into Gemm (transB
               0, alpha, beta), MatMul, Softmax; weights in external data
  legacy       opset 9: Clip with attributes, Dropout with ratio, BatchNorm,
               Reshape, Softmax with opset-9 axis semantics
Same seed, same files."""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    """Appends nodes and initializers; names are unique and readable."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], 0

    def fresh(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, array, prefix="c"):
        name = self.fresh(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, **attrs):
        out = self.fresh(op.lower() + "_")
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k, stride=1, pads=None, group=1, bias=False, dilation=1, **kw):
        fan_in = cin // group * k * k
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), (cout, cin // group, k, k)).astype(np.float32)
        ins = [x, self.const(w, "W")]
        if bias:
            ins.append(self.const(self.rng.normal(0.0, 0.1, cout).astype(np.float32), "B"))
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], group=group, **kw)
        if dilation != 1:
            attrs["dilations"] = [dilation, dilation]
        if "auto_pad" not in kw:
            p = (k // 2) * dilation
            attrs["pads"] = pads if pads is not None else [p, p, p, p]
        return self.node("Conv", ins, **attrs)

    def bn(self, x, c, gain=1.0):
        f = lambda a: a.astype(np.float32)
        ins = [x,
               self.const(f(gain * self.rng.uniform(0.5, 1.5, c)), "gamma"),
               self.const(f(self.rng.normal(0.0, 0.1, c)), "beta"),
               self.const(f(self.rng.normal(0.0, 0.1, c)), "mean"),
               self.const(f(self.rng.uniform(0.5, 1.5, c)), "var")]
        return self.node("BatchNormalization", ins, epsilon=1e-5)

    def relu(self, x):
        return self.node("Relu", [x])

    def relu6(self, x):
        lo = self.const(np.array(0.0, np.float32), "lo")
        hi = self.const(np.array(6.0, np.float32), "hi")
        return self.node("Clip", [x, lo, hi])

    def model(self, x, y, name, in_shape, out_shape, opset):
        g = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(x, TensorProto.FLOAT, in_shape)],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, out_shape)],
            self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="joulebench make_onnx_models.py")
        m.ir_version = 7 if opset >= 12 else 4
        onnx.checker.check_model(m)
        return m


def resnet50(seed=50):
    b = Builder(seed)
    x = b.relu(b.bn(b.conv("input", 3, 64, 7, 2), 64))
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, blocks in enumerate((3, 4, 6, 3)):
        mid = 64 << stage
        cout = 4 * mid
        for i in range(blocks):
            stride = 2 if i == 0 and stage > 0 else 1
            shortcut = x
            if i == 0:
                shortcut = b.bn(b.conv(x, cin, cout, 1, stride, pads=[0] * 4), cout, gain=0.5)
            y = b.relu(b.bn(b.conv(x, cin, mid, 1, pads=[0] * 4), mid))
            y = b.relu(b.bn(b.conv(y, mid, mid, 3, stride), mid))  # v1.5: stride here
            # A small gain on the branch's last BN (as "zero-init residual" training
            # leaves it) keeps activations O(1) through 16 blocks of random weights.
            y = b.bn(b.conv(y, mid, cout, 1, pads=[0] * 4), cout, gain=0.2)
            x = b.relu(b.node("Add", [y, shortcut]))
            cin = cout
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    w = b.const(b.rng.normal(0, np.sqrt(1.0 / 2048), (1000, 2048)).astype(np.float32), "fcW")
    fc_b = b.const(b.rng.normal(0, 0.01, 1000).astype(np.float32), "fcB")
    y = b.node("Gemm", [x, w, fc_b], transB=1)
    return b.model("input", y, "resnet50", ["N", 3, 224, 224], ["N", 1000], 13)


def mobilenet(seed=2):
    b = Builder(seed)
    x = b.relu6(b.bn(b.conv("input", 3, 16, 3, 2, auto_pad="SAME_UPPER"), 16))
    cin = 16
    # (expansion, out channels, stride)
    for t, c, s in ((1, 16, 1), (4, 24, 2), (4, 24, 1), (4, 32, 2), (6, 32, 1)):
        hidden = cin * t
        y = x
        if t != 1:
            y = b.relu6(b.bn(b.conv(y, cin, hidden, 1, pads=[0] * 4), hidden))
        y = b.relu6(b.bn(b.conv(y, hidden, hidden, 3, s, group=hidden), hidden))  # depthwise
        y = b.bn(b.conv(y, hidden, c, 1, pads=[0] * 4), c)
        x = b.node("Add", [x, y]) if s == 1 and cin == c else y
        cin = c
    # A grouped (not depthwise) conv with asymmetric padding.
    x = b.relu6(b.bn(b.conv(x, cin, 64, 3, 1, pads=[0, 1, 2, 1], group=4), 64))
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Reshape", [x, b.const(np.array([0, -1], np.int64), "shape")])
    x = b.node("Dropout", [x])
    w = b.const(b.rng.normal(0, 0.125, (10, 64)).astype(np.float32), "fcW")
    y = b.node("Gemm", [x, w, b.const(b.rng.normal(0, 0.1, 10).astype(np.float32), "fcB")], transB=1)
    return b.model("input", y, "mobilenet", ["N", 3, 64, 64], ["N", 10], 13)


def biased(seed=3):
    b = Builder(seed)
    x = b.relu(b.conv("input", 3, 16, 5, 1, bias=True))
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)  # 30 -> 15
    left = b.relu(b.conv(x, 16, 16, 3, 1, bias=True, dilation=2))
    right = b.node("AveragePool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
                   count_include_pad=1)
    x = b.node("Concat", [left, right], axis=1)
    x = b.node("Mul", [x, b.const(b.rng.uniform(0.5, 1.5, (1, 32, 1, 1)).astype(np.float32), "s")])
    x = b.node("Add", [b.const(b.rng.normal(0, 0.2, (32, 1, 1)).astype(np.float32), "t"), x])
    lo = b.const(np.array(-0.5, np.float32), "lo")
    hi = b.const(np.array(2.5, np.float32), "hi")
    x = b.node("Clip", [x, lo, hi])
    x = b.relu(b.conv(x, 32, 24, 3, 2, bias=True, pads=[1, 0, 1, 0]))  # 15x15 -> 8x7
    x = b.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])  # -> 4x3
    x = b.node("Flatten", [x], axis=1)  # 24*4*3 = 288, NCHW order
    w = b.const(b.rng.normal(0, 0.06, (288, 40)).astype(np.float32), "gW")
    c = b.const(b.rng.normal(0, 0.1, (1, 40)).astype(np.float32), "gC")
    x = b.relu(b.node("Gemm", [x, w, c], alpha=0.75, beta=2.0))
    x = b.node("MatMul", [x, b.const(b.rng.normal(0, 0.2, (40, 7)).astype(np.float32), "mW")])
    y = b.node("Softmax", [x], axis=1)
    return b.model("input", y, "biased", ["N", 3, 30, 30], ["N", 7], 13)


def legacy(seed=4):
    b = Builder(seed)
    x = b.bn(b.conv("input", 3, 8, 3, 1), 8)
    x = b.node("Clip", [x], min=0.0, max=6.0)
    x = b.node("Clip", [b.conv(x, 8, 8, 1, pads=[0] * 4)], min=-1.0, max=1.0)
    x = b.node("Dropout", [x], ratio=0.3)
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Reshape", [x, b.const(np.array([-1, 8], np.int64), "shape")])
    w = b.const(b.rng.normal(0, 0.3, (5, 8)).astype(np.float32), "fcW")
    x = b.node("Gemm", [x, w, b.const(np.float32(0.25).reshape(()), "fcB")], transB=1)
    y = b.node("Softmax", [x])
    return b.model("input", y, "legacy", ["N", 3, 12, 12], ["N", 5], 9)


MODELS = {"resnet50": resnet50, "mobilenet": mobilenet, "biased": biased, "legacy": legacy}
EXTERNAL = {"biased"}


def reference(path, x):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--batch", type=int, default=2)
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        sys.exit(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    os.makedirs(args.out_dir, exist_ok=True)
    for name in names:
        model = MODELS[name]()
        path = os.path.join(args.out_dir, name + ".onnx")
        if name in EXTERNAL:
            onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=name + ".weights", size_threshold=0)
        else:
            onnx.save(model, path)
        dims = [d.dim_value or args.batch for d in model.graph.input[0].type.tensor_type.shape.dim]
        x = np.random.default_rng(1000 + len(name)).standard_normal(dims).astype(np.float32)
        np.save(os.path.join(args.out_dir, name + ".input.npy"), x)
        y = reference(path, x)
        np.save(os.path.join(args.out_dir, name + ".output.npy"), y.astype(np.float32))
        print(f"{path}: input {list(x.shape)}, output {list(y.shape)}")


if __name__ == "__main__":
    main()
