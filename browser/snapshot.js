#!/usr/bin/env node
// Open pages in headless Chromium (the system's, through playwright-core: no browser download) and print,
// as JSON on stdout, each page's visible text once the expected strings appear (or the timeout passes),
// with its console errors and failed requests; optionally save a screenshot of each page.
//
// Usage: node snapshot.js SPEC.json   where SPEC is
//   {"chromium": "/usr/bin/chromium", "timeout_ms": 30000,
//    "pages": [{"name": "root", "url": "http://127.0.0.1:8000/browser/#/...", "expect": ["text"],
//               "screenshot": "out/root.png", "scroll": false}]}
// ("screenshot" may also be a list of {"path", "clip": {"x", "y", "width", "height"}} or {"path", "selector"}: the
// first element matching a CSS selector, e.g. ".map" for the map; "settle_ms" waits that long after the text shows.)
// Only 127.0.0.1/localhost requests are let through, so runs are offline and do not wait on map tiles.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
];
const LOCAL = new Set(['127.0.0.1', 'localhost', '[::1]']);

// The page's visible text, with the no-break spaces stac-fields puts between numbers and units made plain.
const bodyText = () => document.body.innerText.replace(/\u00a0/g, ' ');

const scrollToQueued = () => {
  const card = document.querySelector('.queued');
  if (card) card.scrollIntoView({ block: 'center' });
  else window.scrollBy(0, window.innerHeight);
};

async function snapshot(context, spec, timeoutMs) {
  const page = await context.newPage();
  const result = {
    name: spec.name, url: spec.url, ready: false, text: '', missing: [], console: [], page_errors: [],
    failed_requests: [], blocked: [], seconds: 0,
  };
  page.on('console', (msg) => { if (msg.type() === 'error') result.console.push(msg.text()); });
  page.on('pageerror', (err) => result.page_errors.push(String(err)));
  page.on('requestfailed', (req) => {
    if (LOCAL.has(new URL(req.url()).hostname)) {
      result.failed_requests.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
    }
  });
  await page.route('**/*', (route) => {
    const url = route.request().url();
    const { protocol, hostname } = new URL(url);
    if (['data:', 'blob:'].includes(protocol) || LOCAL.has(hostname)) return route.continue();
    result.blocked.push(url);
    return route.abort('blockedbyclient');
  });
  const started = Date.now();
  await page.goto(spec.url, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
  const expect = spec.expect || [];
  // STAC Browser renders after its requests resolve: poll the text rather than guess a load event.
  // STAC Browser loads an item's JSON only while its card is in view (cards waiting carry the class "queued";
  // one scrolled away before its turn is dropped from the queue): with "scroll", bring those cards into view.
  for (;;) {
    if (spec.scroll) await page.evaluate(scrollToQueued);
    result.text = await page.evaluate(bodyText);
    result.missing = expect.filter((t) => !result.text.includes(t));
    if (result.missing.length === 0) { result.ready = true; break; }
    if (Date.now() - started > timeoutMs) break;
    await page.waitForTimeout(250);
  }
  if (result.ready) {
    if (spec.scroll) await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(spec.settle_ms ?? 500); // let late sections (maps, assets) lay out
    result.text = await page.evaluate(bodyText);
  }
  result.final_url = page.url();
  result.title = await page.title();
  result.seconds = (Date.now() - started) / 1000;
  // "screenshot": a path (the full page) or a list of {"path", "clip": {x, y, width, height}} / {"path", "selector"}.
  const shots = typeof spec.screenshot === 'string' ? [{ path: spec.screenshot }] : (spec.screenshot || []);
  for (const shot of shots) {
    fs.mkdirSync(path.dirname(shot.path), { recursive: true });
    let clip = shot.clip;
    if (shot.selector) { // the element's box (a locator screenshot waits for a map that never stops rendering)
      clip = await page.evaluate((sel) => {
        const el = document.querySelector(sel);
        if (!el) return null;
        el.scrollIntoView({ block: 'center' });
        const r = el.getBoundingClientRect();
        return { x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height };
      }, shot.selector);
      if (!clip) { result.missing.push(`element ${shot.selector}`); result.ready = false; continue; }
    }
    await page.screenshot({ path: shot.path, fullPage: true, clip });
  }
  result.screenshots = shots.map((shot) => shot.path);
  await page.close();
  return result;
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf-8'));
  const timeoutMs = spec.timeout_ms || 30000;
  // A fresh profile per run: no cached catalog, service worker or stored locale from an earlier run.
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'stac-mmtp-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: spec.chromium || '/usr/bin/chromium',
      headless: true,
      args: FLAGS,
      locale: 'en-US',
      timezoneId: 'UTC',
      viewport: { width: 1280, height: 900 },
    });
    const out = { chromium: context.browser()?.version() ?? null, pages: [] };
    for (const p of spec.pages) {
      out.pages.push(await snapshot(context, p, timeoutMs));
    }
    process.stdout.write(JSON.stringify(out, null, 1) + '\n');
  } finally {
    if (context) await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
