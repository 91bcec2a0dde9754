#!/usr/bin/env python3
"""Turn criterion's results for broadcast-wire into the ratio tables of
docs/PERFORMANCE.md (standard library only).

Run the benchmarks first, then this script, from the repository root:

    cargo bench -p broadcast-wire --bench codec --bench framing
    cargo bench -p broadcast-wire --features tokio --bench tokio_codec
    python3 wire/benches/ratios.py

It reads <target>/criterion/**/new/{benchmark,estimates}.json, where <target>
is the first argument, else $CARGO_TARGET_DIR, else ./target. Times are
criterion's median estimates. Every ratio compares two functions of the same
group, measured in the same run:

- codec/<shape>: decode / memcpy and encode / memcpy (time ratios; lower is
  better; goals for bcast_1KiB: decode <= 1.2, encode <= 1.5). `decode`
  includes cloning and dropping a Bytes handle (two atomic reference-count
  operations, measured alone as `bytes_clone_drop`); the table also shows
  decode net of that pair;
- framing/<shape>: frame_pipe throughput as a share of raw_pipe throughput
  (raw time / frame time; higher is better; goal for 4KiB_frames >= 90%),
  and frames per second where the group counts elements (goal for
  100B_frames_coalesced >= 5,000,000);
- tokio_codec/<shape>: each decoder's time against tokio-util's
  LengthDelimitedCodec splitting the same stream (`length_delimited`) and
  against LengthDelimitedCodec plus BroadcastFrame::decode of each payload
  (`length_delimited_decode`, the same work as FrameCodec less the receive
  rules), and FrameCodec against the copying design it replaced
  (`frame_codec_copying`). Time ratios; lower is better.

Exits 1 if no result is found. Missed goals are reported, not fatal.
"""

import json
import os
import sys

GOALS_CODEC = {"bcast_1KiB": {"decode": 1.2, "encode": 1.5}}
GOAL_4K_SHARE = 0.90
GOAL_SMALL_FPS = 5_000_000


def load(target):
    root = os.path.join(target, "criterion")
    results = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        group = bench["group_id"]
        func = bench["function_id"]
        results.setdefault(group, {})[func] = {
            "ns": est["median"]["point_estimate"],
            "throughput": bench.get("throughput") or {},
        }
    return results


def fmt_ns(ns):
    if ns >= 1e6:
        return "%.2f ms" % (ns / 1e6)
    if ns >= 1e3:
        return "%.2f µs" % (ns / 1e3)
    return "%.1f ns" % ns


def size_of(shape):
    for fn in shape.values():
        tp = fn["throughput"]
        if "Bytes" in tp:
            return tp["Bytes"]
        if "BytesDecimal" in tp:
            return tp["BytesDecimal"]
    return None


