#!/usr/bin/env python3
"""Build the parent vectors of broadcast-wire protocol v1.

Regenerate (from anywhere; Python 3, standard library only):

    python3 vectors/tools/build_parent.py

This rewrites, deterministically (stable order, 2-space indent, UTF-8,
trailing newline), one file per section:

    vectors/parent/<section>.json

The format is the parent schema of docs/VECTORS.md ("Parent vectors",
schema string "broadcast-wire/parent/v1"). The cases check what a parent
does (PROTOCOL.md#parent-semantics): `broadcast-conformance parent` plays
the worker for a parent wrapped in an adapter (docs/CONFORMANCE.md,
"Testing a parent"). Never edit the JSON by hand: edit the case table below
and regenerate.

Design rules (as for build_scenarios.py):

- This script only *builds inputs* and packs bytes: event texts from fields
  (fake 64-hex ids and pubkeys and 128-hex sigs derived from labels), and
  the command frames a parent must write, packed field by field from
  PROTOCOL.md#subcommand-layout with struct.pack ('<' little-endian). The
  conn a parent gives a client is its own choice, so a command's conn is the
  placeholder `${client}`; the data of a subscribe or a fanout is `{data}`,
  the action's own bytes.
- Every expected outcome is written by hand in the case table, from
  docs/PROTOCOL.md: which actions are accepted or refused, which frames
  each client receives and in which order, which worker_gone, nothing else.
  The EVENT frames a subscriber receives are typed here as
  `["EVENT",<sub_id>,<event>]` (PROTOCOL.md#output-frame) with plain ASCII
  sub_ids.
- The injected framing streams are the golden streams of
  vectors/framing/streams.json. How each one ends *for a parent* (whose
  maximum payload is the default 16 MiB, not the vector's own maximum) and
  which of its channel-2 frames is a BroadcastFrame that decodes are
  decided by hand in FRAMING below, vector by vector; the script only
  copies the bytes and puts the conn of client `a` into those frames.
"""

import hashlib
import json
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "vectors", "parent")
FRAMING = os.path.join(ROOT, "vectors", "framing", "streams.json")
PROTOCOL_MD = os.path.join(ROOT, "docs", "PROTOCOL.md")
SCHEMA = "broadcast-wire/parent/v1"

# PROTOCOL.md#maximum-payload
MAX = 16777216


def spec_numbers():
    """Anchor -> today's section number in docs/PROTOCOL.md."""
    numbers, pending = {}, None
    with open(PROTOCOL_MD, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'<a id="([^"]+)"></a>\s*$', line)
            if m:
                pending = m.group(1)
            elif pending and line.strip():
                h = re.match(r"#+\s+(\d+(?:\.\d+)*)\.?\s", line)
                if h:
                    numbers[pending] = h.group(1)
                pending = None
    return numbers


SPEC_NUMBERS = spec_numbers()


def cite(text):
    """`text` with every `{anchor}` replaced by the section's number today."""
    def one(m):
        if m.group(1) not in SPEC_NUMBERS:
            sys.exit(f"build_parent.py: {m.group(1)!r} is not an anchor of docs/PROTOCOL.md")
        return "§" + SPEC_NUMBERS[m.group(1)]
    return re.sub(r"\{([a-z][a-z0-9-]*)\}", one, text)


# ---------------------------------------------------------------------------
# Requirements, quoted from docs/PROTOCOL.md (section Parent semantics), with
# the anchor each is quoted from.
# ---------------------------------------------------------------------------

Q = {
    "frame": ("parent-sending", "A parent MUST send every command as one channel-1 frame ({framing}), written contiguously; it MAY coalesce several frames into one write ({reads-and-writes})."),
    "invalid": ("parent-sending", "A parent MUST NOT write a command whose payload breaks a rule of {operations} (a negative `conn` outside Bcast, an empty or over-long sub_id, empty REQ or EVENT data, Auth data that is not 32 bytes): the worker would drop it ({exit-status}), so the relay would believe a command took effect that never did. It refuses such a command to its caller instead, with an error the caller can see."),
    "oversize": ("parent-sending", "A parent MUST NOT write a command whose payload is longer than the worker's maximum payload size ({maximum-payload}): that is a fatal stream error for the worker, which ends delivery for every connection. It refuses the command to its caller, with an error the caller can see, and the stream goes on."),
    "new_first": ("parent-lifecycle", "New first. A parent MUST send New for a connection before any Add, Remove or Auth that names it, and before any Bcast that names it as the sender. New's flag bit 0 carries whether the relay whitelisted the connection ({flags})."),
    "close": ("parent-lifecycle", "Close on departure. When a client connection goes away (the client closed it, or the relay dropped it), the parent MUST send Close for its `conn`, and MUST NOT send any other command naming that `conn` for that connection after the Close."),
    "reuse": ("parent-lifecycle", "No unsafe reuse. A parent MUST NOT give a `conn` value to a new connection while frames written for an earlier connection with the same value may still be unread: that is, until it has read a frame caused by a command it sent after that earlier connection's Close (a barrier: by {ordering} every frame for the old connection was written before it)."),
    "never_reuse": ("parent-lifecycle", "A parent SHOULD simply never reuse a `conn` value: number connections with a counter (0, 1, 2, ...) instead of their descriptor numbers, and the question never arises."),
    "unknown": ("parent-lifecycle", "Unknown conns. A frame whose `conn` names no open connection (one the parent closed, or never opened) MUST be discarded: it is never written to any client. Discarding it is not an error of the worker's: the worker writes frames for a connection until it processes its Close."),
    "sender": ("parent-bcast", "Its `conn` is the connection that published the event, or −1 for an event that came from no connection ({bcast-conn})."),
    "flags": ("parent-bcast", "Its flags are the access decisions of the relay for this event (`need_filter`, `nip70_enforce`, `marmot_open`, {flags}); reserved bits are 0."),
    "verbatim": ("parent-bcast", "Its data is the `[\"EVENT\", <event>]` message exactly as the relay means the clients to receive the event: the worker writes the event's bytes verbatim ({output-frame}), so the parent MUST NOT alter the bytes it was given between the relay and the wire."),
    "headroom": ("parent-bcast", "A parent SHOULD keep every Bcast payload at least 381 bytes under the maximum ({oversize-output})."),
    "deliver": ("parent-receiving", "A parent MUST deliver the data of every complete channel-2 frame whose BroadcastFrame decodes and names an open connection to that connection, verbatim, and frames for one connection in the order they were read."),
    "skip": ("parent-receiving", "It MUST skip heartbeats and frames on other channels, and MUST drop a channel-2 frame whose payload does not decode, reporting it (a log line is enough); neither stops the stream ({receiving-frames}, {payload-decode-failures}). A frame that does not decode is lost, not retried: treating it as \"no data yet\" (like `EAGAIN`) loses it and stalls the frames behind it."),
    "fatal": ("parent-receiving", "A frame whose `len` is over the maximum, or output that ends inside a frame, is a fatal stream error ({fatal-and-non-fatal}): the parent MUST report it to the relay as a worker failure, and MUST NOT wait for more frames from that stream."),
    "stranded": ("parent-receiving", "No stranded frames. A parent MUST NOT leave complete frames unread while it waits for the next readiness event of the worker's output: once woken, it reads until a read says \"no data now\" (`EAGAIN`), or, if it stops after a bounded number of frames to serve other work, it comes back to the stream without waiting for new readiness. The bytes already read into its own buffers trigger no readiness."),
    "no_drop": ("parent-flow-control", "A parent MUST NOT drop a command silently. When the worker does not read (its input stream is full), each command is either queued by the parent and later written, in the order the relay issued them, or refused to the relay with an error it can see, at the time of the call."),
    "keep_reading": ("parent-flow-control", "While it waits to write, a parent MUST keep reading the worker's output: a worker never drops a frame ({flow-control}), so when the parent stops reading, the worker stops reading commands."),
    "detect": ("parent-worker-death", "A parent MUST detect that the worker has exited or closed its output (end of its output stream, `EPIPE`/`ECONNRESET` on a write, or the process's exit) and report it to the relay."),
    "no_success": ("parent-worker-death", "After that, no command may claim success: each is refused with an error, and none is reported as written."),
    "reap": ("parent-worker-death", "The parent MUST reap the worker process (wait for it), so that no zombie is left."),
}


