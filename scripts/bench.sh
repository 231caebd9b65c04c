#!/usr/bin/env bash
# Throughput benchmark: logwarden beside the bench kit's yardsticks.
#
#   scripts/bench.sh [--files N] [--runs N] [--formats "text json"] [--starts N]
#                    [--no-build]
#
# In one run:
#   1. builds logwarden and logwarden-detector (release) and the kit's
#      decode-only floor (into <target>/bench/floor; nothing is written into
#      the kit),
#   2. generates seeded corpora with the kit's gen.py (Lambda text and JSON log
#      formats) under <target>/bench/corpus/, reusing them when manifest.json
#      and gen.py are unchanged,
#   3. runs interleaved rounds of floor, `logwarden replay --output json` (all
#      cores), `logwarden replay --threads 1 --output json` and the kit's
#      Python peer, each under /usr/bin/time -v, rotating the order every
#      round; the --threads 1 row is skipped, with a note, when the binary's
#      `replay --help` has no --threads,
#   4. prints, per corpus, whole-process MB/s (decoded bytes / wall seconds)
#      min/median/max, CPU MB/s, peak RSS, and the per-round ratios of each
#      logwarden row to the floor and to the peer,
#   5. runs logwarden-detector under a Lambda Runtime API stand-in
#      (scripts/lambda_standin.py, 127.0.0.1 only, no topic: alerts are
#      logged): start-up from process start to its first
#      `GET /2018-06-01/runtime/invocation/next` (median of --starts, default
#      10), and its peak RSS (VmHWM) after one ~1 MB corpus batch,
#   6. prints the target check (measured / target / met or NOT MET):
#      logwarden/floor >= 1.25, --threads 1/floor >= 0.9, logwarden/peer >= 6,
#      replay peak RSS <= 32 MiB per corpus; detector one-batch RSS <= 16.5 MiB,
#      start-up <= 20 ms; then a Markdown table for the README (program, MB/s
#      median, x floor, x peer, peak RSS, plus the detector lines).
# It reports; it does not gate: targets not met do not change the exit status.
# Exit 0 when every program ran and passed its own checks, 1 when any failed
# (details printed), 2 on usage or setup errors.
#
# The kit is ../shared/bench beside the repository (LOGWARDEN_BENCH_KIT
# overrides).  Environment defaults: BENCH_FILES (64), BENCH_RUNS (5),
# BENCH_FORMATS ("text json"), BENCH_SEED (1), BENCH_STARTS (10),
# BENCH_OUT (<target>/bench).
set -euo pipefail

die() { echo "bench: $*" >&2; exit 2; }

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
kit_in="${LOGWARDEN_BENCH_KIT:-$here/../../shared/bench}"

files="${BENCH_FILES:-64}"
runs="${BENCH_RUNS:-5}"
formats="${BENCH_FORMATS:-text json}"
seed="${BENCH_SEED:-1}"
starts="${BENCH_STARTS:-10}"
build=1

while [[ $# -gt 0 ]]; do
    case "$1" in
        --files) [[ $# -ge 2 ]] || die "--files needs a value"; files="$2"; shift 2 ;;
        --files=*) files="${1#*=}"; shift ;;
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; runs="$2"; shift 2 ;;
        --runs=*) runs="${1#*=}"; shift ;;
        --formats) [[ $# -ge 2 ]] || die "--formats needs a value"; formats="$2"; shift 2 ;;
        --formats=*) formats="${1#*=}"; shift ;;
        --starts) [[ $# -ge 2 ]] || die "--starts needs a value"; starts="$2"; shift 2 ;;
        --starts=*) starts="${1#*=}"; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done

for v in files runs seed starts; do
    [[ "${!v}" =~ ^[0-9]+$ && "${!v}" -ge 1 ]] || die "$v must be a positive integer, got '${!v}'"
done
read -r -a format_list <<< "${formats//,/ }"
[[ ${#format_list[@]} -ge 1 ]] || die "no formats given"
for f in "${format_list[@]}"; do
    [[ "$f" == text || "$f" == json ]] || die "unknown format '$f' (text or json)"
done

# --- tools and kit ---------------------------------------------------------
if [[ ! -x /usr/bin/time ]]; then
    echo "bench: /usr/bin/time is missing (peak RSS comes from 'time -v'); install it with:" >&2
    echo "    sudo apt-get install -y time" >&2
    exit 1
fi
command -v python3 >/dev/null || die "python3 not found on PATH"
command -v cargo >/dev/null || die "cargo not found on PATH"

[[ -d "$kit_in" ]] || die "bench kit not found at $kit_in (set LOGWARDEN_BENCH_KIT)"
kit="$(cd "$kit_in" && pwd)"
for f in gen.py peer.py floor/Cargo.toml; do
    [[ -f "$kit/$f" ]] || die "bench kit at $kit has no $f"
done

# The repository's target directory, wherever cargo puts it.
target="$(cd "$root" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
          python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')" ||
    die "cargo metadata failed in $root"
out="${BENCH_OUT:-$target/bench}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
case "$out/" in
    "$kit"/*) die "BENCH_OUT ($out) is inside the bench kit; it must not be written to" ;;
esac

# --- 1. builds ---------------------------------------------------------------
logwarden="$target/release/logwarden"
detector="$target/release/logwarden-detector"
floor="$out/floor/release/floor"
if [[ $build -eq 1 ]]; then
    echo "== building logwarden and logwarden-detector (release)"
    (cd "$root" && cargo build --release --bin logwarden --bin logwarden-detector) ||
        { echo "bench: building logwarden or logwarden-detector failed" >&2; exit 1; }
    echo "== building the floor into $out/floor"
    # --locked: the kit is read-only; never rewrite its Cargo.lock.
    cargo build --release --locked --manifest-path "$kit/floor/Cargo.toml" \
        --target-dir "$out/floor" ||
        { echo "bench: building the floor failed" >&2; exit 1; }
fi
[[ -x "$logwarden" ]] || die "no logwarden binary at $logwarden (drop --no-build)"
[[ -x "$detector" ]] || die "no logwarden-detector binary at $detector (drop --no-build)"
[[ -x "$floor" ]] || die "no floor binary at $floor (drop --no-build)"

# --- 2. corpora --------------------------------------------------------------
# shellcheck source=scripts/corpus.sh
. "$here/corpus.sh"

corpora=()
for fmt in "${format_list[@]}"; do
    dir="$out/corpus/$fmt-files$files-seed$seed"
    ensure_corpus bench "$kit" "$dir" "$fmt" "$files" "$seed"
    corpora+=("$fmt=$dir")
done

# --- 3.-6. rounds, detector, targets and report ---------------------------------
rev="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    rev="$rev (working tree modified)"
fi

echo "== corpora: ${corpora[*]#*=}"
status=0
python3 "$here/bench.py" --runs "$runs" --logwarden "$logwarden" --floor "$floor" \
    --peer "$kit/peer.py" --detector "$detector" --starts "$starts" --rev "$rev" \
    "${corpora[@]}" || status=$?
exit "$status"
