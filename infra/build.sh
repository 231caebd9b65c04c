#!/usr/bin/env bash
# Build the Lambda bootstraps that infra/template.yaml deploys, with cargo-lambda
# installed from PyPI (cargo install cargo-lambda takes over 15 minutes here).
#
#   bash infra/build.sh        (from the repository root)
#
#   x86_64 -> target/lambda/<binary>/bootstrap        (the template's CodeUri)
#   arm64  -> target/lambda-arm64/<binary>/bootstrap  only when the Rust target
#             aarch64-unknown-linux-gnu is installed; otherwise skipped with the
#             reason printed (CI machines cannot download it). To deploy arm64,
#             build it into target/lambda instead: cargo lambda build --release --arm64
#
# Environment:
#   LAMBDA_BINARIES    binaries to build (default: logwarden-detector logwarden-notifier)
#   CARGO_LAMBDA_VENV  venv holding cargo-lambda (default .venv-cargo-lambda; created
#                      and installed when missing or not at the pinned version)
# Exits non-zero if a build fails or a bootstrap is missing or of the wrong machine.

set -euo pipefail

CARGO_LAMBDA_VERSION=1.9.2
ARM_TARGET=aarch64-unknown-linux-gnu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CARGO_LAMBDA_VENV=${CARGO_LAMBDA_VENV:-.venv-cargo-lambda}
[[ "$CARGO_LAMBDA_VENV" == /* ]] || CARGO_LAMBDA_VENV="$ROOT/$CARGO_LAMBDA_VENV"
read -r -a BINARIES <<< "${LAMBDA_BINARIES:-logwarden-detector logwarden-notifier}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

for bin in "${BINARIES[@]}"; do
    if ! grep -Eq "^name *= *\"$bin\"" Cargo.toml; then
        echo "infra/build.sh: Cargo.toml declares no [[bin]] named $bin" >&2
        exit 1
    fi
done

have_cargo_lambda() {
    [[ -x "$CARGO_LAMBDA_VENV/bin/cargo-lambda" ]] &&
        "$CARGO_LAMBDA_VENV/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "^cargo-lambda $CARGO_LAMBDA_VERSION "
}
if ! have_cargo_lambda; then
    echo "### installing cargo-lambda==$CARGO_LAMBDA_VERSION into $CARGO_LAMBDA_VENV"
    rm -rf "$CARGO_LAMBDA_VENV"
    python3 -m venv "$CARGO_LAMBDA_VENV"
    "$CARGO_LAMBDA_VENV/bin/pip" install -q "cargo-lambda==$CARGO_LAMBDA_VERSION"
fi
# cargo finds the `cargo lambda` subcommand on PATH; zig comes with the wheel.
export PATH="$CARGO_LAMBDA_VENV/bin:$PATH"
cargo lambda --version

bin_args=()
for bin in "${BINARIES[@]}"; do bin_args+=(--bin "$bin"); done

# ELF e_machine: 62 = x86-64, 183 = AArch64.
check_bootstraps() {  # check_bootstraps DIR MACHINE LABEL
    python3 - "$1" "$2" "$3" "${BINARIES[@]}" <<'EOF'
import struct, sys
lambda_dir, machine, label, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
bad = 0
for b in bins:
    path = f"{lambda_dir}/{b}/bootstrap"
    try:
        head = open(path, "rb").read(20)
    except OSError as e:
        print(f"  MISSING {path}: {e}"); bad = 1; continue
    if head[:4] != b"\x7fELF" or struct.unpack_from("<H", head, 18)[0] != machine:
        print(f"  WRONG   {path} is not a {label} ELF executable"); bad = 1; continue
    print(f"  ok      {path} ({label})")
sys.exit(bad)
EOF
}

echo "### cargo lambda build --release --x86-64 ${bin_args[*]}"
start=$(date +%s)
cargo lambda build --release --x86-64 "${bin_args[@]}"
echo "x86_64 build took $(($(date +%s) - start)) s"
check_bootstraps target/lambda 62 x86_64

if rustup target list --installed 2>/dev/null | grep -qx "$ARM_TARGET"; then
    echo "### cargo lambda build --release --arm64 --lambda-dir target/lambda-arm64 ${bin_args[*]}"
    start=$(date +%s)
    cargo lambda build --release --arm64 --lambda-dir target/lambda-arm64 "${bin_args[@]}"
    echo "arm64 build took $(($(date +%s) - start)) s"
    check_bootstraps target/lambda-arm64 183 arm64
else
    echo "### arm64 skipped: the Rust target $ARM_TARGET is not installed"
    echo "    (rustup target add $ARM_TARGET needs the internet; CI machines here cannot download it)."
    echo "    Deploy with Architecture=x86_64, or build arm64 where the target can be installed."
fi
