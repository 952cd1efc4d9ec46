// `dlog mcp` as an agent meets it: the official MCP TypeScript SDK client,
// spawning `dlog mcp --repo <tmp>` over stdio. $DLOG_BIN names the binary
// (default ../../target/debug/dlog, built by `cargo build`).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

const here = dirname(fileURLToPath(import.meta.url));
const DLOG = resolve(here, process.env.DLOG_BIN ?? '../../target/debug/dlog');
const run = promisify(execFile);

const scratch = mkdtempSync(join(tmpdir(), 'dlog-mcp-'));
const clients = [];
after(async () => {
  for (const c of clients) await c.close().catch(() => {});
  rmSync(scratch, { recursive: true, force: true });
});

let repos = 0;
async function newRepo() {
  const path = join(scratch, `r${++repos}.git`);
  await run(DLOG, ['init', path, '--bare']);
  return path;
}

/** An MCP client connected to a fresh `dlog mcp` process. */
async function agent(repo, actor) {
  const env = { ...getDefaultEnvironment() };
  if (actor) env.DLOG_ACTOR = actor;
  const transport = new StdioClientTransport({ command: DLOG, args: ['mcp', '--repo', repo], env, stderr: 'pipe' });
  const client = new Client({ name: `test-${actor ?? 'anonymous'}`, version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

/** `dlog` as a person runs it, with its JSON output. */
async function dlog(repo, ...args) {
  const env = { ...process.env, DLOG_ACTOR: 'cli' };
  delete env.DLOG_IDENTITY;
  const { stdout } = await run(DLOG, ['--repo', repo, '--json', ...args], { env });
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

const call = (client, name, args) => client.callTool({ name, arguments: args });

function waitFor(client, schema, predicate, ms = 5000) {
  return new Promise((resolveWait, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${schema.shape.method.value} within ${ms} ms`)), ms);
    client.setNotificationHandler(schema, (n) => {
      if (predicate(n)) {
        clearTimeout(timer);
        resolveWait(n);
      }
    });
  });
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

test('the tools are the CLI commands, with the intent JSON argument names and documented schemas', async () => {
  const client = await agent(await newRepo(), 'alice');
  assert.match(client.getInstructions(), /supersedes/);
  const { tools } = await client.listTools();
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  assert.deepEqual(
    Object.keys(byName).sort(),
    ['accept', 'decide', 'events', 'fold', 'propose', 'reject', 'retract', 'search', 'show', 'spaces'],
  );

  const decide = byName.decide.inputSchema;
  assert.deepEqual([...decide.required].sort(), ['choice', 'key', 'rationale', 'space']);
  assert.deepEqual(
    Object.keys(decide.properties).sort(),
    ['actor', 'choice', 'consequences', 'consulted', 'context', 'deciders', 'expect_seq', 'id', 'informed', 'key',
      'links', 'meta', 'rationale', 'rejected', 'space', 'supersedes', 'tags', 'title'],
  );
  assert.deepEqual([...byName.propose.inputSchema.required].sort(), ['choice', 'key', 'rationale', 'space']);
  assert.ok('status' in byName.propose.inputSchema.properties);
  assert.deepEqual([...byName.accept.inputSchema.required].sort(), ['key', 'proposal', 'space']);
  assert.deepEqual(byName.search.inputSchema.required ?? [], []);
  assert.equal(byName.search.annotations.readOnlyHint, true);
  assert.equal(decide.additionalProperties, false);
  // `rejected` is spelled out in place (no $ref), as the intent JSON has it.
  assert.deepEqual(decide.properties.rejected.items.required, ['option', 'why']);
  assert.ok(!JSON.stringify(decide).includes('$ref'));
  for (const [name, prop] of Object.entries(decide.properties)) assert.ok(prop.description, `decide.${name} is documented`);
  assert.deepEqual([...byName.retract.inputSchema.required].sort(), ['key', 'rationale', 'space']);
  assert.deepEqual([...byName.show.inputSchema.required].sort(), ['key', 'space']);
  assert.deepEqual(byName.events.inputSchema.required, ['space']);
  assert.ok(!byName.fold.inputSchema.required?.length, 'fold takes space, overlay or union');
  assert.match(byName.decide.description, /supersede/);
  assert.match(byName.decide.description, /created=false/);
  assert.equal(byName.fold.annotations.readOnlyHint, true);
  assert.equal(byName.decide.annotations.readOnlyHint, false);
});

test('a decision is recorded, folded, shown, listed as an event and readable as a resource', async (t) => {
  const repo = await newRepo();
  const client = await agent(repo, 'alice');
  const decided = await call(client, 'decide', {
    space: 'platform', key: 'storage', choice: 'git', rationale: 'history for free',
    rejected: [{ option: 'postgres', why: 'a server to run' }], id: 'plat-1',
  });
  assert.equal(decided.isError, false, JSON.stringify(decided));
  assert.equal(decided.structuredContent.created, true);
  assert.equal(decided.structuredContent.event.seq, 1);
  assert.equal(decided.structuredContent.event.actor, 'alice');
  assert.match(decided.content[0].text, /appended platform #1 decide storage = git/);
  // The same JSON as text too, for clients that show a model only `content`.
  assert.deepEqual(JSON.parse(decided.content[1].text), decided.structuredContent);

  const fold = await call(client, 'fold', { space: 'platform' });
  assert.equal(fold.structuredContent.decisions.storage.choice, 'git');
  assert.equal(fold.structuredContent.decisions.storage.id, 'plat-1');

  const shown = await call(client, 'show', { space: 'platform', key: 'storage' });
  assert.equal(shown.structuredContent.decision.rejected[0].option, 'postgres');
  assert.equal(shown.structuredContent.history.length, 1);

  const superseded = await call(client, 'decide', {
    space: 'platform', key: 'storage', choice: 'git + packs', rationale: 'fewer files', supersedes: 'plat-1', id: 'plat-2',
  });
  assert.equal(superseded.isError, false, JSON.stringify(superseded));
  const retracted = await call(client, 'retract', {
    space: 'platform', key: 'storage', rationale: 'revisit', supersedes: 'plat-2', id: 'plat-3', actor: 'bob',
  });
  assert.equal(retracted.structuredContent.event.actor, 'bob');

  const events = await call(client, 'events', { space: 'platform', from: 2, limit: 5 });
  assert.deepEqual(events.structuredContent.events.map((e) => e.id), ['plat-2', 'plat-3']);
  assert.equal(events.structuredContent.next, 4);

  const overlay = await call(client, 'fold', { overlay: ['web', 'platform'] });
  assert.equal(overlay.structuredContent.view, 'overlay');

  const { resources } = await client.listResources();
  assert.deepEqual(resources.map((r) => r.uri), ['dlog://spaces/platform']);
  const read = await client.readResource({ uri: 'dlog://spaces/platform' });
  assert.equal(read.contents[0].mimeType, 'application/json');
  assert.equal(JSON.parse(read.contents[0].text).retracted.storage.choice, 'git + packs');

  const spaces = await call(client, 'spaces', {});
  assert.deepEqual(spaces.structuredContent.spaces.map((s) => [s.space, s.seq]), [['platform', 3]]);

  // Latency of a tool call, as an agent sees it (debug build, one-shot lease per append).
  const appends = [];
  for (let i = 0; i < 20; i++) {
    const t0 = process.hrtime.bigint();
    const r = await call(client, 'decide', { space: 'timing', key: `k${i}`, choice: 'c', rationale: 'r' });
    appends.push(ms(t0));
    assert.equal(r.isError, false);
  }
  const reads = [];
  for (let i = 0; i < 20; i++) {
    const t0 = process.hrtime.bigint();
    await call(client, 'show', { space: 'timing', key: `k${i}` });
    reads.push(ms(t0));
  }
  t.diagnostic(`decide: p50 ${percentile(appends, 0.5).toFixed(1)} ms, p95 ${percentile(appends, 0.95).toFixed(1)} ms`);
  t.diagnostic(`show:   p50 ${percentile(reads, 0.5).toFixed(1)} ms, p95 ${percentile(reads, 0.95).toFixed(1)} ms`);
});

test('a resend with the same id returns the original event, and a reused id with another intent is a conflict', async () => {
  const client = await agent(await newRepo(), 'alice');
  const args = { space: 'team', key: 'db', choice: 'postgres', rationale: 'we know it', id: 'db-1' };
  const first = await call(client, 'decide', args);
  await call(client, 'decide', { space: 'team', key: 'cache', choice: 'redis', rationale: 'sessions' });
  const again = await call(client, 'decide', args);
  assert.equal(again.isError, false);
  assert.equal(again.structuredContent.created, false);
  assert.equal(again.structuredContent.event.seq, first.structuredContent.event.seq);
  assert.equal(again.structuredContent.event.commit, first.structuredContent.event.commit);
  assert.match(again.content[0].text, /already in the log/);

  const reused = await call(client, 'decide', { ...args, choice: 'mysql' });
  assert.equal(reused.isError, true);
  assert.equal(reused.structuredContent.error, 'id-conflict');
  assert.equal(reused.structuredContent.id, 'db-1');
});

test('a stale supersedes is a tool error naming the decision in force', async () => {
  const client = await agent(await newRepo(), 'alice');
  await call(client, 'decide', { space: 'team', key: 'db', choice: 'postgres', rationale: 'known', id: 'd1' });
  await call(client, 'decide', { space: 'team', key: 'db', choice: 'sqlite', rationale: 'smaller', supersedes: 'd1', id: 'd2' });

  const stale = await call(client, 'decide', { space: 'team', key: 'db', choice: 'mysql', rationale: 'r', supersedes: 'd1' });
  assert.equal(stale.isError, true);
  const s = stale.structuredContent;
  assert.equal(s.error, 'decision-conflict');
  assert.equal(s.key, 'db');
  assert.equal(s.supersedes, 'd1');
  assert.deepEqual([s.in_force.id, s.in_force.choice, s.in_force.rationale], ['d2', 'sqlite', 'smaller']);
  assert.match(stale.content[0].text, /in force: d2 = "sqlite"/);
  assert.deepEqual(JSON.parse(stale.content[1].text), s);
  assert.match(s.advice, /show/);

  // A retraction naming a stale decision is refused the same way.
  const retract = await call(client, 'retract', { space: 'team', key: 'db', rationale: 'r', supersedes: 'd1' });
  assert.equal(retract.structuredContent.error, 'decision-conflict');
  assert.equal(retract.structuredContent.in_force.id, 'd2');

  const head = await call(client, 'decide', { space: 'team', key: 'x', choice: 'y', rationale: 'z', expect_seq: 7 });
  assert.equal(head.structuredContent.error, 'head-conflict');
  assert.equal(head.structuredContent.head.seq, 2);
});

test('a proposal is not in force until accepted, a rejected one stays closed, and search finds records by tag, status and text', async () => {
  const client = await agent(await newRepo(), 'alice');
  const decided = await call(client, 'decide', {
    space: 'team', key: 'queue', choice: 'cron', rationale: 'simple', id: 'q1', title: 'Run jobs from cron',
    tags: ['jobs'], deciders: ['alice'], meta: { ticket: 42 },
  });
  assert.equal(decided.isError, false, JSON.stringify(decided));
  assert.equal(decided.structuredContent.event.v, 2);
  const proposed = await call(client, 'propose', {
    space: 'team', key: 'queue', choice: 'rabbitmq', rationale: 'acks per consumer', supersedes: 'q1',
    status: 'draft', tags: ['jobs', 'messaging'], id: 'p1',
  });
  assert.equal(proposed.isError, false, JSON.stringify(proposed));
  let fold = (await call(client, 'fold', { space: 'team' })).structuredContent;
  assert.equal(fold.decisions.queue.choice, 'cron', 'a proposal is not in force');
  assert.equal(fold.proposals.queue.p1.status, 'draft');

  const drafts = await call(client, 'search', { status: 'draft' });
  assert.deepEqual(drafts.structuredContent.hits.map((h) => h.id), ['p1']);
  const byTag = await call(client, 'search', { tags: ['messaging'], spaces: ['team'] });
  assert.deepEqual(byTag.structuredContent.hits.map((h) => h.key), ['queue']);
  const byText = await call(client, 'search', { text: 'ACKS consumer' });
  assert.deepEqual(byText.structuredContent.hits.map((h) => h.id), ['p1']);

  const accepted = await call(client, 'accept', { space: 'team', key: 'queue', proposal: 'p1', rationale: 'agreed', id: 'a1' });
  assert.equal(accepted.isError, false, JSON.stringify(accepted));
  fold = (await call(client, 'fold', { space: 'team' })).structuredContent;
  assert.deepEqual([fold.decisions.queue.choice, fold.decisions.queue.id, fold.decisions.queue.accepted.id], ['rabbitmq', 'p1', 'a1']);

  await call(client, 'propose', { space: 'team', key: 'queue', choice: 'kafka', rationale: 'scale', supersedes: 'p1', id: 'p2' });
  const noWhy = await call(client, 'reject', { space: 'team', key: 'queue', proposal: 'p2' });
  assert.equal(noWhy.isError, true);
  assert.match(noWhy.content[0].text, /rationale/);
  const rejected = await call(client, 'reject', { space: 'team', key: 'queue', proposal: 'p2', rationale: 'too big' });
  assert.equal(rejected.isError, false, JSON.stringify(rejected));
  const again = await call(client, 'accept', { space: 'team', key: 'queue', proposal: 'p2' });
  assert.equal(again.isError, true);
  assert.match(again.content[0].text, /was rejected/);
  const hits = (await call(client, 'search', { status: 'rejected' })).structuredContent.hits;
  assert.deepEqual(hits.map((h) => [h.id, h.record.rejection.rationale]), [['p2', 'too big']]);
});

test('invalid arguments and a missing actor are tool errors naming the argument', async () => {
  const repo = await newRepo();
  const client = await agent(repo, 'alice');
  const typed = await call(client, 'decide', { space: 's', key: 'k', choice: 'c', rationale: 'r', expect_seq: 'three' });
  assert.equal(typed.isError, true);
  assert.equal(typed.structuredContent.error, 'invalid');
  assert.match(typed.content[0].text, /expect_seq/);
  const missing = await call(client, 'decide', { space: 's', key: 'k', choice: 'c' });
  assert.match(missing.content[0].text, /rationale/);
  const unknown = await call(client, 'decide', { space: 's', key: 'k', choice: 'c', why: 'r' });
  assert.match(unknown.content[0].text, /unknown field `why`/);
  const badSpace = await call(client, 'decide', { space: 'Not A Space', key: 'k', choice: 'c', rationale: 'r' });
  assert.equal(badSpace.structuredContent.error, 'invalid');
  const notFound = await call(client, 'show', { space: 's', key: 'nothing' });
  assert.equal(notFound.structuredContent.error, 'not-found');

  const nobody = await agent(repo, null);
  const anonymous = await call(nobody, 'decide', { space: 's', key: 'k', choice: 'c', rationale: 'r' });
  assert.equal(anonymous.isError, true);
  assert.match(anonymous.content[0].text, /actor/);
  const named = await call(nobody, 'decide', { space: 's', key: 'k', choice: 'c', rationale: 'r', actor: 'carol' });
  assert.equal(named.structuredContent.event.actor, 'carol');
});

test('two agents in two processes deciding at once share one contiguous total order', async (t) => {
  const repo = await newRepo();
  const [a, b] = await Promise.all([agent(repo, 'agent-a'), agent(repo, 'agent-b')]);
  const each = 20;
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(
    [a, b].flatMap((client, n) =>
      Array.from({ length: each }, (_, i) =>
        call(client, 'decide', {
          space: 'shared', key: `${'ab'[n]}-${i}`, choice: 'c', rationale: 'r', id: `${'ab'[n]}-${i}`,
        }),
      ),
    ),
  );
  t.diagnostic(`${2 * each} concurrent decides from 2 processes: ${ms(t0).toFixed(0)} ms`);
  for (const r of results) assert.equal(r.isError, false, JSON.stringify(r.structuredContent));

  const events = await dlog(repo, 'events', 'shared');
  assert.equal(events.length, 2 * each);
  assert.deepEqual(events.map((e) => e.seq), Array.from({ length: 2 * each }, (_, i) => i + 1));
  assert.deepEqual(
    events.map((e) => e.id).sort(),
    results.map((r) => r.structuredContent.event.id).sort(),
  );
  assert.equal(events.filter((e) => e.actor === 'agent-a').length, each);
  // Each agent saw the seq the log gave its event.
  const seqOf = Object.fromEntries(events.map((e) => [e.id, e.seq]));
  for (const r of results) assert.equal(r.structuredContent.event.seq, seqOf[r.structuredContent.event.id]);
});

test('a subscriber is told when another process changes a space, and when a space appears', async (t) => {
  const repo = await newRepo();
  await dlog(repo, 'append', 'watched', '--key', 'k', '--choice', 'c', '--why', 'r');
  const client = await agent(repo, 'alice');
  await client.listResources();
  await client.subscribeResource({ uri: 'dlog://spaces/watched' });

  const updated = waitFor(client, ResourceUpdatedNotificationSchema, (n) => n.params.uri === 'dlog://spaces/watched');
  const t0 = process.hrtime.bigint();
  await dlog(repo, 'append', 'watched', '--key', 'k2', '--choice', 'c', '--why', 'r');
  const appended = process.hrtime.bigint();
  await updated;
  t.diagnostic(`notified ${(Number(process.hrtime.bigint() - appended) / 1e6).toFixed(0)} ms after another process's append returned (${ms(t0).toFixed(0)} ms incl. the append)`);
  const read = await client.readResource({ uri: 'dlog://spaces/watched' });
  assert.equal(JSON.parse(read.contents[0].text).seq, 2);

  const listChanged = waitFor(client, ResourceListChangedNotificationSchema, () => true);
  await dlog(repo, 'append', 'newcomer', '--key', 'k', '--choice', 'c', '--why', 'r');
  await listChanged;
  const { resources } = await client.listResources();
  assert.deepEqual(resources.map((r) => r.uri).sort(), ['dlog://spaces/newcomer', 'dlog://spaces/watched']);

  // Its own appends are reported too, and nothing after unsubscribing.
  const own = waitFor(client, ResourceUpdatedNotificationSchema, (n) => n.params.uri === 'dlog://spaces/watched');
  await call(client, 'decide', { space: 'watched', key: 'k3', choice: 'c', rationale: 'r' });
  await own;
  await client.unsubscribeResource({ uri: 'dlog://spaces/watched' });
  let late = 0;
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, () => late++);
  await dlog(repo, 'append', 'watched', '--key', 'k4', '--choice', 'c', '--why', 'r');
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(late, 0);
});

test('appends through dlog mcp are forwarded to the dlog serve holding the space', async (t) => {
  const repo = await newRepo();
  await dlog(repo, 'append', 'held', '--key', 'before', '--choice', 'c', '--why', 'r');
  const env = { ...process.env };
  delete env.DLOG_IDENTITY;
  const serve = spawn(DLOG, ['--repo', repo, 'serve', 'held', '--ttl', '5s'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const serving = await new Promise((resolveServe, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`dlog serve did not start: ${text}`)), 20000);
      serve.stderr.on('data', (d) => {
        text += d;
        const m = /serving held at epoch (\d+)/.exec(text);
        if (m) {
          clearTimeout(timer);
          resolveServe({ epoch: Number(m[1]) });
        }
      });
      serve.on('exit', (code) => reject(new Error(`dlog serve exited (${code}): ${text}`)));
    });
    const client = await agent(repo, 'alice');
    const r = await call(client, 'decide', { space: 'held', key: 'db', choice: 'pg', rationale: 'r', id: 'fwd-1' });
    assert.equal(r.isError, false, JSON.stringify(r.structuredContent));
    // Written under serve's lease: its epoch, right after its authority event.
    assert.equal(r.structuredContent.event.epoch, serving.epoch);
    const fold = await call(client, 'fold', { space: 'held' });
    assert.match(fold.structuredContent.authority.holder, /^serve@/);
    assert.equal(fold.structuredContent.authority.epoch, serving.epoch);
    const [status] = await dlog(repo, 'lease', 'status', 'held');
    assert.match(JSON.stringify(status), /serve@/);

    const forwarded = [];
    for (let i = 0; i < 20; i++) {
      const t0 = process.hrtime.bigint();
      const f = await call(client, 'decide', { space: 'held', key: `k${i}`, choice: 'c', rationale: 'r' });
      forwarded.push(ms(t0));
      assert.equal(f.structuredContent.event.epoch, serving.epoch);
    }
    t.diagnostic(`decide forwarded to serve: p50 ${percentile(forwarded, 0.5).toFixed(1)} ms, p95 ${percentile(forwarded, 0.95).toFixed(1)} ms`);
  } finally {
    serve.kill('SIGTERM');
    await new Promise((r) => serve.once('exit', r));
  }
});
