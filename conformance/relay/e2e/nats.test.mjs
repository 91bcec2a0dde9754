// Two example relay nodes joined by a real nats-server (`--nats`,
// docs/SCALING.md): events published on node A reach node B's subscribers
// exactly once, duplicates (from clients, or from a bare NATS client posing
// as a third node) are not delivered twice, forged events from the bus not
// at all, and while NATS is down
// each node keeps serving its own clients, then cross-node delivery resumes.
// Run with `bash run.sh`, which makes sure nats-server is installed.
//
// Everything listens on 127.0.0.1 with ports the OS picks. "Nothing more
// arrives" is proved with a sentinel event published last on each path, as
// in relay.test.mjs: NATS keeps one publisher's messages in order, each
// relay's hub handles its commands in order, so once a node's sentinel has
// arrived, what that node published before it has arrived too.
//
// The one thing retried is readiness: "is B subscribed to NATS yet?" (at
// start, and after NATS restarts) is answered by publishing distinct probe
// events on A until one reaches B, bounded in time; probes have their own
// tag, so they never show in the subscriptions under test.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { generateSecretKey } from 'nostr-tools/pure';

import {
  children, closeRelays, connectTo, record, relayBin, sign as signEvent, startAndWait, stop, withTimeout,
} from './support.mjs';

// async-nats waits at most 4 s between reconnection attempts.
const RECONNECT_TIMEOUT_MS = 30_000;
const NODE_A_QUEUE = 16;
// More than async-nats's 2048-message buffer, node A's queue and the one
// message in flight between them.
const FLOOD = 2048 + NODE_A_QUEUE + 400;
let natsPort;
let nats;
let nodeA;
let nodeB;

async function startNats(port) {
  const { child, value } = await startAndWait(
    'nats-server', ['-a', '127.0.0.1', '-p', String(port)], 'stderr',
    /Listening for client connections on 127\.0\.0\.1:(\d+)/, 'nats-server listens',
  );
  return { child, port: Number(value) };
}

async function startNode(name, extra = []) {
  const { child, value } = await startAndWait(
    relayBin,
    ['--listen', '127.0.0.1:0', '--nats', `nats://127.0.0.1:${natsPort}`, '--node-id', name, ...extra],
    'stdout', /listening on (ws:\/\/\S+)/, `relay node ${name} listens`,
  );
  return { child, url: value };
}

before(async () => {
  nats = await startNats(-1); // -1: nats-server picks a free port
  natsPort = nats.port;
  // A small publish queue, so that the outage test can fill it: async-nats
  // holds 2048 messages while disconnected, then this queue 16 more.
  nodeA = await startNode('node-a', ['--nats-queue', String(NODE_A_QUEUE)]);
  nodeB = await startNode('node-b');
});

after(async () => {
  closeRelays();
  for (const child of children) await stop(child, child === nodeA?.child || child === nodeB?.child ? 'SIGINT' : 'SIGTERM');
});

function connect(node) {
  return connectTo(node.url);
}

/// A kind-1 note tagged `t`: `tag`.
function sign(sk, content, tag) {
  return signEvent(sk, 1, content, [['t', tag]]);
}

