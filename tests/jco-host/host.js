// An in-memory host for the decision-log component: every import of the world
// `dlog:decision-log/decision-log@0.1.0`, in the shapes jco 1.35 expects
// (see build/js/interfaces/*.d.ts after `npm run build`):
//
// - u64 is a BigInt; option<T> is T or undefined; enum is its case name as a
//   string; variant is {tag, val}; tuple is an array; list<u8> a Uint8Array.
// - An import's result<T, E> is T when returned; throwing a non-Error value
//   (or an object with a `payload`) is err(value). Throwing an Error traps.
//
// A fault name deliberately breaks one import (see FAULTS).
import { createHash } from 'node:crypto';

export const FAULTS = {
  'clock-backwards': 'clock.now-ms returns one hour earlier than the time set',
  'cas-ignores-expected': 'refs.compare-and-swap always swaps, whatever the ref holds',
  'wrong-object-id': 'objects.write hashes "<kind> <len+1>\\0" ++ data instead of git\'s header',
};

/** Git's object id: SHA-1 of `"<kind> <len>\0" ++ data`, lowercase hex. */
export function gitObjectId(kind, data, len = data.length) {
  return createHash('sha1').update(`${kind} ${len}\0`).update(data).digest('hex');
}

const U64_MAX = 2n ** 64n - 1n;
const byName = ([a], [b]) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A fresh, empty host. `identity` and `epoch` make the lease: this host holds
 * every space, at `epoch`, until the end of time, with no endpoint.
 */
export function createHost({ identity, epoch, fault } = {}) {
  if (fault && !(fault in FAULTS)) {
    throw new Error(`unknown fault ${fault}; known: ${Object.keys(FAULTS).join(', ')}`);
  }
  const objects = new Map(); // id -> {kind, data}
  const refs = new Map(); // full ref name -> id
  let now = 0n;
  const idOf =
    fault === 'wrong-object-id' ? (kind, data) => gitObjectId(kind, data, data.length + 1) : gitObjectId;

  const imports = {
    'dlog:decision-log/types@0.1.0': {},
    'dlog:decision-log/objects@0.1.0': {
      write(kind, data) {
        const id = idOf(kind, data);
        if (!objects.has(id)) objects.set(id, { kind, data: Uint8Array.from(data) });
        return id;
      },
      read(id) {
        const o = objects.get(id);
        return o && [o.kind, Uint8Array.from(o.data)];
      },
    },
    'dlog:decision-log/refs@0.1.0': {
      read: (name) => refs.get(name),
      compareAndSwap(name, expected, new_) {
        const actual = refs.get(name);
        if (actual !== expected && fault !== 'cas-ignores-expected') return { tag: 'mismatch', val: actual };
        refs.set(name, new_);
        return { tag: 'swapped' };
      },
      list: (prefix) => [...refs].filter(([name]) => name.startsWith(prefix)).sort(byName),
    },
    'dlog:decision-log/authority@0.1.0': {
      identity: () => identity,
      current: (_space) => ({ holder: identity, epoch: BigInt(epoch), expiresAtMs: U64_MAX, endpoint: undefined }),
    },
    'dlog:decision-log/clock@0.1.0': {
      nowMs: () => (fault === 'clock-backwards' ? now - 3_600_000n : now),
    },
  };

  // jco 1.35's .d.ts names the imports with their version, but the generated
  // instantiate() reads them without it (bytecodealliance/jco#708): give both.
  for (const key of Object.keys(imports)) imports[key.replace(/@[^@/]+$/, '')] = imports[key];

  return {
    imports,
    objects,
    refs,
    /** Set the clock, in milliseconds since the Unix epoch. */
    setClock(ms) {
      now = BigInt(ms);
    },
  };
}
