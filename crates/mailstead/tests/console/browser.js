// Drives Debian's chromium, headless, through the web console with playwright-core, for
// tests/console_browser.rs: a super admin logs in and creates a domain, a mailbox and an
// alias with a sender, logs out; the new user logs in and changes their password, then logs
// in with the new one. Every step saves a screenshot; the script prints one JSON object:
// {"screens": [{"name", "path", "text"}]} (text is the page's visible text), or
// {"error", "screens"} when a step failed.
//
// Usage: node browser.js CONFIG_JSON
//   {"base", "chromium", "shots", "admin", "admin_password", "domain", "user",
//    "user_password", "new_password", "alias"}

'use strict';

const path = require('path');
const { chromium } = require('playwright-core');

const config = JSON.parse(process.argv[2]);
const screens = [];

async function shot(page, name) {
  const file = path.join(config.shots, `${String(screens.length + 1).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  screens.push({ name, path: file, url: page.url(), text: await page.innerText('body') });
}

async function logIn(page, address, password) {
  await page.goto(`${config.base}/`);
  await page.getByLabel('Email address').fill(address);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await Promise.all([page.waitForURL(/\/console\/$/), page.getByRole('button', { name: 'Log in' }).click()]);
}

async function logOut(page) {
  await Promise.all([page.waitForURL(/\/console\/login/), page.getByRole('button', { name: 'Log out' }).click()]);
}

async function run(page) {
  await page.goto(`${config.base}/`);
  await shot(page, 'login');

  await logIn(page, config.admin, config.admin_password);
  await shot(page, 'dashboard');

  await page.getByRole('link', { name: 'Domains' }).first().click();
  const domainForm = page.locator('form[action="/console/domains"]');
  await domainForm.getByLabel('Domain name').fill(config.domain);
  await domainForm.getByLabel('Description').fill('Made in the browser');
  await Promise.all([
    page.waitForURL(/\/console\/domains\/.+saved=1/),
    domainForm.getByRole('button', { name: 'Create domain' }).click(),
  ]);
  await shot(page, 'domain-created');

  await page.getByRole('link', { name: 'Mailboxes' }).first().click();
  const mailboxForm = page.locator('form[action="/console/mailboxes"]');
  await mailboxForm.getByLabel('Email address').fill(config.user);
  await mailboxForm.getByLabel('Password').fill(config.user_password);
  await mailboxForm.getByLabel('Name', { exact: true }).fill('Browser User');
  await mailboxForm.getByLabel(/^Quota/).fill('1G');
  await Promise.all([
    page.waitForURL(/\/console\/mailboxes\/.+saved=1/),
    mailboxForm.getByRole('button', { name: 'Create mailbox' }).click(),
  ]);
  await shot(page, 'mailbox-created');

  await page.getByRole('link', { name: 'Aliases' }).first().click();
  const aliasForm = page.locator('form[action="/console/aliases"]');
  await aliasForm.getByLabel(/^Alias address/).fill(config.alias);
  await aliasForm.getByLabel('Recipients').fill(config.user);
  await aliasForm.getByLabel('Senders').fill(config.user);
  await Promise.all([
    page.waitForURL(/saved=1/),
    aliasForm.getByRole('button', { name: 'Create alias' }).click(),
  ]);
  await shot(page, 'alias-created');

  await logOut(page);

  await logIn(page, config.user, config.user_password);
  await page.getByRole('link', { name: 'My account' }).click();
  await shot(page, 'account');
  const passwordForm = page.locator('form[action="/console/account/password"]');
  await passwordForm.getByLabel('Current password').fill(config.user_password);
  await passwordForm.getByLabel('New password', { exact: true }).fill(config.new_password);
  await passwordForm.getByLabel('New password again').fill(config.new_password);
  await Promise.all([
    page.waitForURL(/password_changed=1/),
    passwordForm.getByRole('button', { name: 'Change password' }).click(),
  ]);
  await shot(page, 'password-changed');

  await logIn(page, config.user, config.new_password);
  await shot(page, 'logged-in-with-new-password');
}

(async () => {
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: config.chromium,
      headless: true,
      // Chromium's sandbox refuses to run as root, as CI runs.
      args: ['--no-sandbox'],
    });
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    await run(page);
    console.log(JSON.stringify({ screens }));
  } catch (err) {
    console.log(JSON.stringify({ error: String(err && err.stack ? err.stack : err), screens }));
  } finally {
    if (browser) await browser.close();
  }
})();
