#!/usr/bin/env bash
# Measures one-shot dlog commands (append one decision, show, find, spaces,
# fold) on a space of N events (default 100,000; the events of
# scripts/bench-data.py, as in scripts/bench-find.sh), next to a SQLite peer
# holding the same records, queried by python3 (its sqlite3 module). Every run
# is a new process, as a user runs it: 9 runs each, median and range, and the
# peak RSS of the median run (from /usr/bin/time).
#
#   scripts/bench-read.sh [N]
#   DLOG=path/to/dlog      the binary (default target/release/dlog; never built here)
#   KEEP=1                 keep the work directory (printed)
#   REUSE=dir              measure a kept work directory again instead of building
#
# The SQLite peer (peer.db in the work directory, default settings, no WAL):
#   records(id PRIMARY KEY, key, kind, choice, rationale, title, tags, status, body)
#     the records `dlog find` searches: the decision in force per key and every
#     proposal (status draft / on hold / rejected), ~N*5/8 rows, indexed on key
#   events(seq PRIMARY KEY, id, key, kind, body), indexed on key (history)
#   fts: FTS5 over title, choice, rationale, context and the rejected options
#     with their why-nots (what `dlog find TEXT` searches), rowid = records' rowid
# Python's start-up is part of each SQLite run: the `python3 -c pass` row shows it.
set -euo pipefail
n=${1:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
dlog=${DLOG:-$root/target/release/dlog}
if [ ! -x "$dlog" ]; then
    echo "bench-read: no dlog binary at $dlog" >&2
    echo "  build it (cargo build --release -p decision-log --bin dlog) or set DLOG=path/to/dlog" >&2
    exit 1
fi
dlog=$(cd "$(dirname "$dlog")" && pwd)/$(basename "$dlog")
if [ ! -x /usr/bin/time ]; then
    echo "bench-read: peak RSS is read with /usr/bin/time (Debian: apt-get install time)" >&2
    exit 1
fi
if [ -n "${REUSE:-}" ]; then
    work=$(cd "$REUSE" && pwd)
    [ -d "$work/log.git" ] || { echo "bench-read: $work has no log.git (not a kept work directory)" >&2; exit 1; }
    echo "reusing work directory: $work"
else
    work=$(mktemp -d)
    if [ -n "${KEEP:-}" ]; then
        trap 'echo "kept work directory: $work  (REUSE=$work $0 to measure again)"' EXIT
    else
        trap 'rm -rf "$work"' EXIT
    fi
    echo "work directory: $work"
fi
echo "dlog: $dlog"
export DLOG_REPO=$work/log.git DLOG_ACTOR=bench

if [ -z "${REUSE:-}" ]; then
    "$dlog" init --bare "$work/log.git" >/dev/null
    python3 "$root/scripts/bench-data.py" "$n" "$work"
    start=$(date +%s.%N)
    for f in "$work"/batch-*.jsonl; do "$dlog" append space --intent "$f" >/dev/null; done
    end=$(date +%s.%N)
    echo "built $n events in $(python3 -c "print(round($end - $start, 1))") s"
    "$dlog" checkpoint space >/dev/null
fi
"$dlog" spaces

# The SQLite peer: built from the same batch files.
if [ ! -f "$work/peer.db" ]; then
    python3 - "$work" <<'PY'
import glob, json, sqlite3, sys, time
work = sys.argv[1]
t = time.perf_counter()
events, records, by_key_decision = [], {}, {}
seq = 0
for f in sorted(glob.glob(f"{work}/batch-*.jsonl")):
    for line in open(f):
        e = json.loads(line)
        seq += 1
        body, kind, key = e["body"], e["kind"], e["body"]["key"]
        events.append((seq, e["id"], key, kind, json.dumps(body)))
        if kind == "decide":
            old = by_key_decision.get(key)
            if old is not None:
                del records[old]
            by_key_decision[key] = e["id"]
            records[e["id"]] = (key, kind, body, "accepted")
        elif kind == "propose":
            records[e["id"]] = (key, kind, body, body.get("status", "proposed"))
        elif kind == "reject" and body["proposal"] in records:
            k, kd, b, _ = records[body["proposal"]]
            records[body["proposal"]] = (k, kd, b, "rejected")
db = sqlite3.connect(f"{work}/peer.db")
db.executescript("""
CREATE TABLE records(id TEXT PRIMARY KEY, key TEXT, kind TEXT, choice TEXT, rationale TEXT,
                     title TEXT, tags TEXT, status TEXT, body JSON);
CREATE INDEX records_key ON records(key);
CREATE TABLE events(seq INTEGER PRIMARY KEY, id TEXT UNIQUE, key TEXT, kind TEXT, body JSON);
CREATE INDEX events_key ON events(key);
CREATE VIRTUAL TABLE fts USING fts5(title, choice, rationale, context, rejected);
""")
def rejected(b):
    return " ".join(f"{r.get('option', '')} {r.get('why', '')}" for r in b.get("rejected", []))
with db:
    db.executemany("INSERT INTO events VALUES (?,?,?,?,?)", events)
    for rid, (key, kind, b, status) in records.items():
        cur = db.execute("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?)",
                         (rid, key, kind, b.get("choice"), b.get("rationale"), b.get("title"),
                          " ".join(b.get("tags", [])), status, json.dumps(dict(b, id=rid, status=status))))
        db.execute("INSERT INTO fts(rowid, title, choice, rationale, context, rejected) VALUES (?,?,?,?,?,?)",
                   (cur.lastrowid, b.get("title"), b.get("choice"), b.get("rationale"), b.get("context"), rejected(b)))
db.close()
print(f"SQLite peer: {len(records)} records, {len(events)} events in {time.perf_counter() - t:.1f} s")
PY
fi

# The peer's queries, one process per run (as a user's script would be).
cat >"$work/peer.py" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
op, args = sys.argv[2], sys.argv[3:]
out = sys.stdout
if op == "history":
    for (body,) in db.execute("SELECT body FROM records WHERE key = ?", args):
        out.write(body + "\n")
    for row in db.execute("SELECT seq, id, kind, body FROM events WHERE key = ? ORDER BY seq", args):
        out.write(json.dumps(row) + "\n")
elif op == "key":
    for (body,) in db.execute("SELECT body FROM records WHERE key = ?", args):
        out.write(body + "\n")
elif op == "prefix":
    db.execute("PRAGMA case_sensitive_like = ON")  # so LIKE 'p%' uses the index on key
    for (body,) in db.execute("SELECT body FROM records WHERE key LIKE ?", args):
        out.write(body + "\n")
elif op == "text":
    for (body,) in db.execute("SELECT r.body FROM fts JOIN records r ON r.rowid = fts.rowid WHERE fts MATCH ?", args):
        out.write(body + "\n")
elif op == "all":
    for (body,) in db.execute("SELECT body FROM records"):
        out.write(body + "\n")
elif op == "append":  # one event and the record it puts in force, one transaction
    rid, key, body = args[0], args[1], json.loads(args[2])
    with db:
        db.execute("INSERT INTO events(id, key, kind, body) VALUES (?,?,?,?)", (rid, key, "decide", args[2]))
        for (rowid,) in db.execute("SELECT rowid FROM records WHERE key = ? AND kind = 'decide'", (key,)).fetchall():
            db.execute("DELETE FROM fts WHERE rowid = ?", (rowid,))
            db.execute("DELETE FROM records WHERE rowid = ?", (rowid,))
        cur = db.execute("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?)",
                         (rid, key, "decide", body.get("choice"), body.get("rationale"), body.get("title"),
                          " ".join(body.get("tags", [])), "accepted", json.dumps(dict(body, id=rid, status="accepted"))))
        db.execute("INSERT INTO fts(rowid, title, choice, rationale, context, rejected) VALUES (?,?,?,?,?,?)",
                   (cur.lastrowid, body.get("title"), body.get("choice"), body.get("rationale"), body.get("context"),
                    " ".join(f"{r.get('option', '')} {r.get('why', '')}" for r in body.get("rejected", []))))
    out.write(rid + "\n")
else:
    sys.exit(f"unknown op {op}")
PY

python3 - "$dlog" "$work" <<'PY'
import json, os, shutil, subprocess, sys, tempfile, time
dlog, work = sys.argv[1], sys.argv[2]
RUNS, KEY, PREFIX, TEXT = 9, "area-7/decision-7", "area-7/", ["message", "queue", "costly"]
db, peer = f"{work}/peer.db", ["python3", f"{work}/peer.py", f"{work}/peer.db"]
tmp = tempfile.mkdtemp(dir=work)

def run(cmd):
    """One process: (ms, peak RSS in KiB, stdout bytes); stdout to a file, not a pipe.

    The peak RSS comes from /usr/bin/time, not from this process's wait4:
    Linux carries a process's peak RSS across fork and exec, so a child
    forked from this (large, after reading a fold) Python would report
    this Python's size. /usr/bin/time is small, so its child's is its own."""
    with open(f"{tmp}/out", "wb") as o, open(f"{tmp}/err", "wb") as e:
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", f"{tmp}/rss", *cmd], stdout=o, stderr=e)
        ms = (time.perf_counter() - t) * 1000
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{open(f'{tmp}/err').read()}")
    return ms, int(open(f"{tmp}/rss").read().split()[-1]), open(f"{tmp}/out", "rb").read()

def measure(cmds):
    """cmds: one command, or a function giving run i's command."""
    res = [run(cmds(i) if callable(cmds) else cmds) for i in range(RUNS)]
    ms = sorted(r[0] for r in res)
    med = sorted(res, key=lambda r: r[0])[RUNS // 2]
    return {"cell": f"{med[0]:.0f} ms ({ms[0]:.0f}–{ms[-1]:.0f})", "rss": f"{med[1] / 1024:.1f} MB", "out": med[2]}

def lines(out):
    return len(out.splitlines())

rows = []  # (query, dlog result, peer result, hits)
def row(query, d, p, hits):
    rows.append((query, d, p, hits))

# Reads first (on the checkpoint the build left), then the appends, then a checkpoint again.
d_base, p_base = measure([dlog, "--version"]), measure(["python3", "-c", "pass"])
d = measure([dlog, "--json", "show", "space", KEY]); p = measure(peer + ["history", KEY])
show = json.loads(d["out"])
row(f"show space {KEY} (record + history)", d, p,
    f"1 record, {len(show.get('history', []))} events / {lines(p['out'])} rows")
d = measure([dlog, "--json", "find", "--key", KEY]); p = measure(peer + ["key", KEY])
row(f"find --key {KEY}", d, p, f"{lines(d['out'])} / {lines(p['out'])}")
d = measure([dlog, "--json", "find", "--key", PREFIX + "*"]); p = measure(peer + ["prefix", PREFIX + "%"])
row(f"find --key '{PREFIX}*' (LIKE '{PREFIX}%')", d, p, f"{lines(d['out'])} / {lines(p['out'])}")
d = measure([dlog, "--json", "find", *TEXT]); p = measure(peer + ["text", " ".join(TEXT)])
row(f"find {' '.join(TEXT)} (FTS5 MATCH)", d, p, f"{lines(d['out'])} / {lines(p['out'])}")
d = measure([dlog, "spaces"])
row("spaces", d, None, f"{lines(d['out'])} / –")
d = measure([dlog, "--json", "fold", "space"]); p = measure(peer + ["all"])
fold = json.loads(d["out"])
parts = ", ".join(f"{len(fold.get(k) or {})} {k}" for k in ("decisions", "proposals", "retracted"))
row("fold space (whole state; peer: all records)", d, p,
    f"1 line, {len(d['out']) / 1e6:.1f} MB: {parts} / {lines(p['out'])}")

stamp = time.strftime("%Y%m%dT%H%M%S")
def intent(i):
    body = {"key": KEY, "choice": f"bench choice {stamp}-{i}", "rationale": "measured by bench-read",
            "title": f"Bench decision {i}", "tags": ["ops"],
            "rejected": [{"option": "nothing", "why": "too costly to run"}],
            "context": "Context: the message queue loses jobs"}
    return {"id": f"bench-{stamp}-{i}", "actor": "bench", "kind": "decide", "body": body}
def dlog_append(i):
    f = f"{tmp}/intent-{i}.json"
    with open(f, "w") as o:
        o.write(json.dumps(intent(i)) + "\n")
    return [dlog, "append", "space", "--intent", f]
def peer_append(i):
    x = intent(i)
    return peer + ["append", "p" + x["id"], KEY, json.dumps(x["body"])]
d = measure(dlog_append); p = measure(peer_append)
rows.insert(0, (f"append one decision to {KEY}", d, p, f"{lines(d['out'])} / {lines(p['out'])}"))
subprocess.run([dlog, "checkpoint", "space"], check=True, capture_output=True)
rows.append(("baseline: dlog --version / python3 -c pass", d_base, p_base, "–"))
shutil.rmtree(tmp)

print()
print(f"| query | dlog median (range, {RUNS} runs) | dlog peak RSS | SQLite peer median (range), peak RSS | hits (dlog / peer) |")
print("|---|---|---|---|---|")
for q, d, p, h in rows:
    pc = f"{p['cell']}, {p['rss']}" if p else "–"
    print(f"| {q} | {d['cell']} | {d['rss']} | {pc} | {h} |")
PY
