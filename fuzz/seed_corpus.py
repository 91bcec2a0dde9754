#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets from the golden vectors.

Run from anywhere (standard library only):

    python3 fuzz/seed_corpus.py

It writes fuzz/corpus/<target>/seed-<name> files, after removing the
seed-* files it wrote before, and leaves every other corpus file alone.
The output is deterministic; the seeds are committed, so the stable
regression tests (conformance/testkit/tests/fuzz_corpus_{wire,worker,link}.rs)
replay them too. Input layouts are described in docs/FUZZING.md and in the
check functions of broadcast_testkit::fuzz_checks (conformance/testkit/src/fuzz_checks/).
"""

import json
import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "vectors"
CORPUS = ROOT / "fuzz" / "corpus"

DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024
# Larger inputs slow libFuzzer down (and raise its -max_len) for no new coverage.
MAX_SEED = 64 * 1024

# frame_reader_chunked schedules, one byte per read call (see io_step in
# conformance/testkit/src/fuzz_checks/wire.rs): 0 WouldBlock, 1 Interrupted, 2 "all that fits",
# n >= 3 "at most max(n - 3, 1) bytes".
READ_SCHEDULES = {
    "oneshot": b"",
    "bytewise": b"\x04",
    "mixed": bytes([0, 5, 1, 10, 0, 4, 2]),
}


# link_worker_output op bytes, played in a cycle (see check_link_worker_output
# in conformance/testkit/src/fuzz_checks/link.rs): op % 8 = 0-2 read, 3-4
# read_ahead, 5 and 7 a command picked by op >> 3, 6 a flush that lets the
# command pipe take 4 * (op >> 3) more bytes. An empty list only reads.
LINK_OPS = {
    "read": b"",
    "interleaved": bytes([3, 0, 5, 4, 6 | 8 << 3, 1, 7 | 2 << 3, 2, 13, 6 | 31 << 3, 4, 15, 21]),
}
# (read schedule, op list) pairs each framing stream is seeded with.
LINK_PLANS = [("oneshot", "read"), ("mixed", "interleaved")]


def link_input(max_byte, schedule, ops, stream):
    """[max_payload] [n] [n read-schedule bytes] [m] [m op bytes] [stream]."""
    return bytes([max_byte, len(schedule)]) + schedule + bytes([len(ops)]) + ops + stream


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def safe_name(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def max_payload_byte(max_payload):
    """The frame_reader_chunked byte for a maximum: itself, 255 = default."""
    if max_payload == DEFAULT_MAX_PAYLOAD:
        return 255
    if not 0 <= max_payload <= 254:
        raise SystemExit(f"max_payload {max_payload} has no seed encoding")
    return max_payload


def frame(chan, payload):
    return struct.pack("<BI", chan, len(payload)) + payload


class Seeds:
    def __init__(self):
        self.by_target = {}

    def add(self, target, name, data):
        files = self.by_target.setdefault(target, {})
        if data in files.values():
            return  # the same input under another name already
        if len(data) > MAX_SEED:
            return  # the 1 MiB scenarios: slow to mutate, and covered by the worker's own tests
        name = "seed-" + safe_name(name)
        if name in files and files[name] != data:
            raise SystemExit(f"duplicate seed name {target}/{name}")
        files[name] = data

    def write(self):
        for target, files in sorted(self.by_target.items()):
            out = CORPUS / target
            out.mkdir(parents=True, exist_ok=True)
            for old in out.glob("seed-*"):
                old.unlink()
            for name, data in sorted(files.items()):
                (out / name).write_bytes(data)
            print(f"{target}: {len(files)} seeds")


def codec_seeds(seeds):
    valid_payloads = []
    for target, file in [
        ("decode_subcommand", "subcommand.json"),
        ("decode_broadcast_frame", "broadcast_frame.json"),
    ]:
        doc = load(VECTORS / "codec" / file)
        assert doc["schema"] == "broadcast-wire/codec/v1", doc["schema"]
        for v in doc["vectors"]:
            data = bytes.fromhex(v["hex"])
            seeds.add(target, v["id"], data)
            if v["result"] == "valid":
                chan = 1 if doc["message"] == "SubCommand" else 2
                valid_payloads.append((v["id"], chan, data))
    return valid_payloads


def framing_seeds(seeds):
    doc = load(VECTORS / "framing" / "streams.json")
    assert doc["schema"] == "broadcast-wire/framing/v1", doc["schema"]
    for v in doc["vectors"]:
        stream = bytes.fromhex(v["stream_hex"])
        max_byte = max_payload_byte(v.get("max_payload", DEFAULT_MAX_PAYLOAD))
        for sched_name, sched in READ_SCHEDULES.items():
            data = bytes([max_byte, len(sched)]) + sched + stream
            seeds.add("frame_reader_chunked", f"{v['id']}-{sched_name}", data)
        for sched_name, ops_name in LINK_PLANS:
            data = link_input(max_byte, READ_SCHEDULES[sched_name], LINK_OPS[ops_name], stream)
            seeds.add("link_worker_output", f"{v['id']}-{sched_name}-{ops_name}", data)


def link_seeds(seeds, valid_payloads):
    """link_worker_output: the valid BroadcastFrame payloads of the codec
    vectors as a worker's output on channel 2, ending cleanly, inside a
    frame, and at a header over the maximum followed by more output (which
    the link must discard)."""
    frames = b"".join(frame(chan, p) for _, chan, p in valid_payloads if chan == 2)
    endings = {
        "clean": b"",
        "truncated": frame(2, b"\x01\x00\x00\x00\x05\x00\x00\x00abcde")[:9],
        "too-large-then-more": struct.pack("<BI", 2, 0xFFFFFFFF) + frames,
    }
    for end_name, ending in endings.items():
        for sched_name, ops_name in LINK_PLANS:
            data = link_input(255, READ_SCHEDULES[sched_name], LINK_OPS[ops_name], frames + ending)
            seeds.add("link_worker_output", f"broadcast-frames-{end_name}-{sched_name}-{ops_name}", data)


def structured_seeds(seeds, valid_payloads):
    """frame_writer_partial and roundtrip_structured read their input through
    `arbitrary::Unstructured`; any bytes are a valid input. Real payloads give
    them realistic lengths and contents to start from."""
    for i in range(0, len(valid_payloads), 8):
        group = valid_payloads[i : i + 8]
        name = f"payloads-{i // 8:02d}"
        seeds.add("roundtrip_structured", name, b"".join(p for _, _, p in group))
        # Writer: max byte, a schedule of small writes and WouldBlocks, then frames.
        stream = b"".join(frame(chan, p) for _, chan, p in group)
        seeds.add("frame_writer_partial", name, bytes([1, 8, 0, 4, 5, 1, 9, 3, 0, 2]) + stream)


# --- worker_commands and req_filter_parse (record format: see
# parse_commands in conformance/testkit/src/fuzz_checks/worker.rs).


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def sub_command_payload(op, conn, flags=0, sub_id=b"", data=b""):
    code = {"new": 1, "close": 2, "add": 3, "remove": 4, "auth": 5, "bcast": 6}[op]
    return (
        struct.pack("<BBiI", code, flags, conn, len(sub_id)) + sub_id + struct.pack("<I", len(data)) + data
    )


def item_data(item, events):
    """The data bytes of an add or bcast send item (docs/VECTORS.md)."""
    if "data_hex" in item:
        return bytes.fromhex(item["data_hex"])
    if item["op"] == "add":
        if "req_raw" in item:
            return item["req_raw"].encode()
        return compact(item["req"]).encode()
    if item["op"] == "bcast":
        if "data_raw" in item:
            return item["data_raw"].encode()
        raw = item["event_raw"] if "event_raw" in item else events[item["event"]]
        return b'["EVENT",' + raw.encode() + b"]"
    return b""


def item_payloads(item, events):
    """The SubCommand payloads a send item puts on channel 1."""
    if "frame_hex" in item:
        stream, out = bytes.fromhex(item["frame_hex"]), []
        while len(stream) >= 5:
            chan, n = struct.unpack("<BI", stream[:5])
            if len(stream) < 5 + n:
                break
            if chan == 1 and n > 0:
                out.append(("X", None, stream[5 : 5 + n]))
            stream = stream[5 + n :]
        return out
    op, flags = item["op"], item.get("flags", 0)
    conn = item["sender"] if op == "bcast" else item["conn"]
    sub_id = item.get("sub_id", "").encode()
    data = item_data(item, events)
    if op == "auth" and "data_hex" not in item:
        data = bytes.fromhex(item["pubkey"])
    return [(op, item, sub_command_payload(op, conn, flags, sub_id, data))]


def record(op, item, payload, events):
    """One record: readable when the fields allow it, else the payload as hex (X)."""
    as_hex = b"X" + payload.hex().encode()
    if op == "X" or ("data_hex" in item and op not in ("add", "bcast")):
        return as_hex
    conn = item["sender"] if op == "bcast" else item["conn"]
    if not (0 <= conn <= 15 or (op == "bcast" and conn == -1)):
        return as_hex
    flags = bytes([(ord("0") + item.get("flags", 0)) % 256])
    sub_id = item.get("sub_id", "").encode()
    data = item_data(item, events)
    rec = {"new": b"N", "close": b"C", "add": b"A", "remove": b"R", "auth": b"U", "bcast": b"B"}[op]
    rec += b"-" if conn == -1 else bytes([ord("0") + conn])
    if op in ("new", "bcast"):
        rec += flags
    if op == "add":
        if b"\x01" in sub_id:
            return as_hex
        rec += sub_id + b"\x01" + data
    if op == "remove":
        rec += sub_id
    if op == "auth":
        rec += item["pubkey"].encode()
    if op == "bcast":
        rec += data
    return as_hex if b"\x00" in rec else rec


def scenario_seeds(seeds):
    for path in sorted((VECTORS / "scenarios").glob("*.json")):
        doc = load(path)
        assert doc["schema"] in ("broadcast-wire/scenarios/v1", "broadcast-wire/scenarios/v2"), doc["schema"]
        for case in doc["cases"]:
            events = dict(doc.get("events", {}))
            events.update(case.get("events", {}))
            # v2 `fill` events stand for 16 MiB texts: far too large for a seed.
            if any(isinstance(v, dict) for v in events.values()):
                continue
            records = []
            for step in case["steps"]:
                for item in step["send"]:
                    for op, it, payload in item_payloads(item, events):
                        records.append(record(op, it, payload, events))
                        if op == "add":
                            req_seed(seeds, case["id"] + f"-{len(records)}", it, events)
            seeds.add("worker_commands", case["id"], b"\x00".join(records))


def req_seed(seeds, name, item, events):
    """The REQ of an Add, with its sub_id made the target's "s"."""
    if "req" in item and isinstance(item["req"], list) and len(item["req"]) >= 2:
        req = list(item["req"])
        req[1] = "s"
        data = compact(req).encode()
    else:
        data = item_data(item, events)
    seeds.add("req_filter_parse", name, data)