def mk(cid, q, comment, steps, level="MUST"):
    """A case. q: a key of Q or a tuple of keys (the first gives `spec`)."""
    keys = (q,) if isinstance(q, str) else q
    anchor = Q[keys[0]][0]
    if anchor not in SPEC_NUMBERS:
        sys.exit(f"build_parent.py: {anchor!r} is not an anchor of docs/PROTOCOL.md")
    return {"id": cid, "level": level, "spec": "PROTOCOL.md#" + anchor,
            "requirement": cite(" … ".join(Q[k][1] for k in keys)), "comment": comment, "steps": steps}


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def hex64(label):
    return hashlib.sha256(label.encode("utf-8")).hexdigest()


def hex128(label):
    return hashlib.sha512(label.encode("utf-8")).hexdigest()


ALICE = hex64("pubkey:alice")
BOB = hex64("pubkey:bob")
T = 1700000000


def ev(label, kind=1, content="", tags="[]", pubkey=ALICE):
    """The raw text of an event object (compact, NIP-01 key order)."""
    return ('{"id":"%s","pubkey":"%s","created_at":%d,"kind":%d,"tags":%s,"content":%s,"sig":"%s"}'
            % (hex64("id:" + label), pubkey, T, kind, tags, json.dumps(content, ensure_ascii=False),
               hex128("sig:" + label)))


def msg(event):
    """The EVENT message a relay fans out."""
    return '["EVENT",' + event + ']'


def got(sub, event):
    """The data of the frame that delivers `event` to subscription `sub`
    (PROTOCOL.md#output-frame; `sub` is plain ASCII, so its JSON string is
    itself in quotes)."""
    return '["EVENT","' + sub + '",' + event + ']'


def big_event(label, total, kind=1, prefix_text=""):
    """A fill object for an EVENT message of exactly `total` bytes, and the
    fill object of the frame that delivers it to subscription "s"."""
    head = '{"id":"%s","pubkey":"%s","created_at":%d,"kind":%d,"tags":[],"content":"%s' % (
        hex64("id:" + label), ALICE, T, kind, prefix_text)
    tail = '","sig":"%s"}' % hex128("sig:" + label)
    fixed = len(('["EVENT",' + head + tail + ']').encode("utf-8")) + prefix_text.count("{i}") * 3
    count = total - fixed
    assert count > 0
    message = {"prefix": '["EVENT",' + head, "fill": "x", "count": count, "suffix": tail + "]"}
    delivered = {"prefix": '["EVENT","s",' + head, "fill": "x", "count": count, "suffix": tail + "]"}
    return message, delivered


def text_len(t):
    """Byte length of a text or fill object, `{i}` counting 6 digits."""
    if isinstance(t, dict):
        s = t.get("prefix", "") + t.get("suffix", "")
        return (len(s.replace("{i}", "000000").encode("utf-8"))
                + len(t["fill"].encode("utf-8")) * t["count"])
    return len(t.replace("{i}", "000000").encode("utf-8"))


REQ_ALL = '["REQ","s",{}]'

# ---------------------------------------------------------------------------
# Command frames (PROTOCOL.md#frame-layout, PROTOCOL.md#subcommand-layout)
# ---------------------------------------------------------------------------

OPS = {"new": 1, "close": 2, "add": 3, "remove": 4, "auth": 5, "bcast": 6}


def conn_hex(conn):
    return "${%s}" % conn if isinstance(conn, str) else struct.pack("<i", conn).hex()


def cmd(op, conn, flags=0, sub_id=b"", data=b"", data_len=None):
    """The hex template of one command frame. `data_len` given: the data is
    the action's own (`{data}`), of that length."""
    if isinstance(sub_id, str):
        sub_id = sub_id.encode("utf-8")
    dlen = len(data) if data_len is None else data_len
    payload_len = 1 + 1 + 4 + 4 + len(sub_id) + 4 + dlen
    # Fields apart, as in docs/CONFORMANCE.md's worked example: chan, len,
    # op, flags, conn, sub_id_len, sub_id, data_len, data.
    text = " ".join([
        "01", struct.pack("<I", payload_len).hex(), "%02x" % OPS[op], "%02x" % flags, conn_hex(conn),
        struct.pack("<I", len(sub_id)).hex(), sub_id.hex(), struct.pack("<I", dlen).hex(),
        "{data}" if data_len is not None else data.hex()])
    return {"op": op, "conn": conn if isinstance(conn, str) else None, "hex": " ".join(text.split())}


# ---------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------

def _act(action, commands, answer="ok", repeat=None, label=None):
    s = {"act": action}
    if answer != "ok":
        s["answer"] = answer
    if commands and answer != "refused":
        s["commands"] = commands
    if repeat is not None:
        s["repeat"] = repeat
    if label is not None:
        s["label"] = label
    return s


def connect(c, wl=False, answer="ok"):
    return _act({"action": "connect", "client": c, "whitelisted": wl},
                [cmd("new", c, 0x01 if wl else 0)], answer)


def disconnect(c, answer="ok"):
    return _act({"action": "disconnect", "client": c}, [cmd("close", c)], answer)


def subscribe(c, sub, req=None, answer="ok", label=None):
    if req is None:
        req = '["REQ","%s",{}]' % sub
    return _act({"action": "subscribe", "client": c, "sub_id": sub, "req": req},
                [cmd("add", c, sub_id=sub, data_len=text_len(req))], answer, label=label)


def unsubscribe(c, sub, answer="ok"):
    return _act({"action": "unsubscribe", "client": c, "sub_id": sub}, [cmd("remove", c, sub_id=sub)], answer)


def auth(c, pubkey, answer="ok"):
    data = bytes.fromhex(pubkey) if len(pubkey) % 2 == 0 and re.fullmatch("[0-9a-f]*", pubkey) else b""
    return _act({"action": "auth", "client": c, "pubkey": pubkey}, [cmd("auth", c, data=data)], answer)


FLAG_BITS = {"need_filter": 0x01, "nip70_enforce": 0x02, "marmot_open": 0x04}  # PROTOCOL.md#flags


def fanout(frm, event_msg, flags=(), answer="ok", repeat=None, label=None):
    bits = 0
    for f in flags:
        bits |= FLAG_BITS[f]
    return _act({"action": "fanout", "from": frm, "flags": list(flags), "event": event_msg},
                [cmd("bcast", frm if frm is not None else -1, bits, data_len=text_len(event_msg))],
                answer, repeat=repeat, label=label)


def check(deliveries=None, gone=None, reaped=False, distinct=None):
    c = {}
    if deliveries:
        c["deliveries"] = {k: v for k, v in deliveries.items()}
    if gone is not None:
        c["gone"] = gone
    if reaped:
        c["reaped"] = True
    if distinct:
        c["distinct_conns"] = distinct
    return {"check": c}


