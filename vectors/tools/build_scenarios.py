#!/usr/bin/env python3
"""Build the scenario vectors of broadcast-wire protocol v1.

Regenerate (from anywhere; Python 3, standard library only):

    python3 vectors/tools/build_scenarios.py

This rewrites, deterministically (stable order, 2-space indent, UTF-8,
trailing newline), one file per section:

    vectors/scenarios/<section>.json

The format is the scenario schema of docs/VECTORS.md ("Scenario vectors",
schema string "broadcast-wire/scenarios/v2"). Never edit the JSON by hand:
edit the case table below and regenerate.

Design rules:

- This script only *builds inputs*: event raw texts from fields (with
  deterministic fake 64-hex ids and pubkeys and 128-hex sigs derived from
  labels by SHA-256 / SHA-512), REQ values, and, for wire-level cases, packed
  SubCommand payloads and frames (struct.pack, '<' little-endian).
- Every expected outcome (which conn receives which sub_id + event, which
  CLOSED prefix, which exit status, or nothing at all) is written by hand in
  the case table, from docs/PROTOCOL.md. There is no matcher, no filter
  evaluator, no access-rule evaluator and no escaping function here. The
  expected `data` strings of the sub_id escaping cases are typed literally.
- The worker never verifies ids or signatures (PROTOCOL.md#bcast-event), so the
  fake ids and sigs are fine; they are only required to have the right shape.
- Scenarios never use conn 2147483647 (the probe connection, PROTOCOL.md#probe).

Conn roles used throughout the access cases:

    conn 1  plain: not whitelisted, not authenticated
    conn 2  whitelisted (New flags 0x01)
    conn 3  authenticated as ALICE (the author of the test events)
    conn 4  authenticated as BOB   (the value of the test events' `p` tag)
    conn 5  authenticated as DAVE  (unrelated to the test events)
"""

import hashlib
import json
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "vectors", "scenarios")
SCHEMA = "broadcast-wire/scenarios/v2"
PROTOCOL_MD = os.path.join(ROOT, "docs", "PROTOCOL.md")


def spec_numbers():
    """Anchor -> today's section number in docs/PROTOCOL.md, read from the
    `<a id="NAME"></a>` line above each numbered heading. The source cites
    sections by anchor; the vectors show numbers, so a renumbering of the
    spec changes the generated files and CI asks for them to be regenerated."""
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


def sec(anchor):
    """`§X.Y`, the number the section with this anchor has today."""
    if anchor not in SPEC_NUMBERS:
        sys.exit(f"build_scenarios.py: {anchor!r} is not the anchor of a numbered section of "
                 f"docs/PROTOCOL.md (python3 docs/tools/spec_refs.py --list)")
    return "§" + SPEC_NUMBERS[anchor]


def cite(text):
    """`text` with every `{anchor}` replaced by sec(anchor)."""
    return re.sub(r"\{([a-z][a-z0-9-]*)\}",
                  lambda m: sec(m.group(1)) if m.group(1) in SPEC_NUMBERS else m.group(0), text)


# ---------------------------------------------------------------------------
# Input builders (no evaluation of expected outcomes anywhere)
# ---------------------------------------------------------------------------

def hex64(label):
    return hashlib.sha256(label.encode("utf-8")).hexdigest()


def hex128(label):
    return hashlib.sha512(label.encode("utf-8")).hexdigest()


