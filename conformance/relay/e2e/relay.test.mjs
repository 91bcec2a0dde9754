// End-to-end tests of the example relay (conformance/relay) with nostr-tools,
// the JavaScript client library most Nostr web clients use. The relay is
// started as README.md says, `cargo run --release --example relay -- --listen
// 127.0.0.1:0` (port 0: the OS picks a free loopback port, which the relay
// prints), and killed when the tests end. Run with `bash run.sh`.
//
// "Nothing more arrives" is never checked by waiting: after the events under
// test, a sentinel event that the observing subscription matches is
// published. The worker handles commands in order and each connection's
// frames are written in order, so once the sentinel has arrived, anything
// published before it that was going to arrive has arrived.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

import WebSocket from 'ws';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { fetchRelayInformation } from 'nostr-tools/nip11';

import { closeRelays, connectTo, record, repoRoot, sign, withTimeout } from './support.mjs';

let relayProcess;
let url;

before(async () => {
  relayProcess = spawn(
    'cargo',
    ['run', '--release', '--quiet', '--example', 'relay', '--', '--listen', '127.0.0.1:0'],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: relayProcess.stdout });
  url = await withTimeout(
    new Promise((resolve, reject) => {
      relayProcess.once('exit', (code) => reject(new Error(`the relay exited early (${code})`)));
      lines.on('line', (line) => {
        const m = line.match(/ws:\/\/\S+/);
        if (m) resolve(m[0]);
      });
    }),
    'the relay prints its ws:// URL',
    300_000, // a cold `cargo run` may still have to build
  );
});

after(async () => {
  closeRelays();
  if (relayProcess && relayProcess.exitCode === null) {
    const exited = new Promise((resolve) => relayProcess.once('exit', resolve));
    relayProcess.kill('SIGINT');
    await withTimeout(exited, 'the relay exits on SIGINT', 10_000).catch(() => relayProcess.kill('SIGKILL'));
  }
});

function connect() {
  return connectTo(url);
}

/// A raw WebSocket client, for what nostr-tools hides (it ignores events
/// for subscriptions it closed, and answers notices itself).
async function rawClient() {
  const ws = new WebSocket(url);
  const messages = [];
  const waiters = [];
  ws.on('message', (data) => {
    messages.push(JSON.parse(data.toString()));
    for (const w of waiters.splice(0)) w();
  });
  await withTimeout(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), 'raw open');
  return {
    ws,
    messages,
    send: (msg) => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)),
    async until(pred, what) {
      await withTimeout(
        (async () => {
          while (!messages.some(pred)) await new Promise((resolve) => waiters.push(resolve));
        })(),
        what,
      );
      return messages.find(pred);
    },
    close: () => ws.close(),
  };
}

test('two subscribers with different filters get exactly the events that match, unchanged, after EOSE', async () => {
  const [a, b, publisher] = [await connect(), await connect(), await connect()];
  const notes = record(a, [{ kinds: [1] }]);
  const tagged = record(b, [{ '#t': ['rust'] }]);
  await withTimeout(Promise.all([notes.eose, tagged.eose]), 'EOSE for both');

  const sk = generateSecretKey();
  const plain = sign(sk, 1, 'plain note');
  const both = sign(sk, 1, 'rust note with "quotes", \\ and \n newline, é', [['t', 'rust']]);
  const reaction = sign(sk, 7, '+', [['t', 'rust']]);
  const other = sign(sk, 30023, 'long form', [['d', 'x'], ['t', 'go']]);
  for (const e of [plain, both, reaction, other]) await withTimeout(publisher.publish(e), 'publish');
  const sentinel = sign(sk, 1, 'sentinel', [['t', 'rust']]);
  await withTimeout(publisher.publish(sentinel), 'publish sentinel');

  await notes.until((g) => g.ids().includes(sentinel.id), 'A gets the sentinel');
  await tagged.until((g) => g.ids().includes(sentinel.id), 'B gets the sentinel');
  assert.deepEqual(notes.ids(), [plain.id, both.id, sentinel.id]);
  assert.deepEqual(tagged.ids(), [both.id, reaction.id, sentinel.id]);
  assert.deepEqual(notes.invalid, [], 'events that do not match A');
  assert.deepEqual(tagged.invalid, [], 'events that do not match B');
  // Unchanged: every field as signed (the relay never re-serialises).
  const strip = (e) => ({ id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig });
  assert.deepEqual(notes.events.map(strip), [plain, both, sentinel].map(strip));
  assert.deepEqual(tagged.events.map(strip), [both, reaction, sentinel].map(strip));
});