# REQs aimed at the fixed events of req_filter_parse (FIXED_EVENTS in
# conformance/testkit/src/fuzz_checks/worker.rs), so matches are found from the start.
HEX = {c: c * 64 for c in "ab123456"}
FIXED_EVENT_REQS = {
    "ids": [{"ids": [HEX["1"], HEX["4"]]}],
    "authors-kinds": [{"authors": [HEX["a"]], "kinds": [1, 4, 10051]}],
    "tag-t": [{"#t": ["nostr", 'a"b']}],
    "tag-p-e": [{"#p": [HEX["a"], HEX["b"]]}, {"#e": [HEX["2"]]}],
    "since-until": [{"since": 1700000000, "until": 1700000000}],
    "kind-max-unicode": [{"kinds": [65535], "#x": ["caf\u00e9"]}],
    "upper-d": [{"#T": ["Upper"], "#d": ["article"]}],
    "everything": [{}],
    "empty-lists": [{"kinds": []}, {"#t": []}],
    "limit-search": [{"limit": 10, "search": "x", "kinds": [0]}],
}


def fixed_event_req_seeds(seeds):
    for name, filters in FIXED_EVENT_REQS.items():
        seeds.add("req_filter_parse", "fixed-" + name, compact(["REQ", "s", *filters]).encode())


def main():
    seeds = Seeds()
    valid = codec_seeds(seeds)
    framing_seeds(seeds)
    structured_seeds(seeds, valid)
    link_seeds(seeds, valid)
    scenario_seeds(seeds)
    fixed_event_req_seeds(seeds)
    seeds.write()


if __name__ == "__main__":
    main()
