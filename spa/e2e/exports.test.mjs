// Exports and file imports from the admin's queue page: labels written through the API come back in a JSON
// Lines export (downloaded through its link, byte for byte the file its sha256 names) and in a CSV export of one
// labeler (whose link has expired by the time it is clicked, so a fresh one is fetched first); a JSON Lines file
// with one bad line is imported through the file input and the page shows the counts and the bad line. The
// admin home shows the operations summary.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { api, launchBrowser, newPage, screenshot, signIn, startServer } from './harness.mjs';

let server;
let browser;
let tmp;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'anvil-e2e-files-'));
});
after(async () => {
  await browser?.close();
  await server?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Labels `count` samples of the queue as `token`, through the API. */
async function labelVia(token, queueId, count, payloadFor) {
  for (let n = 0; n < count; n += 1) {
    const c = await api(server, token, 'POST', `/v1/queues/${queueId}/assignments/next`);
    assert.equal(c.status, 200, JSON.stringify(c.body));
    const r = await api(server, token, 'POST', '/v1/labels',
      { assignment_id: c.body.assignment.id, payload: payloadFor(c.body.sample) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
}

/** Clicks `locator` and returns the text of the file the browser downloads. */
async function download(page, locator) {
  const [dl] = await Promise.all([page.waitForEvent('download'), locator.click()]);
  const file = await dl.path();
  return { name: dl.suggestedFilename(), text: fs.readFileSync(file, 'utf8'), bytes: fs.readFileSync(file) };
}

test('an admin exports labels as JSON Lines and CSV, downloads them, and imports a file with a bad line', async () => {
  const { tokens } = server;
  const q = await api(server, tokens.admin, 'POST', '/v1/queues', {
    name: `Exports ${Date.now()}`,
    description: 'Exports and imports from the browser',
    overlap: 1,
    schema: {
      fields: [
        { name: 'sentiment', title: 'Sentiment', kind: 'single_choice', options: ['positive', 'negative'] },
        { name: 'note', title: 'Note', kind: 'text', required: false },
      ],
    },
  });
  assert.equal(q.status, 201, JSON.stringify(q.body));
  const queueId = q.body.id;
  const add = await api(server, tokens.admin, 'POST', `/v1/queues/${queueId}/samples`, {
    samples: Array.from({ length: 6 }, (_, i) =>
      ({ external_id: `e-${i + 1}`, payload: { text: `Review ${i + 1}: "fine, mostly".` }, priority: 6 - i })),
  });
  assert.equal(add.body.created, 6);
  await labelVia(tokens.alice, queueId, 3, (s) => ({ sentiment: 'positive', note: `alice on ${s.external_id}` }));
  await labelVia(tokens.bob, queueId, 2, () => ({ sentiment: 'negative' }));
  const labels = (await api(server, tokens.admin, 'GET', `/v1/queues/${queueId}/labels?limit=500`)).body.items;
  assert.equal(labels.length, 5);
  const byId = new Map(labels.map((l) => [l.id, l]));

  const { page, problems } = await newPage(browser);
  await signIn(page, server, tokens.admin);
  await page.goto(`${server.url}/admin/queues/${queueId}`);
  const exportsPanel = page.locator('[data-section=exports]');
  await exportsPanel.getByText('No exports yet.').waitFor();

  // The first answer for the CSV export's link says it has already expired: clicking it must fetch a new one.
  let staled = 0;
  await page.route('**/v1/exports/*', async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    if (body.format === 'csv' && body.download_url && staled === 0) {
      staled += 1;
      body.download_expires_at = '2001-01-01T00:00:00Z';
    }
    await route.fulfill({ response: res, json: body });
  });

  // JSON Lines, every label.
  await page.getByLabel('Export format').selectOption('jsonl');
  await page.getByRole('button', { name: 'Request export' }).click();
  const jsonlRow = exportsPanel.locator('tr[data-export-format=jsonl]');
  await jsonlRow.and(page.locator('[data-export-state=succeeded]')).waitFor({ timeout: 15_000 });
  assert.equal(await jsonlRow.locator('[data-export-rows]').textContent(), '5');
  const jsonlLink = jsonlRow.locator('a[data-download]');
  await jsonlLink.waitFor();

  // CSV, only alice's labels.
  await page.getByLabel('Export format').selectOption('csv');
  await page.getByLabel('Only this labeler').fill('alice');
  await page.getByRole('button', { name: 'Request export' }).click();
  const csvRow = exportsPanel.locator('tr[data-export-format=csv]');
  await csvRow.and(page.locator('[data-export-state=succeeded]')).waitFor({ timeout: 15_000 });
  assert.equal(await csvRow.locator('[data-export-rows]').textContent(), '3');
  assert.match(await csvRow.textContent(), /labeler alice/);
  await csvRow.locator('[data-download]').waitFor();
  assert.equal(await exportsPanel.locator('tr[data-export]').count(), 2);
  assert.equal(await exportsPanel.locator('tr[data-export]').first().getAttribute('data-export-format'), 'csv',
    'newest first');
  await screenshot(page, '21-admin-exports');

  // The JSON Lines file: one line per label, matching the API, and the file the shown sha256 names.
  const jsonl = await download(page, jsonlLink);
  assert.match(jsonl.name, /\.jsonl$/);
  const lines = jsonl.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(lines.length, 5);
  for (const line of lines) {
    const l = byId.get(line.label_id);
    assert.ok(l, `label ${line.label_id} is one of the queue's`);
    assert.equal(line.labeler, l.labeler);
    assert.equal(line.external_id, l.external_id);
    assert.equal(line.sample_id, l.sample_id);
    assert.deepEqual(line.label, l.payload);
  }
  assert.deepEqual(new Set(lines.map((l) => l.label_id)), new Set(byId.keys()));
  const sha = crypto.createHash('sha256').update(jsonl.bytes).digest('hex');
  const shown = jsonlRow.locator('code');
  assert.equal(await shown.getAttribute('title'), sha);
  assert.equal(await shown.textContent(), sha.slice(0, 12));
  // The link itself works without a bearer token.
  const href = await jsonlLink.getAttribute('href');
  const plain = await fetch(new URL(href, server.url));
  assert.equal(plain.status, 200);
  assert.equal(await plain.text(), jsonl.text);

  // The CSV file, through a link that had expired when it was clicked.
  assert.equal(staled, 1, 'the CSV link was shown as expired');
  const csv = await download(page, csvRow.locator('[data-download]'));
  assert.match(csv.name, /\.csv$/);
  const rows = csv.text.split('\r\n').filter(Boolean);
  assert.match(rows[0], /^label_id,sample_id,external_id,labeler,schema_version,created_at,sentiment,note,sample$/);
  assert.equal(rows.length, 4);
  const alice = labels.filter((l) => l.labeler === 'alice');
  for (const row of rows.slice(1)) {
    const [labelId, , externalId, labeler, , , sentiment, note] = row.split(',');
    const l = byId.get(labelId);
    assert.ok(l, `CSV label ${labelId} is one of the queue's`);
    assert.equal(labeler, 'alice');
    assert.equal(externalId, l.external_id);
    assert.equal(sentiment, 'positive');
    assert.equal(note, `alice on ${l.external_id}`);
  }
  assert.deepEqual(new Set(rows.slice(1).map((r) => r.split(',')[0])), new Set(alice.map((l) => l.id)));
  await page.unroute('**/v1/exports/*');

  // Import a JSON Lines file whose third line is not JSON and whose fifth names an existing sample.
  const file = path.join(tmp, 'more-reviews.jsonl');
  fs.writeFileSync(file, [
    JSON.stringify({ external_id: 'i-1', payload: { text: 'Imported one' } }),
    JSON.stringify({ external_id: 'i-2', payload: { text: 'Imported two' }, priority: 3 }),
    '{"external_id": "i-broken", "payload": ',
    JSON.stringify({ external_id: 'i-3', payload: { text: 'Imported three' } }),
    JSON.stringify({ external_id: 'e-1', payload: { text: 'Already there' } }),
  ].join('\n') + '\n');
  const importPanel = page.locator('[data-section=import]');
  await page.getByLabel('File to import').setInputFiles(file);
  assert.equal(await page.getByLabel('File format').inputValue(), 'jsonl');
  await importPanel.getByText('more-reviews.jsonl').waitFor();
  await page.getByRole('button', { name: 'Upload and import' }).click();
  const result = importPanel.locator('.import-result[data-import-state=succeeded]');
  await result.waitFor({ timeout: 15_000 });
  assert.equal(await result.locator('[data-import-count=created] dd').textContent(), '3');
  assert.equal(await result.locator('[data-import-count=existing] dd').textContent(), '1');
  assert.equal(await result.locator('[data-import-count=failed] dd').textContent(), '1');
  const bad = result.locator('table.import-errors tbody tr');
  assert.equal(await bad.count(), 1);
  assert.equal(await bad.first().getAttribute('data-error-line'), '3');
  assert.ok((await bad.first().locator('td').nth(1).textContent()).length > 0, 'the line has a reason');
  // The page's queue counts follow.
  await page.waitForFunction(
    () => document.querySelector('[data-section=stats] [data-stat=samples] dd')?.textContent === '9');
  assert.equal((await api(server, tokens.admin, 'GET', `/v1/queues/${queueId}`)).body.sample_count, 9);
  await importPanel.scrollIntoViewIfNeeded();
  await screenshot(page, '22-admin-import');

  // Tablet width: the sections still fit.
  await page.setViewportSize({ width: 768, height: 1024 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no horizontal scroll at 768px (overflow ${overflow}px)`);
  const tableOverflow = await exportsPanel.locator('.table-wrap').evaluate((el) => el.scrollWidth - el.clientWidth);
  assert.ok(tableOverflow <= 0, `the exports table fits at 768px (overflow ${tableOverflow}px)`);
  await screenshot(page, '23-admin-queue-tablet');
  await page.setViewportSize({ width: 1280, height: 800 });

  // The operations panel on the admin home.
  await page.getByRole('link', { name: 'Admin' }).click();
  const ops = page.locator('[data-section=ops]');
  await ops.locator('[data-ops=dead] dd').waitFor();
  assert.equal(await ops.locator('[data-ops=dead] dd').textContent(), '0');
  assert.match(await ops.locator('[data-ops=pending] dd').textContent(), /^\d+$/);
  await screenshot(page, '24-admin-ops');

  assert.deepEqual(problems, []);
  await page.context().close();
});
