#!/usr/bin/env bash
# Build the Lambda bootstraps that infra/template.yaml deploys, with cargo-lambda
# installed from PyPI (cargo install cargo-lambda takes over 15 minutes here),
# strip their debug info, zip them and check the zip sizes.
#
#   bash infra/build.sh        (from the repository root)
#
#   x86_64 -> target/lambda/<binary>/bootstrap        (the template's CodeUri)
#   arm64  -> target/lambda-arm64/<binary>/bootstrap  only when the Rust target
#             aarch64-unknown-linux-gnu is installed; otherwise skipped with the
#             reason printed (CI machines cannot download it). To deploy arm64,
#             build it into target/lambda instead: cargo lambda build --release --arm64
#             Its stripping needs aarch64-linux-gnu-objcopy (binutils-aarch64-linux-gnu).
#
# Debug info: the bootstraps ship without it. [profile.release] keeps line tables
# (debug = "line-tables-only") because callgrind profiles of the local
# `cargo build --release` use them; in a Lambda bootstrap they were 72 %
# of the file, and code size is paid on every cold start. So the release
# profile stays as it is, and after `cargo lambda build` each bootstrap is
# stripped in place with `objcopy --strip-all` (the symbol table too: keeping
# it cost 0.4 MB of the detector's zip), the debug info and symbols kept beside
# the package, outside the directory SAM zips. Per binary, in the lambda dir:
#
#   <binary>/bootstrap   stripped; the only file in the CodeUri directory
#   <binary>.zip         that directory zipped as `sam package` zips it (deflate);
#                        its size is checked against the binary's cap
#   <binary>.debug       objcopy --only-keep-debug, named by the bootstrap's
#                        .gnu_debuglink: addr2line -e <binary>.debug ADDRESS
#
# Zip caps (MB = 10^6 bytes): logwarden-detector 6 MB, logwarden-notifier 5.5 MB
# (ZIP_CAPS below). A zip over its cap fails the build, naming the file, its
# size and the cap.
#
# Environment:
#   LAMBDA_BINARIES    binaries to build (default: logwarden-detector logwarden-notifier)
#   CARGO_LAMBDA_VENV  venv holding cargo-lambda (default .venv-cargo-lambda; created
#                      and installed when missing or not at the pinned version)
# Exits non-zero if a build fails, a bootstrap is missing or of the wrong machine,
# or a zip is over its cap.

set -euo pipefail

CARGO_LAMBDA_VERSION=1.9.2
ARM_TARGET=aarch64-unknown-linux-gnu
# objcopy for the arm64 bootstraps (Debian package binutils-aarch64-linux-gnu).
ARM_OBJCOPY=aarch64-linux-gnu-objcopy
# Zip caps in bytes (MB = 10^6); a binary not listed is not capped.
ZIP_CAPS="logwarden-detector=6000000 logwarden-notifier=5500000"
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
for tool in objcopy readelf; do
    command -v "$tool" >/dev/null ||
        { echo "infra/build.sh: $tool not found (Debian package binutils)" >&2; exit 1; }
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

# Strip, zip and check each bootstrap (see the header). cargo-lambda moves
# cargo's output, debug info and all, to <lambda dir>/<binary>/bootstrap on
# every build, so a bootstrap with line tables is a fresh one: its debug info is
# split off and it is stripped in place. One without them was stripped by an
# earlier run (and its .debug file must still be there).
package_bootstraps() {  # package_bootstraps LAMBDA_DIR OBJCOPY
    local dir=$1 objcopy=$2 bin boot
    for bin in "${BINARIES[@]}"; do
        boot="$dir/$bin/bootstrap"
        if readelf -S "$boot" | grep -q '\.debug_line'; then
            "$objcopy" --only-keep-debug "$boot" "$dir/$bin.debug"
            "$objcopy" --strip-all --add-gnu-debuglink="$dir/$bin.debug" "$boot" "$boot.tmp"
            chmod 755 "$boot.tmp"
            mv "$boot.tmp" "$boot"
        elif [[ ! -f "$dir/$bin.debug" ]]; then
            echo "  STRIPPED $boot has no line tables and $dir/$bin.debug is missing; rebuild it" >&2
            return 1
        fi
    done
    python3 - "$dir" "$ZIP_CAPS" "${BINARIES[@]}" <<'EOF'
import os, sys, zipfile
lambda_dir, caps, bins = sys.argv[1], sys.argv[2], sys.argv[3:]
caps = {k: int(v) for k, v in (c.split("=") for c in caps.split())}
mb = lambda n: f"{n / 1e6:.2f} MB"
bad = 0
for b in bins:
    boot, zpath, debug = f"{lambda_dir}/{b}/bootstrap", f"{lambda_dir}/{b}.zip", f"{lambda_dir}/{b}.debug"
    # SAM uploads the whole CodeUri directory: it must hold the bootstrap alone.
    extra = sorted(set(os.listdir(f"{lambda_dir}/{b}")) - {"bootstrap"})
    if extra:
        print(f"  EXTRA   {lambda_dir}/{b}/ also holds {extra}, which SAM would upload"); bad = 1
    # As `sam package` zips a CodeUri directory: deflate at zlib's default level.
    info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(zpath + ".tmp", "w") as z, open(boot, "rb") as f:
        z.writestr(info, f.read())
    os.replace(zpath + ".tmp", zpath)
    size, cap = os.path.getsize(zpath), caps.get(b)
    if cap is not None and size > cap:
        print(f"  TOO BIG {zpath} is {size} bytes ({mb(size)}), over its cap of {cap} bytes ({mb(cap)})")
        bad = 1
        continue
    print(f"  ok      {zpath}: {mb(size)}" + (f" (cap {mb(cap)})" if cap is not None else " (no cap)")
          + f"; bootstrap {mb(os.path.getsize(boot))}, debug info beside it {mb(os.path.getsize(debug))}")
sys.exit(bad)
EOF
}

echo "### cargo lambda build --release --x86-64 ${bin_args[*]}"
start=$(date +%s)
cargo lambda build --release --x86-64 "${bin_args[@]}"
echo "x86_64 build took $(($(date +%s) - start)) s"
check_bootstraps target/lambda 62 x86_64
echo "### x86_64: strip the debug info, zip, check the zip sizes"
package_bootstraps target/lambda objcopy

if rustup target list --installed 2>/dev/null | grep -qx "$ARM_TARGET"; then
    echo "### cargo lambda build --release --arm64 --lambda-dir target/lambda-arm64 ${bin_args[*]}"
    start=$(date +%s)
    cargo lambda build --release --arm64 --lambda-dir target/lambda-arm64 "${bin_args[@]}"
    echo "arm64 build took $(($(date +%s) - start)) s"
    check_bootstraps target/lambda-arm64 183 arm64
    echo "### arm64: strip the debug info, zip, check the zip sizes"
    # The host's objcopy reads x86 ELF only (Debian's binutils: "Unable to
    # recognise the format"); the cross one reads AArch64.
    if ! command -v "$ARM_OBJCOPY" >/dev/null; then
        echo "infra/build.sh: $ARM_OBJCOPY not found (Debian package binutils-aarch64-linux-gnu)" >&2
        exit 1
    fi
    package_bootstraps target/lambda-arm64 "$ARM_OBJCOPY"
else
    echo "### arm64 skipped: the Rust target $ARM_TARGET is not installed"
    echo "    (rustup target add $ARM_TARGET needs the internet; CI machines here cannot download it)."
    echo "    Deploy with Architecture=x86_64, or build arm64 where the target can be installed."
fi
