#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets from the golden vectors.

Run from anywhere (standard library only):

    python3 fuzz/seed_corpus.py

It writes fuzz/corpus/<target>/seed-<name> files, after removing the
seed-* files it wrote before, and leaves every other corpus file alone.
The output is deterministic; the seeds are committed, so the stable
regression tests (wire/tests/fuzz_corpus.rs, conformance/tests/fuzz_corpus.rs)
replay them too. Input layouts are described in docs/FUZZING.md and in the
check functions under fuzz/checks/.
"""

import json
import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "vectors"
CORPUS = ROOT / "fuzz" / "corpus"

DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024

# frame_reader_chunked schedules, one byte per read call (see io_step in
# fuzz/checks/wire.rs): 0 WouldBlock, 1 Interrupted, 2 "all that fits",
# n >= 3 "at most max(n - 3, 1) bytes".
READ_SCHEDULES = {
    "oneshot": b"",
    "bytewise": b"\x04",
    "mixed": bytes([0, 5, 1, 10, 0, 4, 2]),
}


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


def main():
    seeds = Seeds()
    valid = codec_seeds(seeds)
    framing_seeds(seeds)
    structured_seeds(seeds, valid)
    seeds.write()


if __name__ == "__main__":
    main()
