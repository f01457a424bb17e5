#!/usr/bin/env python3
"""Converts an ONNX model for a peer engine of joulebench and checks the result.

usage: convert_model.py ncnn|litert MODEL.onnx OUTDIR --chw C,H,W [--timeout S] [--seed N]
  ncnn    pnnx (pip install --no-deps pnnx: its torch requirement is not needed
          for ONNX) -> OUTDIR/model.ncnn.param and model.ncnn.bin, fp32 weights
  litert  onnx2tf -> OUTDIR/model.tflite (the float32 file; NHWC input, the
          batch dimension kept dynamic when the ONNX file's is)
Then one seeded batch-1 input runs through onnxruntime on the ONNX file and
through the converted model in its engine (fp32, one thread); the largest
absolute difference, relative to the largest |output| of onnxruntime, is
reported. joulebench decides whether it passes.

Output: JSON lines on stdout (see peer_common.py), the last one
  {"event": "converted", "files": [...], "converter": "pnnx", "converter_version": ...,
   "reference": "onnxruntime X", "max_abs_diff": ..., "max_rel_diff": ..., "outputs": N}
or an error event. The converter's own output goes to OUTDIR/convert.log.
joulebench embeds peer_common.py and this file and runs them with `python -c`.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys

try:
    emit  # defined when joulebench embeds peer_common.py ahead of this file
except NameError:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from peer_common import *  # noqa: F401,F403

PNNX_INSTALL = "pip install --no-deps pnnx && pip install ncnn onnxruntime numpy"
ONNX2TF_INSTALL = ("pip install tensorflow==2.21.0 tf-keras==2.21.0 onnx-graphsurgeon==0.6.1 sng4onnx psutil && "
                   "pip install --no-deps onnx2tf==1.29.24 (joulebench's scripts/requirements-peers*.txt)")


def run_logged(cmd, cwd, log, timeout):
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
    with open(log, errors="replace") as f:
        tail = " | ".join(l.strip() for l in f.read().splitlines()[-5:] if l.strip())
    return r.returncode, tail


def private_copy(onnx_path, out):
    """The model copied into OUTDIR for the converter: onnx2tf overwrites its
    input with the simplified model and pnnx may write beside it, and the
    user's file must stay as it is. External data is gathered into one file."""
    import onnx
    dst = os.path.join(out, "source.onnx")
    m = onnx.load(onnx_path, load_external_data=False)
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in m.graph.initializer)
    if external:
        m = onnx.load(onnx_path)
        onnx.save(m, dst, save_as_external_data=True, location="source.onnx.data")
    else:
        shutil.copyfile(onnx_path, dst)
    return dst


def remove_private_copy(out):
    for f in ("source.onnx", "source.onnx.data"):
        if os.path.exists(os.path.join(out, f)):
            os.remove(os.path.join(out, f))


def to_ncnn(onnx_path, out, chw, log, timeout):
    import importlib.util
    spec = importlib.util.find_spec("pnnx")
    exe = os.path.join(spec.submodule_search_locations[0], "pnnx") if spec else None
    if not exe or not os.access(exe, os.X_OK):
        exe = shutil.which("pnnx")
    if not exe:
        raise ImportError("the pnnx converter is not installed")
    t = lambda s: os.path.join(out, s)
    # pnnx writes its intermediate files (pnnx graph, Python) as well; they go to OUTDIR and are removed.
    cmd = [exe, os.path.abspath(onnx_path), f"inputshape=[1,{chw[0]},{chw[1]},{chw[2]}]", "fp16=0",
           f"pnnxparam={t('p.pnnx.param')}", f"pnnxbin={t('p.pnnx.bin')}", f"pnnxpy={t('p_pnnx.py')}",
           f"pnnxonnx={t('p.pnnx.onnx')}", f"ncnnparam={t('model.ncnn.param')}", f"ncnnbin={t('model.ncnn.bin')}",
           f"ncnnpy={t('model_ncnn.py')}"]
    # Some pnnx versions also write <model>.pnnx* files beside the input: remove only those that are new.
    beside = os.path.splitext(os.path.abspath(onnx_path))[0] + ".pnnx*"
    before = set(glob.glob(beside))
    code, tail = run_logged(cmd, out, log, timeout)
    for f in set(glob.glob(beside)) - before:
        os.remove(f)
    for f in ("p.pnnx.param", "p.pnnx.bin", "p_pnnx.py", "p.pnnx.onnx", "model_ncnn.py"):
        if os.path.exists(t(f)):
            os.remove(t(f))
    if code != 0 or not os.path.isfile(t("model.ncnn.param")) or not os.path.isfile(t("model.ncnn.bin")):
        raise RuntimeError(f"pnnx exited with {code}: {tail}")
    return ["model.ncnn.param", "model.ncnn.bin"], "pnnx", version_of("pnnx")