/// Publishes distinct probe events on `from` until `probes` (a recording
/// subscription on the other node) has received one: the path A → NATS →
/// B works. Bounded by `ms`.
async function awaitPath(from, probes, sk, what, ms) {
  const deadline = Date.now() + ms;
  for (let i = 0; ; i++) {
    const probe = sign(sk, `probe ${i} ${Date.now()}`, 'probe');
    await withTimeout(from.publish(probe), 'publish a probe');
    try {
      await probes.until((g) => g.ids().includes(probe.id), what, 500);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what}: no probe arrived within ${ms} ms`);
    }
  }
}

test('an event published on node A reaches node B\'s subscribers exactly once, and A\'s once', async () => {
  const [pubA, subA, subB] = [await connect(nodeA), await connect(nodeA), await connect(nodeB)];
  const probesB = record(subB, [{ kinds: [1], '#t': ['probe'] }]);
  const onA = record(subA, [{ kinds: [1], '#t': ['cross'] }]);
  const onB = record(subB, [{ kinds: [1], '#t': ['cross'] }]);
  await withTimeout(Promise.all([probesB.eose, onA.eose, onB.eose]), 'EOSE');
  const sk = generateSecretKey();
  await awaitPath(pubA, probesB, sk, 'node B hears node A through NATS', RECONNECT_TIMEOUT_MS);

  const events = [];
  for (let i = 0; i < 20; i++) events.push(sign(sk, `cross ${i}`, 'cross'));
  for (const e of events) await withTimeout(pubA.publish(e), 'publish on A');
  const sentinel = sign(sk, 'cross sentinel', 'cross');
  await withTimeout(pubA.publish(sentinel), 'publish the sentinel on A');

  await onB.until((g) => g.ids().includes(sentinel.id), 'B gets the sentinel');
  await onA.until((g) => g.ids().includes(sentinel.id), 'A gets the sentinel');
  const want = [...events, sentinel].map((e) => e.id);
  assert.deepEqual(onB.ids(), want, 'node B: every event once, in A\'s order');
  // A's own events come back to A from NATS: they must not be delivered again.
  assert.deepEqual(onA.ids(), want, 'node A: every event once');
  assert.deepEqual([...onA.invalid, ...onB.invalid], []);
});

test('the same event published on both nodes is delivered once on each', async () => {
  const [pubA, pubB, subA, subB] = [await connect(nodeA), await connect(nodeB), await connect(nodeA), await connect(nodeB)];
  const onA = record(subA, [{ kinds: [1], '#t': ['dup'] }]);
  const onB = record(subB, [{ kinds: [1], '#t': ['dup'] }]);
  await withTimeout(Promise.all([onA.eose, onB.eose]), 'EOSE');
  const sk = generateSecretKey();
  const twice = sign(sk, 'published on both nodes', 'dup');
  // Each node's OK comes after its hub has the event queued, so each
  // sentinel below is handled after `twice` on its own node, and reaches
  // the other node after whatever its node published of `twice`.
  await withTimeout(pubA.publish(twice), 'publish on A');
  await withTimeout(pubB.publish(twice), 'publish on B');
  await withTimeout(pubA.publish(twice), 'publish on A again');
  const sentinelA = sign(sk, 'dup sentinel A', 'dup');
  const sentinelB = sign(sk, 'dup sentinel B', 'dup');
  await withTimeout(pubA.publish(sentinelA), 'publish sentinel on A');
  await withTimeout(pubB.publish(sentinelB), 'publish sentinel on B');
  for (const [name, got] of [['A', onA], ['B', onB]]) {
    await got.until((g) => g.ids().includes(sentinelA.id) && g.ids().includes(sentinelB.id), `${name} gets both sentinels`);
    assert.deepEqual(got.ids().filter((id) => id === twice.id), [twice.id], `node ${name}: the event exactly once`);
    assert.equal(got.ids().length, 3, `node ${name}: ${JSON.stringify(got.ids())}`);
  }
});

/// A bare NATS client speaking the text protocol: publishes as a third
/// node would, so a test decides what reaches the bus and in which order.
async function rawNats(nodeId) {
  const socket = net.connect(natsPort, '127.0.0.1');
  let buffered = '';
  const waiters = [];
  socket.on('data', (chunk) => {
    buffered += chunk.toString();
    for (const w of waiters.splice(0)) w();
  });
  await withTimeout(new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); }), 'raw NATS connect');
  socket.write('CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":false}\r\n');
  return {
    publish(payload) {
      const headers = `NATS/1.0\r\nRelay-Node: ${nodeId}\r\n\r\n`;
      const body = Buffer.from(payload);
      const hlen = Buffer.byteLength(headers);
      socket.write(`HPUB nostr.relay.events ${hlen} ${hlen + body.length}\r\n${headers}`);
      socket.write(body);
      socket.write('\r\n');
    },
    /// PING/PONG: the server has processed everything sent before.
    async flush() {
      const before = (buffered.match(/PONG/g) ?? []).length;
      socket.write('PING\r\n');
      await withTimeout((async () => {
        while ((buffered.match(/PONG/g) ?? []).length <= before) {
          if (/-ERR/.test(buffered)) throw new Error(`NATS said: ${buffered}`);
          await new Promise((resolve) => waiters.push(resolve));
        }
      })(), 'raw NATS PONG');
    },
    close: () => socket.destroy(),
  };
}

test('an event from NATS that a node already delivered, or that comes twice, or is forged, is not delivered', async () => {
  const [pubB, subA, subB] = [await connect(nodeB), await connect(nodeA), await connect(nodeB)];
  const onA = record(subA, [{ kinds: [1], '#t': ['bus'] }]);
  const onB = record(subB, [{ kinds: [1], '#t': ['bus'] }]);
  await withTimeout(Promise.all([onA.eose, onB.eose]), 'EOSE');
  const sk = generateSecretKey();
  const x = sign(sk, 'on B, then twice on the bus', 'bus');
  // Node B has x from its own client first (B publishes it to NATS too).
  await withTimeout(pubB.publish(x), 'publish x on B');
  const forged = { ...sign(sk, 'original', 'bus') };
  forged.content = 'forged';
  const sentinel = sign(sk, 'bus sentinel', 'bus');
  const bus = await rawNats('node-c');
  try {
    // Then "node C" sends x twice and a forged event; then the sentinel.
    // One connection: every node receives these in this order.
    bus.publish(JSON.stringify(['EVENT', x]));
    bus.publish(JSON.stringify(['EVENT', x]));
    bus.publish(JSON.stringify(['EVENT', forged]));
    bus.publish(JSON.stringify(['EVENT', sentinel]));
    await bus.flush();
  } finally {
    bus.close();
  }
  await onA.until((g) => g.ids().includes(sentinel.id), 'A gets the sentinel');
  await onB.until((g) => g.ids().includes(sentinel.id), 'B gets the sentinel');
  // B: x from its client only, never again from the bus. A: x once, from
  // B or from node C, whichever came first (B's copy may come after C's).
  assert.deepEqual(onB.ids(), [x.id, sentinel.id], 'node B');
  assert.deepEqual(onA.ids().filter((id) => id === x.id), [x.id], 'node A: x once');
  assert.deepEqual(onA.ids().filter((id) => id !== x.id), [sentinel.id], 'node A: nothing forged');
  assert.deepEqual([...onA.invalid, ...onB.invalid], []);
});

test('with NATS down each node serves its own clients; after NATS restarts cross-node delivery resumes', async () => {
  const [pubA, subA, subB] = [await connect(nodeA), await connect(nodeA), await connect(nodeB)];
  const probesB = record(subB, [{ kinds: [1], '#t': ['probe'] }]);
  const onA = record(subA, [{ kinds: [1], '#t': ['outage'] }]);
  const onB = record(subB, [{ kinds: [1], '#t': ['outage'] }]);
  await withTimeout(Promise.all([probesB.eose, onA.eose, onB.eose]), 'EOSE');
  const sk = generateSecretKey();

  await stop(nats.child);
  const local = sign(sk, 'published while NATS is down', 'outage');
  await withTimeout(pubA.publish(local), 'publish on A while NATS is down');
  // Enough events to fill every buffer on the way to NATS: the rest are
  // dropped and counted, and local delivery must not wait for NATS.
  const flood = [];
  for (let i = 0; i < FLOOD; i++) flood.push(sign(sk, `flood ${i}`, 'flood'));
  await withTimeout(Promise.all(flood.map((e) => pubA.publish(e))), 'publish the flood on A', 60_000);
  const localSentinel = sign(sk, 'local sentinel while NATS is down', 'outage');
  await withTimeout(pubA.publish(localSentinel), 'publish the sentinel on A');
  await onA.until((g) => g.ids().includes(localSentinel.id), 'A delivers locally with NATS down');
  assert.deepEqual(onA.ids(), [local.id, localSentinel.id]);
  // The drops are counted and logged (once a second while they grow).
  const dropLine = /publish queue was full: (\d+) events not published \((\d+) since start\)/;
  const dropped = () => nodeA.child.log.map((l) => l.match(dropLine)).filter(Boolean).map((m) => Number(m[2]));
  await withTimeout((async () => {
    while (dropped().length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
  })(), 'node A logs the events its full NATS queue dropped', 5_000);
  const total = Math.max(...dropped());
  assert.ok(total > 0 && total <= FLOOD + 2, `dropped ${total} of ${FLOOD + 2}`);

  nats = await startNats(natsPort);
  await awaitPath(pubA, probesB, sk, 'node B hears node A again after NATS restarts', RECONNECT_TIMEOUT_MS);
  const after = sign(sk, 'published after NATS came back', 'outage');
  const sentinel = sign(sk, 'sentinel after NATS came back', 'outage');
  await withTimeout(pubA.publish(after), 'publish on A');
  await withTimeout(pubA.publish(sentinel), 'publish the sentinel on A');
  await onB.until((g) => g.ids().includes(sentinel.id), 'B gets the sentinel');
  await onA.until((g) => g.ids().includes(sentinel.id), 'A gets the sentinel');
  // Core NATS is at-most-once: the events A published during the outage
  // may have been buffered and sent on reconnection, or lost; either way
  // never twice, and never before B's subscription existed again.
  const onBIds = onB.ids();
  assert.deepEqual(onBIds.filter((id) => id === after.id || id === sentinel.id), [after.id, sentinel.id]);
  assert.equal(new Set(onBIds).size, onBIds.length, 'node B: no event twice');
  assert.deepEqual(onA.ids(), [local.id, localSentinel.id, after.id, sentinel.id], 'node A: each once');
});
