#!/usr/bin/env python3
"""joulebench infer against onnxruntime on ONNX image models (NCHW input),
alternating the two engines round by round; prints the median images/s of
each and their ratio per model and point.

    scripts/bench-vs-ort.py [--rounds 3] [--seconds 3] [--threads 1] [--batch 1] MODEL.onnx...

A benchmark, not a test: run it under `heavy` on the shared machine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

JB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "joulebench")


def jb_rate(model, threads, batch, seconds):
    out = subprocess.run(
        [JB, "infer", "--model", model, "--threads", str(threads), "--batch", str(batch),
         "--seconds", str(seconds), "--no-peak", "--format", "json"],
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["images_per_s"]


def ort_rate(sess, name, x, seconds):
    sess.run(None, {name: x})
    lat, t0 = [], time.perf_counter()
    while time.perf_counter() - t0 < seconds or len(lat) < 3:
        t = time.perf_counter()
        sess.run(None, {name: x})
        lat.append(time.perf_counter() - t)
    return x.shape[0] / statistics.median(lat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    print(f"{'model':<32} {'t':>2} {'b':>2} {'joulebench img/s':>17} {'onnxruntime img/s':>18} {'ratio':>6}")
    for m in a.models:
        o = ort.SessionOptions()
        o.intra_op_num_threads = a.threads
        o.inter_op_num_threads = 1
        o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(m, o, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        dims = [a.batch] + [d if isinstance(d, int) else 224 for d in inp.shape[1:]]
        x = np.random.default_rng(0).uniform(0, 255, dims).astype(np.float32)
        jb, rt = [], []
        for _ in range(a.rounds):
            jb.append(jb_rate(m, a.threads, a.batch, a.seconds))
            rt.append(ort_rate(sess, inp.name, x, a.seconds))
        j, r = statistics.median(jb), statistics.median(rt)
        print(f"{os.path.basename(m):<32} {a.threads:>2} {a.batch:>2} {j:>17.2f} {r:>18.2f} {j / r:>6.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
