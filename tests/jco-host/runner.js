// Replays every tests/fixtures/golden/*.script.json on the component under
// Node.js (host.js) and compares the result with its *.expected.json, as
// tests/suite/golden.rs does for the Rust hosts; then checks the host's objects
// and refs with the real git. Exits 1 on any difference or problem.
//
//   node runner.js [--fault NAME]        (or DLOG_FAULT=NAME; see host.js FAULTS)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, isDeepStrictEqual } from 'node:util';
import { pathToFileURL } from 'node:url';
import { createHost, FAULTS, gitObjectId } from './host.js';

const here = import.meta.dirname;
const fixtures = resolve(here, '../fixtures/golden');
const built = join(here, 'build', 'js');

/** JSON text for messages: BigInts as numbers, undefined (WIT's none) as null. */
const show = (v) => (v === undefined ? 'none' : JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? Number(x) : x ?? null)));

/** Run `f`, turning a guest error or trap into an Error that names `what`. */
function call(what, f) {
  try {
    return f();
  } catch (e) {
    const why = e?.payload ? `${e.payload.tag}: ${show(e.payload.val)}` : `trap: ${e?.message ?? e}`;
    throw new Error(`${what} failed: ${why}`, { cause: e });
  }
}

/** Like serde_json's `Value::to_string()` (no preserve_order): keys sorted by UTF-8 bytes. */
function sortedJson(value) {
  const sort = (v) => {
    if (Array.isArray(v)) return v.map(sort);
    if (v === null || typeof v !== 'object') return v;
    const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return Object.fromEntries(keys.map((k) => [k, sort(v[k])]));
  };
  return JSON.stringify(sort(value));
}

function intent(v) {
  if (typeof v.id !== 'string') throw new Error(`a golden intent needs an id: ${show(v)}`);
  const expectSeq = v.expect_seq == null ? undefined : BigInt(v.expect_seq);
  const body = typeof v.body_text === 'string' ? v.body_text : sortedJson(v.body);
  return { id: v.id, actor: v.actor, kind: v.kind, body, expectSeq };
}

/** Replay `script` on a fresh instance over `host`; the result has golden.rs's shape and key order. */
function replay(script, log, host) {
  const appended = [];
  for (const [i, step] of script.steps.entries()) {
    host.setClock(step.at_ms);
    const what = `step ${i + 1} (space ${step.space}, at_ms ${step.at_ms})`;
    let results;
    if (step.append && !step.append_batch) {
      results = [call(`${what}: append`, () => log.append(step.space, intent(step.append)))];
    } else if (step.append_batch && !step.append) {
      results = call(`${what}: append-batch`, () => log.appendBatch(step.space, step.append_batch.map(intent)));
    } else {
      throw new Error(`${what} needs exactly one of append, append_batch`);
    }
    appended.push(...results.map((a) => ({ commit: a.event.commit, created: a.created })));
  }
  const spaces = {};
  for (const name of call('spaces()', () => log.spaces())) {
    const events = call(`events(${name})`, () => log.events(name, 1n, 4294967295));
    const objects = events.map((e) => {
      const stored = host.imports['dlog:decision-log/objects@0.1.0'].read(e.commit);
      if (!stored) throw new Error(`${name}: the commit ${e.commit} of seq ${e.seq} is not in the host's store`);
      const text = new TextDecoder('utf-8', { fatal: true }).decode(stored[1]);
      const blob = gitObjectId('blob', Buffer.from(e.canonical));
      return { blob, commit: e.commit, commit_text: text, seq: Number(e.seq), tree: text.slice(5, 45) };
    });
    const head = call(`head(${name})`, () => log.head(name));
    const fold = call(`fold(${name})`, () => log.fold(name, undefined));
    // The fold in small pieces (fold-piece, as `dlog fold --json` reads it)
    // must be the same bytes on this host too.
    let pieces = '';
    let after;
    for (let n = 0; ; n++) {
      const piece = call(`foldPiece(${name})`, () => log.foldPiece(name, after, 200));
      pieces += piece.text;
      after = piece.next;
      if (after === undefined) break;
      if (n > 100000) throw new Error(`${name}: the fold's pieces never end`);
    }
    if (pieces !== fold) throw new Error(`${name}: the fold read in pieces differs from fold():\n${pieces}\n${fold}`);
    spaces[name] = { events: events.map((e) => e.canonical), fold, head: head?.commit ?? null, objects };
  }
  const views = script.views.map((names) => ({
    overlay: call(`overlay(${names})`, () => log.overlay(names)),
    spaces: names,
    union: call(`union(${names})`, () => log.union(names)),
  }));
  return { appended, spaces, views };
}

