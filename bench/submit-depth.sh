#!/usr/bin/env bash
# Submit cost vs queue depth.
#
# Starts a private mayflyd (concurrency 1, one `sleep 3600` blocker running,
# so nothing drains), measures the cost of a submit with about 10 jobs held,
# fills the queue to DEPTH jobs, and measures again. Prints a table and
# writes it to bench/out/submit-depth.txt. See bench/README.md.
#
# Knobs (environment): DEPTH (100000), SAMPLES (2000, mayfly-load latency
# samples per phase), CLI_CALLS (500, mayflyctl / floor-client calls per
# phase), STOP_WAIT (20, seconds to wait after SIGTERM before SIGKILL),
# MAYFLYD_ARGS (extra daemon flags, split on spaces, e.g.
# "--snapshot-bytes 200000"), OUT (bench/out/submit-depth.txt), REV (a git
# revision: build and measure that commit instead of the working tree),
# ENV_BYTES (0: pad the environment of mayfly-load's jobs by this many bytes),
# BIN_DIR (use the mayflyd, mayflyctl, mayfly-load and floor-client found
# there instead of building; COMMIT then names what they were built from).
set -euo pipefail

DEPTH=${DEPTH:-100000}
SAMPLES=${SAMPLES:-2000}
CLI_CALLS=${CLI_CALLS:-500}
STOP_WAIT=${STOP_WAIT:-20}
ENV_BYTES=${ENV_BYTES:-0}
LOW_DEPTH=10

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out_dir=$root/bench/out
out=${OUT:-$out_dir/submit-depth.txt}
mkdir -p "$(dirname "$out")"

if [[ -n ${BIN_DIR:-} ]]; then
    # Prebuilt binaries (e.g. kept from an earlier REV build): build nothing.
    bin=$(cd "$BIN_DIR" && pwd)
    commit="${COMMIT:-unknown} (prebuilt binaries from $bin)"
elif [[ -n ${REV:-} ]]; then
    # Measure a commit, not the working tree: export REV's sources (plus this
    # bench/ folder, which need not be committed yet) under target/, which git
    # ignores, and build there with a target dir of its own.
    commit=$(git rev-parse --short "$REV^{commit}")
    rev_root=$root/target/bench-rev
    echo "exporting $REV ($commit) to $rev_root/src..." >&2
    rm -rf "$rev_root/src"
    mkdir -p "$rev_root/src"
    git archive "$commit" | tar -x -C "$rev_root/src"
    rm -rf "$rev_root/src/bench"
    mkdir -p "$rev_root/src/bench"
    cp -pR "$root/bench/Cargo.toml" "$root/bench/src" "$rev_root/src/bench/"
    if ! grep -q '"bench"' "$rev_root/src/Cargo.toml"; then
        sed -i -E 's/^members = \[(.*)\]/members = [\1, "bench"]/' "$rev_root/src/Cargo.toml"
    fi
    echo "building release binaries of $commit..." >&2
    rev_build() {
        (cd "$rev_root/src" && CARGO_TARGET_DIR=$rev_root/target \
            cargo build --release --quiet -p mayflyd -p mayflyctl -p mayfly-bench)
    }
    if ! rev_build 2>"$rev_root/build.log"; then
        # A commit whose crates use workspace dependencies that only the
        # working tree's root manifest declares yet: borrow that manifest
        # and its lock file, and say so in the output.
        echo "the commit does not build on its own (see $rev_root/build.log);" \
            "retrying with the working tree's root Cargo.toml and Cargo.lock" >&2
        cp "$root/Cargo.toml" "$root/Cargo.lock" "$rev_root/src/"
        rev_build
        commit+=" (root Cargo.toml and Cargo.lock from the working tree)"
    fi
    bin=$rev_root/target/release
else
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    dirty=$(git status --porcelain -- mayflyd protocol mayflyctl 2>/dev/null | wc -l)
    if ((dirty > 0)); then
        commit+=" + $dirty uncommitted changes under mayflyd/, protocol/, mayflyctl/"
    fi
    echo "building release binaries..." >&2
    cargo build --release --quiet -p mayflyd -p mayflyctl -p mayfly-bench
    bin=$root/target/release
