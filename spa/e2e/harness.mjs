// Test harness: starts the real `anvil serve --demo` on a free loopback port with a fresh data directory,
// reads the tokens it prints, and launches Debian's Chromium through playwright-core.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = path.join(ROOT, 'spa', 'e2e', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `anvil serve --demo`; resolves once it listens, with its URL, the demo tokens and queue id. `env`
 * adds settings (e.g. an OpenID provider); `port` picks the port (else a free one).
 */
export async function startServer({ env: extra = {}, port: wanted } = {}) {
  const bin = path.join(ROOT, 'target', 'debug', 'anvil');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run spa/e2e/run.sh (it builds it)`);
  const spaDir = path.join(ROOT, 'spa', 'dist');
  if (!fs.existsSync(path.join(spaDir, 'index.html'))) throw new Error('spa/dist is missing: run spa/build.sh');
  const port = wanted ?? await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'anvil-e2e-'));
  const env = {
    ...process.env,
    ANVIL_BIND: `127.0.0.1:${port}`,
    ANVIL_DATA_DIR: dataDir,
    ANVIL_SPA_DIR: spaDir,
    ANVIL_LOG_FORMAT: process.env.ANVIL_LOG_FORMAT || 'json',
    RUST_LOG: process.env.RUST_LOG || 'warn',
    ...extra,
  };
  const child = spawn(bin, ['serve', '--demo'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`anvil did not start in 60 s\n${out}\n${err}`)), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (/Anvil is listening on/.test(out) && /\n\s+bob\s+\S+/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`anvil exited with ${code} before it was ready\n${out}\n${err}`));
    });
  });
  await ready;
  const tokens = {};
  for (const m of out.matchAll(/^\s+(admin|auditor|alice|bob)\s+(\S+)\s*$/gm)) tokens[m[1]] = m[2];
  const queue = out.match(/queue "Product reviews" \(([0-9a-f-]{36})\)/);
  if (!queue || Object.keys(tokens).length !== 4) throw new Error(`could not read the demo tokens:\n${out}`);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    tokens,
    queueId: queue[1],
    logs: () => err,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  // playwright gives every launch a fresh temporary --user-data-dir
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** A fresh browser context (its own localStorage) and page, collecting console errors. */
export async function newPage(browser, { width = 1280, height = 800 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  return { context, page, problems };
}

export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Calls the API directly (to check what the browser did). */
export async function api(server, token, method, p, body) {
  const res = await fetch(server.url + p, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Signs in through the UI by pasting a token. */
export async function signIn(page, server, token) {
  await page.goto(server.url + '/');
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}
