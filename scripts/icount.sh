#!/usr/bin/env bash
# Instruction-count guard: a fixed replay counted by callgrind, compared with
# the budget committed in .ci/icount-budget.toml. Instruction counts do not
# drift with load the way seconds do, so a 10 % margin is enough.
#
#   scripts/icount.sh [--update] [--budget FILE] [--formats "text json"] [--no-build]
#
#   1. builds the release `logwarden` (cargo build --release --locked; a no-op
#      when it is up to date, so CI reuses the binary its earlier steps built;
#      --no-build takes <target>/release/logwarden as it is),
#   2. generates, or reuses when manifest.json and gen.py are unchanged, a small
#      fixed corpus per log format with the bench kit's gen.py
#      (--files 8 --seed 1: 8 Lambda events of ~1 MB decoded each) under
#      <target>/icount/corpus/,
#   3. runs `logwarden replay --threads 1 --output json CORPUS/batch-*.json` under
#      `valgrind --tool=callgrind` in an empty environment (built-in rule pack,
#      no LOGWARDEN_* or AWS_* variables), checks from its stderr summary that
#      it saw every batch and event of the manifest with no input error, and
#      takes the total instructions executed (Ir) of the whole process:
#      start-up and rule compilation included,
#   4. divides by the decoded megabytes: the manifest's uncompressed_bytes, the
#      sum of the gunzipped CloudWatch Logs payloads (the DATA_MESSAGE JSON
#      documents, before any line is split out) / 10^6. The replay does not
#      report a byte count; it is checked to have read the manifest's batches
#      and events instead,
#   5. prints measured / budget / ratio per format.
#
# Exit 1 when a figure exceeds its budget by more than 10 % (or a run failed);
# a figure more than 10 % below its budget is printed as a hint to lower the
# budget, without failing. Exit 2 on usage or setup errors (no valgrind, no
# kit, a format missing from the budget).
#
# --update rewrites the budget file with the measured figures (for the formats
# measured; others are kept), each with the commit measured and the date. The
# commit that updates the budget must say why the count moved (see the file's
# header). --budget FILE compares with (or updates) FILE instead of
# .ci/icount-budget.toml, e.g. a lowered copy to see the guard fail.
#
# Counts depend on the machine kind: flate2/zlib-rs picks its inflate and
# CRC-32 code at run time from the CPU features valgrind reports, and the
# valgrind version matters too. The budget was set on the CI machine kind.
#
# The kit is ../shared/bench beside the repository (LOGWARDEN_BENCH_KIT
# overrides), as for scripts/bench.sh. ICOUNT_OUT overrides <target>/icount.
set -euo pipefail