def inject(via, items, split=None, close_output=False, exit=None):
    i = {"via": via, "items": items}
    if split is not None:
        i["split"] = split
    if close_output:
        i["close_output"] = True
    if exit is not None:
        i["exit"] = exit
    return {"inject": i}


def frame(conn, data=None, data_hex=None):
    f = {"conn": conn}
    if data_hex is not None:
        f["data_hex"] = data_hex
    else:
        f["data"] = data
    return {"frame": f}


def burst(conn, count, data):
    return {"burst": {"conn": conn, "count": count, "data": data}}


def raw(text):
    return {"hex": " ".join(text.split())}


def worker(op):
    return {"worker": op}


def await_(deliveries):
    return {"await": deliveries}


def settle(ms):
    return {"settle": ms}


def D(data):
    return {"data": data}


def DH(data_hex):
    return {"data_hex": data_hex}


def fr(chan, payload=b"", length=None):
    """A frame's bytes: chan u8, len u32 LE, payload (PROTOCOL.md#frame-layout)."""
    return struct.pack("<BI", chan, len(payload) if length is None else length) + payload


def bf(conn_bytes, data):
    """A BroadcastFrame payload (PROTOCOL.md#broadcastframe-layout) with the
    given 4 conn bytes."""
    return conn_bytes + struct.pack("<I", len(data)) + data


NOTICE = '["NOTICE","%s"]'
GONE_EXIT = {"fatal": False}
GONE_FATAL = {"fatal": True, "status": "any"}


# ===========================================================================
# sending: PROTOCOL.md#parent-sending
# ===========================================================================

def sending():
    e1 = ev("sending-1", content="hello")
    long_sub = "s" * 64
    mib = big_event("sending-mib", 1 << 20)
    return [
        mk("sending/frame/new", "frame", "connect: one New frame on channel 1, flags 0, the conn of the parent's choice.",
           [connect("a"), check()]),
        mk("sending/frame/close", "frame", "disconnect: one Close frame naming the client's conn.",
           [connect("a"), check(), disconnect("a"), check()]),
        mk("sending/frame/add", "frame", "subscribe: one Add frame with the sub_id and the REQ bytes.",
           [connect("a"), subscribe("a", "s"), check()]),
        mk("sending/frame/remove", "frame", "unsubscribe: one Remove frame with the sub_id and no data.",
           [connect("a"), subscribe("a", "s"), unsubscribe("a", "s"), check()]),
        mk("sending/frame/auth", "frame", "auth: one Auth frame whose data is the 32-byte binary pubkey.",
           [connect("a"), auth("a", ALICE), check()]),
        mk("sending/frame/bcast", "frame", "fanout from no client: one Bcast frame, conn -1, flags 0, the EVENT message as data.",
           [connect("a"), subscribe("a", "s"), fanout(None, msg(e1)), check({"a": [D(got("s", e1))]})]),
        mk("sending/frame/add-sub-id-64-bytes", "frame", "A sub_id of 64 bytes, the longest allowed: written as it is.",
           [connect("a"), subscribe("a", long_sub), unsubscribe("a", long_sub), check()]),
        mk("sending/frame/add-sub-id-1-byte", "frame", "A sub_id of 1 byte, the shortest allowed.",
           [connect("a"), subscribe("a", "x"), unsubscribe("a", "x"), check()]),
        mk("sending/frame/non-ascii-sub-id", "frame", "A sub_id with non-ASCII characters goes as its UTF-8 bytes.",
           [connect("a"), subscribe("a", "é☃🦀"), unsubscribe("a", "é☃🦀"), check()]),
        mk("sending/frame/many-commands-back-to-back", "frame",
           "60 commands sent without a pause: each one whole frame, in order (several may share a write).",
           [connect("a")] + [subscribe("a", "s%02d" % i) for i in range(30)]
           + [unsubscribe("a", "s%02d" % i) for i in range(29)] + [check()]),
        mk("sending/frame/bcast-1-mib", ("frame", "verbatim"),
           "A 1 MiB event: one contiguous frame, however many writes it takes, and delivered whole.",
           [connect("a"), subscribe("a", "s"), check(), fanout(None, mib[0]), check({"a": [D(mib[1])]})]),
        mk("sending/invalid/empty-sub-id", "invalid",
           "subscribe with an empty sub_id: refused, nothing written; the next command goes through.",
           [connect("a"), subscribe("a", "", answer="refused"), subscribe("a", "s"), check()]),
        mk("sending/invalid/sub-id-65-bytes", "invalid",
           "subscribe with a 65-byte sub_id: refused, nothing written; the next command goes through.",
           [connect("a"), subscribe("a", "s" * 65, answer="refused"), subscribe("a", "s"), check()]),
        mk("sending/invalid/sub-id-65-bytes-utf8", "invalid",
           "A sub_id of 22 characters but 66 UTF-8 bytes is over 64 bytes: refused.",
           [connect("a"), subscribe("a", "☃" * 22, answer="refused"), subscribe("a", "s"), check()]),
        mk("sending/invalid/unsubscribe-empty-sub-id", "invalid",
           "unsubscribe with an empty sub_id: refused, nothing written.",
           [connect("a"), subscribe("a", "s"), unsubscribe("a", "", answer="refused"), unsubscribe("a", "s"), check()]),
        mk("sending/invalid/unsubscribe-sub-id-65-bytes", "invalid",
           "unsubscribe with a 65-byte sub_id: refused, nothing written.",
           [connect("a"), subscribe("a", "s"), unsubscribe("a", "u" * 65, answer="refused"), unsubscribe("a", "s"), check()]),
        mk("sending/invalid/empty-req", "invalid", "subscribe with empty REQ data: refused, nothing written.",
           [connect("a"), subscribe("a", "s", req="", answer="refused"), subscribe("a", "s"), check()]),
        mk("sending/invalid/empty-event", "invalid", "fanout of an empty EVENT message: refused, nothing written.",
           [connect("a"), subscribe("a", "s"), fanout(None, "", answer="refused"), fanout(None, msg(e1)),
            check({"a": [D(got("s", e1))]})]),
        mk("sending/invalid/auth-31-bytes", "invalid", "auth with a 31-byte pubkey (62 hex digits): refused, nothing written.",
           [connect("a"), auth("a", ALICE[:62], answer="refused"), auth("a", ALICE), check()]),
        mk("sending/invalid/auth-33-bytes", "invalid", "auth with a 33-byte pubkey (66 hex digits): refused, nothing written.",
           [connect("a"), auth("a", ALICE + "00", answer="refused"), auth("a", ALICE), check()]),
        mk("sending/oversize/bcast-max-plus-1", "oversize",
           "A fanout whose Bcast payload would be 16777217 bytes, one over the maximum: refused, never written; the stream goes on.",
           [connect("a"), subscribe("a", "s"), check(),
            fanout(None, big_event("sending-over", MAX + 1 - 14)[0], answer="refused"),
            fanout(None, msg(e1)), check({"a": [D(got("s", e1))]})]),
        mk("sending/oversize/add-max-plus-1", "oversize",
           "A subscribe whose Add payload would be 16777217 bytes: refused, never written; the stream goes on.",
           [connect("a"), check(),
            subscribe("a", "s", req={"prefix": '["REQ","s",{"#t":["', "fill": "x",
                                     "count": MAX + 1 - 14 - 1 - len('["REQ","s",{"#t":[""]}]'),
                                     "suffix": '"]}]'}, answer="refused"),
            subscribe("a", "s"), fanout(None, msg(e1)), check({"a": [D(got("s", e1))]})]),
    ]