test('an invalid filter gets CLOSED with an invalid: reason', async () => {
  const r = await connect();
  const bad = record(r, [{ ids: ['not-hex'] }]);
  await bad.until((g) => g.closed !== null, 'CLOSED');
  assert.match(bad.closed, /^invalid:/);
  const kinds = record(r, [{ kinds: [70000] }]);
  await kinds.until((g) => g.closed !== null, 'CLOSED');
  assert.match(kinds.closed, /^invalid:/);
});

test('a refused REQ gets CLOSED and never EOSE; a valid one gets EOSE', async () => {
  // nostr-tools ends a query at EOSE: a refused REQ must end it with onclose.
  const r = await connect();
  let badEosed = false;
  const bad = record(r, [{ ids: ['not-hex'] }]);
  bad.eose.then(() => { badEosed = true; });
  await bad.until((g) => g.closed !== null, 'CLOSED');
  assert.match(bad.closed, /^invalid:/);
  const good = record(r, [{ kinds: [1] }]);
  await withTimeout(good.eose, 'EOSE of a valid REQ after the refused one');
  assert.equal(badEosed, false, 'the refused REQ got EOSE');
  assert.equal(good.closed, null);

  // On the wire: one answer per REQ, in order, and the worker never sees
  // the refused ones (it would answer each with a CLOSED of its own).
  const raw = await rawClient();
  const publisher = await connect();
  const refused = [
    ['kinds', ['REQ', 'kinds', { kinds: [70000] }], /^invalid: /],
    ['no filter', ['REQ', 'no filter'], /^invalid: /],
    ['letter', ['REQ', 'letter', { '#foo': ['x'] }], /^unsupported: /],
    ['q"u\\o\te', ['REQ', 'q"u\\o\te', { authors: ['A'.repeat(64)] }], /^invalid: /],
  ];
  for (const [, req] of refused) raw.send(req);
  raw.send(['REQ', 'ok', { kinds: [1], '#t': ['refused-req'] }]);
  await raw.until((m) => m[0] === 'EOSE' && m[1] === 'ok', 'EOSE of the valid REQ');
  // Anything the worker sent for these REQs it sent before this event.
  const sentinel = sign(generateSecretKey(), 1, 'sentinel', [['t', 'refused-req']]);
  await withTimeout(publisher.publish(sentinel), 'publish sentinel');
  await raw.until((m) => m[0] === 'EVENT' && m[1] === 'ok', 'the sentinel');
  const answers = raw.messages.filter((m) => m[0] === 'EOSE' || m[0] === 'CLOSED');
  assert.deepEqual(answers.map((m) => [m[0], m[1]]), [...refused.map(([id]) => ['CLOSED', id]), ['EOSE', 'ok']]);
  for (const [i, [, , reason]] of refused.entries()) assert.match(answers[i][2], reason);
  raw.close();
});

test('a refused REQ ends the live subscription of the same id', async () => {
  const raw = await rawClient();
  const publisher = await connect();
  const sk = generateSecretKey();
  raw.send(['REQ', 'feed', { kinds: [1] }]);
  raw.send(['REQ', 'watch', { kinds: [1] }]);
  await raw.until((m) => m[0] === 'EOSE' && m[1] === 'watch', 'EOSE');
  const first = sign(sk, 1, 'before the refused REQ');
  await withTimeout(publisher.publish(first), 'publish');
  await raw.until((m) => m[0] === 'EVENT' && m[1] === 'feed' && m[2].id === first.id, 'delivered to feed');

  raw.send(['REQ', 'feed', { kinds: ['one'] }]);
  await raw.until((m) => m[0] === 'CLOSED' && m[1] === 'feed', 'CLOSED for the replacing REQ');
  const second = sign(sk, 1, 'after the refused REQ');
  await withTimeout(publisher.publish(second), 'publish');
  await raw.until((m) => m[0] === 'EVENT' && m[1] === 'watch' && m[2].id === second.id, 'the other subscription gets it');
  const toFeed = raw.messages.filter((m) => m[0] === 'EVENT' && m[1] === 'feed').map((m) => m[2].id);
  assert.deepEqual(toFeed, [first.id]);
  raw.close();
});

