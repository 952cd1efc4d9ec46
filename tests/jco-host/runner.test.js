// `node --test`: the runner passes on the honest host and fails, saying why,
// on each deliberately broken import. Each case runs runner.js as a process,
// so its exit code and output are checked as CI would see them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const here = import.meta.dirname;

function node(script, env = {}) {
  const r = spawnSync(process.execPath, [join(here, script)], {
    env: { ...process.env, DLOG_FAULT: '', ...env },
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('the honest host reproduces every golden script and git accepts its objects', () => {
  const { code, out } = node('runner.js');
  assert.equal(code, 0, out);
  const scripts = readdirSync(join(here, '../fixtures/golden')).filter((f) => f.endsWith('.script.json'));
  assert.ok(scripts.length > 0);
  for (const file of scripts) {
    const name = file.slice(0, -'.script.json'.length);
    assert.match(out, new RegExp(`ok ${name}: .*identical to ${name}\\.expected\\.json`), out);
    assert.match(out, new RegExp(`ok ${name}: git accepts all \\d+ objects`), out);
  }
  assert.match(out, /0 problem\(s\)/);
});

test('fault clock-backwards: the golden diff shows the shifted at_ms', () => {
  const { code, out } = node('runner.js', { DLOG_FAULT: 'clock-backwards' });
  assert.equal(code, 1, out);
  assert.match(out, /FAIL basics: \d+ difference\(s\) from basics\.expected\.json/);
  assert.match(out, /appended\[0\]\.commit:\n {4}expected: "08c5871f1a25e5b9e8f7548ad9f2b8451c732b80"/);
  assert.match(out, /spaces\.org\.events\[0\]: strings differ at character 33\n {4}expected: .*\\"at_ms\\":1700000000000,.*\n {4}actual: {3}.*\\"at_ms\\":1699996400000,/);
});

test('fault cas-ignores-expected: the import conformance check reports the swap', () => {
  const { code, out } = node('runner.js', { DLOG_FAULT: 'cas-ignores-expected' });
  assert.equal(code, 1, out);
  assert.match(out, /FAIL import conformance: refs\.compare-and-swap, expected a wrong id: expected \{"tag":"mismatch","val":"a{40}"\}, got \{"tag":"swapped"\}/);
  assert.match(out, /FAIL import conformance: refs\.compare-and-swap, expected none but the ref exists/);
  // A single writer never loses a race, so the replay alone cannot see this fault.
  assert.match(out, /ok basics: .*identical to basics\.expected\.json/);
});

test('fault wrong-object-id: conformance, the guest and git all refuse the ids', () => {
  const { code, out } = node('runner.js', { DLOG_FAULT: 'wrong-object-id' });
  assert.equal(code, 1, out);
  assert.match(out, /FAIL import conformance: objects\.write\(blob, "hello"\) returns git's id: expected "b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0"/);
  assert.match(out, /FAIL basics: step 1 \(space org, at_ms 1700000000000\): append failed: storage: .*its git id is 2f54e6b8b821747f06e83faf7acfe8f65d87d8b0/);
  assert.match(out, /FAIL basics: git: git hash-object -t blob gives 2f54e6b8b821747f06e83faf7acfe8f65d87d8b0 for the object the host stored as [0-9a-f]{40}/);
});

test('an unknown fault is a usage error', () => {
  const { code, out } = node('runner.js', { DLOG_FAULT: 'no-such-fault' });
  assert.equal(code, 2, out);
  assert.match(out, /unknown fault no-such-fault; known: clock-backwards, cas-ignores-expected, wrong-object-id/);
});

test('the build fails clearly when the component is missing', () => {
  const { code, out } = node('build.js', { DLOG_COMPONENT: 'build/no-such-component.wasm' });
  assert.equal(code, 1, out);
  assert.match(out, /the component .*no-such-component\.wasm does not exist/);
  assert.match(out, /cargo run -q -- component --out tests\/jco-host\/build\/decision-log\.wasm/);
});
