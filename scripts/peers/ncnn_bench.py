#!/usr/bin/env python3
"""ncnn as a peer engine of joulebench (`engine = "ncnn"`).

Runs an ncnn .param/.bin pair (joulebench converts the suite's ONNX file with
pnnx, or the suite names a ready .param) with num_threads = --threads, fp32
forced (fp16 and bf16 storage and arithmetic off: ncnn's default on ARMv8.2
cores is fp16), int8 off, no Vulkan, winograd, sgemm and packed layouts on.
ncnn has no batch dimension: a batch of B images is B extractions in a row, one
[C, H, W] image each, as ncnn's users run it; the row says so (runs_per_batch).
Then peer_common.py's warm-up and measurement.

joulebench embeds peer_common.py and this file and runs them with `python -c`;
this file also runs on its own:
  python3 scripts/peers/ncnn_bench.py model.ncnn.param --chw 3,224,224 --threads 2 --batch 8
"""

import sys

try:
    measure  # defined when joulebench embeds peer_common.py ahead of this file
except NameError:
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from peer_common import *  # noqa: F401,F403


def main(argv):
    a = bench_parser("ncnn_bench.py", "ncnn as a peer engine of joulebench").parse_args(argv)
    if (code := bad_counts(a)) is not None:
        return code
    if not a.chw:
        return fail("input", "ncnn needs the image shape: --chw C,H,W", 2)
    try:
        import numpy as np
        import ncnn
    except ImportError as e:
        return missing(e, NCNN_INSTALL)
    try:
        inp, out = ncnn_blobs(a.model)
        net = ncnn_net(ncnn, a.model, a.threads)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return fail("model", e, 2)
    low = ncnn_low_precision(net)
    if low:
        return fail("precision", f"ncnn kept {', '.join(low)} on after loading", 2)
    # Mats made after a Net exists: Mat.clone() before any Net crashes some ncnn versions.
    images = seeded_images(np, [a.batch, *a.chw], a.seed)
    mats = [ncnn.Mat(img).clone() for img in images]

    def run():
        for m in mats:
            ex = net.create_extractor()
            ex.input(inp, m)
            r, _ = ex.extract(out)
            if r != 0:
                raise RuntimeError(f"ncnn extract({out}) returned {r}")

    try:
        run()
    except RuntimeError as e:
        return fail("model", e, 2)
    settings = ncnn_settings(ncnn, net) + [["blobs", f"{inp} -> {out}"]]
    return measure(a, run, ncnn.__version__, settings, runs_per_batch=a.batch)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
