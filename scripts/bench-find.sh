#!/usr/bin/env bash
# Measures `dlog find` on a space of N events (default 100,000) of format v2
# records: 1/4 decisions with details, 1/4 superseding them, proposals and
# rejections, appended in batches of 1,000. Prints each filter's time over
# several runs (new process each, as a user runs it), after a checkpoint.
#
#   scripts/bench-find.sh [N]      (uses target/release/dlog; builds it if missing)
#   DLOG=path/to/dlog scripts/bench-find.sh [N]      (uses that binary, never builds)
# The events come from scripts/bench-data.py (shared with scripts/bench-read.sh).
set -euo pipefail
n=${1:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${DLOG:-}" ]; then
    dlog=$DLOG
    [ -x "$dlog" ] || { echo "bench-find: DLOG=$dlog is not an executable file" >&2; exit 1; }
else
    dlog=$root/target/release/dlog
    [ -x "$dlog" ] || cargo build --release -q -p decision-log --bin dlog
fi
work=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
echo "work directory: $work"
"$dlog" init --bare "$work/log.git" >/dev/null
export DLOG_REPO=$work/log.git DLOG_ACTOR=bench
python3 "$root/scripts/bench-data.py" "$n" "$work"
start=$(date +%s.%N)
for f in "$work"/batch-*.jsonl; do "$dlog" append space --intent "$f" >/dev/null; done
end=$(date +%s.%N)
echo "built $n events in $(python3 -c "print(round($end - $start, 1))") s"
"$dlog" checkpoint space >/dev/null
"$dlog" spaces
time_it() {
    local label=$1; shift
    python3 - "$dlog" "$label" "$@" <<'PY'
import subprocess, sys, time
dlog, label, args = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = []
for _ in range(7):
    t = time.perf_counter()
    out = subprocess.run([dlog, "--json", "find", *args], check=True, capture_output=True).stdout
    runs.append((time.perf_counter() - t) * 1000)
runs.sort()
hits = len(out.splitlines())
print(f"| {label} | {hits} | {runs[len(runs)//2]:.0f} ms | {runs[0]:.0f}–{runs[-1]:.0f} ms |")
PY
}
echo "| filter | hits | median | range (7 runs) |"
echo "|---|---|---|---|"
time_it "everything (no filter)"
time_it "--key 'area-7/*'" --key 'area-7/*'
time_it "--tag security" --tag security
time_it "--actor alice" --actor alice
time_it "--status 'on hold'" --status 'on hold'
time_it "text: 'message queue costly'" message queue costly
time_it "--since 2000-01-01 --until 2100-01-01" --since 2000-01-01 --until 2100-01-01
time_it "--key area-7/decision-7 (one key)" --key area-7/decision-7
