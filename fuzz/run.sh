#!/usr/bin/env bash
# Runs every fuzz target for N seconds each (default 60), one after another,
# one process each. Exits non-zero if any target crashed, hung or leaked past
# its limits; the input that did it is left in fuzz/artifacts/<target>/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# New coverage goes to a scratch corpus (FUZZ_WORK, default a temporary
# directory), never into the committed seeds under fuzz/corpus/. Logs are
# kept there too: each ends with libFuzzer's executions and peak memory.
#
# Needs cargo-fuzz (installed here if missing) and nightly features: the
# nightly toolchain if it is installed, otherwise the pinned stable one with
# RUSTC_BOOTSTRAP=1.
set -euo pipefail

seconds="${1:-60}"
shift || true
cd "$(dirname "$0")"
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(json_intake intent_validation import_lines git_objects wire_request)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

work="${FUZZ_WORK:-$(mktemp -d)}"
mkdir -p "$work"
# The guest is safe Rust (unsafe_code = "deny"): what can fail is a panic, an
# assertion or a hang, which libFuzzer catches without a sanitizer, and
# AddressSanitizer would halve the executions.
"${fuzz[@]}" build --sanitizer none

failed=()
for target in "${targets[@]}"; do
    mkdir -p "$work/$target"
    dict=()
    if [ "$target" != git_objects ]; then
        dict=(-dict=json.dict)
    fi
    log="$work/$target.log"
    echo "== $target: ${seconds}s, log $log"
    if "${fuzz[@]}" run --sanitizer none "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${dict[@]}" >"$log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    else
        echo "!! $target failed:"
        grep -E 'panicked|ERROR|SUMMARY|Test unit written|Timeout|out-of-memory' "$log" | head -20 || true
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "no crashes"
