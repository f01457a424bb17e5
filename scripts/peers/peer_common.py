"""Shared by joulebench's peer-engine drivers (scripts/peers/*_bench.py) and
its model converter (convert_model.py).

joulebench embeds this file ahead of a driver and runs the two as one
`python -c` program; a driver run as a file imports it from its own folder.

The protocol, JSON lines on stdout:
  {"event": "ready", ...}   after the warm-up; with --handshake the driver then
                            waits for one line on stdin before timing, so the
                            caller can start its power source and counters
  {"event": "done", "latencies_s": [...], "duration_s": ..., "version": ...,
   "settings": [[key, value], ...], "runs_per_batch": ...}
  {"event": "error", "kind": "missing-module" | "model" | "input" | "precision",
   "message": ..., "install": ...}
Exit codes: 0 success, 3 a module is missing, 2 bad input or model, 1 other.
Settings are what the engine reports after loading (read back, not what was
asked), so a reader of results.csv can check that the engines did the same work.
"""

import argparse
import json
import os
import sys
import time


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def fail(kind, message, code, **extra):
    emit(dict({"event": "error", "kind": kind, "message": str(message)}, **extra))
    return code


def missing(error, install):
    """A module the driver needs is not importable: joulebench skips the point."""
    return fail("missing-module",
                f"{error}; install with `{install}` (or point python = \"...\" in the suite, "
                "or JOULEBENCH_PYTHON, at a Python that has it)", 3, install=install)


def version_of(dist):
    import importlib.metadata
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def chw_arg(text):
    parts = text.split(",")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"--chw wants C,H,W with positive integers, got {text!r}")
    return tuple(int(p) for p in parts)


def bench_parser(prog, description):
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--chw", type=chw_arg, help="image input C,H,W when the model file does not say")
    ap.add_argument("--warmup-iterations", type=int, default=2)
    ap.add_argument("--warmup-seconds", type=float, default=0.5)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--min-batches", type=int, default=64)
    ap.add_argument("--max-seconds", type=float, default=60.0, help="0: no limit")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--handshake", action="store_true")
    return ap


def bad_counts(a):
    if a.threads < 1 or a.batch < 1 or a.min_batches < 1:
        return fail("input", "threads, batch and min-batches must be at least 1", 2)
    return None


def process_threads():
    """Threads of this process as the kernel counts them (Linux), else None:
    the engine's worker pool read back from outside the engine."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def seeded_images(np, shape, seed):
    """Uniform [0, 1) float32 input, the same for every engine (seed 42 by default)."""
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def measure(a, run, version, settings, runs_per_batch=1):
    """Warm-up, `ready`, handshake, then batches on the monotonic clock until
    --min-batches and --min-seconds have passed (or --max-seconds), `done`."""
    w0 = time.monotonic()
    i = 0
    while i < a.warmup_iterations or time.monotonic() - w0 < a.warmup_seconds:
        run()
        i += 1
    settings = list(settings) + [["process_threads", process_threads()]]
    emit({"event": "ready", "version": version, "warmup_batches": i})
    if a.handshake and not sys.stdin.readline():
        return 1
    lat = []
    start = time.monotonic()
    while True:
        t = time.monotonic()
        run()
        now = time.monotonic()
        lat.append(now - t)
        el = now - start
        if (len(lat) >= a.min_batches and el >= a.min_seconds) or (a.max_seconds > 0 and el >= a.max_seconds):
            break
    duration = time.monotonic() - start
    emit({"event": "done", "latencies_s": lat, "duration_s": duration, "version": version,
          "settings": settings, "runs_per_batch": runs_per_batch, "threads": a.threads, "batch": a.batch})
    return 0


# ncnn and LiteRT loaders, shared by their drivers and by the converter's check.

NCNN_INSTALL = "pip install ncnn numpy"
LITERT_INSTALL = "pip install ai-edge-litert numpy"


def ncnn_blobs(param_path):
    """(input blob, output blob) of an ncnn .param file: the first Input
    layer's top, and the first blob no layer consumes. Raises ValueError."""
    with open(param_path) as f:
        lines = [l.split() for l in f.read().splitlines()]
    if not lines or lines[0] != ["7767517"]:
        raise ValueError(f"{param_path} is not an ncnn .param file (first line is not the magic 7767517)")
    inp, produced, consumed = None, [], set()
    for n, l in enumerate(lines[2:], start=3):
        if not l:
            continue
        try:
            kind, n_in, n_out = l[0], int(l[2]), int(l[3])
            ins, outs = l[4:4 + n_in], l[4 + n_in:4 + n_in + n_out]
        except (IndexError, ValueError):
            raise ValueError(f"{param_path}:{n}: malformed layer line") from None
        if len(ins) != n_in or len(outs) != n_out:
            raise ValueError(f"{param_path}:{n}: the layer names fewer blobs than it counts")
        if kind == "Input" and inp is None and outs:
            inp = outs[0]
        consumed.update(ins)
        produced.extend(outs)
    out = next((b for b in produced if b not in consumed and b != inp), None)
    if inp is None or out is None:
        raise ValueError(f"{param_path}: no Input layer or no output blob")
    return inp, out


