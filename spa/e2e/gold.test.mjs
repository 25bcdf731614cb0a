// Gold (check) samples: an admin sets the gold rate and an accuracy floor through the queue page's Gold section
// (meeting the server's 422 next to the field first), pastes gold items as JSON Lines (an unreadable line and
// an invalid answer are each reported at their line, nothing is added), then valid ones (counts, the table). A
// labeler who answers the gold wrongly is stopped by the floor (403 below_gold_floor), and the labeling page
// says so plainly without asking again; the auditor's quality page shows the labeler's gold accuracy with a
// "below floor" badge; the admin exempts the labeler through the form and the floor no longer applies.
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
    { name: 'stars', title: 'Stars', kind: 'rating', max: 5, required: false },
  ],
};

// The known answers; each names only the field it knows.
const GOLD = { 'gold-1': 'positive', 'gold-2': 'negative', 'gold-3': 'positive', 'gold-4': 'neutral' };
const goldLine = (id, sentiment = GOLD[id]) =>
  JSON.stringify({ external_id: id, payload: { text: `Check item ${id}` }, answer: { sentiment } });
const wrong = (s) => (s === 'positive' ? 'negative' : 'positive');

/** The page's way of showing a share: a percentage with at most one decimal. */
function pct(x) {
  if (x === null) return '—';
  return `${String((Math.round(x * 1000) / 10).toFixed(1)).replace(/\.0$/, '')}%`;
}

/**
 * Labels through the API until the claim is refused, nothing is left, or `stop()` says so. Gold items are
 * told apart by their external ids (the labeler's client cannot see it): answered rightly or wrongly.
 */
