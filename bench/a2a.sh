#!/usr/bin/env bash
# A2A figures (docs/a2a.md): what the front door and the executor cost.
#
#  1. SendMessage -> job queued: a2a-load against one daemon's door, the
#     jobs going to a paused queue (so they stay queued), with 8 keep-alive
#     connections and with 1; mayfly-load throughput over the Unix socket
#     with 8 connections beside it, for comparison.
#  2. The executor's overhead per job: daemon A with an a2a queue handing
#     its jobs to daemon B's door, against the same jobs submitted to B
#     directly: `mayflyctl submit --wait -- true` one after another (each
#     call's wall time, lat-loop), and a batch of BATCH jobs submitted at
#     once and waited for (wall time).
#
# Knobs (environment): COUNT (4000 SendMessage per load run), RUNS (3),
# SEQ (100 sequential submit --wait calls per side), BATCH (200).
# Writes the figures to bench/out/a2a.txt too. Loopback only; every daemon
# it starts is stopped by its pid.
set -euo pipefail

COUNT=${COUNT:-4000}
RUNS=${RUNS:-3}
SEQ=${SEQ:-100}
BATCH=${BATCH:-200}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
mkdir -p bench/out
out=bench/out/a2a.txt
: >"$out"
say() { printf '%s\n' "$*" | tee -a "$out"; }

echo "building release binaries (mayflyd with --features a2a)..." >&2
cargo build --release --quiet -p mayflyd -p mayflyctl -p mayfly-bench --features mayflyd/a2a
bin=$root/target/release
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME ARGS...: a daemon in $work/NAME; waits for its socket.
start() {
    local name=$1
    shift
    mkdir -p "$work/$name"
    "$bin/mayflyd" --socket "$work/$name/s.sock" --state-dir "$work/$name/state" \
        --http-addr off -q "$@" 2>"$work/$name/log" &
    pids+=($!)
    for _ in $(seq 200); do
        [[ -S $work/$name/s.sock ]] && "$bin/mayflyctl" --socket "$work/$name/s.sock" status >/dev/null 2>&1 && return
        sleep 0.05
    done
    echo "daemon $name did not start; its log:" >&2
    cat "$work/$name/log" >&2
    exit 1
}
ctl() { local name=$1; shift; "$bin/mayflyctl" --socket "$work/$name/s.sock" "$@"; }

say "commit $(git rev-parse --short HEAD), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. The door.
door_port=$(port)
start door --a2a-addr "127.0.0.1:$door_port" --concurrency 1
ctl door queue add bench >/dev/null
ctl door pause bench default >/dev/null
say ""
say "== SendMessage -> job queued ($COUNT requests per run, paused queue)"
for run in $(seq "$RUNS"); do
    say "run $run, 8 connections: $("$bin/a2a-load" --addr "127.0.0.1:$door_port" \
        --token-file "$work/door/state/token" --clients 8 --count "$COUNT")"
    say "run $run, 1 connection:  $("$bin/a2a-load" --addr "127.0.0.1:$door_port" \
        --token-file "$work/door/state/token" --clients 1 --count "$((COUNT / 4))")"
    say "run $run, Unix socket, 8 connections (mayfly-load throughput): $("$bin/mayfly-load" \
        throughput --socket "$work/door/s.sock" --clients 8 --count "$COUNT" --queues 1)"
done

# 2. The executor.
b_port=$(port)
start b --a2a-addr "127.0.0.1:$b_port" --concurrency 2
start a
install -m 600 "$work/b/state/token" "$work/a/b.token"
ctl a queue add remote --executor a2a --a2a-url "http://127.0.0.1:$b_port/" \
    --a2a-token-file "$work/a/b.token" >/dev/null
say ""
say "== executor overhead: submit --wait -- true, $SEQ calls one after another (µs per call)"
stats() { sort -n "$1" | awk '{a[NR]=$1} END {printf "median %d, p90 %d, max %d", a[int(NR*0.5)+1], a[int(NR*0.9)+1], a[NR]}'; }
for run in $(seq "$RUNS"); do
    "$bin/lat-loop" "$SEQ" "$work/direct.txt" "$bin/mayflyctl" --socket "$work/b/s.sock" submit --wait -- true
    "$bin/lat-loop" "$SEQ" "$work/via.txt" "$bin/mayflyctl" --socket "$work/a/s.sock" submit --queue remote --wait -- true
    say "run $run: to B directly: $(stats "$work/direct.txt"); A -> B: $(stats "$work/via.txt")"
done

say ""
say "== executor overhead: $BATCH jobs submitted at once, then waited for (wall time)"
lines=$(for _ in $(seq "$BATCH"); do echo '{"command": ["true"]}'; done)
batch() {
    local name=$1
    shift
    local began ids
    began=$(date +%s%N)
    ids=$(printf '%s\n' "$lines" | ctl "$name" submit --json-input "$@" | tr '\n' ' ')
    # shellcheck disable=SC2086
    ctl "$name" wait $ids >/dev/null
    echo $((($(date +%s%N) - began) / 1000000))
}
for run in $(seq "$RUNS"); do
    direct=$(batch b)
    via=$(batch a --queue remote)
    say "run $run: to B directly ${direct} ms; A -> B ${via} ms; overhead $(((via - direct) * 1000 / BATCH)) µs per job"
done
say ""
say "figures also in $out"
