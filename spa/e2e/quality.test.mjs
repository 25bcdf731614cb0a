// The quality report of a queue: alice and bob label every sample of a queue with two labels per sample and
// disagree on some; the auditor goes from the review page to the quality page by keyboard and by link, and
// sees each field's headline measure (as the API computes it, and as computed by hand here), why free text has
// none, the coincidence matrix as a heat map, and the labelers sorted by a column. A labeler is told the
// report is not for the role; an empty queue says for every field why there is no value.
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

const SCHEMA = {
  fields: [
    { name: 'sentiment', title: 'Sentiment', kind: 'single_choice', options: ['positive', 'negative', 'neutral'] },
    { name: 'stars', title: 'Stars', kind: 'rating', max: 5 },
    { name: 'note', title: 'Note', kind: 'text', required: false },
  ],
};

// What each labeler answers, by sample: they disagree on the sentiment of q-2 and on the stars of q-2 and q-6.
const ANSWERS = {
  alice: { 'q-1': ['positive', 5], 'q-2': ['positive', 4], 'q-3': ['negative', 2], 'q-4': ['negative', 1],
    'q-5': ['neutral', 3], 'q-6': ['positive', 5] },
  bob: { 'q-1': ['positive', 5], 'q-2': ['negative', 3], 'q-3': ['negative', 2], 'q-4': ['negative', 1],
    'q-5': ['neutral', 3], 'q-6': ['positive', 4] },
};

