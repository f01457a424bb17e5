#!/usr/bin/env bash
# Static analysis of the NEON micro-kernels and Winograd transforms with
# llvm-mca for the ARM cores joulebench's boards use (README: "NEON static
# analysis"). Builds the aarch64 release unit-test binary, traces the probe
# tests under QEMU and times exactly the instructions each call executed.
#
#   scripts/neon-mca.sh [--format json] [--check] [--binary PATH] [--no-transforms]
#
# --check exits 1 when a kernel's k-loop is under 95% of the FMA bound on any
# core, or a whole 8x12 tile at k = 64 under 85%. Needs the aarch64 rustup
# target, gcc-aarch64-linux-gnu, qemu-user-static and llvm-19 (llvm-mca,
# llvm-objdump, llvm-nm) and python3 (standard library only).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 scripts/neon_mca.py "$@"
