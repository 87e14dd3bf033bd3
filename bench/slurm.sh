#!/usr/bin/env bash
# The slurm executor against Slurm used by hand, on one single-node cluster
# (contrib/slurm-cluster), in one run. See bench/README.md ("slurm.sh") and
# the "Slurm executor" section of bench/RESULTS.md.
#
#   drain   JOBS (200) trivial jobs (`true`, output to files) through
#           (a) a raw bash loop of `sbatch --parsable`, then `squeue` every
#               POLL until none of them is left, and
#           (b) a loop of `mayflyctl submit --queue hpc -- true` (a slurm
#               queue of a mayflyd polling every POLL), then `mayflyctl wait`.
#           Each timed from the first submit to the end of the wait, ROUNDS
#           (3) times, alternating, on an idle cluster; the medians and
#           their ratio. Target: mayfly / raw <= 1.1.
#   ticks   Slurm calls per tick with N jobs in flight, for each N in
#           IN_FLIGHT ("10 500"): N jobs that wait for a file, submitted
#           through the slurm queue; once the daemon follows all N, its
#           metrics over WINDOW (10 s): squeue calls per poll tick, every
#           Slurm call per tick, and squeue's mean time. Target: the calls
#           per tick do not grow with N.
#
# Knobs (environment): SECTIONS ("drain ticks"), JOBS, ROUNDS, POLL (1s),
# IN_FLIGHT, WINDOW, HTTP_PORT (19479: the daemon's /metrics on loopback),
# OUT_DIR (bench/out/slurm), BIN_DIR (prebuilt mayflyd
# and mayflyctl: build nothing). Needs root (for the cluster). The cluster
# is reused if one runs, else started and stopped again on exit; daemons
# run in a private temp dir and are stopped by pid.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECTIONS=${SECTIONS:-"drain ticks"}
JOBS=${JOBS:-200}
ROUNDS=${ROUNDS:-3}
POLL=${POLL:-1s}
IN_FLIGHT=${IN_FLIGHT:-"10 500"}
WINDOW=${WINDOW:-10}
HTTP_PORT=${HTTP_PORT:-19479}
OUT_DIR=${OUT_DIR:-bench/out/slurm}
mkdir -p "$OUT_DIR"
SUMMARY=$OUT_DIR/summary.txt
: >"$SUMMARY"

say() { printf '== %s\n' "$*" >&2; }
report() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }

if [[ -z ${BIN_DIR:-} ]]; then
    say "building mayflyd and mayflyctl (release)"
    cargo build --release -q -p mayflyd -p mayflyctl
    BIN_DIR=target/release
fi
BIN_DIR=$(cd "$BIN_DIR" && pwd)

TMP=$(mktemp -d)
DAEMON_PID=
STARTED_CLUSTER=
cleanup() {
    if [[ -n $DAEMON_PID ]]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    [[ -z $STARTED_CLUSTER ]] || contrib/slurm-cluster stop || true
    rm -rf "$TMP"
}
trap cleanup EXIT

if ! contrib/slurm-cluster status; then
    STARTED_CLUSTER=1
    contrib/slurm-cluster start >/dev/null
fi
eval "$(contrib/slurm-cluster env)"
POLL_S=$(awk -v p="$POLL" 'BEGIN {
    if (p ~ /ms$/) { sub(/ms$/, "", p); print p / 1000 } else { sub(/s$/, "", p); print p + 0 } }')

now() { date +%s.%N; }

# Waits (up to 10 minutes) until the cluster runs no job at all.
wait_idle() {
    local i
    for ((i = 0; i < 6000; i++)); do
        [[ -z $(squeue -h -o %i) ]] && return 0
        sleep 0.1
    done
    say "the cluster did not become idle"
    return 1
}

# Starts mayflyd (socket and state in $TMP/d) with queue hpc on Slurm.
# Extra arguments go to mayflyd.
start_daemon() {
    rm -rf "$TMP/d"
    mkdir -p "$TMP/d/work"
    "$BIN_DIR/mayflyd" --socket "$TMP/d/s.sock" --state-dir "$TMP/d/state" \
        --slurm-poll-interval "$POLL" -q "$@" 2>"$TMP/d/log" &
    DAEMON_PID=$!
    local i
    for ((i = 0; i < 200; i++)); do
        ctl status >/dev/null 2>&1 && break
        sleep 0.05
    done
    ctl queue add hpc --executor slurm >/dev/null
}

stop_daemon() {
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID" || true
    DAEMON_PID=
}

ctl() { "$BIN_DIR/mayflyctl" --socket "$TMP/d/s.sock" "$@"; }

