#!/usr/bin/env python3
"""Build the golden vectors of broadcast-wire protocol v1.

Regenerate (from the repository root, Python 3, standard library only):

    python3 vectors/tools/build_vectors.py

This rewrites, deterministically (stable order, 2-space indent, UTF-8,
trailing newline):

    vectors/codec/subcommand.json
    vectors/codec/broadcast_frame.json
    vectors/framing/streams.json

CI regenerates the files with this script and fails if `git diff` shows any
difference, so the checked-in JSON and this case table never drift apart.
Never edit the JSON by hand: edit the case table below and regenerate.

Design rule: this script is an *encoder only*. It packs bytes from field
values (struct.pack, '<' little-endian) and never decodes them. The expected
outcome of every vector (`result`, `error` class, `value`, `frames`, `end`)
is written by hand in the case table, from docs/PROTOCOL.md: framing
(PROTOCOL.md#framing), payloads (PROTOCOL.md#payloads), decode errors
(PROTOCOL.md#decode-errors) and the golden vectors (PROTOCOL.md#conformance).
Odd cases (truncations, bad lengths, invalid UTF-8) are built by overriding a
length field, slicing a packed payload or writing raw bytes; their expected
error is still written by hand.

Byte layouts (all integers little-endian):

    SubCommand      op u8 | flags u8 | conn i32 | sub_id_len u32 | sub_id
                    | data_len u32 | data
    BroadcastFrame  conn i32 | data_len u32 | data
    frame           chan u8 | len u32 | payload
"""

import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CODEC_SCHEMA = "broadcast-wire/codec/v1"
FRAMING_SCHEMA = "broadcast-wire/framing/v1"
DEFAULT_MAX_PAYLOAD = 16777216  # 16 MiB

OP_CODES = {"new": 1, "close": 2, "add": 3, "remove": 4, "auth": 5, "bcast": 6}

I32_MAX = 2147483647
I32_MIN = -2147483648
U32_MAX = 0xFFFFFFFF


# ---------------------------------------------------------------------------
# Packers (encoders only; no decoder anywhere in this file)
# ---------------------------------------------------------------------------

def _bytes(x):
    """A str is UTF-8 encoded; bytes are taken as they are."""
    return x.encode("utf-8") if isinstance(x, str) else bytes(x)


def pack_subcommand(op, flags, conn, sub_id=b"", data=b"", *,
                    sub_id_len=None, data_len=None, trailing=b""):
    """Pack a SubCommand payload.

    op: a name from OP_CODES or a raw integer 0..255. sub_id / data: str
    (UTF-8 encoded) or raw bytes. sub_id_len / data_len override the length
    fields (to build lying lengths); trailing is appended after data.
    """
    code = OP_CODES[op] if isinstance(op, str) else op
    sid = _bytes(sub_id)
    dat = _bytes(data)
    if sub_id_len is None:
        sub_id_len = len(sid)
    if data_len is None:
        data_len = len(dat)
    return (struct.pack("<BBiI", code, flags, conn, sub_id_len) + sid
            + struct.pack("<I", data_len) + dat + _bytes(trailing))


def pack_broadcast_frame(conn, data=b"", *, data_len=None, trailing=b""):
    dat = _bytes(data)
    if data_len is None:
        data_len = len(dat)
    return struct.pack("<iI", conn, data_len) + dat + _bytes(trailing)


def pack_frame(chan, payload=b"", *, length=None):
    pay = _bytes(payload)
    if length is None:
        length = len(pay)
    return struct.pack("<BI", chan, length) + pay


def h(s):
    """Raw hex written by hand (spaces allowed for readability)."""
    return bytes.fromhex(s.replace(" ", ""))


# ---------------------------------------------------------------------------
# Sample field values
# ---------------------------------------------------------------------------

# secp256k1 generator x coordinate: a well-known 32-byte x-only pubkey.
PUBKEY_HEX = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
PUBKEY = bytes.fromhex(PUBKEY_HEX)
PUBKEY_B = bytes.fromhex("c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5")
EVENT_ID = "d7dd5eb3ab747e16f8d0212d53032ea2a7cadef53837e5a6c66d42849fcb9027"
SIG = ("908a15e46fb4d8675bab026fc230a0e3542bfade63da02d542fb78b2a8513fcd"
       "0092619a2c8c1221e581946e0191f2af505dfdf8657a414dbca329186f009262")

EVENT_JSON = (
    '{"id":"' + EVENT_ID + '","pubkey":"' + PUBKEY_HEX + '",'
    '"created_at":1700000000,"kind":1,'
    '"tags":[["p","' + PUBKEY_B.hex() + '"],["t","nostr"]],'
    '"content":"hello, world","sig":"' + SIG + '"}'
)
EVENT_MSG = '["EVENT",' + EVENT_JSON + ']'                   # Bcast data
DELIVERY_MSG = '["EVENT","sub1",' + EVENT_JSON + ']'         # BroadcastFrame data


def req(sub_id_json, filters='{"kinds":[1]}'):
    """A REQ message text; sub_id_json is already a JSON string literal."""
    return '["REQ",' + sub_id_json + ',' + filters + ']'


REQ_SUB1 = req('"sub1"')
SID_64 = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_"  # 64 ASCII bytes
SID_65 = SID_64 + "!"                                              # 65 ASCII bytes
EMOJI_16 = "\U0001F600" * 16        # 16 x F0 9F 98 80 = 64 bytes
TWO_BYTE_32 = "\u00e9" * 32         # 32 x C3 A9 = 64 bytes
CJK_21_PLUS_A = "\u4e2d" * 21 + "a"  # 21 x E4 B8 AD + 61 = 64 bytes

assert len(SID_64.encode()) == 64 and len(SID_65.encode()) == 65
assert len(EMOJI_16.encode()) == 64 and len(TWO_BYTE_32.encode()) == 64
assert len(CJK_21_PLUS_A.encode()) == 64


# ---------------------------------------------------------------------------
# Case constructors
# ---------------------------------------------------------------------------

def sc_valid(vid, comment, op, conn, flags, sub_id, data):
    """A valid SubCommand: the value is written by hand; hex is its encoding."""
    assert isinstance(sub_id, str)
    dat = _bytes(data)
    return {
        "id": vid,
        "comment": comment,
        "hex": pack_subcommand(op, flags, conn, sub_id, dat).hex(),
        "result": "valid",
        "value": {"op": op, "conn": conn, "flags": flags, "sub_id": sub_id,
                  "data_hex": dat.hex()},
    }


def invalid(vid, comment, payload, error):
    return {"id": vid, "comment": comment, "hex": payload.hex(),
            "result": "invalid", "error": error}


def bf_valid(vid, comment, conn, data):
    dat = _bytes(data)
    return {
        "id": vid,
        "comment": comment,
        "hex": pack_broadcast_frame(conn, dat).hex(),
        "result": "valid",
        "value": {"conn": conn, "data_hex": dat.hex()},
    }


