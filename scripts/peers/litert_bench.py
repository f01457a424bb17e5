#!/usr/bin/env python3
"""LiteRT (TensorFlow Lite) with its XNNPACK delegate as a peer engine of
joulebench (`engine = "litert"`).

Runs a .tflite file (joulebench converts the suite's ONNX file with onnx2tf, or
the suite names a ready one) through ai-edge-litert's Interpreter with
num_threads = --threads and the default op resolver, which hands the graph to
XNNPACK (fp32 for an fp32 model). The input is resized to --batch; its layout
(NHWC from onnx2tf, or NCHW) is read from the file. LiteRT cannot report its
thread count back: process_threads in the row is the check. The row records
how many nodes XNNPACK took and the tensor types (a float16 tensor would show).
Then peer_common.py's warm-up and measurement.

joulebench embeds peer_common.py and this file and runs them with `python -c`;
this file also runs on its own:
  python3 scripts/peers/litert_bench.py model.tflite --threads 2 --batch 8
"""

import sys

try:
    measure  # defined when joulebench embeds peer_common.py ahead of this file
except NameError:
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from peer_common import *  # noqa: F401,F403


def main(argv):
    a = bench_parser("litert_bench.py", "LiteRT + XNNPACK as a peer engine of joulebench").parse_args(argv)
    if (code := bad_counts(a)) is not None:
        return code
    try:
        import numpy as np
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError as e:
        return missing(e, LITERT_INSTALL)
    try:
        it = litert_interpreter(a.model, a.threads)
        index, layout, shape = litert_prepare(it, a.batch, a.chw)
    except (ValueError, RuntimeError, OSError) as e:
        return fail("model", e, 2)
    settings = litert_settings(it, a.threads)
    if dict(settings)["xnnpack"].startswith("0 partitions"):
        return fail("model", "the XNNPACK delegate took no node of the graph", 2)
    x = seeded_images(np, shape, a.seed)
    settings.append(["input", f"{layout} {shape}"])

    def run():
        it.set_tensor(index, x)
        it.invoke()

    return measure(a, run, version_of("ai-edge-litert"), settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
