#!/usr/bin/env python3
"""Writes the benchmark space's events as intent batches of 1,000 (JSON Lines,
work/batch-NNNNN.jsonl), format v2 records: for N/4 keys, a decision with
details, a decision superseding it, a proposal (draft or on hold), then a
rejection of that proposal (odd keys) or a second proposal (even keys).
Used by scripts/bench-find.sh and scripts/bench-read.sh.

    python3 scripts/bench-data.py N WORK_DIR
"""
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
