// Opens an access-review HTML file in headless chromium and prints, as JSON,
// the time to its load event (navigation timing), the rows the table drew
// and the people in its data. Used by bench/console_bench.py.
//
//   SE_OFFLINE=true node bench/report_load.js REPORT.html
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const modules = path.join(__dirname, '../tests/browser/node_modules');
const { Builder } = require(path.join(modules, 'selenium-webdriver'));
const chrome = require(path.join(modules, 'selenium-webdriver/chrome'));

async function main() {
  const file = path.resolve(process.argv[2]);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'idsync-chromium-'));
  const options = new chrome.Options().setChromeBinaryPath('/usr/bin/chromium')
    .addArguments('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--user-data-dir=' + profile);
  const driver = await new Builder().forBrowser('chrome').setChromeOptions(options)
    .setChromeService(new chrome.ServiceBuilder('/usr/bin/chromedriver')).build();
  try {
    await driver.get('file://' + file);
    await driver.wait(async () => driver.executeScript(
      "const n = performance.getEntriesByType('navigation')[0]; return n && n.loadEventEnd > 0;"), 60000);
    const seen = await driver.executeScript(`
      const n = performance.getEntriesByType('navigation')[0];
      return { load_ms: n.loadEventEnd - n.startTime,
               rows: document.querySelectorAll('#people tbody tr').length,
               people: JSON.parse(document.getElementById('report-data').textContent).people.length };`);
    process.stdout.write(JSON.stringify(seen) + '\n');
  } finally {
    await driver.quit();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