async function labelVia(token, queueId, { rightOnGold, stop = () => false, max = 60 }) {
  const gold = [];
  for (let i = 0; i < max; i++) {
    const c = await api(server, token, 'POST', `/v1/queues/${queueId}/assignments/next`);
    if (c.status === 403) return { gold, refused: c.body };
    if (c.status === 204) return { gold, refused: null };
    assert.equal(c.status, 200, JSON.stringify(c.body));
    assert.ok(!JSON.stringify(c.body).includes('answer'), 'a claim never carries a gold answer');
    const ext = c.body.sample.external_id;
    let sentiment = 'positive';
    if (ext in GOLD) {
      gold.push(ext);
      sentiment = rightOnGold ? GOLD[ext] : wrong(GOLD[ext]);
    }
    const r = await api(server, token, 'POST', '/v1/labels',
      { assignment_id: c.body.assignment.id, payload: { sentiment, stars: 3 } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    if (stop(gold)) return { gold, refused: null };
  }
  return { gold, refused: null };
}

test('gold items, rate and floor through the admin form; a labeler under the floor is stopped and exempted', async () => {
  const { tokens } = server;
  const settingsPath = (id) => `/v1/queues/${id}/gold/settings`;
  const q = await api(server, tokens.admin, 'POST', '/v1/queues', { name: `Gold ${Date.now()}`, overlap: 1, schema: SCHEMA });
  assert.equal(q.status, 201, JSON.stringify(q.body));
  const queueId = q.body.id;
  const add = await api(server, tokens.admin, 'POST', `/v1/queues/${queueId}/samples`, {
    samples: Array.from({ length: 30 }, (_, i) => ({ external_id: `r-${i + 1}`, payload: { text: `Review ${i + 1}` } })),
  });
  assert.equal(add.body.created, 30);
  assert.deepEqual((await api(server, tokens.admin, 'GET', settingsPath(queueId))).body,
    { rate: 0, floor: null, exempt: [] });

  // The admin's queue page: G jumps to the Gold section (listed on the ? sheet), Tab goes on into its form.
  const admin = await newPage(browser);
  const { page } = admin;
  await signIn(page, server, tokens.admin);
  await page.goto(`${server.url}/admin/queues/${queueId}`);
  const gold = page.locator('[data-section="gold"]');
  await gold.locator('#gold-rate').waitFor();
  await page.keyboard.press('?');
  const sheet = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  await sheet.waitFor();
  assert.match(await sheet.textContent(), /G.*Jump to the Gold section/);
  await page.keyboard.press('Escape');
  await sheet.waitFor({ state: 'detached' });
  await page.keyboard.press('g');
  await page.locator('#gold-title:focus').waitFor();
  await page.keyboard.press('Tab');
  await page.locator('#gold-rate:focus').waitFor();
  assert.equal(await page.getByLabel('Gold share of claims (%)').inputValue(), '0');
  assert.match(await gold.locator('[data-rate-words]').textContent(), /never \(gold is off\)/);

  // 60 % is more than the server allows: its message shows at the field, nothing changes.
  const rate = page.getByLabel('Gold share of claims (%)');
  await rate.fill('60');
  const floorBox = page.getByLabel('Stop labelers whose gold accuracy is under a floor');
  await floorBox.focus();
  await page.keyboard.press('Space');
  assert.equal(await floorBox.isChecked(), true);
  await page.getByLabel('Minimum gold accuracy (%)').fill('75');
  await page.getByLabel('After this many gold items').fill('2');
  await page.getByRole('button', { name: 'Save gold settings' }).click();
  const rateError = gold.locator('[data-error-for="rate"]');
  await rateError.waitFor();
  assert.match(await rateError.textContent(), /From 0 to 50 % of claims.*must be 0\.\.=0\.5/);
  assert.equal(await rate.getAttribute('aria-invalid'), 'true');
  assert.deepEqual((await api(server, tokens.admin, 'GET', settingsPath(queueId))).body,
    { rate: 0, floor: null, exempt: [] }, 'a refused save changes nothing');
  await gold.scrollIntoViewIfNeeded();
  await screenshot(page, '50-gold-settings-invalid');

  // 50 %: one claim in two; Enter in the field saves.
  await rate.fill('50');
  assert.match(await gold.locator('[data-rate-words]').textContent(), /one claim in 2/);
  assert.equal(await rateError.count(), 0, 'the message goes once the field is edited');
  await rate.press('Enter');
  await gold.locator('[data-gold-saved]').waitFor();
  assert.deepEqual((await api(server, tokens.admin, 'GET', settingsPath(queueId))).body,
    { rate: 0.5, floor: { min_accuracy: 0.75, after: 2 }, exempt: [] });

  // Pasted gold items: an unreadable line is caught before anything is sent.
  const paste = page.getByLabel('Gold items as JSON Lines, one per line');
  const addGold = page.getByRole('button', { name: 'Add gold items' });
  await paste.fill([goldLine('gold-1'), '{"external_id": "gold-x", "payload": '].join('\n'));
  await addGold.click();
  const badLine = gold.locator('[data-gold-bad-lines] li[data-line="2"]');
  await badLine.waitFor();
  assert.match(await badLine.textContent(), /^line 2: /);

  // An answer the schema does not allow: the server's pointer /items/2/answer/sentiment is line 4 (line 3 is
  // blank); nothing is added.
  const lines = [goldLine('gold-1'), goldLine('gold-2'), '', goldLine('gold-3', 'meh'), goldLine('gold-4')];
  await paste.fill(lines.join('\n'));
  await addGold.click();
  const problems = gold.locator('[data-gold-problems] li');
  await problems.first().waitFor();
  assert.equal(await problems.count(), 1);
  assert.equal(await problems.first().getAttribute('data-line'), '4');
  assert.match(await problems.first().textContent(), /^line 4, answer\/sentiment: /);
  assert.match(await gold.locator('.notice', { has: page.locator('[data-gold-problems]') }).textContent(),
    /The server refused 1 line; nothing was added/);
  assert.deepEqual((await api(server, tokens.admin, 'GET', `/v1/queues/${queueId}/gold`)).body.items, []);
  await screenshot(page, '51-gold-invalid');

  // Fixed: four created, listed with their answers and no labels yet.
  lines[3] = goldLine('gold-3');
  await paste.fill(lines.join('\n') + '\n');
  await addGold.click();
  const result = gold.locator('[data-gold-result]');
  await result.waitFor();
  assert.equal(await result.getAttribute('data-created'), '4');
  assert.equal(await result.getAttribute('data-updated'), '0');
  assert.match(await result.textContent(), /Added 4 new gold items\./);
  assert.equal(await paste.inputValue(), '', 'the box empties once added');
  await gold.locator('table.gold-items tbody tr').nth(3).waitFor();
  const listed = await gold.locator('table.gold-items tbody tr').evaluateAll((trs) => trs.map((tr) => ({
    id: tr.dataset.gold, cells: [...tr.cells].map((td) => td.textContent.trim()),
  })));
  assert.deepEqual(listed.map((r) => r.id).sort(), Object.keys(GOLD));
  for (const r of listed) {
    assert.deepEqual(r.cells, [r.id, JSON.stringify({ sentiment: GOLD[r.id] }), '0'], r.id);
  }
  const apiList = (await api(server, tokens.admin, 'GET', `/v1/queues/${queueId}/gold`)).body.items;
  assert.equal(apiList.length, 4);
  await screenshot(page, '52-gold-added');

  // bob answers every gold item wrongly: after two, the claim is refused. alice answers them rightly.
  const bob = await labelVia(tokens.bob, queueId, { rightOnGold: false });
  assert.ok(bob.refused, `bob was never stopped; gold seen: ${bob.gold}`);
  assert.equal(bob.refused.error.code, 'below_gold_floor', JSON.stringify(bob.refused));
  assert.match(bob.refused.error.message, /75 %/);
  assert.equal(bob.gold.length, 2, 'the floor applies after two gold items');
  const alice = await labelVia(tokens.alice, queueId, { rightOnGold: true, stop: (g) => g.length >= 2 });
  assert.equal(alice.refused, null);
  assert.equal(alice.gold.length, 2, `alice saw gold: ${alice.gold}`);

  // The admin's list counts the labels each gold item has now.
  await gold.locator('.gold-list').getByRole('button', { name: 'Refresh' }).click();
  const labelsOf = (id) => [...bob.gold, ...alice.gold].filter((g) => g === id).length;
  await page.waitForFunction((n) => [...document.querySelectorAll('table.gold-items [data-labels]')]
    .reduce((sum, td) => sum + Number(td.textContent), 0) === n, bob.gold.length + alice.gold.length);
  for (const id of Object.keys(GOLD)) {
    assert.equal(await gold.locator(`tr[data-gold="${id}"] [data-labels]`).textContent(), String(labelsOf(id)), id);
  }

  // bob opens the labeling page: the server's message in a notice, no Retry, and no claim after the first.
  const labeler = await newPage(browser);
  await signIn(labeler.page, server, tokens.bob);
  let claims = 0;
  labeler.page.on('request', (r) => { if (r.url().endsWith('/assignments/next')) claims += 1; });
  await labeler.page.goto(`${server.url}/queues/${queueId}/label`);
  const notice = labeler.page.locator('.label-page[data-state="below-floor"] [data-below-floor]');
  await notice.waitFor();
  const message = bob.refused.error.message;
  assert.equal((await notice.textContent()).trim(), message[0].toUpperCase() + message.slice(1));
  assert.match(await labeler.page.locator('.below-floor .notice').textContent(), /no more samples from this queue/);
  assert.equal(await labeler.page.getByRole('button', { name: 'Retry' }).count(), 0);
  await labeler.page.waitForTimeout(2500);
  assert.equal(claims, 1, 'the page does not ask again by itself');
  await screenshot(labeler.page, '53-label-below-floor');
  assert.deepEqual(labeler.problems.filter((p) => !/status of 4\d\d/.test(p)), []);

  // The auditor's quality page: gold items, accuracy and the badge, as the API has them; sortable.
  const report = (await api(server, tokens.auditor, 'GET', `/v1/queues/${queueId}/quality`)).body;
  const bobQ = report.labelers.find((l) => l.labeler === 'bob');
  assert.deepEqual([bobQ.gold.items, bobQ.gold.scored, bobQ.gold.correct, bobQ.gold.below_floor, bobQ.gold.exempt],
    [2, 2, 0, true, false]);
  const aliceQ = report.labelers.find((l) => l.labeler === 'alice');
  assert.deepEqual([aliceQ.gold.items, aliceQ.gold.accuracy, aliceQ.gold.below_floor], [2, 1, false]);
  const auditor = await newPage(browser);
  await signIn(auditor.page, server, tokens.auditor);
  await auditor.page.goto(`${server.url}/queues/${queueId}/quality`);
  const row = (who) => auditor.page.locator(`table.labelers tr[data-labeler="${who}"]`);
  await row('bob').waitFor();
  assert.equal((await row('bob').locator('[data-gold="items"]').textContent()).trim(), String(bobQ.gold.items));
  assert.equal((await row('bob').locator('[data-gold-accuracy]').textContent()).trim(), pct(bobQ.gold.accuracy));
  assert.equal((await row('bob').locator('[data-gold-accuracy]').textContent()).trim(), '0%');
  assert.equal((await row('bob').locator('[data-gold-standing="below-floor"]').textContent()).trim(), 'below floor');
  assert.equal((await row('alice').locator('[data-gold-accuracy]').textContent()).trim(), '100%');
  assert.equal(await row('alice').locator('[data-gold-standing]').count(), 0);
  const byGold = auditor.page.locator('table.labelers th').filter({ hasText: 'Gold accuracy' });
  const order = async () => auditor.page.locator('table.labelers tbody tr').evaluateAll((trs) =>
    trs.map((tr) => tr.dataset.labeler));
  await byGold.getByRole('button').focus();
  await auditor.page.keyboard.press('Enter');
  assert.equal(await byGold.getAttribute('aria-sort'), 'descending');
  assert.deepEqual(await order(), ['alice', 'bob']);
  await auditor.page.keyboard.press('Enter');
  assert.equal(await byGold.getAttribute('aria-sort'), 'ascending');
  assert.deepEqual(await order(), ['bob', 'alice']);
  await screenshot(auditor.page, '54-quality-gold');

  // The admin exempts bob through the form (a name added by mistake is removed by keyboard), and saves.
  await page.keyboard.press('g');
  await page.locator('#gold-title:focus').waitFor();
  const who = page.getByLabel('Labeler to exempt');
  await who.fill('carol');
  await who.press('Enter');
  await who.fill('bob');
  await who.press('Enter');
  await gold.locator('li[data-exempt="bob"]').waitFor();
  assert.deepEqual(await gold.locator('li[data-exempt]').evaluateAll((lis) => lis.map((li) => li.dataset.exempt)),
    ['carol', 'bob']);
  await page.getByRole('button', { name: 'Remove carol from the exempt list' }).focus();
  await page.keyboard.press('Enter');
  await gold.locator('li[data-exempt="carol"]').waitFor({ state: 'detached' });
  await page.locator('#gold-exempt-new:focus').waitFor();
  assert.equal((await api(server, tokens.admin, 'GET', settingsPath(queueId))).body.exempt.length, 0,
    'nothing is saved before Save');
  await page.getByRole('button', { name: 'Save gold settings' }).click();
  await gold.locator('[data-gold-saved]').waitFor();
  assert.deepEqual((await api(server, tokens.admin, 'GET', settingsPath(queueId))).body,
    { rate: 0.5, floor: { min_accuracy: 0.75, after: 2 }, exempt: ['bob'] });
  await gold.scrollIntoViewIfNeeded();
  await screenshot(page, '55-gold-exempt');
  assert.deepEqual(admin.problems.filter((p) => !/status of 4\d\d/.test(p)), []);

  // Exempt, bob gets samples again; the quality page says so.
  const again = await api(server, tokens.bob, 'POST', `/v1/queues/${queueId}/assignments/next`);
  assert.equal(again.status, 200, JSON.stringify(again.body));
  await auditor.page.getByRole('button', { name: 'Refresh' }).click();
  await row('bob').locator('[data-gold-standing="exempt"]').waitFor();
  assert.equal(await row('bob').locator('[data-gold-standing="below-floor"]').count(), 0);
  assert.deepEqual(auditor.problems.filter((p) => !/status of 4\d\d/.test(p)), []);
});