test('an EVENT over the size limit gets OK false naming its id, or a NOTICE when it has none', async () => {
  const limit = 512 * 1024; // the relay's default --max-message-bytes
  const sk = generateSecretKey();
  // nostr-tools writes the id after content and tags.
  const r = await connect();
  const big = sign(sk, 1, 'x'.repeat(limit + 1));
  await assert.rejects(withTimeout(r.publish(big), 'OK for the oversized event'), /^Error: invalid: message too large/);

  // rust-nostr and go-nostr write it first.
  const raw = await rawClient();
  const other = sign(sk, 1, 'y'.repeat(limit + 1), [['t', 'big']]);
  const { id, pubkey, created_at, kind, tags, content, sig } = other;
  raw.send(['EVENT', { id, pubkey, created_at, kind, tags, content, sig }]);
  const ok = await raw.until((m) => m[0] === 'OK' && m[1] === other.id, 'OK for the id-first event');
  assert.equal(ok[2], false);
  assert.match(ok[3], /^invalid: message too large/);

  raw.send(['EVENT', { kind: 1, content: 'z'.repeat(limit + 1) }]);
  const notice = await raw.until((m) => m[0] === 'NOTICE', 'NOTICE for an oversized event without an id');
  assert.match(notice[1], /^invalid: message too large/);
  assert.equal(raw.messages.filter((m) => m[0] === 'OK').length, 1);
  raw.close();
});

test('NIP-11: the relay information document, its CORS preflight, and plain HTTP answered', async () => {
  const info = await withTimeout(fetchRelayInformation(url), 'NIP-11 document (nostr-tools)');
  for (const key of ['name', 'description', 'software', 'version']) {
    assert.equal(typeof info[key], 'string', key);
  }
  assert.deepEqual(info.supported_nips, [1, 11, 42, 70]);
  assert.deepEqual(info.limitation, {
    max_message_length: 512 * 1024,
    max_subid_length: 64,
    auth_required: false,
    payment_required: false,
    restricted_writes: false,
  });

  const httpUrl = url.replace(/^ws:/, 'http:');
  const doc = await withTimeout(fetch(httpUrl, { headers: { Accept: 'application/nostr+json' } }), 'GET NIP-11');
  assert.equal(doc.status, 200);
  assert.equal(doc.headers.get('content-type'), 'application/nostr+json');
  assert.equal(doc.headers.get('access-control-allow-origin'), '*');
  assert.deepEqual(await doc.json(), info);

  const preflight = await withTimeout(fetch(httpUrl, {
    method: 'OPTIONS',
    headers: { Origin: 'https://client.example', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'accept' },
  }), 'CORS preflight');
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get('access-control-allow-origin'), '*');
  assert.match(preflight.headers.get('access-control-allow-methods'), /\bGET\b/);
  assert.match(preflight.headers.get('access-control-allow-headers'), /accept/i);

  const plain = await withTimeout(fetch(httpUrl), 'plain GET');
  assert.equal(plain.status, 200);
  assert.match(plain.headers.get('content-type'), /^text\/plain/);
  assert.match(await plain.text(), /Nostr relay/);

  const post = await withTimeout(fetch(httpUrl, { method: 'POST', body: 'hello' }), 'POST');
  assert.equal(post.status, 405);
  assert.match(post.headers.get('allow'), /\bGET\b/);
  await post.text();

  // And WebSockets on the same port as before.
  const r = await connect();
  const sub = record(r, [{ kinds: [1] }]);
  await withTimeout(sub.eose, 'EOSE after the HTTP requests');
});

test('a tampered event gets OK false and is not delivered', async () => {
  const [watcher, publisher] = [await connect(), await connect()];
  const all = record(watcher, [{ kinds: [1] }]);
  await withTimeout(all.eose, 'EOSE');
  const sk = generateSecretKey();

  const badContent = { ...sign(sk, 1, 'original') };
  badContent.content = 'tampered';
  await assert.rejects(publisher.publish(badContent), /^Error: invalid: bad event id/);

  const other = sign(generateSecretKey(), 1, 'someone else');
  const badSig = { ...sign(sk, 1, 'signed by sk') };
  badSig.sig = other.sig;
  await assert.rejects(publisher.publish(badSig), /^Error: invalid: bad signature/);

  const sentinel = sign(sk, 1, 'sentinel');
  await withTimeout(publisher.publish(sentinel), 'publish sentinel');
  await all.until((g) => g.ids().includes(sentinel.id), 'the sentinel');
  assert.deepEqual(all.ids(), [sentinel.id]);
});