def to_litert(onnx_path, out, chw, log, timeout):
    import importlib.util
    if importlib.util.find_spec("onnx2tf") is None:
        raise ImportError("the onnx2tf converter is not installed")
    work = os.path.join(out, "onnx2tf")
    cmd = [sys.executable, "-c", "import sys; from onnx2tf import main; sys.argv[0] = 'onnx2tf'; main()",
           "-i", os.path.abspath(onnx_path), "-o", work, "-n"]
    code, tail = run_logged(cmd, out, log, timeout)
    found = sorted(glob.glob(os.path.join(work, "*_float32.tflite")))
    if code != 0 or not found:
        raise RuntimeError(f"onnx2tf exited with {code} without a *_float32.tflite: {tail}")
    os.replace(found[0], os.path.join(out, "model.tflite"))
    shutil.rmtree(work, ignore_errors=True)
    return ["model.tflite"], "onnx2tf", version_of("onnx2tf")


def reference(np, onnx_path, x):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0], f"onnxruntime {ort.__version__}"


def run_ncnn(np, out, x):
    import ncnn
    param = os.path.join(out, "model.ncnn.param")
    inp, outb = ncnn_blobs(param)
    net = ncnn_net(ncnn, param, 1)
    ex = net.create_extractor()
    ex.input(inp, ncnn.Mat(x[0]).clone())
    r, y = ex.extract(outb)
    if r != 0:
        raise RuntimeError(f"ncnn extract({outb}) returned {r}")
    return np.array(y)


def run_litert(np, out, x):
    it = litert_interpreter(os.path.join(out, "model.tflite"), 1)
    index, layout, _ = litert_prepare(it, 1, x.shape[1:])
    it.set_tensor(index, x.transpose(0, 2, 3, 1).copy() if layout == "NHWC" else x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def main(argv):
    ap = argparse.ArgumentParser(prog="convert_model.py", description="ONNX -> ncnn or LiteRT, checked")
    ap.add_argument("target", choices=["ncnn", "litert"])
    ap.add_argument("model")
    ap.add_argument("outdir")
    ap.add_argument("--chw", type=chw_arg, required=True)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    if not os.path.isdir(a.outdir):
        return fail("input", f"{a.outdir} is not a directory", 2)
    log = os.path.join(a.outdir, "convert.log")
    engine_install = NCNN_INSTALL if a.target == "ncnn" else LITERT_INSTALL
    try:
        import numpy as np
        import onnx  # noqa: F401  the converter's private copy
        import onnxruntime  # noqa: F401  the check's reference
    except ImportError as e:
        return missing(e, "pip install onnx onnxruntime numpy")
    try:
        if a.target == "ncnn":
            import ncnn  # noqa: F401
        else:
            import ai_edge_litert.interpreter  # noqa: F401
    except ImportError as e:
        return missing(e, engine_install)
    try:
        source = private_copy(a.model, a.outdir)
        files, conv, ver = (to_ncnn if a.target == "ncnn" else to_litert)(source, a.outdir, a.chw, log, a.timeout)
    except ImportError as e:
        return missing(e, PNNX_INSTALL if a.target == "ncnn" else ONNX2TF_INSTALL)
    except subprocess.TimeoutExpired:
        return fail("model", f"the converter ran over {a.timeout:g} s (log: {log})", 1)
    except (RuntimeError, OSError) as e:
        return fail("model", e, 2)
    finally:
        remove_private_copy(a.outdir)
    x = seeded_images(np, [1, *a.chw], a.seed)
    try:
        ref, ref_name = reference(np, a.model, x)
        got = (run_ncnn if a.target == "ncnn" else run_litert)(np, a.outdir, x)
    except Exception as e:  # the engines raise their own types
        return fail("model", f"checking the converted model: {e}", 2)
    ref, got = np.asarray(ref, np.float64).reshape(-1), np.asarray(got, np.float64).reshape(-1)
    if ref.size != got.size:
        return fail("model", f"the converted model gives {got.size} outputs, onnxruntime {ref.size}", 2)
    diff = float(np.abs(got - ref).max()) if ref.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    emit({"event": "converted", "files": files, "converter": conv, "converter_version": ver,
          "reference": ref_name, "max_abs_diff": diff, "max_rel_diff": diff / scale if scale > 0 else diff,
          "outputs": int(ref.size), "all_finite": bool(np.isfinite(got).all())})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