fi
mayflyd=$bin/mayflyd
ctl=$bin/mayflyctl
load=$bin/mayfly-load
floor=$bin/floor-client

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mayfly-bench.XXXXXX")
sock=$tmp/s.sock
state=$tmp/state
daemon_pid=

# Stops the daemon by its PID: SIGTERM, up to STOP_WAIT seconds, then SIGKILL
# (and SIGKILL to the process groups of the jobs it had running, so that no
# `sleep 3600` outlives the benchmark). Then removes the temp dir.
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
        local children
        children=$(cat /proc/"$daemon_pid"/task/*/children 2>/dev/null || true)
        kill -TERM "$daemon_pid" 2>/dev/null || true
        local i
        for ((i = 0; i < STOP_WAIT * 10; i++)); do
            kill -0 "$daemon_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$daemon_pid" 2>/dev/null; then
            echo "mayflyd (pid $daemon_pid) still running ${STOP_WAIT}s after SIGTERM; sending SIGKILL" >&2
            kill -KILL "$daemon_pid" 2>/dev/null || true
            wait "$daemon_pid" 2>/dev/null || true
            # The daemon could not stop its jobs: do it (each job leads its
            # own process group; fall back to the bare PID).
            local c
            for c in $children; do
                kill -KILL -- "-$c" 2>/dev/null || kill -KILL "$c" 2>/dev/null || true
            done
        fi
        wait "$daemon_pid" 2>/dev/null || true
    fi
    if ((status != 0)) && [[ -f $tmp/mayflyd.log ]]; then
        echo "--- last lines of the daemon's log ---" >&2
        tail -n 20 "$tmp/mayflyd.log" >&2 || true
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Flags this commit's mayflyd may or may not have.
help=$("$mayflyd" --help)
args=(--socket "$sock" --state-dir "$state" --concurrency 1 -q)
if grep -q -- '--http-addr' <<<"$help"; then args+=(--http-addr off); fi
if grep -q -- '--shutdown-timeout' <<<"$help"; then args+=(--shutdown-timeout 2s); fi
read -r -a extra <<<"${MAYFLYD_ARGS:-}"
args+=("${extra[@]}")

"$mayflyd" "${args[@]}" >"$tmp/mayflyd.log" 2>&1 &
daemon_pid=$!

# Readiness: the blocker's submit is the probe. Exit code 3 means "daemon not
# reachable yet"; anything else non-zero is a real failure.
blocker=
for ((i = 0; i < 100; i++)); do
    kill -0 "$daemon_pid" 2>/dev/null || { echo "mayflyd exited during start-up" >&2; exit 1; }
    rc=0
    blocker=$("$ctl" --socket "$sock" submit -- sleep 3600 2>/dev/null) || rc=$?
    ((rc == 0)) && break
    ((rc == 3)) || { echo "submitting the blocker job failed (exit $rc)" >&2; exit 1; }
    sleep 0.1
done
[[ -n $blocker ]] || { echo "mayflyd was not ready within 10 s" >&2; exit 1; }
echo "mayflyd pid $daemon_pid ready; blocker job $blocker" >&2

# json_field JSON KEY: one numeric field of a one-line JSON object.
json_field() {
    sed -E "s/.*\"$2\":([-0-9.e]+).*/\1/" <<<"$1"
}

# rss_kib: the daemon's resident set size in KiB.
rss_kib() {
    awk '/^VmRSS:/ { print $2 }' /proc/"$daemon_pid"/status
}

