#!/usr/bin/env python3
"""Static analysis of joulebench's NEON micro-kernels and Winograd transforms
with LLVM's machine-code analyser (llvm-mca), per ARM core; see
scripts/neon-mca.sh and README.md ("NEON static analysis").

The instructions are taken from the compiled release code, never from a hand
copy: the aarch64 library's unit-test binary is built in the release profile,
its ignored probe tests (src/engine/gemm/kernels/mca_probe.rs,
src/engine/conv/winograd/mca_probe.rs) call every NEON kernel on a full 8x12
tile at k = 64, 256, 576 with each fused epilogue kind, and each transform on
a block of tiles, under QEMU with instruction tracing restricted to those
functions. llvm-mca then times exactly the instructions one call executed.

Standard library only. Exit codes: 0 fine, 1 a --check threshold missed,
2 a tool or build failed.
"""

import argparse
import concurrent.futures
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

TARGET = "aarch64-unknown-linux-gnu"
QEMU = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"]

# (core, llvm -mcpu whose scheduling model is used, why when it is another core's)
CORES = [
    ("cortex-a53", "cortex-a53", ""),
    (
        "cortex-a55",
        "cortex-a55",
        "LLVM's A55 model issues two 128-bit FMLAs a cycle, ARM's optimization guide one: the bound uses the guide",
    ),
    ("cortex-a72", "cortex-a72", "LLVM's Cortex-A57 model (LLVM 19 schedules the A72 with it)"),
    (
        "cortex-a76",
        "neoverse-n1",
        "Neoverse-N1 model: N1 is the A76 core (LLVM 19 gives cortex-a76 the A57 model, one FMA pipe)",
    ),
    (
        "cortex-a78ae",
        "neoverse-n1",
        "Neoverse-N1 model: LLVM has no A78 model; N1 has the A78's two 128-bit FMA pipes",
    ),
    (
        "carmel",
        "neoverse-n1",
        "Neoverse-N1 model: LLVM has no Carmel model; N1 is an ARMv8.2 core with Carmel's two 128-bit FMA pipes",
    ),
    ("neoverse-n1", "neoverse-n1", ""),
    ("neoverse-v1", "neoverse-v1", ""),
    ("neoverse-v2", "neoverse-v2", ""),
]

# 128-bit FMLAs each core completes per cycle (ARM's software optimization
# guides; Carmel from NVIDIA's Xavier material): the FMA bound. Also what
# `joulebench peak` expects, as 8x this in flop/cycle.
FMLA_PER_CYCLE = {
    "cortex-a53": 1,
    "cortex-a55": 1,
    "cortex-a72": 1,
    "cortex-a76": 2,
    "cortex-a78ae": 2,
    "carmel": 2,
    "neoverse-n1": 2,
    "neoverse-v1": 4,
    "neoverse-v2": 4,
}

# Fused epilogues whose own arithmetic is not FMA work the bound counts (a
# vector exp and a division per value for swish, a multiply-add, a clamp and a
# multiply for hard-swish): reported, not held to the tile limit.
UNGATED_EPILOGUES = {"bn_swish", "bn_hardswish"}
# The NEON schedule joulebench selects on each core (Kernel::neon_for: the
# in-order one where every core is an A53 or A55): the one held to the limits
# there. The others are reported.
IN_ORDER_CORES = {"cortex-a53", "cortex-a55"}

# Cores whose llvm-mca model no schedule can satisfy: reported as WAIVED with
# the reason, not failed.
WAIVED = {
    "cortex-a53": "LLVM 19's Cortex-A53 model retires in program order (no RetireOOO) and gives "
    "FMLA a 10-cycle latency, so each load, address update or branch after an FMLA waits up to "
    "6 cycles for it; with 5 loads a k-step no 8x12 schedule comes near 95% under that model",
}

LOOP_LIMIT = 0.95
TILE_LIMIT = 0.85
TILE_LIMIT_K = 64

FMLA_ELEM = re.compile(r"^fmla\s+v\d+\.4s,\s*v\d+\.4s,\s*v\d+\.s\[\d\]")
FP_VEC = re.compile(r"^(fmla|fmls|fmul|fadd|fsub|fmax|fmin|fdiv|fneg|fabs|frint\w*|fcvt\w*)\s+v\d+\.[24]s")
BRANCH = re.compile(r"^(b\.\w+|b|cbz|cbnz|tbz|tbnz)\s+(?:[wx]\d+,\s*)?(?:#\w+,\s*)?0x([0-9a-f]+)")


class Fail(Exception):
    """A tool, the build or the probe failed: exit code 2."""


