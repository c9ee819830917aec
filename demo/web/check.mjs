// Opens the demo page in headless Chromium (Debian's, through puppeteer-core: no browser is
// downloaded), waits until it has rendered or failed, saves a screenshot and writes what the
// page published in window.__ganzoo (status, message, the inputs and outputs of each run) as
// JSON. Used by `python -m zoo.demo --check`.
//
//   node check.mjs --url-file=PATH --screenshot=PATH --result=PATH
//                  [--browser=/usr/bin/chromium] [--timeout=90]
// (--url=URL works too; a URL carrying a latent batch can be longer than one argument may be.)
// Exit code 0 when the page reached a final status (done, ready or error; the caller reads
// which), 3 when the browser could not start or the page never finished.
import {readFileSync, writeFileSync} from 'node:fs';

import puppeteer from 'puppeteer-core';

const options = Object.fromEntries(process.argv.slice(2).map((arg) => {
  const match = /^--([^=]+)=(.*)$/s.exec(arg);
  if (!match) throw new Error(`bad argument ${arg}`);
  return [match[1], match[2]];
}));
const url = options['url-file'] ? readFileSync(options['url-file'], 'utf8').trim() : options.url;
const browserPath = options.browser || process.env.CHROMIUM || '/usr/bin/chromium';
const timeout = 1000 * Number(options.timeout || 90);

const consoleLines = [];
let browser;
try {
  browser = await puppeteer.launch({
    executablePath: browserPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    timeout,
  });
} catch (err) {
  console.error(`cannot start ${browserPath}: ${String(err.message).split('\n')[0]}`);
  process.exit(3);
}
let code = 0;
try {
  const page = await browser.newPage();
  await page.setViewport({width: 1100, height: 900});
  page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (err) => consoleLines.push(`pageerror: ${err.message}`));
  const response = await page.goto(url, {waitUntil: 'load', timeout});
  if (!response?.ok()) {
    writeFileSync(options.result, JSON.stringify({
      status: 'http-error', message: `HTTP ${response?.status()} for the page`,
    }));
    throw new Error(`HTTP ${response?.status()} for ${url.slice(0, 100)}`);
  }
  let finished = true;
  try {
    await page.waitForFunction(
      () => ['done', 'ready', 'error'].includes(window.__ganzoo?.status), {timeout, polling: 100});
  } catch {
    finished = false;
  }
  const result = await page.evaluate(() => window.__ganzoo ?? null);
  await page.screenshot({path: options.screenshot, fullPage: true});
  const published = result ?? {status: 'no-state', message: 'the page script never ran'};
  if (!finished) {
    published.status = 'timeout';
    published.message = `the page did not finish within ${timeout / 1000} s ` +
      `(status ${result?.status ?? 'none'})`;
  }
  published.console = consoleLines.filter((line) => !line.includes('INFO:')).slice(-40);
  writeFileSync(options.result, JSON.stringify(published));
  if (!finished) code = 3;
} catch (err) {
  console.error(`page failed: ${String(err.message).split('\n')[0]}`);
  code = 3;
} finally {
  await browser.close();
}
process.exit(code);
