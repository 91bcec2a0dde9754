// A broadcast worker killed with `kill -9` under a supervised example relay
// (its default; docs/RELIABILITY.md, "The example relay"): the clients'
// WebSockets stay open, and once the replacement has its state replayed
// every subscription, the NIP-42-authenticated DM one included, gets every
// event published after the recovery exactly once; no subscription ever
// gets an event twice, across the crash either. With `--shards 2` one shard
// is killed and the other shard's clients keep receiving during its outage.
// Each test prints the recovery time it measured (from the kill to the first
// event published after the kill that reaches a client of the killed worker)
// and the relay's restart line (Bcasts possibly lost, what was replayed).
//
// Everything is on 127.0.0.1. The relay numbers WebSocket connections 1, 2,
// 3, ... in the order their handshakes complete, and the clients here
// connect one after the other, so client i is conn i + 1, on shard
// (i + 1) % K; the restart line's replayed-conn count checks that.
//
// Signatures: nostr-tools would verify every delivered event in JavaScript
// (some 2 ms each), which on a small machine would measure the test's own
// CPU rather than the relay's recovery. The clients here accept an event
// only if it is exactly one the test signed (same id, same signature).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';

import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';

import {
  children, closeRelays, connectTo, logMatch, record, relayBin, sign, startAndWait, stop, withTimeout,
} from './support.mjs';

const CLIENTS = 8;
/// The client that authenticates (NIP-42) and subscribes to its DMs: conn
/// 1, on the killed shard with --shards 2.
const AUTH_INDEX = 0;
const STEADY_GAP_MS = 5;
const AFTER_NOTES = 20;
const AFTER_DMS = 4;
const RECOVERY_TIMEOUT_MS = 20_000;
const RESTART_LINE = /^relay: (?:shard (\d+): )?worker restart #(\d+): (.*?); (\d+) Bcast\(s\) possibly lost, (\d+) command\(s\) carried over, replayed (\d+) conn\(s\), (\d+) auth\(s\), (\d+) subscription\(s\); new worker pid (\d+)$/;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

after(async () => {
  closeRelays();
  for (const child of children) await stop(child, 'SIGKILL');
});

