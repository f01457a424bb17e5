#!/usr/bin/env python3
"""OpenVINO's CPU plugin as a peer engine of joulebench (`engine = "openvino"`).

Reads the ONNX file (or an OpenVINO IR .xml) directly, reshapes it to a static
[--batch, C, H, W], and compiles it for the CPU with PERFORMANCE_HINT=LATENCY,
NUM_STREAMS=1, INFERENCE_NUM_THREADS=--threads and INFERENCE_PRECISION_HINT=f32
(the CPU plugin's default is bf16 on cores with AMX or AVX-512 BF16 and f16 on
ARMv8.2, which would not be the same work as the other engines). Every layer's
runtime precision is read back from the compiled model: a layer that still runs
in bf16 or f16 fails the point. Then peer_common.py's warm-up and measurement.

joulebench embeds peer_common.py and this file and runs them with `python -c`;
this file also runs on its own:
  python3 scripts/peers/openvino_bench.py model.onnx --threads 2 --batch 8
"""

import sys

try:
    measure  # defined when joulebench embeds peer_common.py ahead of this file
except NameError:
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from peer_common import *  # noqa: F401,F403

INSTALL = "pip install openvino numpy"
CONFIG_READ_BACK = ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT",
                    "EXECUTION_MODE_HINT", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING", "SCHEDULING_CORE_TYPE",
                    "CPU_DENORMALS_OPTIMIZATION", "DYNAMIC_QUANTIZATION_GROUP_SIZE", "EXECUTION_DEVICES")


def ov_str(v):
    """f32 for an element type, LATENCY for an enum value, else str()."""
    if hasattr(v, "get_type_name"):
        return v.get_type_name()
    s = str(v)
    return s.rsplit(".", 1)[-1] if s.startswith(type(v).__name__ + ".") else s


def runtime_precisions(cm):
    """Layer count per runtime precision of the compiled model, constants left out."""
    counts = {}
    for op in cm.get_runtime_model().get_ops():
        rt = op.get_rt_info()
        if "layerType" in rt and rt["layerType"].astype(str) == "Const":
            continue
        p = rt["runtimePrecision"].astype(str) if "runtimePrecision" in rt else "unknown"
        counts[p] = counts.get(p, 0) + 1
    return counts


def main(argv):
    a = bench_parser("openvino_bench.py", "OpenVINO CPU as a peer engine of joulebench").parse_args(argv)
    if (code := bad_counts(a)) is not None:
        return code
    try:
        import numpy as np
        import openvino as ov
    except ImportError as e:
        return missing(e, INSTALL)
    core = ov.Core()
    try:
        model = core.read_model(a.model)
    except Exception as e:  # OpenVINO raises RuntimeError and its own types
        return fail("model", e, 2)
    if len(model.inputs) != 1:
        return fail("input", f"the model has {len(model.inputs)} inputs; joulebench feeds one image batch", 2)
    inp = model.inputs[0]
    ps = inp.get_partial_shape()
    if ps.rank.is_dynamic or ps.rank.get_length() != 4:
        return fail("input", f"input {inp.any_name} has shape {ps}, not [N, C, H, W]", 2)
    dims = []
    for i in range(1, 4):
        d = ps[i]
        if d.is_static:
            dims.append(d.get_length())
        elif a.chw:
            dims.append(a.chw[i - 1])
        else:
            return fail("input", f"input {inp.any_name} has a dynamic dimension {i} ({ps}); give --chw", 2)
    shape = [a.batch] + dims
    if str(inp.get_element_type()) not in ("<Type: 'float32'>", "f32", "float32"):
        return fail("precision", f"input {inp.any_name} is {inp.get_element_type()}, not fp32", 2)
    try:
        model.reshape({inp: shape})
        cm = core.compile_model(model, "CPU", {
            "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(a.threads),
            "INFERENCE_PRECISION_HINT": "f32"})
    except Exception as e:
        return fail("model", e, 2)
    prec = runtime_precisions(cm)
    low = {k: v for k, v in prec.items() if k in ("bf16", "f16")}
    if low:
        return fail("precision", f"OpenVINO runs {low} layers below fp32 despite INFERENCE_PRECISION_HINT=f32", 2)
    settings = []
    for k in CONFIG_READ_BACK:
        try:
            v = cm.get_property(k)
        except Exception:  # a property this version does not have
            continue
        settings.append([k, " ".join(map(ov_str, v)) if isinstance(v, (list, tuple, set)) else ov_str(v)])
    settings.append(["runtime_precision", " ".join(f"{k}:{v}" for k, v in sorted(prec.items()))])
    settings.append(["input", f"{inp.any_name} {shape}"])
    req = cm.create_infer_request()
    x = seeded_images(np, shape, a.seed)
    return measure(a, lambda: req.infer({0: x}, share_inputs=True, share_outputs=True),
                   version_of("openvino"), settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
