#!/usr/bin/env bash
# Measures `dlog find` on a space of N events (default 100,000) of format v2
# records: 1/4 decisions with details, 1/4 superseding them, proposals and
# rejections, appended in batches of 1,000. Prints each filter's time over
# several runs (new process each, as a user runs it), after a checkpoint.
#
#   scripts/bench-find.sh [N]      (uses target/release/dlog; builds it if missing)
set -euo pipefail
n=${1:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
dlog=$root/target/release/dlog
[ -x "$dlog" ] || cargo build --release -q -p decision-log --bin dlog
work=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
echo "work directory: $work"
"$dlog" init --bare "$work/log.git" >/dev/null
export DLOG_REPO=$work/log.git DLOG_ACTOR=bench
python3 - "$n" "$work" <<'PY'
import json, sys
n, work = int(sys.argv[1]), sys.argv[2]
tags = ["storage", "security", "api", "ui", "ops", "data", "process", "infra"]
actors = ["alice", "bob", "carol", "dan"]
batch, b = [], 0
def flush():
    global batch, b
    if batch:
        open(f"{work}/batch-{b:05d}.jsonl", "w").write("\n".join(json.dumps(x) for x in batch) + "\n")
        b += 1
        batch = []
keys = max(1, n // 4)
for i in range(n):
    k = i % keys
    rnd = i // keys
    key = f"area-{k % 50}/decision-{k}"
    body = {"key": key, "choice": f"option {rnd} for {k}", "rationale": f"reason {i}: it is simpler and cheaper",
            "title": f"Decision {k} round {rnd}", "tags": [tags[k % 8], tags[(k + rnd) % 8]] if tags[k % 8] != tags[(k + rnd) % 8] else [tags[k % 8]],
            "deciders": [actors[k % 4]], "rejected": [{"option": f"alternative {k}", "why": "too costly to run"}],
            "context": f"Context of decision {k}: the message queue loses jobs"}
    if rnd == 0:
        batch.append({"id": f"d-{i}", "actor": actors[i % 4], "kind": "decide", "body": body})
    elif rnd == 1:
        body["supersedes"] = f"d-{k}"
        batch.append({"id": f"d-{i}", "actor": actors[i % 4], "kind": "decide", "body": body})
    elif rnd == 2:
        body["status"] = "draft" if k % 3 else "on hold"
        batch.append({"id": f"d-{i}", "actor": actors[i % 4], "kind": "propose", "body": body})
    else:
        if k % 2:
            batch.append({"id": f"d-{i}", "actor": actors[i % 4], "kind": "reject", "body": {"key": key, "proposal": f"d-{2 * keys + k}", "rationale": "not now"}})
        else:
            batch.append({"id": f"d-{i}", "actor": actors[i % 4], "kind": "propose", "body": body})
    if len(batch) == 1000:
        flush()
flush()
PY
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