def js(value):
    """Compact JSON text of an input value (used only to build inputs)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


ALICE = hex64("pubkey:alice")
BOB = hex64("pubkey:bob")
CAROL = hex64("pubkey:carol")
DAVE = hex64("pubkey:dave")
ERIN = hex64("pubkey:erin")

T = 1700000000  # base created_at


def eid(label):
    """The fake id of the event built by ev(label)."""
    return hex64("id:" + label)


def ev(label, kind=1, created_at=T, tags=(), content="", pubkey=ALICE,
       raw=None, drop=(), order=None):
    """Raw text of an event object, compact, keys in NIP-01 order.

    raw:   {key: raw JSON text} replaces a field's value text as is;
    drop:  keys left out;
    order: a key order other than the NIP-01 one.
    """
    fields = {
        "id": js(eid(label)),
        "pubkey": js(pubkey),
        "created_at": str(created_at),
        "kind": str(kind),
        "tags": js([list(t) for t in tags]),
        "content": js(content),
        "sig": js(hex128("sig:" + label)),
    }
    for k, v in (raw or {}).items():
        fields[k] = v
    keys = order or ["id", "pubkey", "created_at", "kind", "tags", "content", "sig"]
    return "{" + ",".join('"%s":%s' % (k, fields[k]) for k in keys if k not in drop) + "}"


OPS = {"new": 1, "close": 2, "add": 3, "remove": 4, "auth": 5, "bcast": 6}


def sc(op, conn, flags=0, sub_id=b"", data=b"", sub_id_len=None, data_len=None,
       trailing=b""):
    """Pack a SubCommand payload (op by name or raw byte)."""
    code = OPS[op] if isinstance(op, str) else op
    sid = sub_id.encode("utf-8") if isinstance(sub_id, str) else sub_id
    dat = data.encode("utf-8") if isinstance(data, str) else data
    return (struct.pack("<BBiI", code, flags, conn,
                        len(sid) if sub_id_len is None else sub_id_len)
            + sid
            + struct.pack("<I", len(dat) if data_len is None else data_len)
            + dat + trailing)


def fr(chan, payload=b"", length=None):
    """Pack a frame: chan u8, len u32 LE, payload."""
    return struct.pack("<BI", chan, len(payload) if length is None else length) + payload


def event_msg(raw_event):
    return ('["EVENT",' + raw_event + ']').encode("utf-8")


# ---- send items -------------------------------------------------------------

def _flags(d, flags):
    if flags:
        d["flags"] = flags
    return d


def new(conn, flags=0):
    return _flags({"op": "new", "conn": conn}, flags)


def close(conn, flags=0):
    return _flags({"op": "close", "conn": conn}, flags)


def add(conn, sub_id, *filters, flags=0):
    return _flags({"op": "add", "conn": conn, "sub_id": sub_id,
                   "req": ["REQ", sub_id] + list(filters)}, flags)


def add_raw(conn, sub_id, text, flags=0):
    return _flags({"op": "add", "conn": conn, "sub_id": sub_id, "req_raw": text}, flags)


def add_hex(conn, sub_id, data_hex):
    return {"op": "add", "conn": conn, "sub_id": sub_id, "data_hex": data_hex}


def remove(conn, sub_id, flags=0):
    return _flags({"op": "remove", "conn": conn, "sub_id": sub_id}, flags)


def auth(conn, pubkey, flags=0):
    return _flags({"op": "auth", "conn": conn, "pubkey": pubkey}, flags)


def bcast(name, sender=-1, flags=0):
    return {"op": "bcast", "sender": sender, "flags": flags, "event": name}


def bcast_raw(event_raw, sender=-1, flags=0):
    return {"op": "bcast", "sender": sender, "flags": flags, "event_raw": event_raw}


def bcast_data(data_raw, sender=-1, flags=0):
    return {"op": "bcast", "sender": sender, "flags": flags, "data_raw": data_raw}


def bcast_hex(data_hex, sender=-1, flags=0):
    return {"op": "bcast", "sender": sender, "flags": flags, "data_hex": data_hex}


def raw(*frames):
    return {"frame_hex": b"".join(frames).hex()}


def rawhex(text):
    return {"frame_hex": text.replace(" ", "")}


# ---- expected frames ----------------------------------------------------------

def E(conn, sub_id, name):
    """conn receives ["EVENT",<sub_id>,<named event>]."""
    return {"conn": conn, "event": {"sub_id": sub_id, "event": name}}


def ER(conn, sub_id, event_raw):
    return {"conn": conn, "event": {"sub_id": sub_id, "event_raw": event_raw}}


def CL(conn, sub_id, prefix):
    return {"conn": conn, "closed": {"sub_id": sub_id, "prefix": prefix}}


def DATA(conn, data):
    return {"conn": conn, "data": data}


NOTHING = []


# ---- steps and cases ------------------------------------------------------------

def step(send, expect, ordered=False, chunk=None, pause_ms=None):
    s = {"send": send, "expect": expect}
    if ordered:
        s["ordered"] = True
    if chunk is not None:
        s["chunk"] = chunk
    if pause_ms is not None:
        s["pause_ms"] = pause_ms
    return s


def end(send, expect, exit, close_input=False, chunk=None):
    s = {"send": send, "expect": expect}
    if chunk is not None:
        s["chunk"] = chunk
    s["end"] = {"close_input": close_input, "exit": exit}
    return s


# ---------------------------------------------------------------------------
# Requirements, quoted from docs/PROTOCOL.md, each with the anchor of the
# section it is quoted from (the case's `spec` is that section's number today). A requirement made of several
# sentences joins them with " … ". "Table row: " quotes one row of a table.
# ---------------------------------------------------------------------------

Q = {
    # (PROTOCOL.md#framing) framing as seen from a worker
    "skip": ("receiving-frames", "A receiver MUST skip, whole, every frame on a channel it does not consume, and then carry on with the next frame. … For the worker that is every channel except 1; for the parent, every channel except 2."),
    "heartbeat": ("receiving-frames", "A frame with `len == 0` is a heartbeat, on any channel, consumed or not. A receiver skips it; it is not an error."),
    "max": ("maximum-payload", "A `len` equal to the maximum is acceptable."),
    "too_large": ("maximum-payload", "A `len` above the maximum is a fatal stream error of class `frame_too_large`. A receiver decides this as soon as it has the five header bytes, before reading any of the payload."),
    "too_large_all": ("maximum-payload", "The check applies to every frame, whatever its channel (§10, note N-4)."),
    "no_resync": ("maximum-payload", "The error is fatal because once a header cannot be trusted, the receiver no longer knows where the next frame begins: the stream cannot be resynchronised."),
    "truncated": ("end-of-stream", "A stream that ends inside a frame, whether inside the 5-byte header or inside the payload, is a fatal stream error of class `truncated_stream`."),
    "truncated_skipped": ("end-of-stream", "A stream that ends inside a frame, whether inside the 5-byte header or inside the payload, is a fatal stream error of class `truncated_stream`. This holds for frames that would have been skipped as well."),
    "split": ("reads-and-writes", "A reader MUST accept any split of the stream, down to one byte per read. … Whatever the split, a reader MUST deliver exactly the frames, and reach exactly the same end (clean, `truncated_stream` or `frame_too_large`), as it would if it had received the whole stream in a single read."),
    "wouldblock": ("reads-and-writes", "A reader on a non-blocking descriptor MUST keep the partial state of a frame (header bytes, payload bytes so far) across `EAGAIN` / `EWOULDBLOCK` (`WouldBlock`) and continue where it stopped."),
    "nonfatal": ("payload-decode-failures", "A payload that fails to decode (§5) is a non-fatal error. The header has already told the receiver where the frame ends, so the stream stays synchronised: the receiver drops that one message and goes on with the next frame."),
    "fatal_exit": ("exit-status", "Table row: Fatal stream error: `frame_too_large` or `truncated_stream` (§5.3) | write a message to stderr, exit | 2"),
    "clean_exit": ("exit-status", "Table row: The command stream ends on a frame boundary (§3.5) | flush all output, exit | 0"),
    "decode_drop": ("exit-status", "Table row: A command fails to decode (§5.1) | write a message to stderr, drop that command, continue"),
    "nodrop": ("flow-control", "The worker MUST NOT drop an output frame."),
    "owed": ("output-before-fatal-error", "Before it exits with status 2 after a fatal stream error, the worker MUST write every output frame caused by the commands that arrived complete before the point of the error, in the order §6.10 requires."),
    "prompt": ("output-promptness", "A worker MUST write every output frame caused by the commands it has processed before it waits for another command: before any read of the command stream that can block, all of those frames have been written to the output stream (handed to the operating system, not kept in a buffer of the worker's own)."),
    "oversize_out": ("oversize-output", "A worker MUST NOT write an output frame whose payload is longer than the maximum payload size: it leaves that one frame out, writes a message to stderr (naming the connection and the sub_id is useful), and goes on. Every other frame of the same command is written as usual, and so is a frame whose payload is exactly the maximum."),
    "closed_bytes": ("closed-message", "The `data` of the frame sent for a failed Add is exactly the concatenation of: … the JSON string of the command's `sub_id`, written by §6.7.4; it is always the command's `sub_id`, even when the REQ's second element is missing or different; … with no other whitespace anywhere."),
    "json_text": ("json-text", "`data` MUST be one JSON text (RFC 8259) encoded in UTF-8, with nothing before or after it but JSON whitespace (space, tab, line feed, carriage return). `data` is not JSON, so a REQ fails with `invalid` (§6.4.4) and an event is invalid (§6.7.1), when: … it starts with a byte-order mark (`ef bb bf`) … any byte sequence in it is not valid UTF-8 … any `\\u` escape in it names a surrogate (U+D800–U+DFFF) that is not part of a pair"),
    "pair_ok": ("json-text", "`\\ud83e\\udd80` is one code point (🦀) and is fine"),
    "decoded": ("decoded-strings", "Every JSON string in `data` is used after its escapes are decoded, as a sequence of code points, without Unicode normalisation. This holds for object keys (`\"kind\\u0073\"` is the key `kinds`, `\"\\u0023t\"` is `#t`), for the literals `\"REQ\"` and `\"EVENT\"`, for the REQ's sub_id (§10, note N-15), for tag names and tag values, for `ids`, `authors`, `#e` and `#p` values, and for the event's `id`, `pubkey` and `sig`. The hex rules apply to the decoded string"),
    "integers": ("integers", "A field whose type is an integer (`kinds` values and `kind`) or a non-negative integer (`since`, `until`, `limit`, `created_at`) takes a JSON number written with digits only: no minus sign, no fraction part, no exponent. … A number that is not an integer, or is outside its range, is a wrong type: a REQ fails with `invalid` and an event is invalid."),
    "int_range": ("integers", "Table row: `since`, `until`, `limit`, `created_at` | 0 to 18,446,744,073,709,551,615 (2^64 − 1)"),
    "int_exact": ("integers", "`since <= created_at` and `created_at <= until` compare the exact integer values. A worker MUST NOT round them through binary floating point: `since` 9007199254740993 (2^53 + 1) does not match `created_at` 9007199254740992."),
    "depth_must": ("implementation-limits", "Every worker MUST accept an Add or a Bcast whose `data` has depth 64 or less."),
    "depth_may": ("implementation-limits", "A worker MAY refuse `data` of depth 65 or more, even when the deep part is the value of a key it otherwise ignores (a filter key, §6.4.2, or an extra member of the event, §6.7.1); it then treats `data` as not JSON: the REQ fails with `invalid` and the event is invalid."),
    "dup_may": ("implementation-limits", "When one filter object, or the event object, has the same key (compared decoded, §6.13.2) more than once, a worker MAY refuse the message: the REQ fails with `invalid`, the event is invalid."),
    "dup_last": ("implementation-limits", "A worker that does not refuse MUST use the last occurrence and ignore the earlier ones, as if they were absent. Either way an earlier occurrence never takes effect: an event with `\"kind\":1` followed by `\"kind\":7` is never delivered to a subscription whose only filter is `{\"kinds\":[1]}` (it is refused, or it is of kind 7), and the filter `{\"kinds\":[1],\"kinds\":\"x\"}` always fails with `invalid` (refused, or `kinds` is not an array)."),
    "json_encoding": ("json-text", "`data` is not JSON, so a REQ fails with `invalid` (§6.4.4) and an event is invalid (§6.7.1), when: … it is the same text encoded in UTF-16 or UTF-32, with or without a byte-order mark"),
    "json_extension": ("json-text", "`data` is not JSON, so a REQ fails with `invalid` (§6.4.4) and an event is invalid (§6.7.1), when: … it holds something that is not a JSON value, although some parsers accept it as an extension: `NaN`, `Infinity`, `-Infinity`, a string in single quotes, a comment, a trailing comma"),
    "json_whitespace": ("json-text", "`data` MUST be one JSON text (RFC 8259) encoded in UTF-8, with nothing before or after it but JSON whitespace (space, tab, line feed, carriage return). `data` is not JSON, so a REQ fails with `invalid` (§6.4.4) and an event is invalid (§6.7.1), when: … it has whitespace other than those four characters before, after or between its tokens: a form feed (U+000C), a vertical tab (U+000B), a no-break space (U+00A0), a line separator (U+2028)"),
    "json_control": ("json-text", "`data` is not JSON, so a REQ fails with `invalid` (§6.4.4) and an event is invalid (§6.7.1), when: … a string in it holds a raw control character, U+0000 to U+001F, which JSON allows only as an escape (`\\t`, `\\u0001`)."),
    "json_raw_ok": ("json-text", "U+007F and every character from U+0080 on may appear raw."),
    "numbers_unread": ("json-text", "Everywhere else, in the value of a key that a filter ignores (§6.4.2) or of an extra member of the event (§6.7.1), at any depth inside them, a number's value is never read, so it MUST NOT make `data` not JSON or cause any other failure: `1e400`, `-1e-400` and an integer of 5,000 digits are as acceptable there as `1`, although none of them fits in a 64-bit float."),
    "numbers_read": ("integers", "A number that is not an integer, or is outside its range, is a wrong type: a REQ fails with `invalid` and an event is invalid. (So `1e400` or an integer of 5,000 digits in one of these fields is a wrong type; in a value the worker does not read it is no failure at all, §6.13.1.)"),
    "counts": ("implementation-limits", "There is no limit on the number of filters in a REQ, of values in a list, of tags in an event or of elements in a tag, or on the length of a string, other than the maximum payload size (§3.4). A worker MUST accept every REQ and every event that fits in a payload."),
    # (PROTOCOL.md#payloads) payloads
    "conn_range": ("operations", "`conn ≥ 0` allows 0 to 2,147,483,647; `conn ≥ −1` additionally allows −1. … A payload that breaks any rule of this table fails to decode."),
    "auth_len": ("operations", "Table row: 5 | Auth | ≥ 0 | none | empty | exactly 32 bytes: a binary pubkey … A payload that breaks any rule of this table fails to decode."),
    "reserved": ("flags", "A receiver MUST accept a SubCommand whose reserved bits are set: it is not a decode error. The receiver MUST ignore those bits; the command behaves exactly as if they were 0."),
    "sender": ("bcast-conn", "The value does not change delivery: the publishing connection is treated like every other connection and receives the event if one of its subscriptions matches (§6.7)."),
    # (PROTOCOL.md#worker-semantics) worker semantics
    "scope": ("worker-state", "Sub_ids are scoped to their connection: two connections can each have a subscription called `sub1`, and they are unrelated (§10, note N-12)."),
    "new": ("worker-new", "New creates the connection `conn` with `whitelisted` set from flag bit 0, no authenticated pubkeys and no subscriptions."),
    "new_nothing": ("worker-new", "New sends nothing."),
    "reset": ("worker-new", "If a connection with that `conn` already exists (the parent reused a file descriptor number), the worker MUST reset it: all of its subscriptions and all of its authenticated pubkeys are dropped, and `whitelisted` takes the value carried by this New (§10, note N-13)."),
    "close": ("worker-close", "Close removes the connection `conn` together with all of its subscriptions and authenticated pubkeys."),
    "close_unknown": ("worker-close", "If no such connection exists, Close does nothing. Close sends nothing."),
    "close_nothing": ("worker-close", "Close sends nothing."),
    "add_unknown": ("add-unknown-connection", "If `conn` does not name an existing connection, the worker MUST ignore the command and send nothing, whatever `data` contains (§10, note N-14)."),
    "ignored_keys": ("req-parsing", "Any other key (`search`, or anything unknown) MUST be ignored: it neither causes a failure nor restricts matching."),
    "req_shape": ("req-parsing", "a JSON array whose first element is the string `\"REQ\"`, whose second element is a string equal to the command's `sub_id` (§10, note N-15), and whose remaining elements, at least one, are filter objects."),
    "req_types": ("req-parsing", "Table row: `kinds` | array of integers, each in 0–65535"),
    "req_letter": ("req-parsing", "Table row: `#<letter>`, where `<letter>` is exactly one ASCII letter (`a`–`z`, `A`–`Z`) | array of strings"),
    "req_ep": ("req-parsing", "Table row: `#e`, `#p` | array of strings, each 64 characters of lowercase hex"),
    "add_ok": ("add-success", "If parsing succeeds, the worker creates the subscription `sub_id` on that connection with the parsed filters."),
    "add_nothing": ("add-success", "A successful Add sends nothing."),
    "replace": ("add-success", "If the connection already has a subscription with the same sub_id, the new one replaces it, as NIP-01 prescribes."),
    "fail": ("add-failure", "If parsing fails, the worker MUST: … send one output frame to `conn` whose `data` is a NIP-01 `CLOSED` message for the command's `sub_id` … remove the existing subscription with that sub_id on that connection, if there is one."),
    "prefix_both": ("add-failure", "When one REQ has failures of both kinds, the prefix MUST be `invalid`: `unsupported` is sent only when every failure of the REQ is a `#` key whose name is not one ASCII letter. This holds whatever the order of the keys, of the filters and of the failures in the text, and also when the text stops being JSON after such a key (a REQ cut short, for example)."),
    "prefix_value": ("add-failure", "The value of a key whose name is not one ASCII letter is not checked, since the table's `#<letter>` rows are about letter keys only: `{\"#foo\":1}` fails with `unsupported` (§10, note N-19)."),
    "esc_writers": ("sub-id-json-string", "hex digits are lowercase (U+001B is `\\u001b`, never `\\u001B`), and `<`, `>`, `&`, U+007F, U+2028 and U+2029 are written raw, never as `\\u003c`, `\\u003e`, `\\u0026`, `\\u007f`, `\\u2028` or `\\u2029` … The same writer, with the same table, writes the sub_id and the reason of a CLOSED message (§6.4.5)."),
    "remove": ("worker-remove", "Remove deletes the subscription `sub_id` of connection `conn`."),
    "remove_unknown": ("worker-remove", "If the connection or the subscription does not exist, Remove does nothing. Remove never sends anything."),
    "auth": ("worker-auth", "Auth adds the 32-byte pubkey in `data` to the connection's set of authenticated pubkeys."),
    "auth_several": ("worker-auth", "NIP-42 lets one connection authenticate as several pubkeys, so earlier pubkeys stay in the set."),
    "auth_at_once": ("worker-auth", "The change takes effect at once: every later Bcast, including deliveries to subscriptions created before the Auth, sees the new set."),
    "auth_unknown": ("worker-auth", "If `conn` does not name an existing connection, Auth is ignored. Auth sends nothing."),
    "auth_nothing": ("worker-auth", "Auth sends nothing."),
    "extra_members": ("bcast-event", "The event object MAY have members other than these seven (compared decoded, §6.13.2). A worker MUST ignore them, whatever their names and values: they do not make the event invalid, they take no part in matching (§6.8) or in the access rules (§6.9), and they reach the client inside the event's bytes like the rest of the object (§6.7.3)."),
    "no_verify": ("bcast-event", "The worker does not verify `id` or `sig`; the parent has already done so before sending the Bcast."),
    "event_invalid": ("bcast-event", "If `data` is not such a message, the event is invalid: the worker MUST deliver nothing for this command, writes a message to stderr, and goes on with the next command."),
    "event_shape": ("bcast-event", "The worker parses `data` as a NIP-01 event message, `[\"EVENT\", <event>]` (§10, note N-20), where `<event>` is a JSON object with these fields:"),
    "delivery": ("bcast-delivery", "For each subscription whose filters match the event (§6.8) on a connection that the access rules allow (§6.9), the worker MUST send exactly one output frame to that connection. Two matching subscriptions on the same connection therefore yield two frames."),
    "sender_incl": ("bcast-delivery", "For a valid event, the worker considers every connection, the sender's included (§4.5), and on each connection every subscription."),
    "output": ("output-frame", "with no other whitespace. The event is never re-serialised: its keys, their order, its whitespace and its escapes reach the client exactly as the publisher wrote them."),
    "output_bytes": ("output-frame", "the bytes of the event object exactly as they appear in the command's `data` (§10, note N-21)"),
    "esc_nothing_else": ("sub-id-json-string", "Nothing else is escaped: `/`, U+007F and all non-ASCII characters are written as their raw UTF-8 bytes."),
    "match_any": ("filter-matching", "A subscription matches an event if any of its filters matches (OR across filters)."),
    "match_and": ("filter-matching", "A filter matches if every field present in it holds (AND across fields). Inside a list, one value has to match (OR within a list)."),
    "ids": ("filter-matching", "`ids`: some value is exactly equal, as a string, to the event's `id`."),
    "authors": ("filter-matching", "`authors`: some value is exactly equal, as a string, to the event's `pubkey`."),
    "kinds": ("filter-matching", "`kinds`: some value is equal to the event's `kind`."),
    "bounds": ("filter-matching", "`since`: `since <= created_at`. `until`: `created_at <= until`. Both bounds are inclusive."),
    "tag": ("filter-matching", "`#x`, for a single letter `x`: the event has some tag `t` with `t[0] == \"x\"` and `t[1]` equal to some value in the list."),
    "tag_t1": ("filter-matching", "Only `t[1]` is examined; later elements of the tag are not. A tag with fewer than two elements cannot satisfy this condition."),
    "empty": ("filter-matching", "An empty list (`\"ids\": []`, `\"kinds\": []`, `\"#t\": []`, ...) matches nothing, so a filter containing one never matches. … Such a list is still well-typed, so it does not make the Add fail (§10, note N-22)."),
    "limit": ("filter-matching", "`limit` is ignored: it concerns stored events, not live delivery."),
    "vacuous": ("filter-matching", "Keys ignored by §6.4.2 take no part in matching. As a consequence of the AND rule, a filter with no constraining key, such as `{}`, matches every event."),
    "rule1": ("access-rules", "The rule applies to an event when all of these hold: … `need_filter` is set in the Bcast, … the event's kind is in PRIVILEGED, and … it is not the case that `marmot_open` is set and the kind is in MARMOT_OPEN. … When it applies, the event may be delivered only to a connection that is whitelisted, or that has an authenticated pubkey equal to the event's `pubkey`, or that has an authenticated pubkey equal to the value of one of the event's `p` tags (§10, note N-23)."),
    "rule2": ("access-rules", "The rule applies to an event when `nip70_enforce` is set in the Bcast and the event has a tag whose first element is `\"-\"` (a NIP-70 protected event). When it applies, the event may be delivered only to a connection that is whitelisted or has at least one authenticated pubkey."),
    "both": ("access-rules", "Both rules can apply to the same event. A connection receives the event only if it passes every rule that applies. When neither applies, the access rules allow every connection."),
    "neither": ("access-rules", "When neither applies, the access rules allow every connection."),
    "order_in": ("ordering", "The worker MUST process commands strictly in the order received."),
    "order_out": ("ordering", "Every output frame caused by command N MUST be written before any output frame caused by command N + 1. Only Add (its CLOSED message) and Bcast cause output."),
}


def FAIL_ROW(row, prefix="invalid"):
    """Requirement of a failed Add: the general rule plus one table row."""
    return ("add-failure", Q["fail"][1] + " … Table row: " + row + " | `" + prefix + "`")


def mk(cid, q, comment, steps, events=None, level="MUST"):
    """A case. q: a key of Q, a tuple of keys (the first gives `spec`), or an
    (anchor, requirement) pair built by FAIL_ROW. level: MUST, or MAY for a
    permitted behaviour (docs/VECTORS.md). `comment` goes through cite()."""
    if isinstance(q, tuple) and len(q) == 2 and q[1] not in Q:
        anchor, requirement = q
    else:
        keys = (q,) if isinstance(q, str) else q
        anchor = Q[keys[0]][0]
        requirement = " … ".join(Q[k][1] for k in keys)
    c = {"id": cid, "level": level, "spec": sec(anchor), "requirement": requirement,
         "comment": cite(comment)}
    if events:
        c["events"] = events
    c["steps"] = steps
    return c


# ===========================================================================
# lifecycle: New, Close, reset by New, fd reuse
# ===========================================================================

def lifecycle():
    events = {
        "n1": ev("lifecycle-n1"),
        "n2": ev("lifecycle-n2"),
        "n3": ev("lifecycle-n3"),
        # kind 4 by ALICE to BOB: privileged, used with need_filter
        "dm1": ev("lifecycle-dm1", kind=4, tags=[["p", BOB]]),
        "dm2": ev("lifecycle-dm2", kind=4, tags=[["p", BOB]]),
        # kind 4 by CAROL to DAVE: only a whitelisted conn passes rule 1 here
        "dmc1": ev("lifecycle-dmc1", kind=4, pubkey=CAROL, tags=[["p", DAVE]]),
        "dmc2": ev("lifecycle-dmc2", kind=4, pubkey=CAROL, tags=[["p", DAVE]]),
    }
    cases = [
        mk("lifecycle/new/sends-nothing", "new_nothing",
           "New on fresh conns, with and without the whitelisted flag, writes no frame.",
           [step([new(1), new(2, flags=1), new(3)], NOTHING)]),
        mk("lifecycle/new/creates-connection", ("new", "add_ok"),
           "After New, an Add on that conn creates a subscription that receives events.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("n1")], [E(1, "s", "n1")])]),
        mk("lifecycle/new/no-subscriptions", "new",
           "A fresh connection has no subscriptions: a Bcast reaches nobody.",
           [step([new(1), new(2, flags=1)], NOTHING),
            step([bcast("n1")], NOTHING)]),
        mk("lifecycle/new/conn-zero", "new",
           "conn 0 is a valid connection (fd 0).",
           [step([new(0), add(0, "s", {"kinds": [1]})], NOTHING),
            step([bcast("n1")], [E(0, "s", "n1")])]),
        mk("lifecycle/new/conn-large", "new",
           "conn 2147483646 (one below the probe conn) is an ordinary connection.",
           [step([new(2147483646), add(2147483646, "s", {"kinds": [1]})], NOTHING),
            step([bcast("n1")], [E(2147483646, "s", "n1")])]),
        mk("lifecycle/reset/drops-subscriptions", ("reset", "new_nothing"),
           "New on an existing conn drops its subscription; the reset itself sends nothing.",
           [step([new(1), add(1, "s", {"kinds": [1]})], NOTHING),
            step([bcast("n1")], [E(1, "s", "n1")]),
            step([new(1)], NOTHING),
            step([bcast("n2")], NOTHING)]),
        mk("lifecycle/reset/drops-all-subscriptions", "reset",
           "All three subscriptions of the conn are gone after New on it.",
           [step([new(1), add(1, "a", {}), add(1, "b", {"kinds": [1]}), add(1, "c", {"authors": [ALICE]})], NOTHING),
            step([new(1)], NOTHING),
            step([bcast("n1")], NOTHING)]),
        mk("lifecycle/reset/drops-auth", "reset",
           "New on an existing conn drops its authenticated pubkeys: a DM by ALICE is no longer delivered.",
           [step([new(1), auth(1, ALICE), add(1, "s", {"kinds": [4]})], NOTHING),
            step([bcast("dm1", flags=0x01)], [E(1, "s", "dm1")]),
            step([new(1), add(1, "s", {"kinds": [4]})], NOTHING),
            step([bcast("dm2", flags=0x01)], NOTHING)]),
        mk("lifecycle/reset/clears-whitelisted", "reset",
           "A whitelisted conn reset by a New without flag bit 0 is no longer whitelisted.",
           [step([new(1, flags=0x01), add(1, "s", {})], NOTHING),
            step([bcast("dmc1", flags=0x01)], [E(1, "s", "dmc1")]),
            step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("dmc2", flags=0x01)], NOTHING)]),
        mk("lifecycle/reset/sets-whitelisted", "reset",
           "A plain conn reset by a New with flag bit 0 becomes whitelisted.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("dmc1", flags=0x01)], NOTHING),
            step([new(1, flags=0x01), add(1, "s", {})], NOTHING),
            step([bcast("dmc2", flags=0x01)], [E(1, "s", "dmc2")])]),
        mk("lifecycle/reset/usable-after", ("reset", "add_ok"),
           "After a reset, a new Add on the conn works; the old subscription does not come back.",
           [step([new(1), add(1, "old", {"kinds": [1]})], NOTHING),
            step([new(1), add(1, "new", {"kinds": [1]})], NOTHING),
            step([bcast("n1")], [E(1, "new", "n1")])]),
        mk("lifecycle/reset/other-conns-untouched", ("reset", "scope"),
           "Resetting conn 1 leaves conn 2's subscription with the same sub_id alone.",
           [step([new(1), new(2), add(1, "s", {}), add(2, "s", {})], NOTHING),
            step([new(1)], NOTHING),
            step([bcast("n1")], [E(2, "s", "n1")])]),
        mk("lifecycle/close/removes-subscriptions", "close",
           "After Close, the conn's subscriptions receive nothing.",
           [step([new(1), add(1, "a", {}), add(1, "b", {"kinds": [1]})], NOTHING),
            step([close(1)], NOTHING),
            step([bcast("n1")], NOTHING)]),
        mk("lifecycle/close/sends-nothing", "close_nothing",
           "Close of a conn with subscriptions writes no frame.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([close(1)], NOTHING)]),
        mk("lifecycle/close/unknown-conn-noop", "close_unknown",
           "Close of a conn never opened does nothing; other conns keep working.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([close(9)], NOTHING),
            step([bcast("n1")], [E(1, "s", "n1")])]),
        mk("lifecycle/close/twice-noop", "close_unknown",
           "A second Close of the same conn is a no-op.",
           [step([new(1), add(1, "s", {}), new(2), add(2, "s", {})], NOTHING),
            step([close(1), close(1)], NOTHING),
            step([bcast("n1")], [E(2, "s", "n1")])]),
        mk("lifecycle/close/other-conns-untouched", ("close", "scope"),
           "Closing conn 1 leaves conn 2 (same sub_id) untouched.",
           [step([new(1), new(2), add(1, "s", {}), add(2, "s", {})], NOTHING),
            step([close(1)], NOTHING),
            step([bcast("n1")], [E(2, "s", "n1")])]),
        mk("lifecycle/close/add-after-close-ignored", ("close", "add_unknown"),
           "After Close the conn is unknown: an Add with an invalid REQ on it sends no CLOSED, a valid one creates nothing.",
           [step([new(1), close(1)], NOTHING),
            step([add_raw(1, "s", "not json")], NOTHING),
            step([add(1, "t", {})], NOTHING),
            step([bcast("n1")], NOTHING)]),
        mk("lifecycle/close/auth-after-close-ignored", ("close", "auth_unknown"),
           "An Auth on a closed conn is ignored: it is not remembered when the conn is opened again.",
           [step([new(1), close(1), auth(1, ALICE)], NOTHING),
            step([new(1), add(1, "s", {"kinds": [4]})], NOTHING),
            step([bcast("dm1", flags=0x01)], NOTHING)]),
        mk("lifecycle/close/remove-after-close-noop", ("close", "remove_unknown"),
           "Remove on a closed conn does nothing and sends nothing.",
           [step([new(1), add(1, "s", {}), close(1)], NOTHING),
            step([remove(1, "s")], NOTHING),
            step([bcast("n1")], NOTHING)]),
        mk("lifecycle/reuse/close-then-new", ("close", "new"),
           "fd reuse after Close: the new connection starts without the old subscriptions and auth.",
           [step([new(1, flags=0x01), auth(1, ALICE), add(1, "s", {})], NOTHING),
            step([close(1), new(1)], NOTHING),
            step([bcast("n1")], NOTHING),
            step([add(1, "s", {"kinds": [4]})], NOTHING),
            step([bcast("dm1", flags=0x01)], NOTHING),
            step([add(1, "k", {"kinds": [1]})], NOTHING),
            step([bcast("n3")], [E(1, "k", "n3")])]),
    ]
    return "Connection lifecycle: New, Close, reset and fd reuse (PROTOCOL {worker-new}, {worker-close})", events, cases


# ===========================================================================
# subscribe: Add success, replace, Remove, unknown conns, scoping
# ===========================================================================

def subscribe():
    events = {
        "k1": ev("subscribe-k1"),
        "k1b": ev("subscribe-k1b"),
        "k1c": ev("subscribe-k1c"),
        "k7": ev("subscribe-k7", kind=7),
    }
    sid64 = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
    assert len(sid64.encode()) == 64
    many = ["m%02d" % i for i in range(20)]
    cases = [
        mk("subscribe/add/creates", ("add_ok", "add_nothing"),
           "A valid Add sends nothing and creates a subscription that receives matching events.",
           [step([new(1), add(1, "s", {"kinds": [1]})], NOTHING),
            step([bcast("k1")], [E(1, "s", "k1")])]),
        mk("subscribe/add/non-matching-not-delivered", "add_ok",
           "The created subscription does not receive an event its filter does not match.",
           [step([new(1), add(1, "s", {"kinds": [1]})], NOTHING),
            step([bcast("k7")], NOTHING)]),
        mk("subscribe/add/sub-id-1-byte", "add_ok",
           "A 1-byte sub_id works.",
           [step([new(1), add(1, "x", {})], NOTHING),
            step([bcast("k1")], [E(1, "x", "k1")])]),
        mk("subscribe/add/sub-id-64-bytes", "add_ok",
           "A 64-byte sub_id (the maximum) works.",
           [step([new(1), add(1, sid64, {})], NOTHING),
            step([bcast("k1")], [E(1, sid64, "k1")])]),
        mk("subscribe/replace/new-filter-applies", "replace",
           "A second Add with the same sub_id replaces the first: kind 1 is no longer matched, kind 7 is.",
           [step([new(1), add(1, "s", {"kinds": [1]})], NOTHING),
            step([add(1, "s", {"kinds": [7]})], NOTHING),
            step([bcast("k1")], NOTHING),
            step([bcast("k7")], [E(1, "s", "k7")])]),
        mk("subscribe/replace/one-frame", "replace",
           "Adding the same sub_id twice leaves one subscription: one frame, not two.",
           [step([new(1), add(1, "s", {}), add(1, "s", {})], NOTHING),
            step([bcast("k1")], [E(1, "s", "k1")])]),
        mk("subscribe/replace/all-filters-replaced", "replace",
           "Replacing a two-filter subscription with a one-filter one drops both old filters.",
           [step([new(1), add(1, "s", {"kinds": [1]}, {"kinds": [7]}), add(1, "s", {"kinds": [3]})], NOTHING),
            step([bcast("k1")], NOTHING),
            step([bcast("k7")], NOTHING)]),
        mk("subscribe/replace/other-subs-untouched", "replace",
           "Replacing sub a does not touch sub b on the same conn.",
           [step([new(1), add(1, "a", {"kinds": [1]}), add(1, "b", {"kinds": [1]})], NOTHING),
            step([add(1, "a", {"kinds": [7]})], NOTHING),
            step([bcast("k1")], [E(1, "b", "k1")])]),
        mk("subscribe/remove/deletes", ("remove", "remove_unknown"),
           "Remove sends nothing and the subscription receives nothing afterwards.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([remove(1, "s")], NOTHING),
            step([bcast("k1")], NOTHING)]),
        mk("subscribe/remove/only-named-sub", "remove",
           "Remove of sub a leaves sub b on the same conn.",
           [step([new(1), add(1, "a", {}), add(1, "b", {})], NOTHING),
            step([remove(1, "a")], NOTHING),
            step([bcast("k1")], [E(1, "b", "k1")])]),
        mk("subscribe/remove/unknown-sub-noop", "remove_unknown",
           "Remove of a sub_id the conn does not have does nothing.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([remove(1, "nope")], NOTHING),
            step([bcast("k1")], [E(1, "s", "k1")])]),
        mk("subscribe/remove/unknown-conn-noop", "remove_unknown",
           "Remove on a conn never opened does nothing; the worker goes on.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([remove(9, "s")], NOTHING),
            step([bcast("k1")], [E(1, "s", "k1")])]),
        mk("subscribe/remove/twice-noop", "remove_unknown",
           "A second Remove of the same sub_id is a no-op.",
           [step([new(1), add(1, "s", {}), add(1, "t", {})], NOTHING),
            step([remove(1, "s"), remove(1, "s")], NOTHING),
            step([bcast("k1")], [E(1, "t", "k1")])]),
        mk("subscribe/remove/then-add-again", ("remove", "add_ok"),
           "A sub_id removed and added again receives events again.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([remove(1, "s")], NOTHING),
            step([add(1, "s", {"kinds": [1]})], NOTHING),
            step([bcast("k1")], [E(1, "s", "k1")])]),
        mk("subscribe/unknown-conn/add-ignored", "add_unknown",
           "An Add on a conn never opened sends nothing and creates nothing, even once the conn is opened.",
           [step([add(9, "s", {})], NOTHING),
            step([bcast("k1")], NOTHING),
            step([new(9)], NOTHING),
            step([bcast("k1b")], NOTHING)]),
        mk("subscribe/unknown-conn/invalid-req-no-closed", "add_unknown",
           "An Add with an invalid REQ on an unknown conn is ignored: no CLOSED is sent ({notes} N-14).",
           [step([add_raw(9, "s", "not json")], NOTHING),
            step([add_raw(9, "t", '["REQ","t",{"#foo":["x"]}]')], NOTHING)]),
        mk("subscribe/unknown-conn/other-conns-unaffected", "add_unknown",
           "An Add on an unknown conn does not create a subscription on any other conn.",
           [step([new(1), add(1, "s", {"kinds": [7]})], NOTHING),
            step([add(9, "s", {"kinds": [1]})], NOTHING),
            step([bcast("k1")], NOTHING)]),
        mk("subscribe/multiple/both-match", "delivery",
           "Two matching subscriptions on one conn: two frames, one per sub_id.",
           [step([new(1), add(1, "a", {"kinds": [1]}), add(1, "b", {})], NOTHING),
            step([bcast("k1")], [E(1, "a", "k1"), E(1, "b", "k1")])]),
        mk("subscribe/multiple/only-matching", "delivery",
           "Of two subscriptions on one conn, only the one whose filter matches gets a frame.",
           [step([new(1), add(1, "a", {"kinds": [1]}), add(1, "b", {"kinds": [7]})], NOTHING),
            step([bcast("k1")], [E(1, "a", "k1")]),
            step([bcast("k7")], [E(1, "b", "k7")])]),
        mk("subscribe/multiple/twenty-subs", "delivery",
           "Twenty subscriptions with {} on one conn: twenty frames.",
           [step([new(1)] + [add(1, m, {}) for m in many], NOTHING),
            step([bcast("k1")], [E(1, m, "k1") for m in many])]),
        mk("subscribe/scope/same-sub-id-different-conns", "scope",
           "sub_id s on conn 1 (kinds 1) and on conn 2 (kinds 7) are independent.",
           [step([new(1), new(2), add(1, "s", {"kinds": [1]}), add(2, "s", {"kinds": [7]})], NOTHING),
            step([bcast("k1")], [E(1, "s", "k1")]),
            step([bcast("k7")], [E(2, "s", "k7")])]),
        mk("subscribe/scope/replace-on-one-conn", ("scope", "replace"),
           "Replacing s on conn 1 does not replace s on conn 2.",
           [step([new(1), new(2), add(1, "s", {"kinds": [1]}), add(2, "s", {"kinds": [1]})], NOTHING),
            step([add(1, "s", {"kinds": [7]})], NOTHING),
            step([bcast("k1")], [E(2, "s", "k1")])]),
        mk("subscribe/scope/remove-on-one-conn", ("scope", "remove"),
           "Removing s on conn 1 leaves s on conn 2.",
           [step([new(1), new(2), add(1, "s", {}), add(2, "s", {})], NOTHING),
            step([remove(1, "s")], NOTHING),
            step([bcast("k1")], [E(2, "s", "k1")])]),
        mk("subscribe/scope/failed-add-on-one-conn", ("scope", "fail"),
           "A failed Add of s on conn 1 removes s on conn 1 only; CLOSED goes to conn 1 only.",
           [step([new(1), new(2), add(1, "s", {}), add(2, "s", {})], NOTHING),
            step([add_raw(1, "s", '["REQ","s",{"kinds":"1"}]')], [CL(1, "s", "invalid")]),
            step([bcast("k1")], [E(2, "s", "k1")])]),
    ]
    return "Subscriptions: Add, replace, Remove, unknown conns, scoping (PROTOCOL {worker-state}, {worker-add}, {worker-remove})", events, cases


# ===========================================================================
# req: REQ parsing, every CLOSED failure, ignored keys
# ===========================================================================

HEX_UP = ALICE.upper()
HEX_63 = ALICE[:63]
HEX_65 = ALICE + "0"
HEX_G = ALICE[:63] + "g"
HEX_MIXED = ALICE[:10] + ALICE[10:].upper()  # some letters upper case


def req():
    events = {
        "k1": ev("req-k1"),
        "k7": ev("req-k7", kind=7),
        "k65535": ev("req-k65535", kind=65535),
    }

    def fail(cid, row, text, comment, prefix="invalid"):
        """s (kinds 1) and keep (kinds 1) exist; a bad Add for s gives CLOSED
        with `prefix` and removes s; keep still receives kind 1."""
        return mk(cid, FAIL_ROW(row, prefix), comment,
                  [step([new(1), add(1, "s", {"kinds": [1]}), add(1, "keep", {"kinds": [1]})], NOTHING),
                   step([add_raw(1, "s", text)], [CL(1, "s", prefix)]),
                   step([bcast("k1")], [E(1, "keep", "k1")])])

    def fail_hex(cid, row, data_hex, comment):
        return mk(cid, FAIL_ROW(row), comment,
                  [step([new(1), add(1, "s", {"kinds": [1]}), add(1, "keep", {"kinds": [1]})], NOTHING),
                   step([add_hex(1, "s", data_hex)], [CL(1, "s", "invalid")]),
                   step([bcast("k1")], [E(1, "keep", "k1")])])

    def ok(cid, q, text, comment, checks):
        """A REQ that must parse: no CLOSED; then each (event, expected)."""
        return mk(cid, q, comment,
                  [step([new(1), add_raw(1, "s", text)], NOTHING)]
                  + [step([bcast(name)], exp) for name, exp in checks])

    R_JSON = "`data` is not JSON"
    R_ARR = "the JSON value is not an array"
    R_REQ = "the first element is not the string `\"REQ\"`"
    R_SID = "the second element is not a string, or is not equal to the command's `sub_id`"
    R_NOF = "there is no filter (the array has fewer than three elements)"
    R_OBJ = "a filter is not a JSON object"
    R_HEX = "`ids` or `authors` is not an array of 64-character lowercase hex strings"
    R_KIND = "`kinds` is not an array of integers in 0–65535"
    R_INT = "`since`, `until` or `limit` is not a non-negative integer"
    R_TAG = "a `#<letter>` value is not an array of strings"
    R_EP = "a `#e` or `#p` value contains a string that is not 64-character lowercase hex"
    R_UNS = "a key starts with `#` but its name is not exactly one ASCII letter (for example `#foo`, or `#` alone)"

    a = ALICE
    cases = [
        # ---- not JSON -------------------------------------------------------
        fail("req/json/not-json", R_JSON, "not json", "Plain text is not JSON."),
        fail("req/json/truncated", R_JSON, '["REQ","s",{"kinds":[1]}', "A REQ cut before its closing bracket is not JSON."),
        fail("req/json/whitespace-only", R_JSON, " ", "A single space is not a JSON text."),
        fail("req/json/trailing-garbage", R_JSON, '["REQ","s",{}]x', "A JSON value followed by a stray character is not a JSON text (RFC 8259)."),
        fail("req/json/single-quotes", R_JSON, "['REQ','s',{}]", "Single-quoted strings are not JSON."),
        fail_hex("req/json/not-utf8", R_JSON, "fffe", "The bytes ff fe are not JSON."),
        # ---- not an array ---------------------------------------------------
        fail("req/array/object", R_ARR, '{"0":"REQ","1":"s","2":{}}', "A JSON object instead of an array."),
        fail("req/array/string", R_ARR, '"REQ"', "A JSON string instead of an array."),
        fail("req/array/number", R_ARR, "42", "A JSON number instead of an array."),
        fail("req/array/null", R_ARR, "null", "JSON null instead of an array."),
        # ---- first element --------------------------------------------------
        fail("req/first/event", R_REQ, '["EVENT","s",{}]', "First element \"EVENT\"."),
        fail("req/first/lowercase", R_REQ, '["req","s",{}]', "First element \"req\": the comparison is case-sensitive."),
        fail("req/first/number", R_REQ, '[1,"s",{}]', "First element is a number."),
        fail("req/first/empty-array", R_REQ, "[]", "An empty array has no first element."),
        fail("req/first/close", R_REQ, '["CLOSE","s"]', "A CLOSE message is not a REQ."),
        # ---- second element -------------------------------------------------
        fail("req/second/missing", R_SID, '["REQ"]', "The array has no second element."),
        fail("req/second/number", R_SID, '["REQ",1,{}]', "Second element is a number."),
        fail("req/second/null", R_SID, '["REQ",null,{}]', "Second element is null."),
        fail("req/second/object", R_SID, '["REQ",{},{}]', "Second element is an object."),
        fail("req/second/different", R_SID, '["REQ","t",{}]', "The REQ names sub t, the command sub s: CLOSED names the command's sub_id s."),
        fail("req/second/case-differs", R_SID, '["REQ","S",{}]', "The REQ's sub_id S differs in case from the command's s."),
        fail("req/second/trailing-space", R_SID, '["REQ","s ",{}]', "The REQ's sub_id has a trailing space."),
        # ---- filters --------------------------------------------------------
        fail("req/filters/none", R_NOF, '["REQ","s"]', "A REQ with no filter."),
        fail("req/filter/array", R_OBJ, '["REQ","s",[]]', "The filter is an array."),
        fail("req/filter/null", R_OBJ, '["REQ","s",null]', "The filter is null."),
        fail("req/filter/string", R_OBJ, '["REQ","s","{}"]', "The filter is a string holding JSON."),
        fail("req/filter/number", R_OBJ, '["REQ","s",1]', "The filter is a number."),
        fail("req/filter/second-not-object", R_OBJ, '["REQ","s",{"kinds":[1]},2]', "The first filter is fine, the second is a number: the whole Add fails."),
        # ---- ids / authors --------------------------------------------------
        fail("req/ids/uppercase", R_HEX, '["REQ","s",{"ids":["%s"]}]' % HEX_UP, "ids value in upper-case hex."),
        fail("req/ids/mixed-case", R_HEX, '["REQ","s",{"ids":["%s"]}]' % HEX_MIXED, "ids value with some upper-case hex letters."),
        fail("req/ids/63-chars", R_HEX, '["REQ","s",{"ids":["%s"]}]' % HEX_63, "ids value of 63 hex characters."),
        fail("req/ids/65-chars", R_HEX, '["REQ","s",{"ids":["%s"]}]' % HEX_65, "ids value of 65 hex characters."),
        fail("req/ids/non-hex-char", R_HEX, '["REQ","s",{"ids":["%s"]}]' % HEX_G, "ids value of 64 characters, the last one 'g'."),
        fail("req/ids/empty-string", R_HEX, '["REQ","s",{"ids":[""]}]', "ids value is the empty string."),
        fail("req/ids/non-string", R_HEX, '["REQ","s",{"ids":[1]}]', "ids element is a number."),
        fail("req/ids/not-array", R_HEX, '["REQ","s",{"ids":"%s"}]' % a, "ids is a string, not an array."),
        fail("req/ids/one-bad-among-good", R_HEX, '["REQ","s",{"ids":["%s","%s"]}]' % (a, HEX_UP), "One good and one upper-case ids value: the Add fails."),
        fail("req/authors/uppercase", R_HEX, '["REQ","s",{"authors":["%s"]}]' % HEX_UP, "authors value in upper-case hex."),
        fail("req/authors/63-chars", R_HEX, '["REQ","s",{"authors":["%s"]}]' % HEX_63, "authors value of 63 hex characters."),
        fail("req/authors/non-hex-char", R_HEX, '["REQ","s",{"authors":["%s"]}]' % HEX_G, "authors value of 64 characters, the last one 'g'."),
        fail("req/authors/non-string", R_HEX, '["REQ","s",{"authors":[null]}]', "authors element is null."),
        fail("req/authors/not-array", R_HEX, '["REQ","s",{"authors":{}}]', "authors is an object."),
        # ---- kinds ----------------------------------------------------------
        fail("req/kinds/string-element", R_KIND, '["REQ","s",{"kinds":["1"]}]', "kinds element is the string \"1\"."),
        fail("req/kinds/fraction", R_KIND, '["REQ","s",{"kinds":[1.5]}]', "kinds element 1.5 is not an integer."),
        fail("req/kinds/too-large", R_KIND, '["REQ","s",{"kinds":[65536]}]', "kinds element 65536 is out of range."),
        fail("req/kinds/negative", R_KIND, '["REQ","s",{"kinds":[-1]}]', "kinds element -1 is out of range."),
        fail("req/kinds/null-element", R_KIND, '["REQ","s",{"kinds":[null]}]', "kinds element is null."),
        fail("req/kinds/not-array", R_KIND, '["REQ","s",{"kinds":1}]', "kinds is a number, not an array."),
        fail("req/kinds/one-bad-among-good", R_KIND, '["REQ","s",{"kinds":[1,70000]}]', "kinds [1,70000]: one element out of range fails the Add."),
        # ---- since / until / limit -------------------------------------------
        fail("req/since/negative", R_INT, '["REQ","s",{"since":-1}]', "since -1."),
        fail("req/since/fraction", R_INT, '["REQ","s",{"since":1.5}]', "since 1.5."),
        fail("req/since/string", R_INT, '["REQ","s",{"since":"10"}]', "since \"10\" (a string)."),
        fail("req/since/null", R_INT, '["REQ","s",{"since":null}]', "since null is not an integer."),
        fail("req/until/negative", R_INT, '["REQ","s",{"until":-1}]', "until -1."),
        fail("req/until/fraction", R_INT, '["REQ","s",{"until":1.5}]', "until 1.5."),
        fail("req/until/string", R_INT, '["REQ","s",{"until":"10"}]', "until \"10\" (a string)."),
        fail("req/limit/negative", R_INT, '["REQ","s",{"limit":-1}]', "limit -1."),
        fail("req/limit/fraction", R_INT, '["REQ","s",{"limit":1.5}]', "limit 1.5."),
        fail("req/limit/string", R_INT, '["REQ","s",{"limit":"10"}]', "limit \"10\" (a string)."),
        fail("req/limit/array", R_INT, '["REQ","s",{"limit":[10]}]', "limit [10] (an array)."),
        # ---- #<letter> ----------------------------------------------------------
        fail("req/tag/not-array", R_TAG, '["REQ","s",{"#t":"x"}]', "#t is a string, not an array."),
        fail("req/tag/number-element", R_TAG, '["REQ","s",{"#t":[1]}]', "#t element is a number."),
        fail("req/tag/null-element", R_TAG, '["REQ","s",{"#t":[null]}]', "#t element is null."),
        fail("req/tag/object", R_TAG, '["REQ","s",{"#t":{"x":1}}]', "#t is an object."),
        fail("req/tag/upper-letter-not-array", R_TAG, '["REQ","s",{"#E":"x"}]', "#E is a letter key too: its value must be an array of strings."),
        fail("req/tag/array-element", R_TAG, '["REQ","s",{"#t":[["x"]]}]', "#t element is an array."),
        # ---- #e / #p ----------------------------------------------------------
        fail("req/tag-e/short", R_EP, '["REQ","s",{"#e":["abc"]}]', "#e value \"abc\" is not 64 hex characters."),
        fail("req/tag-e/uppercase", R_EP, '["REQ","s",{"#e":["%s"]}]' % HEX_UP, "#e value in upper-case hex."),
        fail("req/tag-e/one-bad-among-good", R_EP, '["REQ","s",{"#e":["%s","%s"]}]' % (a, HEX_63), "#e with one good and one 63-character value."),
        fail("req/tag-p/uppercase", R_EP, '["REQ","s",{"#p":["%s"]}]' % HEX_UP, "#p value in upper-case hex."),
        fail("req/tag-p/63-chars", R_EP, '["REQ","s",{"#p":["%s"]}]' % HEX_63, "#p value of 63 hex characters."),
        fail("req/tag-p/npub", R_EP, '["REQ","s",{"#p":["npub1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"]}]', "#p value in bech32, not hex."),
        # ---- unsupported #-keys ----------------------------------------------------
        fail("req/unsupported/multi-letter", R_UNS, '["REQ","s",{"#foo":["x"]}]', "#foo: a # key whose name has three letters.", prefix="unsupported"),
        fail("req/unsupported/two-letters", R_UNS, '["REQ","s",{"#tt":["x"]}]', "#tt: two letters.", prefix="unsupported"),
        fail("req/unsupported/hash-alone", R_UNS, '["REQ","s",{"#":["x"]}]', "The key # alone has an empty name.", prefix="unsupported"),
        fail("req/unsupported/digit", R_UNS, '["REQ","s",{"#1":["x"]}]', "#1: a digit is not an ASCII letter.", prefix="unsupported"),
        fail("req/unsupported/dash", R_UNS, '["REQ","s",{"#-":["x"]}]', "#-: punctuation is not an ASCII letter.", prefix="unsupported"),
        fail("req/unsupported/non-ascii-letter", R_UNS, '["REQ","s",{"#é":["x"]}]', "#é: a letter, but not an ASCII one.", prefix="unsupported"),
        fail("req/unsupported/letter-and-space", R_UNS, '["REQ","s",{"#t ":["x"]}]', "\"#t \": a letter followed by a space is not exactly one letter.", prefix="unsupported"),
        fail("req/unsupported/with-valid-keys", R_UNS, '["REQ","s",{"kinds":[1],"#foo":["x"]}]', "A well-typed filter that also has #foo.", prefix="unsupported"),
        # ---- failure details ----------------------------------------------------
        mk("req/failure/no-prior-subscription", "fail",
           "A failed Add with no existing subscription sends CLOSED and creates nothing.",
           [step([new(1)], NOTHING),
            step([add_raw(1, "s", '["REQ","s",{"kinds":"1"}]')], [CL(1, "s", "invalid")]),
            step([bcast("k1")], NOTHING)]),
        mk("req/failure/closed-to-that-conn-only", ("fail", "scope"),
           "CLOSED goes to the conn of the failed Add only; conn 2's s keeps receiving.",
           [step([new(1), new(2), add(2, "s", {"kinds": [1]})], NOTHING),
            step([add_raw(1, "s", "[")], [CL(1, "s", "invalid")]),
            step([bcast("k1")], [E(2, "s", "k1")])]),
        mk("req/failure/add-again-after-failure", ("fail", "add_ok"),
           "After a failed Add removed s, a valid Add of s creates it again.",
           [step([new(1), add(1, "s", {"kinds": [1]})], NOTHING),
            step([add_raw(1, "s", '["REQ","s"]')], [CL(1, "s", "invalid")]),
            step([add(1, "s", {"kinds": [7]})], NOTHING),
            step([bcast("k7")], [E(1, "s", "k7")])]),
        mk("req/failure/repeated", "fail",
           "Each failed Add sends its own CLOSED, also when the sub does not exist any more.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([add_raw(1, "s", "x")], [CL(1, "s", "invalid")]),
            step([add_raw(1, "s", "x")], [CL(1, "s", "invalid")])]),
        mk("req/failure/sub-id-with-quote", "fail",
           "CLOSED carries the command's sub_id, here one with a quote and a backslash.",
           [step([new(1), add(1, 'q"\\', {})], NOTHING),
            step([add_raw(1, 'q"\\', "nope")], [CL(1, 'q"\\', "invalid")]),
            step([bcast("k1")], NOTHING)]),
        mk("req/failure/mismatch-removes-command-sub", "fail",
           "A REQ naming t sent as sub s: CLOSED for s, and s (not t) is removed.",
           [step([new(1), add(1, "s", {"kinds": [1]}), add(1, "t", {"kinds": [1]})], NOTHING),
            step([add_raw(1, "s", '["REQ","t",{"kinds":[1]}]')], [CL(1, "s", "invalid")]),
            step([bcast("k1")], [E(1, "t", "k1")])]),
        # ---- successful parses --------------------------------------------------
        ok("req/ignored/search", "ignored_keys", '["REQ","s",{"kinds":[1],"search":"hello"}]',
           "search is ignored: no CLOSED, and it does not restrict matching.",
           [("k1", [E(1, "s", "k1")]), ("k7", NOTHING)]),
        ok("req/ignored/search-non-string", "ignored_keys", '["REQ","s",{"kinds":[1],"search":5}]',
           "search with a non-string value is still ignored.",
           [("k1", [E(1, "s", "k1")])]),
        ok("req/ignored/unknown-key", "ignored_keys", '["REQ","s",{"kinds":[1],"foo":"bar"}]',
           "An unknown key is ignored.",
           [("k1", [E(1, "s", "k1")])]),
        ok("req/ignored/unknown-key-odd-value", "ignored_keys", '["REQ","s",{"kinds":[1],"foo":{"x":[1,null,-2.5]}}]',
           "An unknown key with a nested value of any type is ignored.",
           [("k1", [E(1, "s", "k1")])]),
        ok("req/ignored/key-without-hash", "ignored_keys", '["REQ","s",{"kinds":[1],"e":["not-hex"]}]',
           "The key e (no #) is an unknown key, not a tag filter: ignored.",
           [("k1", [E(1, "s", "k1")])]),
        ok("req/ignored/capitalised-known-key", "ignored_keys", '["REQ","s",{"kinds":[1],"Kinds":["x"],"IDS":5}]',
           "Kinds and IDS are not ids/kinds: unknown keys, ignored.",
           [("k1", [E(1, "s", "k1")]), ("k7", NOTHING)]),
        ok("req/ignored/only-ignored-keys", ("ignored_keys", "vacuous"), '["REQ","s",{"search":"x","foo":1}]',
           "A filter with only ignored keys constrains nothing and matches every event.",
           [("k1", [E(1, "s", "k1")]), ("k7", [E(1, "s", "k7")])]),
        ok("req/valid/kinds-bounds", "req_types", '["REQ","s",{"kinds":[0,65535]}]',
           "kinds 0 and 65535 are in range.",
           [("k65535", [E(1, "s", "k65535")]), ("k1", NOTHING)]),
        ok("req/valid/zero-values", "add_ok", '["REQ","s",{"since":0,"until":%d,"limit":0}]' % T,
           "since 0 and limit 0 are non-negative integers.",
           [("k1", [E(1, "s", "k1")])]),
        ok("req/valid/whitespace", "add_ok", '[ "REQ" ,\n  "s" ,\t{ "kinds" : [ 1 ] } ]\n',
           "A REQ with whitespace and newlines between tokens is valid JSON.",
           [("k1", [E(1, "s", "k1")])]),
        ok("req/valid/several-filters", "add_ok", '["REQ","s",{"kinds":[7]},{"kinds":[1]},{"ids":["%s"]}]' % a,
           "Three well-typed filters.",
           [("k1", [E(1, "s", "k1")]), ("k7", [E(1, "s", "k7")])]),
        mk("req/valid/sub-id-escaped-in-req", "req_shape",
           "The REQ spells the sub_id \"s\\u0031\"; decoded it equals the command's sub_id s1 ({notes} N-15).",
           [step([new(1), add_raw(1, "s1", '["REQ","s\\u0031",{"kinds":[1]}]')], NOTHING),
            step([bcast("k1")], [E(1, "s1", "k1")])]),
        ok("req/valid/upper-letter-any-string", "req_letter", '["REQ","s",{"#E":["not-hex"],"#P":["x"]}]',
           "#E and #P are letter keys without the hex rule ({notes} N-17): no CLOSED.",
           [("k1", NOTHING)]),
        ok("req/valid/tag-hex-values", "req_ep", '["REQ","s",{"#e":["%s"],"#p":["%s"],"kinds":[1]}]' % (a, BOB),
           "#e and #p with 64 lowercase hex values parse (they do not match k1, which has no tags).",
           [("k1", NOTHING)]),
        ok("req/valid/empty-lists", "empty", '["REQ","s",{"ids":[],"authors":[],"kinds":[],"#t":[],"#e":[]}]',
           "Empty lists are well-typed: no CLOSED (and the filter matches nothing).",
           [("k1", NOTHING)]),
    ]
    return "REQ parsing: CLOSED failures, prefixes, ignored keys (PROTOCOL {worker-add})", events, cases


# ===========================================================================
# filter: NIP-01 matching
# ===========================================================================

def filter_():
    events = {
        "k1": ev("filter-k1"),                               # kind 1, ALICE, T
        "k1b": ev("filter-k1b"),                             # kind 1, ALICE, T
        "k7": ev("filter-k7", kind=7),                       # kind 7, ALICE
        "k3": ev("filter-k3", kind=3, pubkey=BOB),           # kind 3, BOB
        "k1_bob": ev("filter-k1-bob", pubkey=BOB),           # kind 1, BOB
        "k1_carol": ev("filter-k1-carol", pubkey=CAROL),     # kind 1, CAROL
        "k0": ev("filter-k0", kind=0),
        "k65535": ev("filter-k65535", kind=65535),
        "ts_minus1": ev("filter-ts-minus1", created_at=T - 1),
        "ts_eq": ev("filter-ts-eq", created_at=T),
        "ts_plus1": ev("filter-ts-plus1", created_at=T + 1),
        "ts_zero": ev("filter-ts-zero", created_at=0),
        "tagged": ev("filter-tagged", tags=[["t", "x"]]),
        "full": ev("filter-full", tags=[["t", "x"], ["p", BOB]]),
        "a_to_bob": ev("filter-a-to-bob", tags=[["p", BOB]]),   # by ALICE, p BOB
        "dm": ev("filter-dm", kind=4, tags=[["p", BOB]]),
    }
    k1 = eid("filter-k1")
    k1_other = k1[:-1] + ("0" if k1[-1] != "0" else "1")  # differs in the last character

    def mc(cid, q, comment, filters, checks):
        return mk(cid, q, comment,
                  [step([new(1), add(1, "s", *filters)], NOTHING)]
                  + [step([bcast(name)], exp) for name, exp in checks])

    s = "s"
    cases = [
        mc("filter/ids/match", "ids", "ids [id of k1]: k1 matches, k7 does not.",
           [{"ids": [k1]}], [("k1", [E(1, s, "k1")]), ("k7", NOTHING)]),
        mc("filter/ids/or-within-list", ("ids", "match_and"), "ids [k3, k1, unused]: k1 and k3 match, k7 does not.",
           [{"ids": [eid("filter-k3"), k1, hex64("unused")]}],
           [("k1", [E(1, s, "k1")]), ("k3", [E(1, s, "k3")]), ("k7", NOTHING)]),
        mc("filter/ids/exact-equality", "ids", "An id differing from k1's in its last character does not match k1.",
           [{"ids": [k1_other]}], [("k1", NOTHING)]),
        mc("filter/ids/pubkey-is-not-id", "ids", "ids [ALICE's pubkey] does not match an event by ALICE.",
           [{"ids": [ALICE]}], [("k1", NOTHING)]),
        mc("filter/authors/match", "authors", "authors [ALICE]: k1 by ALICE matches, k1 by BOB does not.",
           [{"authors": [ALICE]}], [("k1", [E(1, s, "k1")]), ("k1_bob", NOTHING)]),
        mc("filter/authors/or-within-list", ("authors", "match_and"), "authors [BOB, ALICE]: both match, CAROL does not.",
           [{"authors": [BOB, ALICE]}],
           [("k1_bob", [E(1, s, "k1_bob")]), ("k1", [E(1, s, "k1")]), ("k1_carol", NOTHING)]),
        mc("filter/authors/p-tag-is-not-author", "authors", "authors [BOB] does not match ALICE's event that tags BOB.",
           [{"authors": [BOB]}], [("a_to_bob", NOTHING)]),
        mc("filter/kinds/match", "kinds", "kinds [1]: kind 1 matches, kind 7 does not.",
           [{"kinds": [1]}], [("k1", [E(1, s, "k1")]), ("k7", NOTHING)]),
        mc("filter/kinds/or-within-list", ("kinds", "match_and"), "kinds [7, 1]: kinds 1 and 7 match, kind 3 does not.",
           [{"kinds": [7, 1]}], [("k1", [E(1, s, "k1")]), ("k7", [E(1, s, "k7")]), ("k3", NOTHING)]),
        mc("filter/kinds/zero", "kinds", "kinds [0] matches a kind-0 event only.",
           [{"kinds": [0]}], [("k0", [E(1, s, "k0")]), ("k1", NOTHING)]),
        mc("filter/kinds/max", "kinds", "kinds [65535] matches a kind-65535 event only.",
           [{"kinds": [65535]}], [("k65535", [E(1, s, "k65535")]), ("k0", NOTHING)]),
        mc("filter/since/equal", "bounds", "created_at equal to since is delivered.",
           [{"since": T}], [("ts_eq", [E(1, s, "ts_eq")])]),
        mc("filter/since/just-below", "bounds", "created_at one second before since is not delivered; one after is.",
           [{"since": T}], [("ts_minus1", NOTHING), ("ts_plus1", [E(1, s, "ts_plus1")])]),
        mc("filter/since/zero", "bounds", "since 0 matches created_at 0.",
           [{"since": 0}], [("ts_zero", [E(1, s, "ts_zero")])]),
        mc("filter/until/equal", "bounds", "created_at equal to until is delivered.",
           [{"until": T}], [("ts_eq", [E(1, s, "ts_eq")])]),
        mc("filter/until/just-above", "bounds", "created_at one second after until is not delivered; one before is.",
           [{"until": T}], [("ts_plus1", NOTHING), ("ts_minus1", [E(1, s, "ts_minus1")])]),
        mc("filter/until/zero", "bounds", "until 0 matches created_at 0 only.",
           [{"until": 0}], [("ts_zero", [E(1, s, "ts_zero")]), ("ts_eq", NOTHING)]),
        mc("filter/window/single-second", "bounds", "since = until = T: only created_at T matches.",
           [{"since": T, "until": T}],
           [("ts_eq", [E(1, s, "ts_eq")]), ("ts_minus1", NOTHING), ("ts_plus1", NOTHING)]),
        mc("filter/window/inverted", "bounds", "since T+1 and until T-1: nothing can match.",
           [{"since": T + 1, "until": T - 1}],
           [("ts_eq", NOTHING), ("ts_minus1", NOTHING), ("ts_plus1", NOTHING)]),
        mc("filter/and/kinds-and-authors", "match_and", "kinds [1] and authors [ALICE]: both must hold.",
           [{"kinds": [1], "authors": [ALICE]}],
           [("k1", [E(1, s, "k1")]), ("k1_bob", NOTHING), ("k7", NOTHING)]),
        mc("filter/and/ids-and-kinds", "match_and", "ids [k7's id] with kinds [1] matches neither k1 nor k7.",
           [{"ids": [eid("filter-k7")], "kinds": [1]}], [("k7", NOTHING), ("k1", NOTHING)]),
        mc("filter/and/authors-and-since", "match_and", "authors [ALICE] and since T: ALICE at T matches, ALICE at T-1 and BOB do not.",
           [{"authors": [ALICE], "since": T}],
           [("ts_eq", [E(1, s, "ts_eq")]), ("ts_minus1", NOTHING), ("k1_bob", NOTHING)]),
        mc("filter/and/all-fields", "match_and", "A filter with every field, all holding for one event.",
           [{"ids": [eid("filter-full")], "authors": [ALICE], "kinds": [1], "since": T, "until": T,
             "#t": ["x"], "#p": [BOB], "limit": 1}],
           [("full", [E(1, s, "full")]), ("tagged", NOTHING)]),
        mc("filter/or/two-filters", "match_any", "Filters {kinds [1]} and {kinds [7]}: both kinds match, kind 3 does not.",
           [{"kinds": [1]}, {"kinds": [7]}],
           [("k1", [E(1, s, "k1")]), ("k7", [E(1, s, "k7")]), ("k3", NOTHING)]),
        mc("filter/or/one-frame-when-several-match", ("match_any", "delivery"),
           "Three filters that all match k1 still give one frame.",
           [{"kinds": [1]}, {"authors": [ALICE]}, {}], [("k1", [E(1, s, "k1")])]),
        mc("filter/or/later-filter-matches", "match_any", "Only the second of two filters matches.",
           [{"kinds": [99]}, {"authors": [ALICE]}], [("k1", [E(1, s, "k1")]), ("k3", NOTHING)]),
        mc("filter/empty-list/kinds", "empty", "kinds [] matches nothing (and the Add sends no CLOSED).",
           [{"kinds": []}], [("k1", NOTHING), ("k0", NOTHING)]),
        mc("filter/empty-list/ids", "empty", "ids [] matches nothing.",
           [{"ids": []}], [("k1", NOTHING)]),
        mc("filter/empty-list/authors", "empty", "authors [] matches nothing.",
           [{"authors": []}], [("k1", NOTHING)]),
        mc("filter/empty-list/tag", "empty", "#t [] matches nothing, not even an event with a t tag.",
           [{"#t": []}], [("tagged", NOTHING), ("k1", NOTHING)]),
        mc("filter/empty-list/p-tag", "empty", "#p [] matches nothing, not even an event with a p tag.",
           [{"#p": []}], [("a_to_bob", NOTHING)]),
        mc("filter/empty-list/with-other-fields", "empty", "kinds [1] with authors []: the filter never matches.",
           [{"kinds": [1], "authors": []}], [("k1", NOTHING)]),
        mc("filter/empty-list/other-filter-still-matches", ("empty", "match_any"),
           "[{kinds []}, {kinds [1]}]: the first filter never matches, the second does.",
           [{"kinds": []}, {"kinds": [1]}], [("k1", [E(1, s, "k1")]), ("k7", NOTHING)]),
        mc("filter/limit/ignored", "limit", "limit 1: two later kind-1 events are both delivered.",
           [{"kinds": [1], "limit": 1}], [("k1", [E(1, s, "k1")]), ("k1b", [E(1, s, "k1b")])]),
        mc("filter/limit/zero-ignored", "limit", "limit 0 does not stop live delivery.",
           [{"kinds": [1], "limit": 0}], [("k1", [E(1, s, "k1")])]),
        mc("filter/limit/only-limit", ("limit", "vacuous"), "A filter with only limit matches every event.",
           [{"limit": 5}], [("k7", [E(1, s, "k7")]), ("k3", [E(1, s, "k3")])]),
        mc("filter/empty-filter/matches-everything", "vacuous", "{} matches every event: any kind, author, time, tags.",
           [{}],
           [("k1", [E(1, s, "k1")]), ("k3", [E(1, s, "k3")]), ("k0", [E(1, s, "k0")]),
            ("k65535", [E(1, s, "k65535")]), ("ts_zero", [E(1, s, "ts_zero")]), ("full", [E(1, s, "full")])]),
        mc("filter/empty-filter/privileged-without-need-filter", ("vacuous", "neither"),
           "{} matches a kind-4 event broadcast without need_filter.",
           [{}], [("dm", [E(1, s, "dm")])]),
    ]
    return "NIP-01 filter matching (PROTOCOL {filter-matching})", events, cases


# ===========================================================================
# tags: #<letter> filters
# ===========================================================================

def tags():
    ref = hex64("tags-referenced-event")
    events = {
        "t_x": ev("tags-t-x", tags=[["t", "x"]]),
        "t_y": ev("tags-t-y", tags=[["t", "y"]]),
        "t_X": ev("tags-t-upper-value", tags=[["t", "X"]]),
        "t_xyz": ev("tags-t-xyz", tags=[["t", "xyz"]]),
        "t_y_then_x": ev("tags-t-y-then-x", tags=[["t", "y"], ["t", "x"]]),
        "T_x": ev("tags-upper-T-x", tags=[["T", "x"]]),
        "t_a_b": ev("tags-t-a-b", tags=[["t", "a", "b"]]),
        "t_only": ev("tags-t-only", tags=[["t"]]),
        "t_empty_value": ev("tags-t-empty-value", tags=[["t", ""]]),
        "tt_x": ev("tags-tt-x", tags=[["tt", "x"]]),
        "x_t": ev("tags-x-t", tags=[["x", "t"]]),
        "no_tags": ev("tags-none"),
        "p_bob": ev("tags-p-bob", tags=[["p", BOB]]),
        "p_bob_upper": ev("tags-p-bob-upper", tags=[["p", BOB.upper()]]),
        "p_carol_bob": ev("tags-p-carol-bob", tags=[["p", CAROL, BOB]]),
        "e_ref": ev("tags-e-ref", tags=[["e", ref]]),
        "e_ref_marker": ev("tags-e-ref-marker", tags=[["e", ref, "wss://relay.example.com", "root"]]),
        "k7_t_x": ev("tags-k7-t-x", kind=7, tags=[["t", "x"]]),
        "t_x_bob": ev("tags-t-x-bob", pubkey=BOB, tags=[["t", "x"]]),
        "t_x_p_bob": ev("tags-t-x-p-bob", tags=[["t", "x"], ["p", BOB]]),
        "d_slug": ev("tags-d-slug", kind=30023, tags=[["d", "my-article"]]),
        "r_url": ev("tags-r-url", tags=[["r", "wss://relay.example.com/"]]),
        "E_free": ev("tags-upper-E", tags=[["E", "not-hex"]]),
        "t_cafe_escaped": ev("tags-cafe-escaped", raw={"tags": '[["t","caf\\u00e9"]]'}),
        "t_cafe_raw": ev("tags-cafe-raw", tags=[["t", "café"]]),
        "many_tags": ev("tags-many", tags=[["e", ref], ["p", CAROL], ["t", "a"], ["t", "b"], ["t", "c"], ["client", "x"], ["t", "x"]]),
    }

    def mc(cid, q, comment, filters, checks):
        return mk(cid, q, comment,
                  [step([new(1), add(1, "s", *filters)], NOTHING)]
                  + [step([bcast(name)], exp) for name, exp in checks])

    s = "s"
    cases = [
        mc("tags/t/match", "tag", "#t [x]: an event tagged t=x matches; t=y and untagged do not.",
           [{"#t": ["x"]}], [("t_x", [E(1, s, "t_x")]), ("t_y", NOTHING), ("no_tags", NOTHING)]),
        mc("tags/t/or-within-list", ("tag", "match_and"), "#t [y, x]: t=x and t=y match, t=xyz does not.",
           [{"#t": ["y", "x"]}], [("t_x", [E(1, s, "t_x")]), ("t_y", [E(1, s, "t_y")]), ("t_xyz", NOTHING)]),
        mc("tags/t/exact-value", "tag", "#t [x] does not match t=X (case) nor t=xyz (prefix).",
           [{"#t": ["x"]}], [("t_X", NOTHING), ("t_xyz", NOTHING)]),
        mc("tags/t/multiple-tags-same-letter", "tag", "Of the event's two t tags, the second one matches.",
           [{"#t": ["x"]}], [("t_y_then_x", [E(1, s, "t_y_then_x")])]),
        mc("tags/t/among-many-tags", "tag", "The matching t tag is the last of seven tags.",
           [{"#t": ["x"]}], [("many_tags", [E(1, s, "many_tags")])]),
        mc("tags/t/empty-string-value", "tag", "#t [\"\"] matches the tag [\"t\",\"\"].",
           [{"#t": [""]}], [("t_empty_value", [E(1, s, "t_empty_value")]), ("t_x", NOTHING)]),
        mc("tags/t1/value-at-index-1", "tag_t1", "#t [a] matches the tag [\"t\",\"a\",\"b\"].",
           [{"#t": ["a"]}], [("t_a_b", [E(1, s, "t_a_b")])]),
        mc("tags/t1/value-at-index-2-ignored", "tag_t1", "#t [b] does not match [\"t\",\"a\",\"b\"]: only t[1] counts.",
           [{"#t": ["b"]}], [("t_a_b", NOTHING)]),
        mc("tags/t1/single-element-tag", "tag_t1", "The tag [\"t\"] has no t[1]: neither #t [\"t\"] nor #t [\"\"] matches it.",
           [{"#t": ["t"]}, {"#t": [""]}], [("t_only", NOTHING)]),
        mc("tags/t1/name-is-not-value", "tag", "#t [t] does not match the tag [\"x\",\"t\"].",
           [{"#t": ["t"]}], [("x_t", NOTHING)]),
        mc("tags/letter/other-letter-x", "tag", "#x [t] matches the tag [\"x\",\"t\"].",
           [{"#x": ["t"]}], [("x_t", [E(1, s, "x_t")])]),
        mc("tags/letter/multi-letter-tag-name", "tag", "#t [x] does not match the tag [\"tt\",\"x\"].",
           [{"#t": ["x"]}], [("tt_x", NOTHING)]),
        mc("tags/letter/d-tag", "tag", "#d matches a d tag.",
           [{"#d": ["my-article"]}], [("d_slug", [E(1, s, "d_slug")]), ("t_x", NOTHING)]),
        mc("tags/letter/r-tag-url", "tag", "#r matches an r tag whose value is a URL.",
           [{"#r": ["wss://relay.example.com/"]}], [("r_url", [E(1, s, "r_url")])]),
        mk("tags/letter-case/upper-t-distinct", "tag",
           "#T and #t are different letters: each only matches its own tag name.",
           [step([new(1), add(1, "lower", {"#t": ["x"]}), add(1, "upper", {"#T": ["x"]})], NOTHING),
            step([bcast("t_x")], [E(1, "lower", "t_x")]),
            step([bcast("T_x")], [E(1, "upper", "T_x")])]),
        mc("tags/letter-case/upper-e-any-string", "tag", "#E [\"not-hex\"] is accepted (no hex rule, {notes} N-17) and matches [\"E\",\"not-hex\"].",
           [{"#E": ["not-hex"]}], [("E_free", [E(1, s, "E_free")])]),
        mc("tags/p/match", "tag", "#p [BOB] matches [\"p\",BOB]; an untagged event does not.",
           [{"#p": [BOB]}], [("p_bob", [E(1, s, "p_bob")]), ("t_x", NOTHING)]),
        mc("tags/p/upper-case-tag-value", "tag", "#p [BOB] does not match a p tag holding BOB in upper-case hex.",
           [{"#p": [BOB]}], [("p_bob_upper", NOTHING)]),
        mc("tags/p/value-at-index-2-ignored", "tag_t1", "#p [BOB] does not match [\"p\",CAROL,BOB].",
           [{"#p": [BOB]}], [("p_carol_bob", NOTHING)]),
        mc("tags/e/match", "tag", "#e [ref] matches [\"e\",ref] and [\"e\",ref,relay,marker].",
           [{"#e": [ref]}], [("e_ref", [E(1, s, "e_ref")]), ("e_ref_marker", [E(1, s, "e_ref_marker")]), ("p_bob", NOTHING)]),
        mc("tags/combined/with-kinds", "match_and", "{kinds [1], #t [x]}: kind 1 with t=x matches; kind 7 with t=x and kind 1 without do not.",
           [{"kinds": [1], "#t": ["x"]}],
           [("t_x", [E(1, s, "t_x")]), ("k7_t_x", NOTHING), ("no_tags", NOTHING)]),
        mc("tags/combined/with-authors", "match_and", "{authors [ALICE], #t [x]}: BOB's t=x event does not match.",
           [{"authors": [ALICE], "#t": ["x"]}], [("t_x", [E(1, s, "t_x")]), ("t_x_bob", NOTHING)]),
        mc("tags/combined/two-letters", "match_and", "{#t [x], #p [BOB]}: both tags are needed.",
           [{"#t": ["x"], "#p": [BOB]}],
           [("t_x_p_bob", [E(1, s, "t_x_p_bob")]), ("t_x", NOTHING), ("p_bob", NOTHING)]),
        mc("tags/combined/tag-filter-in-second-filter", "match_any", "[{kinds [99]}, {#t [x]}]: the second filter matches.",
           [{"kinds": [99]}, {"#t": ["x"]}], [("t_x", [E(1, s, "t_x")]), ("t_y", NOTHING)]),
        mc("tags/value/json-escape-decoded", "tag", "A tag value written \"caf\\u00e9\" in the event equals the filter value café, as does a raw café.",
           [{"#t": ["café"]}], [("t_cafe_escaped", [E(1, s, "t_cafe_escaped")]), ("t_cafe_raw", [E(1, s, "t_cafe_raw")])]),
    ]
    return "Tag filters #<letter> (PROTOCOL {filter-matching})", events, cases


# ===========================================================================
# auth: Auth semantics
# ===========================================================================

def auth_():
    events = {
        # kind 4 (PRIVILEGED) events; all broadcast with need_filter (0x01)
        "dm_a1": ev("auth-dm-a1", kind=4, tags=[["p", BOB]]),                 # by ALICE to BOB
        "dm_a2": ev("auth-dm-a2", kind=4, tags=[["p", BOB]]),
        "dm_a3": ev("auth-dm-a3", kind=4, tags=[["p", BOB]]),
        "dm_c_to_b": ev("auth-dm-c-to-b", kind=4, pubkey=CAROL, tags=[["p", BOB]]),
        "dm_c_to_d": ev("auth-dm-c-to-d", kind=4, pubkey=CAROL, tags=[["p", DAVE]]),
        "dm_e": ev("auth-dm-e", kind=4, pubkey=ERIN),
    }
    NF = 0x01
    cases = [
        mk("auth/basic/sends-nothing", "auth_nothing", "Auth, also a second and a repeated one, writes no frame.",
           [step([new(1), auth(1, ALICE), auth(1, BOB), auth(1, ALICE)], NOTHING)]),
        mk("auth/unknown-conn/ignored", "auth_unknown",
           "Auth on a conn never opened is ignored: not remembered when that conn is opened later.",
           [step([auth(9, ALICE)], NOTHING),
            step([new(9), add(9, "s", {"kinds": [4]})], NOTHING),
            step([bcast("dm_a1", flags=NF)], NOTHING)]),
        mk("auth/unknown-conn/does-not-create-conn", ("auth_unknown", "add_unknown"),
           "Auth on an unknown conn does not create it: an invalid Add on it still gets no CLOSED.",
           [step([auth(9, ALICE)], NOTHING),
            step([add_raw(9, "s", "not json")], NOTHING)]),
        mk("auth/basic/author-match", ("auth", "rule1"),
           "Authenticated as ALICE, the conn receives ALICE's need_filter kind-4 event.",
           [step([new(1), auth(1, ALICE), add(1, "s", {"kinds": [4]})], NOTHING),
            step([bcast("dm_a1", flags=NF)], [E(1, "s", "dm_a1")])]),
        mk("auth/at-once/existing-subscription", "auth_at_once",
           "A subscription made before Auth: blocked before, delivered right after.",
           [step([new(1), add(1, "s", {"kinds": [4]})], NOTHING),
            step([bcast("dm_a1", flags=NF)], NOTHING),
            step([auth(1, ALICE)], NOTHING),
            step([bcast("dm_a2", flags=NF)], [E(1, "s", "dm_a2")])]),
        mk("auth/at-once/all-subscriptions", "auth_at_once",
           "Both subscriptions of the conn benefit from the Auth.",
           [step([new(1), add(1, "a", {"kinds": [4]}), add(1, "b", {})], NOTHING),
            step([auth(1, ALICE)], NOTHING),
            step([bcast("dm_a1", flags=NF)], [E(1, "a", "dm_a1"), E(1, "b", "dm_a1")])]),
        mk("auth/several/earlier-key-kept", "auth_several",
           "Auth ALICE then CAROL: events by ALICE and by CAROL are both delivered.",
           [step([new(1), add(1, "s", {"kinds": [4]}), auth(1, ALICE), auth(1, CAROL)], NOTHING),
            step([bcast("dm_a1", flags=NF)], [E(1, "s", "dm_a1")]),
            step([bcast("dm_c_to_d", flags=NF)], [E(1, "s", "dm_c_to_d")])]),
        mk("auth/several/later-key", "auth_several",
           "Auth CAROL then ALICE: ALICE's event is delivered.",
           [step([new(1), add(1, "s", {"kinds": [4]}), auth(1, CAROL), auth(1, ALICE)], NOTHING),
            step([bcast("dm_a1", flags=NF)], [E(1, "s", "dm_a1")])]),
        mk("auth/several/p-tag-via-second-key", ("auth_several", "rule1"),
           "Auth DAVE then BOB: CAROL's DM to BOB is delivered through the p tag.",
           [step([new(1), add(1, "s", {"kinds": [4]}), auth(1, DAVE), auth(1, BOB)], NOTHING),
            step([bcast("dm_c_to_b", flags=NF)], [E(1, "s", "dm_c_to_b")]),
            step([bcast("dm_e", flags=NF)], NOTHING)]),
        mk("auth/basic/same-key-twice", "auth",
           "Authenticating the same key twice still gives one frame per subscription.",
           [step([new(1), add(1, "s", {"kinds": [4]}), auth(1, ALICE), auth(1, ALICE)], NOTHING),
            step([bcast("dm_a1", flags=NF)], [E(1, "s", "dm_a1")])]),
        mk("auth/basic/unrelated-key", ("auth", "rule1"),
           "Authenticated as DAVE only: ALICE's DM to BOB is not delivered.",
           [step([new(1), add(1, "s", {"kinds": [4]}), auth(1, DAVE)], NOTHING),
            step([bcast("dm_a1", flags=NF)], NOTHING)]),
        mk("auth/scope/per-connection", "auth",
           "Auth on conn 1 does not authenticate conn 2.",
           [step([new(1), new(2), add(1, "s", {"kinds": [4]}), add(2, "s", {"kinds": [4]}), auth(1, ALICE)], NOTHING),
            step([bcast("dm_a1", flags=NF)], [E(1, "s", "dm_a1")])]),
        mk("auth/reset/new-drops-keys", ("reset", "auth"),
           "New on the conn drops its authenticated pubkeys.",
           [step([new(1), auth(1, ALICE), add(1, "s", {"kinds": [4]})], NOTHING),
            step([bcast("dm_a1", flags=NF)], [E(1, "s", "dm_a1")]),
            step([new(1), add(1, "s", {"kinds": [4]})], NOTHING),
            step([bcast("dm_a2", flags=NF)], NOTHING),
            step([auth(1, ALICE)], NOTHING),
            step([bcast("dm_a3", flags=NF)], [E(1, "s", "dm_a3")])]),
        mk("auth/reset/close-drops-keys", ("close", "auth"),
           "Close drops the conn's pubkeys: after Close and New the DM is not delivered.",
           [step([new(1), auth(1, ALICE), close(1), new(1), add(1, "s", {"kinds": [4]})], NOTHING),
            step([bcast("dm_a1", flags=NF)], NOTHING)]),
        mk("auth/scope/unprivileged-unaffected", ("auth", "neither"),
           "An unauthenticated conn still receives need_filter events of kind 1 (rule 1 does not apply).",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast_raw(ev("auth-k1", kind=1), flags=NF)], [ER(1, "s", ev("auth-k1", kind=1))])]),
    ]
    return "Authentication (PROTOCOL {worker-auth})", events, cases


# ===========================================================================
# access: need_filter, marmot_open, nip70_enforce, whitelisted, reserved bits
# ===========================================================================

PRIVILEGED = [4, 13, 14, 15, 443, 1059, 1060, 10051]


def access():
    events = {}
    for k in PRIVILEGED:
        events["priv%d" % k] = ev("access-priv-%d" % k, kind=k, tags=[["p", BOB]])
    for k in [1, 3, 5, 12, 16, 442, 444, 1058, 1061, 10050, 10052]:
        events["kind%d" % k] = ev("access-kind-%d" % k, kind=k, tags=[["p", BOB]])
    events.update({
        # kind 4 by ALICE with varied p tags
        "dm_no_p": ev("access-dm-no-p", kind=4),
        "dm_second_p": ev("access-dm-second-p", kind=4, tags=[["p", CAROL], ["p", BOB]]),
        "dm_p_index2": ev("access-dm-p-index2", kind=4, tags=[["p", CAROL, BOB]]),
        "dm_p_upper": ev("access-dm-p-upper", kind=4, tags=[["p", BOB.upper()]]),
        "dm_P_tag": ev("access-dm-capital-P", kind=4, tags=[["P", BOB]]),
        "dm_e_tag": ev("access-dm-e-tag", kind=4, tags=[["e", BOB]]),
        "dm_c_to_d": ev("access-dm-c-to-d", kind=4, pubkey=CAROL, tags=[["p", DAVE]]),
        # protected (NIP-70) events
        "prot1": ev("access-prot1", kind=1, tags=[["-"]]),
        "prot_value": ev("access-prot-value", kind=1, tags=[["-", "x"]]),
        "prot_last": ev("access-prot-last", kind=1, tags=[["t", "x"], ["-"]]),
        "dash_not_first": ev("access-dash-not-first", kind=1, tags=[["t", "-"]]),
        "prot_dm": ev("access-prot-dm", kind=4, tags=[["p", BOB], ["-"]]),
        "prot443": ev("access-prot-443", kind=443, tags=[["-"]]),
        "plain1": ev("access-plain1", kind=1),
    })
    NF, N70, MO = 0x01, 0x02, 0x04

    def five():
        """The five conns of the module docstring, each with sub s = {}."""
        return ([new(1), new(2, flags=0x01), new(3), auth(3, ALICE), new(4), auth(4, BOB), new(5), auth(5, DAVE)]
                + [add(c, "s", {}) for c in (1, 2, 3, 4, 5)])

    def ac(cid, q, comment, checks):
        return mk(cid, q, comment,
                  [step(five(), NOTHING)]
                  + [step([bcast(name, flags=fl)], exp) for name, fl, exp in checks])

    def to(name, *conns):
        return [E(c, "s", name) for c in conns]

    cases = []
    # ---- rule 1 on each PRIVILEGED kind ------------------------------------
    for k in PRIVILEGED:
        n = "priv%d" % k
        cases.append(ac("access/need-filter/kind-%d" % k, "rule1",
                        "need_filter, kind %d by ALICE tagging BOB: whitelisted conn 2, ALICE's conn 3 and BOB's conn 4 only." % k,
                        [(n, NF, to(n, 2, 3, 4))]))
    cases += [
        ac("access/need-filter/non-privileged-kind-1", "rule1",
           "need_filter on kind 1 (not PRIVILEGED): every conn receives it.",
           [("kind1", NF, to("kind1", 1, 2, 3, 4, 5))]),
        ac("access/need-filter/non-privileged-neighbours", "rule1",
           "need_filter on kinds next to PRIVILEGED ones (3, 5, 12, 16, 442, 444, 1058, 1061, 10050, 10052): every conn receives them.",
           [("kind%d" % k, NF, to("kind%d" % k, 1, 2, 3, 4, 5))
            for k in [3, 5, 12, 16, 442, 444, 1058, 1061, 10050, 10052]]),
        ac("access/no-need-filter/privileged-to-all", "neither",
           "Without need_filter, every PRIVILEGED kind reaches every conn.",
           [("priv%d" % k, 0, to("priv%d" % k, 1, 2, 3, 4, 5)) for k in PRIVILEGED]),
        ac("access/whitelisted/unrelated-event", "rule1",
           "CAROL's DM to DAVE: only whitelisted conn 2 and DAVE's conn 5 receive it.",
           [("dm_c_to_d", NF, to("dm_c_to_d", 2, 5))]),
        ac("access/author/no-p-tag", "rule1",
           "A kind-4 event by ALICE with no p tag: whitelisted conn 2 and ALICE's conn 3.",
           [("dm_no_p", NF, to("dm_no_p", 2, 3))]),
        ac("access/p-tag/second-p-tag", "rule1",
           "Tags p CAROL, p BOB: BOB's conn 4 passes through the second p tag.",
           [("dm_second_p", NF, to("dm_second_p", 2, 3, 4))]),
        ac("access/p-tag/value-at-index-2", "rule1",
           "Tag [\"p\",CAROL,BOB]: the p tag's value is CAROL, so BOB's conn 4 does not pass ({notes} N-23).",
           [("dm_p_index2", NF, to("dm_p_index2", 2, 3))]),
        ac("access/p-tag/upper-case-value", "rule1",
           "A p tag holding BOB in upper-case hex equals no key ({notes} N-23): BOB's conn 4 does not pass.",
           [("dm_p_upper", NF, to("dm_p_upper", 2, 3))]),
        ac("access/p-tag/capital-p-tag", "rule1",
           "A tag named P is not a p tag: BOB's conn 4 does not pass.",
           [("dm_P_tag", NF, to("dm_P_tag", 2, 3))]),
        ac("access/p-tag/other-tag-name", "rule1",
           "BOB's key in an e tag does not count: BOB's conn 4 does not pass.",
           [("dm_e_tag", NF, to("dm_e_tag", 2, 3))]),
        mk("access/sender/not-privileged", ("rule1", "sender"),
           "The publishing conn is not exempt: conn 1 sends ALICE's DM unauthenticated and does not get it back; authenticated, it does.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("priv4", sender=1, flags=NF)], NOTHING),
            step([auth(1, ALICE)], NOTHING),
            step([bcast("priv14", sender=1, flags=NF)], [E(1, "s", "priv14")])]),
        # ---- marmot_open -------------------------------------------------------
        ac("access/marmot/443-open", "rule1",
           "need_filter + marmot_open on kind 443 (MARMOT_OPEN): every conn receives it.",
           [("priv443", NF | MO, to("priv443", 1, 2, 3, 4, 5))]),
        ac("access/marmot/10051-open", "rule1",
           "need_filter + marmot_open on kind 10051 (MARMOT_OPEN): every conn receives it.",
           [("priv10051", NF | MO, to("priv10051", 1, 2, 3, 4, 5))]),
        ac("access/marmot/4-still-closed", "rule1",
           "need_filter + marmot_open on kind 4 (not MARMOT_OPEN): rule 1 still applies.",
           [("priv4", NF | MO, to("priv4", 2, 3, 4))]),
        ac("access/marmot/other-privileged-still-closed", "rule1",
           "need_filter + marmot_open on kinds 13, 14, 15, 1059, 1060: rule 1 still applies.",
           [("priv%d" % k, NF | MO, to("priv%d" % k, 2, 3, 4)) for k in [13, 14, 15, 1059, 1060]]),
        ac("access/marmot/without-need-filter", "rule1",
           "marmot_open alone on kind 4: need_filter is not set, so rule 1 does not apply.",
           [("priv4", MO, to("priv4", 1, 2, 3, 4, 5))]),
        ac("access/marmot/non-privileged", "rule1",
           "need_filter + marmot_open on kind 1: every conn receives it.",
           [("kind1", NF | MO, to("kind1", 1, 2, 3, 4, 5))]),
        # ---- nip70_enforce -----------------------------------------------------
        ac("access/nip70/protected", "rule2",
           "nip70_enforce, kind 1 with [\"-\"]: every whitelisted or authenticated conn (2, 3, 4, 5), not plain conn 1.",
           [("prot1", N70, to("prot1", 2, 3, 4, 5))]),
        ac("access/nip70/no-dash-tag", "rule2",
           "nip70_enforce on an event without a [\"-\"] tag: every conn receives it.",
           [("plain1", N70, to("plain1", 1, 2, 3, 4, 5))]),
        ac("access/nip70/flag-not-set", "neither",
           "A protected event broadcast without nip70_enforce reaches every conn.",
           [("prot1", 0, to("prot1", 1, 2, 3, 4, 5))]),
        ac("access/nip70/dash-tag-with-value", "rule2",
           "The tag [\"-\",\"x\"] has first element \"-\": rule 2 applies.",
           [("prot_value", N70, to("prot_value", 2, 3, 4, 5))]),
        ac("access/nip70/dash-tag-not-first-tag", "rule2",
           "[\"-\"] as the second tag still makes the event protected.",
           [("prot_last", N70, to("prot_last", 2, 3, 4, 5))]),
        ac("access/nip70/dash-as-value-only", "rule2",
           "The tag [\"t\",\"-\"] does not have \"-\" as first element: rule 2 does not apply.",
           [("dash_not_first", N70, to("dash_not_first", 1, 2, 3, 4, 5))]),
        ac("access/nip70/privileged-without-need-filter", "rule2",
           "nip70_enforce only, kind 4 with [\"-\"]: only rule 2 applies, so DAVE's unrelated conn 5 receives it.",
           [("prot_dm", N70, to("prot_dm", 2, 3, 4, 5))]),
        mk("access/nip70/auth-later", ("rule2", "auth_at_once"),
           "A plain conn that authenticates (any pubkey) starts receiving protected events.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("prot1", flags=N70)], NOTHING),
            step([auth(1, ERIN)], NOTHING),
            step([bcast("prot_value", flags=N70)], [E(1, "s", "prot_value")])]),
        # ---- both rules ----------------------------------------------------------
        ac("access/both/privileged-and-protected", "both",
           "need_filter + nip70_enforce, kind 4 by ALICE tagging BOB with [\"-\"]: conns 2, 3, 4; DAVE's conn 5 passes rule 2 but fails rule 1.",
           [("prot_dm", NF | N70, to("prot_dm", 2, 3, 4))]),
        ac("access/both/marmot-exempt-but-protected", "both",
           "All three flags, kind 443 with [\"-\"]: rule 1 is waived, rule 2 applies: conns 2, 3, 4, 5.",
           [("prot443", NF | N70 | MO, to("prot443", 2, 3, 4, 5))]),
        ac("access/both/protected-non-privileged", "both",
           "need_filter + nip70_enforce, kind 1 with [\"-\"]: only rule 2 applies.",
           [("prot1", NF | N70, to("prot1", 2, 3, 4, 5))]),
        ac("access/both/privileged-not-protected", "both",
           "need_filter + nip70_enforce, kind 4 without [\"-\"]: only rule 1 applies.",
           [("priv4", NF | N70, to("priv4", 2, 3, 4))]),
        ac("access/both/neither-applies", "both",
           "need_filter + nip70_enforce, kind 1 without [\"-\"]: no rule applies, every conn.",
           [("plain1", NF | N70, to("plain1", 1, 2, 3, 4, 5))]),
        mk("access/per-subscription/all-subs-of-conn", ("rule1", "delivery"),
           "Access is per connection: both subs of ALICE's conn get the DM, neither sub of the plain conn does.",
           [step([new(1), add(1, "a", {}), add(1, "b", {"kinds": [4]}),
                  new(3), auth(3, ALICE), add(3, "a", {}), add(3, "b", {"kinds": [4]})], NOTHING),
            step([bcast("priv4", flags=NF)], [E(3, "a", "priv4"), E(3, "b", "priv4")])]),
        # ---- reserved flag bits ----------------------------------------------------
        mk("access/reserved/new-fe-not-whitelisted", ("reserved", "new"),
           "New with flags 0xfe (reserved bits set, bit 0 clear) creates a plain conn.",
           [step([new(1, flags=0xFE), add(1, "s", {})], NOTHING),
            step([bcast("dm_c_to_d", flags=NF)], NOTHING),
            step([bcast("plain1", flags=NF)], [E(1, "s", "plain1")])]),
        mk("access/reserved/new-ff-whitelisted", ("reserved", "new"),
           "New with flags 0xff creates a whitelisted conn.",
           [step([new(1, flags=0xFF), add(1, "s", {})], NOTHING),
            step([bcast("dm_c_to_d", flags=NF)], [E(1, "s", "dm_c_to_d")])]),
        ac("access/reserved/bcast-f8-no-rule", "reserved",
           "Bcast flags 0xf8 (only reserved bits) on a protected kind-4 event: no rule applies, every conn.",
           [("prot_dm", 0xF8, to("prot_dm", 1, 2, 3, 4, 5))]),
        ac("access/reserved/bcast-f9-need-filter", "reserved",
           "Bcast flags 0xf9 = need_filter + reserved bits, kind 4: rule 1 applies as with 0x01.",
           [("priv4", 0xF9, to("priv4", 2, 3, 4))]),
        ac("access/reserved/bcast-fa-nip70", "reserved",
           "Bcast flags 0xfa = nip70_enforce + reserved bits, protected kind 1: rule 2 applies as with 0x02.",
           [("prot1", 0xFA, to("prot1", 2, 3, 4, 5))]),
        ac("access/reserved/bcast-ff-all", "reserved",
           "Bcast flags 0xff, kind 443 with [\"-\"]: behaves as 0x07.",
           [("prot443", 0xFF, to("prot443", 2, 3, 4, 5))]),
        mk("access/reserved/add-ff", "reserved",
           "Add with flags 0xff creates the subscription as usual.",
           [step([new(1), add(1, "s", {"kinds": [1]}, flags=0xFF)], NOTHING),
            step([bcast("plain1")], [E(1, "s", "plain1")])]),
        mk("access/reserved/add-ff-invalid-req", "reserved",
           "Add with flags 0xff and an invalid REQ: CLOSED as usual.",
           [step([new(1)], NOTHING),
            step([add_raw(1, "s", '["REQ","s"]', flags=0xFF)], [CL(1, "s", "invalid")])]),
        mk("access/reserved/remove-ff", "reserved",
           "Remove with flags 0xff removes the subscription.",
           [step([new(1), add(1, "s", {}), add(1, "t", {})], NOTHING),
            step([remove(1, "s", flags=0xFF)], NOTHING),
            step([bcast("plain1")], [E(1, "t", "plain1")])]),
        mk("access/reserved/close-ff", "reserved",
           "Close with flags 0xff closes the conn.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([close(1, flags=0xFF)], NOTHING),
            step([bcast("plain1")], NOTHING)]),
        mk("access/reserved/auth-ff", "reserved",
           "Auth with flags 0xff authenticates the pubkey.",
           [step([new(1), add(1, "s", {}), auth(1, ALICE, flags=0xFF)], NOTHING),
            step([bcast("priv4", flags=NF)], [E(1, "s", "priv4")])]),
    ]
    return "Access rules, whitelisting and reserved flag bits (PROTOCOL {access-rules}, {flags})", events, cases


# ===========================================================================
# bcast: delivery, sender, invalid events
# ===========================================================================

def bcast_():
    events = {
        "n1": ev("bcast-n1"),
        "n2": ev("bcast-n2"),
        "n3": ev("bcast-n3"),
        "after": ev("bcast-after"),
        "k7": ev("bcast-k7", kind=7),
        "k0": ev("bcast-k0", kind=0),
        "k65535": ev("bcast-k65535", kind=65535),
        "at_zero": ev("bcast-at-zero", created_at=0),
        "empty_everything": ev("bcast-empty", tags=[], content=""),
        "empty_tag": ev("bcast-empty-tag", tags=[[]]),
        "long_tags": ev("bcast-long-tags", tags=[["t", "a%d" % i, "x", "y"] for i in range(50)]),
        "fake_id_sig": ev("bcast-fake", raw={"id": js("0" * 64), "sig": js("f" * 128)}),
    }
    base = ev("bcast-invalid")  # a valid event; bad() mutates one field of it

    def bad(_, **mut):
        return ev("bcast-invalid", **mut)

    # Invalid events: (id detail, comment, bcast item)
    invalid = [
        ("missing-id", "The event has no id.", bcast_raw(bad("x", drop=("id",)))),
        ("missing-pubkey", "The event has no pubkey.", bcast_raw(bad("x", drop=("pubkey",)))),
        ("missing-created-at", "The event has no created_at.", bcast_raw(bad("x", drop=("created_at",)))),
        ("missing-kind", "The event has no kind.", bcast_raw(bad("x", drop=("kind",)))),
        ("missing-tags", "The event has no tags.", bcast_raw(bad("x", drop=("tags",)))),
        ("missing-content", "The event has no content.", bcast_raw(bad("x", drop=("content",)))),
        ("missing-sig", "The event has no sig.", bcast_raw(bad("x", drop=("sig",)))),
        ("id-63-hex", "id has 63 hex characters.", bcast_raw(bad("x", raw={"id": js(eid("bcast-invalid")[:63])}))),
        ("id-65-hex", "id has 65 hex characters.", bcast_raw(bad("x", raw={"id": js(eid("bcast-invalid") + "a")}))),
        ("id-uppercase", "id in upper-case hex.", bcast_raw(bad("x", raw={"id": js(eid("bcast-invalid").upper())}))),
        ("id-non-hex", "id of 64 characters ending in 'z'.", bcast_raw(bad("x", raw={"id": js(eid("bcast-invalid")[:63] + "z")}))),
        ("id-number", "id is a number.", bcast_raw(bad("x", raw={"id": "12345"}))),
        ("pubkey-uppercase", "pubkey in upper-case hex.", bcast_raw(bad("x", raw={"pubkey": js(ALICE.upper())}))),
        ("pubkey-63-hex", "pubkey has 63 hex characters.", bcast_raw(bad("x", raw={"pubkey": js(ALICE[:63])}))),
        ("pubkey-null", "pubkey is null.", bcast_raw(bad("x", raw={"pubkey": "null"}))),
        ("sig-127-hex", "sig has 127 hex characters.", bcast_raw(bad("x", raw={"sig": js(hex128("sig:bcast-invalid")[:127])}))),
        ("sig-129-hex", "sig has 129 hex characters.", bcast_raw(bad("x", raw={"sig": js(hex128("sig:bcast-invalid") + "0")}))),
        ("sig-uppercase", "sig in upper-case hex.", bcast_raw(bad("x", raw={"sig": js(hex128("sig:bcast-invalid").upper())}))),
        ("kind-65536", "kind 65536 is out of range.", bcast_raw(bad("x", raw={"kind": "65536"}))),
        ("kind-negative", "kind -1 is out of range.", bcast_raw(bad("x", raw={"kind": "-1"}))),
        ("kind-string", "kind is the string \"1\".", bcast_raw(bad("x", raw={"kind": '"1"'}))),
        ("kind-fraction", "kind 1.5 is not an integer.", bcast_raw(bad("x", raw={"kind": "1.5"}))),
        ("created-at-negative", "created_at -1.", bcast_raw(bad("x", raw={"created_at": "-1"}))),
        ("created-at-fraction", "created_at 1700000000.5 is not an integer.", bcast_raw(bad("x", raw={"created_at": "1700000000.5"}))),
        ("created-at-string", "created_at is a string.", bcast_raw(bad("x", raw={"created_at": '"1700000000"'}))),
        ("tags-object", "tags is an object.", bcast_raw(bad("x", raw={"tags": '{"t":"x"}'}))),
        ("tags-array-of-strings", "tags is an array of strings, not of arrays.", bcast_raw(bad("x", raw={"tags": '["t","x"]'}))),
        ("tags-inner-number", "A tag contains a number.", bcast_raw(bad("x", raw={"tags": '[["t",1]]'}))),
        ("tags-inner-null", "A tag contains null.", bcast_raw(bad("x", raw={"tags": '[["t",null]]'}))),
        ("tags-null", "tags is null.", bcast_raw(bad("x", raw={"tags": "null"}))),
        ("tags-nested-array", "A tag contains an array.", bcast_raw(bad("x", raw={"tags": '[["t",["x"]]]'}))),
        ("content-number", "content is a number.", bcast_raw(bad("x", raw={"content": "1"}))),
        ("content-null", "content is null.", bcast_raw(bad("x", raw={"content": "null"}))),
        ("content-array", "content is an array.", bcast_raw(bad("x", raw={"content": '["hi"]'}))),
        ("message-not-json", "data is not JSON.", bcast_data("not json")),
        ("message-truncated", "data is an EVENT message cut before its last bracket.", bcast_data('["EVENT",' + base)),
        ("message-no-event", "[\"EVENT\"] has no event.", bcast_data('["EVENT"]')),
        ("message-empty-array", "data is an empty array.", bcast_data("[]")),
        ("message-first-not-event", "First element \"NOTICE\".", bcast_data('["NOTICE",' + base + ']')),
        ("message-first-lowercase", "First element \"event\": case-sensitive.", bcast_data('["event",' + base + ']')),
        ("message-bare-object", "The event object without the [\"EVENT\", …] wrapper.", bcast_data(base)),
        ("message-object-wrapper", "A JSON object instead of an array.", bcast_data('{"EVENT":' + base + '}')),
        ("message-event-string", "The event is a string.", bcast_data('["EVENT","x"]')),
        ("message-event-array", "The event is an array.", bcast_data('["EVENT",[]]')),
        ("message-event-null", "The event is null.", bcast_data('["EVENT",null]')),
        ("message-extra-element", "[\"EVENT\", event, event]: three elements ({notes} N-20).", bcast_data('["EVENT",' + base + ',' + base + ']')),
        ("message-not-utf8", "data bytes ff fe are not JSON.", bcast_hex("fffe")),
    ]
    cases = [
        mk("bcast/sender/receives-own-event", ("sender", "sender_incl"),
           "The publishing conn receives its own event through its own matching subscription.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("n1", sender=1)], [E(1, "s", "n1")])]),
        mk("bcast/sender/minus-one", "sender",
           "sender -1 (no connection): delivered like any other event.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("n1", sender=-1)], [E(1, "s", "n1")])]),
        mk("bcast/sender/does-not-change-delivery", "sender",
           "The same subscriptions get the same frames whether the sender is 1, 2 or -1.",
           [step([new(1), new(2), add(1, "s", {}), add(2, "s", {})], NOTHING),
            step([bcast("n1", sender=1)], [E(1, "s", "n1"), E(2, "s", "n1")]),
            step([bcast("n2", sender=2)], [E(1, "s", "n2"), E(2, "s", "n2")]),
            step([bcast("n3", sender=-1)], [E(1, "s", "n3"), E(2, "s", "n3")])]),
        mk("bcast/sender/unknown-conn", "sender",
           "A sender conn never opened does not matter: the subscribers get the event.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("n1", sender=9)], [E(1, "s", "n1")])]),
        mk("bcast/sender/without-subscription", "sender",
           "A sender without subscriptions gets nothing; the subscriber does.",
           [step([new(1), new(2), add(1, "s", {})], NOTHING),
            step([bcast("n1", sender=2)], [E(1, "s", "n1")])]),
        mk("bcast/delivery/every-conn-every-sub", "delivery",
           "Three conns with two matching subs each: six frames.",
           [step([new(1), new(2), new(3)] + [add(c, sid, f) for c in (1, 2, 3)
                                              for sid, f in (("a", {}), ("b", {"kinds": [1]}))], NOTHING),
            step([bcast("n1")], [E(1, "a", "n1"), E(1, "b", "n1"), E(2, "a", "n1"),
                                 E(2, "b", "n1"), E(3, "a", "n1"), E(3, "b", "n1")])]),
        mk("bcast/delivery/non-matching-skipped", "delivery",
           "Only the matching subscription, among three on two conns, gets a frame.",
           [step([new(1), new(2), add(1, "a", {"kinds": [1]}), add(1, "b", {"kinds": [7]}), add(2, "c", {"kinds": [7]})], NOTHING),
            step([bcast("n1")], [E(1, "a", "n1")])]),
        mk("bcast/delivery/one-frame-per-subscription", "delivery",
           "A subscription whose three filters all match gets exactly one frame.",
           [step([new(1), add(1, "s", {}, {"kinds": [1]}, {"authors": [ALICE]})], NOTHING),
            step([bcast("n1")], [E(1, "s", "n1")])]),
        mk("bcast/delivery/no-subscriptions", "delivery",
           "Open conns without subscriptions: nothing is sent.",
           [step([new(1), new(2, flags=0x01)], NOTHING),
            step([bcast("n1", sender=1)], NOTHING)]),
        mk("bcast/delivery/same-sub-id-two-conns", ("delivery", "scope"),
           "sub_id s on conns 1 and 2: one frame to each.",
           [step([new(1), new(2), add(1, "s", {}), add(2, "s", {"kinds": [1]})], NOTHING),
            step([bcast("n1")], [E(1, "s", "n1"), E(2, "s", "n1")])]),
        mk("bcast/delivery/repeated-event", "delivery",
           "The same event broadcast twice is delivered twice: the worker keeps no event store.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("n1")], [E(1, "s", "n1")]),
            step([bcast("n1")], [E(1, "s", "n1")])]),
        mk("bcast/valid/unverified-id-and-sig", "no_verify",
           "An event whose id is 64 zeros and sig 128 f's is delivered: the worker does not verify them.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("fake_id_sig")], [E(1, "s", "fake_id_sig")])]),
        mk("bcast/valid/kind-bounds", "event_shape",
           "Kinds 0 and 65535 are valid.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("k0")], [E(1, "s", "k0")]),
            step([bcast("k65535")], [E(1, "s", "k65535")])]),
        mk("bcast/valid/created-at-zero", "event_shape",
           "created_at 0 is a non-negative integer.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("at_zero")], [E(1, "s", "at_zero")])]),
        mk("bcast/valid/empty-tags-and-content", "event_shape",
           "tags [] and content \"\" are valid.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("empty_everything")], [E(1, "s", "empty_everything")])]),
        mk("bcast/valid/empty-tag", "event_shape",
           "tags [[]]: an empty tag is an array of (zero) strings ({notes} N-20).",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("empty_tag")], [E(1, "s", "empty_tag")])]),
        mk("bcast/valid/many-tags", "event_shape",
           "Fifty four-element tags.",
           [step([new(1), add(1, "s", {"#t": ["a49"]})], NOTHING),
            step([bcast("long_tags")], [E(1, "s", "long_tags")])]),
    ]
    for detail, comment, item in invalid:
        cases.append(mk("bcast/invalid/" + detail, "event_invalid",
                        comment + " Nothing is delivered, and the worker goes on.",
                        [step([new(1), new(2, flags=0x01), add(1, "s", {}), add(2, "s", {})], NOTHING),
                         step([item], NOTHING),
                         step([bcast("after")], [E(1, "s", "after"), E(2, "s", "after")])]))
    cases.append(mk("bcast/invalid/between-valid", ("event_invalid", "order_in"),
                    "Valid, invalid, valid Bcasts in one step: the two valid ones are delivered.",
                    [step([new(1), add(1, "s", {})], NOTHING),
                     step([bcast("n1"), bcast_data('["EVENT",{}]'), bcast("n2")],
                          [E(1, "s", "n1"), E(1, "s", "n2")], ordered=True)]))
    return "Bcast delivery, the sender, invalid events (PROTOCOL {bcast-event}, {bcast-delivery}, {bcast-conn})", events, cases


# ===========================================================================
# output: verbatim event bytes and sub_id escaping
# ===========================================================================

DOC_EVENT = ('{"id":"4d46d064a5541eb729018a203d0c127abffaa9353074360f19843c6de893e8a7",'
             '"pubkey":"79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",'
             '"created_at":1700000000,"kind":1,"tags":[["-"]],"content":"hello",'
             '"sig":"80437a5298c55dce2e166b7bf39c84c0b5028535fd51b1e2b2f362de3c1f1cfb5b5731564d10088f0a763cf334b8b86f56487f5e00a069a7cccc2dbb651a8237"}')
# PROTOCOL.md#example-broadcastframe, typed from the document:
DOC_FRAME_DATA = ('["EVENT","sub1",{"id":"4d46d064a5541eb729018a203d0c127abffaa9353074360f19843c6de893e8a7",'
                  '"pubkey":"79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",'
                  '"created_at":1700000000,"kind":1,"tags":[["-"]],"content":"hello",'
                  '"sig":"80437a5298c55dce2e166b7bf39c84c0b5028535fd51b1e2b2f362de3c1f1cfb5b5731564d10088f0a763cf334b8b86f56487f5e00a069a7cccc2dbb651a8237"}]')
DOC_PUBKEY = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"


def output():
    i, p, g = eid("output-spaced"), ALICE, hex128("sig:output-spaced")
    spaced = ('{ "id" : "%s" ,\n  "pubkey":"%s",\t"created_at" : %d ,\r\n "kind":1,'
              '"tags":[ [ "t" , "x" ] ,[ "t","y" ] ],"content":"a  b","sig":"%s"   }' % (i, p, T, g))
    i2, g2 = eid("output-reordered"), hex128("sig:output-reordered")
    reordered = ('{"sig":"%s","content":"order","tags":[],"kind":1,"created_at":%d,'
                 '"pubkey":"%s","id":"%s"}' % (g2, T, p, i2))
    events = {
        "plain": ev("output-plain", content="hi"),
        "spaced": spaced,
        "reordered": reordered,
        "escapes": ev("output-escapes", raw={"content": r'"caf\u00e9 \/ \n \" \\ \t \u0041"'}),
        "upper_escape": ev("output-upper-escape", raw={"content": r'"\u00E9\u00e9"'}),
        "surrogates": ev("output-surrogates", raw={"content": r'"\ud83d\ude00 and \uD83C\uDF89"'}),
        "utf8": ev("output-utf8", content="héllo wörld 日本語 🎉 \u2028"),
        "brackets": ev("output-brackets", content='}]"},["EVENT",{"id":"x"}]', tags=[["t", "]"], ["t", "}"]]),
        "doc_event": DOC_EVENT,
    }
    P = events["plain"]

    def esc(detail, sub_id, data, comment, q="output"):
        """Expected data written literally by hand (see the sub_id column)."""
        return mk("output/sub-id/" + detail, q, comment,
                  [step([new(1), add(1, sub_id, {})], NOTHING),
                   step([bcast("plain")], [DATA(1, data)])])

    ESC_Q = ("sub-id-json-string", "The sub_id is written as a double quote, then every code point of the sub_id in order, transformed as follows, then a double quote:")

    def escq(row):
        return (ESC_Q[0], ESC_Q[1] + " … Table row: " + row)

    cases = [
        mk("output/frame/exact-bytes", "output",
           "The frame data is exactly [\"EVENT\",\"s\",<event>] with no other whitespace.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("plain")], [DATA(1, '["EVENT","s",' + P + ']')])]),
        mk("output/frame/worked-example", ("output", "rule2"),
           "The session of PROTOCOL {examples}: the BroadcastFrame data of {example-broadcastframe}, byte for byte.",
           [step([new(7, flags=0x01), add(7, "sub1", {"kinds": [1]}), auth(7, DOC_PUBKEY)], NOTHING),
            step([bcast("doc_event", sender=7, flags=0x03)], [DATA(7, DOC_FRAME_DATA)])]),
        mk("output/frame/one-per-sub-id", "delivery",
           "Two subs on one conn: each frame carries its own sub_id.",
           [step([new(1), add(1, "a", {}), add(1, "b", {})], NOTHING),
            step([bcast("plain")], [DATA(1, '["EVENT","a",' + P + ']'), DATA(1, '["EVENT","b",' + P + ']')])]),
        mk("output/verbatim/whitespace-inside-object", "output",
           "Spaces, tabs, CR LF inside the event object (also before its closing brace) are kept.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("spaced")], [E(1, "s", "spaced")])]),
        mk("output/verbatim/key-order", "output",
           "Keys in reverse order (sig first, id last) are kept in that order.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("reordered")], [E(1, "s", "reordered")])]),
        mk("output/verbatim/escapes-kept", "output",
           "Escapes \\u00e9, \\/, \\n, \\\", \\\\, \\t, \\u0041 in content are kept as written, not decoded.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("escapes")], [E(1, "s", "escapes")])]),
        mk("output/verbatim/upper-case-unicode-escape", "output",
           "\\u00E9 (upper-case hex) stays as written next to \\u00e9.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("upper_escape")], [E(1, "s", "upper_escape")])]),
        mk("output/verbatim/surrogate-pair-escapes", "output",
           "Surrogate-pair escapes are kept as written, not turned into raw UTF-8.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("surrogates")], [E(1, "s", "surrogates")])]),
        mk("output/verbatim/raw-utf8", "output",
           "Raw non-ASCII UTF-8 in content (accents, CJK, emoji, U+2028) is kept, not escaped.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("utf8")], [E(1, "s", "utf8")])]),
        mk("output/verbatim/brackets-in-strings", "output_bytes",
           "Brackets, braces and quotes inside strings do not cut the event object short.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("brackets")], [E(1, "s", "brackets")])]),
        mk("output/verbatim/whitespace-around-object", "output_bytes",
           "Whitespace around the event object inside [\"EVENT\", …] is not part of the object ({notes} N-21).",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast_data('[ "EVENT" ,\n ' + P + ' \n]')], [E(1, "s", "plain")])]),
        mk("output/verbatim/space-after-comma", "output_bytes",
           "[\"EVENT\", {…}] with one space after the comma: the output has no space ({notes} N-21).",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast_data('["EVENT", ' + P + ']')], [DATA(1, '["EVENT","s",' + P + ']')])]),
        # ---- sub_id escaping: expected bytes typed by hand ----------------------
        esc("quote", 'a"b', '["EVENT","a\\"b",' + P + ']', "U+0022 is written \\\".",
            escq('U+0022 `"` | `\\"`')),
        esc("backslash", 'a\\b', '["EVENT","a\\\\b",' + P + ']', "U+005C is written \\\\.",
            escq('U+005C `\\` | `\\\\`')),
        esc("backspace", 'a\bb', '["EVENT","a\\bb",' + P + ']', "U+0008 is written \\b.",
            escq("U+0008 | `\\b`")),
        esc("tab", 'a\tb', '["EVENT","a\\tb",' + P + ']', "U+0009 is written \\t.",
            escq("U+0009 | `\\t`")),
        esc("newline", 'a\nb', '["EVENT","a\\nb",' + P + ']', "U+000A is written \\n.",
            escq("U+000A | `\\n`")),
        esc("form-feed", 'a\fb', '["EVENT","a\\fb",' + P + ']', "U+000C is written \\f.",
            escq("U+000C | `\\f`")),
        esc("carriage-return", 'a\rb', '["EVENT","a\\rb",' + P + ']', "U+000D is written \\r.",
            escq("U+000D | `\\r`")),
        esc("nul", 'a\x00b', '["EVENT","a\\u0000b",' + P + ']', "U+0000 is written \\u0000.",
            escq("any other code point below U+0020 | `\\u00` followed by two lowercase hex digits, e.g. U+001B → `\\u001b`")),
        esc("u0001", 'a\x01b', '["EVENT","a\\u0001b",' + P + ']', "U+0001 is written \\u0001.",
            escq("any other code point below U+0020 | `\\u00` followed by two lowercase hex digits, e.g. U+001B → `\\u001b`")),
        esc("bell", '\x07', '["EVENT","\\u0007",' + P + ']', "U+0007 alone is written \\u0007.",
            escq("any other code point below U+0020 | `\\u00` followed by two lowercase hex digits, e.g. U+001B → `\\u001b`")),
        esc("vertical-tab", 'a\x0bb', '["EVENT","a\\u000bb",' + P + ']', "U+000B has no short escape: \\u000b, lower-case b.",
            escq("any other code point below U+0020 | `\\u00` followed by two lowercase hex digits, e.g. U+001B → `\\u001b`")),
        esc("u000e", 'a\x0eb', '["EVENT","a\\u000eb",' + P + ']', "U+000E is written \\u000e, lower-case e.",
            escq("any other code point below U+0020 | `\\u00` followed by two lowercase hex digits, e.g. U+001B → `\\u001b`")),
        esc("escape-char", '\x1b[0m', '["EVENT","\\u001b[0m",' + P + ']', "U+001B is written \\u001b, lower-case b.",
            escq("any other code point below U+0020 | `\\u00` followed by two lowercase hex digits, e.g. U+001B → `\\u001b`")),
        esc("u001f", 'a\x1fb', '["EVENT","a\\u001fb",' + P + ']', "U+001F is written \\u001f, lower-case f.",
            escq("any other code point below U+0020 | `\\u00` followed by two lowercase hex digits, e.g. U+001B → `\\u001b`")),
        esc("delete-raw", 'a\x7fb', '["EVENT","a\x7fb",' + P + ']', "U+007F is not escaped: the raw byte 7f.",
            "esc_nothing_else"),
        esc("slash-raw", 'a/b', '["EVENT","a/b",' + P + ']', "/ is not escaped.",
            "esc_nothing_else"),
        esc("space-and-punctuation-raw", " '<>&", '["EVENT"," \'<>&",' + P + ']', "Space, apostrophe, <, >, & are not escaped.",
            escq("every other code point | unchanged")),
        esc("non-ascii-raw", 'é日🎉', '["EVENT","é日🎉",' + P + ']', "Non-ASCII characters stay raw UTF-8.",
            "esc_nothing_else"),
        esc("c1-control-raw", 'a\x80b', '["EVENT","a\x80b",' + P + ']', "U+0080 (a C1 control) is non-ASCII: raw bytes c2 80.",
            "esc_nothing_else"),
        esc("line-separator-raw", 'a\u2028b', '["EVENT","a\u2028b",' + P + ']', "U+2028 is non-ASCII: raw bytes e2 80 a8.",
            "esc_nothing_else"),
        esc("backslash-u-text", '\\u0041', '["EVENT","\\\\u0041",' + P + ']', "The 6-character text \\u0041 is written with its backslash escaped.",
            escq('U+005C `\\` | `\\\\`')),
        esc("doc-example-1", 'a"b\\c\t', '["EVENT","a\\"b\\\\c\\t",' + P + ']', "PROTOCOL {example-escaping}: a\"b\\c + TAB becomes \"a\\\"b\\\\c\\t\".",
            escq('U+0022 `"` | `\\"`')),
        esc("doc-example-2", 'x\x01é\x7f/', '["EVENT","x\\u0001é\x7f/",' + P + ']', "PROTOCOL {example-escaping}: x, U+0001, é, U+007F, / : only U+0001 is escaped.",
            "esc_nothing_else"),
        esc("all-short-escapes", '"\\\b\f\n\r\t', '["EVENT","\\"\\\\\\b\\f\\n\\r\\t",' + P + ']', "All seven two-character escapes in one sub_id.",
            escq("U+0008 | `\\b`")),
        esc("emoji-64-bytes", '🎉' * 16, '["EVENT","' + '🎉' * 16 + '",' + P + ']', "A 64-byte sub_id of 16 four-byte emoji stays raw.",
            "esc_nothing_else"),
    ]
    return "Output frames: verbatim event bytes and sub_id escaping (PROTOCOL {output-frame}, {sub-id-json-string})", events, cases


# ===========================================================================
# ordering
# ===========================================================================

def ordering():
    events = {
        "e1": ev("ordering-e1"),
        "e2": ev("ordering-e2"),
        "e3": ev("ordering-e3"),
        "e4": ev("ordering-e4"),
        "e5": ev("ordering-e5"),
        "k7a": ev("ordering-k7a", kind=7),
        "dm": ev("ordering-dm", kind=4, tags=[["p", BOB]]),
    }
    cases = [
        mk("ordering/bcast/two-events", "order_out",
           "Two Bcasts in one step to one subscription: frames in command order.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("e1"), bcast("e2")], [E(1, "s", "e1"), E(1, "s", "e2")], ordered=True)]),
        mk("ordering/bcast/five-events", "order_out",
           "Five Bcasts in one step: five frames in command order.",
           [step([new(1), add(1, "s", {"kinds": [1]})], NOTHING),
            step([bcast("e%d" % n) for n in (3, 1, 5, 2, 4)],
                 [E(1, "s", "e%d" % n) for n in (3, 1, 5, 2, 4)], ordered=True)]),
        mk("ordering/bcast/across-conns", "order_out",
           "Bcasts alternating between a conn-1 and a conn-2 subscription: frames follow command order.",
           [step([new(1), new(2), add(1, "s", {"kinds": [1]}), add(2, "s", {"kinds": [7]})], NOTHING),
            step([bcast("e1"), bcast("k7a"), bcast("e2")],
                 [E(1, "s", "e1"), E(2, "s", "k7a"), E(1, "s", "e2")], ordered=True)]),
        mk("ordering/closed/closed-then-event", "order_out",
           "A failed Add then a Bcast in one step: CLOSED first, then the event.",
           [step([new(1), add(1, "k", {"kinds": [1]})], NOTHING),
            step([add_raw(1, "s", "bad"), bcast("e1")], [CL(1, "s", "invalid"), E(1, "k", "e1")], ordered=True)]),
        mk("ordering/closed/event-then-closed", "order_out",
           "A Bcast then a failed Add in one step: the event first, then CLOSED.",
           [step([new(1), add(1, "k", {"kinds": [1]})], NOTHING),
            step([bcast("e1"), add_raw(1, "s", "bad")], [E(1, "k", "e1"), CL(1, "s", "invalid")], ordered=True)]),
        mk("ordering/closed/two-closed", "order_out",
           "Two failed Adds: their CLOSED frames in command order.",
           [step([new(1)], NOTHING),
            step([add_raw(1, "b", "x"), add_raw(1, "a", '["REQ","a",{"#foo":["x"]}]')],
                 [CL(1, "b", "invalid"), CL(1, "a", "unsupported")], ordered=True)]),
        mk("ordering/sequence/add-then-bcast", "order_in",
           "New, Add and Bcast in one write: the Add is processed before the Bcast.",
           [step([new(1), add(1, "s", {}), bcast("e1")], [E(1, "s", "e1")])]),
        mk("ordering/sequence/bcast-then-add", "order_in",
           "A Bcast before the Add in one write is not delivered to the later subscription.",
           [step([new(1), bcast("e1"), add(1, "s", {})], NOTHING),
            step([bcast("e2")], [E(1, "s", "e2")])]),
        mk("ordering/sequence/remove-then-bcast", "order_in",
           "Remove then Bcast in one write: not delivered.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([remove(1, "s"), bcast("e1")], NOTHING)]),
        mk("ordering/sequence/bcast-then-remove", "order_in",
           "Bcast then Remove in one write: delivered.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("e1"), remove(1, "s")], [E(1, "s", "e1")])]),
        mk("ordering/sequence/replace-then-bcast", "order_in",
           "Replacing s (kinds 1 → 7) then a kind-1 Bcast, in one write: not delivered; the other way round: delivered.",
           [step([new(1), add(1, "s", {"kinds": [1]})], NOTHING),
            step([add(1, "s", {"kinds": [7]}), bcast("e1")], NOTHING),
            step([add(1, "s", {"kinds": [1]})], NOTHING),
            step([bcast("e2"), add(1, "s", {"kinds": [7]})], [E(1, "s", "e2")])]),
        mk("ordering/sequence/auth-then-bcast", ("order_in", "auth_at_once"),
           "Auth then a need_filter Bcast in one write: delivered.",
           [step([new(1), add(1, "s", {"kinds": [4]})], NOTHING),
            step([auth(1, ALICE), bcast("dm", flags=0x01)], [E(1, "s", "dm")])]),
        mk("ordering/sequence/bcast-then-auth", "order_in",
           "A need_filter Bcast then Auth in one write: not delivered.",
           [step([new(1), add(1, "s", {"kinds": [4]})], NOTHING),
            step([bcast("dm", flags=0x01), auth(1, ALICE)], NOTHING)]),
        mk("ordering/sequence/close-then-bcast", "order_in",
           "Close then Bcast in one write: not delivered; Bcast then Close: delivered.",
           [step([new(1), add(1, "s", {}), new(2), add(2, "s", {})], NOTHING),
            step([close(1), bcast("e1")], [E(2, "s", "e1")]),
            step([bcast("e2"), close(2)], [E(2, "s", "e2")])]),
        mk("ordering/sequence/reset-then-bcast", "order_in",
           "New (reset) then Bcast in one write: not delivered.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([new(1), bcast("e1")], NOTHING)]),
        mk("ordering/sequence/failed-add-then-bcast", ("order_in", "fail"),
           "A failed Add of s then a Bcast in one write: CLOSED, and s no longer receives.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([add_raw(1, "s", "[1]"), bcast("e1")], [CL(1, "s", "invalid")])]),
        mk("ordering/sequence/whole-session-one-write", ("order_in", "order_out"),
           "A whole session in one write: New, Add, Bcast, Auth, Bcast, Remove, Bcast, Close.",
           [step([new(1), add(1, "s", {"kinds": [1, 4]}), bcast("e1"), bcast("dm", flags=0x01),
                  auth(1, ALICE), bcast("e2"), remove(1, "s"), bcast("e3"), close(1)],
                 [E(1, "s", "e1"), E(1, "s", "e2")], ordered=True)]),
    ]
    return "Ordering of commands and frames (PROTOCOL {ordering})", events, cases


# ===========================================================================
# stream: framing rules as seen from the worker, large payloads, end of input
# ===========================================================================

def stream():
    BIG = 1048576  # 1 MiB
    big_event = ev("stream-big", content="a" * BIG)
    bulk_target = ev("stream-bulk-target")
    bulk_other = ev("stream-bulk-other")
    bulk_ids = [hex64("stream-bulk:%d" % n) for n in range(16000)] + [eid("stream-bulk-target")]
    bulk_req = '["REQ","s",{"ids":[' + ",".join('"%s"' % x for x in bulk_ids) + ']}]'
    assert len(bulk_req) > BIG
    events = {
        "n1": ev("stream-n1"),
        "n2": ev("stream-n2"),
        "n3": ev("stream-n3"),
        "dm": ev("stream-dm", kind=4, tags=[["p", BOB]]),
        "big": big_event,
        "bulk_target": bulk_target,
        "bulk_other": bulk_other,
        "doc_event": DOC_EVENT,
    }
    N1 = events["n1"]
    HB1 = fr(1)                      # heartbeat on channel 1
    # packed commands (for garbage and raw-frame cases)
    bc_n1 = sc("bcast", -1, data=event_msg(N1))
    bc_n1_frame = fr(1, bc_n1)
    sub_frame = fr(1, sc("add", 1, sub_id="s", data=js(["REQ", "s", {}])))
    # the frames of the worked examples (PROTOCOL.md#examples), typed from the document
    DOC_NEW = "010e0000000101070000000000000000000000"
    DOC_ADD = ("012e00000003000700000004000000737562311c0000005b"
               "22524551222c2273756231222c7b226b696e6473223a5b31"
               "5d7d5d")
    DOC_AUTH = ("012e000000050007000000000000002000000079be667ef9"
                "dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16"
                "f81798")
    DOC_REMOVE = "0112000000040007000000040000007375623100000000"
    DOC_CLOSE = "010e0000000200070000000000000000000000"

    def setup():
        return step([new(1), add(1, "s", {})], NOTHING)

    def garbage(detail, comment, frames, after, after_expect, q="nonfatal"):
        """A garbage channel-1 payload is dropped; later commands still work."""
        return mk("stream/garbage/" + detail, (q, "decode_drop"), comment,
                  [setup(),
                   step([raw(*frames)], NOTHING),
                   step(after, after_expect)])

    cases = [
        # ---- heartbeats and foreign channels --------------------------------
        mk("stream/heartbeat/channel-1", "heartbeat",
           "A zero-length frame on channel 1 is skipped, not decoded as a (malformed) SubCommand.",
           [step([raw(HB1), new(1), raw(HB1, HB1), add(1, "s", {}), raw(HB1)], NOTHING),
            step([raw(HB1), bcast("n1"), raw(HB1)], [E(1, "s", "n1")])]),
        mk("stream/heartbeat/only-heartbeats", "heartbeat",
           "A step of only heartbeats produces nothing, and the worker keeps going.",
           [setup(), step([raw(HB1, HB1, HB1)], NOTHING), step([bcast("n1")], [E(1, "s", "n1")])]),
        mk("stream/heartbeat/other-channels", "heartbeat",
           "Zero-length frames on channels 0, 2, 3 and 255 are skipped.",
           [setup(),
            step([raw(fr(0), fr(2), fr(3), fr(255)), bcast("n1")], [E(1, "s", "n1")])]),
        mk("stream/foreign/channel-0-payload", "skip",
           "A frame on reserved channel 0 with a payload is skipped whole.",
           [setup(), step([raw(fr(0, bytes.fromhex("deadbeef"))), bcast("n1")], [E(1, "s", "n1")])]),
        mk("stream/foreign/channel-2-broadcast-frame", "skip",
           "A channel-2 frame in the input (a valid BroadcastFrame) is skipped, not echoed or acted on.",
           [setup(), step([raw(fr(2, struct.pack("<iI", 1, 1) + b"x")), bcast("n1")], [E(1, "s", "n1")])]),
        mk("stream/foreign/channel-3-valid-subcommand", "skip",
           "A valid Remove 1 s payload on channel 3 is not executed: s still receives.",
           [setup(), step([raw(fr(3, sc("remove", 1, sub_id="s")))], NOTHING),
            step([bcast("n1")], [E(1, "s", "n1")])]),
        mk("stream/foreign/channel-255-valid-subcommand", "skip",
           "A valid Bcast payload on channel 255 is not executed: nothing is delivered.",
           [setup(), step([raw(fr(255, bc_n1))], NOTHING)]),
        mk("stream/foreign/channel-7-large", "skip",
           "A 64 KiB frame on channel 7 is skipped whole; the next command works.",
           [setup(), step([raw(fr(7, b"\x01" * 65536)), bcast("n1")], [E(1, "s", "n1")])]),
        mk("stream/foreign/channel-2-looks-like-header", "skip",
           "A channel-2 payload that contains channel-1 frame bytes is skipped whole, not parsed.",
           [setup(), step([raw(fr(2, bc_n1_frame))], NOTHING), step([bcast("n2")], [E(1, "s", "n2")])]),
        # ---- split writes -----------------------------------------------------------
        mk("stream/split/one-byte", "split",
           "New, Add and Bcast written one byte at a time.",
           [step([new(1), add(1, "s", {}), bcast("n1")], [E(1, "s", "n1")], chunk=1)]),
        mk("stream/split/one-byte-with-pause", ("split", "wouldblock"),
           "New and Add written one byte at a time with 1 ms pauses, then a Bcast.",
           [step([new(1), add(1, "s", {"kinds": [1]})], NOTHING, chunk=1, pause_ms=1),
            step([bcast("n1")], [E(1, "s", "n1")], chunk=1)]),
        mk("stream/split/chunk-2", "split",
           "Writes of 2 bytes.",
           [step([new(1), add(1, "s", {}), bcast("n1")], [E(1, "s", "n1")], chunk=2)]),
        mk("stream/split/chunk-3-pause", ("split", "wouldblock"),
           "Writes of 3 bytes with 1 ms pauses: headers and length fields split across reads.",
           [step([new(1), add(1, "s", {}), bcast("n1")], [E(1, "s", "n1")], chunk=3, pause_ms=1)]),
        mk("stream/split/chunk-7", "split",
           "Writes of 7 bytes.",
           [step([new(1), add(1, "s", {}), auth(1, ALICE), bcast("dm", flags=0x01)], [E(1, "s", "dm")], chunk=7)]),
        mk("stream/split/chunk-13-with-heartbeats", "split",
           "Writes of 13 bytes over commands mixed with heartbeats and foreign frames.",
           [step([raw(HB1), new(1), raw(fr(9, b"abc")), add(1, "s", {}), raw(HB1), bcast("n1"), raw(fr(0))],
                 [E(1, "s", "n1")], chunk=13)]),
        mk("stream/split/header-then-payload", ("split", "wouldblock"),
           "A Bcast frame sent as its 5-byte header, a pause, then its payload.",
           [setup(), step([raw(bc_n1_frame[:5]), raw(bc_n1_frame[5:])], [E(1, "s", "n1")], chunk=5, pause_ms=2)]),
        mk("stream/split/many-commands-one-write", "split",
           "Fifty commands coalesced into one write.",
           [step([new(1)] + [add(1, "s%02d" % n, {"kinds": [7]}) for n in range(48)] + [add(1, "last", {})],
                 NOTHING),
            step([bcast("n1")], [E(1, "last", "n1")])]),
        # ---- large payloads -------------------------------------------------------
        mk("stream/large/event-1mib", ("max", "output"),
           "A Bcast whose event content is 1 MiB of 'a': delivered verbatim.",
           [setup(), step([bcast("big")], [E(1, "s", "big")])]),
        mk("stream/large/event-1mib-chunked", ("max", "split"),
           "The 1 MiB event written in 4 KiB chunks.",
           [setup(), step([bcast("big")], [E(1, "s", "big")], chunk=4096)]),
        mk("stream/large/req-1mib", ("max", "ids"),
           "A REQ of about 1 MiB (16001 ids); the last id matches.",
           [step([new(1), add_raw(1, "s", bulk_req)], NOTHING),
            step([bcast("bulk_target")], [E(1, "s", "bulk_target")]),
            step([bcast("bulk_other")], NOTHING)]),
        # ---- garbage payloads on channel 1 ------------------------------------------
        garbage("truncated-payload", "A 2-byte channel-1 payload (truncated) is dropped.",
                [fr(1, bytes.fromhex("0900"))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("truncated-sub-id-len", "An Add whose sub_id_len points past the payload is dropped.",
                [fr(1, sc("add", 1, sub_id="s", data=b"[]", sub_id_len=256))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("unknown-op", "op 9 with a well-formed layout is dropped.",
                [fr(1, sc(9, 1))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("op-zero", "op 0 is dropped.",
                [fr(1, sc(0, 1, sub_id="s", data=b"x"))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("trailing-bytes", "A Bcast with one trailing byte is dropped: its event is not delivered.",
                [fr(1, sc("bcast", -1, data=event_msg(N1), trailing=b"\x00"))], [bcast("n2")], [E(1, "s", "n2")]),
        garbage("bcast-invalid-conn", "A Bcast with conn -2 is dropped: its event is not delivered.",
                [fr(1, sc("bcast", -2, data=event_msg(N1)))], [bcast("n2")], [E(1, "s", "n2")]),
        garbage("new-invalid-conn", "New with conn -1 is dropped; the worker goes on.",
                [fr(1, sc("new", -1))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("close-with-data", "Close with data (invalid_data) is dropped: conn 1 stays open.",
                [fr(1, sc("close", 1, data=b"x"))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("remove-with-data", "Remove with data (invalid_data) is dropped: s stays.",
                [fr(1, sc("remove", 1, sub_id="s", data=b"x"))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("add-empty-data", "Add with empty data is a decode error, dropped: no CLOSED.",
                [fr(1, sc("add", 1, sub_id="t"))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("add-empty-sub-id", "Add with an empty sub_id is dropped: no CLOSED, no subscription.",
                [fr(1, sc("add", 1, sub_id="", data=js(["REQ", "", {}])))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("add-sub-id-65-bytes", "Add with a 65-byte sub_id is dropped: no CLOSED, no subscription.",
                [fr(1, sc("add", 1, sub_id="x" * 65, data=js(["REQ", "x" * 65, {}])))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("add-sub-id-not-utf8", "Add with sub_id bytes ff fe is dropped: no CLOSED.",
                [fr(1, sc("add", 1, sub_id=b"\xff\xfe", data=b"not json"))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("remove-sub-id-not-utf8", "Remove with a non-UTF-8 sub_id is dropped; s stays.",
                [fr(1, sc("remove", 1, sub_id=b"s\xc3"))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("auth-31-bytes", "Auth with 31 data bytes is dropped: the DM is not delivered.",
                [fr(1, sc("auth", 1, data=bytes.fromhex(ALICE)[:31]))], [bcast("dm", flags=0x01)], NOTHING),
        garbage("auth-hex-text", "Auth carrying the 64 hex characters instead of 32 bytes is dropped.",
                [fr(1, sc("auth", 1, data=ALICE.encode()))], [bcast("dm", flags=0x01)], NOTHING),
        garbage("bcast-empty-data", "Bcast with empty data is dropped.",
                [fr(1, sc("bcast", -1))], [bcast("n1")], [E(1, "s", "n1")]),
        garbage("bcast-with-sub-id", "Bcast with a sub_id (invalid_sub_id) is dropped: its event is not delivered.",
                [fr(1, sc("bcast", -1, sub_id="s", data=event_msg(N1)))], [bcast("n2")], [E(1, "s", "n2")]),
        mk("stream/garbage/new-with-sub-id", ("nonfatal", "add_unknown"),
           "New conn 5 with a sub_id is dropped: conn 5 is not created, so an invalid Add on it gets no CLOSED.",
           [step([raw(fr(1, sc("new", 5, sub_id="x")))], NOTHING),
            step([add_raw(5, "s", "not json")], NOTHING)]),
        mk("stream/garbage/several-in-a-row", "nonfatal",
           "Several bad payloads in one write, each dropped, then a good command.",
           [setup(),
            step([raw(fr(1, b"\x06"), fr(1, sc(200, 1)), fr(1, sc("new", -5)), fr(1, b"\x00" * 13)), bcast("n1")],
                 [E(1, "s", "n1")])]),
        # ---- the frames of the worked examples (PROTOCOL.md#examples), as bytes -------
        mk("stream/raw/doc-example-frames", ("new", "remove", "close"),
           "The New, Add, Auth, Remove and Close frames of PROTOCOL {examples}, sent as raw bytes.",
           [step([rawhex(DOC_NEW), rawhex(DOC_ADD), rawhex(DOC_AUTH)], NOTHING),
            step([bcast("doc_event", sender=7, flags=0x03)], [DATA(7, DOC_FRAME_DATA)]),
            step([rawhex(DOC_REMOVE), bcast("doc_event", sender=7, flags=0x03)], NOTHING),
            step([rawhex(DOC_CLOSE), add_raw(7, "sub1", "not json")], NOTHING)]),
        # ---- end of input: clean ----------------------------------------------------------
        mk("stream/eof/clean-immediately", "clean_exit",
           "Closing the input right after set-up: exit 0.",
           [end([], NOTHING, exit=0, close_input=True)]),
        mk("stream/eof/clean-after-commands", "clean_exit",
           "Commands, then the input is closed on a frame boundary: exit 0.",
           [step([new(1), add(1, "s", {})], NOTHING),
            end([remove(1, "s"), close(1)], NOTHING, exit=0, close_input=True)]),
        mk("stream/eof/clean-flushes-output", "clean_exit",
           "A Bcast in the last write before EOF: its frame is written before exit 0.",
           [setup(),
            end([bcast("n1"), bcast("n2")], [E(1, "s", "n1"), E(1, "s", "n2")], exit=0, close_input=True)]),
        mk("stream/eof/clean-flushes-closed", "clean_exit",
           "A failed Add right before EOF: CLOSED is written, then exit 0.",
           [step([new(1)], NOTHING),
            end([add_raw(1, "s", "nope")], [CL(1, "s", "invalid")], exit=0, close_input=True)]),
        mk("stream/eof/clean-after-heartbeat", ("clean_exit", "heartbeat"),
           "A heartbeat is the last frame: clean end, exit 0.",
           [setup(), end([raw(HB1)], NOTHING, exit=0, close_input=True)]),
        mk("stream/eof/clean-after-foreign-frame", ("clean_exit", "skip"),
           "A channel-3 frame is the last frame: clean end, exit 0.",
           [setup(), end([raw(fr(3, b"xyz"))], NOTHING, exit=0, close_input=True)]),
        mk("stream/eof/clean-after-garbage", ("clean_exit", "nonfatal"),
           "A payload decode error is not fatal: a bad last frame still ends with exit 0.",
           [setup(), end([raw(fr(1, sc(9, 1)))], NOTHING, exit=0, close_input=True)]),
        mk("stream/eof/clean-after-one-byte-writes", ("clean_exit", "split"),
           "Commands written one byte at a time, then EOF: frames flushed, exit 0.",
           [end([new(1), add(1, "s", {}), bcast("n1")], [E(1, "s", "n1")], exit=0, close_input=True, chunk=1)]),
        # ---- end of input: fatal ----------------------------------------------------------
        mk("stream/fatal/oversize-len", ("too_large", "fatal_exit"),
           "A header with len 16777217 (one over the maximum): exit 2 without waiting for the payload.",
           [setup(), end([rawhex("0101000001")], NOTHING, exit=2)]),
        mk("stream/fatal/oversize-len-max-u32", ("too_large", "fatal_exit"),
           "A header with len 0xffffffff: exit 2, nothing allocated for it.",
           [setup(), end([rawhex("01ffffffff")], NOTHING, exit=2)]),
        mk("stream/fatal/oversize-foreign-channel", ("too_large_all", "fatal_exit"),
           "An oversize len on channel 7, which would be skipped: still fatal, exit 2 ({notes} N-4).",
           [setup(), end([rawhex("0701000001")], NOTHING, exit=2)]),
        mk("stream/fatal/oversize-then-close", ("too_large", "fatal_exit"),
           "An oversize header followed by the end of input: frame_too_large, exit 2.",
           [setup(), end([rawhex("0101000001")], NOTHING, exit=2, close_input=True)]),
        mk("stream/fatal/oversize-one-byte-writes", ("too_large", "split"),
           "The oversize header written one byte at a time: exit 2.",
           [setup(), end([rawhex("0100000002")], NOTHING, exit=2, chunk=1)]),
        mk("stream/fatal/oversize-no-resync", ("no_resync", "fatal_exit"),
           "Bytes after an oversize header are not read as frames: the matching Bcast behind it is not delivered.",
           [setup(), end([rawhex("0101000001"), raw(bc_n1_frame)], NOTHING, exit=2)]),
        mk("stream/fatal/oversize-after-output", ("owed", "fatal_exit"),
           "Frames caused before an oversize header in the same write are written before exit 2.",
           [setup(), end([bcast("n1"), rawhex("0101000001")], [E(1, "s", "n1")], exit=2)]),
        mk("stream/fatal/truncated-header-1-byte", ("truncated", "fatal_exit"),
           "The input ends after 1 header byte: exit 2.",
           [setup(), end([rawhex("01")], NOTHING, exit=2, close_input=True)]),
        mk("stream/fatal/truncated-header-4-bytes", ("truncated", "fatal_exit"),
           "The input ends after 4 header bytes: exit 2.",
           [setup(), end([rawhex("010e0000")], NOTHING, exit=2, close_input=True)]),
        mk("stream/fatal/truncated-header-only", ("truncated", "fatal_exit"),
           "A complete header announcing 14 bytes, then the end of input: exit 2.",
           [setup(), end([rawhex("010e000000")], NOTHING, exit=2, close_input=True)]),
        mk("stream/fatal/truncated-payload", ("truncated", "fatal_exit"),
           "PROTOCOL {example-framing}: header for 14 bytes, 3 payload bytes, end of input: exit 2.",
           [setup(), end([rawhex("010e00000001010700")], NOTHING, exit=2, close_input=True)]),
        mk("stream/fatal/truncated-bcast-not-executed", ("truncated", "fatal_exit"),
           "A matching Bcast frame missing its last byte is never executed: no frame, exit 2.",
           [setup(), end([raw(bc_n1_frame[:-1])], NOTHING, exit=2, close_input=True)]),
        mk("stream/fatal/truncated-foreign-channel", ("truncated_skipped", "fatal_exit"),
           "A channel-7 frame cut short by the end of input is fatal too: exit 2.",
           [setup(), end([rawhex("0705000000aabb")], NOTHING, exit=2, close_input=True)]),
        mk("stream/fatal/truncated-after-commands", ("truncated", "fatal_exit"),
           "Valid commands (no output), then a partial frame and the end of input: exit 2.",
           [end([new(1), add(1, "s", {}), raw(sub_frame[:7])], NOTHING, exit=2, close_input=True)]),
    ]
    return "Framing as seen by a worker: heartbeats, foreign channels, split writes, large payloads, end of input (PROTOCOL {framing}, {exit-status})", events, cases


# ===========================================================================
# Issue 11: the readings PROTOCOL.md#closed-message, PROTOCOL.md#output-promptness, PROTOCOL.md#oversize-output, PROTOCOL.md#output-before-fatal-error and PROTOCOL.md#json-in-add-and-bcast
# settle, and every bound at the bound and one past it. These cases are
# appended to the sections they belong to (EXTRA, below).
# ===========================================================================

U64_MAX = 18446744073709551615
P53 = 9007199254740992          # 2^53
MAX_PAYLOAD = 16777216          # PROTOCOL {maximum-payload}


def esc_first(hex_text):
    """The JSON string body of hex_text with its first character written as a
    \\u00xx escape (an input spelling; decoding it gives hex_text back)."""
    return "\\u%04x" % ord(hex_text[0]) + hex_text[1:]


def nested(depth_arrays):
    return "[" * depth_arrays + "]" * depth_arrays


def req_fail_steps(text=None, data_hex=None, prefix="invalid"):
    """s (kinds 1) and keep (kinds 1) exist; the bad Add for s gives CLOSED
    and removes s; keep still receives kind 1 (event k1 of the case)."""
    bad = add_raw(1, "s", text) if text is not None else add_hex(1, "s", data_hex)
    return [step([new(1), add(1, "s", {"kinds": [1]}), add(1, "keep", {"kinds": [1]})], NOTHING),
            step([bad], [CL(1, "s", prefix)]),
            step([bcast("k1")], [E(1, "keep", "k1")])]


def extra_req():
    k1 = ev("x-req-k1")
    k7 = ev("x-req-k7", kind=7)
    tx = ev("x-req-tx", tags=[["t", "x"]])
    c992 = ev("x-req-c992", created_at=P53)
    c993 = ev("x-req-c993", created_at=P53 + 1)
    cmax = ev("x-req-cmax", created_at=U64_MAX)
    events = {"k1": k1, "k7": k7, "tx": tx, "c992": c992, "c993": c993, "cmax": cmax}

    def ok(cid, q, text, comment, checks, level="MUST"):
        return mk(cid, q, comment,
                  [step([new(1), add_raw(1, "s", text)], NOTHING)]
                  + [step([bcast(name)], exp) for name, exp in checks],
                  events=events, level=level)

    def fail(cid, q, text, comment, level="MUST"):
        return mk(cid, q, comment, req_fail_steps(text=text), events=events, level=level)

    def fail_hex(cid, q, data, comment):
        return mk(cid, q, comment, req_fail_steps(data_hex=data.hex()), events=events)

    deep_arrays = lambda n: '["REQ","s",{"kinds":[1],"x":%s}]' % nested(n)
    deep_objects = lambda n: '["REQ","s",{"kinds":[1],"x":%s1%s}]' % ('{"a":' * n, "}" * n)
    cases = [
        # ---- PROTOCOL.md#decoded-strings decoded strings ----------------------------------------------
        ok("req/decoded/key-escaped", "decoded", '["REQ","s",{"kind\\u0073":[7]}]',
           'The key "kind\\u0073" is kinds: kind 7 is delivered, kind 1 is not.',
           [("k1", NOTHING), ("k7", [E(1, "s", "k7")])]),
        ok("req/decoded/tag-key-escaped", "decoded", '["REQ","s",{"\\u0023t":["x"]}]',
           'The key "\\u0023t" is #t: only the event tagged t=x is delivered.',
           [("k1", NOTHING), ("tx", [E(1, "s", "tx")])]),
        ok("req/decoded/req-literal-escaped", "decoded", '["\\u0052EQ","s",{"kinds":[1]}]',
           'The first element "\\u0052EQ" is "REQ".',
           [("k1", [E(1, "s", "k1")])]),
        ok("req/decoded/tag-value-escaped", "decoded", '["REQ","s",{"#t":["\\u0078"]}]',
           'The tag value "\\u0078" is x.',
           [("tx", [E(1, "s", "tx")])]),
        ok("req/decoded/id-hex-escaped", "decoded",
           '["REQ","s",{"ids":["%s"]}]' % esc_first(eid("x-req-k1")),
           "An ids value whose first hex digit is written as a \\u escape is the 64-hex id.",
           [("k7", NOTHING), ("k1", [E(1, "s", "k1")])]),
        fail("req/decoded/hex-escape-decodes-uppercase", "decoded",
             '["REQ","s",{"authors":["\\u0041%s"]}]' % ALICE[1:],
             "An authors value whose first character decodes to an uppercase A is not lowercase hex: CLOSED invalid."),
        # ---- PROTOCOL.md#integers integers -------------------------------------------------------
        ok("req/integers/since-exact-above-2p53", ("int_exact",),
           '["REQ","s",{"since":%d}]' % (P53 + 1),
           "since 2^53+1 does not match created_at 2^53 (a float would round them equal), and matches 2^53+1.",
           [("c992", NOTHING), ("c993", [E(1, "s", "c993")])]),
        ok("req/integers/until-exact-above-2p53", ("int_exact",),
           '["REQ","s",{"until":%d}]' % P53,
           "until 2^53 does not match created_at 2^53+1, and matches 2^53.",
           [("c993", NOTHING), ("c992", [E(1, "s", "c992")])]),
        ok("req/integers/since-u64-max", ("int_range", "bounds"),
           '["REQ","s",{"since":%d}]' % U64_MAX,
           "since 2^64-1 is accepted; it matches only created_at 2^64-1.",
           [("k1", NOTHING), ("cmax", [E(1, "s", "cmax")])]),
        ok("req/integers/until-u64-max", ("int_range", "bounds"),
           '["REQ","s",{"until":%d}]' % U64_MAX,
           "until 2^64-1 is accepted and matches every created_at.",
           [("k1", [E(1, "s", "k1")]), ("cmax", [E(1, "s", "cmax")])]),
        ok("req/integers/limit-u64-max", ("int_range", "limit"),
           '["REQ","s",{"kinds":[1],"limit":%d}]' % U64_MAX,
           "limit 2^64-1 is accepted (and ignored).",
           [("k1", [E(1, "s", "k1")])]),
        fail("req/integers/since-u64-max-plus-1", "int_range", '["REQ","s",{"since":%d}]' % (U64_MAX + 1),
             "since 2^64 is out of range: CLOSED invalid."),
        fail("req/integers/until-u64-max-plus-1", "int_range", '["REQ","s",{"until":%d}]' % (U64_MAX + 1),
             "until 2^64 is out of range: CLOSED invalid."),
        fail("req/integers/limit-u64-max-plus-1", "int_range", '["REQ","s",{"limit":%d}]' % (U64_MAX + 1),
             "limit 2^64 is out of range: CLOSED invalid."),
        fail("req/integers/since-minus-zero", "integers", '["REQ","s",{"since":-0}]',
             "-0 has a minus sign: not a non-negative integer, CLOSED invalid."),
        fail("req/integers/kinds-minus-zero", "integers", '["REQ","s",{"kinds":[-0]}]',
             "kinds [-0]: not an integer of the spelling the spec requires, CLOSED invalid."),
        fail("req/integers/since-one-point-zero", "integers", '["REQ","s",{"since":1.0}]',
             "1.0 has a fraction part: CLOSED invalid."),
        fail("req/integers/since-exponent", "integers", '["REQ","s",{"since":1e3}]',
             "1e3 has an exponent: CLOSED invalid."),
        fail("req/integers/kinds-exponent", "integers", '["REQ","s",{"kinds":[1E0]}]',
             "kinds [1E0] has an exponent: CLOSED invalid."),
        fail("req/integers/limit-minus-zero", "integers", '["REQ","s",{"limit":-0}]',
             "limit -0: CLOSED invalid."),
        # ---- PROTOCOL.md#json-text the JSON text -----------------------------------------------------
        fail_hex("req/json-text/byte-order-mark", "json_text",
                 b"\xef\xbb\xbf" + b'["REQ","s",{"kinds":[1]}]',
                 "A REQ starting with a UTF-8 byte-order mark is not JSON: CLOSED invalid."),
        fail_hex("req/json-text/invalid-utf8-in-ignored-key", "json_text",
                 b'["REQ","s",{"kinds":[1],"search":"a\xffb"}]',
                 "An 0xff byte inside the value of an ignored key: CLOSED invalid."),
        fail_hex("req/json-text/encoded-surrogate-in-ignored-key", "json_text",
                 b'["REQ","s",{"kinds":[1],"search":"\xed\xa0\x80"}]',
                 "The bytes ed a0 80 (an encoded surrogate, invalid UTF-8) in an ignored value: CLOSED invalid."),
        fail("req/json-text/lone-high-surrogate", "json_text", '["REQ","s",{"kinds":[1],"search":"\\ud800"}]',
             'A lone "\\ud800" escape in an ignored value: CLOSED invalid.'),
        fail("req/json-text/lone-low-surrogate", "json_text", '["REQ","s",{"kinds":[1],"search":"\\udc00x"}]',
             'A lone "\\udc00" escape: CLOSED invalid.'),
        fail("req/json-text/high-surrogate-then-letter", "json_text", '["REQ","s",{"kinds":[1],"search":"\\ud83e\\u0041"}]',
             "A high surrogate escape followed by \\u0041 is unpaired: CLOSED invalid."),
        fail("req/json-text/lone-surrogate-in-tag-value", "json_text", '["REQ","s",{"#t":["\\ud800"]}]',
             "A lone surrogate escape in a #t value: CLOSED invalid."),
        ok("req/json-text/surrogate-pair", "pair_ok", '["REQ","s",{"kinds":[1],"search":"\\ud83e\\udd80"}]',
           "A surrogate pair escape is one code point: the REQ is valid.",
           [("k1", [E(1, "s", "k1")])]),
        # ---- PROTOCOL.md#implementation-limits implementation limits ---------------------------------------------------
        ok("req/limits/depth-64-arrays", "depth_must", deep_arrays(62),
           "Depth 64 (the REQ array, the filter, 62 nested arrays in an ignored key) is accepted.",
           [("k1", [E(1, "s", "k1")])]),
        ok("req/limits/depth-64-objects", "depth_must", deep_objects(62),
           "Depth 64 made of nested objects in an ignored key is accepted.",
           [("k1", [E(1, "s", "k1")])]),
        fail("req/limits/depth-65-arrays", "depth_may", deep_arrays(63),
             "Depth 65: a worker MAY refuse it, and then with CLOSED invalid.", level="MAY"),
        fail("req/limits/depth-65-objects", "depth_may", deep_objects(63),
             "Depth 65 of objects: a worker MAY refuse it, and then with CLOSED invalid.", level="MAY"),
        fail("req/limits/duplicate-key", "dup_may", '["REQ","s",{"kinds":[7],"kinds":[1]}]',
             "kinds twice in one filter: a worker MAY refuse it, and then with CLOSED invalid.", level="MAY"),
        fail("req/limits/duplicate-key-escaped", ("dup_may", "decoded"), '["REQ","s",{"kinds":[7],"kind\\u0073":[1]}]',
             "kinds and kind\\u0073 are the same key: a worker MAY refuse it, and then with CLOSED invalid.", level="MAY"),
        # ---- bounds: one past the 64-hex length (PROTOCOL.md#req-parsing) -------------------------
        fail("req/authors/65-chars", FAIL_ROW("`ids` or `authors` is not an array of 64-character lowercase hex strings"),
             '["REQ","s",{"authors":["%s0"]}]' % ALICE, "An authors value of 65 hex characters: CLOSED invalid."),
        fail("req/tag-p/65-chars", FAIL_ROW("a `#e` or `#p` value contains a string that is not 64-character lowercase hex"),
             '["REQ","s",{"#p":["%s0"]}]' % BOB, "A #p value of 65 hex characters: CLOSED invalid."),
        fail("req/tag-e/65-chars", FAIL_ROW("a `#e` or `#p` value contains a string that is not 64-character lowercase hex"),
             '["REQ","s",{"#e":["%s0"]}]' % eid("x-req-k1"), "A #e value of 65 hex characters: CLOSED invalid."),
        ok("req/limits/many-filters", "counts",
           '["REQ","s",%s,{"kinds":[7]}]' % ",".join('{"kinds":[%d]}' % (1000 + i) for i in range(1000)),
           "1001 filters are accepted; only the last one matches kind 7.",
           [("k1", NOTHING), ("k7", [E(1, "s", "k7")])]),
        ok("req/limits/many-kinds", "counts",
           '["REQ","s",{"kinds":[%s]}]' % ",".join(str(k) for k in range(2, 5002)),
           "A kinds list of 5000 values (2 to 5001) is accepted: kind 7 matches, kind 1 does not.",
           [("k1", NOTHING), ("k7", [E(1, "s", "k7")])]),
    ]
    return cases


def extra_bcast():
    base = ev("x-bc-base")
    def delivered(cid, q, event_raw, comment, level="MUST"):
        """conn 1 has {} as s: the event is delivered verbatim."""
        return mk(cid, q, comment,
                  [step([new(1), add(1, "s", {})], NOTHING),
                   step([bcast_raw(event_raw)], [ER(1, "s", event_raw)])], level=level)

    def refused(cid, q, send, comment, level="MUST"):
        """conn 1 has {} as s: the invalid event reaches nobody; the next
        valid one does."""
        return mk(cid, q, comment,
                  [step([new(1), add(1, "s", {})], NOTHING),
                   step([send], NOTHING),
                   step([bcast_raw(base)], [ER(1, "s", base)])], level=level)

    def with_key(label, extra_key_text, **kw):
        """An event with one more member (raw text) before "sig"."""
        e = ev(label, **kw)
        return e.replace(',"sig":', "," + extra_key_text + ',"sig":', 1)

    cases = [
        # ---- PROTOCOL.md#decoded-strings decoded strings ---------------------------------------------------
        mk("bcast/decoded/kind-key-escaped", "decoded",
           'The event key "kin\\u0064" is kind: a kinds [1] subscription gets it, verbatim.',
           [step([new(1), add(1, "s", {"kinds": [1]})], NOTHING),
            step([bcast_raw(ev("x-bc-kindkey").replace('"kind":', '"kin\\u0064":', 1))],
                 [ER(1, "s", ev("x-bc-kindkey").replace('"kind":', '"kin\\u0064":', 1))])]),
        mk("bcast/decoded/id-hex-escaped", "decoded",
           "An event id whose first hex digit is a \\u escape is the 64-hex id: an ids filter matches it.",
           [step([new(1), add(1, "s", {"ids": [eid("x-bc-idesc")]})], NOTHING),
            step([bcast_raw(ev("x-bc-idesc", raw={"id": js(eid("x-bc-idesc")).replace(eid("x-bc-idesc"), esc_first(eid("x-bc-idesc")))}))],
                 [ER(1, "s", ev("x-bc-idesc", raw={"id": js(eid("x-bc-idesc")).replace(eid("x-bc-idesc"), esc_first(eid("x-bc-idesc")))}))])]),
        mk("bcast/decoded/tag-escaped", "decoded",
           'The tag ["\\u0074","\\u0078"] is ["t","x"]: a #t ["x"] subscription gets it.',
           [step([new(1), add(1, "s", {"#t": ["x"]})], NOTHING),
            step([bcast_raw(ev("x-bc-tagesc", raw={"tags": '[["\\u0074","\\u0078"]]'}))],
                 [ER(1, "s", ev("x-bc-tagesc", raw={"tags": '[["\\u0074","\\u0078"]]'}))])]),
        mk("bcast/decoded/event-literal-escaped", "decoded",
           'The first element "\\u0045VENT" is "EVENT".',
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast_data('["\\u0045VENT",' + base + ']')], [ER(1, "s", base)])]),
        refused("bcast/decoded/hex-escape-decodes-uppercase", "decoded",
                bcast_raw(ev("x-bc-upper", raw={"pubkey": '"\\u0041%s"' % ALICE[1:]})),
                "A pubkey whose first character decodes to an uppercase A is not lowercase hex: invalid."),
        refused("bcast/invalid/pubkey-65-hex", "event_invalid",
                bcast_raw(ev("x-bc-pk65", raw={"pubkey": js(ALICE + "0")})), "A pubkey of 65 hex characters: invalid."),
        # ---- PROTOCOL.md#integers integers ------------------------------------------------------------
        delivered("bcast/integers/created-at-u64-max", "int_range", ev("x-bc-cmax", created_at=U64_MAX),
                  "created_at 2^64-1 is valid."),
        refused("bcast/integers/created-at-u64-max-plus-1", "int_range",
                bcast_raw(ev("x-bc-cover", created_at=U64_MAX + 1)), "created_at 2^64 is out of range: invalid."),
        refused("bcast/integers/created-at-minus-zero", "integers",
                bcast_raw(ev("x-bc-cmz", raw={"created_at": "-0"})), "created_at -0: invalid."),
        refused("bcast/integers/created-at-exponent", "integers",
                bcast_raw(ev("x-bc-cexp", raw={"created_at": "17e8"})), "created_at 17e8 has an exponent: invalid."),
        refused("bcast/integers/created-at-one-point-zero", "integers",
                bcast_raw(ev("x-bc-cfrac", raw={"created_at": "1700000000.0"})), "created_at 1700000000.0: invalid."),
        refused("bcast/integers/kind-minus-zero", "integers",
                bcast_raw(ev("x-bc-kmz", raw={"kind": "-0"})), "kind -0: invalid."),
        refused("bcast/integers/kind-exponent", "integers",
                bcast_raw(ev("x-bc-kexp", raw={"kind": "1e0"})), "kind 1e0: invalid."),
        # ---- PROTOCOL.md#json-text the JSON text ------------------------------------------------------------
        refused("bcast/json-text/byte-order-mark", "json_text",
                bcast_hex((b"\xef\xbb\xbf" + event_msg(ev("x-bc-bom"))).hex()),
                "An EVENT message starting with a byte-order mark: invalid."),
        refused("bcast/json-text/invalid-utf8-content", "json_text",
                bcast_hex(event_msg(ev("x-bc-utf8")).replace(b'"content":""', b'"content":"a\xffb"').hex()),
                "An 0xff byte inside content: invalid."),
        refused("bcast/json-text/lone-surrogate-content", "json_text",
                bcast_raw(ev("x-bc-lone", raw={"content": '"\\ud800"'})), 'content "\\ud800": invalid.'),
        refused("bcast/json-text/lone-surrogate-unknown-key", "json_text",
                bcast_raw(with_key("x-bc-lonex", '"x":"\\udfff"')), "A lone surrogate in an extra member's value: invalid."),
        refused("bcast/json-text/lone-surrogate-tag", "json_text",
                bcast_raw(ev("x-bc-lonet", raw={"tags": '[["t","\\udc00"]]'})), "A lone surrogate in a tag value: invalid."),
        delivered("bcast/json-text/surrogate-pair-content", "pair_ok",
                  ev("x-bc-pair", raw={"content": '"\\ud83e\\udd80"'}), "A surrogate pair escape in content is fine."),
        # ---- PROTOCOL.md#implementation-limits implementation limits ------------------------------------------------------
        delivered("bcast/limits/depth-64", "depth_must", with_key("x-bc-d64", '"x":' + nested(62)),
                  "Depth 64 (the EVENT array, the event, 62 nested arrays in an extra member) is valid."),
        delivered("bcast/limits/depth-64-tags", "depth_must", with_key("x-bc-d64t", '"x":' + '{"a":' * 62 + "1" + "}" * 62),
                  "Depth 64 of nested objects in an extra member is valid."),
        refused("bcast/limits/depth-65", "depth_may", bcast_raw(with_key("x-bc-d65", '"x":' + nested(63))),
                "Depth 65: a worker MAY refuse it, and then the event is invalid.", level="MAY"),
        refused("bcast/limits/duplicate-key", "dup_may",
                bcast_raw(ev("x-bc-dup").replace('"kind":1,', '"kind":7,"kind":1,', 1)),
                "kind twice in the event: a worker MAY refuse it, and then the event is invalid.", level="MAY"),
        delivered("bcast/limits/many-tags", "counts",
                  ev("x-bc-many", tags=[["t", "v%d" % i] for i in range(3000)]),
                  "An event with 3000 tags is valid."),
    ]
    return cases


def big_event(label, size):
    """An event object of exactly `size` bytes, its content a run of 'a'
    (written with the `fill` form of docs/VECTORS.md). Input building only."""
    head, tail = ev(label).split('"content":""')
    prefix = head + '"content":"'
    suffix = '"' + tail
    count = size - len(prefix) - len(suffix)
    assert count > 0
    return {"prefix": prefix, "fill": "a", "count": count, "suffix": suffix}


def extra_output():
    # PROTOCOL.md#oversize-output: EVENT payload = 8 + 9 + J + 1 + E + 1, J the sub_id's JSON
    # string length. With a 64-byte sub_id of plain letters J = 66, so an
    # event of E = MAX - 85 bytes makes a payload of exactly MAX; the sub_id
    # of 63 letters and one '"' (J = 67) makes MAX + 1. The Bcast payload is
    # 14 + 9 + E + 1 = MAX - 61, within the maximum.
    e = MAX_PAYLOAD - 85
    at = "x" * 64
    over = "y" * 63 + '"'
    events = {"big": big_event("x-out-big", e), "small": ev("x-out-small")}
    cases = [
        mk("output/oversize/at-max", ("oversize_out", "max"),
           "An EVENT frame whose payload is exactly the maximum (64-byte sub_id, event of max-85 bytes) is written.",
           [step([new(1), add(1, at, {"kinds": [1]})], NOTHING),
            step([bcast("big")], [E(1, at, "big")])], events=events),
        mk("output/oversize/over-max", ("oversize_out",),
           "The same event under a sub_id whose JSON string is one byte longer: that frame is left out, the other subscription's frame is written, and the worker goes on.",
           [step([new(1), add(1, over, {"kinds": [1]}), add(1, "s", {"kinds": [1]})], NOTHING),
            step([bcast("big")], [E(1, "s", "big")]),
            step([bcast("small")], [E(1, over, "small"), E(1, "s", "small")])], events=events),
        mk("output/closed/sub-id-escaped", ("closed_bytes", "fail"),
           "A failed Add for a sub_id with a quote, a backslash and controls: the CLOSED frame carries it escaped by {sub-id-json-string}, byte for byte.",
           [step([new(1), add_raw(1, 'a"b\\c\t\u0001', "not json")], [CL(1, 'a"b\\c\t\u0001', "invalid")])]),
        mk("output/closed/sub-id-non-ascii", ("closed_bytes", "fail"),
           "A failed Add for a non-ASCII sub_id: raw UTF-8 in the CLOSED frame.",
           [step([new(1), add_raw(1, "é🦀/", '["REQ","é🦀/"]')], [CL(1, "é🦀/", "invalid")])]),
        mk("output/closed/commands-sub-id", ("closed_bytes", "fail"),
           "The REQ names another sub_id: the CLOSED frame names the command's.",
           [step([new(1), add_raw(1, "mine", '["REQ","theirs",{}]')], [CL(1, "mine", "invalid")])]),
    ]
    return cases


def extra_ordering():
    events = {"n1": ev("x-ord-n1")}
    return [
        mk("ordering/promptness/frames-before-next-read", ("prompt", "order_out"),
           "A CLOSED and then an EVENT, each in a step of its own: each reaches the harness before it sends anything more than the probe.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([add_raw(1, "bad", "[")], [CL(1, "bad", "invalid")]),
            step([bcast("n1")], [E(1, "s", "n1")])], events=events),
    ]


def extra_stream():
    events = {"n1": ev("x-st-n1"), "at_max": big_event("x-st-max", MAX_PAYLOAD - 24)}
    sub_frame = fr(1, sc("add", 1, sub_id="s", data='["REQ","s",{}]'))
    setup_ = step([new(1), add(1, "s", {})], NOTHING)
    return [
        # PROTOCOL.md#maximum-payload: a Bcast payload of exactly the maximum: 14 + 9 + E + 1 with
        # E = MAX - 24. Its EVENT payload under "s" is MAX - 2.
        mk("stream/max/bcast-payload-at-max", ("max", "delivery"),
           "A Bcast whose payload is exactly 16,777,216 bytes is accepted and delivered.",
           [setup_, step([bcast("at_max")], [E(1, "s", "at_max")])], events=events),
        mk("stream/fatal/truncated-after-output", ("owed", "truncated", "fatal_exit"),
           "A delivered Bcast, then a cut frame and the end of input: the EVENT frame is written, then exit 2.",
           [setup_, end([bcast("n1"), raw(sub_frame[:9])], [E(1, "s", "n1")], exit=2, close_input=True)],
           events=events),
        mk("stream/fatal/closed-before-oversize", ("owed", "too_large", "fatal_exit"),
           "A failed Add and an oversize header in one write: the CLOSED frame is written, then exit 2.",
           [setup_, end([add_raw(1, "t", "not json"), rawhex("0101000001")], [CL(1, "t", "invalid")], exit=2)],
           events=events),
        mk("stream/fatal/output-of-several-commands", ("owed", "too_large", "fatal_exit"),
           "Three commands with output, then an oversize header, all in one write: every frame, in order, then exit 2.",
           [setup_, end([bcast("n1"), add_raw(1, "t", "[]"), bcast("n1"), rawhex("0101000001")],
                        [E(1, "s", "n1"), CL(1, "t", "invalid"), E(1, "s", "n1")], exit=2)],
           events=events),
        mk("stream/garbage/auth-33-bytes", ("nonfatal", "decode_drop"),
           "Auth with 33 data bytes is dropped: the conn stays unauthenticated.",
           [step([new(1), add(1, "s", {"kinds": [4]})], NOTHING),
            step([raw(fr(1, sc("auth", 1, data=bytes.fromhex(ALICE) + b"\x00")))], NOTHING),
            step([bcast_raw(ev("x-st-dm", kind=4, tags=[["p", BOB]]), flags=0x01)], NOTHING)]),
        mk("stream/garbage/add-conn-minus-one", ("nonfatal", "decode_drop"),
           "Add with conn -1 is dropped (Add requires conn >= 0); the worker goes on.",
           [setup_, step([raw(fr(1, sc("add", -1, sub_id="s", data='["REQ","s",{}]')))], NOTHING),
            step([bcast("n1")], [E(1, "s", "n1")])], events=events),
    ]


# ===========================================================================
# Issue 16: the holes held-out mutant workers found (PROTOCOL.md#output-promptness,
# PROTOCOL.md#implementation-limits, PROTOCOL.md#json-text, PROTOCOL.md#closed-message,
# the conn and Auth bounds of PROTOCOL.md#operations) and the readings it closed
# (PROTOCOL.md#n-19, PROTOCOL.md#n-20, numbers a worker does not read). Appended to
# their sections like the cases above.
# ===========================================================================

REQ_K1 = '["REQ","s",{"kinds":[1]}]'


def key_ending_00():
    """A 64-hex pubkey whose last byte is 00, found deterministically: its
    first 31 bytes zero-padded are the key itself (input building only)."""
    n = 0
    while not hex64("pubkey:zed:%d" % n).endswith("00"):
        n += 1
    return hex64("pubkey:zed:%d" % n)


ZED = key_ending_00()


def issue16_req():
    events = {"k1": ev("x16-req-k1"), "k7": ev("x16-req-k7", kind=7)}

    def ok(cid, q, text, comment, checks):
        return mk(cid, q, comment,
                  [step([new(1), add_raw(1, "s", text)], NOTHING)]
                  + [step([bcast(name)], exp) for name, exp in checks], events=events)

    def fail(cid, q, text, comment, prefix="invalid"):
        return mk(cid, q, comment, req_fail_steps(text=text, prefix=prefix), events=events)

    def fail_hex(cid, q, data, comment):
        return mk(cid, q, comment, req_fail_steps(data_hex=data.hex()), events=events)

    digits = "9" * 5000
    return [
        # ---- PROTOCOL.md#add-failure: invalid wins over unsupported (PROTOCOL.md#n-19) ----
        fail("req/prefix/invalid-after-unsupported", "prefix_both", '["REQ","s",{"#foo":["x"],"kinds":"1"}]',
             "#foo and then a kinds that is not an array, in one filter: CLOSED invalid."),
        fail("req/prefix/invalid-before-unsupported", "prefix_both", '["REQ","s",{"kinds":"1","#foo":["x"]}]',
             "A kinds that is not an array and then #foo: CLOSED invalid."),
        fail("req/prefix/invalid-in-later-filter", "prefix_both", '["REQ","s",{"#foo":["x"]},{"kinds":[-1]}]',
             "#foo in the first filter, kinds [-1] in the second: CLOSED invalid."),
        fail("req/prefix/invalid-in-earlier-filter", "prefix_both", '["REQ","s",{"ids":["x"]},{"#foo":["x"]}]',
             "A bad ids value in the first filter, #foo in the second: CLOSED invalid."),
        fail("req/prefix/filter-not-object-after-unsupported", "prefix_both", '["REQ","s",{"#foo":["x"]},5]',
             "#foo in the first filter, then a filter that is a number: CLOSED invalid."),
        fail("req/prefix/not-json-after-unsupported", "prefix_both", '["REQ","s",{"#foo":["x"]},{"kinds":[1]',
             "#foo, then the text is cut short: not JSON, CLOSED invalid."),
        fail("req/prefix/unsupported-value-not-checked", "prefix_value", '["REQ","s",{"#foo":1}]',
             "#foo whose value is a number: only the name counts, CLOSED unsupported.", prefix="unsupported"),
        fail("req/prefix/two-unsupported-keys", ("prefix_both", "prefix_value"), '["REQ","s",{"#foo":["x"]},{"#":{"a":null}}]',
             "#foo in one filter and # alone (an object value) in another, nothing else wrong: CLOSED unsupported.",
             prefix="unsupported"),
        # ---- PROTOCOL.md#implementation-limits: an earlier duplicate never takes effect ----
        fail("req/limits/duplicate-key-last-invalid", "dup_last", '["REQ","s",{"kinds":[1],"kinds":"x"}]',
             "kinds [1] and then kinds \"x\": refused, or the last one is not an array; CLOSED invalid either way."),
        fail("req/limits/duplicate-key-escaped-last-invalid", ("dup_last", "decoded"), '["REQ","s",{"kinds":[1],"kind\\u0073":-1}]',
             "kinds [1] and then kind\\u0073 -1, the same key decoded: CLOSED invalid either way."),
        fail("req/limits/duplicate-tag-key-last-invalid", "dup_last", '["REQ","s",{"#t":["x"],"#t":[1]}]',
             "#t [\"x\"] and then #t [1]: CLOSED invalid either way."),
        # ---- PROTOCOL.md#json-text: other encodings, extensions, whitespace, raw controls ----
        fail_hex("req/json-text/utf16le-with-bom", "json_encoding", b"\xff\xfe" + REQ_K1.encode("utf-16-le"),
                 "The REQ in UTF-16LE with its byte-order mark: CLOSED invalid."),
        fail_hex("req/json-text/utf16be", "json_encoding", REQ_K1.encode("utf-16-be"),
                 "The REQ in UTF-16BE without a byte-order mark: CLOSED invalid."),
        fail_hex("req/json-text/utf32le", "json_encoding", REQ_K1.encode("utf-32-le"),
                 "The REQ in UTF-32LE without a byte-order mark: CLOSED invalid."),
        fail_hex("req/json-text/utf32be-with-bom", "json_encoding", b"\x00\x00\xfe\xff" + REQ_K1.encode("utf-32-be"),
                 "The REQ in UTF-32BE with its byte-order mark: CLOSED invalid."),
        fail("req/json-text/nan", "json_extension", '["REQ","s",{"kinds":[1],"search":NaN}]',
             "NaN as the value of an ignored key: not JSON, CLOSED invalid."),
        fail("req/json-text/infinity", "json_extension", '["REQ","s",{"kinds":[1],"search":Infinity}]',
             "Infinity as the value of an ignored key: CLOSED invalid."),
        fail("req/json-text/minus-infinity", "json_extension", '["REQ","s",{"kinds":[1],"x":[-Infinity]}]',
             "-Infinity inside an ignored value: CLOSED invalid."),
        fail("req/json-text/trailing-comma", "json_extension", '["REQ","s",{"kinds":[1],}]',
             "A comma before the closing brace: CLOSED invalid."),
        fail("req/json-text/comment", "json_extension", '["REQ","s",{"kinds":[1]}/* c */]',
             "A /* */ comment between tokens: CLOSED invalid."),
        fail("req/json-text/trailing-form-feed", "json_whitespace", REQ_K1 + "\f",
             "A form feed after the REQ is not JSON whitespace: CLOSED invalid."),
        fail("req/json-text/form-feed-between-tokens", "json_whitespace", '["REQ",\f"s",{"kinds":[1]}]',
             "A form feed between two tokens: CLOSED invalid."),
        fail("req/json-text/vertical-tab-between-tokens", "json_whitespace", '["REQ","s",\v{"kinds":[1]}]',
             "A vertical tab between two tokens: CLOSED invalid."),
        fail("req/json-text/trailing-no-break-space", "json_whitespace", REQ_K1 + "\u00a0",
             "A no-break space (c2 a0) after the REQ: CLOSED invalid."),
        fail("req/json-text/leading-line-separator", "json_whitespace", "\u2028" + REQ_K1,
             "A line separator (e2 80 a8) before the REQ: CLOSED invalid."),
        fail("req/json-text/raw-control-in-ignored-string", "json_control", '["REQ","s",{"kinds":[1],"search":"a\x01b"}]',
             "A raw U+0001 byte inside an ignored string: CLOSED invalid."),
        fail("req/json-text/raw-tab-in-tag-value", "json_control", '["REQ","s",{"#t":["a\tb"]}]',
             "A raw TAB byte inside a #t value: CLOSED invalid."),
        fail("req/json-text/raw-newline-in-ignored-string", "json_control", '["REQ","s",{"kinds":[1],"search":"a\nb"}]',
             "A raw line feed inside an ignored string: CLOSED invalid."),
        ok("req/json-text/raw-delete-and-line-separator", "json_raw_ok",
           '["REQ","s",{"kinds":[1],"search":"a\x7fb\u2028c"}]',
           "A raw U+007F and a raw U+2028 inside a string are JSON: the REQ is valid.",
           [("k1", [E(1, "s", "k1")])]),
        # ---- PROTOCOL.md#json-text: numbers the worker does not read -----------------------------
        ok("req/ignored/number-1e400", "numbers_unread", '["REQ","s",{"kinds":[1],"x":1e400}]',
           "1e400, beyond a double, as the value of an ignored key: the REQ is valid.",
           [("k1", [E(1, "s", "k1")]), ("k7", NOTHING)]),
        ok("req/ignored/number-minus-1e-400", "numbers_unread", '["REQ","s",{"kinds":[1],"x":-1e-400}]',
           "-1e-400, below the smallest double, in an ignored key: the REQ is valid.",
           [("k1", [E(1, "s", "k1")])]),
        ok("req/ignored/integer-5000-digits", "numbers_unread", '["REQ","s",{"kinds":[1],"search":%s}]' % digits,
           "An integer of 5000 digits as the value of search: the REQ is valid.",
           [("k1", [E(1, "s", "k1")])]),
        ok("req/ignored/numbers-nested", "numbers_unread",
           '["REQ","s",{"kinds":[1],"x":{"a":[1E+999,-0.5e-999,{"b":%s.5}]}}]' % ("1" * 400),
           "Huge and tiny numbers nested in an ignored value: the REQ is valid.",
           [("k1", [E(1, "s", "k1")])]),
        ok("req/ignored/number-1e400-in-second-filter", "numbers_unread",
           '["REQ","s",{"kinds":[1]},{"search":1e400,"kinds":[7]}]',
           "1e400 in the second filter's search: both filters are valid.",
           [("k1", [E(1, "s", "k1")]), ("k7", [E(1, "s", "k7")])]),
        fail("req/integers/kinds-1e400", "numbers_read", '["REQ","s",{"kinds":[1e400]}]',
             "kinds [1e400] is read: not an integer, CLOSED invalid."),
        fail("req/integers/since-5000-digits", "numbers_read", '["REQ","s",{"since":%s}]' % digits,
             "since of 5000 digits is read: out of range, CLOSED invalid."),
    ]


def issue16_bcast():
    base = ev("x16-bc-base")

    def with_key(label, extra_key_text, first=False, **kw):
        """An event with more members (raw text) before "sig", or first."""
        e = ev(label, **kw)
        if first:
            return "{" + extra_key_text + "," + e[1:]
        return e.replace(',"sig":', "," + extra_key_text + ',"sig":', 1)

    def delivered(cid, q, event_raw, comment, filt=None):
        """conn 1 has s (filter {} unless given): the event is delivered verbatim."""
        return mk(cid, q, comment,
                  [step([new(1), add(1, "s", filt if filt is not None else {})], NOTHING),
                   step([bcast_raw(event_raw)], [ER(1, "s", event_raw)])])

    def refused(cid, q, send, comment, filt=None, after=None):
        """conn 1 has s (filter {} unless given): nothing is delivered; the
        next valid event (`after`, one the filter matches) is."""
        after = after or base
        return mk(cid, q, comment,
                  [step([new(1), add(1, "s", filt if filt is not None else {})], NOTHING),
                   step([send], NOTHING),
                   step([bcast_raw(after)], [ER(1, "s", after)])])

    msg = lambda e: '["EVENT",' + e + ']'
    digits = "9" * 5000
    dup_kind = ev("x16-bc-dupk").replace('"kind":1,', '"kind":1,"kind":7,', 1)
    dup_kind_late = ev("x16-bc-dupk-late").replace(',"sig":', ',"kind":7,"sig":', 1)
    dup_kind_7 = ev("x16-bc-dupk7", kind=7).replace('"kind":7,', '"kind":7,"kind":1,', 1)
    dup_content = ev("x16-bc-dupc").replace(',"sig":', ',"content":1,"sig":', 1)
    dup_tags = ev("x16-bc-dupt", tags=[["t", "x"]]).replace(',"content":', ',"tags":[],"content":', 1)
    dup_pubkey = ev("x16-bc-dupp", kind=4).replace(',"created_at":', ',"pubkey":"%s","created_at":' % BOB, 1)
    extra_p = with_key("x16-bc-xp", '"p":"%s","whitelisted":true' % BOB, kind=4, pubkey=CAROL)
    return [
        # ---- PROTOCOL.md#bcast-event: extra members are ignored (PROTOCOL.md#n-20) ------------
        delivered("bcast/extra-member/string", "extra_members", with_key("x16-bc-xs", '"extra":"x"'),
                  "An event with one extra member, a string: delivered verbatim.", {"kinds": [1]}),
        delivered("bcast/extra-member/nested-values", "extra_members",
                  with_key("x16-bc-xn", '"relays":["wss://r.example"],"meta":{"a":[1,true,null,{"b":-2.5}]}'),
                  "Extra members holding arrays, objects, numbers, booleans and null: delivered verbatim."),
        delivered("bcast/extra-member/first-member", "extra_members", with_key("x16-bc-xf", '"v":2', first=True),
                  "An extra member before id: delivered verbatim."),
        mk("bcast/extra-member/no-part-in-matching", "extra_members",
           "Extra members named #t, t and kinds do not make a #t [x] or kinds [7] filter match; {} still matches.",
           [step([new(1), add(1, "tag", {"#t": ["x"]}), add(1, "kind", {"kinds": [7]}), add(1, "all", {})], NOTHING),
            step([bcast_raw(with_key("x16-bc-xm", '"#t":["x"],"t":"x","kinds":[7]'))],
                 [ER(1, "all", with_key("x16-bc-xm", '"#t":["x"],"t":"x","kinds":[7]'))])]),
        mk("bcast/extra-member/no-part-in-access", ("extra_members", "rule1"),
           "CAROL's kind-4 event with extra members p: BOB and whitelisted: true: BOB's conn 4 does not pass rule 1, whitelisted conn 2 does.",
           [step([new(1), new(2, flags=0x01), new(4), auth(4, BOB)] + [add(c, "s", {}) for c in (1, 2, 4)], NOTHING),
            step([bcast_raw(extra_p, flags=0x01)], [ER(2, "s", extra_p)])]),
        delivered("bcast/extra-member/number-1e400", "numbers_unread", with_key("x16-bc-x400", '"x":1e400'),
                  "An extra member 1e400, beyond a double: delivered verbatim."),
        delivered("bcast/extra-member/integer-5000-digits", "numbers_unread", with_key("x16-bc-xd", '"x":' + digits),
                  "An extra member holding an integer of 5000 digits: delivered verbatim."),
        delivered("bcast/extra-member/numbers-nested", "numbers_unread",
                  with_key("x16-bc-xnn", '"x":[-1e-400,{"y":1E+999}]'),
                  "Huge and tiny numbers nested in an extra member: delivered verbatim."),
        refused("bcast/integers/kind-5000-digits", "numbers_read",
                bcast_raw(ev("x16-bc-kd", raw={"kind": digits})), "kind of 5000 digits is read: out of range, invalid."),
        refused("bcast/integers/created-at-1e400", "numbers_read",
                bcast_raw(ev("x16-bc-c400", raw={"created_at": "1e400"})), "created_at 1e400 is read: not an integer, invalid."),
        # ---- PROTOCOL.md#implementation-limits: an earlier duplicate never takes effect ----
        refused("bcast/limits/duplicate-kind-earlier-matches", "dup_last", bcast_raw(dup_kind),
                "kind 1 then kind 7, to a kinds [1] subscription: refused, or of kind 7; not delivered either way.",
                {"kinds": [1]}),
        refused("bcast/limits/duplicate-kind-earlier-matches-far-apart", "dup_last", bcast_raw(dup_kind_late),
                "kind 1 in its place and kind 7 again after content: not delivered to kinds [1] either way.",
                {"kinds": [1]}),
        refused("bcast/limits/duplicate-kind-7-then-1", "dup_last", bcast_raw(dup_kind_7),
                "kind 7 then kind 1, to a kinds [7] subscription: refused, or of kind 1; not delivered either way.",
                {"kinds": [7]}, after=ev("x16-bc-k7", kind=7)),
        refused("bcast/limits/duplicate-content-last-invalid", "dup_last", bcast_raw(dup_content),
                "content \"\" then content 1: refused, or content is not a string; invalid either way."),
        refused("bcast/limits/duplicate-tags-earlier-matches", "dup_last", bcast_raw(dup_tags),
                "tags [[\"t\",\"x\"]] then tags []: not delivered to #t [x] either way.", {"#t": ["x"]},
                after=ev("x16-bc-tx", tags=[["t", "x"]])),
        mk("bcast/limits/duplicate-pubkey-earlier-authenticated", ("dup_last", "rule1"),
           "A need_filter kind-4 event whose pubkey is ALICE and then BOB: ALICE's conn does not pass rule 1 through the earlier pubkey.",
           [step([new(1), auth(1, ALICE), add(1, "s", {})], NOTHING),
            step([bcast_raw(dup_pubkey, flags=0x01)], NOTHING),
            step([bcast_raw(ev("x16-bc-dm-alice", kind=4), flags=0x01)], [ER(1, "s", ev("x16-bc-dm-alice", kind=4))])]),
        # ---- PROTOCOL.md#json-text: other encodings, extensions, whitespace, raw controls ----
        refused("bcast/json-text/utf16le-with-bom", "json_encoding",
                bcast_hex((b"\xff\xfe" + msg(base).encode("utf-16-le")).hex()),
                "The EVENT message in UTF-16LE with its byte-order mark: invalid."),
        refused("bcast/json-text/utf32be", "json_encoding", bcast_hex(msg(base).encode("utf-32-be").hex()),
                "The EVENT message in UTF-32BE without a byte-order mark: invalid."),
        refused("bcast/json-text/nan", "json_extension", bcast_raw(with_key("x16-bc-nan", '"x":NaN')),
                "An extra member NaN: not JSON, invalid."),
        refused("bcast/json-text/infinity", "json_extension", bcast_raw(with_key("x16-bc-inf", '"x":[Infinity,-Infinity]')),
                "An extra member [Infinity,-Infinity]: invalid."),
        refused("bcast/json-text/trailing-comma", "json_extension", bcast_raw(ev("x16-bc-comma")[:-1] + ",}"),
                "A comma before the event's closing brace: invalid."),
        refused("bcast/json-text/trailing-form-feed", "json_whitespace", bcast_data(msg(ev("x16-bc-ff")) + "\f"),
                "A form feed after the EVENT message: invalid."),
        refused("bcast/json-text/form-feed-in-object", "json_whitespace",
                bcast_raw(ev("x16-bc-ffo").replace(',"kind":', ',\f"kind":', 1)),
                "A form feed between two members of the event: invalid."),
        refused("bcast/json-text/trailing-no-break-space", "json_whitespace", bcast_data(msg(ev("x16-bc-nbsp")) + "\u00a0"),
                "A no-break space after the EVENT message: invalid."),
        refused("bcast/json-text/raw-control-in-content", "json_control",
                bcast_raw(ev("x16-bc-ctl", raw={"content": '"a\x01b"'})), "A raw U+0001 byte in content: invalid."),
        refused("bcast/json-text/raw-tab-in-tag", "json_control",
                bcast_raw(ev("x16-bc-tab", raw={"tags": '[["t","a\tb"]]'})), "A raw TAB byte in a tag value: invalid."),
        delivered("bcast/json-text/raw-delete-in-content", "json_raw_ok",
                  ev("x16-bc-del", raw={"content": '"a\x7fb"'}), "A raw U+007F byte in content is JSON: delivered verbatim."),
    ]


def issue16_output():
    P = ev("output-plain", content="hi")  # the file's "plain" event
    sid = "\x1b\x0b\x7f<&>\u2028"
    return [
        mk("output/closed/sub-id-controls-and-html-chars", ("closed_bytes", "esc_writers"),
           "A failed Add for a sub_id of ESC, VT, U+007F, <&> and U+2028: the CLOSED frame writes \\u001b\\u000b (lowercase) and the rest raw.",
           [step([new(1), add_raw(1, sid, "not json")], [CL(1, sid, "invalid")])]),
        mk("output/sub-id/controls-and-html-chars", "esc_writers",
           "The same sub_id in an EVENT frame, typed by hand: \\u001b\\u000b, then raw 7f, <&> and e2 80 a8.",
           [step([new(1), add(1, sid, {})], NOTHING),
            step([bcast("plain")], [DATA(1, '["EVENT","\\u001b\\u000b\x7f<&>\u2028",' + P + ']')])]),
    ]


def issue16_ordering():
    events = {"n1": ev("x16-ord-n1"), "n2": ev("x16-ord-n2")}
    return [
        mk("ordering/promptness/closed-owed-without-bcast", "prompt",
           "Failed Adds in steps with no Bcast: each CLOSED is owed at once, and the harness waits for it before it sends the probe.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([add_raw(1, "bad", "not json")], [CL(1, "bad", "invalid")]),
            step([new(2)], NOTHING),
            step([add_raw(2, "bad", "[")], [CL(2, "bad", "invalid")]),
            step([add_raw(1, "worse", '["REQ","worse",{"#foo":["x"]}]'), remove(1, "s")], [CL(1, "worse", "unsupported")]),
            step([add(1, "s", {})], NOTHING),
            step([bcast("n1")], [E(1, "s", "n1")])], events=events),
        mk("ordering/promptness/event-owed-before-next-command", ("prompt", "order_out"),
           "An EVENT frame is owed when its Bcast is processed, not when the next command arrives: the harness waits for it before the probe.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([bcast("n1")], [E(1, "s", "n1")]),
            step([add_raw(1, "t", "x"), bcast("n2")], [CL(1, "t", "invalid"), E(1, "s", "n2")], ordered=True)],
           events=events),
    ]


def issue16_stream():
    events = {"n1": ev("x16-st-n1"),
              "dm_zed": ev("x16-st-dm-zed", kind=4, pubkey=ZED),
              "prot": ev("x16-st-prot", kind=1, tags=[["-"]])}
    good_req = '["REQ","s",{}]'
    return [
        mk("stream/garbage/conn-minus-one-never-a-connection", ("conn_range", "decode_drop"),
           "New, Add (valid and invalid REQ) and Auth with conn -1 are all dropped: no connection -1 exists, so a matching Bcast reaches only conn 1 and no CLOSED is sent.",
           [step([new(1), add(1, "s", {})], NOTHING),
            step([raw(fr(1, sc("new", -1)), fr(1, sc("add", -1, sub_id="s", data=good_req)),
                      fr(1, sc("auth", -1, data=bytes.fromhex(ALICE))))], NOTHING),
            step([raw(fr(1, sc("add", -1, sub_id="t", data="not json")))], NOTHING),
            step([bcast("n1")], [E(1, "s", "n1")])], events=events),
        mk("stream/garbage/auth-31-bytes-of-key-ending-00", ("auth_len", "decode_drop"),
           "Auth whose data is the first 31 bytes of a key ending in 00 is dropped, not zero-padded: that key's DM and a protected event do not reach conn 1; conn 2, authenticated with all 32 bytes, gets both.",
           [step([new(1), add(1, "s", {}), new(2), auth(2, ZED), add(2, "s", {})], NOTHING),
            step([raw(fr(1, sc("auth", 1, data=bytes.fromhex(ZED)[:31])))], NOTHING),
            step([bcast("dm_zed", flags=0x01)], [E(2, "s", "dm_zed")]),
            step([bcast("prot", flags=0x02)], [E(2, "s", "prot")])], events=events),
    ]


EXTRA = {
    "req": [extra_req, issue16_req],
    "bcast": [extra_bcast, issue16_bcast],
    "output": [extra_output, issue16_output],
    "ordering": [extra_ordering, issue16_ordering],
    "stream": [extra_stream, issue16_stream],
}


# ===========================================================================
# main
# ===========================================================================

SECTIONS = [
    ("lifecycle", lifecycle),
    ("subscribe", subscribe),
    ("req", req),
    ("filter", filter_),
    ("tags", tags),
    ("auth", auth_),
    ("access", access),
    ("bcast", bcast_),
    ("output", output),
    ("ordering", ordering),
    ("stream", stream),
]


def write(path, doc):
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    seen = set()
    total = 0
    for section, build in SECTIONS:
        title, events, cases = build()
        for extra in EXTRA.get(section, ()):
            cases = cases + extra()
        for c in cases:
            assert c["id"].startswith(section + "/"), c["id"]
            assert c["id"] not in seen, c["id"]
            seen.add(c["id"])
        doc = {"schema": SCHEMA, "section": section, "title": cite(title)}
        if events:
            doc["events"] = events
        doc["cases"] = cases
        write(os.path.join(OUT_DIR, section + ".json"), doc)
        total += len(cases)
        print("%-10s %4d cases" % (section, len(cases)))
    print("%-10s %4d cases" % ("total", total))


if __name__ == "__main__":
    main()