# ===========================================================================
# lifecycle: PROTOCOL.md#parent-lifecycle
# ===========================================================================

def lifecycle():
    e1 = ev("lifecycle-1", content="one")
    e2 = ev("lifecycle-2", content="two")
    dm = ev("lifecycle-dm", kind=4, content="secret", tags='[["p","%s"]]' % BOB)
    cycles = []
    names = ["c%d" % i for i in range(8)]
    for n in names:
        cycles += [connect(n), subscribe(n, "s"), check(), disconnect(n), check()]
    return [
        mk("lifecycle/new-first/subscribe", "new_first", "connect then subscribe in one burst: New before Add.",
           [connect("a"), subscribe("a", "s"), check()]),
        mk("lifecycle/new-first/auth", "new_first", "connect then auth in one burst: New before Auth.",
           [connect("a"), auth("a", ALICE), check()]),
        mk("lifecycle/new-first/unsubscribe", "new_first", "connect, subscribe, unsubscribe in one burst: New first, then Add, then Remove.",
           [connect("a"), subscribe("a", "s"), unsubscribe("a", "s"), check()]),
        mk("lifecycle/new-first/fanout-from-client", "new_first",
           "connect then fanout from that client in one burst: New before the Bcast that names it as sender.",
           [connect("b"), connect("a"), subscribe("b", "s"), fanout("a", msg(e1)), check({"b": [D(got("s", e1))]})]),
        mk("lifecycle/new-first/everything-in-one-burst", "new_first",
           "Every action of a new client at once, no barrier between: its New comes before all of them, the rest in order.",
           [connect("a"), connect("b"), subscribe("b", "s"), auth("b", BOB), subscribe("b", "t"), fanout("b", msg(e1)),
            unsubscribe("b", "t"), fanout(None, msg(e2)),
            check({"b": [D(got("s", e1)), D(got("t", e1)), D(got("s", e2))]})]),
        mk("lifecycle/new/whitelisted", "new_first",
           "connect with whitelisted true: New's flag bit 0 is set; a privileged DM with need_filter reaches that client only.",
           [connect("a"), connect("b", wl=True), subscribe("a", "s"), subscribe("b", "s"), check(),
            fanout(None, msg(dm), flags=["need_filter"]), check({"b": [D(got("s", dm))]})]),
        mk("lifecycle/new/not-whitelisted", "new_first", "connect with whitelisted false: New's flags are 0.",
           [connect("a", wl=False), check()]),
        mk("lifecycle/close-on-disconnect", "close",
           "The worked example of docs/CONFORMANCE.md: connect, subscribe, a frame, disconnect: one Close for the client's conn.",
           [connect("a"), subscribe("a", "s"), check(),
            inject("a", [frame("a", '["EOSE","s"]')]), check({"a": [D('["EOSE","s"]')]}),
            disconnect("a"), check()]),
        mk("lifecycle/close/with-subscriptions", "close",
           "A client with subscriptions and an authenticated pubkey goes away: exactly one Close, no Remove, nothing after it.",
           [connect("a"), connect("b"), subscribe("a", "s"), subscribe("a", "t"), auth("a", ALICE), subscribe("b", "s"),
            check(), disconnect("a"), fanout(None, msg(e1)), check({"b": [D(got("s", e1))]})]),
        mk("lifecycle/close/nothing-after-close", "close",
           "After a client's Close, later actions of other clients never name its conn, and frames stop reaching it.",
           [connect("a"), connect("b"), subscribe("a", "s"), subscribe("b", "s"), check(), disconnect("a"), check(),
            fanout("b", msg(e1)), fanout(None, msg(e2)), check({"b": [D(got("s", e1)), D(got("s", e2))]})]),
        mk("lifecycle/reuse/late-frame-for-old-conn", ("reuse", "unknown"),
           "The worker holds the EVENT frame of a's subscription; a leaves, b connects and subscribes; then the held frame comes "
           "(before any frame of a later command, as PROTOCOL.md#ordering allows). A parent that gave b a's conn without a "
           "barrier delivers a's event to b.",
           [connect("a"), connect("m"), subscribe("a", "s"), check(),
            worker({"hold": "a"}), fanout(None, msg(e1)), check(),
            disconnect("a"), connect("b"), subscribe("b", "s"), check(),
            worker("release"), check({"b": [], "m": []}),
            fanout(None, msg(e2)), check({"b": [D(got("s", e2))]})]),
        mk("lifecycle/reuse/barrier-before-reuse", "reuse",
           "Eight clients connect, subscribe and leave one after the other: a conn value given again needs a barrier after the old Close.",
           cycles),
        mk("lifecycle/reuse/never", "never_reuse",
           "Eight clients connect and leave one after the other: every client gets a conn value never used before.",
           cycles + [check(distinct=names)], level="SHOULD"),
        mk("lifecycle/unknown-conn/never-opened", "unknown",
           "A frame for a conn the parent never opened, between two frames for a: only a's two are delivered, the stream goes on.",
           [connect("a"), check(),
            inject("a", [frame("a", NOTICE % "1"), frame("unused", NOTICE % "stray"), frame("a", NOTICE % "2")]),
            check({"a": [D(NOTICE % "1"), D(NOTICE % "2")]})]),
        mk("lifecycle/unknown-conn/closed", "unknown",
           "After a leaves (its Close written), a frame for a's conn is discarded: nobody receives it, and no worker_gone.",
           [connect("a"), connect("b"), check(), disconnect("a"), check(),
            inject("a", [frame("a", NOTICE % "late for a")]), check({"b": []}),
            inject("b", [frame("b", NOTICE % "b")]), check({"b": [D(NOTICE % "b")]})]),
        mk("lifecycle/unknown-conn/closed-mixed", "unknown",
           "Frames for a's closed conn interleaved with frames for b in one write: b gets exactly its own, in order.",
           [connect("a"), connect("b"), check(), disconnect("a"), check(),
            inject("b", [frame("b", NOTICE % "b1"), frame("a", NOTICE % "x1"), frame("b", NOTICE % "b2"),
                         frame("a", NOTICE % "x2"), frame("b", NOTICE % "b3")]),
            check({"b": [D(NOTICE % "b1"), D(NOTICE % "b2"), D(NOTICE % "b3")]})]),
        mk("lifecycle/unknown-conn/many", "unknown",
           "1000 frames for a conn never opened, then one for a, in one write: a gets its one frame.",
           [connect("a"), check(),
            inject("a", [burst("unused", 1000, NOTICE % "stray {i}"), frame("a", NOTICE % "mine")]),
            check({"a": [D(NOTICE % "mine")]})]),
    ]


# ===========================================================================
# bcast: PROTOCOL.md#parent-bcast
# ===========================================================================

