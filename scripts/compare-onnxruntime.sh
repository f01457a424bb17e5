#!/usr/bin/env bash
# ResNet-50 v1.5 images/s of onnxruntime and joulebench, alternating the two
# engines ROUNDS times per point on this (noisy, shared) machine, with the
# median of each and their ratio. Uses ../shared/peers (see its README).
# Like ort_bench.py, each run's images/s is batch / median batch latency; the
# mean-based figure joulebench reports is shown alongside.
#
# usage: scripts/compare-onnxruntime.sh [ROUNDS=3] [SECONDS=5]
# env:   PEERS_VENV (default ../.venv-peers), MODEL (default ../resnet50.onnx),
#        TUNE=1 runs `joulebench tune` per threads/batch first and infers with
#        --tuning; JB_ARGS adds flags to every joulebench infer (e.g. "--conv winograd").
set -euo pipefail
rounds=${1:-3}
secs=${2:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
peers=$here/../shared/peers
venv=${PEERS_VENV:-$here/../.venv-peers}
model=${MODEL:-$here/../resnet50.onnx}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q onnx onnxruntime numpy threadpoolctl
fi
[ -f "$model" ] || "$venv/bin/python" "$peers/make_resnet50_onnx.py" "$model"
# FEATURES (e.g. "tract") keeps a release build made with them.
cargo build --release --quiet --manifest-path "$here/Cargo.toml" ${FEATURES:+--features "$FEATURES"}
jb=$here/target/release/joulebench
out=$(mktemp)
tunedir=$(mktemp -d)
tuning() { [ "${TUNE:-0}" = 1 ] && echo "--tuning $tunedir/t$1-b$2.json"; true; }
if [ "${TUNE:-0}" = 1 ]; then
    for t in 1 2; do
        for b in 1 8; do
            "$jb" tune --model resnet50 --threads "$t" --batch "$b" --out "$tunedir/t$t-b$b.json" | tail -n 2
        done
    done
fi
for r in $(seq "$rounds"); do
    for t in 1 2; do
        for b in 1 8; do
            env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$venv/bin/python" "$peers/ort_bench.py" "$model" \
                --threads "$t" --batch "$b" --seconds "$secs" | tail -n 1 |
                awk -F, -v t="$t" -v b="$b" '{print "onnxruntime", t, b, $4}' >>"$out"
            # shellcheck disable=SC2046,SC2086
            "$jb" infer --model resnet50 --threads "$t" --batch "$b" --seconds "$secs" --no-peak --format json \
                $(tuning "$t" "$b") ${JB_ARGS:-} |
                python3 -c 'import json,sys; d=json.load(sys.stdin); print("joulebench", d["threads"], d["batch"], d["batch"] / d["latency_ms_p50"] * 1e3); print("joulebench-mean", d["threads"], d["batch"], d["images_per_s"])' >>"$out"
        done
    done
done
python3 - "$out" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    e, t, b, v = line.split()
    runs[(e, int(t), int(b))].append(float(v))
print("threads,batch,onnxruntime_img_s,joulebench_img_s,ratio,joulebench_mean_img_s,runs")
for t in (1, 2):
    for b in (1, 8):
        o = statistics.median(runs[("onnxruntime", t, b)])
        j = statistics.median(runs[("joulebench", t, b)])
        jm = statistics.median(runs[("joulebench-mean", t, b)])
        print(f"{t},{b},{o:.3f},{j:.3f},{j / o:.3f},{jm:.3f},{len(runs[('joulebench', t, b)])}")
PY
rm -rf "$out" "$tunedir"
