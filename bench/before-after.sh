#!/usr/bin/env bash
# Before and after: the daemon's performance figures for two commits, side
# by side in one run, so a change can show it made nothing slower.
#
#   bench/before-after.sh BEFORE [AFTER]
#
# BEFORE and AFTER are commits (AFTER defaults to HEAD). Each is built in a
# temporary git worktree (release: mayflyd, mayflyctl, mayfly-bench; its own
# CARGO_TARGET_DIR under target/, so later runs build incrementally). Then,
# for each section of bench/durability-perf.sh in SECTIONS, the section runs
# for BEFORE and then for AFTER (each REPEAT times, median reported), and
# after them the CLI figures of bench/compare:
#   status   `mayflyctl status --json` with STATUS_JOBS (10,000) queued jobs
#   submit   `mayflyctl submit -- true`, one process per call
# each CLI_CALLS (200) calls timed by lat-loop, alternating the builds in
# CLI_ROUNDS (3) rounds. Every build talks to its own daemon with its own
# client, so protocol changes between the two do not matter. Last, end to
# end: E2E_JOBS (1,000) `true` jobs from one `submit --stdin`, drained at
# each concurrency of E2E_PARALLEL ("2 8") with a `wait` on every id, next
# to `xargs -P N -n 1 true` over as many lines; E2E_ROUNDS (5) rounds, the
# three interleaved in each (bench/compare's e2e figure, for two builds).
#
# Knobs (environment): SECTIONS ("tp rtt restart depth scrape"; empty for none), REPEAT (3),
# and the knobs of bench/durability-perf.sh (CLIENTS, RESTART_JOBS, ...),
# STATUS_JOBS, CLI_CALLS, CLI_ROUNDS, E2E_JOBS, E2E_PARALLEL, E2E_ROUNDS
# (0 skips a part), E2E_LANG (below), OUT_DIR (bench/out/before-after).
#
# Run it at least five minutes after anything deleted many files on the
# same file system (another run's clean-up, a `cargo clean`): ext4 skips
# recently freed inodes when it creates one, and the two output files of
# every job then cost more than everything else (bench/RESULTS.md).
# The table goes to OUT_DIR/table.md; each build's full summaries stay
# next to it. Daemons run in a private temp dir and are stopped by PID.
set -euo pipefail