async function labelVia(token, queueId, payloadFor) {
  for (;;) {
    const c = await api(server, token, 'POST', `/v1/queues/${queueId}/assignments/next`);
    if (c.status === 204) return;
    assert.equal(c.status, 200);
    const r = await api(server, token, 'POST', '/v1/labels',
      { assignment_id: c.body.assignment.id, payload: payloadFor(c.body.sample) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
}

async function makeQueue(name, samples) {
  const { tokens } = server;
  const q = await api(server, tokens.admin, 'POST', '/v1/queues', { name, overlap: 2, schema: SCHEMA });
  assert.equal(q.status, 201, JSON.stringify(q.body));
  const add = await api(server, tokens.admin, 'POST', `/v1/queues/${q.body.id}/samples`, {
    samples: samples.map((id, i) => ({ external_id: id, payload: { text: `Review ${id}` }, priority: 10 - i })),
  });
  assert.equal(add.body.created, samples.length);
  return q.body.id;
}

/** The page's way of showing a share: a percentage with at most one decimal. */
function pct(x) {
  if (x === null) return '—';
  return `${String((Math.round(x * 1000) / 10).toFixed(1)).replace(/\.0$/, '')}%`;
}

test('an auditor reads the agreement of a queue per field and per labeler', async () => {
  const { tokens } = server;
  const queueId = await makeQueue(`Quality ${Date.now()}`, Object.keys(ANSWERS.alice));
  for (const who of ['alice', 'bob']) {
    await labelVia(tokens[who], queueId, (s) => {
      const [sentiment, stars] = ANSWERS[who][s.external_id];
      return { sentiment, stars, note: `${who} was here` };
    });
  }

  // What the API says, checked against numbers computed by hand.
  const rep = await api(server, tokens.auditor, 'GET', `/v1/queues/${queueId}/quality`);
  assert.equal(rep.status, 200, JSON.stringify(rep.body));
  const report = rep.body;
  assert.deepEqual([report.labels, report.samples, report.samples_multiply_labeled, report.overlap], [12, 6, 6, 2]);
  const field = (n) => report.fields.find((f) => f.name === n);
  const sentiment = field('sentiment');
  assert.equal(sentiment.measure, 'krippendorff_alpha_nominal');
  // Coincidences (positive, negative, neutral): q-1, q-6 add 2 to positive/positive, q-3, q-4 2 each to
  // negative/negative, q-5 2 to neutral/neutral, q-2 1 to each of positive/negative and negative/positive.
  const counts = [[4, 1, 0], [1, 4, 0], [0, 0, 2]];
  assert.deepEqual(sentiment.confusion.values, ['positive', 'negative', 'neutral']);
  assert.deepEqual(sentiment.confusion.counts, counts);
  // α = 1 − (n − 1) · Σ off-diagonal / (n² − Σ n_c²) with n = 12, marginals 5, 5, 2: 1 − 11 · 2 / 90 = 68/90.
  assert.ok(Math.abs(sentiment.value - 68 / 90) < 1e-9, `α nominal ${sentiment.value}`);
  const note = field('note');
  assert.equal(note.measure, null);
  assert.ok(note.why, 'free text says why it has no measure');
  // Each labeler: sentiment 5 of 6 pairs agree, stars 4 of 6 → 9 of 12; the majority (both agree) always theirs.
  assert.deepEqual(report.labelers.map((l) => l.labeler), ['alice', 'bob']);
  for (const l of report.labelers) {
    assert.ok(Math.abs(l.agreement_with_others - 0.75) < 1e-12, JSON.stringify(l));
    assert.equal(l.agreement_with_majority, 1);
  }

  // The auditor goes from the review page to the quality report with Q.
  const { page, problems } = await newPage(browser);
  await signIn(page, server, tokens.auditor);
  await page.locator(`.queue-card[data-queue="${queueId}"]`).getByRole('link', { name: 'Review labels' }).click();
  await page.locator('.labels-table tbody tr').nth(11).waitFor();
  const link = page.getByRole('link', { name: /^Quality/ });
  assert.equal(await link.getAttribute('href'), `/queues/${queueId}/quality`);
  await page.keyboard.press('?');
  const reviewSheet = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  await reviewSheet.waitFor();
  assert.match(await reviewSheet.textContent(), /Q.*quality report/);
  await page.keyboard.press('Escape');
  await reviewSheet.waitFor({ state: 'detached' });
  await page.keyboard.press('q');
  await page.waitForURL(`${server.url}/queues/${queueId}/quality`);
  const row = (n) => page.locator(`tbody[data-field="${n}"] .field-row`);
  await row('sentiment').waitFor();

  // Counts, and the headline of each field as the API has it.
  const stat = async (k) => (await page.locator(`.quality-counts [data-stat="${k}"] dd`).textContent()).trim();
  assert.equal(await stat('labels'), String(report.labels));
  assert.equal(await stat('samples'), String(report.samples));
  assert.equal(await stat('samples-multiply-labeled'), String(report.samples_multiply_labeled));
  assert.equal(await stat('overlap'), '2');
  const shown = (await row('sentiment').locator('[data-value]').textContent()).trim();
  assert.equal(shown, sentiment.value.toFixed(3));
  assert.equal(shown, '0.756', 'the value computed by hand');
  assert.equal((await row('sentiment').locator('[data-measure]').textContent()).trim(), "Krippendorff's α (nominal)");
  assert.equal((await row('sentiment').locator('.reading').textContent()).trim(), sentiment.reading);
  const stars = field('stars');
  assert.equal((await row('stars').locator('[data-value]').textContent()).trim(), stars.value.toFixed(3));
  assert.equal((await row('stars').locator('[data-measure]').textContent()).trim(), "Krippendorff's α (ordinal)");
  assert.equal((await row('note').locator('[data-why]').textContent()).trim(), note.why);
  assert.equal((await row('note').locator('[data-value]').textContent()).trim(), '—');
  await screenshot(page, '40-quality');

  // R goes back to the review page; its link comes back here.
  await page.keyboard.press('r');
  await page.waitForURL(`${server.url}/queues/${queueId}/review`);
  await page.locator('.labels-table tbody tr').first().waitFor();
  await page.getByRole('link', { name: /^Quality/ }).click();
  await row('sentiment').waitFor();

  // Open the sentiment field by keyboard: every measure, the pair, the heat map with the API's counts.
  const toggle = row('sentiment').getByRole('button', { name: /sentiment/ });
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  await toggle.focus();
  await page.keyboard.press('Enter');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  const detail = page.locator('tbody[data-field="sentiment"] .field-detail');
  await detail.locator('table.heatmap').waitFor();
  const measures = await detail.locator('table.measures tbody tr').evaluateAll((trs) => trs.map((tr) => ({
    name: tr.dataset.measure, cells: [...tr.cells].map((td) => td.textContent.trim()),
  })));
  assert.deepEqual(measures.map((m) => m.name), sentiment.measures.map((m) => m.name));
  for (const [i, m] of sentiment.measures.entries()) {
    assert.equal(measures[i].cells[1], m.value === null ? '—' : m.value.toFixed(3), m.name);
    assert.equal(measures[i].cells[2], String(m.samples), m.name);
  }
  assert.match(measures.find((m) => m.name === 'fleiss_kappa').cells[0], /^Fleiss' κ/);
  assert.match(measures.find((m) => m.name === 'mean_cohen_kappa').cells[0], /^mean Cohen's κ/);
  assert.equal(measures.find((m) => m.name === 'percent_agreement').cells[1], (5 / 6).toFixed(3));
  const pair = sentiment.pairs[0];
  const pairRow = detail.locator('table.pairs tbody tr');
  assert.equal(await pairRow.count(), 1);
  assert.deepEqual(await pairRow.locator('td').allTextContents(),
    [pair.a, pair.b, String(pair.samples), pair.cohen_kappa.toFixed(3), pct(pair.percent_agreement)]);
  const heat = detail.locator('table.heatmap');
  assert.deepEqual(await heat.locator('thead th').allTextContents(), sentiment.confusion.values);
  assert.deepEqual(await heat.locator('tbody th').allTextContents(), sentiment.confusion.values);
  const cells = await heat.locator('tbody tr').evaluateAll((trs) => trs.map((tr) =>
    [...tr.querySelectorAll('td')].map((td) => ({ n: td.textContent.trim(), cls: td.className }))));
  assert.deepEqual(cells.map((r) => r.map((c) => Number(c.n))), sentiment.confusion.counts);
  // Buckets by share of the largest count (4): 4 → 5, 2 → 3, 1 → 2, 0 → 0.
  const bucket = (c) => Number(/heat-(\d)/.exec(c.cls)[1]);
  assert.deepEqual(cells.map((r) => r.map(bucket)), [[5, 2, 0], [2, 5, 0], [0, 0, 3]]);
  assert.ok(cells[0][0].cls.includes('diag'));
  await heat.scrollIntoViewIfNeeded();
  await screenshot(page, '41-quality-field');

  // Clicking the row closes it again.
  await row('sentiment').locator('td').first().click();
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  assert.equal(await heat.count(), 0);

  // The labelers, with their shares as the API has them; sorted by a header, by click and by keyboard.
  const labelerRows = page.locator('table.labelers tbody tr');
  const table = async () => labelerRows.evaluateAll((trs) => trs.map((tr) =>
    [...tr.cells].map((td) => td.textContent.trim())));
  // No gold samples in this queue: no gold items, no gold accuracy.
  assert.deepEqual(await table(), report.labelers.map((l) =>
    [l.labeler, String(l.labels), pct(l.agreement_with_others), pct(l.agreement_with_majority), '0', '—']));
  assert.ok(report.labelers.every((l) => l.gold === null));
  assert.deepEqual((await table())[0], ['alice', '6', '75%', '100%', '0', '—'], 'the shares computed by hand');
  const byName = page.locator('table.labelers th').filter({ hasText: 'Labeler' }).first();
  assert.equal(await byName.getAttribute('aria-sort'), 'ascending');
  await byName.getByRole('button').click();
  assert.equal(await byName.getAttribute('aria-sort'), 'descending');
  assert.deepEqual((await table()).map((r) => r[0]), ['bob', 'alice']);
  await byName.getByRole('button').focus();
  await page.keyboard.press('Enter');
  assert.deepEqual((await table()).map((r) => r[0]), ['alice', 'bob']);
  const byLabels = page.locator('table.labelers th').filter({ hasText: /^Labels/ });
  await byLabels.getByRole('button').focus();
  await page.keyboard.press('Space');
  assert.equal(await byLabels.getAttribute('aria-sort'), 'descending');
  assert.equal(await byName.getAttribute('aria-sort'), 'none');

  // The shortcut sheet lists the page's keys.
  await page.keyboard.press('?');
  const sheet = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  await sheet.waitFor();
  assert.match(await sheet.textContent(), /Back to reviewing/);
  await page.keyboard.press('Escape');
  await sheet.waitFor({ state: 'detached' });
  assert.deepEqual(problems.filter((p) => !/status of 4\d\d/.test(p)), []);
});

test('an admin opens the quality report from the queue page with Q; an empty queue says why per field', async () => {
  const queueId = await makeQueue(`Empty quality ${Date.now()}`, ['e-1', 'e-2']);
  const rep = await api(server, server.tokens.admin, 'GET', `/v1/queues/${queueId}/quality`);
  assert.equal(rep.status, 200);
  assert.equal(rep.body.labels, 0);
  const { page } = await newPage(browser);
  await signIn(page, server, server.tokens.admin);
  await page.goto(`${server.url}/admin/queues/${queueId}`);
  await page.locator('[data-section="stats"] .stats').waitFor();
  assert.equal(await page.getByRole('link', { name: /^Quality/ }).getAttribute('href'), `/queues/${queueId}/quality`);
  await page.keyboard.press('q');
  await page.waitForURL(`${server.url}/queues/${queueId}/quality`);
  await page.locator('tbody[data-field="sentiment"]').waitFor();
  for (const f of rep.body.fields) {
    assert.equal(f.value, null, f.name);
    assert.ok(f.why, `${f.name} says why`);
    const r = page.locator(`tbody[data-field="${f.name}"] .field-row`);
    assert.equal((await r.locator('[data-why]').textContent()).trim(), f.why);
    assert.equal((await r.locator('[data-value]').textContent()).trim(), '—');
  }
  assert.equal((await page.locator('.quality-counts [data-stat="labels"] dd').textContent()).trim(), '0');
  await page.getByText('No labels yet.').waitFor();
  await screenshot(page, '42-quality-empty');
});

test('a labeler is told the quality report is not for the role', async () => {
  const denied = await api(server, server.tokens.alice, 'GET', `/v1/queues/${server.queueId}/quality`);
  assert.equal(denied.status, 403);
  assert.ok(denied.body.error.message, 'the error envelope');
  const { page } = await newPage(browser);
  await signIn(page, server, server.tokens.alice);
  await page.goto(`${server.url}/queues/${server.queueId}/quality`);
  const notice = page.locator('.notice').filter({ hasText: 'Not allowed' });
  await notice.waitFor();
  assert.match(await notice.textContent(), /for auditors and admins; your role \(labeler\)/);
  assert.match(await notice.textContent(), new RegExp(denied.body.error.message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  assert.equal(await page.locator('table.quality-fields').count(), 0);
  await screenshot(page, '43-quality-labeler');
});
