#!/usr/bin/env bash
# Soak test: the real logwarden-detector under the Lambda Runtime API
# stand-in, fed CloudWatch Logs batches at a sustained rate for N minutes,
# with SNS and DynamoDB faults injected at random (seeded) between it and
# moto; then counts the alerts at an SQS queue subscribed to the topic (0
# lost, 0 unexplained duplicates) and checks that its RSS stays flat. What it
# checks and why: the header of tests/it/soak.rs.
#
#   scripts/soak.sh [--minutes N] [--rate BATCHES_PER_S] [--fault-p P]
#                   [--seed N] [--no-sns-lost-answers] [--rss-growth PCT]
#                   [--release] [--summary FILE]
#
# Needs moto: MOTO_ENDPOINT (as .ci/run exports it). Without it, the script
# starts moto_server from PATH on a free 127.0.0.1 port for the run and stops
# it (by PID) afterwards. Exits non-zero on any violation.
#
# The build is the debug (test) profile by default: it reuses what
# `cargo test` builds. --release builds the release profile (fat LTO: slow to
# build, but the RSS of the binary Lambda runs).
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=()
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) export SOAK_MINUTES="$2"; shift 2 ;;
    --rate) export SOAK_RATE="$2"; shift 2 ;;
    --fault-p) export SOAK_FAULT_P="$2"; shift 2 ;;
    --seed) export SOAK_SEED="$2"; shift 2 ;;
    --no-sns-lost-answers) export SOAK_SNS_LOST_ANSWERS=0; shift ;;
    --rss-growth) export SOAK_RSS_GROWTH_PCT="$2"; shift 2 ;;
    --summary) export SOAK_SUMMARY="$2"; shift 2 ;;
    --release) PROFILE=(--release); shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

MOTO_PID=
cleanup() { [ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null || true; }
trap cleanup EXIT
if [ -z "${MOTO_ENDPOINT:-}" ]; then
  command -v moto_server > /dev/null || { echo "soak.sh: set MOTO_ENDPOINT or put moto_server on PATH" >&2; exit 2; }
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  moto_server -H 127.0.0.1 -p "$PORT" > "${TMPDIR:-/tmp}/logwarden-soak-moto.log" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 150); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/moto-api/" && break
    sleep 0.2
  done
  export MOTO_ENDPOINT="http://127.0.0.1:$PORT"
fi
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test \
  AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true

echo "soak: ${SOAK_MINUTES:-1} min at ${SOAK_RATE:-1} batches/s, fault p ${SOAK_FAULT_P:-0.2}, seed ${SOAK_SEED:-1}, moto $MOTO_ENDPOINT, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# The soak is one #[ignore]d test of the `it` binary; the filter keeps the
# other ignored test (bad_input's measuring helper) out.
cargo test --locked "${PROFILE[@]}" --test it soak:: -- --ignored --nocapture --test-threads 1