def ncnn_net(ncnn, param_path, threads):
    """An ncnn Net forced to fp32 (ncnn's default on ARMv8.2 cores is fp16
    storage and arithmetic), no Vulkan, no int8; winograd, sgemm and packed
    layouts on, as ncnn's users run it. Raises ValueError."""
    bin_path = param_path[:-len(".param")] + ".bin" if param_path.endswith(".param") else param_path + ".bin"
    net = ncnn.Net()
    o = net.opt
    o.use_vulkan_compute = False
    o.num_threads = threads
    o.lightmode = True
    o.use_winograd_convolution = True
    o.use_sgemm_convolution = True
    o.use_packing_layout = True
    for k in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage",
              "use_bf16_packed", "use_int8_inference", "use_int8_storage", "use_int8_arithmetic",
              "use_int8_packed"):
        setattr(o, k, False)
    if net.load_param(param_path) != 0:
        raise ValueError(f"ncnn could not load {param_path}")
    if net.load_model(bin_path) != 0:
        raise ValueError(f"ncnn could not load {bin_path} (the weights beside the .param)")
    return net


def ncnn_settings(ncnn, net):
    o = net.opt
    keys = ("num_threads", "use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed", "use_bf16_storage",
            "use_bf16_packed", "use_int8_inference", "use_vulkan_compute", "use_winograd_convolution",
            "use_sgemm_convolution", "use_packing_layout", "lightmode", "openmp_blocktime")
    s = [[k, getattr(o, k)] for k in keys if hasattr(o, k)]
    s.append(["cpu_count", ncnn.get_cpu_count()])
    s.append(["powersave", ncnn.get_cpu_powersave()])
    return s


def ncnn_low_precision(net):
    o = net.opt
    return [k for k in ("use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed", "use_bf16_storage",
                        "use_bf16_packed", "use_int8_inference") if getattr(o, k, False)]


def litert_interpreter(path, threads):
    """LiteRT's Interpreter with its default op resolver, which applies the
    XNNPACK delegate (fp32 for an fp32 model)."""
    from ai_edge_litert.interpreter import Interpreter
    return Interpreter(model_path=path, num_threads=threads)


def litert_prepare(it, batch, chw):
    """Resizes the input to `batch` and allocates; returns (input index, layout
    'NHWC' or 'NCHW', shape). The layout is read from the file's input shape."""
    d = it.get_input_details()[0]
    shape = [int(x) for x in d["shape"]]
    if len(shape) != 4:
        raise ValueError(f"LiteRT input {d['name']} has shape {shape}, not an image batch")
    c, h, w = chw if chw else (shape[3], shape[1], shape[2])
    if shape[1:] == [h, w, c]:
        layout, new = "NHWC", [batch, h, w, c]
    elif shape[1:] == [c, h, w]:
        layout, new = "NCHW", [batch, c, h, w]
    else:
        raise ValueError(f"LiteRT input {d['name']} has shape {shape}, which is neither [N,{h},{w},{c}] "
                         f"nor [N,{c},{h},{w}]")
    if str(d["dtype"]) not in ("<class 'numpy.float32'>", "float32"):
        raise ValueError(f"LiteRT input {d['name']} is {d['dtype']}, not float32")
    it.resize_tensor_input(d["index"], new)
    it.allocate_tensors()
    return d["index"], layout, new


def litert_settings(it, threads):
    """What ran where: XNNPACK has the whole graph when one DELEGATE node takes
    the graph's input and gives all its outputs. Tensor types show any float16."""
    ops = it._get_ops_details()
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    ins = {int(d["index"]) for d in it.get_input_details()}
    outs = {int(d["index"]) for d in it.get_output_details()}
    whole = (len(delegates) == 1 and ins <= {int(i) for i in delegates[0]["inputs"]}
             and outs <= {int(i) for i in delegates[0]["outputs"]})
    types = {}
    for t in it.get_tensor_details():
        name = getattr(t["dtype"], "__name__", str(t["dtype"]))
        types[name] = types.get(name, 0) + 1
    return [["num_threads_requested", threads],
            ["xnnpack", "whole graph" if whole else f"{len(delegates)} partitions of {len(ops) - len(delegates)} ops"],
            ["tensor_types", " ".join(f"{k}:{v}" for k, v in sorted(types.items()))]]