test('a kind-4 DM reaches its p-tagged recipient only after NIP-42 AUTH, and never a third party', async () => {
  const [recipient, third, sender] = [await connect(), await connect(), await connect()];
  const [rSk, tSk, sSk] = [generateSecretKey(), generateSecretKey(), generateSecretKey()];
  const rPk = getPublicKey(rSk);
  const rDms = record(recipient, [{ kinds: [4] }]);
  const rNotes = record(recipient, [{ kinds: [1] }]);
  const tDms = record(third, [{ kinds: [4] }]);
  const tNotes = record(third, [{ kinds: [1] }]);
  await withTimeout(Promise.all([rDms.eose, rNotes.eose, tDms.eose, tNotes.eose]), 'EOSE');

  // Before AUTH: not delivered to the recipient.
  const early = sign(sSk, 4, 'ciphertext-1?iv=x', [['p', rPk]]);
  await withTimeout(sender.publish(early), 'publish DM 1');
  const sentinel1 = sign(sSk, 1, 'sentinel 1');
  await withTimeout(sender.publish(sentinel1), 'publish sentinel 1');
  await rNotes.until((g) => g.ids().includes(sentinel1.id), 'recipient sentinel 1');
  assert.deepEqual(rDms.ids(), [], 'a DM reached an unauthenticated recipient');

  // Third party authenticates as itself; the recipient as the p-tagged key.
  await withTimeout(third.auth(async (t) => finalizeEvent(t, tSk)), 'third party AUTH');
  await withTimeout(recipient.auth(async (t) => finalizeEvent(t, rSk)), 'recipient AUTH');

  const late = sign(sSk, 4, 'ciphertext-2?iv=y', [['p', rPk]]);
  await withTimeout(sender.publish(late), 'publish DM 2');
  const sentinel2 = sign(sSk, 1, 'sentinel 2');
  await withTimeout(sender.publish(sentinel2), 'publish sentinel 2');
  await rNotes.until((g) => g.ids().includes(sentinel2.id), 'recipient sentinel 2');
  await tNotes.until((g) => g.ids().includes(sentinel2.id), 'third party sentinel 2');
  assert.deepEqual(rDms.ids(), [late.id]);
  assert.deepEqual(tDms.ids(), [], 'a DM reached a third party');
  assert.deepEqual([...rDms.invalid, ...tDms.invalid], []);
});

test('an AUTH answer for another challenge or another relay is refused', async () => {
  const raw = await rawClient();
  const [, challenge] = await raw.until((m) => m[0] === 'AUTH', 'AUTH challenge');
  assert.equal(typeof challenge, 'string');
  const sk = generateSecretKey();
  const answer = (relayTag, challengeTag) => finalizeEvent({
    kind: 22242, content: '', created_at: Math.floor(Date.now() / 1000),
    tags: [['relay', relayTag], ['challenge', challengeTag]],
  }, sk);
  for (const [event, says] of [
    [answer('ws://elsewhere.example', challenge), /relay tag/],
    [answer(url, challenge + '0'), /challenge/],
  ]) {
    raw.send(['AUTH', event]);
    const ok = await raw.until((m) => m[0] === 'OK' && m[1] === event.id, 'OK for the AUTH');
    assert.equal(ok[2], false);
    assert.match(ok[3], /^invalid:/);
    assert.match(ok[3], says);
  }
  const good = answer(url, challenge);
  raw.send(['AUTH', good]);
  const ok = await raw.until((m) => m[0] === 'OK' && m[1] === good.id, 'OK for the good AUTH');
  assert.equal(ok[2], true);
  raw.close();
});

