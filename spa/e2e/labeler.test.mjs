// A labeler signs in and labels 20 samples of the demo queue using only the keyboard (choices, toggles, a
// rating, yes/no, a note, spans selected word by word and by character, one skip with a reason, a clear with
// Esc, the shortcut sheet, and a submit the server refuses), then the labels are read back through the API and
// must equal what was typed. A second labeler works at tablet width, giving the samples their second label.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, launchBrowser, newPage, screenshot, startServer } from './harness.mjs';

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

/** The words of a text as [start, end) char ranges: the same rule as the app's `model::words`. */
function words(text) {
  const chars = Array.from(text);
  const alnum = (c) => /[\p{L}\p{N}]/u.test(c);
  const out = [];
  let i = 0;
  while (i < chars.length) {
    const c = chars[i];
    if (/\s/u.test(c)) { i += 1; continue; }
    if (alnum(c)) {
      const s = i;
      i += 1;
      while (i < chars.length) {
        const d = chars[i];
        const joiner = "'’-.".includes(d) && i + 1 < chars.length && alnum(chars[i + 1]) && alnum(chars[i - 1]);
        if (alnum(d) || joiner) i += 1; else break;
      }
      out.push([s, i]);
    } else {
      out.push([i, i + 1]);
      i += 1;
    }
  }
  return out;
}

const SENTIMENTS = ['positive', 'neutral', 'negative'];
const ASPECTS = ['quality', 'price', 'shipping', 'support', 'durability'];

