#!/usr/bin/env bash
# Checks of infra/template.yaml (the central account) and infra/member.yaml
# (member accounts, rolled out with StackSets), run by .ci/run from the repository root inside
# the venv that has .ci/requirements-infra.txt installed:
#
#   bash infra/check.sh
#
#   1. pinned tool versions are the ones installed
#   2. the generated log-group slots of the template are up to date
#   3. cfn-lint infra/template.yaml and infra/member.yaml: no error, no warning
#   4. offline translation (aws-sam-translator) of eight parameter scenarios, plus
#      static checks of what the emulator ignores (infra/smoke_moto.py --offline);
#      the member template's parameter and static checks (infra/smoke_member.py --offline)
#   5. cfn-lint of the translated CloudFormation (each distinct translation)
#   6. checkov (offline, --skip-download) of the template, of a copy per
#      scenario whose parameter defaults are the scenario's values (checkov
#      evaluates conditions with the defaults and skips resources they exclude,
#      so the Kinesis and account-policy resources are only seen this way), and
#      of the translated template: no failed check, no parsing error, and every
#      skip carries a written reason in the resource's Metadata
#   7. smoke test: each scenario creates a stack in moto (CREATE_COMPLETE),
#      outputs resolve, key resources exist, the stack deletes; the same for each
#      member scenario (infra/smoke_member.py)
#
# Environment:
#   CHECKOV_VENV  venv for checkov, which cannot share the main venv (it pins
#                 boto3==1.35.49). Default: ~/.cache/logwarden/checkov-3.3.30
#                 (XDG_CACHE_HOME honoured), outside the clone so that CI runs on
#                 the same machine reuse it; created and installed from
#                 infra/requirements-checkov.txt whenever missing or not 3.3.30.
#                 CHECKOV_VENV=.venv-checkov keeps it in the work tree instead.
#   INFRA_MOTO    private (default): start a moto_server of our own on a free
#                 127.0.0.1 port and stop it by PID afterwards. Lambda functions
#                 created in a moto server make its /moto-api/data.json answer
#                 HTTP 500 until a reset (moto keeps every model instance), so the
#                 smoke test stays away from the server other tests read.
#                 shared: use MOTO_ENDPOINT as it is.
#   MOTO_ENDPOINT the shared moto server (INFRA_MOTO=shared only)
#
# Prints what it checks; exits 1 if any step failed (all steps run regardless).
# The cargo-lambda build is separate: infra/build.sh.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
TEMPLATE=infra/template.yaml
MEMBER=infra/member.yaml
CHECKOV_VERSION=3.3.30
CHECKOV_VENV=${CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/logwarden/checkov-$CHECKOV_VERSION}
INFRA_MOTO=${INFRA_MOTO:-private}
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-$AWS_REGION}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_EC2_METADATA_DISABLED=true
export PIP_DISABLE_PIP_VERSION_CHECK=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/logwarden-infra.XXXXXX")
MOTO_PID=""
PASSED=()
FAILED=()