/** `path` extended by key `k`: `spaces.team`, or `spaces["a.b"]` when `k` is not a plain name. */
const pathKey = (path, k) => (/^[A-Za-z_][\w-]*$/.test(k) ? (path ? `${path}.${k}` : k) : `${path}[${JSON.stringify(k)}]`);

const isRecord = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Every difference between `expected` and `actual`, as {path, expected, actual}. */
function diff(expected, actual, path = '', out = []) {
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) out.push({ path: `${path}.length`, expected: expected.length, actual: actual.length });
    for (let i = 0; i < Math.min(expected.length, actual.length); i++) diff(expected[i], actual[i], `${path}[${i}]`, out);
  } else if (isRecord(expected) && isRecord(actual)) {
    for (const k of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
      if (!Object.hasOwn(actual, k)) out.push({ path: pathKey(path, k), expected: expected[k], actual: '(missing)' });
      else if (!Object.hasOwn(expected, k)) out.push({ path: pathKey(path, k), expected: '(missing)', actual: actual[k] });
      else diff(expected[k], actual[k], pathKey(path, k), out);
    }
  } else if (!isDeepStrictEqual(expected, actual)) {
    out.push({ path, expected, actual });
  }
  return out;
}

/** One difference, readably; long strings are shown around their first differing character. */
function describe({ path, expected, actual }) {
  if (typeof expected === 'string' && typeof actual === 'string' && Math.max(expected.length, actual.length) > 72) {
    let i = 0;
    while (expected[i] === actual[i]) i++;
    const around = (s) => (i > 30 ? '…' : '') + JSON.stringify(s.slice(Math.max(0, i - 30), i + 40)).slice(1, -1) + (s.length > i + 40 ? '…' : '');
    return `  ${path}: strings differ at character ${i}\n    expected: ${around(expected)}\n    actual:   ${around(actual)}`;
  }
  return `  ${path}:\n    expected: ${show(expected)}\n    actual:   ${show(actual)}`;
}