async function signInWithKeyboard(page, token) {
  await page.goto(server.url + '/');
  await page.locator('#token:focus').waitFor();
  await page.keyboard.insertText(token); // a paste
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** Tabs to the link or button whose text starts with `name`, then presses Enter. */
async function tabTo(page, name) {
  for (let n = 0; n < 40; n += 1) {
    await page.keyboard.press('Tab');
    const text = await page.evaluate(() => document.activeElement?.textContent?.trim() ?? '');
    if (text.startsWith(name)) {
      await page.keyboard.press('Enter');
      return;
    }
  }
  throw new Error(`no focusable "${name}" within 40 tabs`);
}

async function nextSample(page, previous) {
  await page.waitForFunction(
    (prev) => {
      const grid = document.querySelector('.label-page[data-state=ready] .label-grid');
      return grid && grid.dataset.sample !== prev;
    },
    previous,
  );
  const grid = page.locator('.label-grid');
  return {
    externalId: await grid.getAttribute('data-sample'),
    assignmentId: await grid.getAttribute('data-assignment'),
    text: await page.locator('.sample .span-text').textContent(),
  };
}

async function activeField(page) {
  return page.evaluate(() => document.querySelector('.field.active')?.dataset.field);
}

test('a labeler labels 20 samples with the keyboard only, and the API returns exactly what was entered', async () => {
  const { page, problems } = await newPage(browser);
  await page.goto(server.url + '/');
  await page.locator('#token').waitFor();
  await screenshot(page, '01-sign-in');
  await signInWithKeyboard(page, server.tokens.alice);
  await page.locator('.queue-card').first().waitFor();
  await screenshot(page, '02-queues-labeler');
  await tabTo(page, 'Start labeling');
  await page.waitForURL(/\/queues\/.*\/label$/);

  const expected = new Map();
  let skipped = null;
  let previous = null;
  let sawSpan = false;
  let sawCharSpan = false;
  for (let i = 0; expected.size < 20; i += 1) {
    const s = await nextSample(page, previous);
    previous = s.externalId;
    assert.ok(s.text && s.text.length > 20, 'the sample text is shown');
    assert.equal(await activeField(page), 'sentiment', 'each sample starts at the first field');

    if (i === 1) {
      // The shortcut sheet opens with ? and closes with Esc.
      await page.keyboard.press('?');
      await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor();
      await screenshot(page, '04-shortcut-sheet');
      await page.keyboard.press('Escape');
      await page.getByRole('dialog').waitFor({ state: 'detached' });
    }
    if (i === 2) {
      // Submitting nothing: the server's 422 is shown next to the field it is about, and nothing is lost.
      await page.keyboard.press('Enter');
      await page.locator('.field[data-field=sentiment] .field-error').waitFor();
      assert.match(await page.locator('.field[data-field=sentiment] .field-error').textContent(), /required/);
      await screenshot(page, '05-label-validation');
    }
    if (i === 3) {
      // Esc clears what was picked.
      await page.keyboard.press('2');
      await page.locator('.field[data-field=sentiment] .option.on').waitFor();
      await page.keyboard.press('Escape');
      await page.locator('.field[data-field=sentiment] .option.on').waitFor({ state: 'detached' });
    }
    if (i === 5) {
      // Skip with a reason.
      await page.keyboard.press('s');
      await page.locator('#skip-reason:focus').waitFor();
      await page.keyboard.type('unreadable scan');
      await screenshot(page, '06-skip-dialog');
      await page.keyboard.press('Enter');
      skipped = s;
      continue;
    }

    const payload = {};
    const sentiment = i % 3;
    await page.keyboard.press(String(sentiment + 1));
    payload.sentiment = SENTIMENTS[sentiment];
    assert.equal(await activeField(page), 'aspects', 'a choice moves on to the next field');

    const toggles = [];
    if (i % 2 === 0) toggles.push(0);
    if (i % 3 === 0) toggles.push(2);
    if (i % 4 === 1) toggles.push(4, 1, 4); // toggled on, on, off again
    for (const t of toggles) await page.keyboard.press(String(t + 1));
    const on = new Set();
    for (const t of toggles) { if (on.has(t)) on.delete(t); else on.add(t); }
    payload.aspects = ASPECTS.filter((_, k) => on.has(k));

    await page.keyboard.press('ArrowDown');
    assert.equal(await activeField(page), 'entities');
    const ws = words(s.text);
    const spans = [];
    let next = 0; // the word the next ArrowRight selects
    if (i % 4 === 0) {
      // First word, grown by one word, tagged ORG (label 2).
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('Shift+ArrowRight');
      await page.keyboard.press('2');
      spans.push({ start: ws[0][0], end: ws[1][1], label: 'ORG' });
      next = 2;
      sawSpan = true;
    }
    if (i % 6 === 2) {
      // Two words on, its end pulled in by one character, tagged PER; then two words further as LOC.
      for (let k = 0; k < 3; k += 1) await page.keyboard.press('ArrowRight');
      const w = next + 2;
      await page.keyboard.press('Control+ArrowLeft');
      await page.keyboard.press('1');
      spans.push({ start: ws[w][0], end: ws[w][1] - 1, label: 'PER' });
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('3');
      spans.push({ start: ws[w + 2][0], end: ws[w + 2][1], label: 'LOC' });
      // A mistaken tag, removed again with Delete.
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('2');
      await page.keyboard.press('Delete');
      sawCharSpan = true;
    }
    spans.sort((a, b) => a.start - b.start || a.end - b.end);
    payload.entities = spans;
    if (spans.length > 0 && !expected.size) await screenshot(page, '07-label-spans');
    if (i % 6 === 2) await screenshot(page, '07-label-spans-keyboard');

    await page.keyboard.press('ArrowDown');
    assert.equal(await activeField(page), 'helpfulness');
    const rating = (i % 5) + 1;
    await page.keyboard.press(String(rating));
    payload.helpfulness = rating;
    assert.equal(await activeField(page), 'would_recommend');

    if (i % 3 !== 1) {
      const yes = i % 2 === 0;
      await page.keyboard.press(yes ? 'y' : 'n');
      payload.would_recommend = yes;
    } else {
      await page.keyboard.press('ArrowDown');
    }
    // The note field takes the focus; typing goes into it and Enter submits from there.
    await page.locator('#field-5-input:focus').waitFor();
    if (i % 4 === 3) {
      const note = `checked ${i}: S, 1 and ? are text here`;
      await page.keyboard.type(note);
      payload.note = note;
    }
    if (i === 0) await screenshot(page, '03-label-filled');
    await page.keyboard.press('Enter');
    expected.set(s.externalId, { payload, assignmentId: s.assignmentId });
  }
  assert.ok(sawSpan && sawCharSpan && skipped, 'spans by word and by character, and a skip, were exercised');

  await page.waitForFunction(() => document.querySelector('[data-tally=labeled]')?.textContent === '20');
  assert.equal(await page.locator('[data-tally=skipped]').textContent(), '1');
  await page.locator('.label-page[data-state=ready]').waitFor();
  await screenshot(page, '08-label-after-20');

  // Read the labels back with alice's own token.
  const labels = [];
  let cursor = '';
  for (;;) {
    const r = await api(server, server.tokens.alice, 'GET',
      `/v1/queues/${server.queueId}/labels?limit=500&labeler=alice${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(r.status, 200);
    labels.push(...r.body.items);
    if (!r.body.next_cursor) break;
    cursor = r.body.next_cursor;
  }
  const mine = labels.filter((l) => expected.has(l.external_id));
  assert.equal(mine.length, 20, 'all 20 labels are stored');
  for (const l of mine) {
    const want = expected.get(l.external_id);
    assert.equal(l.assignment_id, want.assignmentId);
    assert.deepEqual(l.payload, want.payload, `label of ${l.external_id}`);
  }
  assert.ok(!labels.some((l) => l.external_id === skipped.externalId), 'the skipped sample has no label');
  const a = await api(server, server.tokens.alice, 'GET', `/v1/assignments/${skipped.assignmentId}`);
  assert.equal(a.status, 200);
  assert.equal(a.body.assignment.state, 'released');
  assert.equal(a.body.assignment.release_reason, 'unreadable scan');
  assert.deepEqual(problems.filter((p) => !/status of 4\d\d/.test(p)), [], 'no script errors');
});

/** Drags the mouse over chars [start, end) of the sample text (an unlabeled stretch of it). */
async function dragSelect(page, start, end) {
  const box = await page.evaluate(([a, b]) => {
    const seg = [...document.querySelectorAll('.sample .span-text [data-o]')]
      .filter((e) => Number(e.dataset.o) <= a).at(-1);
    const node = seg.firstChild;
    const o = Number(seg.dataset.o);
    const at = (i) => { const r = document.createRange(); r.setStart(node, i - o); r.setEnd(node, i - o + 1); return r.getBoundingClientRect(); };
    const first = at(a);
    const last = at(b - 1);
    return { x0: first.left + 1, y0: first.top + first.height / 2, x1: last.right - 1, y1: last.top + last.height / 2 };
  }, [start, end]);
  await page.mouse.move(box.x0, box.y0);
  await page.mouse.down();
  await page.mouse.move(box.x1, box.y1, { steps: 5 });
  await page.mouse.up();
}

test('a second labeler works at tablet width, tags spans with the mouse, and gives samples their second label', async () => {
  const { page } = await newPage(browser, { width: 768, height: 1024 });
  await signInWithKeyboard(page, server.tokens.bob);
  await page.goto(`${server.url}/queues/${server.queueId}/label`);
  let previous = null;
  const spansOf = new Map();
  for (let i = 0; i < 4; i += 1) {
    const s = await nextSample(page, previous);
    previous = s.externalId;
    await page.keyboard.press(String(((i + 1) % 3) + 1));
    if (i === 0) {
      // Drag over a product name, then click the ORG button; click a single word, then press 3 (LOC).
      const name = 'AeroPress coffee maker';
      const at = s.text.indexOf(name);
      assert.ok(at >= 0);
      await dragSelect(page, at, at + name.length);
      await page.locator('.sample .span-text .sel').first().waitFor();
      assert.equal(await activeField(page), 'entities', 'selecting text makes the span field active');
      await page.getByRole('button', { name: '2 ORG' }).click();
      const word = 'birthday';
      const w = s.text.indexOf(word);
      const mid = await page.evaluate((k) => { // the middle of the word's fourth char
        const seg = [...document.querySelectorAll('.sample .span-text [data-o]')].filter((e) => Number(e.dataset.o) <= k).at(-1);
        const r = document.createRange();
        r.setStart(seg.firstChild, k - Number(seg.dataset.o));
        r.setEnd(seg.firstChild, k - Number(seg.dataset.o) + 1);
        const b = r.getBoundingClientRect();
        return { x: b.left + b.width / 2, y: b.top + b.height / 2 };
      }, w + 3);
      await page.mouse.click(mid.x, mid.y); // a click selects the word under it
      await page.keyboard.press('3');
      await page.locator('.sample .span-text mark.tag-2').waitFor();
      spansOf.set(s.externalId, [
        { start: at, end: at + name.length, label: 'ORG' },
        { start: w, end: w + word.length, label: 'LOC' },
      ].sort((x, y) => x.start - y.start));
      await screenshot(page, '09-label-tablet');
    } else {
      await page.keyboard.press('ArrowDown');
    }
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press(String(5 - i));
    await page.keyboard.press('Enter');
  }
  await page.waitForFunction(() => document.querySelector('[data-tally=labeled]')?.textContent === '4');
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 768, `no horizontal scrolling at tablet width (${width}px)`);
  const r = await api(server, server.tokens.bob, 'GET', `/v1/queues/${server.queueId}/labels?labeler=bob`);
  assert.equal(r.body.items.length, 4);
  for (const [ext, spans] of spansOf) {
    assert.deepEqual(r.body.items.find((l) => l.external_id === ext).payload.entities, spans);
  }
});
