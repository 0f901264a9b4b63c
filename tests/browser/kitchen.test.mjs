// The kitchen web UI in a real browser: Debian's Chromium driven through
// playwright-core against a running cupcake-factory in KITCHEN_MODE=manual.
// run.sh starts the server and passes its address in BASE_URL; it runs this
// file twice: with authentication off, and with it on (AUTH_TOKEN is then a
// token with the shop and staff roles, which the test signs in with).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE_URL = process.env.BASE_URL;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOKEN = process.env.AUTH_TOKEN || '';
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots', TOKEN ? 'auth-on' : 'auth-off');
const TIMEOUT = 10_000;

let browser;
let page;
const requests = []; // every request the page made: url and Authorization header

// apiFetch is the test's own client of the API, with the token when auth is on.
const apiFetch = (path, init = {}) => fetch(`${BASE_URL}${path}`, {
  ...init,
  headers: { ...(init.headers || {}), ...(TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {}) },
});

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
  page.on('console', (msg) => { if (msg.type() === 'error' && !/401/.test(msg.text())) console.error('console:', msg.text()); });
  page.on('request', (r) => requests.push({ url: r.url(), authorization: r.headers().authorization || '' }));
  await page.goto(BASE_URL);
  if (TOKEN) await signIn();
  // Mark this document: if anything reloads the page, the mark is gone.
  await page.evaluate(() => { window.__sameDocument = true; });
  await page.locator('#connection[data-state="live"]').waitFor();
});

// signIn pastes a wrong token first (refused, the dialog stays), then the
// right one.
async function signIn() {
  const dialog = page.getByRole('dialog', { name: 'Sign in' });
  await dialog.waitFor();
  await shot('00-sign-in');
  await dialog.getByLabel('Token').fill('not-the-token-0000000000');
  await dialog.getByRole('button', { name: 'Sign in' }).click();
  await dialog.locator('#signin-error').filter({ hasText: 'not valid' }).waitFor();
  await dialog.getByLabel('Token').fill(TOKEN);
  await dialog.getByRole('button', { name: 'Sign in' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

after(async () => {
  await browser?.close();
});

const shot = (name, fullPage = true) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
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
  const order = await (await apiFetch(`/api/v1/order/${id}`)).json();
  assert.equal(order.status, 'shipped');
});

test('an order placed elsewhere appears live, and the failure button fails it', async () => {
  // Placed by someone else (the REST API), so only the stream can bring it.
  const res = await apiFetch('/api/v1/order', {
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

  const order = await (await apiFetch(`/api/v1/order/${id}`)).json();
  assert.equal(order.status, 'failed');
});

test('the boards can be worked from the keyboard', async () => {
  const res = await apiFetch('/api/v1/order', {
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

// placeViaAPI places an order as another client would and returns its id.
async function placeViaAPI(items) {
  const res = await apiFetch('/api/v1/order', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ customerId: 'alice', items }),
  });
  assert.equal(res.status, 202);
  return (await res.json()).orderId;
}

// step reports a kitchen step as another client (a station's tablet).
async function step(route, id) {
  const res = await apiFetch(`/api/v1/order/${route}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ orderId: id, by: 'tablet' }),
  });
  assert.equal(res.status, 202, `${route} ${id}`);
}

const available = async () => (await (await apiFetch('/api/v1/customers/alice')).json()).availableCredit;
const timeline = () => page.locator('#order-view-timeline li');

test("an order's page shows its history as a timeline, updated live as it happens", async () => {
  const id = await placeViaAPI([{ flavour: 'red-velvet', size: 'M', quantity: 4 }]);
  await card('mixer', id).waitFor();
  await card('mixer', id).getByRole('link', { name: id }).click();
  await page.locator('#order-view').waitFor();
  assert.equal(new URL(page.url()).hash, `#/orders/${id}`);
  assert.equal(await board('mixer').isVisible(), false, 'the kitchen is still shown beside the order page');
  await page.locator('#order-view-title').filter({ hasText: id }).waitFor();
  assert.match(await page.locator('#order-view-facts').innerText(), /alice[\s\S]*4 × M red-velvet[\s\S]*8\.00/);
  assert.deepEqual(await timeline().evaluateAll((ls) => ls.map((l) => l.dataset.status)), ['created', 'approved']);
  await shot('11-order-page-in-progress');

  // Another client reports the steps; the page follows, without a reload.
  await step('mix', id);
  await page.locator('#order-view-timeline li[data-status="mixed"]').waitFor();
  await assertNoReload();
  for (const route of ['bake', 'decorate', 'box']) await step(route, id);
  await page.locator('#order-view-timeline li[data-status="shipped"]').waitFor();
  assert.deepEqual(await timeline().evaluateAll((ls) => ls.map((l) => l.dataset.status)),
    ['created', 'approved', 'mixed', 'baked', 'decorated', 'packaged', 'shipped']);
  const mixed = await page.locator('#order-view-timeline li[data-status="mixed"]').innerText();
  assert.match(mixed, /by tablet/);
  assert.match(mixed, /after the step before/);
  await page.locator('#order-view-status').filter({ hasText: /^shipped$/ }).waitFor();
  assert.equal(await page.locator('#order-view-cancel').isVisible(), false, 'a shipped order offers Cancel');
  await shot('12-order-page-shipped');

  await page.getByRole('link', { name: /Back to the kitchen/ }).click();
  await board('mixer').waitFor();
  await assertNoReload();
});

test('a customer cancels an approved order on its page: the credit comes back and it leaves the mixer board', async () => {
  const before = await available();
  const id = await placeViaAPI([{ flavour: 'lemon', size: 'L', quantity: 6 }]);
  await card('mixer', id).waitFor();
  assert.equal(await available(), before - 1500);
  await page.locator(`#orders tr[data-order-id="${id}"]`).getByRole('link', { name: id }).click();
  await page.locator('#order-view-title').filter({ hasText: id }).waitFor();
  const form = page.locator('#order-view-cancel');
  await form.waitFor();
  await form.getByLabel(/reason/).fill('changed my mind');
  await shot('13-order-page-cancel');
  await form.getByRole('button', { name: 'Cancel order' }).click();
  await page.locator('#order-view-status').filter({ hasText: /^cancelled$/ }).waitFor();
  await page.locator('#order-view-timeline li[data-status="cancelled"]').filter({ hasText: 'changed my mind' }).waitFor();
  await form.waitFor({ state: 'hidden' });
  assert.equal(await available(), before, 'the credit did not come back');
  await shot('14-order-cancelled');

  await page.getByRole('link', { name: /Back to the kitchen/ }).click();
  await dashboardStatus(id).filter({ hasText: /^cancelled$/ }).waitFor();
  assert.equal(await card('mixer', id).count(), 0, 'the cancelled order is still on the mixer board');
  await assertNoReload();
});

test('an order cancelled by someone else leaves the board live; a decorated one cannot be cancelled', async () => {
  const id = await placeViaAPI([{ flavour: 'vanilla', size: 'S', quantity: 2 }]);
  await card('mixer', id).waitFor();
  const res = await apiFetch('/api/v1/order/cancel', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ orderId: id, by: 'alice' }),
  });
  assert.equal(res.status, 200);
  await card('mixer', id).waitFor({ state: 'detached' });
  await dashboardStatus(id).filter({ hasText: /^cancelled$/ }).waitFor();
  await assertNoReload();
  await shot('15-cancelled-left-the-board');

  const late = await placeViaAPI([{ flavour: 'carrot', size: 'M', quantity: 1 }]);
  for (const route of ['mix', 'bake', 'decorate']) await step(route, late);
  await card('packaging', late).waitFor();
  await card('packaging', late).getByRole('link', { name: late }).click();
  await page.locator('#order-view-status').filter({ hasText: /^decorated$/ }).waitFor();
  assert.equal(await page.locator('#order-view-cancel').isVisible(), false, 'a decorated order offers Cancel');
  const refused = await apiFetch('/api/v1/order/cancel', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ orderId: late, by: 'alice' }),
  });
  assert.equal(refused.status, 422);
  await page.getByRole('link', { name: /Back to the kitchen/ }).click();
  await card('packaging', late).waitFor();
});