cleanup() {
    if [[ -n "$MOTO_PID" ]]; then
        kill "$MOTO_PID" 2>/dev/null
        wait "$MOTO_PID" 2>/dev/null
    fi
    if ((${#FAILED[@]} == 0)); then
        rm -rf "$WORK"
    else
        echo "(kept $WORK for inspection)"
    fi
}
trap cleanup EXIT

step() { printf '\n### %s\n' "$*"; STEP_START=$(date +%s%N); }
result() {  # result NAME RC
    local tenths took
    tenths=$((($(date +%s%N) - STEP_START) / 100000000))
    took="$((tenths / 10)).$((tenths % 10))"
    if [[ "$2" == 0 ]]; then
        PASSED+=("$1")
        echo "--> ok: $1 (${took} s)"
    else
        FAILED+=("$1")
        echo "--> FAILED: $1 (exit $2, ${took} s)"
    fi
}

for t in "$TEMPLATE" "$MEMBER"; do
    if [[ ! -f "$t" ]]; then
        echo "infra/check.sh: $t not found" >&2
        exit 1
    fi
done
for tool in python cfn-lint moto_server; do
    if ! command -v "$tool" >/dev/null; then
        echo "infra/check.sh: $tool not on PATH; activate the venv with .ci/requirements-infra.txt" >&2
        exit 1
    fi
done

# ----------------------------------------------------------------------- 1
step "1/7 pinned versions (.ci/requirements-infra.txt) are installed"
python - .ci/requirements-infra.txt <<'EOF'
import re, sys
from importlib.metadata import version, PackageNotFoundError
bad = 0
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", line)
    if not m:
        print(f"  not an exact pin: {line}"); bad = 1; continue
    name, want = m.group(1), m.group(3)
    try:
        have = version(name)
    except PackageNotFoundError:
        have = None
    print(f"  {name}=={want}: installed {have}")
    bad |= have != want
sys.exit(bad)
EOF
result "pinned versions installed" $?

# ----------------------------------------------------------------------- 2
step "2/7 generated subscription slots up to date (infra/gen_subscriptions.py --check)"
python infra/gen_subscriptions.py --check
result "generated slots up to date" $?

# ----------------------------------------------------------------------- 3
step "3/7 cfn-lint $TEMPLATE $MEMBER (exit 0 = no error, no warning)"
cfn-lint --version
cfn-lint -- "$TEMPLATE" "$MEMBER"
result "cfn-lint templates" $?

# ----------------------------------------------------------------------- 4
step "4/7 translate offline (aws-sam-translator) and check statically"
python infra/smoke_moto.py --offline "$WORK/translated"
static_rc=$?
python infra/smoke_member.py --offline
member_rc=$?
result "translate + static checks" $((static_rc | member_rc))

# ----------------------------------------------------------------------- 5
step "5/7 cfn-lint the translated CloudFormation"
shopt -s nullglob
variants=("$WORK"/translated/*.template.json)
# Scenarios differ in parameter values, which SAM's output does not depend on
# today: keep one file per distinct translation.
translated=()
while read -r _ file; do translated+=("$file"); done < <(
    for f in "$WORK"/translated/*.translated.json; do md5sum "$f"; done | sort -u -k1,1)
if ((${#translated[@]} == 0)); then
    echo "no translated templates (step 4 failed)"
    result "cfn-lint translated" 1
else
    cfn-lint -- "${translated[@]}"
    result "cfn-lint translated (${#translated[@]} distinct)" $?
fi

# ----------------------------------------------------------------------- 6
step "6/7 checkov $CHECKOV_VERSION offline (--skip-download), own venv $CHECKOV_VENV"
checkov_ready() {
    [[ -x "$CHECKOV_VENV/bin/checkov" ]] && [[ "$("$CHECKOV_VENV/bin/checkov" --version 2>/dev/null)" == "$CHECKOV_VERSION" ]]
}
if ! checkov_ready; then
    echo "installing checkov into $CHECKOV_VENV"
    rm -rf "$CHECKOV_VENV"
    mkdir -p "$(dirname "$CHECKOV_VENV")"
    python -m venv "$CHECKOV_VENV" && "$CHECKOV_VENV/bin/pip" install -q -r infra/requirements-checkov.txt
fi
if ! checkov_ready; then
    echo "checkov $CHECKOV_VERSION could not be installed into $CHECKOV_VENV"
    result "checkov" 1
else
    files=("$TEMPLATE" "$MEMBER" "${variants[@]}" "${translated[@]}")
    args=()
    for f in "${files[@]}"; do args+=(-f "$f"); done
    "$CHECKOV_VENV/bin/checkov" "${args[@]}" --framework cloudformation --skip-download \
        --output json > "$WORK/checkov.json" 2> "$WORK/checkov.err"
    checkov_rc=$?
    cat "$WORK/checkov.err"
    python - "$WORK/checkov.json" "$checkov_rc" "$ROOT" "$MEMBER" "${files[@]}" <<'EOF'
import json, os, sys
report, rc, root, member, files = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
data = json.load(open(report))
reports = data if isinstance(data, list) else [data]
bad = 0
passed, failed, skipped, scanned = [], [], [], {}
for rep in reports:
    if rep.get("check_type") != "cloudformation":
        continue
    s = rep["summary"]
    if s.get("parsing_errors"):
        print(f"  parsing errors: {s['parsing_errors']}"); bad = 1
    for kind, bucket in (("passed_checks", passed), ("failed_checks", failed), ("skipped_checks", skipped)):
        for c in rep["results"].get(kind, []):
            path = os.path.normpath(os.path.join(root, c["file_path"].lstrip("/")))
            bucket.append((c, path))
            scanned.setdefault(path, set()).add(c["resource"])
for c, path in failed:
    print(f"  FAILED {c['check_id']} {c['resource']} ({os.path.basename(path)}): {c['check_name']}"); bad = 1
reasons = {}
for c, path in skipped:
    comment = (c.get("check_result") or {}).get("suppress_comment") or ""
    if len(comment.strip()) < 40 or comment.strip() == "No comment provided":
        print(f"  skip without a written reason: {c['check_id']} {c['resource']} ({path})"); bad = 1
    reasons.setdefault((c["check_id"], c["resource"].split(".")[-1]), comment.strip())
for f in files:
    n = len(scanned.get(os.path.normpath(os.path.abspath(f)), ()))
    print(f"  {os.path.relpath(f, root) if f.startswith(root) else os.path.basename(f)}: {n} resources checked")
    if n == 0 and f == member:
        # checkov 3.3.30 has no check for AWS::Logs::AccountPolicy or
        # AWS::Logs::SubscriptionFilter, the member template's only types: it
        # passes with nothing to check (smoke_member.py checks them).
        print("    no checkov check applies to its resource types (AccountPolicy, SubscriptionFilter)")
    elif n == 0:
        print("    nothing was checked in this file"); bad = 1
print(f"  checkov: {len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped (exit {rc})")
for (check, resource), comment in sorted(reasons.items()):
    print(f"  skipped {check} on {resource}: {comment}")
if rc != 0 and not failed:
    print("  checkov exited non-zero"); bad = 1
sys.exit(1 if bad else 0)
EOF
    result "checkov (${#files[@]} templates)" $?
fi

# ----------------------------------------------------------------------- 7
step "7/7 smoke test in moto ($INFRA_MOTO server)"
smoke_rc=1
if [[ "$INFRA_MOTO" == shared ]]; then
    if [[ -z "${MOTO_ENDPOINT:-}" ]]; then
        echo "INFRA_MOTO=shared needs MOTO_ENDPOINT"
    else
        AWS_ENDPOINT_URL=$MOTO_ENDPOINT python infra/smoke_moto.py
        smoke_rc=$?
        AWS_ENDPOINT_URL=$MOTO_ENDPOINT python infra/smoke_member.py || smoke_rc=1
    fi
else
    port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    moto_server -H 127.0.0.1 -p "$port" > "$WORK/moto.log" 2>&1 &
    MOTO_PID=$!
    endpoint="http://127.0.0.1:$port"
    if python - "$endpoint" <<'EOF'
import sys, time, urllib.request
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
EOF
    then
        echo "moto_server pid $MOTO_PID on $endpoint"
        AWS_ENDPOINT_URL=$endpoint MOTO_ENDPOINT=$endpoint python infra/smoke_moto.py
        smoke_rc=$?
        AWS_ENDPOINT_URL=$endpoint MOTO_ENDPOINT=$endpoint python infra/smoke_member.py || smoke_rc=1
    else
        echo "moto_server did not answer on $endpoint:"; tail -20 "$WORK/moto.log"
    fi
    kill "$MOTO_PID" 2>/dev/null
    wait "$MOTO_PID" 2>/dev/null
    MOTO_PID=""
fi
result "moto smoke test" $smoke_rc

# ----------------------------------------------------------------------- end
echo
for name in "${PASSED[@]}"; do echo "  ok      $name"; done
for name in "${FAILED[@]}"; do echo "  FAILED  $name"; done
echo "infra: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
((${#FAILED[@]} == 0))
