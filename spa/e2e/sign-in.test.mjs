// Signing in without pasting a token.
// 1. The demo's one-click buttons: "Sign in as alice" on the sign-in page of `anvil serve --demo`, then one
//    sample labeled and read back through the API.
// 2. Single sign-on at a real OpenID provider (oidc-provider on 127.0.0.1, see idp.mjs): the authorization
//    code flow with PKCE through the provider's own login and consent pages, a sample claimed with its
//    access token, an expired token answered by "sign in again" which restarts the flow (the provider's
//    session makes it one click), and sign-out through the provider's end-session page. A token of the
//    same provider for another audience is refused by the API.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, test } from 'node:test';
import { api, freePort, launchBrowser, newPage, screenshot, startServer } from './harness.mjs';
import { ACCOUNTS, AUDIENCE, CLIENT_ID, RESOURCE, claimsOf, startIdp } from './idp.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

/** Answers the current sample's required fields with the keyboard and submits it. */
async function labelOne(page) {
  await page.locator('.label-page[data-state=ready] .label-grid').waitFor();
  const assignment = await page.locator('.label-grid').getAttribute('data-assignment');
  await page.keyboard.press('1'); // sentiment: positive (moves on to aspects)
  await page.keyboard.press('ArrowDown'); // entities
  await page.keyboard.press('ArrowDown'); // helpfulness
  await page.keyboard.press('4');
  await page.keyboard.press('Enter');
  await page.waitForFunction(
    (a) => document.querySelector('.label-grid')?.dataset.assignment !== a,
    assignment,
  );
  return assignment;
}

test('the demo sign-in page signs in as alice with one click, and alice labels a sample', async () => {
  const server = await startServer();
  cleanup.push(() => server.stop());
  const browser = await launchBrowser();
  cleanup.push(() => browser.close());
  const { page, problems } = await newPage(browser);

  await page.goto(server.url + '/');
  const alice = page.getByRole('button', { name: 'Sign in as alice' });
  await alice.waitFor();
  // the pasted-token form keeps the focus; the demo people follow it in the tab order
  await page.locator('#token:focus').waitFor();
  for (const who of ['admin', 'auditor', 'bob']) {
    assert.ok(await page.getByRole('button', { name: `Sign in as ${who}` }).isVisible(), who);
  }
  await alice.focus();
  await screenshot(page, '40-sign-in-demo-people');
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  assert.equal(await page.locator('.who .subject').textContent(), 'alice');
  assert.equal(await page.locator('.who .role').textContent(), 'labeler');

  await page.getByRole('link', { name: 'Start labeling' }).first().click();
  await page.waitForURL(/\/queues\/.*\/label$/);
  const assignment = await labelOne(page);
  await screenshot(page, '41-demo-alice-labeled');

  const labels = await api(server, server.tokens.admin, 'GET', `/v1/queues/${server.queueId}/labels?limit=50`);
  assert.equal(labels.status, 200);
  const mine = labels.body.items.filter((l) => l.assignment_id === assignment);
  assert.equal(mine.length, 1, 'the label is stored');
  assert.equal(mine[0].labeler, 'alice');
  assert.equal(mine[0].payload.sentiment, 'positive');
  assert.equal(mine[0].payload.helpfulness, 4);
  assert.deepEqual(problems, []);
});

