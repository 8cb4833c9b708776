// Drives idsync's console in Debian's chromium (through chromedriver) as a
// person would: a wrong token, then the right one, the overview, the plan,
// a person found by search, the audit log, "sync now", and signing out. It
// saves a screenshot of each page and runs axe-core on it, and writes what
// it saw to OUT/result.json for the test that started idsyncd to compare
// with the CLI (tests/e2e/console_browser_test.cc).
//
//   SE_OFFLINE=true node console_test.js --url http://127.0.0.1:PORT \
//     --token TOKEN --person EMAIL --out DIR
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { Builder, By, until } = require('selenium-webdriver');
const chrome = require('selenium-webdriver/chrome');
const axe = require('axe-core');

function options(argv) {
  const o = {};
  for (let i = 2; i + 1 < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const k of ['url', 'token', 'person', 'out']) {
    if (!o[k]) throw new Error('missing --' + k);
  }
  return o;
}

async function main() {
  const o = options(process.argv);
  fs.mkdirSync(o.out, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'idsync-chromium-'));
  const chromeOptions = new chrome.Options()
    .setChromeBinaryPath('/usr/bin/chromium')
    .addArguments('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--window-size=1366,900', '--user-data-dir=' + profile);
  const driver = await new Builder().forBrowser('chrome').setChromeOptions(chromeOptions)
    .setChromeService(new chrome.ServiceBuilder('/usr/bin/chromedriver')).build();
  const result = { axe: {}, screenshots: [] };
  const wait = 15000;

  const byId = (id) => driver.findElement(By.id(id));
  const visible = async (id) => driver.wait(until.elementIsVisible(await driver.wait(until.elementLocated(By.id(id)), wait)), wait);
  // Waits until the console has drawn the page at `hash` (#view's
  // data-page, not busy) under the heading `text`.
  const page = async (hash, text) => driver.wait(async () => {
    try {
      return await driver.executeScript(`
        const v = document.getElementById('view'), t = document.getElementById('page-title');
        return v.dataset.page === arguments[0] && !v.hasAttribute('aria-busy') &&
               t !== null && t.textContent === arguments[1];`, hash, text);
    } catch (e) {
      return false;
    }
  }, wait, 'no page ' + hash + ' titled ' + text);

  // A screenshot, and axe-core's violations of the page as it is now.
  async function check(name) {
    const png = path.join(o.out, name + '.png');
    fs.writeFileSync(png, await driver.takeScreenshot(), 'base64');
    result.screenshots.push(png);
    await driver.executeScript(axe.source);
    result.axe[name] = await driver.executeAsyncScript(`
      const done = arguments[arguments.length - 1];
      axe.run(document).then((r) => done(r.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }))),
        (e) => done([{ id: 'axe-failed', impact: 'critical', help: String(e) }]));`);
  }

  async function signIn(token) {
    const input = await visible('token');
    await input.clear();
    await input.sendKeys(token);
    await driver.findElement(By.css('#signin-form button[type=submit]')).click();
  }

  try {
    await driver.get(o.url + '/ui/');
    await visible('signin');
    await check('signin');

    await signIn('not-the-token');
    await driver.wait(async () => (await byId('signin-error').getText()) !== '', wait);
    result.wrong_token_error = await byId('signin-error').getText();
    result.nav_hidden_after_wrong_token = !(await byId('nav').isDisplayed());

    await signIn(o.token);
    await visible('nav');
    await page('/', 'Overview');
    result.sources = [];
    for (const row of await driver.findElements(By.css('section[aria-labelledby=h-sources] tbody tr'))) {
      result.sources.push(await row.findElement(By.css('td')).getText());
    }
    await check('overview');

    await driver.get(o.url + '/ui/#/plan');
    await page('/plan', 'Plan');
    await check('plan');

    await driver.get(o.url + '/ui/#/people');
    await page('/people', 'People');
    const term = o.person.split('@')[0];
    await byId('q').sendKeys(term);
    await driver.findElement(By.css('form[role=search] button')).click();
    await page('/people?q=' + term, 'People');
    result.people_count = await byId('people-count').getText();
    await check('people');
    await driver.findElement(By.linkText(o.person)).click();
    await page('/people/' + encodeURIComponent(o.person), o.person);
    await visible('permissions');
    result.person = { role: await byId('person-role').getText(), permissions: {}, why: {} };
    for (const row of await driver.findElements(By.css('#permissions tbody tr'))) {
      const key = await row.getAttribute('data-key');
      result.person.permissions[key] = await row.findElement(By.css('td.level')).getText();
      const why = await row.findElement(By.css('td.why')).getText();
      if (why) result.person.why[key] = why;
    }
    await check('person');

    await driver.get(o.url + '/ui/#/audit');
    await page('/audit', 'Audit log');
    result.chain = await byId('chain').getText();
    result.audit = [];
    for (const row of await driver.findElements(By.css('#view table tbody tr'))) {
      const cells = await row.findElements(By.css('td'));
      result.audit.push({ seq: await cells[0].getText(), action: await cells[2].getText(), email: await cells[3].getText() });
    }
    await check('audit');

    await byId('sync').click();
    await driver.wait(async () => (await byId('sync').getText()) !== 'Sync now', wait);
    result.sync = await byId('sync').getText();

    await byId('signout').click();
    await visible('signin');
    result.after_signout = await driver.executeAsyncScript(`
      const done = arguments[arguments.length - 1];
      fetch('/ui/api/overview', { credentials: 'same-origin' }).then((r) => done(r.status), () => done(-1));`);
    await check('signed-out');
  } catch (e) {
    result.error = String(e && e.stack || e);
    try {
      fs.writeFileSync(path.join(o.out, 'failure.png'), await driver.takeScreenshot(), 'base64');
    } catch (ignored) { /* the browser is gone */ }
  } finally {
    fs.writeFileSync(path.join(o.out, 'result.json'), JSON.stringify(result, null, 2));
    await driver.quit();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.exit(result.error ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
