// An admin creates a queue with a schema through the form (trying the raw JSON editor on the way and meeting
// the server's validation first), adds samples by pasting JSON Lines (a bad line is caught before anything is
// sent), sees the stats, and pauses and resumes the queue.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
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

test('an admin creates a queue with a schema, adds samples, sees stats, pauses and resumes it', async () => {
  const { page, problems } = await newPage(browser);
  await signIn(page, server, server.tokens.admin);
  await page.getByRole('link', { name: 'Admin' }).click();
  await page.locator('table tr[data-queue]').first().waitFor();
  await page.locator('table progress').first().waitFor();
  await screenshot(page, '13-admin');

  await page.getByRole('link', { name: 'New queue' }).click();
  const name = `Toxicity ${Date.now()}`;
  await page.getByLabel('Queue name').fill(name);
  await page.getByLabel('Labels per sample').fill('1');
  await page.getByLabel('Lease (seconds)').fill('60');
  await page.getByLabel('Instructions for labelers').fill('Is the comment toxic? How bad? Mark slurs.');
  const row = (i) => page.locator(`fieldset[data-field-row="${i}"]`);
  await row(0).getByLabel('Name').fill('toxic');
  await row(0).getByLabel('Title').fill('Toxic?');

  // The server refuses a choice without options, and says so at the field.
  await page.getByRole('button', { name: 'Create queue' }).click();
  await row(0).locator('.field-error').waitFor();
  assert.match(await row(0).locator('.field-error').first().textContent(), /option/);
  await screenshot(page, '14-new-queue-invalid');

  await row(0).getByLabel('Options (one per line)').fill('yes\nno\nunsure');
  await page.getByRole('button', { name: 'Add field' }).click();
  await row(1).getByLabel('Name').fill('severity');
  await row(1).getByLabel('Kind').selectOption('rating');
  await row(1).getByLabel('Highest rating').fill('4');
  await page.getByRole('button', { name: 'Add field' }).click();
  await row(2).getByLabel('Name').fill('slurs');
  await row(2).getByLabel('Kind').selectOption('span');
  await row(2).getByLabel('Labels (one per line)').fill('SLUR, THREAT');
  await row(2).getByLabel('Required').uncheck();

  // The raw JSON editor shows the same schema; an edit there comes back to the form.
  await page.getByRole('button', { name: 'Raw JSON' }).click();
  const json = page.getByLabel('Schema (JSON)');
  const schema = JSON.parse(await json.inputValue());
  assert.deepEqual(schema.fields.map((f) => [f.name, f.kind]), [['toxic', 'single_choice'], ['severity', 'rating'], ['slurs', 'span']]);
  schema.fields.push({ name: 'seen_on', title: 'Seen on', kind: 'date', required: false });
  schema.fields.push({ name: 'score', title: 'Score', kind: 'number', min: 0, max: 10, step: 0.5 });
  await json.fill(JSON.stringify(schema, null, 2));
  await screenshot(page, '15-new-queue-json');
  await page.getByRole('button', { name: 'Form', exact: true }).click();
  await row(3).waitFor();
  assert.equal(await row(3).getByLabel('Kind').inputValue(), 'date');
  await screenshot(page, '16-new-queue-form');

  await page.getByRole('button', { name: 'Create queue' }).click();
  await page.waitForURL(/\/admin\/queues\/[0-9a-f-]{36}$/);
  const queueId = page.url().split('/').at(-1);
  await page.locator('[data-section=stats] [data-stat=samples] dd').waitFor();
  assert.equal(await page.locator('[data-section=stats] [data-stat=samples] dd').textContent(), '0');

  // Paste samples; a bad line stops everything before it is sent.
  const lines = Array.from({ length: 5 }, (_, i) =>
    JSON.stringify({ external_id: `c-${i + 1}`, payload: { text: `comment number ${i + 1}` }, priority: i % 2 }));
  const input = page.getByLabel('JSON Lines, one sample per line');
  await input.fill([lines[0], '{"external_id": "c-x", "payload": ', ...lines.slice(1)].join('\n'));
  await page.getByRole('button', { name: 'Add samples' }).click();
  await page.getByText(/line 2:/).waitFor();
  assert.equal((await api(server, server.tokens.admin, 'GET', `/v1/queues/${queueId}`)).body.sample_count, 0);
  await input.fill(lines.join('\n') + '\n');
  await page.getByRole('button', { name: 'Add samples' }).click();
  await page.locator('[data-import-result]').waitFor();
  assert.match(await page.locator('[data-import-result]').textContent(), /Added 5 new samples/);
  await page.waitForFunction(
    () => document.querySelector('[data-section=stats] [data-stat=samples] dd')?.textContent === '5');
  assert.equal(await page.locator('[data-stat=remaining] dd').textContent(), '5');
  await screenshot(page, '17-admin-queue');

  // Pause, then resume.
  await page.getByRole('button', { name: 'Pause queue' }).click();
  await page.locator('[data-queue-state=paused]').waitFor();
  assert.equal((await api(server, server.tokens.admin, 'GET', `/v1/queues/${queueId}`)).body.state, 'paused');
  const paused = await api(server, server.tokens.alice, 'POST', `/v1/queues/${queueId}/assignments/next`);
  assert.equal(paused.status, 204, 'a paused queue hands out nothing');
  await screenshot(page, '18-admin-queue-paused');
  // A labeler opening the paused queue gets the calm "all done" screen, not an error.
  const labeler = await newPage(browser);
  await signIn(labeler.page, server, server.tokens.alice);
  await labeler.page.goto(`${server.url}/queues/${queueId}/label`);
  await labeler.page.locator('.label-page[data-state=done] .done').waitFor();
  await screenshot(labeler.page, '18-label-all-done');
  await labeler.context.close();
  await page.getByRole('button', { name: 'Resume queue' }).click();
  await page.locator('[data-queue-state=active]').waitFor();

  const q = await api(server, server.tokens.admin, 'GET', `/v1/queues/${queueId}`);
  assert.equal(q.body.name, name);
  assert.equal(q.body.lease_seconds, 60);
  assert.equal(q.body.sample_count, 5);
  assert.deepEqual(q.body.schema.fields.map((f) => f.name), ['toxic', 'severity', 'slurs', 'seen_on', 'score']);
  assert.equal(q.body.schema.fields[1].max, 4);
  assert.deepEqual(q.body.schema.fields[2].labels, ['SLUR', 'THREAT']);
  assert.equal(q.body.schema.instructions, 'Is the comment toxic? How bad? Mark slurs.');

  // The new queue labels like any other: a choice, a rating, a date and a number (typed fields take the focus).
  await page.getByRole('link', { name: 'Label', exact: true }).click();
  await page.locator('.label-page[data-state=ready]').waitFor();
  const sample = await page.locator('.label-grid').getAttribute('data-sample');
  await page.keyboard.press('1');
  await page.keyboard.press('3');
  await page.keyboard.press('ArrowDown');
  await page.locator('#field-3-input:focus').waitFor();
  await page.locator('#field-3-input').fill('2025-03-01');
  await page.keyboard.press('Escape');
  await page.keyboard.press('ArrowDown');
  await page.locator('#field-4-input:focus').waitFor();
  await page.keyboard.type('11');
  await page.keyboard.press('Enter');
  await page.locator('.field[data-field=score] .field-error').waitFor();
  await screenshot(page, '18-label-number-invalid');
  await page.locator('#field-4-input').fill('');
  await page.keyboard.type('2.5');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('[data-tally=labeled]')?.textContent === '1');
  const labels = await api(server, server.tokens.admin, 'GET', `/v1/queues/${queueId}/labels`);
  assert.deepEqual(labels.body.items.find((l) => l.external_id === sample).payload,
    { toxic: 'yes', severity: 3, slurs: [], seen_on: '2025-03-01', score: 2.5 });
  assert.deepEqual(problems.filter((p) => !/status of 4\d\d/.test(p)), []);
});
