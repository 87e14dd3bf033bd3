#!/usr/bin/env bash
# Durability performance: what the write-ahead log costs, and whether the
# daemon meets its targets. See bench/README.md ("durability-perf.sh") and
# the "Durability performance" section of bench/RESULTS.md.
#
# Sections (run in this order; pick some with SECTIONS="tp rtt ..."):
#   tp       durable submit throughput, C clients doing sequential submits
#            over their own connection (mayfly-load throughput), for each C
#            in CLIENTS; queue held (--concurrency 1 + a `sleep 3600`
#            blocker). Also the daemon's fsyncs per run (from /metrics), so
#            submits per fsync (the group-commit batch) and CPU per submit.
#            Target: >= 20,000 submits/s with 8 clients.
#   rtt      one client's durable submit round trip (mayfly-load latency)
#            vs one write+fdatasync on the same file system (fsync-probe,
#            append and overwrite). Target: RTT <= 2x one fsync.
#   replay   REPLAY_JOBS (1,000,000) jobs filled into a daemon that never
#            snapshots (--snapshot-bytes 1e11), graceful shutdown, restart:
#            the daemon's own "state recovered" line (records=, elapsed_ms=)
#            and restart -> first answered submit. Warm page cache, and with
#            the log's files evicted from the cache (POSIX_FADV_DONTNEED on
#            those files only). Target: replay < 2 s.
#   restart  RESTART_JOBS (100,000) jobs with the default snapshot threshold:
#            trivial jobs, and jobs with a 2 KiB environment (which do take
#            snapshots); restart -> first answered submit. Target: <= 1 s.
#   depth    bench/submit-depth.sh, REPEAT times (submit cost at 10 vs
#            100,000 jobs held). Target: high/low <= 1.3.
#   instr    instrumentation cost: 8-client throughput with the activity log
#            at info (the default) vs RUST_LOG=warn, and the same for OLD_REV
#            (default a96f8d0: before metrics and the activity log; built in
#            a temporary git worktree with a protocol-1 build of mayfly-load).
#            Target: <= 5%.
#   scrape   GET /metrics time with SCRAPE_QUEUES (100) queues and
#            SCRAPE_JOBS (100,000) jobs held, curl's time_total, SCRAPES per
#            set. Target: < 50 ms.
#   profile  (not in the default list) perf record + perf stat of the daemon
#            during an 8-client throughput run; needs `perf`.
#
# Every measurement is repeated REPEAT (3) times on a fresh daemon and the
# median is reported; raw figures go to OUT_DIR/raw.tsv, the summary to
# OUT_DIR/summary.txt. Before each measurement the script waits (at most
# LOAD_WAIT seconds) for the 1-minute load average to drop below LOAD_MAX,
# and records the load it measured at; a figure taken above LOAD_MAX is
# flagged with '!'.
#
# Knobs (environment): SECTIONS, REPEAT (3), CLIENTS ("1 2 4 8 16"),
# TP_PER_CLIENT (5000) and TP_MIN (10000): submits per throughput run
# (max(TP_MIN, C*TP_PER_CLIENT)), RTT_SAMPLES (2000), REPLAY_JOBS (1000000),
# RESTART_JOBS (100000), RESTART_ENV_BYTES (2048), SCRAPE_JOBS (100000),
# SCRAPE_QUEUES (100), SCRAPES (20), OLD_REV (a96f8d0; empty: skip),
# LOAD_MAX (1.0), LOAD_WAIT (600), STOP_WAIT (20), OUT_DIR
# (bench/out/durability-perf), BIN_DIR (prebuilt mayflyd, mayflyctl,
# mayfly-load, floor-client, fsync-probe: build nothing; COMMIT labels
# them), OLD_BIN_DIR (prebuilt OLD_REV mayflyd, mayflyctl, mayfly-load).
#
# Daemons run in a private temp dir (socket, state dir, logs) with their
# own HTTP port or --http-addr off, and are stopped by PID on exit.
set -euo pipefail