def codec_table(results):
    rows = []
    for group in sorted(results, key=lambda g: (size_of(results[g]) or 0, g)):
        if not group.startswith("codec/"):
            continue
        shape = group[len("codec/"):]
        fns = results[group]
        if not all(k in fns for k in ("memcpy", "decode", "encode")):
            continue
        base = fns["memcpy"]["ns"]
        dec = fns["decode"]["ns"]
        enc = fns["encode"]["ns"]
        rc = fns.get("bytes_clone_drop", {}).get("ns")
        net = (dec - rc) if rc is not None else None
        goals = GOALS_CODEC.get(shape, {})
        marks = []
        if "decode" in goals:
            g = goals["decode"]
            marks.append("decode %s ≤ %.1f× (net of refcount: %s)" % (
                "meets" if dec / base <= g else "MISSES", g,
                "n/a" if net is None else ("meets" if net / base <= g else "MISSES")))
        if "encode" in goals:
            g = goals["encode"]
            marks.append("encode %s ≤ %.1f×" % ("meets" if enc / base <= g else "MISSES", g))
        rows.append("| %s | %s | %s | %.2f× (%s) | %s | %s | %.2f× (%s) | %s |" % (
            shape, size_of(fns), fmt_ns(base),
            dec / base, fmt_ns(dec),
            "n/a" if rc is None else fmt_ns(rc),
            "n/a" if net is None else "%.2f× (%s)" % (net / base, fmt_ns(net)),
            enc / base, fmt_ns(enc),
            "; ".join(marks)))
    if not rows:
        return []
    return [
        "| shape | payload bytes | memcpy | decode / memcpy | refcount pair | (decode − refcount) / memcpy "
        "| encode / memcpy | goal |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ] + rows


def framing_table(results):
    rows = []
    for group in sorted(results):
        if not group.startswith("framing/"):
            continue
        fns = results[group]
        if "raw_pipe" not in fns or "frame_pipe" not in fns:
            continue
        raw = fns["raw_pipe"]["ns"]
        framed = fns["frame_pipe"]["ns"]
        share = raw / framed
        tp = fns["frame_pipe"]["throughput"]
        shape = group[len("framing/"):]
        if "Elements" in tp:
            n = tp["Elements"]
            fps = n / (framed / 1e9)
            raw_fps = n / (raw / 1e9)
            detail = "%.2f M frames/s (raw bytes: %.2f M frames/s)" % (fps / 1e6, raw_fps / 1e6)
            goal = "%s ≥ 5 M frames/s" % ("meets" if fps >= GOAL_SMALL_FPS else "MISSES")
        else:
            n = tp.get("Bytes", 0)
            detail = "%.0f MiB/s (raw: %.0f MiB/s)" % (
                n / (framed / 1e9) / 2**20, n / (raw / 1e9) / 2**20)
            goal = ""
            if shape == "4KiB_frames":
                goal = "%s ≥ 90%% of raw" % ("meets" if share >= GOAL_4K_SHARE else "MISSES")
        rows.append("| %s | %s | %s | %.1f%% | %s | %s |" % (
            shape, fmt_ns(raw), fmt_ns(framed), 100 * share, detail, goal))
    if not rows:
        return []
    return [
        "| shape | raw pipe (per run) | framed (per run) | framed / raw throughput | rate | goal |",
        "|---|---:|---:|---:|---|---|",
    ] + rows


def tokio_codec_table(results):
    rows = []
    old_new = []
    for group in sorted(results):
        if not group.startswith("tokio_codec/"):
            continue
        fns = results[group]
        base = fns.get("length_delimited", {}).get("ns")
        if base is None:
            continue
        with_decode = fns.get("length_delimited_decode", {}).get("ns")
        shape = group[len("tokio_codec/"):]
        order = ["length_delimited", "length_delimited_decode", "frame_codec", "frame_codec_copying"]
        for func in order + sorted(set(fns) - set(order)):
            if func not in fns:
                continue
            ns = fns[func]["ns"]
            tp = fns[func]["throughput"]
            rate = ""
            if "Elements" in tp:
                rate = "%.2f M frames/s" % (tp["Elements"] / (ns / 1e9) / 1e6)
            rows.append("| %s | %s | %s | %.2f× | %s | %s |" % (
                shape, func, fmt_ns(ns), ns / base,
                "n/a" if with_decode is None else "%.2f×" % (ns / with_decode), rate))
        if "frame_codec" in fns and "frame_codec_copying" in fns:
            new_ns = fns["frame_codec"]["ns"]
            old_ns = fns["frame_codec_copying"]["ns"]
            old_new.append("%s: frame_codec / frame_codec_copying = %.2f× (%s against %s)" % (
                shape, new_ns / old_ns, fmt_ns(new_ns), fmt_ns(old_ns)))
    if not rows:
        return []
    return [
        "| shape | decoder | time (per stream) | / length_delimited | / length_delimited_decode | rate |",
        "|---|---|---:|---:|---:|---|",
    ] + rows + [""] + old_new


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CARGO_TARGET_DIR", "target")
    results = load(target)
    if not results:
        print("no criterion results under %s/criterion; run cargo bench first" % target, file=sys.stderr)
        return 1
    codec = codec_table(results)
    framing = framing_table(results)
    tokio_codec = tokio_codec_table(results)
    if codec:
        print("Codec (criterion medians; ratio = time / memcpy time of the same bytes, same run):\n")
        print("\n".join(codec))
        print()
    if framing:
        print("Framing through a pipe (criterion medians; share = raw time / framed time, same run):\n")
        print("\n".join(framing))
        print()
    if tokio_codec:
        print("FrameCodec against LengthDelimitedCodec (criterion medians; ratio = time / baseline time, same run):\n")
        print("\n".join(tokio_codec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
