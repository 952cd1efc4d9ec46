#!/usr/bin/env bash
# Process-crash trials: SIGKILL writers, `dlog serve` holders and importers at
# random moments, N trials (default 60), and check after each that nothing
# acknowledged was lost, the log is linear, `git fsck --strict` and
# `dlog verify` pass, and the next append works with nobody stepping in.
# Prints one summary line (the figures in docs/RELIABILITY.md).
#   scripts/crash-trials.sh [N] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export DLOG_CRASH_TRIALS="${1:-60}"
if [ -n "${2:-}" ]; then export DLOG_CRASH_SEED="$2"; fi
cargo test -q -p decision-log --test suite crash_trials -- --nocapture 2>&1 | grep -E "crash trials|panicked|seed|lost|FAILED|test result"
