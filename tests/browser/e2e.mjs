// End-to-end test of the Tocsin web pages in headless Chromium, driven by
// playwright-core. tests/it/browser.rs starts a member instance and a
// Clearing House that follows it, creates the accounts, then runs this
// script with their addresses in the environment.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const member = env('MEMBER_BASE');
const clearingHouse = env('CH_BASE');
const shots = env('SCREENSHOTS');
const feed = env('FEED');
const author = { name: env('AUTHOR_NAME'), password: env('AUTHOR_PASSWORD') };
const editor = { name: env('EDITOR_NAME'), password: env('EDITOR_PASSWORD') };
const title = `Reporter detained in Lagos ${Date.now()}`;
const frenchTitle = 'Journaliste détenu à Lagos';

mkdirSync(shots, { recursive: true });
const userDataDir = mkdtempSync(join(tmpdir(), 'tocsin-chromium-'));

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function login(page, base, who) {
  await page.goto(`${base}/login`);
  await page.fill('#name', who.name);
  await page.fill('#password', who.password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.click('form[action="/login"] button')]);
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1024, height: 768 },
  locale: 'en-GB',
});
context.setDefaultTimeout(15000);
let failed = false;
try {
  const page = await context.newPage();

  // The author writes, previews and publishes an alert on the member.
  await login(page, member, author);
  await page.goto(`${member}/author/new`);
  await page.fill('#title', title);
  await page.fill('#body', 'Police arrested the reporter at the newsroom on **Monday**.');
  await page.fill('#language', 'en');
  await page.selectOption('#countries', ['NG']);
  await page.check('input[name="categories"][value="detention"]');
  await page.click('button[value="preview"]');
  check(await page.locator('.preview strong').innerText() === 'Monday', 'preview renders Markdown');
  await shot(page, 'author-new-alert-preview');
  await Promise.all([page.waitForURL(/\/author\?done=published/), page.click('button[value="publish"]')]);
  check((await page.content()).includes(title), 'the alert is listed');
  await shot(page, 'author-my-alerts');

  // A French translation, side by side with the original.
  await page.click(`tr:has-text("${title}") a[href$="/translate"]`);
  await page.fill('#title', frenchTitle);
  await page.fill('#body', 'La police a arrêté le journaliste à la rédaction lundi.');
  await page.fill('#language', 'fr');
  await shot(page, 'author-translation');
  await Promise.all([page.waitForURL(/done=translated/), page.click('form[action$="/translate"] button')]);
  check((await page.content()).includes(frenchTitle), 'the translation is listed');
  await page.click(`tr:has-text("${title}") a[href$="/deliveries"]`);
  await shot(page, 'author-deliveries');

  // The public alert page on the member.
  await page.goto(`${member}/author`);
  const href = await page.locator(`a:has-text("${title}")`).first().getAttribute('href');
  await page.goto(href);
  check((await page.locator('h1').innerText()) === title, 'public alert page');
  await shot(page, 'reader-alert');

  // The editor approves it from the Clearing House's queue.
  const desk = page;
  await login(desk, clearingHouse, editor);
  let found = false;
  for (let i = 0; i < 60 && !found; i++) {
    await desk.goto(`${clearingHouse}/editor/queue`);
    found = (await desk.locator(`a:has-text("${title}")`).count()) > 0;
    if (!found) await desk.waitForTimeout(500);
  }
  check(found, 'the alert reached the review queue');
  await shot(desk, 'editor-queue');
  await desk.click(`a:has-text("${title}")`);
  check((await desk.locator('#feeds-h').count()) === 1, 'matching feeds are shown');
  await shot(desk, 'editor-review');
  await Promise.all([desk.waitForURL(/done=approve/), desk.click('form[action$="/approve"] button')]);

  // It is on the feed page.
  await desk.goto(`${clearingHouse}/@${feed}`);
  check((await desk.locator(`a:has-text("${title}")`).count()) > 0, 'the alert is on the feed page');
  await shot(desk, 'reader-feed');
  await desk.goto(`${clearingHouse}/archive?q=Lagos`);
  check((await desk.locator(`a:has-text("${title}")`).count()) > 0, 'the archive finds it');
  await shot(desk, 'reader-archive');

  // The Arabic interface is right-to-left.
  await desk.goto(`${clearingHouse}/?lang=ar`);
  check(await desk.evaluate(() => document.documentElement.dir) === 'rtl', 'Arabic is right-to-left');
  check(await desk.evaluate(() => document.documentElement.lang) === 'ar', 'lang=ar');
  await shot(desk, 'reader-home-arabic');
  await desk.goto(`${clearingHouse}/editor/queue`);
  check(await desk.evaluate(() => document.documentElement.dir) === 'rtl', 'the choice is remembered');
  await shot(desk, 'editor-queue-arabic');

  // Keyboard: the first Tab reaches the skip link.
  await desk.goto(`${clearingHouse}/?lang=en`);
  await desk.keyboard.press('Tab');
  check(await desk.evaluate(() => document.activeElement.className) === 'skip', 'skip link is first');
  await shot(desk, 'reader-home');
  console.log('browser test passed: publish, translate, approve, feed page, Arabic');
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