def bcast():
    e1 = ev("bcast-1", content="plain")
    odd = ('{ "id" : "%s" ,"pubkey":"%s",  "created_at":%d,"kind":1,"tags":[ ["t", "a"] ],'
           '"content":"caf\\u00e9 é 🦀 \\n \\"q\\"","sig":"%s" }') % (hex64("id:bcast-odd"), ALICE, T, hex128("sig:bcast-odd"))
    dm = ev("bcast-dm", kind=4, content="dm", tags='[["p","%s"]]' % BOB)
    prot = ev("bcast-protected", content="protected", tags='[["-"]]')
    kp = ev("bcast-keypackage", kind=443, content="kp", pubkey=BOB)

    def flags_case(name, flags, comment):
        return mk("bcast/flags/" + name, "flags", comment,
                  [connect("a"), subscribe("a", "s"), check(), fanout(None, msg(e1), flags=flags),
                   check({"a": [D(got("s", e1))]})])

    near = big_event("bcast-near-max", MAX - 380 - 14)
    return [
        mk("bcast/sender/client", "sender", "A fanout from client b: the Bcast's conn is b's conn; b receives its own event.",
           [connect("a"), connect("b"), subscribe("a", "s"), subscribe("b", "s"), check(),
            fanout("b", msg(e1)), check({"a": [D(got("s", e1))], "b": [D(got("s", e1))]})]),
        mk("bcast/sender/none", "sender", "A fanout from no connection: the Bcast's conn is -1.",
           [connect("a"), subscribe("a", "s"), check(), fanout(None, msg(e1)), check({"a": [D(got("s", e1))]})]),
        mk("bcast/sender/each-client", "sender", "Fanouts from a, then b, then no one: each Bcast names its own sender.",
           [connect("a"), connect("b"), subscribe("a", "s"), check(),
            fanout("a", msg(e1)), fanout("b", msg(e1)), fanout(None, msg(e1)),
            check({"a": [D(got("s", e1))] * 3})]),
        flags_case("none", [], "No access decision: flags 0."),
        flags_case("need-filter", ["need_filter"], "need_filter alone: flags 0x01."),
        flags_case("nip70-enforce", ["nip70_enforce"], "nip70_enforce alone: flags 0x02."),
        flags_case("marmot-open", ["marmot_open"], "marmot_open alone: flags 0x04."),
        flags_case("all", ["need_filter", "nip70_enforce", "marmot_open"], "All three: flags 0x07."),
        mk("bcast/flags/need-filter-applies", "flags",
           "A DM (kind 4) with need_filter reaches the whitelisted client and the one authenticated as its p tag, not the others.",
           [connect("a"), connect("w", wl=True), connect("p"), subscribe("a", "s"), subscribe("w", "s"), subscribe("p", "s"),
            auth("p", BOB), check(), fanout(None, msg(dm), flags=["need_filter"]),
            check({"w": [D(got("s", dm))], "p": [D(got("s", dm))]})]),
        mk("bcast/flags/nip70-enforce-applies", "flags",
           "A protected event with nip70_enforce reaches authenticated and whitelisted clients only.",
           [connect("a"), connect("w", wl=True), connect("p"), subscribe("a", "s"), subscribe("w", "s"), subscribe("p", "s"),
            auth("p", BOB), check(), fanout(None, msg(prot), flags=["nip70_enforce"]),
            check({"w": [D(got("s", prot))], "p": [D(got("s", prot))]})]),
        mk("bcast/flags/marmot-open-applies", "flags",
           "A key package (kind 443) with need_filter and marmot_open reaches everyone; with need_filter alone, only w.",
           [connect("a"), connect("w", wl=True), subscribe("a", "s"), subscribe("w", "s"), check(),
            fanout(None, msg(kp), flags=["need_filter", "marmot_open"]),
            check({"a": [D(got("s", kp))], "w": [D(got("s", kp))]}),
            fanout(None, msg(kp), flags=["need_filter"]), check({"w": [D(got("s", kp))]})]),
        mk("bcast/data/verbatim-odd-json", "verbatim",
           "An event with spaces around tokens, \\u escapes, raw non-ASCII and escaped quotes: the Bcast carries its bytes unchanged.",
           [connect("a"), subscribe("a", "s"), check(), fanout(None, msg(odd)), check({"a": [D(got("s", odd))]})]),
        mk("bcast/data/verbatim-message-whitespace", "verbatim",
           "Whitespace in the EVENT message around the event: the Bcast data is the message exactly as given.",
           [connect("a"), subscribe("a", "s"), check(), fanout(None, '[ "EVENT" ,\n' + e1 + ' ]'),
            check({"a": [D(got("s", e1))]})]),
        mk("bcast/size/near-max-refused", "headroom",
           "A fanout whose Bcast payload would be 380 bytes under the maximum: it SHOULD be refused (not written).",
           [connect("a"), subscribe("a", "s"), check(), fanout(None, near[0], answer="refused"),
            fanout(None, msg(e1)), check({"a": [D(got("s", e1))]})], level="SHOULD"),
    ]


# ===========================================================================
# receiving: PROTOCOL.md#parent-receiving
# ===========================================================================

# How each golden framing stream ends for a parent, whose maximum payload is
# the default 16 MiB (PROTOCOL.md#maximum-payload), and which of its frames
# are channel-2 frames whose BroadcastFrame decodes (PROTOCOL.md#broadcastframe-layout:
# conn >= 0, data_len >= 1, exactly 8 + data_len bytes). Written by hand,
# vector by vector; vectors whose own max_payload differs are judged at 16 MiB.
FRAMING_TABLE = {
    "framing/empty": None,  # nothing to inject
    "framing/one-frame-chan-2": ("clean", []),  # "world!": 6 bytes, data_len past the end: does not decode
    "framing/one-frame-chan-1": ("clean", []),  # channel 1: skipped by a parent
    "framing/heartbeat-chan-0": ("clean", []),
    "framing/heartbeat-chan-1": ("clean", []),
    "framing/heartbeat-chan-2": ("clean", []),
    "framing/heartbeat-chan-255": ("clean", []),
    "framing/heartbeats-many": ("clean", []),
    "framing/foreign-chan-0": ("clean", []),
    "framing/foreign-chan-3": ("clean", []),
    "framing/foreign-chan-255": ("clean", []),
    "framing/back-to-back-same-chan": ("clean", []),  # channel 1 only
    "framing/back-to-back-mixed": ("clean", []),  # its channel-2 "two" does not decode
    "framing/subcommand-payload": ("clean", []),
    "framing/broadcast-frame-payload": ("clean", [0]),  # conn 9, data_len 457, 465 bytes: decodes
    "framing/invalid-subcommand-payload": ("clean", []),
    "framing/subcommand-on-chan-2": ("clean", []),  # data_len 0x40000 past the 46 bytes: does not decode
    "framing/payload-1-kib": ("clean", []),
    "framing/payload-looks-like-headers": ("clean", []),  # channel-2 "z": does not decode
    "framing/payload-len-0xff-bytes": ("clean", []),
    "framing/max/payload-at-max": ("clean", []),  # 8-byte payloads, far under 16 MiB; "abcdefgh" does not decode
    "framing/max/payload-one-over": ("clean", []),  # len 9 is fine at 16 MiB: four frames, channels 0 and 1
    "framing/max/len-above-max-header-only": ("fatal", []),  # len 17 is fine at 16 MiB, but no payload: truncated
    "framing/max/len-u32-max-default": ("fatal", []),  # frame_too_large
    "framing/max/len-default-max-plus-1": ("fatal", []),  # frame_too_large after a channel-1 frame
    "framing/max/len-default-max-exact-then-eof": ("fatal", []),  # allowed length, no payload: truncated
    "framing/max/too-large-on-foreign-chan": ("clean", []),  # len 5 fine at 16 MiB; channel-2 "ok" does not decode
    "framing/max/zero-heartbeat": ("clean", []),
    "framing/max/zero-one-byte-frame": ("clean", []),  # a 1-byte channel-1 frame is fine at 16 MiB
    "framing/max/zero-heartbeats-then-one-byte": ("fatal", []),  # the 1-byte frame's payload is missing: truncated
    "framing/max/one": ("clean", []),  # channel-2 "bc" does not decode
    "framing/truncated/header-1-byte": ("fatal", []),
    "framing/truncated/header-2-bytes": ("fatal", []),
    "framing/truncated/header-4-bytes": ("fatal", []),
    "framing/truncated/header-complete-no-payload": ("fatal", []),
    "framing/truncated/inside-payload": ("fatal", []),
    "framing/truncated/inside-large-payload": ("fatal", []),  # its channel-2 "x" does not decode
    "framing/truncated/frame-then-partial-header": ("fatal", []),
    "framing/truncated/frame-then-partial-header-3": ("fatal", []),
    "framing/truncated/heartbeat-then-partial-header": ("fatal", []),
    "framing/truncated/frames-then-partial-payload": ("fatal", []),  # its channel-2 "b" does not decode
    "framing/truncated/at-max-payload-partial": ("fatal", []),
}