die() { echo "icount: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
kit_in="${LOGWARDEN_BENCH_KIT:-$here/../../shared/bench}"

# The fixed corpus. Changing these changes every figure: update the budget.
FILES=8
SEED=1
# Allowed excess over the budget, and the gap below it that earns a hint, in %.
MARGIN=10

budget="$root/.ci/icount-budget.toml"
formats="text json"
update=0
build=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --update) update=1; shift ;;
        --budget) [[ $# -ge 2 ]] || die "--budget needs a file"; budget="$2"; shift 2 ;;
        --budget=*) budget="${1#*=}"; shift ;;
        --formats) [[ $# -ge 2 ]] || die "--formats needs a value"; formats="$2"; shift 2 ;;
        --formats=*) formats="${1#*=}"; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done
read -r -a format_list <<< "${formats//,/ }"
[[ ${#format_list[@]} -ge 1 ]] || die "no formats given"
for f in "${format_list[@]}"; do
    [[ "$f" == text || "$f" == json ]] || die "unknown format '$f' (text or json)"
done
if [[ $update -eq 0 ]]; then
    [[ -f "$budget" ]] || die "no budget file at $budget (scripts/icount.sh --update writes one)"
fi

# --- tools and kit -------------------------------------------------------------
valgrind="$(command -v valgrind)" ||
    die "valgrind not found on PATH (Debian: apt-get install -y valgrind)"
command -v python3 >/dev/null || die "python3 not found on PATH"
command -v cargo >/dev/null || die "cargo not found on PATH"
[[ -f "$kit_in/gen.py" ]] || die "bench kit gen.py not found at $kit_in (set LOGWARDEN_BENCH_KIT)"
kit="$(cd "$kit_in" && pwd)"

target="$(cd "$root" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
          python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')" ||
    die "cargo metadata failed in $root"
out="${ICOUNT_OUT:-$target/icount}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
case "$out/" in
    "$kit"/*) die "ICOUNT_OUT ($out) is inside the bench kit; it must not be written to" ;;
esac

# --- 1. the binary ---------------------------------------------------------------
logwarden="$target/release/logwarden"
if [[ $build -eq 1 ]]; then
    echo "== cargo build --release --locked --bin logwarden"
    (cd "$root" && cargo build --release --locked --bin logwarden) ||
        { echo "icount: building logwarden failed" >&2; exit 1; }
fi
[[ -x "$logwarden" ]] || die "no logwarden binary at $logwarden (drop --no-build)"

# --- 2. corpora --------------------------------------------------------------------
# shellcheck source=scripts/corpus.sh
. "$here/corpus.sh"
manifest() { # dir key
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1] + "/manifest.json"))[sys.argv[2]])' "$1" "$2"
}

# --- 3.-4. counts --------------------------------------------------------------------
rev="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
# "+modified" when what the binary is built from differs from that commit.
if [[ -n "$(git -C "$root" status --porcelain -- src detectors build.rs Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    rev="$rev+modified"
fi
declare -A measured mbytes
failed=0
for fmt in "${format_list[@]}"; do
    dir="$out/corpus/$fmt-files$FILES-seed$SEED"
    ensure_corpus icount "$kit" "$dir" "$fmt" "$FILES" "$SEED"
    bytes="$(manifest "$dir" uncompressed_bytes)"
    events="$(manifest "$dir" events)"
    cg="$out/callgrind.$fmt.out"
    rm -f "$cg"
    echo "== $fmt: callgrind, logwarden replay --threads 1 --output json ($FILES files, $bytes decoded bytes)"
    start=$SECONDS
    rc=0
    env -i PATH=/usr/bin:/bin LC_ALL=C \
        "$valgrind" --tool=callgrind --callgrind-out-file="$cg" \
        "$logwarden" replay --threads 1 --output json "$dir"/batch-*.json \
        > "$out/alerts.$fmt.json" 2> "$out/stderr.$fmt.txt" || rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "icount: $fmt: the replay under callgrind exited $rc; its stderr:" >&2
        tail -n 20 "$out/stderr.$fmt.txt" >&2
        failed=1
        continue
    fi
    # The counts between alerts and input errors (resolved, suppressed, …)
    # vary with what happened; batches, events, alerts and errors are read.
    summary="$(grep -Eo 'logwarden: [0-9]+ input\(s\), [0-9]+ batch\(es\), [0-9]+ event\(s\), [0-9]+ alert\(s\)(, [0-9]+ [a-z]+)*, [0-9]+ input error\(s\)' \
               "$out/stderr.$fmt.txt" | tail -n 1)" || true
    read -r s_batches s_events s_alerts s_errors < <(
        sed -E 's/.* ([0-9]+) batch\(es\), ([0-9]+) event\(s\), ([0-9]+) alert\(s\)(, [0-9]+ [a-z]+)*, ([0-9]+) input error.*/\1 \2 \3 \5/' \
            <<< "${summary:-x}") || true
    if [[ -z "$summary" || "$s_batches" != "$FILES" || "$s_events" != "$events" || "$s_errors" != 0 ]]; then
        echo "icount: $fmt: the replay did not read the whole corpus (manifest: $FILES batches," \
             "$events events); its summary: ${summary:-none}" >&2
        failed=1
        continue
    fi
    # callgrind writes "totals: <Ir>" (older versions only "summary: <Ir>").
    ir="$(awk '/^totals:/ { t = $2 } /^summary:/ { s = $2 } END { print (t != "" ? t : s) }' "$cg")"
    [[ "$ir" =~ ^[0-9]+$ ]] || { echo "icount: $fmt: no instruction total in $cg" >&2; failed=1; continue; }
    measured[$fmt]=$(( (ir * 1000000 + bytes / 2) / bytes ))
    mbytes[$fmt]="$bytes"
    echo "   $ir instructions, $s_alerts alert(s), $((SECONDS - start)) s under callgrind"
done

# --- 5. compare or update ---------------------------------------------------------------
fmt_int() { sed -E ':a; s/([0-9])([0-9]{3})($|,)/\1,\2\3/; ta' <<< "$1"; }
budget_of() { # fmt -> the budget figure, or nothing
    [[ -f "$budget" ]] || return 0
    sed -nE "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*([0-9_]+).*/\1/p" "$budget" | tail -n 1 | tr -d _
}

if [[ $update -eq 1 ]]; then
    [[ $failed -eq 0 ]] || { echo "icount: a run failed; the budget is not updated" >&2; exit 1; }
    today="$(date -u +%Y-%m-%d)"
    new="$(mktemp)"
    if [[ -f "$budget" ]]; then
        # Keep the header and the lines of formats not measured now.
        keep_re="^[[:space:]]*($(IFS='|'; echo "${format_list[*]}"))[[:space:]]*="
        grep -Ev "$keep_re" "$budget" > "$new" || true
    else
        cat > "$new" <<'EOF'
# Instruction budget of scripts/icount.sh: callgrind instructions per decoded MB
# (10^6 bytes of gunzipped CloudWatch Logs payload) of
# `logwarden replay --threads 1 --output json` over gen.py --files 8 --seed 1,
# whole process. .ci/run fails when a figure exceeds its budget by more than 10 %.
EOF
    fi
    for fmt in "${format_list[@]}"; do
        printf '%s = %d  # %s MB decoded; set at %s on %s\n' "$fmt" "${measured[$fmt]}" \
            "$(awk -v b="${mbytes[$fmt]}" 'BEGIN { printf "%.2f", b / 1e6 }')" "$rev" "$today" >> "$new"
    done
    mv "$new" "$budget"
    echo "== wrote $budget:"
    grep -E '^[[:space:]]*[a-z]+[[:space:]]*=' "$budget"
    echo "Commit it with a message that says why the count moved."
    exit 0
fi

echo
printf '%-6s %18s %18s %8s  %s\n' corpus "measured Ir/MB" "budget Ir/MB" ratio result
status=$failed
for fmt in "${format_list[@]}"; do
    [[ -n "${measured[$fmt]:-}" ]] || { printf '%-6s %18s\n' "$fmt" "run failed"; continue; }
    b="$(budget_of "$fmt")"
    if [[ -z "$b" || "$b" -le 0 ]]; then
        echo "icount: $budget has no figure for '$fmt' (scripts/icount.sh --update --formats $fmt)" >&2
        exit 2
    fi
    m="${measured[$fmt]}"
    ratio="$(awk -v m="$m" -v b="$b" 'BEGIN { printf "%.3f", m / b }')"
    if (( m * 100 > b * (100 + MARGIN) )); then
        result="FAIL: more than $MARGIN % over budget"
        status=1
    elif (( m * 100 < b * (100 - MARGIN) )); then
        result="ok, more than $MARGIN % under budget: lower it (scripts/icount.sh --update)"
    else
        result="ok"
    fi
    printf '%-6s %18s %18s %8s  %s\n' "$fmt" "$(fmt_int "$m")" "$(fmt_int "$b")" "$ratio" "$result"
done
if [[ $status -ne 0 ]]; then
    echo
    echo "icount: instructions per MB rose more than $MARGIN % above $budget (or a run failed)."
    echo "If the rise is intended, run scripts/icount.sh --update and commit the new budget"
    echo "with a message that says why. Profile with the callgrind files in $out."
fi
exit "$status"
