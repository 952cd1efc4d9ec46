// Browser tests of the web page: a real `dlog serve --http` on a temporary
// repository, Debian's Chromium driven by playwright-core. It builds
// nothing: DLOG_BIN (default target/debug/dlog) must exist. A missing
// browser fails the run; it is never skipped.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const dlog = process.env.DLOG_BIN || join(root, "target/debug/dlog");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

let dir, repo, serve, base, browser;

function run(...args) {
  return execFileSync(dlog, ["--repo", repo, ...args], {
    env: { ...process.env, DLOG_ACTOR: "tester", DLOG_IDENTITY: "" },
    encoding: "utf8",
  });
}

before(async () => {
  assert.ok(existsSync(dlog), `no dlog binary at ${dlog}: run cargo build first (or set DLOG_BIN)`);
  assert.ok(existsSync(browserPath), `no browser at ${browserPath}: apt-get install chromium`);
  dir = mkdtempSync(join(tmpdir(), "dlog-web-"));
  repo = join(dir, "log.git");
  execFileSync(dlog, ["init", "--bare", repo]);
  run("append", "team", "--key", "db", "--choice", "postgres", "--why", "we know it", "--reject", "mongo=no joins", "--id", "d1", "--actor", "alice");
  run("append", "team", "--key", "db", "--choice", "sqlite", "--why", "one file is enough", "--supersedes", "d1", "--id", "d2", "--actor", "bob");
  run("append", "team", "--key", "cache", "--choice", "redis", "--why", "shared sessions", "--reject", "memcached=no persistence", "--actor", "carol");
  run("append", "team", "--key", "ci", "--choice", "github actions", "--why", "where the code is", "--actor", "alice");

  serve = spawn(dlog, ["--repo", repo, "serve", "team", "--ttl", "5s", "--http", "127.0.0.1:0"], {
    env: { ...process.env, DLOG_IDENTITY: "" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  base = await new Promise((ok, fail) => {
    let text = "", url = null;
    const timer = setTimeout(() => fail(new Error("serve did not start: " + text)), 60000);
    serve.stderr.on("data", (chunk) => {
      text += chunk;
      const m = text.match(/http listening on (http:\/\/\S+)/);
      if (m) url = m[1];
      if (url && text.includes("dlog serve: serving team")) { clearTimeout(timer); ok(url); }
    });
    serve.on("exit", (code) => fail(new Error(`serve exited (${code}): ${text}`)));
  });
  browser = await chromium.launch({
    executablePath: browserPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (serve) serve.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the space page shows the decisions in force with why and why not", async () => {
  const page = await browser.newPage();
  await page.goto(base + "/spaces/team/");
  const db = page.locator('li.decision[data-key="db"]');
  await assert.doesNotReject(db.waitFor());
  assert.equal(await db.locator(".choice").innerText(), "sqlite");
  const cache = page.locator('li.decision[data-key="cache"]');
  assert.match(await cache.innerText(), /shared sessions/);
  assert.match(await cache.innerText(), /Why not\s+memcached: no persistence/);
  assert.equal(await page.locator("#decisions > li").count(), 3);
  await page.close();
});

test("a decision appended by another process appears without a reload", async () => {
  const page = await browser.newPage();
  await page.goto(base + "/spaces/team/");
  await page.locator("#live").filter({ hasText: "live" }).waitFor({ timeout: 15000 });
  run("append", "team", "--key", "queue", "--choice", "kafka", "--why", "replayable streams", "--actor", "dave");
  const queue = page.locator('li.decision[data-key="queue"]');
  await queue.waitFor({ timeout: 15000 });
  assert.equal(await queue.locator(".choice").innerText(), "kafka");
  assert.equal(await page.locator("#n-force").innerText(), "4");
  // A retraction moves it to the withdrawn list, live too.
  run("append", "team", "--kind", "retract", "--key", "queue", "--why", "not needed yet", "--actor", "dave");
  await page.locator('#withdrawn li[data-key="queue"]').waitFor({ timeout: 15000 });
  assert.equal(await page.locator('#decisions li[data-key="queue"]').count(), 0);
  await page.close();
});

test("filters by key, actor and text narrow the list", async () => {
  const page = await browser.newPage();
  await page.goto(base + "/spaces/team/");
  await page.getByLabel("Key").fill("cach");
  assert.equal(await page.locator("#decisions > li:not([hidden])").count(), 1);
  assert.match(await page.locator("#f-count").innerText(), /^1 of \d+ shown$/);
  await page.getByLabel("Key").fill("");
  await page.getByLabel("Actor").fill("alice");
  const visible = await page.locator("#decisions > li:not([hidden])").evaluateAll((els) => els.map((e) => e.dataset.key));
  assert.deepEqual(visible, ["ci"]);
  await page.getByLabel("Actor").fill("");
  await page.getByLabel("Text").fill("no persistence");
  assert.deepEqual(
    await page.locator("#decisions > li:not([hidden])").evaluateAll((els) => els.map((e) => e.dataset.key)),
    ["cache"]);
  await page.getByLabel("Text").fill("nothing like this");
  assert.equal(await page.locator("#none").isVisible(), true);
  await page.close();
});

test("a key's history follows its supersede chain", async () => {
  const page = await browser.newPage();
  await page.goto(base + "/spaces/team/");
  await page.locator('li.decision[data-key="db"] a.key').click();
  await page.waitForURL(/decisions\/db\.html$/);
  assert.match(await page.locator("h1").innerText(), /db/);
  assert.equal(await page.locator("#timeline > li").count(), 2);
  assert.match(await page.locator("#ev-2").innerText(), /in force/);
  await page.locator("#ev-2 .chain a").click();
  await page.waitForURL(/#ev-1$/);
  assert.match(await page.locator("#ev-1").innerText(), /postgres/);
  assert.equal(await page.locator("#ev-1:target").count(), 1);
  await page.close();
});

test("the page has landmarks, labels and keyboard focus", async () => {
  const page = await browser.newPage();
  await page.goto(base + "/spaces/team/");
  for (const selector of ["header", "nav[aria-label]", "main#main", "footer", "form[role=search]", "h1", "h2"]) {
    assert.ok(await page.locator(selector).count() > 0, selector + " is missing");
  }
  for (const label of ["Key", "Tag", "Actor", "Text"]) {
    assert.equal(await page.getByLabel(label).count(), 1, `no input labelled ${label}`);
  }
  // The first Tab reaches the skip link, which is visible when focused and leads to main.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip");
  const box = await page.locator("a.skip").boundingBox();
  assert.ok(box && box.x >= 0, "the skip link is visible when focused");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "main");
  // Tab on reaches the filters and then the decisions' links, with a visible outline.
  await page.keyboard.press("Tab");
  let seen = [];
  for (let i = 0; i < 8; i++) {
    seen.push(await page.evaluate(() => document.activeElement.id || document.activeElement.className));
    await page.keyboard.press("Tab");
  }
  assert.ok(seen.includes("f-key") && seen.includes("key"), "keyboard order: " + seen.join(", "));
  await page.getByLabel("Key").focus();
  const outline = await page.getByLabel("Key").evaluate((e) => getComputedStyle(e).outlineStyle);
  assert.notEqual(outline, "none");
  await page.close();
});

test("the page reads on a phone and a screenshot is kept", async () => {
  const phone = await browser.newPage({ viewport: { width: 375, height: 720 } });
  await phone.goto(base + "/spaces/team/");
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
  await phone.close();
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  await page.goto(base + "/spaces/team/");
  await page.locator('li.decision[data-key="db"]').waitFor();
  mkdirSync(join(root, "docs"), { recursive: true });
  await page.screenshot({ path: join(root, "docs/web.png"), fullPage: false });
  await page.close();
});

test("the static site from dlog site works from file://", async () => {
  const out = join(dir, "site");
  run("site", "team", "--out", out);
  const page = await browser.newPage();
  await page.goto(pathToFileURL(join(out, "index.html")).href);
  await page.getByRole("link", { name: "team" }).click();
  await page.locator('li.decision[data-key="db"]').waitFor();
  await page.locator('li.decision[data-key="db"] a.key').click();
  await page.waitForURL(/decisions\/db\.html$/);
  assert.equal(await page.locator("#timeline > li").count(), 2);
  await page.close();
});