# cpu_ns: CPU time used so far by all of the daemon's threads, in ns
# (schedstat's first field, which unlike utime/stime is not in 10 ms ticks).
cpu_ns() {
    # A thread may end between the glob and the read: not an error.
    { cat /proc/"$daemon_pid"/task/*/schedstat 2>/dev/null || true; } |
        awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# time_calls CMD...: runs CMD CLI_CALLS times, one at a time; prints
# "MEAN_MS MEDIAN_MS" (the mean from the loop's total wall time, the median
# from per-call times taken with $EPOCHREALTIME, which costs no fork).
# Sets LAST_ID to the last id the command printed.
time_calls() {
    local -a per=()
    local i t0 t1 start end id=
    start=$(date +%s%N)
    for ((i = 0; i < CLI_CALLS; i++)); do
        t0=${EPOCHREALTIME/./}
        id=$("$@")
        t1=${EPOCHREALTIME/./}
        per+=($((t1 - t0)))
    done
    end=$(date +%s%N)
    LAST_ID=$id
    local median
    median=$(printf '%s\n' "${per[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    awk -v total="$((end - start))" -v n="$CLI_CALLS" -v med="$median" \
        'BEGIN { printf "%.3f %.3f\n", total / n / 1e6, med / 1e3 }'
}

# bash_floor: what the timing loop itself costs per call, with /bin/true.
bash_floor() {
    CLI_CALLS=$CLI_CALLS time_calls /bin/true
}

declare -A r

# measure PHASE: every figure at the current depth, stored as r[PHASE.*].
measure() {
    local phase=$1 json
    r[$phase.depth]=$HELD
    r[$phase.rss_start]=$(rss_kib)
    echo "[$phase] depth $HELD: mayfly-load latency ($SAMPLES samples, persistent)..." >&2
    local cpu0 cpu1
    cpu0=$(cpu_ns)
    json=$("$load" --json --env-bytes "$ENV_BYTES" latency --socket "$sock" --count "$SAMPLES" --warmup 20)
    cpu1=$(cpu_ns)
    r[$phase.cpu_us]=$(awk -v d="$((cpu1 - cpu0))" -v n="$((SAMPLES + 20))" 'BEGIN { printf "%.1f", d / n / 1e3 }')
    for k in min_us median_us p90_us p99_us p999_us max_us mean_us; do
        r[$phase.p.$k]=$(json_field "$json" "$k")
    done
    echo "[$phase] mayfly-load latency --fresh-connection ($CLI_CALLS samples)..." >&2
    json=$("$load" --json --env-bytes "$ENV_BYTES" latency --socket "$sock" --count "$CLI_CALLS" --fresh-connection)
    for k in median_us p99_us; do
        r[$phase.f.$k]=$(json_field "$json" "$k")
    done
    echo "[$phase] $CLI_CALLS floor-client calls..." >&2
    local mean median
    read -r mean median < <(time_calls "$floor" "$sock")
    r[$phase.floor_mean]=$mean
    r[$phase.floor_median]=$median
    echo "[$phase] $CLI_CALLS mayflyctl submit calls..." >&2
    # time_calls runs in a subshell here; the id comes back on the last line.
    local timing
    timing=$(time_calls "$ctl" --socket "$sock" submit -- true; echo "$LAST_ID")
    read -r mean median <<<"$(head -n 1 <<<"$timing")"
    r[$phase.ctl_mean]=$mean
    r[$phase.ctl_median]=$median
    HELD=$(tail -n 1 <<<"$timing") # ids start at 1 and nothing has ended: last id = jobs held
    r[$phase.rss_end]=$(rss_kib)
    r[$phase.depth_end]=$HELD
}

read -r bash_mean bash_median < <(bash_floor)

# Phase 1: LOW_DEPTH jobs held (the blocker plus LOW_DEPTH-1 queued).
json=$("$load" --json --env-bytes "$ENV_BYTES" fill --socket "$sock" --count $((LOW_DEPTH - 1)))
HELD=$(json_field "$json" last_id)
measure low

# Fill to DEPTH.
to_fill=$((DEPTH - HELD))
if ((to_fill < 1)); then
    echo "DEPTH ($DEPTH) must be above the jobs the low phase leaves ($HELD)" >&2
    exit 2
fi
echo "filling $to_fill jobs to reach $DEPTH held..." >&2
fill_json=$("$load" --json --env-bytes "$ENV_BYTES" fill --socket "$sock" --count "$to_fill")
fill_rate=$(json_field "$fill_json" submits_per_s)
fill_s=$(json_field "$fill_json" elapsed_s)
HELD=$(json_field "$fill_json" last_id)

# Phase 2: DEPTH jobs held.
measure high

state_listing=$(ls "$state" | paste -sd ' ' -)
if [[ -d $state/wal ]]; then
    durability="yes (state dir holds: $state_listing)"
else
    durability="no (state dir holds: ${state_listing:-nothing}; no wal/)"
fi

# Output ------------------------------------------------------------------
row() { # LABEL LOW HIGH [noratio]: a table row, with the high/low ratio
    awk -v l="$1" -v a="$2" -v b="$3" -v nr="${4:-}" 'BEGIN {
        ratio = (nr == "" && a > 0) ? sprintf("%.2fx", b / a) : "-"
        printf "%-44s %12s %14s %7s\n", l, a, b, ratio }'
}
{
    echo "Submit cost vs queue depth — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit $commit"
    echo "machine: $(nproc) CPUs, $(free -h | awk '/^Mem:/ { print $2 }') RAM, kernel $(uname -r)"
    echo "load average at the end (1, 5, 15 min): $(cut -d ' ' -f 1-3 /proc/loadavg)"
    echo "mayflyd ${args[*]//$tmp/\$tmp}"
    echo "mayfly-load jobs: \`true\`, env PATH + $ENV_BYTES bytes of padding"
    echo "durable submits (WAL): $durability"
    echo
    printf "%-44s %12s %14s %7s\n" "" "low depth" "high depth" "ratio"
    row "jobs held at start of phase" "${r[low.depth]}" "${r[high.depth]}" noratio
    row "jobs held at end of phase" "${r[low.depth_end]}" "${r[high.depth_end]}" noratio
    row "submit RTT, persistent conn: median µs" "${r[low.p.median_us]}" "${r[high.p.median_us]}"
    row "submit RTT, persistent conn: p90 µs" "${r[low.p.p90_us]}" "${r[high.p.p90_us]}"
    row "submit RTT, persistent conn: p99 µs" "${r[low.p.p99_us]}" "${r[high.p.p99_us]}"
    row "submit RTT, persistent conn: p99.9 µs" "${r[low.p.p999_us]}" "${r[high.p.p999_us]}"
    row "submit RTT, persistent conn: min µs" "${r[low.p.min_us]}" "${r[high.p.min_us]}"
    row "submit RTT, persistent conn: max µs" "${r[low.p.max_us]}" "${r[high.p.max_us]}"
    row "mayflyd CPU per submit (all threads), µs" "${r[low.cpu_us]}" "${r[high.cpu_us]}"
    row "connect+hello+submit, fresh conn: median µs" "${r[low.f.median_us]}" "${r[high.f.median_us]}"
    row "connect+hello+submit, fresh conn: p99 µs" "${r[low.f.p99_us]}" "${r[high.f.p99_us]}"
    row "floor-client process: mean ms/call" "${r[low.floor_mean]}" "${r[high.floor_mean]}"
    row "floor-client process: median ms/call" "${r[low.floor_median]}" "${r[high.floor_median]}"
    row "mayflyctl submit -- true: mean ms/call" "${r[low.ctl_mean]}" "${r[high.ctl_mean]}"
    row "mayflyctl submit -- true: median ms/call" "${r[low.ctl_median]}" "${r[high.ctl_median]}"
    row "mayflyd VmRSS at start of phase, KiB" "${r[low.rss_start]}" "${r[high.rss_start]}"
    row "mayflyd VmRSS at end of phase, KiB" "${r[low.rss_end]}" "${r[high.rss_end]}"
    echo
    printf "fill: %s jobs in %.2f s = %.0f submits/s (one connection, pipeline 256)\n" \
        "$to_fill" "$fill_s" "$fill_rate"
    printf "bash loop overhead with /bin/true: mean %s ms/call, median %s ms/call\n" \
        "$bash_mean" "$bash_median"
} | tee "$out"
echo "written to $out" >&2
