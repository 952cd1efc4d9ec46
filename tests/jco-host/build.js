// `npm run build`: transpile the decision-log component into build/js/ with jco.
//
// The component comes from $DLOG_COMPONENT (relative paths are taken from this
// folder), default build/decision-log.wasm. CI writes it from the repository
// root with:
//   cargo run -q -- component --out tests/jco-host/build/decision-log.wasm
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

const here = import.meta.dirname;
export const component = resolve(here, process.env.DLOG_COMPONENT || 'build/decision-log.wasm');
const out = join(here, 'build', 'js');

if (!existsSync(component)) {
  console.error(`jco-host: the component ${component} does not exist.
Write it first, from the repository root:
  cargo run -q -- component --out tests/jco-host/build/decision-log.wasm
(or point DLOG_COMPONENT at an existing component file).`);
  process.exit(1);
}

rmSync(out, { recursive: true, force: true });
// --instantiation async: the module exports instantiate(getCoreModule, imports),
// so every run passes its own import object (a fresh host, possibly faulty).
execFileSync(
  join(here, 'node_modules', '.bin', 'jco'),
  ['transpile', component, '--out-dir', out, '--name', 'decision-log', '--instantiation', 'async', '--quiet'],
  { stdio: 'inherit' },
);
console.log(`jco-host: transpiled ${component} into ${out}`);
