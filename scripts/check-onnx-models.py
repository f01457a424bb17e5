#!/usr/bin/env python3
"""Runs ONNX files through `joulebench inspect` and `joulebench infer` and
compares every output against onnxruntime on the same random input.

    scripts/check-onnx-models.py [--joulebench PATH] [--batch N] MODEL.onnx...

Used on the Keras applications exported with tf2onnx (/work/models/keras,
export_all.py there); not in CI (the exports need tensorflow). Prints one
table row per file: import status, the output's scale max|ref|, max |difference|,
the element-wise error max(|d| / max(1, |ref|)), and the error against the
output's own scale, max|d| / max|ref|, telling when a random-weight model's
outputs are tiny. A file passes when max|d| <= 1e-4 * max(1, max|ref|). A model ending in Softmax is compared before it (the logits). Exit code 1 when any file fails.
Run it under `heavy` on the shared machine.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

TOL = 1e-4


def input_shape(model_path, batch):
    m = onnx.load(model_path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    x = next(i for i in m.graph.input if i.name not in inits)
    dims = []
    for k, d in enumerate(x.type.tensor_type.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(d.dim_value)
        elif k == 0:
            dims.append(batch)
        else:
            # Symbolic image extents (MobileNetV3 takes any size): 224.
            dims.append(224)
    return x.name, dims


def logits_model(path, tmp):
    """A copy of the model whose output is the input of its final Softmax (with
    random weights the probabilities are all close to 1/classes, so comparing
    them says little); the path itself when it does not end in a Softmax."""
    m = onnx.load(path)
    out = m.graph.output[0].name
    last = [n for n in m.graph.node if out in n.output]
    if not last or last[0].op_type != "Softmax":
        return path
    del m.graph.output[:]
    m.graph.output.append(onnx.helper.make_tensor_value_info(last[0].input[0], onnx.TensorProto.FLOAT, None))
    m.graph.node.remove(last[0])
    q = os.path.join(tmp, "logits.onnx")
    onnx.save(m, q)
    return q


def check(jb, path, batch, tmp):
    name, dims = input_shape(path, batch)
    path = logits_model(path, tmp)
    rng = np.random.default_rng(0)
    # Images in [0, 255]: the Keras models carry their own preprocessing.
    x = rng.uniform(0.0, 255.0, size=dims).astype(np.float32)
    xp = os.path.join(tmp, "x.npy")
    yp = os.path.join(tmp, "y.npy")
    np.save(xp, x)
    ins = subprocess.run([jb, "inspect", "--format", "json", path], capture_output=True, text=True)
    try:
        rep = json.loads(ins.stdout)
    except json.JSONDecodeError:
        return {"file": path, "ok": False, "why": "inspect printed no JSON: " + ins.stderr.strip()[:200]}
    if not rep.get("supported", False):
        return {"file": path, "ok": False, "why": "unsupported: " + "; ".join(rep.get("unsupported", []))[:300]}
    run = subprocess.run(
        [jb, "infer", "--model", path, "--input", xp, "--output", yp, "--iterations", "1",
         "--warmup", "0", "--no-peak", "--format", "json"],
        capture_output=True, text=True)
    if run.returncode != 0:
        return {"file": path, "ok": False, "why": "infer failed: " + run.stderr.strip()[:300]}
    got = np.load(yp)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    want = sess.run(None, {name: x})[0]
    if got.shape != want.shape:
        return {"file": path, "ok": False, "why": f"output shape {got.shape}, onnxruntime {want.shape}"}
    d = np.abs(got.astype(np.float64) - want.astype(np.float64))
    rel = float(np.max(d / np.maximum(1.0, np.abs(want))))
    # Random-weight exports can have tiny outputs: the error against the
    # output's own scale is the telling figure.
    scaled = float(d.max() / max(float(np.abs(want).max()), 1e-30))
    return {"file": path, "ok": bool(d.max() <= TOL * max(1.0, float(np.abs(want).max()))), "max_abs": float(d.max()), "rel": rel, "scaled": scaled, "scale": float(np.abs(want).max()),
            "gflop": rep.get("gflop_per_image"), "top1_same": bool(
                (got.reshape(got.shape[0], -1).argmax(1) == want.reshape(want.shape[0], -1).argmax(1)).all())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--joulebench", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "joulebench"))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    bad = 0
    print(f"{'model':<32} {'result':<6} {'max|ref|':>9} {'max |d|':>9} {'rel':>9} {'d/max|ref|':>10}  note")
    with tempfile.TemporaryDirectory() as tmp:
        for p in a.models:
            r = check(a.joulebench, p, a.batch, tmp)
            bad += not r["ok"]
            base = os.path.basename(p)
            if "max_abs" in r:
                note = "" if r["top1_same"] else "top-1 differs"
                print(f"{base:<32} {'ok' if r['ok'] else 'FAIL':<6} {r['scale']:>9.2e} {r['max_abs']:>9.2e} "
                      f"{r['rel']:>9.2e} {r['scaled']:>10.2e}  {note}")
            else:
                print(f"{base:<32} {'FAIL':<6} {'-':>9} {'-':>9} {'-':>9} {'-':>10}  {r['why']}")
            sys.stdout.flush()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
