// What a labeler types is never silently dropped: a session that expires mid-sample keeps the page and the
// answers under the "sign in again" dialog and the submit goes through after signing in; a lease that runs out
// is said plainly and the answers stay. A reload keeps the answers too. Heartbeats keep a lease alive while the labeler is active.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, launchBrowser, newPage, screenshot, signIn, startServer } from './harness.mjs';

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function pat(subject, name) {
  const r = await api(server, server.tokens.admin, 'POST', '/v1/tokens', { name, role: 'labeler', subject });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

test('a session that expires mid-sample keeps the answers, and the submit succeeds after signing in again', async () => {
  const first = await pat('carol', 'carol laptop');
  const { page } = await newPage(browser);
  await signIn(page, server, first.token);
  await page.goto(`${server.url}/queues/${server.queueId}/label`);
  await page.locator('.label-page[data-state=ready]').waitFor();
  const externalId = await page.locator('.label-grid').getAttribute('data-sample');
  for (const k of ['3', '2', 'ArrowDown', 'ArrowDown', '4', 'n']) await page.keyboard.press(k);
  await page.locator('#field-5-input:focus').waitFor();
  await page.keyboard.type('typed before the token was revoked');
  // A reload (or a detour to another page) brings back the same sample with the answers as they were.
  await page.reload();
  await page.locator('.label-page[data-state=ready]').waitFor();
  assert.equal(await page.locator('.label-grid').getAttribute('data-sample'), externalId);
  assert.equal(await page.locator('#field-5-input').inputValue(), 'typed before the token was revoked');
  assert.equal(await page.locator('.field[data-field=aspects] .option.on').textContent(), '2price');

  const revoked = await api(server, server.tokens.admin, 'DELETE', `/v1/tokens/${first.info.id}`);
  assert.equal(revoked.status, 200);
  await page.keyboard.press('Enter');
  const dialog = page.locator('[data-dialog=expired]');
  await dialog.waitFor();
  await page.locator('[data-problem=not-sent]').waitFor();
  await screenshot(page, '19-session-expired');

  const second = await pat('carol', 'carol laptop again');
  await dialog.getByLabel('Access token').fill(second.token);
  await dialog.getByRole('button', { name: 'Sign in again' }).click();
  await dialog.waitFor({ state: 'detached' });
  // Everything is still there.
  assert.equal(await page.locator('#field-5-input').inputValue(), 'typed before the token was revoked');
  assert.equal(await page.locator('.field[data-field=sentiment] .option.on').textContent(), '3negative');
  await page.getByRole('button', { name: 'Retry submit' }).click();
  await page.waitForFunction(() => document.querySelector('[data-tally=labeled]')?.textContent === '1');

  const labels = await api(server, second.token, 'GET', `/v1/queues/${server.queueId}/labels?labeler=carol`);
  assert.equal(labels.body.items.length, 1);
  assert.equal(labels.body.items[0].external_id, externalId);
  assert.deepEqual(labels.body.items[0].payload, {
    sentiment: 'negative', aspects: ['price'], entities: [], helpfulness: 4, would_recommend: false,
    note: 'typed before the token was revoked',
  });
});

test('heartbeats keep the lease while the labeler works; a lost lease is said plainly and the answers stay', async () => {
  const q = await api(server, server.tokens.admin, 'POST', '/v1/queues', {
    name: `Short leases ${Date.now()}`,
    lease_seconds: 10,
    schema: { fields: [{ name: 'ok', title: 'Fine?', kind: 'boolean' }, { name: 'why', kind: 'text', required: false }] },
  });
  assert.equal(q.status, 201);
  const queueId = q.body.id;
  await api(server, server.tokens.admin, 'POST', `/v1/queues/${queueId}/samples`, {
    samples: [1, 2].map((n) => ({ external_id: `short-${n}`, payload: { text: `sample ${n}` } })),
  });

  const { page } = await newPage(browser);
  await signIn(page, server, server.tokens.alice);
  await page.goto(`${server.url}/queues/${queueId}/label`);
  await page.locator('.label-page[data-state=ready]').waitFor();
  const assignmentId = await page.locator('.label-grid').getAttribute('data-assignment');
  const assignment = async () => (await api(server, server.tokens.admin, 'GET', `/v1/assignments/${assignmentId}`)).body.assignment;
  const leasedAt = Date.parse((await assignment()).expires_at);

  // Working: answers typed over 12 s, longer than the 10 s lease; heartbeats every ~3.3 s extend it.
  await page.keyboard.press('y');
  await page.locator('#field-1-input:focus').waitFor();
  for (const word of ['still ', 'thinking ', 'about ', 'this ']) {
    await page.keyboard.type(word);
    await sleep(3000);
  }
  const live = await assignment();
  assert.equal(live.state, 'leased', 'the lease is still held after 12 s');
  assert.ok(Date.parse(live.expires_at) > leasedAt, 'heartbeats moved the expiry');

  // Away: no heartbeats, the lease runs out and the sample goes back to the pool.
  for (let n = 0; n < 40 && (await assignment()).state === 'leased'; n += 1) await sleep(1000);
  assert.equal((await assignment()).state, 'expired');
  await page.keyboard.press('Enter');
  await page.locator('[data-problem=lease]').waitFor();
  await screenshot(page, '20-lease-lost');
  assert.equal(await page.locator('#field-1-input').inputValue(), 'still thinking about this ');

  // Take the next sample; the answers are kept in case this one comes back, and labeling goes on.
  await page.getByRole('button', { name: 'Take the next sample' }).click();
  await page.waitForFunction(
    (id) => {
      const grid = document.querySelector('.label-page[data-state=ready] .label-grid');
      return grid && grid.dataset.assignment !== id;
    },
    assignmentId);
  await page.keyboard.press('n');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('[data-tally=labeled]')?.textContent === '1');
});
