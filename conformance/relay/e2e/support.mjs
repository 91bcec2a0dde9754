// Helpers shared by the e2e test files (relay.test.mjs, nats.test.mjs,
// crash.test.mjs): bounded waits, starting and stopping child processes,
// nostr-tools connections, recording subscriptions and signing events.
// `node --test` runs each file in its own process, so the lists of
// children and open connections below are per file.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import WebSocket from 'ws';
import { finalizeEvent } from 'nostr-tools/pure';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';

useWebSocketImplementation(WebSocket);

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
// Built by run.sh (`cargo build --release --example relay`); run directly,
// since two `cargo run`s at once would wait for each other's build lock.
export const relayBin = path.join(process.env.CARGO_TARGET_DIR ?? path.join(repoRoot, 'target'), 'release', 'examples', 'relay');
export const STEP_TIMEOUT_MS = 20_000;

/// Every child started with startAndWait, and every nostr-tools connection
/// made with connectTo, in this file.
export const children = [];
export const openRelays = [];

export function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/// Spawns `cmd` and resolves with the first capture of `pattern` in a line
/// of `stream` (its stdout or stderr).
export async function startAndWait(cmd, args, stream, pattern, what) {
  const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  // Every stderr line is kept (a test reads the relay's log) and shown.
  child.log = [];
  child.logWaiters = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    child.log.push(line);
    for (const w of child.logWaiters.splice(0)) w();
    if (stream !== 'stderr') process.stderr.write(`${line}\n`);
  });
  if (stream !== 'stdout') child.stdout.resume();
  const lines = createInterface({ input: child[stream] });
  const value = await withTimeout(
    new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`${what}: exited early (${code})`)));
      lines.on('line', (line) => {
        const m = line.match(pattern);
        if (m) resolve(m[1]);
      });
    }),
    what,
  );
  // Keep draining so a chatty child never blocks on a full pipe.
  lines.on('line', () => {});
  return { child, value };
}

/// Resolves with the first match of `pattern` in a stderr line of `child`
/// (started with startAndWait) from line `from` on, waiting up to `ms`.
export async function logMatch(child, pattern, what, from = 0, ms = STEP_TIMEOUT_MS) {
  return withTimeout((async () => {
    for (;;) {
      for (let i = from; i < child.log.length; i++) {
        const m = child.log[i].match(pattern);
        if (m) return { match: m, line: i };
      }
      await new Promise((resolve) => child.logWaiters.push(resolve));
    }
  })(), what, ms);
}

export async function stop(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await withTimeout(exited, `pid ${child.pid} exits on ${signal}`, 10_000).catch(() => child.kill('SIGKILL'));
}

/// Closes every connection made with connectTo.
export function closeRelays() {
  for (const r of openRelays.splice(0)) {
    try { r.close(); } catch { /* already closed */ }
  }
}

/// A nostr-tools connection to `url` (`options` as nostr-tools'
/// `Relay.connect` takes them), closed by closeRelays.
export async function connectTo(url, options) {
  const relay = await withTimeout(Relay.connect(url, options), `connect to ${url}`);
  relay.onnotice = () => {};
  openRelays.push(relay);
  return relay;
}

/// A subscription that records every event it is sent, including those
/// nostr-tools finds not matching its filters (`oninvalidevent`): those are
/// relay bugs, and a test must see them. `times[i]` is when `events[i]`
/// arrived (performance.now()).
export function record(relay, filters) {
  const got = { events: [], times: [], invalid: [], closed: null, eose: null, waiters: [] };
  const notify = () => {
    for (const w of got.waiters.splice(0)) w();
  };
  got.eose = new Promise((resolve) => {
    got.sub = relay.subscribe(filters, {
      onevent: (e) => { got.events.push(e); got.times.push(performance.now()); notify(); },
      oninvalidevent: (e) => { got.invalid.push(e); notify(); },
      oneose: resolve,
      onclose: (reason) => { got.closed = reason; notify(); },
    });
  });
  got.until = async (pred, what, ms) => {
    await withTimeout(
      (async () => {
        while (!pred(got)) await new Promise((resolve) => got.waiters.push(resolve));
      })(),
      what,
      ms,
    );
  };
  got.ids = () => got.events.map((e) => e.id);
  return got;
}

export function sign(sk, kind, content, tags = []) {
  return finalizeEvent({ kind, content, tags, created_at: Math.floor(Date.now() / 1000) }, sk);
}