test('single sign-on at an OpenID provider: code flow with PKCE, claim, expiry, sign in again, sign out', async () => {
  const appPort = await freePort();
  const appUrl = `http://127.0.0.1:${appPort}`;
  const idp = await startIdp({ port: await freePort(), appUrl });
  cleanup.push(() => idp.stop());
  const server = await startServer({
    port: appPort,
    env: {
      ANVIL_OIDC_ISSUER: idp.issuer,
      ANVIL_OIDC_CLIENT_ID: CLIENT_ID,
      ANVIL_OIDC_SCOPES: 'openid anvil',
      ANVIL_OIDC_RESOURCE: RESOURCE,
      ANVIL_JWT_AUDIENCE: AUDIENCE,
      // the demo's data and printed tokens: an explicit secret beside the provider's keys
      ANVIL_JWT_HS256_SECRET: crypto.randomBytes(32).toString('hex'),
      // so that a token that has expired is refused at once
      ANVIL_JWT_LEEWAY_SECS: '0',
    },
  });
  cleanup.push(() => server.stop());
  const browser = await launchBrowser();
  cleanup.push(() => browser.close());
  const { page, problems } = await newPage(browser);
  // the provider's development pages import a web font; nothing leaves this machine
  await page.context().route(/^https:/, (r) => r.abort());
  // what is left once the blocked font and the one 401 this test provokes (the expired token) are set aside
  const unexpected = () => problems.filter((p) => !/fonts\.googleapis|net::ERR_FAILED/.test(p)
    && !/status of 401/.test(p));

  // The sign-in page offers single sign-on first, with the focus on it.
  await page.goto(appUrl + '/');
  const sso = page.getByRole('button', { name: 'Sign in with single sign-on' });
  await sso.waitFor();
  await page.waitForFunction(() => document.activeElement?.textContent === 'Sign in with single sign-on');
  await screenshot(page, '42-sign-in-sso');

  // A short-lived first token, to meet its expiry later.
  idp.settings.accessTokenTtl = 15;
  const authorizing = page.waitForRequest((r) => r.url().startsWith(`${idp.issuer}/auth?`));
  await sso.click();
  const authorize = new URL((await authorizing).url());
  // The provider's login page: any password for a known account.
  await page.locator('input[name=login]').waitFor();
  await screenshot(page, '43-idp-login');
  await page.locator('input[name=login]').fill('carol');
  await page.locator('input[name=password]').fill('any password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  // Its consent page.
  await page.getByRole('button', { name: 'Continue' }).waitFor();
  await screenshot(page, '44-idp-consent');
  await page.getByRole('button', { name: 'Continue' }).click();

  // Back in the app, signed in as carol, on the page the sign-in started from.
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/', 'the callback address is replaced');
  assert.equal(await page.locator('.who .subject').textContent(), 'carol');
  assert.equal(await page.locator('.who .role').textContent(), 'labeler');
  const token = await page.evaluate(() => JSON.parse(localStorage.getItem('anvil.token')));
  const claims = claimsOf(token);
  assert.equal(claims.iss, idp.issuer);
  assert.equal(claims.aud, AUDIENCE, 'an access token for Anvil, not the ID token');
  assert.equal(claims.tenant, ACCOUNTS.carol.tenant);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('anvil.oidc.pending')), null, 'used once');

  // What the browser sent the provider: PKCE S256, a fresh state and nonce, the resource indicator.
  const q = authorize.searchParams;
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('client_id'), CLIENT_ID);
  assert.equal(q.get('redirect_uri'), `${appUrl}/auth/callback`);
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
  assert.match(q.get('state'), /^[A-Za-z0-9_-]{22}$/);
  assert.match(q.get('nonce'), /^[A-Za-z0-9_-]{22}$/);
  assert.notEqual(q.get('state'), q.get('nonce'));
  assert.equal(q.get('resource'), RESOURCE);

  // A replayed callback address (a reload, a stale link) signs nobody in or out: no sign-in waits for it.
  await page.goto(`${appUrl}/auth/callback?code=replayed&state=${q.get('state')}`);
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/');
  assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('anvil.token'))), token);

  // Claim a sample with the provider's token.
  await page.getByRole('link', { name: 'Start labeling' }).first().click();
  await page.waitForURL(/\/queues\/.*\/label$/);
  await page.locator('.label-page[data-state=ready] .label-grid').waitFor();
  const assignment = await page.locator('.label-grid').getAttribute('data-assignment');
  const claimed = await api(server, token, 'GET', `/v1/assignments/${assignment}`);
  assert.equal(claimed.status, 200, JSON.stringify(claimed.body));
  await screenshot(page, '45-sso-claimed');

  // The token expires; the next call meets "sign in again", which restarts the flow at the provider. Its
  // session and the consent given skip both pages, and the app comes back where it was.
  idp.settings.accessTokenTtl = 600;
  // until the token's own expiry (leeway 0), not a fixed time after the click: under load the code exchange
  // may finish seconds after it
  await page.waitForTimeout(Math.max(0, claims.exp * 1000 + 1_500 - Date.now()));
  await page.getByRole('link', { name: 'Queues' }).click();
  const expired = page.locator('[data-dialog=expired]');
  await expired.waitFor();
  const again = expired.getByRole('button', { name: 'Sign in again with single sign-on' });
  await again.waitFor();
  await screenshot(page, '46-sso-expired');
  await again.click();
  await page.waitForURL((u) => u.href.startsWith(appUrl) && u.pathname === '/' && !u.search);
  await page.locator('.queue-card').first().waitFor();
  await expired.waitFor({ state: 'detached' });
  const renewed = await page.evaluate(() => JSON.parse(localStorage.getItem('anvil.token')));
  assert.notEqual(renewed, token, 'a new token');
  assert.equal((await api(server, renewed, 'GET', '/v1/me')).body.subject, 'carol');

  // A token of the same provider, signed with the same key, for another audience is refused; the same
  // claims for Anvil's audience are accepted (so the audience is what decides). The ID token (audience:
  // the app's client id) is refused too.
  const now = Math.floor(Date.now() / 1000);
  const base = { ...claimsOf(renewed), iat: now, exp: now + 300 };
  assert.equal((await api(server, idp.sign({ ...base, aud: 'another-api' }), 'GET', '/v1/me')).status, 401);
  assert.equal((await api(server, idp.sign({ ...base, aud: AUDIENCE }), 'GET', '/v1/me')).status, 200);
  const idToken = await page.evaluate(() => JSON.parse(localStorage.getItem('anvil.oidc.logout'))?.id_token);
  assert.equal(claimsOf(idToken).aud, CLIENT_ID);
  assert.equal((await api(server, idToken, 'GET', '/v1/me')).status, 401);

  // Sign out ends the provider's session too (its end-session page), then comes back to the app.
  await page.getByRole('button', { name: 'Sign out' }).click();
  const yes = page.getByRole('button', { name: 'Yes, sign me out' });
  await yes.waitFor();
  await screenshot(page, '47-idp-sign-out');
  await yes.click();
  await page.waitForURL(appUrl + '/');
  await page.getByRole('button', { name: 'Sign in with single sign-on' }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('anvil.token')), null);
  assert.equal(await page.evaluate(() => localStorage.getItem('anvil.oidc.logout')), null);
  await screenshot(page, '48-sso-signed-out');

  // Signing in again now needs the provider's login page: its session is gone.
  await page.getByRole('button', { name: 'Sign in with single sign-on' }).click();
  await page.locator('input[name=login]').waitFor();
  assert.deepEqual(unexpected(), []);
});
