#!/usr/bin/env bash
# The gRPC door against the daemon's own socket, on one daemon in one run:
# the latency of a queue listing and of a durable submit at one client, and
# the rate of 8 clients submitting (the doors alternating,
# bench/src/bin/grpc-vs-ipc.rs); and the idle resident memory of a daemon
# built without the grpc feature and of one built with it (its gRPC socket
# listening). Prints a table; writes it to bench/out/grpc-vs-ipc.txt. See
# bench/README.md.
#
# Knobs (environment): COUNT (2000 requests per measurement), CLIENTS (8),
# ROUNDS (3), OUT (bench/out/grpc-vs-ipc.txt).
set -euo pipefail

COUNT=${COUNT:-2000}
CLIENTS=${CLIENTS:-8}
ROUNDS=${ROUNDS:-3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${OUT:-$root/bench/out/grpc-vs-ipc.txt}
mkdir -p "$root/bench/out"
bin=$root/bench/out/grpc-bin
mkdir -p "$bin"

echo "building mayflyd without and with the grpc feature (release)..." >&2
cargo build --release --quiet -p mayflyd
cp target/release/mayflyd "$bin/mayflyd-plain"
cargo build --release --quiet -p mayflyd --features grpc
cp target/release/mayflyd "$bin/mayflyd-grpc"
cargo build --release --quiet -p mayfly-bench --features grpc --bin grpc-vs-ipc

work=$(mktemp -d "${TMPDIR:-/tmp}/mayfly-grpc-bench.XXXXXX")
pid=
stop() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    pid=
}
trap 'stop; rm -rf "$work"' EXIT

# Starts $1 on a fresh state dir under $work/$2 and waits for its socket.
start() {
    local dir=$work/$2
    mkdir -p "$dir"
    "$1" --socket "$dir/mayfly.sock" --state-dir "$dir/state" --http-addr off \
        --concurrency 1 2>"$dir/log" &
    pid=$!
    for _ in $(seq 200); do
        [[ -S $dir/mayfly.sock ]] && return
        sleep 0.05
    done
    echo "mayflyd did not start; its log:" >&2
    cat "$dir/log" >&2
    exit 1
}

# The resident memory of $pid in KiB, after it has sat idle for a second.
rss() {
    sleep 1
    awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start "$bin/mayflyd-plain" plain
plain_rss=$(rss)
stop
start "$bin/mayflyd-grpc" grpc
grpc_rss=$(rss)
table=$(target/release/grpc-vs-ipc --socket "$work/grpc/mayfly.sock" \
    --count "$COUNT" --clients "$CLIENTS" --rounds "$ROUNDS" --daemon-pid "$pid")
stop

{
    echo "commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
    echo "machine: $(nproc) cores, $(uname -srm), state dir on $(df --output=source,fstype "$work" | tail -1 | tr -s ' ')"
    echo "load average before the run: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "$COUNT requests per measurement, $CLIENTS clients, the trivial job (true) into a paused queue"
    echo
    echo "$table"
    echo
    echo "idle RSS: without grpc ${plain_rss} KiB, with grpc (grpc.sock listening) ${grpc_rss} KiB"
} | tee "$out"
