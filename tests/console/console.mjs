// The console in a real browser (Debian's chromium driven by puppeteer-core; nothing is
// downloaded).  Run by tests/test_serve_console.c against a server on 127.0.0.1 started with the
// serve fixture (tenants acme: a1, beta: a2, ops: admin; shared1 shared) and --guard parden.
//   node console.mjs BASE_URL PUPPETEER_DIR OUT_DIR
// Prints "ok - what" / "not ok - what: why" per check and last "console checks: P passed, F failed".
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const [base, pupDir, outDir] = process.argv.slice(2);
const puppeteer = createRequire(join(resolve(pupDir), 'package.json'))('puppeteer-core');
const ACME = 'sk-acme-test-1', OPS = 'sk-ops-test-01';
const UNAUTHORIZED = "Incorrect or missing API key: send 'Authorization: Bearer KEY' with a key from the tenants file";
let passed = 0, failed = 0;

function check(ok, what, why = '') {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'ok' : 'not ok'} - ${what}${ok || !why ? '' : ': ' + why}`);
}

const profile = mkdtempSync(join(tmpdir(), 'braid-chromium-'));
const browser = await puppeteer.launch({
  executablePath: '/usr/bin/chromium', headless: true, userDataDir: profile,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         `--user-data-dir=${profile}`],
});
const problems = [];      // console errors, page errors, CSP violations
let expectedHttp = 0;     // API refusals the steps provoke on purpose (the browser logs them)
const page = await browser.newPage();
await page.evaluateOnNewDocument(() => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', e => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
});
page.on('console', m => {
  if (m.type() !== 'error') return;
  if (/Failed to load resource: the server responded with a status of 40[13]/.test(m.text()) && expectedHttp > 0) {
    expectedHttp--;
    return;
  }
  problems.push('console: ' + m.text());
});
page.on('pageerror', e => problems.push('page error: ' + e.message));
page.on('requestfailed', r => { if (!r.url().includes('/v1/')) problems.push('request failed: ' + r.url()); });
const hosts = new Set();
page.on('request', r => { if (/^(https?|wss?):/.test(r.url())) hosts.add(new URL(r.url()).host); });

const text = sel => page.$eval(sel, e => e.textContent);
// Waits until the text of `sel` matches the regular expression `re` (no eval in the page: the
// page's CSP forbids it, and this script must pass the same CSP).
const waitText = (sel, re, timeout = 20000) =>
  page.waitForFunction((s, r) => { const e = document.querySelector(s); return e && new RegExp(r).test(e.textContent); },
                       { timeout }, sel, re);

async function useKey(key) {
  await page.$eval('#api-key', (e, k) => { e.value = k; }, key);
  await page.click('#key-save');
}

async function step(what, fn) {
  try { await fn(); } catch (e) {
    const answers = await page.$$eval('.answer', as => as.map(a => a.innerText).join(' | ')).catch(x => String(x));
    await page.screenshot({ path: join(outDir, `failed-${what.replace(/\W+/g, '-')}.png`) }).catch(() => {});
    check(false, what, e.message.split('\n')[0] + (answers ? ` (answers: ${answers})` : ''));
  }
}

await step('page loads', async () => {
  expectedHttp++; // the keyless /v1/models at start: 401
  const res = await page.goto(base + '/', { waitUntil: 'networkidle0' });
  check(res.status() === 200, 'GET / is 200', String(res.status()));
  const csp = res.headers()['content-security-policy'] || '';
  check(/default-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), 'strict Content-Security-Policy', csp);
  check((res.headers()['content-type'] || '').startsWith('text/html'), 'index is text/html');
  check(await page.$('#prompt') !== null, 'the playground is there');
});

await step('bad key', async () => {
  expectedHttp++;
  await useKey('sk-wrong-key-123');
  await waitText('#key-status', 'API key');
  check(await text('#key-status') === UNAUTHORIZED, "a bad key shows the API's 401 message", await text('#key-status'));
});

await step('tenant models', async () => {
  expectedHttp++; // acme's /v1/status probe: 403
  await useKey(ACME);
  await waitText('#key-status', 'models');
  const ids = await page.$$eval('#model-a option', os => os.map(o => o.value));
  check(ids.includes('a1') && ids.includes('shared1'), 'acme sees its adapter and the shared one', ids.join(','));
  check(!ids.includes('a2'), "acme does not see beta's adapter", ids.join(','));
  check(await page.$eval('#tab-ops', e => e.hidden), 'no operator view for a tenant key');
  check(await page.evaluate(() => sessionStorage.getItem('braid.key')) === ACME &&
        await page.evaluate(() => localStorage.length) === 0, 'the key is in sessionStorage only');
});

await step('streamed completion', async () => {
  await page.select('#model-a', 'a1');
  await page.select('#mode', 'completion');
  await page.$eval('#prompt', e => { e.value = 'Once upon a time'; });
  await page.$eval('#max-tokens', e => { e.value = '12'; });
  await page.click('#send');
  await page.waitForSelector('.answer[aria-busy="false"]', { timeout: 30000 });
  const stats = await text('.answer .stats');
  check((await text('.answer pre')).length > 0, 'a streamed answer appears', await text('.answer .error'));
  check(/prompt \+ \d+ completion tokens/.test(stats) && /first token \d+ ms/.test(stats),
        'token counts and time to first token shown', stats);
  const verdict = await page.$eval('.answer .verdict', e => e.hidden ? '' : e.textContent);
  check(/^PARDEN (pass|flagged) · score \d/.test(verdict), 'the guard verdict and score are shown', verdict);
});

await step('side by side', async () => {
  await page.select('#mode', 'chat');
  await page.click('#side');
  await page.select('#model-b', 'shared1');
  await page.$eval('#prompt', e => { e.value = 'Say hello'; });
  await page.click('#send');
  await page.waitForFunction(() => document.querySelectorAll('.answer[aria-busy="false"]').length === 2, { timeout: 30000 });
  const heads = await page.$$eval('.answer h3', hs => hs.map(h => h.textContent));
  const texts = await page.$$eval('.answer pre', ps => ps.map(p => p.textContent));
  check(heads.length === 2 && heads[0] === 'a1' && heads[1] !== 'a1', 'two answers from two models', heads.join(' | '));
  check(texts.every(t => t.length > 0) || (await page.$$eval('.answer .verdict', v => v.every(x => !x.hidden))),
        'both answers arrive', JSON.stringify(texts));
  await page.screenshot({ path: join(outDir, 'playground.png'), fullPage: true });
  await page.click('#side');
});

await step('keyboard only', async () => {
  await page.$eval('#prompt', e => { e.value = ''; });
  await page.evaluate(() => { document.activeElement.blur(); window.scrollTo(0, 0); });
  let found = false;
  for (let i = 0; i < 40 && !found; i++) {
    await page.keyboard.press('Tab');
    found = await page.evaluate(() => document.activeElement && document.activeElement.id === 'prompt');
  }
  check(found, 'Tab reaches the prompt');
  await page.keyboard.type('Hello there');
  await page.keyboard.press('Enter');
  await page.waitForSelector('.answer[aria-busy="false"]', { timeout: 30000 });
  const h = await text('.answer h3');
  check(h === 'a1' && (await text('.answer .stats')).includes('total'), 'Enter sends', h);
  check(await page.$eval('#prompt', e => e.value) === 'Hello there', 'Enter does not add a new line');
});

await step('operator view', async () => {
  await useKey(OPS);
  await page.waitForFunction(() => !document.getElementById('tab-ops').hidden, { timeout: 10000 });
  await page.click('#tab-ops');
  await page.waitForFunction(() => document.querySelectorAll('#adapters tbody tr').length > 0, { timeout: 10000 });
  const rows = await page.$$eval('#adapters tbody tr', rs => rs.map(r => [...r.cells].map(c => c.textContent)));
  const a1 = rows.find(r => r[0] === 'a1');
  check(a1 && a1[1] === 'acme' && a1[2] === 'ready' && a1[3].endsWith('MB'), 'a1 is listed as loaded after its requests',
        JSON.stringify(a1));
  check(await page.$$eval('#charts svg path', ps => ps.length) >= 3, 'charts are drawn as inline SVG');
  check((await page.$$eval('#tenants tbody tr', rs => rs.length)) === 4, 'per-tenant usage lists every tenant');
  await page.type('#load-name', 'console-extra');
  await page.type('#load-path', 'shared1');
  await page.click('#load-btn');
  await waitText('#load-result', '.');
  check(await text('#load-result') === 'loaded console-extra', 'an adapter loads from the page', await text('#load-result'));
  await page.waitForSelector('#adapters tr[data-name="console-extra"]', { timeout: 10000 });
  await page.screenshot({ path: join(outDir, 'operator.png'), fullPage: true });
  await page.click('#adapters tr[data-name="console-extra"] button');
  await waitText('#load-result', '^unloaded');
  await page.waitForFunction(() => !document.querySelector('#adapters tr[data-name="console-extra"]'), { timeout: 10000 });
  check(true, 'the adapter unloads from the page');
});

await step('phone width', async () => {
  await page.setViewport({ width: 375, height: 740, isMobile: true });
  for (const tab of ['#tab-ops', '#tab-play']) {
    await page.click(tab);
    await new Promise(r => setTimeout(r, 300));
    const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
      .filter(e => { const cw = document.documentElement.clientWidth + 0.5, p = e.parentElement;
        return e.getBoundingClientRect().right > cw && p && p.getBoundingClientRect().right <= cw; })
      .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className).join(' '));
    check(sw <= cw, `no horizontal scroll at 375 px (${tab.slice(5)})`, `${sw} > ${cw}: ${wide}`);
  }
  await page.screenshot({ path: join(outDir, 'phone.png') });
});

const csp = await page.evaluate(() => window.__csp);
check(csp.length === 0, 'no CSP violations', csp.join('; '));
check(problems.length === 0, 'no console errors', problems.join(' | '));
check([...hosts].every(h => h === new URL(base).host), 'no request leaves the server', [...hosts].join(','));
await browser.close();
rmSync(profile, { recursive: true, force: true });
console.log(`console checks: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
