#!/usr/bin/env bash
# Crash soak: the end-to-end crash test (tests/tests/durability.rs,
# `crash_acknowledged_submits_survive_kill_9`) for many rounds, on release
# builds.
#
# Each round starts a private mayflyd (--concurrency 1, a blocker job
# running; odd rounds also snapshot every 4 KiB), lets 4 raw-protocol
# clients submit concurrently, kills the daemon with SIGKILL after a random
# 3-100 ms, restarts it on the same state dir and socket, and checks that
# every acknowledged job is there exactly as submitted, ids grow per client,
# have no holes, and nothing appears that no client sent.
#
# Usage: bench/crash-soak.sh [ROUNDS]        (default 500)
# Knobs (environment): MAYFLY_CRASH_SEED (replay a failing run: the test
# prints the seed it used), PROFILE (release; "dev" for debug builds).
#
# Nothing here needs root. The other durability tests (full disk, which
# mounts a tmpfs, and the rest) are not run; `cargo test -p mayfly-tests
# --test integration durability::` runs them all.
set -euo pipefail

rounds=${1:-500}
case $rounds in
    '' | *[!0-9]*)
        echo "usage: $0 [ROUNDS]   (ROUNDS is a whole number, got '$rounds')" >&2
        exit 2
        ;;
esac
profile=${PROFILE:-release}
case $profile in
    release) profile_flag=(--release) ;;
    dev) profile_flag=() ;;
    *)
        echo "PROFILE must be 'release' or 'dev', got '$profile'" >&2
        exit 2
        ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# The test runs the workspace's binaries from target/<profile>/; cargo does
# not build other packages' binaries for a test, so build them first.
echo "building mayflyd and mayflyctl ($profile)..." >&2
cargo build "${profile_flag[@]}" --quiet -p mayflyd -p mayflyctl

echo "crash soak: $rounds rounds" >&2
started=$(date +%s)
MAYFLY_CRASH_ROUNDS=$rounds cargo test "${profile_flag[@]}" --quiet -p mayfly-tests \
    --test integration -- --exact durability::crash_acknowledged_submits_survive_kill_9 --nocapture
echo "crash soak: $rounds rounds passed in $(($(date +%s) - started))s" >&2