test('after CLOSE nothing more is delivered to that subscription', async () => {
  const raw = await rawClient();
  const publisher = await connect();
  const sk = generateSecretKey();
  raw.send(['REQ', 'closing', { kinds: [1] }]);
  raw.send(['REQ', 'staying', { kinds: [1] }]);
  await raw.until((m) => m[0] === 'EOSE' && m[1] === 'staying', 'EOSE');
  const first = sign(sk, 1, 'before CLOSE');
  await withTimeout(publisher.publish(first), 'publish');
  await raw.until((m) => m[0] === 'EVENT' && m[1] === 'closing' && m[2].id === first.id, 'delivered before CLOSE');

  raw.send(['CLOSE', 'closing']);
  // The CLOSE reaches the relay before this REQ: its EOSE means the CLOSE was handled.
  raw.send(['REQ', 'marker', { ids: ['0'.repeat(64)] }]);
  await raw.until((m) => m[0] === 'EOSE' && m[1] === 'marker', 'EOSE of the marker');
  const second = sign(sk, 1, 'after CLOSE');
  await withTimeout(publisher.publish(second), 'publish');
  await raw.until((m) => m[0] === 'EVENT' && m[1] === 'staying' && m[2].id === second.id, 'the other subscription still gets it');
  const toClosed = raw.messages.filter((m) => m[0] === 'EVENT' && m[1] === 'closing').map((m) => m[2].id);
  assert.deepEqual(toClosed, [first.id]);
  raw.close();
});

test('bad input gets a NOTICE or CLOSED and the relay keeps serving', async () => {
  const raw = await rawClient();
  const notices = () => raw.messages.filter((m) => m[0] === 'NOTICE').map((m) => m[1]);
  raw.send('this is not json');
  raw.send(['HELLO', 1]);
  raw.send('x'.repeat(600 * 1024)); // over the relay's 512 KiB message limit
  raw.send(['REQ', 'y'.repeat(65), {}]);
  raw.send(['EVENT', { id: 'abc' }]);
  await raw.until((m) => m[0] === 'CLOSED', 'CLOSED for the long sub id');
  await withTimeout((async () => { while (notices().length < 3) await new Promise((res) => setTimeout(res, 10)); })(), 'three NOTICEs');
  assert.match(notices()[0], /^invalid: .*not JSON/);
  assert.match(notices()[1], /^invalid: unknown message type/);
  assert.match(notices()[2], /^invalid: message too large/);
  const closed = raw.messages.find((m) => m[0] === 'CLOSED');
  assert.match(closed[2], /^invalid:/);
  const ok = await raw.until((m) => m[0] === 'OK' && m[1] === 'abc', 'OK false for a malformed event');
  assert.equal(ok[2], false);
  assert.match(ok[3], /^invalid:/);
  // Still serving, on this connection and others.
  raw.send(['REQ', 'still', { kinds: [1] }]);
  await raw.until((m) => m[0] === 'EOSE' && m[1] === 'still', 'EOSE after bad input');
  raw.close();
});

test('fan-out: every client gets every event exactly once', async () => {
  // Raw WebSocket subscribers: nostr-tools would verify 9,000 signatures in
  // JavaScript on this one thread, which measures the test, not the relay.
  const CLIENTS = 30;
  const EVENTS = 300;
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) clients.push(await rawClient());
  for (const c of clients) c.send(['REQ', 'fan', { kinds: [1], '#t': ['fanout'] }]);
  for (const c of clients) await c.until((m) => m[0] === 'EOSE' && m[1] === 'fan', 'EOSE');

  const publisher = await connect();
  // 300 publishes in flight while this one thread also parses the 9,000
  // frames of the raw clients: nostr-tools's own 4.4 s per publish ran out
  // once on a loaded CI machine. The withTimeout below bounds the whole.
  publisher.publishTimeout = 60_000;
  const sk = generateSecretKey();
  const events = [];
  for (let i = 0; i < EVENTS; i++) events.push(sign(sk, 1, `fan-out ${i}`, [['t', 'fanout']]));
  await withTimeout(Promise.all(events.map((e) => publisher.publish(e))), 'publish all', 60_000);
  const sentinel = sign(sk, 1, 'fan-out sentinel', [['t', 'fanout']]);
  await withTimeout(publisher.publish(sentinel), 'publish sentinel');

  const want = [...events, sentinel].map((e) => e.id).sort();
  for (const [i, c] of clients.entries()) {
    await c.until((m) => m[0] === 'EVENT' && m[2].id === sentinel.id, `client ${i}: the sentinel`);
    const got = c.messages.filter((m) => m[0] === 'EVENT').map((m) => m[2].id).sort();
    assert.deepEqual(got, want, `client ${i}: not every event exactly once`);
    c.close();
  }
});