def stream(vid, comment, parts, frames, end, max_payload=None):
    """parts: packed byte strings concatenated into the stream.
    frames: the expected delivered frames, written by hand as (chan, payload).
    """
    v = {"id": vid, "comment": comment, "stream_hex": b"".join(parts).hex()}
    if max_payload is not None:
        assert max_payload != DEFAULT_MAX_PAYLOAD
        v["max_payload"] = max_payload
    v["frames"] = [{"chan": c, "payload_hex": _bytes(p).hex()} for c, p in frames]
    v["end"] = end
    return v


# ---------------------------------------------------------------------------
# SubCommand case table
# ---------------------------------------------------------------------------

S = pack_subcommand

SUBCOMMAND = [
    # ---- New ---------------------------------------------------------------
    sc_valid("subcommand/new/conn-0", "New, flags 0, conn 0 (lowest allowed).",
             "new", 0, 0, "", b""),
    sc_valid("subcommand/new/conn-i32-max", "New, conn 2147483647 (i32::MAX, ff ff ff 7f).",
             "new", I32_MAX, 0, "", b""),
    sc_valid("subcommand/new/conn-byte-order", "New, conn 0x12345678: checks little-endian i32 (78 56 34 12).",
             "new", 0x12345678, 0, "", b""),
    sc_valid("subcommand/new/whitelisted", "New with flags bit0 whitelisted set.",
             "new", 7, 0x01, "", b""),
    sc_valid("subcommand/new/reserved-flags-ff", "New, flags 0xff: all reserved bits set with whitelisted; accepted and preserved as the raw byte.",
             "new", 7, 0xFF, "", b""),
    sc_valid("subcommand/new/reserved-flags-02", "New, flags 0x02: a reserved bit without whitelisted; accepted and preserved.",
             "new", 7, 0x02, "", b""),
    # ---- Close -------------------------------------------------------------
    sc_valid("subcommand/close/conn-0", "Close, conn 0.",
             "close", 0, 0, "", b""),
    sc_valid("subcommand/close/conn-i32-max", "Close, conn i32::MAX.",
             "close", I32_MAX, 0, "", b""),
    sc_valid("subcommand/close/reserved-flags-80", "Close has no defined flag bit; 0x80 is reserved, accepted and preserved.",
             "close", 12, 0x80, "", b""),
    sc_valid("subcommand/close/reserved-flags-01", "Close, flags 0x01: bit0 means whitelisted only for New; here it is reserved, accepted and preserved.",
             "close", 12, 0x01, "", b""),
    # ---- Add ---------------------------------------------------------------
    sc_valid("subcommand/add/data-byte-order-mark", "Add whose REQ starts with a UTF-8 byte-order mark: valid on the wire (data is opaque to the codec); the worker refuses the REQ as not JSON (PROTOCOL.md#json-text).",
             "add", 1, 0, "s", b"\xef\xbb\xbf" + b'["REQ","s",{}]'),
    sc_valid("subcommand/add/data-lone-surrogate-escape", "Add whose REQ holds the escape \\ud800: valid on the wire; the worker refuses the REQ (PROTOCOL.md#json-text).",
             "add", 1, 0, "s", b'["REQ","s",{"search":"\\ud800"}]'),
    sc_valid("subcommand/add/sub-id-1-byte", "Add, conn 0, 1-byte sub_id (the minimum).",
             "add", 0, 0, "a", req('"a"')),
    sc_valid("subcommand/add/sub-id-64-bytes", "Add with a 64-byte ASCII sub_id (the maximum).",
             "add", 9, 0, SID_64, req(json.dumps(SID_64))),
    sc_valid("subcommand/add/conn-i32-max", "Add, conn i32::MAX.",
             "add", I32_MAX, 0, "sub1", REQ_SUB1),
    sc_valid("subcommand/add/reserved-flags-01", "Add has no defined flag bit; 0x01 is reserved, accepted and preserved.",
             "add", 9, 0x01, "sub1", REQ_SUB1),
    sc_valid("subcommand/add/sub-id-64-bytes-4-byte-utf8", "sub_id of 16 x U+1F600 (4 bytes each): 16 characters, 64 bytes; the limit counts bytes.",
             "add", 9, 0, EMOJI_16, req(json.dumps(EMOJI_16, ensure_ascii=False))),
    sc_valid("subcommand/add/sub-id-64-bytes-2-byte-utf8", "sub_id of 32 x U+00E9 (2 bytes each): 32 characters, 64 bytes.",
             "add", 9, 0, TWO_BYTE_32, req(json.dumps(TWO_BYTE_32, ensure_ascii=False))),
    sc_valid("subcommand/add/sub-id-64-bytes-3-byte-utf8", "sub_id of 21 x U+4E2D (3 bytes each) plus 'a': 22 characters, 64 bytes.",
             "add", 9, 0, CJK_21_PLUS_A, req(json.dumps(CJK_21_PLUS_A, ensure_ascii=False))),
    sc_valid("subcommand/add/sub-id-non-ascii", "Non-ASCII sub_id mixing 2- and 3-byte UTF-8.",
             "add", 9, 0, "caf\u00e9-\u8ba2\u9605", req(json.dumps("caf\u00e9-\u8ba2\u9605", ensure_ascii=False))),
    sc_valid("subcommand/add/sub-id-quotes-backslashes", "sub_id with a double quote and backslashes: only length and UTF-8 are checked on the wire.",
             "add", 9, 0, 'a"b\\c\\', req(json.dumps('a"b\\c\\'))),
    sc_valid("subcommand/add/sub-id-control-chars", "sub_id with control characters (LF, TAB, CR, BS, FF, 0x01, 0x1f): valid UTF-8, so valid on the wire.",
             "add", 9, 0, "x\n\t\r\b\f\x01\x1f", req(json.dumps("x\n\t\r\b\f\x01\x1f"))),
    sc_valid("subcommand/add/sub-id-nul-byte", "sub_id containing U+0000 (a NUL byte): valid UTF-8; a decoder must not stop at it.",
             "add", 9, 0, "a\x00b", req(json.dumps("a\x00b"))),
    sc_valid("subcommand/add/sub-id-spaces-and-del", "sub_id with spaces and DEL (0x7f).",
             "add", 9, 0, " x\x7f ", req(json.dumps(" x\x7f "))),
    sc_valid("subcommand/add/sub-id-max-code-point", "sub_id U+10FFFF (f4 8f bf bf), the highest valid code point.",
             "add", 9, 0, "\U0010FFFF", req(json.dumps("\U0010FFFF", ensure_ascii=False))),
    sc_valid("subcommand/add/sub-id-bom-and-noncharacter", "sub_id U+FEFF U+FFFF: a BOM and a noncharacter are still valid UTF-8.",
             "add", 9, 0, "\ufeff\uffff", req(json.dumps("\ufeff\uffff", ensure_ascii=False))),
    sc_valid("subcommand/add/data-1-byte", "Add with 1-byte data '[': the codec only requires non-empty data; parsing the REQ is the worker's job.",
             "add", 9, 0, "sub1", b"["),
    sc_valid("subcommand/add/data-not-utf8", "Add data ff fe 00: data is opaque bytes to the codec (the worker will reject it as a REQ).",
             "add", 9, 0, "sub1", h("fffe00")),
    sc_valid("subcommand/add/realistic-req", "A realistic REQ with two filters.",
             "add", 41, 0, "feed", req('"feed"', '{"kinds":[1,6],"authors":["' + PUBKEY_HEX + '"],"limit":50},{"#t":["nostr"],"since":1700000000}')),
    # ---- Remove ------------------------------------------------------------
    sc_valid("subcommand/remove/sub-id-1-byte", "Remove, conn 0, 1-byte sub_id.",
             "remove", 0, 0, "a", b""),
    sc_valid("subcommand/remove/sub-id-64-bytes", "Remove with a 64-byte sub_id.",
             "remove", 9, 0, SID_64, b""),
    sc_valid("subcommand/remove/sub-id-64-bytes-4-byte-utf8", "Remove with a 64-byte sub_id of 16 emoji.",
             "remove", 9, 0, EMOJI_16, b""),
    sc_valid("subcommand/remove/conn-i32-max", "Remove, conn i32::MAX.",
             "remove", I32_MAX, 0, "sub1", b""),
    sc_valid("subcommand/remove/reserved-flags-ff", "Remove, flags 0xff (all reserved), accepted and preserved.",
             "remove", 9, 0xFF, "sub1", b""),
    # ---- Auth --------------------------------------------------------------
    sc_valid("subcommand/auth/conn-0", "Auth, conn 0, a 32-byte binary pubkey.",
             "auth", 0, 0, "", PUBKEY),
    sc_valid("subcommand/auth/conn-i32-max", "Auth, conn i32::MAX.",
             "auth", I32_MAX, 0, "", PUBKEY_B),
    sc_valid("subcommand/auth/pubkey-all-zero", "Auth with 32 zero bytes: the codec checks the length only.",
             "auth", 9, 0, "", bytes(32)),
    sc_valid("subcommand/auth/pubkey-all-ff", "Auth with 32 bytes 0xff.",
             "auth", 9, 0, "", b"\xff" * 32),
    sc_valid("subcommand/auth/reserved-flags-40", "Auth has no defined flag bit; 0x40 is reserved, accepted and preserved.",
             "auth", 9, 0x40, "", PUBKEY),
    # ---- Bcast -------------------------------------------------------------
    sc_valid("subcommand/bcast/conn-minus-1", "Bcast from no connection: conn -1 (ff ff ff ff) is allowed for Bcast only.",
             "bcast", -1, 0, "", EVENT_MSG),
    sc_valid("subcommand/bcast/conn-0", "Bcast, conn 0.",
             "bcast", 0, 0, "", EVENT_MSG),
    sc_valid("subcommand/bcast/conn-i32-max", "Bcast, conn i32::MAX.",
             "bcast", I32_MAX, 0, "", EVENT_MSG),
    sc_valid("subcommand/bcast/flags-need-filter", "Bcast, flags 0x01 need_filter.",
             "bcast", 9, 0x01, "", EVENT_MSG),
    sc_valid("subcommand/bcast/flags-nip70-enforce", "Bcast, flags 0x02 nip70_enforce.",
             "bcast", 9, 0x02, "", EVENT_MSG),
    sc_valid("subcommand/bcast/flags-marmot-open", "Bcast, flags 0x04 marmot_open.",
             "bcast", 9, 0x04, "", EVENT_MSG),
    sc_valid("subcommand/bcast/flags-all-defined", "Bcast, flags 0x07: all three defined bits.",
             "bcast", 9, 0x07, "", EVENT_MSG),
    sc_valid("subcommand/bcast/reserved-flags-f8", "Bcast, flags 0xf8: only reserved bits; accepted and preserved.",
             "bcast", 9, 0xF8, "", EVENT_MSG),
    sc_valid("subcommand/bcast/reserved-flags-ff", "Bcast, flags 0xff = 0xf8 | 0x07: reserved and defined bits; preserved as the raw byte.",
             "bcast", -1, 0xFF, "", EVENT_MSG),
    sc_valid("subcommand/bcast/data-1-byte", "Bcast with 1-byte data: non-empty is all the codec checks.",
             "bcast", 9, 0, "", b"x"),
    sc_valid("subcommand/bcast/data-not-utf8", "Bcast data c0 ff: opaque bytes to the codec.",
             "bcast", 9, 0, "", h("c0ff")),

    # ---- unknown_op --------------------------------------------------------
    invalid("subcommand/invalid/unknown-op/op-0", "op 0 is unknown; the rest is a well-formed New-shaped payload.",
            S(0, 0, 0), "unknown_op"),
    invalid("subcommand/invalid/unknown-op/op-7", "op 7 is unknown (first value past Bcast).",
            S(7, 0, 0), "unknown_op"),
    invalid("subcommand/invalid/unknown-op/op-255", "op 255 is unknown.",
            S(255, 0, 0), "unknown_op"),
    invalid("subcommand/invalid/unknown-op/op-7-add-shaped", "op 7 with a sub_id and data, all fields well-formed and fully consumed: unknown_op.",
            S(7, 0, 9, "sub1", REQ_SUB1), "unknown_op"),
    invalid("subcommand/invalid/unknown-op/op-128", "op 0x80 is unknown.",
            S(0x80, 0, 9, "", EVENT_MSG), "unknown_op"),

    # ---- invalid_conn ------------------------------------------------------
    invalid("subcommand/invalid/conn/new-minus-1", "New requires conn >= 0; -1 is allowed for Bcast only.",
            S("new", 0, -1), "invalid_conn"),
    invalid("subcommand/invalid/conn/new-i32-min", "New, conn i32::MIN (00 00 00 80).",
            S("new", 0, I32_MIN), "invalid_conn"),
    invalid("subcommand/invalid/conn/close-minus-1", "Close, conn -1.",
            S("close", 0, -1), "invalid_conn"),
    invalid("subcommand/invalid/conn/close-i32-min", "Close, conn i32::MIN.",
            S("close", 0, I32_MIN), "invalid_conn"),
    invalid("subcommand/invalid/conn/add-minus-1", "Add, conn -1.",
            S("add", 0, -1, "sub1", REQ_SUB1), "invalid_conn"),
    invalid("subcommand/invalid/conn/add-i32-min", "Add, conn i32::MIN.",
            S("add", 0, I32_MIN, "sub1", REQ_SUB1), "invalid_conn"),
    invalid("subcommand/invalid/conn/remove-minus-1", "Remove, conn -1.",
            S("remove", 0, -1, "sub1"), "invalid_conn"),
    invalid("subcommand/invalid/conn/remove-i32-min", "Remove, conn i32::MIN.",
            S("remove", 0, I32_MIN, "sub1"), "invalid_conn"),
    invalid("subcommand/invalid/conn/auth-minus-1", "Auth, conn -1.",
            S("auth", 0, -1, "", PUBKEY), "invalid_conn"),
    invalid("subcommand/invalid/conn/auth-i32-min", "Auth, conn i32::MIN.",
            S("auth", 0, I32_MIN, "", PUBKEY), "invalid_conn"),
    invalid("subcommand/invalid/conn/bcast-minus-2", "Bcast allows conn >= -1; -2 (fe ff ff ff) is out of range.",
            S("bcast", 0, -2, "", EVENT_MSG), "invalid_conn"),
    invalid("subcommand/invalid/conn/bcast-i32-min", "Bcast, conn i32::MIN.",
            S("bcast", 0, I32_MIN, "", EVENT_MSG), "invalid_conn"),

    # ---- invalid_sub_id: length ---------------------------------------------
    invalid("subcommand/invalid/sub-id/add-empty", "Add requires a 1-64 byte sub_id; sub_id_len 0.",
            S("add", 0, 9, "", REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/remove-empty", "Remove requires a 1-64 byte sub_id; sub_id_len 0.",
            S("remove", 0, 9, ""), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/add-65-bytes", "Add with a 65-byte ASCII sub_id (one over the limit).",
            S("add", 0, 9, SID_65, REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/remove-65-bytes", "Remove with a 65-byte sub_id.",
            S("remove", 0, 9, SID_65), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/add-65-bytes-utf8", "16 emoji + 'a': 17 characters but 65 bytes; the limit counts bytes.",
            S("add", 0, 9, EMOJI_16 + "a", REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/add-64-chars-128-bytes", "64 x U+00E9: 64 characters but 128 bytes; the limit counts bytes, not characters.",
            S("add", 0, 9, "\u00e9" * 64, REQ_SUB1), "invalid_sub_id"),
    # ---- invalid_sub_id: not UTF-8 ----------------------------------------
    invalid("subcommand/invalid/sub-id/utf8-lone-continuation", "sub_id 'a' 80 'b': a lone continuation byte.",
            S("add", 0, 9, h("618062"), REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/utf8-overlong-2-byte", "sub_id c0 af: overlong encoding of '/'.",
            S("add", 0, 9, h("c0af"), REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/utf8-overlong-3-byte", "sub_id e0 80 af: overlong 3-byte encoding of '/'.",
            S("add", 0, 9, h("e080af"), REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/utf8-overlong-nul", "sub_id c0 80: overlong NUL (Modified UTF-8), not valid UTF-8.",
            S("add", 0, 9, h("c080"), REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/utf8-surrogate", "sub_id ed a0 80: the surrogate U+D800 encoded as UTF-8 (CESU/WTF-8), not valid UTF-8.",
            S("add", 0, 9, h("eda080"), REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/utf8-surrogate-pair", "sub_id ed a0 bd ed b8 80: U+1F600 as a CESU-8 surrogate pair.",
            S("add", 0, 9, h("eda0bdedb880"), REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/utf8-truncated-at-end", "sub_id 'ab' e2 82: a 3-byte sequence cut at the end of the sub_id (the data_len that follows is not part of it).",
            S("add", 0, 9, h("6162e282"), REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/utf8-truncated-4-byte", "sub_id f0 9f 98: a 4-byte sequence missing its last byte.",
            S("add", 0, 9, h("f09f98"), REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/utf8-truncated-in-middle", "sub_id 'a' e2 'b': a lead byte followed by ASCII.",
            S("add", 0, 9, h("61e262"), REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/utf8-byte-ff", "sub_id 'a' ff: 0xff never appears in UTF-8.",
            S("add", 0, 9, h("61ff"), REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/utf8-above-max-code-point", "sub_id f4 90 80 80: would be U+110000, above U+10FFFF.",
            S("add", 0, 9, h("f4908080"), REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/utf8-lead-f5", "sub_id f5 80 80 80: lead byte 0xf5 is never valid.",
            S("add", 0, 9, h("f5808080"), REQ_SUB1), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/remove-utf8-lone-continuation", "Remove with sub_id bf (lone continuation byte).",
            S("remove", 0, 9, h("bf")), "invalid_sub_id"),
    # ---- invalid_sub_id: present where forbidden ---------------------------
    invalid("subcommand/invalid/sub-id/new-present", "New forbids a sub_id; a 1-byte one is present.",
            S("new", 0, 9, "a"), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/close-present", "Close forbids a sub_id.",
            S("close", 0, 9, "sub1"), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/auth-present", "Auth forbids a sub_id (data is a valid 32-byte pubkey).",
            S("auth", 0, 9, "sub1", PUBKEY), "invalid_sub_id"),
    invalid("subcommand/invalid/sub-id/bcast-present", "Bcast forbids a sub_id (data is a valid EVENT).",
            S("bcast", 0, -1, "sub1", EVENT_MSG), "invalid_sub_id"),

    # ---- invalid_data ------------------------------------------------------
    invalid("subcommand/invalid/data/new-present", "New forbids data; 1 byte present.",
            S("new", 0, 9, "", b"x"), "invalid_data"),
    invalid("subcommand/invalid/data/close-present", "Close forbids data.",
            S("close", 0, 9, "", REQ_SUB1), "invalid_data"),
    invalid("subcommand/invalid/data/remove-present", "Remove forbids data (sub_id is valid).",
            S("remove", 0, 9, "sub1", REQ_SUB1), "invalid_data"),
    invalid("subcommand/invalid/data/add-empty", "Add requires non-empty data; data_len 0.",
            S("add", 0, 9, "sub1", b""), "invalid_data"),
    invalid("subcommand/invalid/data/bcast-empty", "Bcast requires non-empty data; data_len 0.",
            S("bcast", 0, -1, "", b""), "invalid_data"),
    invalid("subcommand/invalid/data/auth-31-bytes", "Auth data must be exactly 32 bytes; 31.",
            S("auth", 0, 9, "", PUBKEY[:31]), "invalid_data"),
    invalid("subcommand/invalid/data/auth-33-bytes", "Auth data must be exactly 32 bytes; 33.",
            S("auth", 0, 9, "", PUBKEY + b"\x00"), "invalid_data"),
    invalid("subcommand/invalid/data/auth-0-bytes", "Auth data must be exactly 32 bytes; 0.",
            S("auth", 0, 9, "", b""), "invalid_data"),
    invalid("subcommand/invalid/data/auth-64-byte-hex-text", "Auth data is the binary pubkey; its 64-character hex text is the wrong length.",
            S("auth", 0, 9, "", PUBKEY_HEX), "invalid_data"),

    # ---- truncated ---------------------------------------------------------
    invalid("subcommand/invalid/truncated/empty", "Empty payload: op does not fit.",
            b"", "truncated"),
    invalid("subcommand/invalid/truncated/1-byte", "Only op (New); flags does not fit.",
            h("01"), "truncated"),
    invalid("subcommand/invalid/truncated/2-bytes", "op and flags; conn does not fit.",
            h("0100"), "truncated"),
    invalid("subcommand/invalid/truncated/inside-conn-1", "3 bytes: 1 of 4 conn bytes.",
            S("new", 0, 0)[:3], "truncated"),
    invalid("subcommand/invalid/truncated/inside-conn-3", "5 bytes: 3 of 4 conn bytes.",
            S("new", 0, 0)[:5], "truncated"),
    invalid("subcommand/invalid/truncated/missing-sub-id-len", "6 bytes: conn complete, sub_id_len missing.",
            S("new", 0, 0)[:6], "truncated"),
    invalid("subcommand/invalid/truncated/inside-sub-id-len", "9 bytes: 3 of 4 sub_id_len bytes.",
            S("new", 0, 0)[:9], "truncated"),
    invalid("subcommand/invalid/truncated/new-missing-data-len", "New, 10 bytes: sub_id_len 0, data_len missing.",
            S("new", 0, 0)[:10], "truncated"),
    invalid("subcommand/invalid/truncated/new-inside-data-len", "New, 12 bytes: 2 of 4 data_len bytes.",
            S("new", 0, 0)[:12], "truncated"),
    invalid("subcommand/invalid/truncated/sub-id-len-past-end", "Add, sub_id_len 4 but only 2 sub_id bytes follow.",
            S("add", 0, 9, "sub1", REQ_SUB1)[:12], "truncated"),
    invalid("subcommand/invalid/truncated/sub-id-len-past-end-by-1", "Add, sub_id_len one more than all the remaining bytes.",
            S("add", 0, 9, "sub1", REQ_SUB1, sub_id_len=4 + 4 + len(REQ_SUB1) + 1), "truncated"),
    invalid("subcommand/invalid/truncated/sub-id-len-swallows-data-len", "Add whose sub_id_len covers sub_id, data_len and data exactly: after sub_id nothing is left, so data_len does not fit.",
            S("add", 0, 9, "sub1", REQ_SUB1, sub_id_len=4 + 4 + len(REQ_SUB1)), "truncated"),
    invalid("subcommand/invalid/truncated/sub-id-len-hostile", "sub_id_len 0xffffffff with 4 bytes after it: truncated; a decoder must not allocate 4 GiB.",
            S("add", 0, 9, "sub1", b"", sub_id_len=U32_MAX)[:14], "truncated"),
    invalid("subcommand/invalid/truncated/sub-id-len-65-past-end", "sub_id_len 65 but only 4 bytes follow: truncated wins over invalid_sub_id because fields are parsed first.",
            S("add", 0, 9, "sub1", b"", sub_id_len=65)[:14], "truncated"),
    invalid("subcommand/invalid/truncated/add-missing-data-len", "Add ends right after its sub_id: data_len missing.",
            S("add", 0, 9, "sub1", REQ_SUB1)[:14], "truncated"),
    invalid("subcommand/invalid/truncated/add-inside-data-len", "Add ends after 2 of 4 data_len bytes.",
            S("add", 0, 9, "sub1", REQ_SUB1)[:16], "truncated"),
    invalid("subcommand/invalid/truncated/data-len-past-end", "Add, data_len says 28 bytes (the REQ) but only 10 follow.",
            S("add", 0, 9, "sub1", REQ_SUB1)[:28], "truncated"),
    invalid("subcommand/invalid/truncated/data-len-past-end-by-1", "Bcast, data_len one more than the data present.",
            S("bcast", 0, -1, "", EVENT_MSG, data_len=len(EVENT_MSG) + 1), "truncated"),
    invalid("subcommand/invalid/truncated/data-len-hostile", "Bcast, data_len 0xffffffff with 1 byte of data: truncated; a decoder must not allocate according to it.",
            S("bcast", 0, -1, "", b"[", data_len=U32_MAX), "truncated"),
    invalid("subcommand/invalid/truncated/auth-data-31-of-32", "Auth, data_len 32 but 31 bytes present: truncated, not invalid_data.",
            S("auth", 0, 9, "", PUBKEY)[:-1], "truncated"),

    # ---- trailing_bytes ----------------------------------------------------
    invalid("subcommand/invalid/trailing/new-1-byte", "A complete New followed by one 00 byte.",
            S("new", 0, 9, trailing=h("00")), "trailing_bytes"),
    invalid("subcommand/invalid/trailing/close-16-bytes", "A complete Close followed by 16 bytes.",
            S("close", 0, 9, trailing=bytes(range(16))), "trailing_bytes"),
    invalid("subcommand/invalid/trailing/add-1-byte", "A complete Add followed by one byte.",
            S("add", 0, 9, "sub1", REQ_SUB1, trailing=b"\n"), "trailing_bytes"),
    invalid("subcommand/invalid/trailing/bcast-1-byte", "A complete Bcast followed by one byte.",
            S("bcast", 0, -1, "", EVENT_MSG, trailing=h("00")), "trailing_bytes"),
    invalid("subcommand/invalid/trailing/data-len-short-by-1", "Add whose data_len is one less than the bytes that follow: the last byte is trailing.",
            S("add", 0, 9, "sub1", REQ_SUB1, data_len=len(REQ_SUB1) - 1), "trailing_bytes"),
    invalid("subcommand/invalid/trailing/auth-33-bytes-data-len-32", "Auth, data_len 32 and 33 bytes present: trailing_bytes, not invalid_data.",
            S("auth", 0, 9, "", PUBKEY, trailing=h("00")), "trailing_bytes"),
    invalid("subcommand/invalid/trailing/two-commands", "Two complete SubCommands in one payload: one payload carries exactly one command.",
            S("new", 0, 9) + S("close", 0, 9), "trailing_bytes"),

    # ---- precedence: several rules broken at once --------------------------
    invalid("subcommand/invalid/precedence/truncated-before-unknown-op", "op 7 (unknown) and only 3 bytes: fields are parsed first, so truncated.",
            h("070000"), "truncated"),
    invalid("subcommand/invalid/precedence/truncated-before-unknown-op-1-byte", "A lone unknown op byte ff: truncated.",
            h("ff"), "truncated"),
    invalid("subcommand/invalid/precedence/truncated-before-unknown-op-data", "op 0 with every fixed field present but data_len past the end: the fields of an unknown op are still parsed front to back, so truncated.",
            S(0, 0, 9, "", b"abc", data_len=4), "truncated"),
    invalid("subcommand/invalid/precedence/trailing-before-unknown-op", "op 0, complete, plus one trailing byte: trailing_bytes.",
            S(0, 0, 0, trailing=h("00")), "trailing_bytes"),
    invalid("subcommand/invalid/precedence/unknown-op-before-invalid-conn", "op 255 with conn -1: unknown_op.",
            S(255, 0, -1), "unknown_op"),
    invalid("subcommand/invalid/precedence/unknown-op-before-invalid-sub-id", "op 0 with a 65-byte sub_id: unknown_op (op is judged before sub_id).",
            S(0, 0, 9, SID_65, b"x"), "unknown_op"),
    invalid("subcommand/invalid/precedence/unknown-op-before-all", "op 7, conn i32::MIN, sub_id ed a0 80, empty data: unknown_op.",
            S(7, 0xFF, I32_MIN, h("eda080"), b""), "unknown_op"),
    invalid("subcommand/invalid/precedence/truncated-before-invalid-conn", "New with conn -1 and data_len missing: truncated.",
            S("new", 0, -1)[:10], "truncated"),
    invalid("subcommand/invalid/precedence/trailing-before-invalid-conn", "Close with conn i32::MIN and one trailing byte: trailing_bytes.",
            S("close", 0, I32_MIN, trailing=h("00")), "trailing_bytes"),
    invalid("subcommand/invalid/precedence/invalid-conn-before-invalid-sub-id", "Add with conn -1 and an empty sub_id: invalid_conn.",
            S("add", 0, -1, "", REQ_SUB1), "invalid_conn"),
    invalid("subcommand/invalid/precedence/invalid-conn-before-invalid-data", "New with conn -1 and data present: invalid_conn.",
            S("new", 0, -1, "", b"x"), "invalid_conn"),
    invalid("subcommand/invalid/precedence/bcast-invalid-conn-before-sub-id-and-data", "Bcast with conn -2, a sub_id and empty data: invalid_conn.",
            S("bcast", 0, -2, "sub1", b""), "invalid_conn"),
    invalid("subcommand/invalid/precedence/invalid-sub-id-before-invalid-data", "Add with an empty sub_id and empty data: invalid_sub_id.",
            S("add", 0, 9, "", b""), "invalid_sub_id"),
    invalid("subcommand/invalid/precedence/new-sub-id-and-data-present", "New with both a sub_id and data: invalid_sub_id.",
            S("new", 0, 9, "a", b"x"), "invalid_sub_id"),
    invalid("subcommand/invalid/precedence/auth-sub-id-and-31-bytes", "Auth with a sub_id and 31-byte data: invalid_sub_id.",
            S("auth", 0, 9, "sub1", PUBKEY[:31]), "invalid_sub_id"),
    invalid("subcommand/invalid/precedence/add-bad-utf8-and-empty-data", "Add with sub_id ed a0 80 and empty data: invalid_sub_id.",
            S("add", 0, 9, h("eda080"), b""), "invalid_sub_id"),
    invalid("subcommand/invalid/precedence/truncated-before-invalid-sub-id", "Add with a non-UTF-8 sub_id ff and data_len missing: truncated.",
            S("add", 0, 9, h("ff"), REQ_SUB1)[:11], "truncated"),
    invalid("subcommand/invalid/precedence/trailing-before-invalid-data", "New with data present and a trailing byte: trailing_bytes.",
            S("new", 0, 9, "", b"x", trailing=h("00")), "trailing_bytes"),
    invalid("subcommand/invalid/precedence/every-rule-broken", "op 0, conn i32::MIN, 65-byte sub_id, empty data, trailing bytes: trailing_bytes (nothing is truncated).",
            S(0, 0xFF, I32_MIN, SID_65, b"", trailing=h("dead")), "trailing_bytes"),
]


# ---------------------------------------------------------------------------
# BroadcastFrame case table
# ---------------------------------------------------------------------------

B = pack_broadcast_frame
CLOSED_MSG = '["CLOSED","sub1","invalid: filter is not an object"]'
ESCAPED_SUB_MSG = '["EVENT","a\\"b\\\\c\\n\\u0001",' + EVENT_JSON + ']'
LONG_DATA = ('["NOTICE","' + "x" * 287 + '"]')  # 300 bytes: data_len 2c 01 00 00
assert len(LONG_DATA) == 300

BROADCAST_FRAME = [
    bf_valid("broadcast_frame/conn-0", "conn 0, a 1-byte message.", 0, b"x"),
    bf_valid("broadcast_frame/conn-i32-max", "conn i32::MAX (ff ff ff 7f).", I32_MAX, DELIVERY_MSG),
    bf_valid("broadcast_frame/conn-byte-order", "conn 0x12345678: little-endian i32 (78 56 34 12).", 0x12345678, b"x"),
    bf_valid("broadcast_frame/data-1-byte", "data_len 1 (the minimum).", 9, b"]"),
    bf_valid("broadcast_frame/event-delivery", "A realistic delivery: [\"EVENT\",<sub_id>,<event>].", 9, DELIVERY_MSG),
    bf_valid("broadcast_frame/event-delivery-escaped-sub-id", "A delivery whose sub_id needed JSON escaping (quote, backslash, LF, U+0001).", 9, ESCAPED_SUB_MSG),
    bf_valid("broadcast_frame/closed-message", "A CLOSED message (sent after a failed Add).", 9, CLOSED_MSG),
    bf_valid("broadcast_frame/closed-message-escaped", "The CLOSED example of PROTOCOL.md#closed-message: sub_id and reason escaped by §6.7.4, no whitespace.", 9, '["CLOSED","a\\"b","unsupported: key \\"#foo\\""]'),
    bf_valid("broadcast_frame/data-non-ascii-utf8", "data with raw non-ASCII UTF-8.", 9, '["EVENT","caf\u00e9-\U0001F600",{}]'),
    bf_valid("broadcast_frame/data-not-utf8", "data ff fe 00 c0: data is opaque bytes on the wire; not checked as UTF-8.", 9, h("fffe00c0")),
    bf_valid("broadcast_frame/data-nul-bytes", "data of four 00 bytes.", 9, bytes(4)),
    bf_valid("broadcast_frame/data-300-bytes", "300-byte data: data_len 2c 01 00 00 uses two bytes.", 9, LONG_DATA),

    invalid("broadcast_frame/invalid/conn/minus-1", "conn must be >= 0 (no -1 here, unlike Bcast).",
            B(-1, DELIVERY_MSG), "invalid_conn"),
    invalid("broadcast_frame/invalid/conn/minus-2", "conn -2.",
            B(-2, b"x"), "invalid_conn"),
    invalid("broadcast_frame/invalid/conn/i32-min", "conn i32::MIN (00 00 00 80).",
            B(I32_MIN, DELIVERY_MSG), "invalid_conn"),

    invalid("broadcast_frame/invalid/data/empty", "data_len 0: data must be non-empty.",
            B(0, b""), "invalid_data"),
    invalid("broadcast_frame/invalid/data/empty-conn-i32-max", "conn i32::MAX, data_len 0.",
            B(I32_MAX, b""), "invalid_data"),

    invalid("broadcast_frame/invalid/truncated/0-bytes", "Empty payload: conn does not fit.",
            b"", "truncated"),
    invalid("broadcast_frame/invalid/truncated/1-byte", "1 of 4 conn bytes.",
            B(9, b"x")[:1], "truncated"),
    invalid("broadcast_frame/invalid/truncated/2-bytes", "2 of 4 conn bytes.",
            B(9, b"x")[:2], "truncated"),
    invalid("broadcast_frame/invalid/truncated/3-bytes", "3 of 4 conn bytes.",
            B(9, b"x")[:3], "truncated"),
    invalid("broadcast_frame/invalid/truncated/4-bytes", "conn complete, data_len missing.",
            B(9, b"x")[:4], "truncated"),
    invalid("broadcast_frame/invalid/truncated/5-bytes", "1 of 4 data_len bytes.",
            B(9, b"x")[:5], "truncated"),
    invalid("broadcast_frame/invalid/truncated/6-bytes", "2 of 4 data_len bytes.",
            B(9, b"x")[:6], "truncated"),
    invalid("broadcast_frame/invalid/truncated/7-bytes", "3 of 4 data_len bytes.",
            B(9, b"x")[:7], "truncated"),
    invalid("broadcast_frame/invalid/truncated/data-absent", "data_len 1, no data bytes.",
            B(9, b"x")[:8], "truncated"),
    invalid("broadcast_frame/invalid/truncated/data-len-past-end", "data_len one more than the data present.",
            B(9, DELIVERY_MSG, data_len=len(DELIVERY_MSG) + 1), "truncated"),
    invalid("broadcast_frame/invalid/truncated/data-len-hostile", "data_len 0xffffffff with 2 bytes of data: truncated; never allocate according to it.",
            B(9, b"[]", data_len=U32_MAX), "truncated"),

    invalid("broadcast_frame/invalid/trailing/1-byte", "A complete frame plus one 00 byte.",
            B(9, DELIVERY_MSG, trailing=h("00")), "trailing_bytes"),
    invalid("broadcast_frame/invalid/trailing/many-bytes", "A complete frame plus 8 bytes.",
            B(9, b"x", trailing=h("0102030405060708")), "trailing_bytes"),
    invalid("broadcast_frame/invalid/trailing/data-len-short-by-1", "data_len one less than the bytes that follow.",
            B(9, DELIVERY_MSG, data_len=len(DELIVERY_MSG) - 1), "trailing_bytes"),
    invalid("broadcast_frame/invalid/trailing/two-frames", "Two complete BroadcastFrames in one payload.",
            B(9, b"x") + B(10, b"y"), "trailing_bytes"),

    invalid("broadcast_frame/invalid/precedence/invalid-conn-before-invalid-data", "conn -1 and data_len 0: invalid_conn.",
            B(-1, b""), "invalid_conn"),
    invalid("broadcast_frame/invalid/precedence/trailing-before-invalid-conn", "conn -1, complete, plus a trailing byte: trailing_bytes.",
            B(-1, b"x", trailing=h("00")), "trailing_bytes"),
    invalid("broadcast_frame/invalid/precedence/truncated-before-invalid-conn", "conn -1 and only 2 of 4 data_len bytes: truncated.",
            B(-1, b"x")[:6], "truncated"),
    invalid("broadcast_frame/invalid/precedence/truncated-before-invalid-conn-hostile", "conn i32::MIN and data_len 0xffffffff: truncated.",
            B(I32_MIN, b"", data_len=U32_MAX), "truncated"),
    invalid("broadcast_frame/invalid/precedence/trailing-before-invalid-data", "data_len 0 followed by bytes: those bytes are trailing, so trailing_bytes.",
            B(9, b"", trailing=b"x"), "trailing_bytes"),
]


# ---------------------------------------------------------------------------
# Framing case table
# ---------------------------------------------------------------------------

F = pack_frame
SC_ADD = S("add", 0, 9, "sub1", REQ_SUB1)           # a valid SubCommand payload
BF_EVENT = B(9, DELIVERY_MSG)                       # a valid BroadcastFrame payload
KIB = bytes(i % 256 for i in range(1024))           # 1 KiB: 00 01 .. ff repeated
HEADER_LOOKALIKE = F(1, b"ab") + F(2, b"", length=0x10) + h("ff")  # bytes that look like frame headers

STREAMS = [
    stream("framing/empty", "Empty stream: clean end, no frames.",
           [], [], "clean"),
    stream("framing/one-frame-chan-1", "One frame on channel 1.",
           [F(1, b"hello")], [(1, b"hello")], "clean"),
    stream("framing/one-frame-chan-2", "One frame on channel 2.",
           [F(2, b"world!")], [(2, b"world!")], "clean"),
    stream("framing/heartbeat-chan-0", "Heartbeat (len 0) on channel 0: delivered by framing with an empty payload.",
           [F(0)], [(0, b"")], "clean"),
    stream("framing/heartbeat-chan-1", "Heartbeat on channel 1.",
           [F(1)], [(1, b"")], "clean"),
    stream("framing/heartbeat-chan-2", "Heartbeat on channel 2.",
           [F(2)], [(2, b"")], "clean"),
    stream("framing/heartbeat-chan-255", "Heartbeat on channel 255.",
           [F(255)], [(255, b"")], "clean"),
    stream("framing/heartbeats-many", "Ten heartbeats on channels 0..9.",
           [F(c) for c in range(10)], [(c, b"") for c in range(10)], "clean"),
    stream("framing/foreign-chan-0", "A payload on reserved channel 0: framing delivers it; skipping is the receiver's job.",
           [F(0, b"abc")], [(0, b"abc")], "clean"),
    stream("framing/foreign-chan-3", "A payload on reserved channel 3.",
           [F(3, b"abc")], [(3, b"abc")], "clean"),
    stream("framing/foreign-chan-255", "A payload on reserved channel 255.",
           [F(255, h("00ff"))], [(255, h("00ff"))], "clean"),
    stream("framing/back-to-back-same-chan", "Three frames on channel 1 with no gap.",
           [F(1, b"a"), F(1, b"bb"), F(1, b"ccc")], [(1, b"a"), (1, b"bb"), (1, b"ccc")], "clean"),
    stream("framing/back-to-back-mixed", "Mixed channels, heartbeats and foreign frames, back to back, in order.",
           [F(1, b"one"), F(2, b"two"), F(0), F(3, b"three"), F(1), F(255, b"x"), F(1, b"last")],
           [(1, b"one"), (2, b"two"), (0, b""), (3, b"three"), (1, b""), (255, b"x"), (1, b"last")], "clean"),
    stream("framing/subcommand-payload", "The payload is a valid SubCommand (Add); framing does not decode it.",
           [F(1, SC_ADD)], [(1, SC_ADD)], "clean"),
    stream("framing/broadcast-frame-payload", "The payload is a valid BroadcastFrame on channel 2.",
           [F(2, BF_EVENT)], [(2, BF_EVENT)], "clean"),
    stream("framing/invalid-subcommand-payload", "The payload is an invalid SubCommand (op 0, 3 bytes): framing delivers it; decoding fails one layer above, non-fatally.",
           [F(1, h("000000")), F(1, SC_ADD)], [(1, h("000000")), (1, SC_ADD)], "clean"),
    stream("framing/subcommand-on-chan-2", "A SubCommand payload on channel 2: framing does not look at payloads.",
           [F(2, SC_ADD)], [(2, SC_ADD)], "clean"),
    stream("framing/payload-1-kib", "A 1024-byte payload (len 00 04 00 00).",
           [F(1, KIB)], [(1, KIB)], "clean"),
    stream("framing/payload-looks-like-headers", "The payload contains bytes that look like frame headers (01 02000000 6162 02 10000000 ff); they are payload, not frames.",
           [F(1, HEADER_LOOKALIKE), F(2, b"z")], [(1, HEADER_LOOKALIKE), (2, b"z")], "clean"),
    stream("framing/payload-len-0xff-bytes", "A payload of 255 bytes 0xff (len ff 00 00 00).",
           [F(1, b"\xff" * 255)], [(1, b"\xff" * 255)], "clean"),

    # ---- max_payload -------------------------------------------------------
    stream("framing/max/payload-at-max", "max_payload 8, a payload of exactly 8 bytes: delivered.",
           [F(1, b"12345678"), F(2, b"abcdefgh")], [(1, b"12345678"), (2, b"abcdefgh")], "clean", max_payload=8),
    stream("framing/max/payload-one-over", "max_payload 8: frames before are delivered, then len 9 is frame_too_large (decided on its 5-byte header; the 9 payload bytes present and the frame after are never delivered).",
           [F(1, b"ok"), F(0), F(1, b"123456789"), F(1, b"after")], [(1, b"ok"), (0, b"")], "frame_too_large", max_payload=8),
    stream("framing/max/len-above-max-header-only", "max_payload 16, a header claiming len 17 and then the stream ends: frame_too_large, not truncated_stream, because the decision is made as soon as the 5-byte header is read.",
           [F(1, b"hi"), F(1, length=17)], [(1, b"hi")], "frame_too_large", max_payload=16),
    stream("framing/max/len-u32-max-default", "Default maximum (16 MiB), a header with len 0xffffffff and no payload: frame_too_large, decided from the 5-byte header alone; never allocate 4 GiB.",
           [F(1, length=U32_MAX)], [], "frame_too_large"),
    stream("framing/max/len-default-max-plus-1", "Default maximum, header with len 16777217 (01 00 00 01) and no payload: frame_too_large from the header alone.",
           [F(1, b"a"), F(1, length=DEFAULT_MAX_PAYLOAD + 1)], [(1, b"a")], "frame_too_large"),
    stream("framing/max/len-default-max-exact-then-eof", "Default maximum, header with len exactly 16777216 (00 00 00 01) and no payload: the length is allowed, so the stream ends inside the payload: truncated_stream.",
           [F(2, length=DEFAULT_MAX_PAYLOAD)], [], "truncated_stream"),
    stream("framing/max/too-large-on-foreign-chan", "max_payload 4, len 5 on reserved channel 3: the length check applies to every channel, frame_too_large.",
           [F(2, b"ok"), F(3, b"12345")], [(2, b"ok")], "frame_too_large", max_payload=4),
    stream("framing/max/zero-heartbeat", "max_payload 0: only heartbeats are allowed; a heartbeat is fine.",
           [F(1), F(2)], [(1, b""), (2, b"")], "clean", max_payload=0),
    stream("framing/max/zero-one-byte-frame", "max_payload 0, a 1-byte frame: frame_too_large.",
           [F(1, b"x")], [], "frame_too_large", max_payload=0),
    stream("framing/max/zero-heartbeats-then-one-byte", "max_payload 0: two heartbeats delivered, then a 1-byte frame header is frame_too_large (payload byte absent).",
           [F(0), F(1), F(1, length=1)], [(0, b""), (1, b"")], "frame_too_large", max_payload=0),
    stream("framing/max/one", "max_payload 1: a 1-byte frame is delivered, a 2-byte one is too large.",
           [F(1, b"a"), F(2, b"bc")], [(1, b"a")], "frame_too_large", max_payload=1),

    # ---- truncated_stream ---------------------------------------------------
    stream("framing/truncated/header-1-byte", "The stream ends after 1 header byte (chan).",
           [F(1, b"abc")[:1]], [], "truncated_stream"),
    stream("framing/truncated/header-2-bytes", "The stream ends after 2 header bytes.",
           [F(1, b"abc")[:2]], [], "truncated_stream"),
    stream("framing/truncated/header-4-bytes", "The stream ends after 4 of 5 header bytes.",
           [F(1, b"abc")[:4]], [], "truncated_stream"),
    stream("framing/truncated/header-complete-no-payload", "A complete header with len 3 (within the maximum), then the stream ends.",
           [F(1, b"abc")[:5]], [], "truncated_stream"),
    stream("framing/truncated/inside-payload", "The stream ends after 2 of 3 payload bytes.",
           [F(1, b"abc")[:7]], [], "truncated_stream"),
    stream("framing/truncated/inside-large-payload", "The stream ends one byte before the end of a 1 KiB payload.",
           [F(2, b"x"), F(1, KIB)[:-1]], [(2, b"x")], "truncated_stream"),
    stream("framing/truncated/frame-then-partial-header", "A complete frame, then 1 byte of the next header.",
           [F(1, b"abc"), h("02")], [(1, b"abc")], "truncated_stream"),
    stream("framing/truncated/frame-then-partial-header-3", "A complete frame, then 3 bytes of the next header.",
           [F(1, b"abc"), F(2, b"de")[:3]], [(1, b"abc")], "truncated_stream"),
    stream("framing/truncated/heartbeat-then-partial-header", "A heartbeat, then 4 bytes of a heartbeat header.",
           [F(0), F(0)[:4]], [(0, b"")], "truncated_stream"),
    stream("framing/truncated/frames-then-partial-payload", "Two complete frames, then a header and part of its payload.",
           [F(1, b"a"), F(2, b"b"), F(1, b"cdef")[:6]], [(1, b"a"), (2, b"b")], "truncated_stream"),
    stream("framing/truncated/at-max-payload-partial", "max_payload 8, len 8 (allowed) with 7 payload bytes: truncated_stream.",
           [F(1, b"12345678")[:12]], [], "truncated_stream", max_payload=8),
]


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def write(rel, doc):
    ids = [v["id"] for v in doc["vectors"]]
    assert len(ids) == len(set(ids)), "duplicate vector id in " + rel
    path = os.path.join(ROOT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print("wrote %s (%d vectors)" % (rel, len(ids)))


def main():
    write("vectors/codec/subcommand.json",
          {"schema": CODEC_SCHEMA, "message": "SubCommand", "vectors": SUBCOMMAND})
    write("vectors/codec/broadcast_frame.json",
          {"schema": CODEC_SCHEMA, "message": "BroadcastFrame", "vectors": BROADCAST_FRAME})
    write("vectors/framing/streams.json",
          {"schema": FRAMING_SCHEMA, "vectors": STREAMS})


if __name__ == "__main__":
    main()
