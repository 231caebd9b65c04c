#!/usr/bin/env bash
# Run the logwarden fuzz targets one after the other, single job, and print
# executions, wall time and executions per second for each.
#
#   fuzz/run.sh [RUNS]          every target for RUNS new inputs (default 10000) after
#                               replaying its corpus; the figures count both
#   FUZZ_SECONDS=600 fuzz/run.sh   every target for 600 s instead
#   FUZZ_TARGETS="platform rules" fuzz/run.sh 1000000
#
# Installs the pinned cargo-fuzz when missing. Only a stable toolchain is
# needed: RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's -Z flags. The sanitizer
# is AddressSanitizer unless FUZZ_SANITIZER says otherwise (`none` where the
# toolchain lacks the ASan runtime). Seeds come from fixtures/, detectors/,
# tests/data/ and the saved regressions; the growing corpus and any crash
# artifacts stay under the target directory (CARGO_TARGET_DIR, default
# target/), never in the tree. Exit status 1 when a target found a crash: the
# input is named on the output; save it under
# tests/data/fuzz-regressions/<target>/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

CARGO_FUZZ_VERSION=0.13.2
RUNS=${1:-10000}
TARGETS=${FUZZ_TARGETS:-envelope platform rules}
SANITIZER=${FUZZ_SANITIZER:-address}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/fuzz
WORK=$TARGET_DIR/work
export RUSTC_BOOTSTRAP=1

if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# Seeds: whole inputs for the envelope target, one message per file for the
# platform parser, rule files for the loader; plus every saved regression.
seed() {
  local target=$1 dir=$WORK/seeds/$1
  rm -rf "$dir"
  mkdir -p "$dir"
  case $target in
    envelope)
      find fixtures tests/data -type f ! -name '*.md' -exec cp -t "$dir" {} + ;;
    platform)
      python3 - "$dir" fixtures <<'EOF'
import hashlib, json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for path in pathlib.Path(sys.argv[2]).rglob("*"):
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, IsADirectoryError):
        continue
    for event in doc.get("logEvents", []) if isinstance(doc, dict) else []:
        message = event.get("message", "").encode()
        (out / hashlib.sha1(message).hexdigest()).write_bytes(message)
EOF
      ;;
    rules)
      cp detectors/*.yaml "$dir" ;;
  esac
  if [ -d "tests/data/fuzz-regressions/$target" ]; then
    cp tests/data/fuzz-regressions/"$target"/* "$dir" 2>/dev/null || true
  fi
}

# Small inputs where the surface is small; envelopes need room for a payload.
max_len() {
  case $1 in
    envelope) echo 16384 ;;
    platform) echo 2048 ;;
    rules) echo 16384 ;;
  esac
}

status=0
total=0
mkdir -p "$WORK"
printf '%-10s %14s %10s %10s\n' target executions seconds exec/s | tee "$WORK.summary"
for target in $TARGETS; do
  seed "$target"
  corpus=$WORK/corpus/$target
  artifacts=$WORK/artifacts/$target/
  mkdir -p "$corpus" "$artifacts"
  if [ -n "${FUZZ_SECONDS:-}" ]; then
    limit=(-max_total_time="$FUZZ_SECONDS")
  else
    limit=(-runs="$RUNS")
  fi
  log=$WORK/$target.log
  cargo fuzz build --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR" "$target"
  echo "=== $target (${limit[*]}, max_len $(max_len "$target"), sanitizer $SANITIZER)"
  start=$(date +%s.%N)
  set +e
  cargo fuzz run --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR" "$target" "$corpus" "$WORK/seeds/$target" -- \
    "${limit[@]}" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts" > "$log" 2>&1
  rc=$?
  set -e
  end=$(date +%s.%N)
  execs=$(awk '/stat::number_of_executed_units:/ { n = $2 } END { print n + 0 }' "$log")
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  rate=$(awk -v n="$execs" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
  total=$((total + execs))
  printf '%-10s %14d %10s %10s\n' "$target" "$execs" "$secs" "$rate" | tee -a "$WORK.summary"
  if [ "$rc" -ne 0 ]; then
    status=1
    echo "!!! $target failed (exit $rc); log $log; inputs:" >&2
    ls "$artifacts" >&2
    grep -m5 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" >&2 || true
  fi
done
printf '%-10s %14d\n' total "$total" | tee -a "$WORK.summary"
exit "$status"