/** Import conformance: what the WIT requires of objects and refs, checked directly on a fresh host. */
export function conformance(fault) {
  const host = createHost({ identity: 'conformance', epoch: 1, fault });
  const objects = host.imports['dlog:decision-log/objects@0.1.0'];
  const refs = host.imports['dlog:decision-log/refs@0.1.0'];
  const problems = [];
  const expect = (what, actual, expected) => {
    if (!isDeepStrictEqual(actual, expected)) problems.push(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  };
  const hello = new TextEncoder().encode('hello');
  const id = objects.write('blob', hello);
  expect('objects.write(blob, "hello") returns git\'s id', id, 'b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0');
  expect('objects.write is idempotent', objects.write('blob', hello), id);
  expect('objects.read returns the kind and bytes written', objects.read(id), ['blob', hello]);
  expect('objects.read of an unknown id', objects.read('0'.repeat(40)), undefined);

  const [a, b, c] = ['a', 'b', 'c'].map((x) => x.repeat(40));
  const cases = [
    // [what, initial value, expected, want outcome, want value after]
    ['create a missing ref (expected none)', undefined, undefined, { tag: 'swapped' }, b],
    ['expected none but the ref exists', a, undefined, { tag: 'mismatch', val: a }, a],
    ['expected a wrong id', a, c, { tag: 'mismatch', val: a }, a],
    ['expected an id but the ref is missing', undefined, a, { tag: 'mismatch', val: undefined }, undefined],
    ['expected the current id', a, a, { tag: 'swapped' }, b],
  ];
  for (const [i, [what, initial, expected, outcome, after]] of cases.entries()) {
    const name = `refs/dlog/spaces/cas-${i}`;
    if (initial) refs.compareAndSwap(name, undefined, initial);
    expect(`refs.compare-and-swap, ${what}`, refs.compareAndSwap(name, expected, b), outcome);
    expect(`refs.read after compare-and-swap, ${what}`, refs.read(name), after);
  }
  refs.compareAndSwap('refs/dlog/other', undefined, a);
  const listed = refs.list('refs/dlog/spaces/');
  expect('refs.list(prefix): the refs under the prefix, sorted by name', listed.map(([n]) => n), [0, 1, 2, 4].map((i) => `refs/dlog/spaces/cas-${i}`));
  expect('refs.list(prefix): each with its value', listed, listed.map(([n]) => [n, refs.read(n)]));
  return problems;
}

/** Store every object of `host` with the real git, point the refs, and fsck --strict. */
function gitCheck(host) {
  const dir = mkdtempSync(join(tmpdir(), 'dlog-jco-'));
  const env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };
  const git = (args, input) =>
    execFileSync('git', [`--git-dir=${dir}`, ...args], { input, env, encoding: 'utf8', stdio: 'pipe' }).trim();
  const problems = [];
  const attempt = (what, f) => {
    try {
      return f();
    } catch (e) {
      problems.push(`${what} failed: ${(e.stderr || e.message).trim()}`);
    }
  };
  try {
    git(['init', '-q', '--bare']);
    for (const [id, { kind, data }] of host.objects) {
      const got = attempt(`git hash-object -t ${kind} of ${id}`, () => git(['hash-object', '-w', '--stdin', '-t', kind], data));
      if (got && got !== id) problems.push(`git hash-object -t ${kind} gives ${got} for the object the host stored as ${id}`);
    }
    for (const [name, id] of host.refs) attempt(`git update-ref ${name} ${id}`, () => git(['update-ref', name, id]));
    attempt('git fsck --strict --no-dangling', () => git(['fsck', '--strict', '--no-dangling']));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return problems;
}

/** Load the transpiled component once; the result instantiates it over an import object. */
async function loadComponent() {
  const entry = join(built, 'decision-log.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first`);
  const { instantiate } = await import(pathToFileURL(entry));
  const modules = new Map();
  const getCoreModule = (p) => {
    if (!modules.has(p)) modules.set(p, WebAssembly.compile(readFileSync(join(built, p))));
    return modules.get(p);
  };
  return (imports) => instantiate(getCoreModule, imports);
}

export async function run({ fault } = {}) {
  const problems = [];
  const fail = (msg) => {
    problems.push(msg);
    console.log(`FAIL ${msg}`);
  };
  if (fault) console.log(`jco-host: fault ${fault}: ${FAULTS[fault] ?? '(unknown)'}`);
  for (const p of conformance(fault)) fail(`import conformance: ${p}`);

  const instantiate = await loadComponent();
  const names = readdirSync(fixtures).filter((f) => f.endsWith('.script.json')).sort();
  if (names.length === 0) fail(`no golden scripts in ${fixtures}`);
  let reproduced = 0;
  for (const file of names) {
    const name = file.slice(0, -'.script.json'.length);
    const script = JSON.parse(readFileSync(join(fixtures, file), 'utf8'));
    const expectedText = readFileSync(join(fixtures, `${name}.expected.json`), 'utf8');
    const host = createHost({ identity: script.identity, epoch: script.epoch, fault });
    const { log } = await instantiate(host.imports);
    let actual;
    try {
      actual = replay(script, log, host);
    } catch (e) {
      fail(`${name}: ${e.message}`);
    }
    if (actual) {
      const differences = diff(JSON.parse(expectedText), actual);
      const pretty = JSON.stringify(actual, null, 2) + '\n';
      if (differences.length) {
        const shown = differences.slice(0, 12).map(describe).join('\n');
        const more = differences.length > 12 ? `\n  … and ${differences.length - 12} more` : '';
        fail(`${name}: ${differences.length} difference(s) from ${name}.expected.json:\n${shown}${more}`);
      } else if (pretty !== expectedText) {
        fail(`${name}: same values as ${name}.expected.json but not the same pretty-printed bytes`);
      } else {
        reproduced++;
        console.log(`ok ${name}: ${actual.appended.length} appends, spaces ${Object.keys(actual.spaces).join(', ')}: identical to ${name}.expected.json`);
      }
    }
    const gitProblems = gitCheck(host);
    for (const p of gitProblems) fail(`${name}: git: ${p}`);
    if (!gitProblems.length) console.log(`ok ${name}: git accepts all ${host.objects.size} objects and ${host.refs.size} refs (fsck --strict)`);
  }
  console.log(`jco-host: ${reproduced} of ${names.length} golden script(s) reproduced, ${problems.length} problem(s)`);
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  const { values } = parseArgs({ options: { fault: { type: 'string' } } });
  const fault = values.fault ?? (process.env.DLOG_FAULT || undefined);
  if (fault && !(fault in FAULTS)) {
    console.error(`unknown fault ${fault}; known: ${Object.keys(FAULTS).join(', ')}`);
    process.exit(2);
  }
  const problems = await run({ fault });
  process.exitCode = problems.length ? 1 : 0;
}
