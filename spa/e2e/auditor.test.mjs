// An auditor browses a queue's labels page by page, opens one sample to compare its two labels side by side, rejects one
// with a comment (a rejection without one is refused) and accepts the other; the API then shows the reviews.
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

test('an auditor compares the labels of a sample and rejects one with a comment', async () => {
  // Arrange: a queue of three reviews, each labeled by alice and by bob (who disagree on the first).
  const { tokens } = server;
  const q = await api(server, tokens.admin, 'POST', '/v1/queues', {
    name: `Audit ${Date.now()}`,
    description: 'Two labels per sample, for the auditor test',
    overlap: 2,
    schema: {
      fields: [
        { name: 'sentiment', title: 'Sentiment', kind: 'single_choice', options: ['positive', 'negative'] },
        { name: 'entities', title: 'Entities', kind: 'span', source: 'text', labels: ['ORG'], required: false },
        { name: 'note', title: 'Note', kind: 'text', required: false },
      ],
    },
  });
  assert.equal(q.status, 201);
  const queueId = q.body.id;
  const texts = ['Acme Corp shipped it late.', 'Globex support was great.', 'It works.'];
  for (let n = 4; n <= 30; n += 1) texts.push(`Filler review number ${n}.`);
  const add = await api(server, tokens.admin, 'POST', `/v1/queues/${queueId}/samples`, {
    samples: texts.map((text, i) => ({ external_id: `audit-${i + 1}`, payload: { text }, priority: 30 - i })),
  });
  assert.equal(add.body.created, 30);
  await labelVia(tokens.alice, queueId, (s) => ({
    sentiment: 'positive',
    entities: s.external_id === 'audit-1' ? [{ start: 0, end: 9, label: 'ORG' }] : [],
  }));
  await labelVia(tokens.bob, queueId, (s) => ({
    sentiment: s.external_id === 'audit-1' ? 'negative' : 'positive',
    entities: s.external_id === 'audit-1' ? [{ start: 0, end: 4, label: 'ORG' }] : [],
    note: 'looks fine',
  }));

  // Act: the auditor reviews in the browser.
  const { page, problems } = await newPage(browser);
  await signIn(page, server, tokens.auditor);
  const card = page.locator(`.queue-card[data-queue="${queueId}"]`);
  await card.locator('progress').waitFor();
  await screenshot(page, '10-queues-auditor');
  await card.getByRole('link', { name: 'Review labels' }).click();
  // 60 labels: a page of 50, then the rest.
  await page.locator('.labels-table tbody tr').nth(49).waitFor();
  assert.equal(await page.locator('.labels-table tbody tr').count(), 50);
  await screenshot(page, '11-review-list');
  await page.getByRole('button', { name: 'Load more' }).click();
  await page.locator('.labels-table tbody tr').nth(59).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Load more' }).count(), 0, 'no more pages');
  const rows = await page.locator('.labels-table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.label));
  assert.equal(new Set(rows).size, 60, 'every label once');

  await page.getByRole('button', { name: 'Compare the labels of audit-1' }).first().click();
  const cards = page.locator('.compare .label-card');
  await cards.nth(1).waitFor();
  assert.equal(await cards.count(), 2, 'both labels side by side');
  await page.locator('.focus .sample-text').waitFor();
  assert.match(await page.locator('.focus').textContent(), /disagree on: Sentiment, Entities, Note\./);
  assert.equal(await page.locator('.label-card[data-labeler=alice] .label-view .differs').count(), 3,
    'sentiment, entities and note differ');
  const alice = page.locator('.label-card[data-labeler=alice]');
  const bob = page.locator('.label-card[data-labeler=bob]');
  assert.match(await alice.locator('.label-view').textContent(), /ORGAcme Corp/, 'spans are quoted from the text');

  // A rejection needs a comment.
  await alice.getByRole('button', { name: 'Reject' }).click();
  await alice.locator('.field-error').waitFor();
  await alice.getByLabel('Comment').fill('Acme Corp is one organisation, but the sentiment is negative.');
  await alice.getByRole('button', { name: 'Reject' }).click();
  await alice.locator('.verdict.reject').first().waitFor();
  await bob.getByRole('button', { name: 'Accept' }).click();
  await bob.locator('.verdict.accept').first().waitFor();
  await screenshot(page, '12-review-compare');

  // Assert: the API shows the reviews.
  const labels = await api(server, tokens.auditor, 'GET', `/v1/queues/${queueId}/labels?limit=500&sample_id=${
    (await api(server, tokens.auditor, 'GET', `/v1/queues/${queueId}/labels?limit=500`)).body.items
      .find((l) => l.external_id === 'audit-1').sample_id}`);
  assert.equal(labels.body.items.length, 2);
  const a1 = labels.body.items.find((l) => l.external_id === 'audit-1' && l.labeler === 'alice');
  const b1 = labels.body.items.find((l) => l.external_id === 'audit-1' && l.labeler === 'bob');
  const ra = await api(server, tokens.auditor, 'GET', `/v1/labels/${a1.id}`);
  assert.equal(ra.body.reviews.length, 1);
  assert.equal(ra.body.reviews[0].verdict, 'reject');
  assert.equal(ra.body.reviews[0].reviewer, 'demo-auditor');
  assert.equal(ra.body.reviews[0].comment, 'Acme Corp is one organisation, but the sentiment is negative.');
  const rb = await api(server, tokens.auditor, 'GET', `/v1/labels/${b1.id}`);
  assert.equal(rb.body.reviews.at(-1).verdict, 'accept');

  // Back in the list, the verdicts show.
  await page.getByRole('button', { name: 'Back to all labels' }).click();
  await page.locator(`.labels-table tr[data-label="${a1.id}"] .verdict.reject`).waitFor();
  assert.deepEqual(problems.filter((p) => !/status of 4\d\d/.test(p)), []);
});

test('a labeler cannot open the review page', async () => {
  const { page } = await newPage(browser);
  await signIn(page, server, server.tokens.alice);
  await page.goto(`${server.url}/queues/${server.queueId}/review`);
  await page.getByText('Auditors only').waitFor();
});