def tool(*names):
    for n in names:
        if shutil.which(n):
            return n
    raise Fail(f"none of {', '.join(names)} is on PATH (Debian: apt-get install llvm-19)")


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise Fail(f"{' '.join(cmd[:4])}... failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p.stdout


def build(root):
    """Builds the release unit-test binary for aarch64; returns its path."""
    out = run(
        ["cargo", "test", "--release", "--target", TARGET, "--lib", "--no-run", "--message-format=json"],
        cwd=root,
    )
    exe = None
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            if "lib" in msg["target"]["kind"] and msg["profile"].get("test"):
                exe = msg["executable"]
    if not exe:
        raise Fail("cargo built no aarch64 unit-test executable")
    return exe


def symbols(nm, binary):
    """Mangled name -> (address, size) of every defined function."""
    syms = {}
    for line in run([nm, "-S", "--defined-only", binary]).splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tT":
            syms[f[3]] = (int(f[0], 16), int(f[1], 16))
    return syms


def disassemble(objdump, binary, ranges):
    """File address -> instruction text (llvm-mc syntax) over `ranges`."""
    insns = {}
    for start, size in ranges:
        out = run(
            [
                objdump,
                "-d",
                "--no-show-raw-insn",
                f"--start-address={start:#x}",
                f"--stop-address={start + size:#x}",
                binary,
            ]
        )
        for line in out.splitlines():
            m = re.match(r"^\s*([0-9a-f]+):\s+(\S.*)$", line)
            if m:
                text = m.group(2).split("//")[0].strip()
                insns[int(m.group(1), 16)] = text
    return insns


def for_mca(text):
    """An objdump line as llvm-mca parses it: branch targets become `.`."""
    text = re.sub(r"\s*<[^>]*>", "", text)
    if BRANCH.match(text) or text.startswith(("bl\t", "bl ", "adr\t", "adr ")):
        text = re.sub(r"0x[0-9a-f]+$", ".", text)
    if text.startswith("adrp"):
        text = re.sub(r"0x[0-9a-f]+$", "0x0", text)
    return text


class Mca:
    def __init__(self, exe, tmp):
        self.exe = exe
        self.tmp = tmp
        self.names = itertools.count()

    def run(self, cpu, lines, iterations):
        """(total cycles, block reciprocal throughput) llvm-mca gives `lines`
        repeated `iterations` times."""
        path = os.path.join(self.tmp, f"b{next(self.names)}.s")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        out = run(
            [
                self.exe,
                "-mtriple=aarch64",
                f"-mcpu={cpu}",
                f"-iterations={iterations}",
                "-summary-view",
                "-skip-unsupported-instructions=parse-failure",
                path,
            ]
        )
        os.unlink(path)
        m = re.search(r"Total Cycles:\s+(\d+)", out)
        r = re.search(r"Block RThroughput:\s+([\d.]+)", out)
        if not m or not r:
            raise Fail(f"llvm-mca gave no cycle count for {cpu}")
        return int(m.group(1)), float(r.group(1))

    def steady(self, cpu, lines):
        """Cycles of one run of straight-line `lines` between two others
        (a tile between tiles), as the difference of 3 and 1 repetitions."""
        return (self.run(cpu, lines, 3)[0] - self.run(cpu, lines, 1)[0]) / 2.0

    def once(self, cpu, lines):
        """Cycles of one run of a long straight-line sequence."""
        return float(self.run(cpu, lines, 1)[0])

    def pressure(self, cpu, lines):
        """The model's resource bound for `lines` (Block RThroughput): what
        its pipes need, dependencies aside."""
        return self.run(cpu, lines, 1)[1]

    def loop(self, cpu, lines, iterations=400):
        return self.run(cpu, lines, iterations)[0] / iterations


def probe(binary, test, extra=()):
    out = run(
        QEMU + list(extra) + [binary, test, "--exact", "--ignored", "--nocapture", "--test-threads=1"]
    )
    return [line.split()[1:] for line in re.findall(r"MCA-PROBE .*", out)]


def trace(binary, test, ranges, base, tmp):
    """File addresses executed inside `ranges`, in order."""
    log = os.path.join(tmp, "trace.log")
    dfilter = ",".join(f"{base + s:#x}..{base + s + n - 1:#x}" for s, n in ranges)
    probe(binary, test, ["-singlestep", "-d", "exec,nochain", "-dfilter", dfilter, "-D", log])
    pcs = []
    pat = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")
    with open(log) as f:
        for line in f:
            m = pat.match(line)
            if m:
                pcs.append(int(m.group(1), 16) - base)
    os.unlink(log)
    return pcs


def split_calls(pcs, entries):
    """The trace cut at every entry address: one segment per call."""
    segs = []
    for pc in pcs:
        if pc in entries:
            segs.append([])
        if segs:
            segs[-1].append(pc)
    return segs


def base_of(syms, printed_addr, needle):
    name = next((s for s in syms if needle in s), None)
    if name is None:
        raise Fail(f"no symbol containing {needle}")
    return printed_addr - syms[name][0]


def fn_of(syms, addr):
    for name, (s, n) in syms.items():
        if s <= addr < s + n:
            return name, s, n
    raise Fail(f"no function at {addr:#x}")


def inner_loop(insns, segs):
    """The k-loop: the backward branch whose body holds >= 24 by-element
    FMLAs and which the traced calls take most often."""
    taken = {}
    for seg in segs:
        for a, b in zip(seg, seg[1:]):
            if b <= a:
                taken[a] = taken.get(a, 0) + 1
    best = None
    for addr, n in taken.items():
        m = BRANCH.match(insns.get(addr, ""))
        if not m:
            continue
        target = int(m.group(2), 16)
        body = [insns[a] for a in sorted(insns) if target <= a <= addr]
        fmlas = sum(1 for t in body if FMLA_ELEM.match(t))
        if fmlas >= 24 and (best is None or n > best[0]):
            best = (n, target, addr, body, fmlas)
    if best is None:
        raise Fail("no k-loop (backward branch over >= 24 by-element FMLAs) in the trace")
    _, target, addr, body, fmlas = best
    return {"start": target, "end": addr, "body": body, "k_steps": fmlas // 24}


def analyse_kernels(a, syms, insns_all, binary, tmp, mca, pool):
    test = "engine::gemm::kernels::mca_probe::trace_tiles"
    lines = probe(binary, test)
    kernels = [(l[1], int(l[2], 16)) for l in lines if l[0] == "kernel"]
    calls = [(l[1], int(l[2]), l[3]) for l in lines if l[0] == "call"]
    here = next(int(l[1], 16) for l in lines if l[0] == "probe")
    base = base_of(syms, here, "7kernels9mca_probe11trace_tiles17h")
    ranges = [
        (s, n)
        for name, (s, n) in syms.items()
        if re.search(r"7kernels\d+neon", name) and "fma_chains" not in name
        or "8epilogue" in name
        or ("engine4simd" in name and "5tests" not in name)
    ]
    insns = disassemble(a.objdump, binary, ranges)
    insns_all.update(insns)
    entries = {addr - base for _, addr in kernels}
    segs = split_calls(trace(binary, test, ranges, base, tmp), entries)
    if len(segs) != len(calls):
        raise Fail(f"traced {len(segs)} kernel calls, the probe made {len(calls)}")
    out = []
    for kname, kaddr in kernels:
        ksegs = [(c, s) for c, s in zip(calls, segs) if c[0] == kname]
        loop = inner_loop(insns, [s for _, s in ksegs])
        body = [for_mca(t) for t in loop["body"]]
        fmlas = [for_mca(t) for t in loop["body"] if FMLA_ELEM.match(t)]
        steps = loop["k_steps"]
        fn = fn_of(syms, loop["start"])[0]
        per_cpu = {}
        jobs = {}
        for cpu in sorted({c[1] for c in CORES}):
            jobs[(cpu, "loop")] = pool.submit(mca.loop, cpu, body)
            jobs[(cpu, "bound")] = pool.submit(mca.pressure, cpu, fmlas)
            for (kn, k, epi), seg in ksegs:
                text = [for_mca(insns[pc]) for pc in seg]
                jobs[(cpu, k, epi)] = pool.submit(mca.steady, cpu, text)
        for core, cpu, _ in CORES:
            lc = jobs[(cpu, "loop")].result() / steps
            model_bc = jobs[(cpu, "bound")].result() / steps
            bc = len(fmlas) / steps / FMLA_PER_CYCLE[core]
            tiles = []
            for (kn, k, epi), seg in ksegs:
                cyc = jobs[(cpu, k, epi)].result()
                tiles.append(
                    {
                        "k": k,
                        "epilogue": epi,
                        "instructions": len(seg),
                        "cycles": round(cyc, 1),
                        "bound": round(bc * k, 1),
                        "efficiency": round(bc * k / cyc, 4),
                        "overhead_cycles": round(cyc - lc * k, 1),
                        "gated": k == TILE_LIMIT_K and epi not in UNGATED_EPILOGUES,
                    }
                )
            per_cpu[core] = {
                "model": cpu,
                "loop_cycles_per_k": round(lc, 3),
                "bound_cycles_per_k": round(bc, 3),
                "model_fmla_bound_per_k": round(model_bc, 3),
                "loop_efficiency": round(bc / lc, 4),
                "tiles": tiles,
            }
        out.append(
            {
                "name": kname,
                "function": fn,
                "loop": {
                    "address": f"{loop['start']:#x}",
                    "instructions": len(body),
                    "k_steps_per_iteration": steps,
                },
                "cores": per_cpu,
            }
        )
    return out


def analyse_transforms(a, syms, binary, tmp, mca, pool):
    test = "engine::conv::winograd::mca_probe::trace_transforms"
    lines = probe(binary, test)
    here = next(int(l[1], 16) for l in lines if l[0] == "probe")
    base = base_of(syms, here, "8winograd9mca_probe16trace_transforms17h")
    calls = [l[1:] for l in lines if l[0] == "call"]
    ranges = [
        (s, n)
        for name, (s, n) in syms.items()
        if "8winograd9transform" in name
        or ("engine4simd" in name and "5tests" not in name)
    ]
    entries = {
        s
        for name, (s, n) in syms.items()
        if "8winograd9transform11input_block" in name or "8winograd9transform12output_block" in name
    }
    insns = disassemble(a.objdump, binary, ranges)
    segs = split_calls(trace(binary, test, ranges, base, tmp), entries)
    if len(segs) != len(calls):
        raise Fail(f"traced {len(segs)} transform calls, the probe made {len(calls)}")
    out = []
    cpus = sorted({c[1] for c in CORES})
    for (which, variant, tiles, chans, act), seg in zip(calls, segs):
        text = [for_mca(insns[pc]) for pc in seg]
        fp = [t for t in text if FP_VEC.match(t)]
        jobs = {cpu: (pool.submit(mca.once, cpu, text), pool.submit(mca.pressure, cpu, fp)) for cpu in cpus}
        vecs = int(tiles) * (int(chans) + 3) // 4
        cores = {}
        for core, cpu, _ in CORES:
            cyc, bound = (j.result() for j in jobs[cpu])
            cores[core] = {
                "model": cpu,
                "cycles": round(cyc, 1),
                "cycles_per_tile_vector": round(cyc / vecs, 2),
                "fp_bound": round(bound, 1),
                "efficiency": round(bound / cyc, 4) if cyc else 0.0,
            }
        out.append(
            {
                "transform": which,
                "variant": variant,
                "tiles": int(tiles),
                "channels": int(chans),
                "activation": act,
                "instructions": len(seg),
                "fp_instructions": len(fp),
                "cores": cores,
            }
        )
    return out


def selected(core):
    return "neon-inorder" if core in IN_ORDER_CORES else "neon"


def failures(kernels):
    """(failures, waived): the limits missed by the kernel selected per core."""
    bad = []
    waived = []
    for k in kernels:
        for core, r in k["cores"].items():
            if k["name"] != selected(core):
                continue
            out = waived if core in WAIVED else bad
            if r["loop_efficiency"] < LOOP_LIMIT:
                out.append(
                    f"{k['name']} on {core}: inner loop {r['loop_cycles_per_k']} cycles per k-step, "
                    f"{100 * r['loop_efficiency']:.1f}% of the bound {r['bound_cycles_per_k']} (< {100 * LOOP_LIMIT:.0f}%)"
                )
            for t in r["tiles"]:
                if t["gated"] and t["efficiency"] < TILE_LIMIT:
                    out.append(
                        f"{k['name']} on {core}: whole tile at k={t['k']} ({t['epilogue']}) {t['cycles']} cycles, "
                        f"{100 * t['efficiency']:.1f}% of the bound {t['bound']} (< {100 * TILE_LIMIT:.0f}%)"
                    )
    return bad, waived


def human(report):
    o = []
    for core, cpu, note in CORES:
        if note:
            o.append(f"{core}: {note}")
    for k in report["kernels"]:
        o.append("")
        o.append(
            f"kernel {k['name']}: k-loop at {k['loop']['address']}, {k['loop']['instructions']} instructions, "
            f"{k['loop']['k_steps_per_iteration']} k-step(s) per iteration"
        )
        o.append(
            f"  {'core':<13} {'model':<12} {'loop/k':>7} {'bound/k':>7} {'(mca)':>6} {'loop%':>6}"
            + "".join(f" {'tile k=' + str(kk):>11} {'%':>5}" for kk in (64, 256, 576))
            + "   (tiles: plain store)"
        )
        for core, r in k["cores"].items():
            row = f"  {core:<13} {r['model']:<12} {r['loop_cycles_per_k']:>7.2f} {r['bound_cycles_per_k']:>7.2f} {r['model_fmla_bound_per_k']:>6.2f} {100 * r['loop_efficiency']:>5.1f}%"
            for kk in (64, 256, 576):
                t = next(t for t in r["tiles"] if t["k"] == kk and t["epilogue"] == "plain")
                row += f" {t['cycles']:>11.1f} {100 * t['efficiency']:>4.1f}%"
            o.append(row)
        epis = list(dict.fromkeys(t["epilogue"] for t in next(iter(k["cores"].values()))["tiles"]))
        o.append(f"  whole tile at k=64 by fused epilogue, % of the FMA bound (overhead cycles):")
        o.append(f"  {'core':<13}" + "".join(f" {e:>17}" for e in epis))
        for core, r in k["cores"].items():
            row = f"  {core:<13}"
            for e in epis:
                t = next(t for t in r["tiles"] if t["k"] == 64 and t["epilogue"] == e)
                row += f" {100 * t['efficiency']:>8.1f}% ({t['overhead_cycles']:>5.0f})"
            o.append(row)
    if report.get("transforms"):
        o.append("")
        o.append("Winograd transforms: cycles per call, per tile-vector (4 channels), % of the vector-FP bound")
        for t in report["transforms"]:
            o.append(
                f"  {t['transform']:<6} {t['variant']:<4} {t['tiles']} tiles x {t['channels']} ch, {t['activation']:<5}"
                f" ({t['instructions']} insns, {t['fp_instructions']} vector FP)"
            )
            for core, r in t["cores"].items():
                o.append(
                    f"    {core:<13} {r['cycles']:>9.1f} cycles {r['cycles_per_tile_vector']:>7.2f}/tile-vector"
                    f" {100 * r['efficiency']:>5.1f}% of {r['fp_bound']:.1f}"
                )
    o.append("")
    o.append("selected per core (held to the limits): " + ", ".join(f"{c} {k}" for c, k in report["selected"].items()))
    for core, why in report["waivers"].items():
        o.append(f"waiver {core}: {why}")
    o.extend("WAIVED " + f for f in report["waived"])
    o.extend("FAIL " + f for f in report["failures"])
    if not report["failures"]:
        o.append(f"check: every selected kernel within the limits ({100 * LOOP_LIMIT:.0f}% loop, {100 * TILE_LIMIT:.0f}% tile at k={TILE_LIMIT_K}) or waived")
    return "\n".join(o)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--format", choices=["table", "json"], default="table")
    ap.add_argument("--binary", help="use this aarch64 release unit-test binary instead of building one")
    ap.add_argument("--check", action="store_true", help="exit 1 when a kernel misses the limits")
    ap.add_argument("--no-transforms", action="store_true", help="only the GEMM micro-kernels")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        mca_exe = tool("llvm-mca-19", "llvm-mca")
        a.objdump = tool("llvm-objdump-19", "llvm-objdump")
        nm = tool("llvm-nm-19", "llvm-nm")
        tool(QEMU[0])
        binary = a.binary or build(root)
        syms = symbols(nm, binary)
        with tempfile.TemporaryDirectory(prefix="neon-mca-") as tmp, concurrent.futures.ThreadPoolExecutor(
            max_workers=os.cpu_count() or 2
        ) as pool:
            mca = Mca(mca_exe, tmp)
            kernels = analyse_kernels(a, syms, {}, binary, tmp, mca, pool)
            transforms = [] if a.no_transforms else analyse_transforms(a, syms, binary, tmp, mca, pool)
    except Fail as e:
        print(f"neon-mca: {e}", file=sys.stderr)
        return 2
    report = {
        "binary": binary,
        "limits": {"loop": LOOP_LIMIT, "tile": TILE_LIMIT, "tile_k": TILE_LIMIT_K, "ungated_epilogues": sorted(UNGATED_EPILOGUES)},
        "cores": [{"core": c, "model": m, "note": n} for c, m, n in CORES],
        "kernels": kernels,
        "transforms": transforms,
    }
    report["failures"], report["waived"] = failures(kernels)
    report["waivers"] = WAIVED
    report["selected"] = {c: selected(c) for c, _, _ in CORES}
    if a.format == "json":
        print(json.dumps(report, indent=1))
    else:
        print(human(report))
    return 1 if a.check and report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
