#!/usr/bin/env python3
"""onnxruntime as a peer engine of joulebench (`engine = "onnxruntime"` in a suite).

Loads an ONNX model on onnxruntime's CPU execution provider with
intra_op_num_threads = --threads, feeds it seeded uniform [0, 1) input of
--batch images, warms up, then times batch after batch on the monotonic clock
until at least --min-seconds and --min-batches have passed (or --max-seconds).

Output: JSON lines on stdout.
  {"event": "ready", ...}   after the warm-up (with --handshake, the script then
                            waits for one line on stdin before timing, so the
                            caller can start its power source and counters)
  {"event": "done", "latencies_s": [...], "duration_s": ..., ...}
  {"event": "error", "kind": "missing-module" | "model" | "input", "message": ...}
Exit codes: 0 success, 3 onnxruntime/numpy missing, 2 bad input, 1 other failure.

joulebench embeds this file and runs it with `python -c`; it also runs on its own:
  python3 scripts/peers/onnxruntime_bench.py model.onnx --threads 2 --batch 8
"""

import argparse
import json
import sys
import time


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv):
    ap = argparse.ArgumentParser(prog="onnxruntime_bench.py", description="onnxruntime as a peer engine of joulebench")
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--warmup-iterations", type=int, default=2)
    ap.add_argument("--warmup-seconds", type=float, default=0.5)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--min-batches", type=int, default=64)
    ap.add_argument("--max-seconds", type=float, default=60.0, help="0: no limit")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--handshake", action="store_true")
    a = ap.parse_args(argv)
    if a.threads < 1 or a.batch < 1:
        emit({"event": "error", "kind": "input", "message": "threads and batch must be at least 1"})
        return 2
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        emit({"event": "error", "kind": "missing-module",
              "message": f"{e}; install with `pip install onnxruntime numpy` "
                         "(or point JOULEBENCH_PYTHON at a Python that has them)"})
        return 3
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
        emit({"event": "error", "kind": "model", "message": str(e)})
        return 2
    inp = sess.get_inputs()[0]
    shape = []
    for i, d in enumerate(inp.shape):
        if isinstance(d, int) and d > 0:
            shape.append(d)
        elif i == 0:
            shape.append(a.batch)
        else:
            emit({"event": "error", "kind": "input",
                  "message": f"input {inp.name} has a symbolic dimension {d!r} besides the batch"})
            return 2
    if shape[0] != a.batch:
        emit({"event": "error", "kind": "input",
              "message": f"the model fixes its batch to {shape[0]}, asked for {a.batch}"})
        return 2
    x = np.random.default_rng(a.seed).random(shape, dtype=np.float32)
    feed = {inp.name: x}
    out_names = [o.name for o in sess.get_outputs()]
    w0 = time.monotonic()
    i = 0
    while i < a.warmup_iterations or time.monotonic() - w0 < a.warmup_seconds:
        sess.run(out_names, feed)
        i += 1
    emit({"event": "ready", "onnxruntime": ort.__version__, "input": inp.name, "shape": shape,
          "warmup_batches": i})
    if a.handshake:
        if not sys.stdin.readline():
            return 1
    lat = []
    start = time.monotonic()
    while True:
        t = time.monotonic()
        sess.run(out_names, feed)
        now = time.monotonic()
        lat.append(now - t)
        el = now - start
        if (len(lat) >= a.min_batches and el >= a.min_seconds) or (a.max_seconds > 0 and el >= a.max_seconds):
            break
    duration = time.monotonic() - start
    emit({"event": "done", "latencies_s": lat, "duration_s": duration,
          "onnxruntime": ort.__version__, "providers": sess.get_providers(),
          "threads": a.threads, "batch": a.batch})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
