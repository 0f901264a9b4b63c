// The kitchen web UI in a real browser: Debian's Chromium driven through
// playwright-core against a running cupcake-factory in KITCHEN_MODE=manual.
// run.sh starts the server and passes its address in BASE_URL.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE_URL = process.env.BASE_URL;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
const TIMEOUT = 10_000;

let browser;
let page;

before(async () => {
  assert.ok(BASE_URL, 'BASE_URL must point at a running cupcake-factory (run.sh sets it)');
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
  context.setDefaultTimeout(TIMEOUT);
  page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err));
  page.on('console', (msg) => { if (msg.type() === 'error') console.error('console:', msg.text()); });
  await page.goto(BASE_URL);
  // Mark this document: if anything reloads the page, the mark is gone.
  await page.evaluate(() => { window.__sameDocument = true; });
  await page.locator('#connection[data-state="live"]').waitFor();
});

after(async () => {
  await browser?.close();
});

const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
const board = (station) => page.locator(`#board-${station}`);
const card = (station, id) => board(station).locator(`li.card[data-order-id="${id}"]`);
const dashboardStatus = (id) => page.locator(`#orders tr[data-order-id="${id}"] .status`);

async function assertNoReload() {
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was reloaded');
}

async function placeOrderInForm({ customer, flavour, size, quantity }) {
  await page.getByLabel('Customer').fill(customer);
  await page.getByLabel('Flavour').selectOption(flavour);
  await page.getByLabel('Size').selectOption(size);
  await page.getByLabel('Quantity').fill(String(quantity));
  await page.getByRole('button', { name: 'Place order' }).click();
  const result = page.locator('#order-result');
  await result.filter({ hasText: /Order o-\S+ placed/ }).waitFor();
  const id = await result.getAttribute('data-order-id');
  assert.match(id, /^o-/);
  return id;
}

test('an order placed in the form goes through every station live and ships', async () => {
  await page.getByLabel('Customer').focus(); // the customer's credit shows
  await page.locator('#customer-info').filter({ hasText: 'Alice' }).waitFor();
  await shot('01-empty-kitchen');

  const id = await placeOrderInForm({ customer: 'alice', flavour: 'chocolate', size: 'L', quantity: 12 });

  // It reaches the mixer's board through the stream, not a reload.
  await card('mixer', id).waitFor();
  await assertNoReload();
  await dashboardStatus(id).filter({ hasText: /^approved$/ }).waitFor();
  assert.match(await card('mixer', id).innerText(), /12 × L chocolate/);
  assert.match(await card('mixer', id).innerText(), /30\.00/);
  await shot('02-order-on-mixer-board');

  const steps = [
    { from: 'mixer', button: 'Mix', to: 'baker', status: 'mixed' },
    { from: 'baker', button: 'Bake', to: 'decorator', status: 'baked' },
    { from: 'decorator', button: 'Decorate', to: 'packaging', status: 'decorated' },
    { from: 'packaging', button: 'Box & ship', to: null, status: 'shipped' },
  ];
  for (const [i, s] of steps.entries()) {
    await card(s.from, id).getByRole('button', { name: `${s.button} ${id}` }).click();
    await card(s.from, id).waitFor({ state: 'detached' });
    if (s.to) await card(s.to, id).waitFor();
    await dashboardStatus(id).filter({ hasText: new RegExp(`^${s.status}$`) }).waitFor();
    await assertNoReload();
    await shot(`0${3 + i}-after-${s.button.split(' ')[0].toLowerCase()}`);
  }

  assert.equal(await dashboardStatus(id).innerText(), 'shipped');
  await page.locator('#activity li').filter({ hasText: `${id}: packaged → shipped` }).waitFor();
  // The server agrees.
  const order = await (await fetch(`${BASE_URL}/api/v1/order/${id}`)).json();
  assert.equal(order.status, 'shipped');
});

test('an order placed elsewhere appears live, and the failure button fails it', async () => {
  // Placed by someone else (the REST API), so only the stream can bring it.
  const res = await fetch(`${BASE_URL}/api/v1/order`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ customerId: 'alice', items: [{ flavour: 'lemon', size: 'S', quantity: 3 }] }),
  });
  assert.equal(res.status, 202);
  const { orderId: id } = await res.json();

  await card('mixer', id).waitFor();
  await assertNoReload();
  await card('mixer', id).getByRole('button', { name: `Mix ${id}` }).click();
  await card('baker', id).waitFor();

  await card('baker', id).getByRole('button', { name: `Report a problem with ${id}` }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByLabel('What went wrong?').fill('oven too hot');
  await shot('07-report-a-problem');
  await dialog.getByRole('button', { name: 'Fail order' }).click();
  await dialog.waitFor({ state: 'hidden' });

  await card('baker', id).waitFor({ state: 'detached' });
  await dashboardStatus(id).filter({ hasText: /^failed$/ }).waitFor();
  assert.match(await page.locator(`#orders tr[data-order-id="${id}"]`).innerText(), /oven too hot/);
  await assertNoReload();
  await shot('08-failed-on-dashboard');

  const order = await (await fetch(`${BASE_URL}/api/v1/order/${id}`)).json();
  assert.equal(order.status, 'failed');
});

test('the boards can be worked from the keyboard', async () => {
  const res = await fetch(`${BASE_URL}/api/v1/order`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ customerId: 'alice', items: [{ flavour: 'carrot', size: 'XL', quantity: 1 }] }),
  });
  const { orderId: id } = await res.json();
  const mix = card('mixer', id).getByRole('button', { name: `Mix ${id}` });
  await mix.waitFor();
  await mix.focus();
  await page.keyboard.press('Enter');
  await card('baker', id).waitFor();
  await dashboardStatus(id).filter({ hasText: /^mixed$/ }).waitFor();
});
