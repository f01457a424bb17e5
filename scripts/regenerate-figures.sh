#!/usr/bin/env bash
# Regenerates every figure and report of a study: for each run directory
# (one with a results.csv) under the directories given, draws the figures
# into <run dir>/figures/ and writes report.md and report.html.
#
#   scripts/regenerate-figures.sh results/paper-resnet50
#   FORMAT=png scripts/regenerate-figures.sh results/smoke/20260101T120000Z
#
# FORMAT: image formats, comma-separated (default png,svg; the report uses
# the PNGs). JOULEBENCH: the binary to use (default: built from this
# checkout with cargo build --release).
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 RESULTS_DIR [RESULTS_DIR ...]" >&2
    exit 2
fi
FORMAT=${FORMAT:-png,svg}
if [ -z "${JOULEBENCH:-}" ]; then
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    cargo build --release --quiet --manifest-path "$root/Cargo.toml"
    JOULEBENCH="$root/target/release/joulebench"
fi

runs=0
for arg in "$@"; do
    if [ ! -e "$arg" ]; then
        echo "$arg: no such file or directory" >&2
        exit 2
    fi
    while IFS= read -r -d '' csv; do
        dir=$(dirname "$csv")
        echo "== $dir"
        "$JOULEBENCH" report "$dir"
        if [ "$FORMAT" != png ]; then
            "$JOULEBENCH" plot "$dir" --format "$FORMAT" >/dev/null
        fi
        runs=$((runs + 1))
    done < <(find "$arg" -name results.csv -not -path '*/figures/*' -print0 | sort -z)
done
if [ "$runs" -eq 0 ]; then
    echo "no results.csv under $*" >&2
    exit 2
fi
echo "regenerated the figures of $runs run(s)"
