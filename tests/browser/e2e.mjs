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
const admin = { name: env('ADMIN_NAME'), password: env('ADMIN_PASSWORD') };
const memberEditor = { name: env('MEMBER_EDITOR_NAME'), password: env('MEMBER_EDITOR_PASSWORD') };
const title = `Reporter detained in Lagos ${Date.now()}`;
const frenchTitle = 'Journaliste détenu à Lagos';

mkdirSync(shots, { recursive: true });
const userDataDir = mkdtempSync(join(tmpdir(), 'tocsin-chromium-'));

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

// Accessibility checks run in the page: every form field has a label,
// headings start at h1 and never skip a level, and text (body text, links,
// buttons) has a contrast of at least 4.5:1 against its background, both
// computed from the computed styles.
function audit() {
  const problems = [];
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const st = getComputedStyle(el);
    return r.width > 1 && r.height > 1 && st.visibility !== 'hidden' && st.display !== 'none';
  };
  for (const field of document.querySelectorAll('input, select, textarea')) {
    if (field.type === 'hidden') continue;
    const byFor = field.id && document.querySelector(`label[for="${CSS.escape(field.id)}"]`);
    const named = byFor || field.closest('label') || field.getAttribute('aria-label')
      || field.getAttribute('aria-labelledby');
    if (!named) problems.push(`unlabelled ${field.tagName.toLowerCase()} name=${field.name}`);
  }
  const levels = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map((h) => Number(h.tagName[1]));
  if (levels[0] !== 1) problems.push(`the first heading is h${levels[0]}`);
  if (levels.filter((l) => l === 1).length !== 1) problems.push('not exactly one h1');
  for (let i = 1; i < levels.length; i++) {
    if (levels[i] > levels[i - 1] + 1) problems.push(`heading h${levels[i - 1]} is followed by h${levels[i]}`);
  }
  const rgba = (text) => {
    const m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) return [0, 0, 0, 0];
    const parts = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) layers.push(rgba(getComputedStyle(e).backgroundColor));
    let colour = [255, 255, 255, 1];
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const luminance = ([r, g, b]) => {
    const lin = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  let checked = 0;
  for (const el of document.body.querySelectorAll('*')) {
    const ownText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!ownText || !visible(el)) continue;
    const bg = background(el);
    const fg = over(rgba(getComputedStyle(el).color), bg);
    const [a, b] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    checked++;
    if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)} for <${el.tagName.toLowerCase()}> "${el.textContent.trim().slice(0, 30)}"`);
  }
  if (checked === 0) problems.push('no text was checked');
  return problems;
}

const audited = [];
async function shot(page, name) {
  const problems = await page.evaluate(audit);
  check(problems.length === 0, `accessibility of ${name} (${page.url()}): ${problems.join('; ')}`);
  audited.push(name);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

// Logs in with the keyboard only: Tab to each field, type, Enter submits.
async function keyboardLogin(page, base, who) {
  await page.goto(`${base}/login`);
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(() => document.activeElement.id) === 'name') break;
  }
  check(await page.evaluate(() => document.activeElement.id) === 'name', 'Tab reaches the name field');
  await page.keyboard.type(who.name);
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.id) === 'password', 'Tab goes on to the password');
  await page.keyboard.type(who.password);
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.type) === 'submit', 'Tab goes on to the button');
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.keyboard.press('Enter')]);
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

  // The checker finds what it looks for: a page with one of each fault.
  await page.setContent('<h1>Title</h1><h3>Skipped a level</h3><input name="q">'
    + '<p style="color:#aaa;background:#fff">Too pale</p><button style="color:#fff;background:#ccc">Pale button</button>');
  const faults = await page.evaluate(audit);
  check(faults.length === 4 && faults.some((f) => f.includes('unlabelled input'))
    && faults.some((f) => f.includes('h1 is followed by h3'))
    && faults.filter((f) => f.startsWith('contrast')).length === 2, `the checker: ${faults.join('; ')}`);

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
  await keyboardLogin(desk, clearingHouse, editor);
  let found = false;
  for (let i = 0; i < 60 && !found; i++) {
    await desk.goto(`${clearingHouse}/editor/queue`);
    found = (await desk.locator(`a:has-text("${title}")`).count()) > 0;
    if (!found) await desk.waitForTimeout(500);
  }
  check(found, 'the alert reached the review queue');
  await shot(desk, 'editor-queue');
  await desk.click(`a:has-text("${title}")`);
  const reviewUrl = desk.url();
  // The French version reaches the Clearing House after the original.
  for (let i = 0; i < 60 && (await desk.locator('#tr-title-0').count()) === 0; i++) {
    await desk.waitForTimeout(500);
    await desk.goto(reviewUrl);
  }
  check((await desk.locator('#feeds-h').count()) === 1, 'matching feeds are shown');
  const prefilled = await desk.inputValue('#c-body');
  check(prefilled.includes('**Monday**') && !prefilled.includes(title), `the curate form holds the member's Markdown: ${prefilled}`);
  check((await desk.inputValue('#tr-title-0')) === frenchTitle, 'and its French version');
  await shot(desk, 'editor-review');
  await Promise.all([desk.waitForURL(/done=approve/), desk.click('form[action$="/approve"] button')]);

  // It is on the feed page.
  await desk.goto(`${clearingHouse}/@${feed}`);
  check((await desk.locator(`a:has-text("${title}")`).count()) > 0, 'the alert is on the feed page');
  await shot(desk, 'reader-feed');

  // The author edits the approved alert; the editor sees what changed.
  // (One browser: the instances share the host name, so the session
  // cookie of one replaces the other's and each switch logs in again.)
  const authorPage = page;
  await login(authorPage, member, author);
  await authorPage.goto(`${member}/author`);
  await authorPage.click(`tr:has-text("${title}") a:has-text("Edit")`);
  await authorPage.fill('#body', 'Police arrested the reporter at the newsroom on **Tuesday**.');
  await Promise.all([authorPage.waitForURL(/done=saved/), authorPage.click('button[value="publish"]')]);
  await authorPage.click(`tr:has-text("${title}") a[href$="/deliveries"]`);
  let delivered = '';
  for (let i = 0; i < 60 && delivered !== '1'; i++) {
    await authorPage.reload();
    delivered = (await authorPage.locator('tr:has(th:has-text("Delivered")) td').first().innerText()).trim();
    if (delivered !== '1') await authorPage.waitForTimeout(500);
  }
  check(delivered === '1', `the Clearing House counts once: ${delivered}`);
  check((await authorPage.locator('table.hosts tbody tr').count()) === 1, 'one line per server');
  await shot(authorPage, 'author-deliveries');
  await login(desk, clearingHouse, editor);
  let diff = false;
  for (let i = 0; i < 60 && !diff; i++) {
    await desk.goto(reviewUrl);
    diff = (await desk.locator('pre.diff ins').count()) > 0;
    if (!diff) await desk.waitForTimeout(500);
  }
  check(diff, 'the review page shows the diff');
  check((await desk.locator('pre.diff ins').first().innerText()).includes('Tuesday'), 'added words');
  check((await desk.locator('pre.diff del').first().innerText()).includes('Monday'), 'removed words');
  await shot(desk, 'editor-review-diff');

  // The editor creates a feed in the browser.
  await desk.goto(`${clearingHouse}/editor/feeds`);
  await shot(desk, 'editor-feeds');
  await desk.click('a[href="/editor/feeds/new"]');
  await desk.fill('#username', 'africa');
  await desk.fill('#display_name', 'Africa');
  await desk.fill('#summary', 'Alerts from Africa, reviewed by our editors.');
  await desk.selectOption('#regions', ['africa']);
  await desk.fill('#languages', 'en, fr');
  await desk.check('#review');
  await shot(desk, 'editor-feed-edit');
  await Promise.all([desk.waitForURL(/done=created/), desk.click('form[action="/editor/feeds/new"] button')]);
  check((await desk.locator('code:has-text("@africa")').count()) === 1, 'the new feed is listed');
  await desk.goto(`${clearingHouse}/editor/feeds/africa`);
  check((await desk.inputValue('#languages')) === 'en, fr', 'its rules are kept');
  await desk.goto(`${clearingHouse}/editor/directory`);
  await shot(desk, 'editor-directory');
  await desk.goto(`${clearingHouse}/editor/hosts`);
  await shot(desk, 'editor-hosts');

  // A reader on another Tocsin follows the feed through our follow box:
  // the member's WebFinger template sends the browser to its own
  // interaction page, where its editor confirms.
  await desk.goto(`${clearingHouse}/@africa`);
  await desk.fill('#handle', `alerts@${new URL(member).host}`);
  await Promise.all([desk.waitForURL((u) => u.pathname === '/login'), desk.click('form[action="/follow"] button')]);
  check(desk.url().startsWith(member), 'sent to the reader\'s own server');
  await desk.fill('#name', memberEditor.name);
  await desk.fill('#password', memberEditor.password);
  await Promise.all([desk.waitForURL((u) => u.pathname === '/interact'), desk.click('form[action="/login"] button')]);
  check((await desk.content()).includes('@africa@'), 'the interaction page names the feed');
  await shot(desk, 'interact');
  await Promise.all([desk.waitForURL(/sent=1/), desk.click('form[action="/interact"] button')]);
  check((await desk.locator('.notice').innerText()).length > 0, 'the follow request was sent');

  // An admin adds an account in the browser.
  await login(desk, clearingHouse, admin);
  await desk.goto(`${clearingHouse}/admin/users`);
  await desk.fill('#new-name', 'zoe');
  await desk.selectOption('#new-role', 'editor');
  await desk.click('form[action="/admin/users/add"] button');
  const generated = (await desk.locator('code.secret').innerText()).trim();
  check(generated.length >= 10, 'a generated password is shown once');
  await shot(desk, 'admin-users');
  await desk.goto(`${clearingHouse}/account`);
  await shot(desk, 'account');
  await desk.goto(`${clearingHouse}/archive?q=Lagos`);
  check((await desk.locator(`a:has-text("${title}")`).count()) > 0, 'the archive finds it');
  await shot(desk, 'reader-archive');

  // The Arabic interface is right-to-left.
  await desk.goto(`${clearingHouse}/?lang=ar`);
  check(await desk.evaluate(() => document.documentElement.dir) === 'rtl', 'Arabic is right-to-left');
  check(await desk.evaluate(() => document.documentElement.lang) === 'ar', 'lang=ar');
  await shot(desk, 'reader-home-arabic');
  await desk.goto(`${clearingHouse}/admin/users`);
  check(await desk.evaluate(() => document.documentElement.dir) === 'rtl', 'the choice is remembered');
  await shot(desk, 'admin-users-arabic');

  // Keyboard: the first Tab reaches the skip link.
  await desk.goto(`${clearingHouse}/?lang=en`);
  await desk.keyboard.press('Tab');
  check(await desk.evaluate(() => document.activeElement.className) === 'skip', 'skip link is first');
  await shot(desk, 'reader-home');
  await desk.goto(`${clearingHouse}/login`);
  await shot(desk, 'login');
  console.log(`accessibility checked on ${audited.length} pages: ${audited.join(', ')}`);
  console.log('browser test passed: publish, translate, approve, diff, feeds, remote follow, accounts, Arabic, accessibility');
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