test('the dashboard loads a page at a time and "Load more" follows next', async () => {
  const placed = [];
  for (let i = 0; i < 105; i++) {
    const res = await apiFetch('/api/v1/order', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ customerId: 'alice', items: [{ flavour: 'vanilla', size: 'S', quantity: 1 }] }),
    });
    assert.equal(res.status, 202);
    placed.push((await res.json()).orderId);
  }
  const total = (await (await apiFetch('/api/v1/orders?limit=1000')).json()).count;
  assert.ok(total > 100, `only ${total} orders`);
  const from = requests.length;
  await page.reload();
  await page.locator('#connection[data-state="live"]').waitFor();
  const more = page.getByRole('button', { name: 'Load more orders' });
  await more.waitFor();
  const rows = page.locator('#orders tbody tr');
  assert.ok(await rows.count() < total, 'the first load brought every order');
  await more.click();
  await more.waitFor({ state: 'hidden' });
  assert.equal(await rows.count(), Math.min(total, 200));
  await page.locator(`#orders tr[data-order-id="${placed[placed.length - 1]}"]`).waitFor();
  for (const r of requests.slice(from).filter((r) => r.url.includes('/api/v1/orders'))) {
    assert.match(r.url, /[?&]limit=\d+/, `a listing without a page size: ${r.url}`);
  }
  await shot('10-dashboard-paged', false); // the first screenful: the whole page is 200 rows long
});

test('the token travels only in the Authorization header, and only this tab keeps it', { skip: !TOKEN && 'authentication is off' }, async () => {
  const stream = requests.filter((r) => r.url.includes('/api/v1/notifications'));
  assert.ok(stream.length > 0, 'the page never opened the notification stream');
  for (const r of stream) assert.equal(r.authorization, `Bearer ${TOKEN}`, `stream request ${r.url} without the token`);
  for (const r of requests) assert.ok(!r.url.includes(TOKEN), `the token is in a URL: ${r.url}`);
  const kept = await page.evaluate(() => ({ session: Object.values(sessionStorage), local: Object.values(localStorage), cookie: document.cookie }));
  assert.deepEqual(kept.session, [TOKEN]);
  assert.deepEqual(kept.local, []);
  assert.equal(kept.cookie, '');
  // Without the token the API refuses.
  assert.equal((await fetch(`${BASE_URL}/api/v1/orders`)).status, 401);
});

test('signing out stops the stream and asks for a token again', { skip: !TOKEN && 'authentication is off' }, async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('dialog', { name: 'Sign in' }).waitFor();
  await page.locator('#connection[data-state="down"]').waitFor();
  assert.deepEqual(await page.evaluate(() => Object.values(sessionStorage)), []);
  await shot('09-signed-out');
});

test('with authentication off there is no sign-in', { skip: !!TOKEN && 'authentication is on' }, async () => {
  assert.equal(await page.locator('#signin-dialog').isVisible(), false);
  assert.equal(await page.getByRole('button', { name: 'Sign out' }).isVisible(), false);
  assert.equal((await fetch(`${BASE_URL}/api/v1/orders`)).status, 200);
});
