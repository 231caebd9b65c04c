# Sourced by scripts/bench.sh and scripts/icount.sh: the bench kit's seeded
# corpora, generated once with its gen.py and reused while gen.py and the
# parameters are unchanged.

# ensure_corpus WHO KIT DIR FORMAT FILES SEED: make DIR hold that corpus,
# generating it when what is there does not match (exit 1 if gen.py fails).
ensure_corpus() {
    local who="$1" kit="$2" dir="$3" fmt="$4" files="$5" seed="$6" sum
    sum="$(sha256sum "$kit/gen.py" | cut -d' ' -f1)"
    if [[ -f "$dir/manifest.json" && -f "$dir/.gen.sha256" ]] &&
        [[ "$(cat "$dir/.gen.sha256")" == "$sum" ]] &&
        python3 - "$dir" "$fmt" "$files" "$seed" <<'EOF'
import glob, json, os, sys
d, fmt, files, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
m = json.load(open(os.path.join(d, "manifest.json")))
ok = (m.get("files") == files and m.get("seed") == seed and m.get("format") == fmt
      and isinstance(m.get("uncompressed_bytes"), int) and isinstance(m.get("events"), int)
      and len(glob.glob(os.path.join(d, "batch-*.json"))) == files)
sys.exit(0 if ok else 1)
EOF
    then
        echo "== corpus $fmt: reusing $dir"
        return 0
    fi
    echo "== corpus $fmt: generating $files files (seed $seed) into $dir"
    rm -rf "$dir" "$dir.tmp"
    mkdir -p "$dir.tmp"
    python3 "$kit/gen.py" --files "$files" --seed "$seed" --format "$fmt" \
        --out "$dir.tmp" >/dev/null ||
        { echo "$who: gen.py failed for format $fmt" >&2; rm -rf "$dir.tmp"; exit 1; }
    echo "$sum" > "$dir.tmp/.gen.sha256"
    mv "$dir.tmp" "$dir"
}