# Oversize headers stay open (the parent must not wait for more bytes);
# every other fatal stream is followed by the end of the worker's output.
TOO_LARGE = {"framing/max/len-u32-max-default", "framing/max/len-default-max-plus-1"}


def framing_cases():
    with open(FRAMING, encoding="utf-8") as f:
        vectors = json.load(f)["vectors"]
    ids = [v["id"] for v in vectors]
    missing = [i for i in ids if i not in FRAMING_TABLE]
    stale = [i for i in FRAMING_TABLE if i not in ids]
    if missing or stale:
        sys.exit("build_parent.py: FRAMING_TABLE must judge every framing vector; missing %s, stale %s"
                 % (missing, stale))
    cases = []
    for v in vectors:
        judged = FRAMING_TABLE[v["id"]]
        if judged is None:
            continue
        end, deliverable = judged
        stream = bytes.fromhex(v["stream_hex"])
        # Walk the vector's own frame list to find each frame's offset, and
        # put client a's conn into the frames that decode.
        pieces, delivered, off = [], [], 0
        for n, fv in enumerate(v["frames"]):
            payload = bytes.fromhex(fv["payload_hex"])
            assert stream[off:off + 5] == struct.pack("<BI", fv["chan"], len(payload)), (v["id"], n)
            if n in deliverable:
                assert fv["chan"] == 2 and len(payload) == 8 + struct.unpack("<I", payload[4:8])[0], v["id"]
                pieces.append(stream[off:off + 5].hex())
                pieces.append("${a}")
                pieces.append(payload[4:].hex())
                delivered.append(DH(payload[8:].hex()))
            else:
                pieces.append(stream[off:off + 5 + len(payload)].hex())
            off += 5 + len(payload)
        pieces.append(stream[off:].hex())
        text = " ".join(p for p in pieces if p)
        name = v["id"][len("framing/"):]
        comment = v["comment"]
        if end == "clean":
            n = len(stream)
            steps = [connect("a"), check(),
                     inject("a", [raw(text)], split="every"),
                     check({"a": [{"repeat": n, "each": delivered}]} if delivered else None),
                     inject("a", [raw(text)], split="bytes"),
                     check({"a": delivered} if delivered else None)]
            cases.append(mk("receiving/framing/" + name, ("skip", "deliver") if not delivered else ("deliver", "skip"),
                            "The golden stream %s, written whole and then cut at each of its %d inner boundaries "
                            "(one session), then one byte per write: %s" % (v["id"], n - 1, comment), steps))
        else:
            n = len(stream)
            # One session per split point (the error ends the session): every
            # point of a short stream; of a longer one, the header bytes, the
            # frame boundaries and their neighbours, the middle and the end.
            if n <= 8:
                splits = list(range(0, n))
            else:
                bounds, at = [], 0
                for fv in v["frames"]:
                    at += 5 + len(fv["payload_hex"]) // 2
                    bounds += [at - 1, at, at + 1]
                splits = sorted(set(k for k in [0, 1, 2, 4, 5, 6, n // 2, n - 2, n - 1] + bounds if 0 <= k < n))
            too_large = v["id"] in TOO_LARGE
            for k in splits:
                # An oversize header leaves the output open: the parent must
                # decide on the header. A truncated stream ends with the
                # worker's output, and the worker then exits (1), as one
                # that died in the middle of a write.
                steps = [connect("a"), check(),
                         inject("a", [raw(text)], split=[k] if k else None,
                                close_output=not too_large, exit=None if too_large else 1),
                         check({"a": delivered} if delivered else None, gone=GONE_FATAL)]
                how = "in one write" if k == 0 else "cut after byte %d" % k
                cases.append(mk("receiving/framing/%s/%s" % (name, "whole" if k == 0 else "split-%d" % k), "fatal",
                                "The golden stream %s, %s%s: a fatal stream error, reported as worker_gone with fatal "
                                "true, without waiting for more. %s"
                                % (v["id"], how,
                                   "" if too_large else ", then the end of the output and the worker's exit (1)", comment),
                                steps))
    return cases


def receiving():
    e1 = ev("receiving-1", content="first")
    e2 = ev("receiving-2", content="second")
    bad = [
        ("truncated", bytes.fromhex("0500000003000000"), "a BroadcastFrame whose data_len points past its end"),
        ("trailing-bytes", bf(b"\x00\x00\x00\x00", b"x") + b"!", "a BroadcastFrame with a byte after its data"),
        ("conn-minus-one", bf(b"\xff\xff\xff\xff", b'["NOTICE","x"]'), "a BroadcastFrame with conn -1"),
        ("empty-data", bf(b"\x00\x00\x00\x00", b""), "a BroadcastFrame with data_len 0"),
        ("seven-bytes", b"\x00" * 7, "a 7-byte payload, shorter than the fixed fields"),
    ]
    cases = [
        mk("receiving/deliver/worker-event-frames", "deliver",
           "EVENT frames the worker writes for two subscriptions of two clients: each delivered to its client, verbatim.",
           [connect("a"), connect("b"), subscribe("a", "s"), subscribe("b", "s"), subscribe("b", "t"), check(),
            fanout(None, msg(e1)), fanout(None, msg(e2)),
            check({"a": [D(got("s", e1)), D(got("s", e2))],
                   "b": [D(got("s", e1)), D(got("t", e1)), D(got("s", e2)), D(got("t", e2))]})]),
        mk("receiving/deliver/verbatim-bytes", "deliver",
           "Frames whose data is not text (invalid UTF-8, NUL, newline, one byte): delivered byte for byte.",
           [connect("a"), check(),
            inject("a", [frame("a", data_hex="ff00fe0a0d"), frame("a", data_hex="00"), frame("a", data="\n"),
                         frame("a", data="é🦀")]),
            check({"a": [DH("ff00fe0a0d"), DH("00"), D("\n"), D("é🦀")]})]),
        mk("receiving/deliver/order-per-connection", "deliver",
           "200 frames alternating between a and b in one write: each client gets its own in the order written.",
           [connect("a"), connect("b"), check(),
            inject("a", [item for i in range(100) for item in (frame("a", NOTICE % ("a%03d" % i)),
                                                               frame("b", NOTICE % ("b%03d" % i)))]),
            check({"a": [D(NOTICE % ("a%03d" % i)) for i in range(100)],
                   "b": [D(NOTICE % ("b%03d" % i)) for i in range(100)]})]),
        mk("receiving/deliver/one-byte-writes", "deliver",
           "Three frames written one byte per write: all three delivered whole, in order.",
           [connect("a"), check(),
            inject("a", [frame("a", NOTICE % "x"), frame("a", NOTICE % "y"), frame("a", NOTICE % "z")], split="bytes"),
            check({"a": [D(NOTICE % "x"), D(NOTICE % "y"), D(NOTICE % "z")]})]),
        mk("receiving/deliver/frame-at-max-payload", "deliver",
           "A frame whose payload is exactly the maximum, 16777216 bytes (data of 16777208 bytes): delivered whole.",
           [connect("a"), check(), inject("a", [frame("a", {"fill": "x", "count": MAX - 8})]),
            check({"a": [D({"fill": "x", "count": MAX - 8})]})]),
        mk("receiving/skip/heartbeats", "skip",
           "Heartbeats on channels 0, 1, 2, 3 and 255 between frames for a: skipped, a's frames delivered.",
           [connect("a"), check(),
            inject("a", [raw(fr(2).hex()), frame("a", NOTICE % "1"),
                         raw((fr(0) + fr(1) + fr(2) + fr(3) + fr(255)).hex()), frame("a", NOTICE % "2"), raw(fr(2).hex())]),
            check({"a": [D(NOTICE % "1"), D(NOTICE % "2")]})]),
        mk("receiving/skip/other-channels", "skip",
           "Frames on channels 0, 1, 3 and 255 (one holding a valid BroadcastFrame for a): skipped; a gets only its channel-2 frames.",
           [connect("a"), check(),
            inject("a", [raw(fr(0, b"abc").hex()), frame("a", NOTICE % "1"),
                         raw(fr(3, b"\x00" * 32).hex() + " " + fr(255, b"zz").hex()),
                         raw(struct.pack("<BI", 1, 8 + 14).hex() + " ${a} " + struct.pack("<I", 14).hex() + " "
                             + b'["NOTICE","x"]'.hex()),
                         frame("a", NOTICE % "2")]),
            check({"a": [D(NOTICE % "1"), D(NOTICE % "2")]})]),
        mk("receiving/skip/subcommand-from-worker", "skip",
           "A valid SubCommand frame on channel 1 in the worker's output: not the parent's channel, skipped.",
           [connect("a"), check(),
            inject("a", [raw(fr(1, struct.pack("<BBiI", 1, 0, 5, 0) + struct.pack("<I", 0)).hex()),
                         frame("a", NOTICE % "after")]),
            check({"a": [D(NOTICE % "after")]})]),
        mk("receiving/invalid/many-then-valid", "skip",
           "100 channel-2 payloads that do not decode, then a valid frame, in one write and nothing after: the valid one is delivered.",
           [connect("a"), check(),
            inject("a", [raw(fr(2, bad[0][1]).hex())] * 100 + [frame("a", NOTICE % "valid")]),
            check({"a": [D(NOTICE % "valid")]})]),
    ]
    for name, payload, what in bad:
        cases.append(mk("receiving/invalid/" + name, "skip",
                        "A channel-2 frame holding %s, between two valid frames in one write: dropped, the next one is "
                        "delivered (not retried, no stall)." % what,
                        [connect("a"), check(),
                         inject("a", [frame("a", NOTICE % "before"), raw(fr(2, payload).hex()), frame("a", NOTICE % "after")]),
                         check({"a": [D(NOTICE % "before"), D(NOTICE % "after")]})]))
    cases += [
        mk("receiving/fatal/len-over-max-stream-open", "fatal",
           "A frame for a, then a header announcing 16777217 bytes, and the output stays open: a is served, then worker_gone "
           "with fatal true, at once.",
           [connect("a"), check(),
            inject("a", [frame("a", NOTICE % "before"), raw(struct.pack("<BI", 2, MAX + 1).hex())]),
            check({"a": [D(NOTICE % "before")]}, gone=GONE_FATAL)]),
        mk("receiving/fatal/len-over-max-on-foreign-channel", "fatal",
           "An oversize header on channel 7 (a channel the parent skips): still fatal.",
           [connect("a"), check(), inject("a", [raw(struct.pack("<BI", 7, MAX + 1).hex())]),
            check(gone=GONE_FATAL)]),
        mk("receiving/fatal/nothing-after-oversize-header", "fatal",
           "After an oversize header, bytes that look like a valid frame for a: never delivered (no resynchronising).",
           [connect("a"), check(),
            inject("a", [raw(struct.pack("<BI", 2, 0xffffffff).hex()), frame("a", NOTICE % "never")]),
            check(gone=GONE_FATAL)]),
        mk("receiving/fatal/truncated-header", "fatal",
           "Three bytes of a header, then the end of the output: fatal true.",
           [connect("a"), check(), inject("a", [raw("02 05 00")], close_output=True), check(gone=GONE_FATAL)]),
        mk("receiving/fatal/truncated-payload", "fatal",
           "A whole frame for a, then a frame cut inside its payload, then the end of the output: a is served, then fatal true.",
           [connect("a"), check(),
            inject("a", [frame("a", NOTICE % "whole"), raw(fr(2, bf(b"\x00\x00\x00\x00", b"cut")).hex()[:-4])],
                   close_output=True),
            check({"a": [D(NOTICE % "whole")]}, gone=GONE_FATAL)]),
        mk("receiving/stranded/two-frames-one-write", "stranded",
           "Two frames in one write and nothing after: both delivered (a parent that handles one frame per wake-up strands the second).",
           [connect("a"), check(), inject("a", [frame("a", NOTICE % "1"), frame("a", NOTICE % "2")]),
            await_({"a": [D(NOTICE % "1"), D(NOTICE % "2")]}), check({"a": [D(NOTICE % "1"), D(NOTICE % "2")]})]),
        mk("receiving/stranded/burst-5000", "stranded",
           "5000 small frames in one write and nothing after: all delivered, in order, without more output to wake the parent.",
           [connect("a"), check(), inject("a", [burst("a", 5000, NOTICE % "b{i}")]),
            await_({"a": [{"burst": {"count": 5000, "data": NOTICE % "b{i}"}}]}),
            check({"a": [{"burst": {"count": 5000, "data": NOTICE % "b{i}"}}]})]),
        mk("receiving/stranded/burst-two-clients", "stranded",
           "3000 frames to a, then 3000 to b, in one write: all delivered.",
           [connect("a"), connect("b"), check(),
            inject("a", [burst("a", 3000, NOTICE % "a{i}"), burst("b", 3000, NOTICE % "b{i}")]),
            await_({"a": [{"burst": {"count": 3000, "data": NOTICE % "a{i}"}}],
                    "b": [{"burst": {"count": 3000, "data": NOTICE % "b{i}"}}]}),
            check({"a": [{"burst": {"count": 3000, "data": NOTICE % "a{i}"}}],
                   "b": [{"burst": {"count": 3000, "data": NOTICE % "b{i}"}}]})]),
        mk("receiving/stranded/burst-large-frames", "stranded",
           "400 frames of 2 KiB (800 KiB, many reads) in one write: all delivered.",
           [connect("a"), check(), inject("a", [burst("a", 400, '["NOTICE","{i}' + "y" * 2048 + '"]')]),
            await_({"a": [{"burst": {"count": 400, "data": '["NOTICE","{i}' + "y" * 2048 + '"]'}}]}),
            check({"a": [{"burst": {"count": 400, "data": '["NOTICE","{i}' + "y" * 2048 + '"]'}}]})]),
        mk("receiving/stranded/invalid-then-valid", ("stranded", "skip"),
           "A payload that does not decode, then a valid frame, and nothing after: the valid one is delivered (a parent that "
           "treats the error like EAGAIN waits for readiness that never comes).",
           [connect("a"), check(), inject("a", [raw(fr(2, bad[0][1]).hex()), frame("a", NOTICE % "behind")]),
            await_({"a": [D(NOTICE % "behind")]}), check({"a": [D(NOTICE % "behind")]})]),
    ]
    return cases + framing_cases()


# ===========================================================================
# flow: PROTOCOL.md#parent-flow-control
# ===========================================================================

FLOOD = 160  # fanouts of 64 KiB: 10 MiB, more than pipes and common queues hold


def flow():
    big, big_got = big_event("flow-{i}", 64 * 1024, prefix_text="f{i}-")
    big2, big2_got = big_event("flow2-{i}", 64 * 1024, prefix_text="g{i}-")
    got_t = dict(big2_got, prefix=big2_got["prefix"].replace('["EVENT","s",', '["EVENT","t",', 1))
    return [
        mk("flow/no-silent-drop/fanouts-while-worker-stalled", "no_drop",
           "The worker stops reading; the relay calls fanout %d times with 64 KiB events. Each is refused at once, or "
           "accepted and, once the worker reads again, written in order and delivered: none may vanish." % FLOOD,
           [connect("a"), subscribe("a", "s"), check(), worker("pause"),
            fanout(None, big, answer="any", repeat=FLOOD, label="f"), settle(300), worker("resume"),
            check({"a": [{"ok_of": "f", "data": big_got}]})]),
        mk("flow/keep-reading/frames-while-writes-wait", "keep_reading",
           "While the worker does not read and the parent has commands waiting, the worker writes frames: the parent "
           "delivers them without the worker reading again.",
           [connect("a"), subscribe("a", "s"), check(), worker("pause"),
            fanout(None, big, answer="any", repeat=FLOOD, label="f"), settle(300),
            inject("a", [burst("a", 50, NOTICE % "while stalled {i}")]),
            await_({"a": [{"burst": {"count": 50, "data": NOTICE % "while stalled {i}"}}]}),
            worker("resume"),
            check({"a": [{"burst": {"count": 50, "data": NOTICE % "while stalled {i}"}},
                         {"ok_of": "f", "data": big_got}]})]),
        mk("flow/order/subscribe-between-fanouts", "no_drop",
           "While the worker does not read: 40 fanouts, a subscribe of b, 40 more fanouts. Whatever is accepted is written "
           "in that order: b's Add before the later Bcasts, so b gets exactly the later accepted events.",
           [connect("a"), connect("b"), subscribe("a", "s"), check(), worker("pause"),
            fanout(None, big, answer="any", repeat=40, label="f1"),
            subscribe("b", "t", answer="any", label="sub"),
            fanout(None, big2, answer="any", repeat=40, label="f2"), settle(300), worker("resume"),
            check({"a": [{"ok_of": "f1", "data": big_got}, {"ok_of": "f2", "data": big2_got}],
                   "b": [{"ok_of": "f2", "data": got_t, "if_ok": "sub"}]})]),
    ]


# ===========================================================================
# death: PROTOCOL.md#parent-worker-death
# ===========================================================================

def death():
    e1 = ev("death-1", content="after")

    def refused_after():
        return [fanout(None, msg(e1), answer="refused"), connect("z", answer="refused"),
                subscribe("a", "t", answer="refused"), auth("a", ALICE, answer="refused"),
                unsubscribe("a", "s", answer="refused"), disconnect("a", answer="refused"), check()]

    return [
        mk("death/exit/status-reported", ("detect", "reap"),
           "The worker exits with status 3: worker_gone, not fatal, status 3; the process is reaped.",
           [connect("a"), subscribe("a", "s"), check(), worker({"exit": 3}),
            check(gone={"fatal": False, "status": 3}, reaped=True)]),
        mk("death/exit/status-zero", ("detect", "reap"),
           "The worker exits with status 0 while the relay still runs: worker_gone, not fatal, status 0; reaped.",
           [connect("a"), check(), worker({"exit": 0}), check(gone={"fatal": False, "status": 0}, reaped=True)]),
        mk("death/exit/frames-then-exit", ("detect", "deliver"),
           "The worker writes two frames and exits: both delivered, then worker_gone.",
           [connect("a"), check(), inject("a", [frame("a", NOTICE % "last 1"), frame("a", NOTICE % "last 2")]),
            worker({"exit": 0}),
            check({"a": [D(NOTICE % "last 1"), D(NOTICE % "last 2")]}, gone={"fatal": False, "status": 0}, reaped=True)]),
        mk("death/kill/sigkill", ("detect", "reap"),
           "The worker is killed (SIGKILL): worker_gone, not fatal, no exit status; the process is reaped.",
           [connect("a"), subscribe("a", "s"), check(), worker("kill"),
            check(gone={"fatal": False, "status": None}, reaped=True)]),
        mk("death/close-output/eof", "detect",
           "The worker closes its output and keeps running: worker_gone, not fatal.",
           [connect("a"), check(), worker("close_output"), check(gone={"fatal": False, "status": "any"})]),
        mk("death/close-input/epipe", "detect",
           "The worker closes its input and keeps its output open: the parent's next write fails (EPIPE); it reports "
           "worker_gone and refuses what follows.",
           [connect("a"), subscribe("a", "s"), check(), worker("close_input"),
            fanout(None, msg(e1), answer="any"), subscribe("a", "t", answer="any"), settle(1500),
            check(gone={"fatal": False, "status": "any"}), fanout(None, msg(e1), answer="refused"), check()]),
        mk("death/after-exit/every-action-refused", "no_success",
           "After the worker exited and worker_gone was reported, every action is refused.",
           [connect("a"), subscribe("a", "s"), check(), worker({"exit": 0}),
            check(gone={"fatal": False, "status": 0})] + refused_after()),
        mk("death/after-kill/every-action-refused", "no_success",
           "After the worker was killed, every action is refused.",
           [connect("a"), subscribe("a", "s"), check(), worker("kill"),
            check(gone={"fatal": False, "status": None})] + refused_after()),
        mk("death/after-fatal/every-action-refused", "no_success",
           "After a fatal framing error of the worker's output, every action is refused.",
           [connect("a"), subscribe("a", "s"), check(), inject("a", [raw(struct.pack("<BI", 2, MAX + 1).hex())]),
            check(gone=GONE_FATAL)] + refused_after()),
    ]


# ===========================================================================
# main
# ===========================================================================

SECTIONS = [
    ("sending", "Sending commands (PROTOCOL {parent-sending})", sending),
    ("lifecycle", "Connection lifecycle (PROTOCOL {parent-lifecycle})", lifecycle),
    ("bcast", "Bcast (PROTOCOL {parent-bcast})", bcast),
    ("receiving", "Receiving frames (PROTOCOL {parent-receiving})", receiving),
    ("flow", "Flow control (PROTOCOL {parent-flow-control})", flow),
    ("death", "Worker death (PROTOCOL {parent-worker-death})", death),
]


def write(path, doc):
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    wanted = set()
    seen = set()
    total = 0
    for section, title, build in SECTIONS:
        cases = build()
        for c in cases:
            assert c["id"].startswith(section + "/"), c["id"]
            assert c["id"] not in seen, c["id"]
            seen.add(c["id"])
        name = section + ".json"
        wanted.add(name)
        write(os.path.join(OUT_DIR, name), {"schema": SCHEMA, "section": section, "title": cite(title), "cases": cases})
        total += len(cases)
        must = sum(1 for c in cases if c["level"] == "MUST")
        print("%-10s %4d cases (%d MUST, %d SHOULD)" % (section, len(cases), must, len(cases) - must))
    for name in os.listdir(OUT_DIR):
        if name.endswith(".json") and name not in wanted:
            os.remove(os.path.join(OUT_DIR, name))
    print("%-10s %4d cases" % ("total", total))


if __name__ == "__main__":
    main()
