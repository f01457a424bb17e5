#!/usr/bin/env python3
"""onnxruntime as a peer engine of joulebench (`engine = "onnxruntime"` in a suite).

Loads an ONNX model on onnxruntime's CPU execution provider with
intra_op_num_threads = --threads (one inter-op thread, sequential, no spinning
between batches), feeds it seeded uniform [0, 1) input of --batch images, warms
up, then times batch after batch (peer_common.py: protocol and measurement).

joulebench embeds peer_common.py and this file and runs them with `python -c`;
this file also runs on its own:
  python3 scripts/peers/onnxruntime_bench.py model.onnx --threads 2 --batch 8
"""

import sys

try:
    measure  # defined when joulebench embeds peer_common.py ahead of this file
except NameError:
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from peer_common import *  # noqa: F401,F403

INSTALL = "pip install onnxruntime numpy"


def main(argv):
    a = bench_parser("onnxruntime_bench.py", "onnxruntime as a peer engine of joulebench").parse_args(argv)
    if (code := bad_counts(a)) is not None:
        return code
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        return missing(e, INSTALL)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning worker threads would burn CPU between batches and inflate energy.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        sess = ort.InferenceSession(a.model, sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        return fail("model", e, 2)
    inp = sess.get_inputs()[0]
    shape = []
    for i, d in enumerate(inp.shape):
        if isinstance(d, int) and d > 0:
            shape.append(d)
        elif i == 0:
            shape.append(a.batch)
        else:
            return fail("input", f"input {inp.name} has a symbolic dimension {d!r} besides the batch", 2)
    if shape[0] != a.batch:
        return fail("input", f"the model fixes its batch to {shape[0]}, asked for {a.batch}", 2)
    if inp.type != "tensor(float)":
        return fail("precision", f"input {inp.name} is {inp.type}, not fp32", 2)
    feed = {inp.name: seeded_images(np, shape, a.seed)}
    out_names = [o.name for o in sess.get_outputs()]
    got = sess.get_session_options()
    settings = [
        ["providers", " ".join(sess.get_providers())],
        ["intra_op_num_threads", got.intra_op_num_threads],
        ["inter_op_num_threads", got.inter_op_num_threads],
        ["execution_mode", str(got.execution_mode).rsplit(".", 1)[-1]],
        ["graph_optimization_level", str(got.graph_optimization_level).rsplit(".", 1)[-1]],
        ["allow_spinning", got.get_session_config_entry("session.intra_op.allow_spinning")],
        ["input", f"{inp.name} {inp.type}"],
    ]
    return measure(a, lambda: sess.run(out_names, feed), ort.__version__, settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
