#!/usr/bin/env bash
# Long fuzzing runs of the decoders (fuzz/, docs/fuzzing.md): one target
# at a time, one libFuzzer process (one core), MINUTES each, from the
# committed seed corpus. See bench/README.md ("fuzz-long.sh").
#
#   bench/fuzz-long.sh                  # every target, 10 minutes each
#   bench/fuzz-long.sh frame snapshot   # some targets
#   MINUTES=30 bench/fuzz-long.sh
#
# Settings (environment):
#   MINUTES     minutes per target (default 10)
#   SECS        seconds per target instead (for a quick try)
#   RSS_MB      libFuzzer's -rss_limit_mb (default 2048)
#   TIMEOUT     libFuzzer's -timeout, seconds per input (default 10)
#   OUT         output folder (default bench/out/fuzz/<UTC date-time>)
#
# Writes, under OUT:
#   bin/TARGET          the binaries of this run (built once, at the start)
#   TARGET/log          libFuzzer's output
#   TARGET/corpus/      what the run found (the committed seeds are only read)
#   TARGET/artifacts/   crashing, timing-out or memory-hungry inputs
#   results.tsv         one row per target (columns below)
#   results.md          the same as a Markdown table, with date, commit, machine
#
# Columns: seconds of the run, executions, executions per second, libFuzzer's
# final cov (edges covered) and ft (features), seeds (committed files),
# corpus (libFuzzer's final corpus units), new files written to the corpus
# folder, crashes (0 or 1: libFuzzer stops at the first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MINUTES=${MINUTES:-10}
SECS=${SECS:-$((MINUTES * 60))}
RSS_MB=${RSS_MB:-2048}
TIMEOUT=${TIMEOUT:-10}
OUT=${OUT:-bench/out/fuzz/$(date -u +%Y%m%d-%H%M%S)}

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo fuzz build --sanitizer none --debug-assertions
# What the binaries were built from, for the results' header.
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- . || commit="$commit (with uncommitted changes)"
started=$(date -u '+%Y-%m-%d %H:%M UTC')

if (($#)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# The runs use copies of the binaries built now, so a rebuild during the
# hour (an edit, another fuzz command) changes nothing in this run.
mkdir -p "$OUT/bin"
built=fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release
for target in "${targets[@]}"; do
    cp "$built/$target" "$OUT/bin/$target"
done
tsv=$OUT/results.tsv
printf 'target\tseconds\texecs\texec_per_s\tcov\tft\tseeds\tcorpus\tnew_files\tcrashes\n' >"$tsv"

# The value after "NAME:" on the last libFuzzer status line of a log
# ("#123  NEW  cov: 10 ft: 20 corp: 5/1Kb ..."), or nothing.
status_field() {
    awk -v key="$2:" '/^#[0-9]+[[:space:]]/ {
        for (i = 1; i < NF; i++) if ($i == key) value = $(i + 1)
    } END { print value }' "$1"
}

for target in "${targets[@]}"; do
    dir=$OUT/$target
    mkdir -p "$dir/corpus" "$dir/artifacts"
    echo "== $target: ${SECS}s (log: $dir/log)"
    start=$(date +%s)
    crashes=0
    # The new corpus folder comes first: libFuzzer writes what it finds
    # there, and only reads the committed seeds.
    "$OUT/bin/$target" -max_total_time="$SECS" -rss_limit_mb="$RSS_MB" -timeout="$TIMEOUT" \
        -artifact_prefix="$dir/artifacts/" -print_final_stats=1 \
        "$dir/corpus" "fuzz/corpus/$target" >"$dir/log" 2>&1 || crashes=1
    seconds=$(($(date +%s) - start))
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$dir/log" | tail -n 1)
    if [[ -z $execs ]]; then
        # A crash ends the run before the final stats: the last status line.
        execs=$(awk '/^#[0-9]+[[:space:]]/ { n = substr($1, 2) } END { print n }' "$dir/log")
    fi
    execs=${execs:-0}
    cov=$(status_field "$dir/log" cov)
    ft=$(status_field "$dir/log" ft)
    corp=$(status_field "$dir/log" corp)
    corp=${corp%%/*}
    seeds=$(find "fuzz/corpus/$target" -type f | wc -l)
    new_files=$(find "$dir/corpus" -type f | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$seconds" "$execs" \
        "$((execs / (seconds > 0 ? seconds : 1)))" "${cov:-?}" "${ft:-?}" "$seeds" \
        "${corp:-?}" "$new_files" "$crashes" >>"$tsv"
    tail -n 1 "$tsv"
done

{
    echo "Fuzzing run: started $started, commit $commit," \
        "$(nproc) cores, $(rustc --version | cut -d' ' -f1-2), ${SECS}s per target"
    echo
    echo "| target | time (s) | executions | exec/s | cov | ft | seeds | corpus | new files | crashes |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    tail -n +2 "$tsv" | while IFS=$'\t' read -r t s e r c f sd cp n x; do
        echo "| $t | $s | $e | $r | $c | $f | $sd | $cp | $n | $x |"
    done
} >"$OUT/results.md"
cat "$OUT/results.md"
if awk -F'\t' 'NR > 1 && $10 == 1 { found = 1 } END { exit !found }' "$tsv"; then
    echo "crashes found: see $OUT/*/artifacts/" >&2
    exit 1
fi