# (a): sbatch in a loop, then squeue every POLL until none is left.
raw_round() {
    local dir=$TMP/raw ids=() t0 t1 i
    rm -rf "$dir" && mkdir -p "$dir"
    t0=$(now)
    for ((i = 0; i < JOBS; i++)); do
        ids+=("$(sbatch --parsable -o "$dir/%j.out" -e "$dir/%j.err" --wrap true)")
    done
    local list
    list=$(
        IFS=,
        echo "${ids[*]}"
    )
    # Listed without -t: pending, running and completing jobs only. An
    # error (every id already forgotten) also means none is left.
    while out=$(squeue -h -j "$list" -o %i 2>/dev/null) && [[ -n $out ]]; do
        sleep "$POLL_S"
    done
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

# (b): mayflyctl submit in a loop, then mayflyctl wait.
mayfly_round() {
    local ids=() t0 t1 i
    t0=$(now)
    for ((i = 0; i < JOBS; i++)); do
        ids+=("$(cd "$TMP/d/work" && ctl submit --queue hpc -- true)")
    done
    ctl wait "${ids[@]}" >/dev/null
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

drain() {
    say "drain: $JOBS jobs, $ROUNDS rounds, poll $POLL"
    start_daemon
    local raw=() mayfly=() r
    for ((r = 1; r <= ROUNDS; r++)); do
        wait_idle
        raw+=("$(raw_round)")
        wait_idle
        mayfly+=("$(mayfly_round)")
        say "round $r: raw ${raw[-1]} s, mayfly ${mayfly[-1]} s"
    done
    stop_daemon
    local rm mm
    rm=$(printf '%s\n' "${raw[@]}" | median)
    mm=$(printf '%s\n' "${mayfly[@]}" | median)
    report "drain of $JOBS trivial jobs (poll $POLL), seconds per round:"
    report "  raw sbatch loop + squeue wait: ${raw[*]} (median $rm)"
    report "  mayflyctl submit loop + wait:  ${mayfly[*]} (median $mm)"
    report "  ratio mayfly/raw (medians): $(awk -v a="$mm" -v b="$rm" 'BEGIN { printf "%.3f", a / b }')"
}

# The value of metric series $2 (exact text, labels included) in scrape $1.
metric() {
    awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }' "$1"
}

ticks() {
    local port=$HTTP_PORT
    for n in $IN_FLIGHT; do
        wait_idle
        say "ticks: $n jobs in flight"
        start_daemon --http-addr "127.0.0.1:$port"
        local i
        for ((i = 0; i < n; i++)); do
            (cd "$TMP/d/work" && ctl submit --queue hpc -- sh -c \
                'i=0; while [ ! -e release ] && [ $i -lt 600 ]; do sleep 1; i=$((i+1)); done') >/dev/null
        done
        local tracked=0
        for ((i = 0; i < 1200; i++)); do
            curl -s "127.0.0.1:$port/metrics" >"$TMP/m0"
            tracked=$(metric "$TMP/m0" 'mayfly_executor_jobs_tracked{executor="slurm"}')
            [[ $tracked == "$n" ]] && break
            sleep 0.1
        done
        sleep "$WINDOW"
        curl -s "127.0.0.1:$port/metrics" >"$TMP/m1"
        local d_polls d_squeue d_all d_sum d_count
        d_polls=$(($(metric "$TMP/m1" 'mayfly_executor_polls_total{executor="slurm"}') - $(metric "$TMP/m0" 'mayfly_executor_polls_total{executor="slurm"}')))
        d_squeue=$(($(metric "$TMP/m1" 'mayfly_executor_calls_total{command="squeue",executor="slurm",result="ok"}') - $(metric "$TMP/m0" 'mayfly_executor_calls_total{command="squeue",executor="slurm",result="ok"}')))
        d_all=$(awk '/^mayfly_executor_calls_total\{/ { s += $2 } END { print s + 0 }' "$TMP/m1")
        d_all=$((d_all - $(awk '/^mayfly_executor_calls_total\{/ { s += $2 } END { print s + 0 }' "$TMP/m0")))
        d_sum=$(awk -v a="$(metric "$TMP/m0" 'mayfly_executor_call_duration_seconds_sum{command="squeue",executor="slurm"}')" \
            -v b="$(metric "$TMP/m1" 'mayfly_executor_call_duration_seconds_sum{command="squeue",executor="slurm"}')" 'BEGIN { print b - a }')
        d_count=$(($(metric "$TMP/m1" 'mayfly_executor_call_duration_seconds_count{command="squeue",executor="slurm"}') - $(metric "$TMP/m0" 'mayfly_executor_call_duration_seconds_count{command="squeue",executor="slurm"}')))
        report "$n jobs in flight (followed: $tracked), over ${WINDOW}s: $d_polls ticks, $d_squeue squeue calls, $d_all Slurm calls in all;" \
            "per tick: $(awk -v a="$d_squeue" -v b="$d_polls" 'BEGIN { printf "%.2f", a / b }') squeue," \
            "$(awk -v a="$d_all" -v b="$d_polls" 'BEGIN { printf "%.2f", a / b }') calls; squeue mean" \
            "$(awk -v s="$d_sum" -v c="$d_count" 'BEGIN { printf "%.1f", 1000 * s / c }') ms"
        touch "$TMP/d/work/release"
        ctl wait $(ctl --json status | grep -o '"id": [0-9]*' | grep -o '[0-9]*') >/dev/null || true
        stop_daemon
    done
}

report "slurm executor bench: commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)'), $(date -u +%F)"
report "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r); $(sbatch --version)"
for section in $SECTIONS; do
    "$section"
done
