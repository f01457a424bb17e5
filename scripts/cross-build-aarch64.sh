#!/usr/bin/env bash
# Cross-builds the joulebench release binary for 64-bit ARM Linux boards
# (Raspberry Pi 4/5, Jetson, Graviton): target aarch64-unknown-linux-gnu,
# linked by the GNU cross linker named in .cargo/config.toml.
#
#   scripts/cross-build-aarch64.sh [extra cargo build arguments]
#
# Installs the rustup target and gcc-aarch64-linux-gnu (with apt-get, as root or
# through sudo) when they are missing. Copy the binary it prints to the board;
# it needs only glibc there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=aarch64-unknown-linux-gnu

die() {
    echo "cross-build-aarch64: $*" >&2
    exit 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    command -v rustup >/dev/null 2>&1 ||
        die "rustup is not installed; install the Rust standard library for $TARGET another way"
    echo "cross-build-aarch64: installing the Rust standard library for $TARGET (rustup target add)"
    rustup target add "$TARGET" || die "rustup target add $TARGET failed"
fi

if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || [ ! -e /usr/aarch64-linux-gnu/lib/libc.so ]; then
    command -v apt-get >/dev/null 2>&1 ||
        die "aarch64-linux-gnu-gcc is missing and this is not a Debian/Ubuntu system; install a GNU aarch64 cross linker and put aarch64-linux-gnu-gcc on PATH"
    echo "cross-build-aarch64: installing the aarch64 cross linker (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
        die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross ||
        die "could not install gcc-aarch64-linux-gnu"
fi

cargo build --release --target "$TARGET" "$@"

target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="${target_dir:-target}/$TARGET/release/joulebench"
[ -x "$bin" ] || die "build finished but $bin is missing"

echo
echo "binary: $bin"
if command -v file >/dev/null 2>&1; then
    file "$bin"
else
    echo "(install 'file' to see the binary's architecture)"
fi