SECTIONS=${SECTIONS:-"tp rtt replay restart depth instr scrape"}
REPEAT=${REPEAT:-3}
CLIENTS=${CLIENTS:-"1 2 4 8 16"}
TP_PER_CLIENT=${TP_PER_CLIENT:-5000}
TP_MIN=${TP_MIN:-10000}
RTT_SAMPLES=${RTT_SAMPLES:-2000}
REPLAY_JOBS=${REPLAY_JOBS:-1000000}
RESTART_JOBS=${RESTART_JOBS:-100000}
RESTART_ENV_BYTES=${RESTART_ENV_BYTES:-2048}
SCRAPE_JOBS=${SCRAPE_JOBS:-100000}
SCRAPE_QUEUES=${SCRAPE_QUEUES:-100}
SCRAPES=${SCRAPES:-20}
OLD_REV=${OLD_REV-a96f8d0}
LOAD_MAX=${LOAD_MAX:-1.0}
LOAD_WAIT=${LOAD_WAIT:-600}
STOP_WAIT=${STOP_WAIT:-20}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out_dir=${OUT_DIR:-$root/bench/out/durability-perf}
mkdir -p "$out_dir"
raw=$out_dir/raw.tsv
summary=$out_dir/summary.txt

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
has_section() { [[ " $SECTIONS " == *" $1 "* ]]; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mayfly-durperf.XXXXXX")
declare -a PIDS=()  # every daemon started, stopped by PID on exit
worktree=

# stop_pid PID: SIGTERM, up to STOP_WAIT s, then SIGKILL to it and to the
# process groups of the jobs it was running (each job leads its own group).
stop_pid() {
    local pid=$1 children i c
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    children=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_WAIT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "mayflyd (pid $pid) still running ${STOP_WAIT}s after SIGTERM; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for c in $children; do
            kill -KILL -- "-$c" 2>/dev/null || kill -KILL "$c" 2>/dev/null || true
        done
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$tmp"
    if [[ -n $worktree ]]; then
        git -C "$root" worktree remove --force "$worktree" 2>/dev/null || rm -rf "$worktree"
        git -C "$root" worktree prune 2>/dev/null || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Binaries --------------------------------------------------------------

if [[ -n ${BIN_DIR:-} ]]; then
    commit="${COMMIT:-unknown} (prebuilt binaries)"
    src_bin=$(cd "$BIN_DIR" && pwd)
else
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    dirty=$(git status --porcelain -- mayflyd protocol mayflyctl 2>/dev/null | wc -l)
    ((dirty == 0)) || commit+=" + $dirty uncommitted changes under mayflyd/, protocol/, mayflyctl/"
    log "building release binaries..."
    cargo build --release --quiet -p mayflyd -p mayflyctl -p mayfly-bench
    src_bin=$root/target/release
fi
# Copy them: other builds may replace target/release while this runs.
bin=$tmp/bin
mkdir -p "$bin"
for b in mayflyd mayflyctl mayfly-load floor-client fsync-probe; do
    cp "$src_bin/$b" "$bin/"
done

old_bin=
if has_section instr && [[ -n $OLD_REV ]]; then
    if [[ -n ${OLD_BIN_DIR:-} ]]; then
        old_bin=$(cd "$OLD_BIN_DIR" && pwd)
    else
        # The old commit speaks protocol 1 and has no bench crate: build its
        # daemon, and this mayfly-load against its protocol crate (JobSpec
        # had no constructor then: patch trivial_spec to a struct literal).
        worktree=$tmp/old-src
        log "building $OLD_REV in a temporary worktree (a few minutes)..."
        git worktree add --detach --quiet "$worktree" "$OLD_REV"
        mkdir -p "$worktree/bench/src/bin"
        cp bench/src/lib.rs "$worktree/bench/src/"
        cp bench/src/bin/mayfly-load.rs "$worktree/bench/src/bin/"
        cat >"$worktree/bench/Cargo.toml" <<'EOF'
[package]
name = "mayfly-bench"
version.workspace = true
edition.workspace = true
publish = false

[dependencies]
mayfly-protocol.workspace = true
anyhow.workspace = true
clap.workspace = true
serde_json.workspace = true
EOF
        grep -q '"bench"' "$worktree/Cargo.toml" ||
            sed -i -E 's/^members = \[(.*)\]/members = [\1, "bench"]/' "$worktree/Cargo.toml"
        perl -0pi -e 's/let mut spec = JobSpec::new\(\s*Command::Argv\(vec!\["true"\.to_owned\(\)\]\),\s*"\/",\s*DEFAULT_QUEUE,\s*DEFAULT_PRIORITY,\s*\);\s*spec\.env = (vec!\[[^\]]*\]);\s*spec/JobSpec { command: Command::Argv(vec!["true".to_owned()]), cwd: "\/".to_owned(), env: $1, queue: DEFAULT_QUEUE.to_owned(), priority: DEFAULT_PRIORITY, labels: Vec::new() }/s' \
            "$worktree/bench/src/lib.rs"
        (cd "$worktree" && CARGO_TARGET_DIR=$root/target/bench-old \
            cargo build --release --quiet -p mayflyd -p mayflyctl -p mayfly-bench --bin mayfly-load \
            --bin mayflyd --bin mayflyctl)
        old_bin=$tmp/old-bin
        mkdir -p "$old_bin"
        cp "$root/target/bench-old/release/"{mayflyd,mayflyctl,mayfly-load} "$old_bin/"
        git worktree remove --force "$worktree" && git worktree prune
        worktree=
    fi
    old_commit=$(git rev-parse --short "$OLD_REV^{commit}" 2>/dev/null || echo "$OLD_REV")
fi

# Helpers -----------------------------------------------------------------

loadavg() { cut -d ' ' -f 1 /proc/loadavg; }

# wait_quiet: waits until the 1-minute load average is below LOAD_MAX (at
# most LOAD_WAIT s); sets LOAD to the load the measurement starts at, with
# a '!' when it is still above LOAD_MAX.
wait_quiet() {
    local waited=0
    while awk -v l="$(loadavg)" -v m="$LOAD_MAX" 'BEGIN { exit !(l >= m) }'; do
        if ((waited >= LOAD_WAIT)); then
            log "load average still $(loadavg) after ${LOAD_WAIT}s; measuring anyway (flagged '!')"
            LOAD="$(loadavg)!"
            return
        fi
        ((waited == 0)) && log "waiting for the load average ($(loadavg)) to drop below $LOAD_MAX..."
        sleep 5
        waited=$((waited + 5))
    done
    LOAD=$(loadavg)
}

# rec ITEM KEY REP VALUE: one raw figure, with the load it was taken at.
rec() {
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${LOAD:-?}" >>"$raw"
}

# med ITEM KEY: the median over the repetitions (middle value; mean of the
# two middle ones for an even count), "-" when there is none.
med() {
    awk -F '\t' -v i="$1" -v k="$2" '$1 == i && $2 == k { print $4 }' "$raw" | sort -g |
        awk '{ a[NR] = $1 } END {
            if (NR == 0) print "-"
            else if (NR % 2) print a[(NR + 1) / 2]
            else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# vals ITEM KEY: every repetition's value and load, "v@load" comma-separated.
vals() {
    awk -F '\t' -v i="$1" -v k="$2" '$1 == i && $2 == k { printf "%s%s@%s", sep, $4, $5; sep = ", " }' "$raw"
}

# round DIGITS VALUE: VALUE with DIGITS decimals.
round() { awk -v d="$1" -v v="$2" 'BEGIN { printf "%.*f\n", d, v }'; }

# json_field JSON KEY: a numeric field of a one-line JSON object (the last
# one of that name).
json_field() {
    sed -E "s/.*\"$2\":([-0-9.e+]+).*/\1/" <<<"$1"
}

# cpu_ns PID: CPU time of all the daemon's threads so far, ns.
cpu_ns() {
    { cat /proc/"$1"/task/*/schedstat 2>/dev/null || true; } |
        awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# ctxsw PID: voluntary + involuntary context switches of all its threads.
ctxsw() {
    { cat /proc/"$1"/task/*/status 2>/dev/null || true; } |
        awk '/ctxt_switches/ { s += $2 } END { printf "%.0f\n", s }'
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' /proc/"$1"/status; }

# free_port: a loopback TCP port nothing listens on.
free_port() {
    local p i
    for ((i = 0; i < 50; i++)); do
        p=$((20000 + RANDOM % 30000))
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    echo "no free port found" >&2
    return 1
}

# metric PORT NAME: one unlabelled sample from /metrics (0 when absent).
metric() {
    curl -fsS "http://127.0.0.1:$1/metrics" |
        awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

# start_daemon BIN DIR [ARGS...]: starts BIN/mayflyd with its socket, state
# dir and log in DIR (the log is appended to, one file per DIR), with the
# environment assignments in the array DENV (RUST_LOG is cleared first, and
# no config file is read).
# Sets DPID. Does not wait for it to be ready.
DENV=()
start_daemon() {
    local b=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    # An empty XDG_CONFIG_HOME: no user config file changes the settings.
    mkdir -p "$tmp/no-config"
    env -u RUST_LOG XDG_CONFIG_HOME="$tmp/no-config" "${DENV[@]}" "$b/mayflyd" --socket "$dir/s.sock" --state-dir "$dir/state" "$@" \
        >>"$dir/mayflyd.log" 2>&1 &
    DPID=$!
    PIDS+=("$DPID")
}

# wait_ready BIN SOCK PID: until a request is answered (mayflyctl exits 3
# while the daemon is unreachable), at most 120 s.
wait_ready() {
    local b=$1 sock=$2 pid=$3 i rc
    for ((i = 0; i < 1200; i++)); do
        kill -0 "$pid" 2>/dev/null || { echo "mayflyd exited during start-up" >&2; return 1; }
        rc=0
        "$b/mayflyctl" --socket "$sock" status 1 >/dev/null 2>&1 || rc=$?
        ((rc != 3)) && return 0
        sleep 0.1
    done
    echo "mayflyd not ready after 120 s" >&2
    return 1
}

# blocker BIN SOCK: submits `sleep 3600`, which holds the only slot.
blocker() {
    "$1/mayflyctl" --socket "$2" submit -- sleep 3600 >/dev/null
}

# graceful_stop BIN SOCK PID: `mayflyctl shutdown`, then waits for the
# process (bounded: 300 s, then SIGTERM/SIGKILL); prints the seconds taken.
graceful_stop() {
    local b=$1 sock=$2 pid=$3 t0 i
    t0=${EPOCHREALTIME/./}
    "$b/mayflyctl" --socket "$sock" shutdown --timeout 2s >/dev/null
    for ((i = 0; i < 3000; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "mayflyd (pid $pid) did not stop within 300 s of 'mayflyctl shutdown'"
        stop_pid "$pid"
    fi
    wait "$pid" 2>/dev/null || true
    awk -v d="$((${EPOCHREALTIME/./} - t0))" 'BEGIN { printf "%.3f\n", d / 1e6 }'
}

# evict_cache DIR: drops the page cache of the files under DIR only
# (POSIX_FADV_DONTNEED through dd), so the next read comes from the disk.
evict_cache() {
    local f
    # The log's pages are clean (fdatasync'd), so DONTNEED drops them.
    while IFS= read -r -d '' f; do
        dd if="$f" iflag=nocache count=0 status=none 2>/dev/null || true
    done < <(find "$1" -type f -print0)
}

run_id=0
next_dir() { run_id=$((run_id + 1)); echo "$tmp/d$run_id"; }

# throughput_run BIN CLIENTS COUNT ITEM KEY REP [DAEMON ARGS...]: a fresh
# daemon with a blocker, one `mayfly-load throughput` run; records
# ITEM/KEY.rate (and .p50, .p99, .cpu_us, .csw, and with an HTTP port
# .per_fsync and .fsync_us).
throughput_run() {
    local b=$1 clients=$2 count=$3 item=$4 key=$5 rep=$6
    shift 6
    local dir port= args=(--concurrency 1 --shutdown-timeout 2s "$@")
    dir=$(next_dir)
    if grep -q -- '--http-addr' <<<"$("$b/mayflyd" --help)"; then
        port=$(free_port)
        args+=(--http-addr "127.0.0.1:$port")
    fi
    start_daemon "$b" "$dir" "${args[@]}"
    local pid=$DPID
    wait_ready "$b" "$dir/s.sock" "$pid"
    blocker "$b" "$dir/s.sock"
    local f0=0 s0=0 f1 s1 c0 c1 x0 x1 json
    if [[ -n $port ]]; then
        f0=$(metric "$port" mayfly_wal_fsync_duration_seconds_count)
        s0=$(metric "$port" mayfly_wal_fsync_duration_seconds_sum)
    fi
    c0=$(cpu_ns "$pid")
    x0=$(ctxsw "$pid")
    json=$("$b/mayfly-load" --json throughput --socket "$dir/s.sock" --clients "$clients" --count "$count")
    c1=$(cpu_ns "$pid")
    x1=$(ctxsw "$pid")
    rec "$item" "$key.rate" "$rep" "$(round 0 "$(json_field "$json" submits_per_s)")"
    rec "$item" "$key.p50" "$rep" "$(round 1 "$(json_field "$json" median_us)")"
    rec "$item" "$key.p99" "$rep" "$(round 1 "$(json_field "$json" p99_us)")"
    rec "$item" "$key.cpu_us" "$rep" "$(awk -v d="$((c1 - c0))" -v n="$count" 'BEGIN { printf "%.1f", d / n / 1e3 }')"
    rec "$item" "$key.csw" "$rep" "$(awk -v d="$((x1 - x0))" -v n="$count" 'BEGIN { printf "%.2f", d / n }')"
    if [[ -n $port ]]; then
        f1=$(metric "$port" mayfly_wal_fsync_duration_seconds_count)
        s1=$(metric "$port" mayfly_wal_fsync_duration_seconds_sum)
        rec "$item" "$key.per_fsync" "$rep" "$(awk -v f="$((f1 - f0))" -v n="$count" 'BEGIN { printf "%.2f", (f > 0 ? n / f : 0) }')"
        rec "$item" "$key.fsync_us" "$rep" "$(awk -v a="$s0" -v b="$s1" -v f0="$f0" -v f1="$f1" 'BEGIN { printf "%.1f", (f1 > f0 ? (b - a) / (f1 - f0) * 1e6 : 0) }')"
    fi
    log "$item $key rep $rep: $(round 0 "$(json_field "$json" submits_per_s)") submits/s (load $LOAD)"
    stop_pid "$pid"
    rm -rf "$dir"
}

# latency_run BIN ITEM KEY REP: a fresh daemon with a blocker (environment
# from DENV), one `mayfly-load latency` run of RTT_SAMPLES; records
# ITEM/KEY.lat_p50 and KEY.lat_cpu_us (daemon CPU per submit).
latency_run() {
    local b=$1 item=$2 key=$3 rep=$4 dir args=(--concurrency 1 --shutdown-timeout 2s)
    dir=$(next_dir)
    if grep -q -- '--http-addr' <<<"$("$b/mayflyd" --help)"; then args+=(--http-addr off); fi
    start_daemon "$b" "$dir" "${args[@]}"
    local pid=$DPID c0 c1 json n=$((RTT_SAMPLES + 20))
    wait_ready "$b" "$dir/s.sock" "$pid"
    blocker "$b" "$dir/s.sock"
    c0=$(cpu_ns "$pid")
    json=$("$b/mayfly-load" --json latency --socket "$dir/s.sock" --count "$RTT_SAMPLES")
    c1=$(cpu_ns "$pid")
    rec "$item" "$key.lat_p50" "$rep" "$(round 1 "$(json_field "$json" median_us)")"
    rec "$item" "$key.lat_cpu_us" "$rep" "$(awk -v d="$((c1 - c0))" -v n="$n" 'BEGIN { printf "%.1f", d / n / 1e3 }')"
    log "$item $key rep $rep: 1-client RTT median $(round 1 "$(json_field "$json" median_us)") µs (load $LOAD)"
    stop_pid "$pid"
    rm -rf "$dir"
}

# first_answer BIN SOCK T0_US: polls with one-submit `mayfly-load latency`
# runs until one is answered (at most 300 s); prints ms since T0_US.
first_answer() {
    local b=$1 sock=$2 t0=$3 i
    for ((i = 0; i < 60000; i++)); do
        if "$b/mayfly-load" latency --socket "$sock" --count 1 --warmup 0 >/dev/null 2>&1; then
            awk -v d="$((${EPOCHREALTIME/./} - t0))" 'BEGIN { printf "%.1f\n", d / 1e3 }'
            return 0
        fi
        sleep 0.005
    done
    echo "no answer within 300 s of the restart" >&2
    return 1
}

# recovered_field LOG KEY: KEY=value from the last "state recovered" line.
recovered_field() {
    grep 'state recovered from the write-ahead log' "$1" | tail -n 1 |
        sed -E "s/.* $2=([0-9.]+).*/\1/"
}

# restart_runs ITEM DIR EXTRA_ARGS...: REPEAT restarts of the daemon on DIR
# (each: wait for quiet, optional cache eviction when EVICT=1, start, time
# to first answer, the recovery line, graceful stop).
restart_runs() {
    local item=$1 dir=$2
    shift 2
    local rep t0 ms pid lines
    for ((rep = 1; rep <= REPEAT; rep++)); do
        wait_quiet
        if [[ ${EVICT:-0} == 1 ]]; then evict_cache "$dir/state/wal"; fi
        lines=$(wc -l <"$dir/mayflyd.log")
        t0=${EPOCHREALTIME/./}
        start_daemon "$bin" "$dir" "$@"
        pid=$DPID
        ms=$(first_answer "$bin" "$dir/s.sock" "$t0")
        tail -n +"$((lines + 1))" "$dir/mayflyd.log" >"$dir/this-start.log"
        rec "$item" first_answer_ms "$rep" "$ms"
        rec "$item" replay_ms "$rep" "$(round 1 "$(recovered_field "$dir/this-start.log" elapsed_ms)")"
        rec "$item" records "$rep" "$(recovered_field "$dir/this-start.log" records)"
        rec "$item" snapshot_bytes "$rep" "$(recovered_field "$dir/this-start.log" snapshot_bytes)"
        rec "$item" jobs "$rep" "$(recovered_field "$dir/this-start.log" jobs)"
        rec "$item" rss_kib "$rep" "$(rss_kib "$pid")"
        log "$item rep $rep: first answer after $ms ms; replay $(recovered_field "$dir/this-start.log" elapsed_ms) ms for $(recovered_field "$dir/this-start.log" records) records (load $LOAD)"
        rec "$item" stop_s "$rep" "$(graceful_stop "$bin" "$dir/s.sock" "$pid")"
    done
}

# fill_and_stop ITEM DIR COUNT ENV_BYTES ARGS...: starts a daemon on DIR,
# pauses every queue, fills COUNT jobs, stops it gracefully.
fill_and_stop() {
    local item=$1 dir=$2 count=$3 env_bytes=$4
    shift 4
    start_daemon "$bin" "$dir" "$@"
    local pid=$DPID json
    wait_ready "$bin" "$dir/s.sock" "$pid"
    "$bin/mayflyctl" --socket "$dir/s.sock" pause --all >/dev/null
    log "$item: filling $count jobs..."
    json=$("$bin/mayfly-load" --json --env-bytes "$env_bytes" fill --socket "$dir/s.sock" --count "$count")
    rec "$item" fill_rate 1 "$(round 0 "$(json_field "$json" submits_per_s)")"
    rec "$item" fill_rss_kib 1 "$(rss_kib "$pid")"
    rec "$item" first_stop_s 1 "$(graceful_stop "$bin" "$dir/s.sock" "$pid")"
    rec "$item" wal_bytes 1 "$(du -sb "$dir/state/wal" | cut -f 1)"
    rec "$item" wal_files 1 "$(find "$dir/state/wal" -type f | wc -l)"
}

: >"$raw"
# Work from the temp dir: nothing below writes into the repository by
# accident.
cd "$tmp"
started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log "results in $out_dir"

# 1. Throughput curve -------------------------------------------------------
if has_section tp; then
    for ((rep = 1; rep <= REPEAT; rep++)); do
        for c in $CLIENTS; do
            wait_quiet
            n=$((c * TP_PER_CLIENT > TP_MIN ? c * TP_PER_CLIENT : TP_MIN))
            throughput_run "$bin" "$c" "$n" tp "c$c" "$rep"
        done
    done
fi

# 2. Single-client round trip vs one fsync ----------------------------------
if has_section rtt; then
    for ((rep = 1; rep <= REPEAT; rep++)); do
        wait_quiet
        dir=$(next_dir)
        port=$(free_port)
        start_daemon "$bin" "$dir" --concurrency 1 --shutdown-timeout 2s --http-addr "127.0.0.1:$port"
        pid=$DPID
        wait_ready "$bin" "$dir/s.sock" "$pid"
        blocker "$bin" "$dir/s.sock"
        # Same file system, same folder as the log.
        j=$("$bin/fsync-probe" --json --dir "$dir/state" --count "$RTT_SAMPLES" --mode append)
        rec rtt fsync_append_us "$rep" "$(round 1 "$(json_field "$j" median_us)")"
        f0=$(metric "$port" mayfly_wal_fsync_duration_seconds_count)
        s0=$(metric "$port" mayfly_wal_fsync_duration_seconds_sum)
        c0=$(cpu_ns "$pid")
        x0=$(ctxsw "$pid")
        j=$("$bin/mayfly-load" --json latency --socket "$dir/s.sock" --count "$RTT_SAMPLES")
        c1=$(cpu_ns "$pid")
        x1=$(ctxsw "$pid")
        f1=$(metric "$port" mayfly_wal_fsync_duration_seconds_count)
        s1=$(metric "$port" mayfly_wal_fsync_duration_seconds_sum)
        n=$((RTT_SAMPLES + 20))
        rec rtt rtt_p50_us "$rep" "$(round 1 "$(json_field "$j" median_us)")"
        rec rtt rtt_p99_us "$rep" "$(round 1 "$(json_field "$j" p99_us)")"
        rec rtt rtt_min_us "$rep" "$(round 1 "$(json_field "$j" min_us)")"
        rec rtt wal_fsync_mean_us "$rep" "$(awk -v a="$s0" -v b="$s1" -v f0="$f0" -v f1="$f1" 'BEGIN { printf "%.1f", (f1 > f0 ? (b - a) / (f1 - f0) * 1e6 : 0) }')"
        rec rtt cpu_us "$rep" "$(awk -v d="$((c1 - c0))" -v n="$n" 'BEGIN { printf "%.1f", d / n / 1e3 }')"
        rec rtt csw "$rep" "$(awk -v d="$((x1 - x0))" -v n="$n" 'BEGIN { printf "%.2f", d / n }')"
        j=$("$bin/fsync-probe" --json --dir "$dir/state" --count "$RTT_SAMPLES" --mode overwrite)
        rec rtt fsync_overwrite_us "$rep" "$(round 1 "$(json_field "$j" median_us)")"
        p50=$(awk -F '\t' -v r="$rep" '$1 == "rtt" && $2 == "rtt_p50_us" && $3 == r { print $4 }' "$raw")
        fa=$(awk -F '\t' -v r="$rep" '$1 == "rtt" && $2 == "fsync_append_us" && $3 == r { print $4 }' "$raw")
        rec rtt ratio "$rep" "$(awk -v a="$p50" -v b="$fa" 'BEGIN { printf "%.2f", a / b }')"
        log "rtt rep $rep: submit RTT median $p50 µs, fsync (append) $fa µs (load $LOAD)"
        stop_pid "$pid"
        rm -rf "$dir"
    done
fi

# 3. Replay of a long log ---------------------------------------------------
# Logs: warnings, plus the scheduler's info lines (the recovery line), so
# that a million submits do not write three million activity-log lines.
if has_section replay; then
    wait_quiet
    dir=$(next_dir)
    DENV=(RUST_LOG=warn,mayflyd::scheduler=info)
    common=(--concurrency 1 --http-addr off --shutdown-timeout 2s --snapshot-bytes 100000000000)
    fill_and_stop replay "$dir" "$REPLAY_JOBS" 0 "${common[@]}"
    restart_runs replay "$dir" "${common[@]}"
    EVICT=1 restart_runs replay_cold "$dir" "${common[@]}"
    DENV=()
    rm -rf "$dir"
fi

# 4. Restart with the default snapshot threshold -----------------------------
if has_section restart; then
    DENV=(RUST_LOG=warn,mayflyd::scheduler=info)
    common=(--concurrency 1 --http-addr off --shutdown-timeout 2s)
    for env_bytes in 0 "$RESTART_ENV_BYTES"; do
        wait_quiet
        dir=$(next_dir)
        item=restart_env$env_bytes
        fill_and_stop "$item" "$dir" "$RESTART_JOBS" "$env_bytes" "${common[@]}"
        restart_runs "$item" "$dir" "${common[@]}"
        rm -rf "$dir"
    done
    DENV=()
fi

# 5. Submit cost vs depth (its own script) -----------------------------------
if has_section depth; then
    for ((rep = 1; rep <= REPEAT; rep++)); do
        wait_quiet
        o=$out_dir/submit-depth.$rep.txt
        BIN_DIR=$bin COMMIT="${commit%% *}" OUT=$o STOP_WAIT=$STOP_WAIT \
            "$root/bench/submit-depth.sh" >/dev/null
        row() { grep -F "$1" "$o" | awk '{ print $(NF - 2), $(NF - 1) }'; }
        read -r lo hi < <(row "submit RTT, persistent conn: median")
        rec depth rtt_low_us "$rep" "$lo"
        rec depth rtt_high_us "$rep" "$hi"
        rec depth rtt_ratio "$rep" "$(awk -v a="$lo" -v b="$hi" 'BEGIN { printf "%.2f", b / a }')"
        read -r lo hi < <(row "submit RTT, persistent conn: p99 µs")
        rec depth p99_low_us "$rep" "$lo"
        rec depth p99_high_us "$rep" "$hi"
        read -r lo hi < <(row "mayflyd CPU per submit")
        rec depth cpu_low_us "$rep" "$lo"
        rec depth cpu_high_us "$rep" "$hi"
        rec depth cpu_ratio "$rep" "$(awk -v a="$lo" -v b="$hi" 'BEGIN { printf "%.2f", b / a }')"
        read -r lo hi < <(row "mayflyctl submit -- true: median")
        rec depth ctl_low_ms "$rep" "$lo"
        rec depth ctl_high_ms "$rep" "$hi"
        read -r lo hi < <(row "mayflyd VmRSS at end of phase")
        rec depth rss_high_kib "$rep" "$hi"
        read -r lo hi < <(row "submit RTT, persistent conn: median")
        rec depth fill_rate "$rep" "$(sed -nE 's/^fill: .* = ([0-9]+) submits.*/\1/p' "$o")"
        log "depth rep $rep: median RTT $lo -> $hi (load $LOAD)"
    done
fi

# 6. Instrumentation cost ---------------------------------------------------
if has_section instr; then
    n=$((8 * TP_PER_CLIENT))
    for ((rep = 1; rep <= REPEAT; rep++)); do
        # Interleaved, so that drift in the machine's load hits every
        # variant alike.
        variants=("$bin head_default" "$bin head_info RUST_LOG=info" "$bin head_warn RUST_LOG=warn")
        if [[ -n $old_bin ]]; then
            variants+=("$old_bin old_default" "$old_bin old_warn RUST_LOG=warn")
        fi
        for v in "${variants[@]}"; do
            read -r vb vkey venv <<<"$v"
            DENV=()
            [[ -n ${venv:-} ]] && DENV=("$venv")
            wait_quiet
            throughput_run "$vb" 8 "$n" instr "$vkey" "$rep"
            latency_run "$vb" instr "$vkey" "$rep"
        done
        DENV=()
    done
fi

# 7. /metrics scrape time -----------------------------------------------------
if has_section scrape; then
    dir=$(next_dir)
    port=$(free_port)
    DENV=(RUST_LOG=warn)
    start_daemon "$bin" "$dir" --concurrency 1 --shutdown-timeout 2s --http-addr "127.0.0.1:$port"
    DENV=()
    pid=$DPID
    wait_ready "$bin" "$dir/s.sock" "$pid"
    blocker "$bin" "$dir/s.sock"
    url=http://127.0.0.1:$port/metrics
    scrape_set() { # KEY REP: SCRAPES scrapes; records the median and max
        local key=$1 rep=$2 i
        local -a t=()
        local size=0
        for ((i = 0; i < SCRAPES; i++)); do
            read -r s size < <(curl -fsS -o /dev/null -w '%{time_total} %{size_download}\n' "$url")
            t+=("$s")
        done
        rec scrape "$key.p50_ms" "$rep" "$(printf '%s\n' "${t[@]}" | sort -g | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] * 1e3 }')"
        rec scrape "$key.max_ms" "$rep" "$(printf '%s\n' "${t[@]}" | sort -g | tail -n 1 | awk '{ printf "%.2f", $1 * 1e3 }')"
        rec scrape "$key.bytes" "$rep" "$size"
    }
    for ((rep = 1; rep <= REPEAT; rep++)); do
        wait_quiet
        scrape_set empty "$rep"
    done
    log "scrape: filling $SCRAPE_JOBS jobs over $SCRAPE_QUEUES queues..."
    "$bin/mayfly-load" --queues "$SCRAPE_QUEUES" fill --socket "$dir/s.sock" --count "$SCRAPE_JOBS" >/dev/null
    rec scrape series 1 "$(curl -fsS "$url" | grep -vc '^#')"
    rec scrape queues 1 "$(curl -fsS "$url" | grep -c '^mayfly_jobs_queued{')"
    for ((rep = 1; rep <= REPEAT; rep++)); do
        wait_quiet
        scrape_set full "$rep"
        log "scrape rep $rep: median $(awk -F '\t' -v r="$rep" '$2 == "full.p50_ms" && $3 == r { print $4 }' "$raw") ms (load $LOAD)"
    done
    stop_pid "$pid"
    rm -rf "$dir"
fi

# 8. Profile (opt-in) -----------------------------------------------------------
if has_section profile; then
    command -v perf >/dev/null || { echo "profile: perf not found" >&2; exit 1; }
    wait_quiet
    dir=$(next_dir)
    start_daemon "$bin" "$dir" --concurrency 1 --shutdown-timeout 2s --http-addr off
    pid=$DPID
    wait_ready "$bin" "$dir/s.sock" "$pid"
    blocker "$bin" "$dir/s.sock"
    n=$((8 * TP_PER_CLIENT))
    perf record -F 2000 -o "$out_dir/perf.data" -p "$pid" 2>"$out_dir/perf-record.log" &
    perf_pid=$!
    sleep 0.5
    perf stat -e task-clock,context-switches,cpu-migrations -p "$pid" -o "$out_dir/perf-stat.txt" &
    stat_pid=$!
    "$bin/mayfly-load" throughput --socket "$dir/s.sock" --clients 8 --count "$n" | tee "$out_dir/profile-run.txt" >&2
    kill -INT "$perf_pid" "$stat_pid" 2>/dev/null || true
    wait "$perf_pid" "$stat_pid" 2>/dev/null || true
    perf report -i "$out_dir/perf.data" --no-children --sort comm,dso,symbol --stdio 2>/dev/null |
        head -n 120 >"$out_dir/perf-report.txt" || true
    log "profile: $out_dir/perf-report.txt, $out_dir/perf-stat.txt ($n submits)"
    stop_pid "$pid"
    rm -rf "$dir"
fi

# Summary ----------------------------------------------------------------------
fmt() { # LABEL ITEM KEY [TARGET]: one line with the median and every value
    printf '%-52s %12s   [%s]%s\n' "$1" "$(med "$2" "$3")" "$(vals "$2" "$3")" "${4:+   target $4}"
}
{
    echo "Durability performance — started $started_at, ended $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit $commit${old_bin:+; old daemon: $old_commit}"
    echo "machine: $(nproc) CPUs, $(free -h | awk '/^Mem:/ { print $2 }') RAM, kernel $(uname -r)," \
        "state dir on $(df -T "$tmp" | awk 'NR == 2 { print $2 }')"
    echo "load average at the end (1, 5, 15 min): $(cut -d ' ' -f 1-3 /proc/loadavg)"
    echo "median of $REPEAT; [every value@1-min load when it was taken; '!' = above LOAD_MAX $LOAD_MAX]"
    if has_section tp; then
        echo
        echo "1. durable submit throughput (C clients, sequential submits each; queue held)"
        for c in $CLIENTS; do
            fmt "  $c clients: submits/s" tp "c$c.rate" "$( ((c == 8)) && echo '>= 20000')"
            fmt "  $c clients: per-submit median µs" tp "c$c.p50"
            fmt "  $c clients: per-submit p99 µs" tp "c$c.p99"
            fmt "  $c clients: submits per fsync" tp "c$c.per_fsync"
            fmt "  $c clients: mean fdatasync µs (daemon's own)" tp "c$c.fsync_us"
            fmt "  $c clients: daemon CPU µs per submit" tp "c$c.cpu_us"
            fmt "  $c clients: daemon context switches per submit" tp "c$c.csw"
        done
    fi
    if has_section rtt; then
        echo
        echo "2. one client's durable submit round trip vs one fsync (same file system)"
        fmt "  submit RTT median µs" rtt rtt_p50_us
        fmt "  submit RTT p99 µs" rtt rtt_p99_us
        fmt "  submit RTT min µs" rtt rtt_min_us
        fmt "  fsync-probe append (64 B + fdatasync) median µs" rtt fsync_append_us
        fmt "  fsync-probe overwrite median µs" rtt fsync_overwrite_us
        fmt "  WAL fdatasync mean µs (daemon's metrics)" rtt wal_fsync_mean_us
        fmt "  RTT / fsync(append)" rtt ratio "<= 2"
        fmt "  daemon CPU µs per submit" rtt cpu_us
        fmt "  daemon context switches per submit" rtt csw
    fi
    if has_section replay; then
        echo
        echo "3. replay of $REPLAY_JOBS submits (no snapshot)"
        fmt "  fill rate, submits/s (pipeline 256)" replay fill_rate
        fmt "  WAL size, bytes" replay wal_bytes
        fmt "  graceful stop after the fill, s" replay first_stop_s
        fmt "  replay (daemon's elapsed_ms), warm cache, ms" replay replay_ms "< 2000"
        fmt "  records replayed" replay records
        fmt "  restart -> first answered submit, warm, ms" replay first_answer_ms
        fmt "  replay, log evicted from the page cache, ms" replay_cold replay_ms "< 2000"
        fmt "  restart -> first answer, evicted, ms" replay_cold first_answer_ms
        fmt "  VmRSS after restart, KiB" replay rss_kib
        fmt "  graceful stop, s" replay stop_s
    fi
    if has_section restart; then
        for env_bytes in 0 "$RESTART_ENV_BYTES"; do
            item=restart_env$env_bytes
            echo
            echo "4. restart with $RESTART_JOBS jobs held, default --snapshot-bytes, env +$env_bytes B"
            fmt "  WAL dir size, bytes" "$item" wal_bytes
            fmt "  WAL dir files" "$item" wal_files
            fmt "  snapshot loaded at restart, bytes" "$item" snapshot_bytes
            fmt "  records replayed" "$item" records
            fmt "  recovery (daemon's elapsed_ms), ms" "$item" replay_ms
            fmt "  restart -> first answered submit, ms" "$item" first_answer_ms "<= 1000"
            fmt "  VmRSS after restart, KiB" "$item" rss_kib
        done
    fi
    if has_section depth; then
        echo
        echo "5. submit cost vs depth (bench/submit-depth.sh; ~10 vs 100,000 held)"
        fmt "  submit RTT median, low depth µs" depth rtt_low_us
        fmt "  submit RTT median, high depth µs" depth rtt_high_us
        fmt "  ratio high/low (median RTT)" depth rtt_ratio "<= 1.3"
        fmt "  submit RTT p99, low µs" depth p99_low_us
        fmt "  submit RTT p99, high µs" depth p99_high_us
        fmt "  daemon CPU per submit, low µs" depth cpu_low_us
        fmt "  daemon CPU per submit, high µs" depth cpu_high_us
        fmt "  ratio high/low (CPU per submit)" depth cpu_ratio
        fmt "  mayflyctl submit median, low ms" depth ctl_low_ms
        fmt "  mayflyctl submit median, high ms" depth ctl_high_ms
        fmt "  VmRSS at end, high depth KiB" depth rss_high_kib
        fmt "  fill rate submits/s" depth fill_rate
    fi
    if has_section instr; then
        echo
        echo "6. instrumentation cost: 8 clients, $((8 * TP_PER_CLIENT)) submits"
        for v in head_default head_info head_warn old_default old_warn; do
            fmt "  $v: submits/s" instr "$v.rate"
            fmt "  $v: daemon CPU µs per submit" instr "$v.cpu_us"
            fmt "  $v: submits per fsync" instr "$v.per_fsync"
            fmt "  $v: 1 client, RTT median µs" instr "$v.lat_p50"
            fmt "  $v: 1 client, daemon CPU µs per submit" instr "$v.lat_cpu_us"
        done
        relcmp() { # LABEL KEY A B: A's median relative to B's, in %
            awk -v l="$1" -v a="$(med instr "$3.$2")" -v b="$(med instr "$4.$2")" \
                'BEGIN { if (a > 0 && b > 0) printf "  %-50s %+6.1f%%\n", l, (a / b - 1) * 100 }'
        }
        echo "  relative (median vs median):"
        relcmp "activity log info vs warn: 8-client submits/s" rate head_default head_warn
        relcmp "activity log info vs warn: 8-client CPU/submit" cpu_us head_default head_warn
        relcmp "activity log info vs warn: 1-client RTT" lat_p50 head_default head_warn
        relcmp "activity log info vs warn: 1-client CPU/submit" lat_cpu_us head_default head_warn
        relcmp "HEAD vs old, both as is: 8-client submits/s" rate head_default old_default
        relcmp "HEAD vs old, both as is: 8-client CPU/submit" cpu_us head_default old_default
        relcmp "HEAD vs old, both as is: 1-client RTT" lat_p50 head_default old_default
        relcmp "HEAD vs old, both as is: 1-client CPU/submit" lat_cpu_us head_default old_default
        relcmp "HEAD vs old, both warn: 8-client CPU/submit" cpu_us head_warn old_warn
        relcmp "HEAD vs old, both warn: 1-client CPU/submit" lat_cpu_us head_warn old_warn
    fi
    if has_section scrape; then
        echo
        echo "7. GET /metrics (curl time_total), $SCRAPES scrapes per set"
        fmt "  empty daemon: median ms" scrape empty.p50_ms
        fmt "  empty daemon: body bytes" scrape empty.bytes
        fmt "  $SCRAPE_JOBS jobs, $SCRAPE_QUEUES queues: median ms" scrape full.p50_ms "< 50"
        fmt "  $SCRAPE_JOBS jobs, $SCRAPE_QUEUES queues: max ms" scrape full.max_ms
        fmt "  body bytes" scrape full.bytes
        fmt "  samples (non-comment lines)" scrape series
        fmt "  queues with a mayfly_jobs_queued series" scrape queues
    fi
} | tee "$summary"
log "written to $summary (raw figures: $raw)"