(($# >= 1 && $# <= 2)) || {
    echo "usage: bench/before-after.sh BEFORE [AFTER]" >&2
    exit 2
}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
before=$(git rev-parse --short "$1^{commit}")
after=$(git rev-parse --short "${2:-HEAD}^{commit}")
SECTIONS=${SECTIONS-"tp rtt restart depth scrape"}
export REPEAT=${REPEAT:-3}
STATUS_JOBS=${STATUS_JOBS:-10000}
CLI_CALLS=${CLI_CALLS:-200}
CLI_ROUNDS=${CLI_ROUNDS:-3}
E2E_JOBS=${E2E_JOBS:-1000}
E2E_PARALLEL=${E2E_PARALLEL:-"2 8"}
E2E_ROUNDS=${E2E_ROUNDS:-5}
out_dir=${OUT_DIR:-$root/bench/out/before-after}
rm -rf "$out_dir"
mkdir -p "$out_dir"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mayfly-before-after.XXXXXX")
declare -a PIDS=() TREES=()
cleanup() {
    local status=$? pid tree
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for tree in "${TREES[@]}"; do
        git -C "$root" worktree remove --force "$tree" 2>/dev/null || true
    done
    git -C "$root" worktree prune 2>/dev/null || true
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# build REV: release binaries of REV in $tmp/bin-REV.
build() {
    local rev=$1 tree=$tmp/src-$1
    log "building $rev in a temporary worktree..."
    git worktree add --detach --quiet "$tree" "$rev"
    TREES+=("$tree")
    (cd "$tree" && CARGO_TARGET_DIR=$root/target/before-after \
        cargo build --release --quiet -p mayflyd -p mayflyctl -p mayfly-bench)
    mkdir -p "$tmp/bin-$rev"
    for b in mayflyd mayflyctl mayfly-load floor-client fsync-probe lat-loop; do
        cp "$root/target/before-after/release/$b" "$tmp/bin-$rev/"
    done
}
build "$before"
build "$after"

# The durability-perf sections, each for both builds in turn.
for section in $SECTIONS; do
    for rev in "$before" "$after"; do
        log "section $section: $rev"
        SECTIONS=$section OLD_REV= BIN_DIR=$tmp/bin-$rev COMMIT=$rev \
            OUT_DIR=$out_dir/$rev/$section bench/durability-perf.sh >/dev/null
    done
done

# wait_socket SOCKET CTL: until the daemon answers (at most 20 s).
wait_socket() {
    local i
    for ((i = 0; i < 200; i++)); do
        "$2" --socket "$1" status >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "before-after: the daemon at $1 did not answer within 20 s" >&2
    return 1
}

# median FILE: the median of the numbers in FILE, one per line.
median() {
    sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# The CLI figures: one daemon per build, alternating builds each round.
declare -A sockets=()
if ((CLI_ROUNDS > 0)); then
    for rev in "$before" "$after"; do
        dir=$tmp/cli-$rev
        mkdir -p "$dir/state"
        sockets[$rev]=$dir/mayfly.sock
        "$tmp/bin-$rev/mayflyd" --socket "$dir/mayfly.sock" --state-dir "$dir/state" \
            --http-addr off >"$dir/daemon.log" 2>&1 &
        PIDS+=($!)
        wait_socket "$dir/mayfly.sock" "$tmp/bin-$rev/mayflyctl"
        "$tmp/bin-$rev/mayflyctl" --socket "$dir/mayfly.sock" pause default >/dev/null
        "$tmp/bin-$rev/mayfly-load" fill --socket "$dir/mayfly.sock" --count "$STATUS_JOBS" >/dev/null
    done
fi
for ((round = 1; round <= CLI_ROUNDS; round++)); do
    for rev in "$before" "$after"; do
        ctl=$tmp/bin-$rev/mayflyctl
        log "CLI round $round: $rev"
        env -i PATH=/usr/bin:/bin "$tmp/bin-$after/lat-loop" "$CLI_CALLS" "$tmp/status.$rev.$round" \
            "$ctl" --socket "${sockets[$rev]}" status --json
        env -i PATH=/usr/bin:/bin "$tmp/bin-$after/lat-loop" "$CLI_CALLS" "$tmp/submit.$rev.$round" \
            "$ctl" --socket "${sockets[$rev]}" submit -- true
    done
done
if ((CLI_ROUNDS > 0)); then
    for rev in "$before" "$after"; do
        for what in status submit; do
            cat "$tmp/$what.$rev".* >"$out_dir/$what.$rev.us"
        done
    done
fi

# The job environment of the end-to-end runs, for xargs and the daemons:
# bench/compare's, with LANG=E2E_LANG (C.UTF-8; empty leaves LANG unset,
# which makes each `true` skip loading a locale).
E2E_LANG=${E2E_LANG-C.UTF-8}
E2E_ENV=(env -i PATH=/usr/local/bin:/usr/bin:/bin ${E2E_LANG:+LANG=$E2E_LANG})

# e2e_mayfly REV P: one end-to-end run of build REV at concurrency P, on a
# fresh daemon and state dir (kept until the end: on ext4, deleting files
# slows the creation of the next ones); prints its wall time in ms.
e2e_mayfly() {
    local bin=$tmp/bin-$1 p=$2 dir pid t0 t1
    dir=$(mktemp -d "$tmp/e2e-$1.XXXXXX")
    "${E2E_ENV[@]}" HOME="$dir" "$bin/mayflyd" --socket "$dir/s.sock" --state-dir "$dir/state" \
        --concurrency "$p" --http-addr off -q >"$dir/daemon.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_socket "$dir/s.sock" "$bin/mayflyctl"
    t0=$(date +%s%N)
    mapfile -t ids < <(yes true | head -n "$E2E_JOBS" |
        "${E2E_ENV[@]}" "$bin/mayflyctl" --socket "$dir/s.sock" submit --stdin)
    "$bin/mayflyctl" --socket "$dir/s.sock" wait "${ids[@]}" >/dev/null
    t1=$(date +%s%N)
    kill -TERM "$pid"
    wait "$pid" || true
    # Stopped and reaped: the clean-up must not signal its pid, which
    # another process may have by then.
    unset 'PIDS[-1]'
    echo $(((t1 - t0) / 1000000))
}

# e2e_xargs P: the floor, `xargs -P P`, over as many jobs; wall time in ms.
e2e_xargs() {
    local t0 t1
    t0=$(date +%s%N)
    seq "$E2E_JOBS" | "${E2E_ENV[@]}" xargs -P "$1" -n 1 true
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}

for ((round = 1; round <= E2E_ROUNDS; round++)); do
    for p in $E2E_PARALLEL; do
        log "e2e round $round at concurrency $p"
        e2e_xargs "$p" >>"$out_dir/e2e.p$p.xargs.ms"
        for rev in "$before" "$after"; do
            e2e_mayfly "$rev" "$p" >>"$out_dir/e2e.p$p.$rev.ms"
        done
    done
done

# The table: each durability-perf line's median for both builds, then the
# CLI medians.
{
    echo "Before/after, $(date -u +%Y-%m-%d): before = $before, after = $after"
    echo "machine: $(nproc) CPUs, $(free -h | awk '/^Mem:/ { print $2 }') RAM, kernel $(uname -r)"
    echo "median of REPEAT=$REPEAT runs per figure (durability-perf), of $((CLI_CALLS * CLI_ROUNDS)) calls (CLI)"
    echo
    echo "| figure | $before | $after | after/before |"
    echo "|---|---:|---:|---:|"
    for section in $SECTIONS; do
        a=$out_dir/$before/$section/summary.txt
        b=$out_dir/$after/$section/summary.txt
        # Figure lines start with two spaces: a 52-column label, a median.
        paste -d '\t' <(grep '^  ' "$a" | cut -c1-65) <(grep '^  ' "$b" | cut -c53-65) |
            awk -F '\t' '{
                label = substr($1, 3, 50); sub(/ +$/, "", label)
                x = substr($1, 54); gsub(/ /, "", x); y = $2; gsub(/ /, "", y)
                r = (x + 0 > 0 && y ~ /^[0-9.e+-]+$/) ? sprintf("%.2f", y / x) : ""
                printf "| %s | %s | %s | %s |\n", label, x, y, r
            }'
    done
    if ((CLI_ROUNDS > 0)); then
        for what in status submit; do
            x=$(median "$out_dir/$what.$before.us")
            y=$(median "$out_dir/$what.$after.us")
            label="mayflyctl status --json, $STATUS_JOBS jobs held, µs"
            [[ $what == submit ]] && label="mayflyctl submit -- true, µs"
            awk -v l="$label" -v x="$x" -v y="$y" 'BEGIN { printf "| %s | %s | %s | %.2f |\n", l, x, y, y / x }'
        done
    fi
    if ((E2E_ROUNDS > 0)); then
        for p in $E2E_PARALLEL; do
            f=$out_dir/e2e.p$p
            x=$(median "$f.$before.ms")
            y=$(median "$f.$after.ms")
            z=$(median "$f.xargs.ms")
            awk -v p="$p" -v n="$E2E_JOBS" -v x="$x" -v y="$y" -v z="$z" 'BEGIN {
                printf "| e2e: %d true jobs at concurrency %d, ms (xargs -P %d: %s) | %s | %s | %.2f |\n", n, p, p, z, x, y, y / x
                printf "| e2e at concurrency %d: throughput / xargs -P %d | %.2f | %.2f | |\n", p, p, z / x, z / y
            }'
        done
    fi
} | tee "$out_dir/table.md"
log "written to $out_dir/table.md"