/// The worker pids the relay logs at start, by shard.
async function workerPids(relay, shards) {
  const pids = [];
  for (let s = 0; s < shards; s++) {
    const pattern = shards > 1 ? new RegExp(`^relay: shard ${s}: worker pid (\\d+)$`) : /^relay: worker pid (\d+)$/;
    const { match } = await logMatch(relay, pattern, `the relay logs the pid of worker ${s}`);
    pids.push(Number(match[1]));
  }
  return pids;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/// Runs the scenario with `shards` workers and returns what it measured.
async function crashAndRecover(t, shards) {
  const args = ['--listen', '127.0.0.1:0', ...(shards > 1 ? ['--shards', String(shards)] : [])];
  const { child: relay, value: url } = await startAndWait(
    relayBin, args, 'stdout', /listening on (ws:\/\/\S+)/, 'the relay listens',
  );
  const pids = await workerPids(relay, shards);

  // Every event the test signs; a client accepts only these, unchanged.
  const signed = new Map();
  const make = (sk, kind, content, tags) => {
    const e = sign(sk, kind, content, tags);
    signed.set(e.id, e.sig);
    return e;
  };
  const options = { verifyEvent: (e) => signed.get(e.id) === e.sig };

  const closed = [];
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const r = await connectTo(url, options);
    r.onclose = () => closed.push(i);
    const notes = record(r, [{ kinds: [1], '#t': ['crash'] }]);
    clients.push({ index: i, relay: r, shard: (i + 1) % shards, subs: [notes], notes });
  }
  const publisher = await connectTo(url, options);
  publisher.onclose = () => closed.push('publisher');
  const publisherShard = (CLIENTS + 1) % shards;
  await withTimeout(Promise.all(clients.map((c) => c.notes.eose)), 'EOSE of every subscription');

  // NIP-42: one client proves its key, then subscribes to its DMs.
  const rSk = generateSecretKey();
  const rPk = getPublicKey(rSk);
  const authed = clients[AUTH_INDEX];
  await withTimeout(authed.relay.auth(async (tmpl) => finalizeEvent(tmpl, rSk)), 'NIP-42 AUTH');
  const dms = record(authed.relay, [{ kinds: [4], '#p': [rPk] }]);
  authed.subs.push(dms);
  await withTimeout(dms.eose, 'EOSE of the DM subscription');

  const killedShard = authed.shard;
  const pid = pids[killedShard];
  const onKilled = clients.filter((c) => c.shard === killedShard);
  const onOthers = clients.filter((c) => c.shard !== killedShard);
  const sSk = generateSecretKey();

  // The steady fan-out: a note every few ms, every fifth a DM to the
  // authenticated client. `startedAt` says when each was handed over.
  const startedAt = new Map();
  const steadyNotes = [];
  let stopSteady = false;
  let steadyCount = 0;
  const steady = (async () => {
    for (let i = 0; !stopSteady; i++) {
      const e = i % 5 === 4
        ? make(sSk, 4, `steady dm ${i}`, [['p', rPk]])
        : make(sSk, 1, `steady ${i}`, [['t', 'crash']]);
      startedAt.set(e.id, performance.now());
      if (e.kind === 1) steadyNotes.push(e.id);
      await withTimeout(publisher.publish(e), `publish steady event ${i}`);
      steadyCount++;
      await sleep(STEADY_GAP_MS);
    }
  })();
  const steadyFailed = steady.catch((e) => e);

  // Every subscription receives before the crash.
  await withTimeout(Promise.all(clients.map((c) => c.notes.until((g) => g.events.length >= 20, 'steady events before the kill'))), 'steady events before the kill');
  await dms.until((g) => g.events.length >= 4, 'DMs before the kill');

  const logFrom = relay.log.length;
  const killedAt = performance.now();
  process.kill(pid, 'SIGKILL');

  // Recovery: each subscription of the killed worker gets an event that was
  // published after the kill.
  const firstAfterKill = (got) => {
    for (const [i, e] of got.events.entries()) {
      if ((startedAt.get(e.id) ?? -Infinity) > killedAt) return got.times[i];
    }
    return null;
  };
  const killedSubs = onKilled.flatMap((c) => c.subs);
  await withTimeout(
    Promise.all(killedSubs.map((g) => g.until((s) => firstAfterKill(s) !== null, 'an event published after the kill', RECOVERY_TIMEOUT_MS))),
    'every subscription of the killed worker recovers',
    RECOVERY_TIMEOUT_MS,
  );
  const recovered = killedSubs.map(firstAfterKill);
  const recoveryMs = Math.min(...recovered) - killedAt;
  const allRecoveredMs = Math.max(...recovered) - killedAt;

  const { match: restart } = await logMatch(relay, RESTART_LINE, 'the relay logs the restart', logFrom);
  const [, shardField, number, cause, lost, carried, conns, auths, subs, newPid] = restart;
  stopSteady = true;
  const steadyError = await steadyFailed;
  assert.ok(!(steadyError instanceof Error), `the steady publisher failed: ${steadyError}`);

  // The other shard's clients kept receiving during the outage: each got an
  // event published after the kill before any client of the killed shard did.
  const othersFirst = onOthers.map((c) => firstAfterKill(c.notes));
  for (const [i, at] of othersFirst.entries()) {
    assert.ok(at !== null && at < Math.min(...recovered), `client ${onOthers[i].index} (the live shard) waited for the killed one`);
  }

  // After the recovery: every subscription gets each new event exactly once.
  const afterNotes = [];
  const afterDms = [];
  for (let i = 0; i < AFTER_NOTES; i++) afterNotes.push(make(sSk, 1, `after ${i}`, [['t', 'crash']]));
  for (let i = 0; i < AFTER_DMS; i++) afterDms.push(make(sSk, 4, `after dm ${i}`, [['p', rPk]]));
  const noteSentinel = make(sSk, 1, 'note sentinel', [['t', 'crash']]);
  const dmSentinel = make(sSk, 4, 'dm sentinel', [['p', rPk]]);
  for (const e of [...afterNotes, ...afterDms, noteSentinel, dmSentinel]) {
    await withTimeout(publisher.publish(e), 'publish after the recovery');
  }
  for (const c of clients) {
    await c.notes.until((g) => g.ids().includes(noteSentinel.id), `client ${c.index}: the note sentinel`);
  }
  await dms.until((g) => g.ids().includes(dmSentinel.id), 'the DM sentinel');

  const count = (got, id) => got.ids().filter((x) => x === id).length;
  for (const c of clients) {
    for (const e of [...afterNotes, noteSentinel]) {
      assert.equal(count(c.notes, e.id), 1, `client ${c.index}: note ${e.content} not exactly once`);
    }
  }
  for (const e of [...afterDms, dmSentinel]) {
    assert.equal(count(dms, e.id), 1, `the authenticated DM subscription: ${e.content} not exactly once`);
  }
  for (const c of clients) {
    for (const got of c.subs) {
      const ids = got.ids();
      assert.equal(new Set(ids).size, ids.length, `client ${c.index}: an event delivered twice`);
      assert.deepEqual(got.invalid, [], `client ${c.index}: events that do not match`);
      assert.equal(got.closed, null, `client ${c.index}: a subscription was closed`);
    }
  }
  assert.deepEqual(closed, [], 'a WebSocket closed');
  assert.ok([...clients.map((c) => c.relay), publisher].every((r) => r.connected), 'a WebSocket is no longer connected');

  // The restart line: the killed worker's shard, its state replayed.
  if (shards > 1) assert.equal(Number(shardField), killedShard);
  assert.equal(Number(number), 1);
  assert.match(cause, /signal 9|SIGKILL|exited|output ended|closed its input/);
  const ownConns = onKilled.length + (publisherShard === killedShard ? 1 : 0);
  assert.equal(Number(conns), ownConns, 'replayed conns: the clients of the killed worker');
  assert.equal(Number(auths), 1, 'replayed auths: the authenticated client');
  assert.equal(Number(subs), onKilled.length + 1, 'replayed subscriptions: one per client, and the DM one');
  assert.ok(alive(Number(newPid)), 'the new worker runs');
  assert.ok(!pids.includes(Number(newPid)));
  for (const [s, p] of pids.entries()) {
    if (s !== killedShard) assert.ok(alive(p), `shard ${s}'s worker was touched`);
  }

  // What a client of the killed worker missed: events published up to the
  // crash that it never got (their Bcasts were lost with the worker).
  const missed = Math.max(...onKilled.map((c) => steadyNotes.filter((id) => count(c.notes, id) === 0).length));
  const summary = `${shards === 1 ? 'one worker' : `--shards ${shards} (shard ${killedShard} killed)`}: `
    + `recovery ${recoveryMs.toFixed(1)} ms (every subscription of the killed worker: ${allRecoveredMs.toFixed(1)} ms); `
    + `${lost} Bcast(s) possibly lost, ${carried} command(s) carried over, replayed ${conns} conn(s), ${auths} auth(s), ${subs} subscription(s); `
    + `${steadyCount} steady events published, at most ${missed} steady note(s) not delivered to a client of the killed worker`;
  t.diagnostic(summary);
  process.stderr.write(`crash.test: ${summary}\n`);

  // A supervised relay still stops cleanly.
  closeRelays();
  await stop(relay, 'SIGINT');
  assert.equal(relay.exitCode, 0, 'the relay did not exit cleanly on SIGINT');
}

test('kill -9 of the worker: clients keep their connections, subscriptions and auth, and get every later event once', { timeout: 120_000 }, async (t) => {
  await crashAndRecover(t, 1);
});

test('--shards 2, kill -9 of one shard: the other keeps delivering, the killed one recovers its clients', { timeout: 120_000 }, async (t) => {
  await crashAndRecover(t, 2);
});
