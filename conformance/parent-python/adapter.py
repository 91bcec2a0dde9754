#!/usr/bin/env python3
"""A minimal broadcast-wire parent in Python, behind the adapter contract.

This file is two things:

* a parent written from docs/PROTOCOL.md alone (framing, payloads and the
  parent rules of PROTOCOL.md#parent-semantics), with the standard library
  only: spawning over stdio pipes or a socketpair, non-blocking I/O with
  `selectors`, frames encoded and decoded by hand with `struct`, a bounded
  outbound queue whose refusals are visible, conns from a counter, frames
  for unknown conns discarded, reads until EAGAIN, the worker reaped;
* the adapter of docs/CONFORMANCE.md ("The adapter contract") around it, so
  the parent suite can test it:

      broadcast-conformance parent -- python3 conformance/parent-python/adapter.py
      broadcast-conformance parent --transport socketpair -- python3 conformance/parent-python/adapter.py

It is meant as the model for a parent in any other language: the class
`Worker` is the parent's handle on its worker; `Adapter` only translates the
contract's JSON lines into calls on it.
"""

import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import time

# PROTOCOL.md#maximum-payload: the largest payload either side accepts.
MAX_PAYLOAD = 16 * 1024 * 1024
# The outbound queue's limit, in bytes of framed commands. A command that
# does not fit is refused to the relay (PROTOCOL.md#parent-flow-control):
# never dropped silently.
QUEUE_LIMIT = 8 * 1024 * 1024
# PROTOCOL.md#parent-bcast: a parent SHOULD keep a Bcast payload this far
# under the maximum, the most a sub_id adds to the EVENT frames it causes
# (PROTOCOL.md#oversize-output).
BCAST_HEADROOM = 381
# PROTOCOL.md#frame-layout and PROTOCOL.md#channels.
HEADER = struct.Struct("<BI")
CHAN_COMMAND = 1
CHAN_FRAME = 2
# PROTOCOL.md#operations.
NEW, CLOSE, ADD, REMOVE, AUTH, BCAST = 1, 2, 3, 4, 5, 6
# PROTOCOL.md#flags.
WHITELISTED = 0x01
BCAST_FLAGS = {"need_filter": 0x01, "nip70_enforce": 0x02, "marmot_open": 0x04}

EXIT_GRACE = 0.5  # a worker whose output ended gets this long to exit
LOST_GRACE = 1.0  # a worker whose input closed gets this long to end its output
SHUTDOWN_GRACE = 5.0  # silence allowed after the end of the command stream


class Refused(Exception):
    """A command the parent did not accept: the relay sees this message."""


def encode_command(op, flags, conn, sub_id=b"", data=b""):
    """One framed SubCommand (PROTOCOL.md#subcommand-layout), on channel 1."""
    payload = (
        struct.pack("<BBiI", op, flags, conn, len(sub_id))
        + sub_id
        + struct.pack("<I", len(data))
        + data
    )
    if len(payload) > MAX_PAYLOAD:
        # PROTOCOL.md#parent-sending: fatal for the worker; refuse it.
        raise Refused(f"command payload of {len(payload)} bytes is over the maximum {MAX_PAYLOAD}")
    return HEADER.pack(CHAN_COMMAND, len(payload)) + payload


def check_sub_id(sub_id):
    """PROTOCOL.md#operations: 1 to 64 bytes of UTF-8."""
    raw = sub_id.encode("utf-8")
    if not 1 <= len(raw) <= 64:
        raise Refused(f"sub_id of {len(raw)} bytes: it must have 1 to 64")
    return raw


class Worker:
    """The parent's handle on one worker process."""

    def __init__(self, argv, transport):
        if transport == "stdio":
            # PROTOCOL.md#stdio: commands on its stdin, frames on its stdout.
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self.read_fd = self.proc.stdout.fileno()
            self.write_fd = self.proc.stdin.fileno()
            self.sock = None
        elif transport == "socketpair":
            # PROTOCOL.md#socketpair: one duplex socket, its number as --fd N.
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            fd = theirs.fileno()
            self.proc = subprocess.Popen(
                argv + ["--fd", str(fd)],
                pass_fds=(fd,),
                stdin=subprocess.DEVNULL,  # not ours to share: the actions
                stdout=subprocess.DEVNULL,  # and the answers
            )
            theirs.close()  # the worker's end lives in the worker only
            self.sock = ours
            self.read_fd = self.write_fd = ours.fileno()
        else:
            raise ValueError(f"unknown transport {transport!r}")
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self.queue = bytearray()  # framed commands not yet written
        self.inbuf = bytearray()  # bytes read and not yet a whole frame
        self.write_open = True  # False once closed or found gone
        self.write_gone = False  # a write found the worker's input closed
        self.reading = True  # False once the output ended or broke

    # ---- commands (PROTOCOL.md#parent-sending) -------------------------

    def send(self, frame):
        """Queues one framed command, or refuses it: nothing half done."""
        if self.write_gone:
            raise Refused("the worker is gone")
        if not self.write_open:
            raise Refused("the command stream is closed")
        # An empty queue takes any command (or one larger than the limit
        # could never be sent).
        if self.queue and len(self.queue) + len(frame) > QUEUE_LIMIT:
            self.flush()  # a write may make room
            if self.queue and len(self.queue) + len(frame) > QUEUE_LIMIT:
                raise Refused(f"back-pressure: {len(self.queue)} bytes are queued, the limit is {QUEUE_LIMIT}")
        self.queue += frame

    def flush(self):
        """Writes what the fd takes. Whole frames were queued and bytes
        leave in order, so every frame is written contiguously."""
        while self.queue and not self.write_gone:
            try:
                n = os.write(self.write_fd, self.queue)
            except BlockingIOError:
                return
            except (BrokenPipeError, ConnectionResetError):
                self.write_gone = True  # PROTOCOL.md#parent-worker-death
                return
            del self.queue[:n]

    def wants_write(self):
        return bool(self.queue) and self.write_open and not self.write_gone

    def close_write(self):
        """Ends the command stream: the worker reads end-of-file and exits."""
        if not self.write_open:
            return
        self.write_open = False
        try:
            if self.sock is not None:
                self.sock.shutdown(socket.SHUT_WR)
            else:
                self.proc.stdin.close()
        except OSError:
            pass

    # ---- frames (PROTOCOL.md#parent-receiving) ---------------------------

    def read(self):
        """Reads until EAGAIN and returns what arrived, in order, as tuples:
        ("frame", conn, data), ("invalid", why), ("end", fatal, why)."""
        items = []
        while self.reading:
            try:
                chunk = os.read(self.read_fd, 1 << 16)
            except BlockingIOError:
                break
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.reading = False
                if self.inbuf:  # PROTOCOL.md#end-of-stream
                    items.append(("end", True, f"truncated_stream: the output ended inside a frame ({len(self.inbuf)} bytes)"))
                else:
                    items.append(("end", False, "the worker's output ended"))
                break
            self.inbuf += chunk
            self._frames(items)
        return items

    def _frames(self, items):
        buf, at = self.inbuf, 0
        while len(buf) - at >= HEADER.size:
            chan, length = HEADER.unpack_from(buf, at)
            if length > MAX_PAYLOAD:
                # PROTOCOL.md#maximum-payload: fatal, decided on the header.
                self.reading = False
                items.append(("end", True, f"frame_too_large: a header announces {length} bytes"))
                break
            if len(buf) - at < HEADER.size + length:
                break  # a partial frame stays for the next read
            payload = bytes(buf[at + HEADER.size : at + HEADER.size + length])
            at += HEADER.size + length
            if length == 0 or chan != CHAN_FRAME:
                continue  # a heartbeat, or not ours: skipped whole
            items.append(decode_frame(payload))
        del buf[:at]


def decode_frame(payload):
    """A BroadcastFrame (PROTOCOL.md#broadcastframe-layout), or why not."""
    if len(payload) < 8:
        return ("invalid", f"truncated: a frame payload of {len(payload)} bytes")
    conn, data_len = struct.unpack_from("<iI", payload)
    if conn < 0:
        return ("invalid", f"invalid_conn: {conn}")
    if data_len == 0:
        return ("invalid", "invalid_data: empty data")
    if 8 + data_len != len(payload):
        kind = "truncated" if 8 + data_len > len(payload) else "trailing_bytes"
        return ("invalid", f"{kind}: data_len {data_len} in a payload of {len(payload)} bytes")
    return ("frame", conn, payload[8:])


class Adapter:
    """The contract's JSON lines on stdin/stdout, around a Worker."""

    def __init__(self, worker):
        self.worker = worker
        self.conn_of = {}  # client -> conn
        self.client_of = {}  # conn -> client
        self.next_conn = 0  # PROTOCOL.md#parent-lifecycle: a counter, never reused
        self.gone = False  # worker_gone was written
        self.stdin_buf = bytearray()
        self.scanned = 0  # stdin_buf[:scanned] holds no newline
        self.stdin_eof = False
        self.sel = selectors.DefaultSelector()
        self.watched = {}

    # ---- output --------------------------------------------------------

    @staticmethod
    def emit(**event):
        sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def worker_gone(self, fatal, message):
        if self.gone:
            return
        self.gone = True
        self.emit(event="worker_gone", fatal=fatal, message=message, status=self.reap())

    def reap(self):
        """Waits for the worker (killing it if it does not exit); its exit
        code, or None for a signal."""
        try:
            code = self.worker.proc.wait(timeout=EXIT_GRACE)
        except subprocess.TimeoutExpired:
            self.worker.proc.kill()
            code = self.worker.proc.wait()
        return code if code >= 0 else None

    # ---- frames ----------------------------------------------------------

    def handle_frames(self):
        """Everything the worker wrote so far: read until EAGAIN, handled."""
        items = self.worker.read()
        for item in items:
            if item[0] == "frame":
                _, conn, data = item
                client = self.client_of.get(conn)
                if client is not None:
                    self.emit(event="deliver", client=client, data_hex=data.hex())
                else:  # PROTOCOL.md#parent-lifecycle, unknown conns
                    print(f"adapter.py: discarded a frame for conn {conn}", file=sys.stderr)
            elif item[0] == "invalid":
                print(f"adapter.py: dropped a frame: {item[1]}", file=sys.stderr)
                self.emit(event="dropped_frame", message=item[1])
            else:
                _, fatal, message = item
                if fatal:
                    self.worker.proc.kill()  # its stream cannot be trusted
                self.worker_gone(fatal, message)
        return len(items)

    def flush(self):
        self.worker.flush()
        if self.worker.write_gone:
            self.lost_worker()

    def lost_worker(self):
        """A write found the worker's input closed: read its output to the
        end (its last frames still count), then report it gone."""
        self.drain(LOST_GRACE, until_gone=True)
        self.worker_gone(False, "the worker closed its input")

    def drain(self, grace, until_gone=False):
        """Handles the worker's output until it ends (or, `until_gone`, until
        worker_gone is written). A worker silent for `grace` is killed, and
        given EXIT_GRACE more."""
        deadline, killed = time.monotonic() + grace, False
        while self.worker.reading and not (until_gone and self.gone):
            if self.handle_frames():
                deadline = time.monotonic() + (EXIT_GRACE if killed else grace)
            if not self.worker.reading or (until_gone and self.gone):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                if killed:
                    break
                print("adapter.py: the worker is silent: killing it", file=sys.stderr)
                self.worker.proc.kill()
                deadline, killed = time.monotonic() + EXIT_GRACE, True
                continue
            self.wait(left, actions=False)

    def write_all(self, timeout=None):
        """Every accepted command written (or the worker found gone), the
        worker's output read meanwhile (PROTOCOL.md#parent-flow-control)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.handle_frames()
            self.flush()
            if not self.worker.wants_write():
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            self.wait(left, actions=False)
        self.handle_frames()

    # ---- waiting -----------------------------------------------------------

    def wait(self, timeout, actions=True):
        """Waits for stdin (with `actions`), the worker's output, or room to
        write; reads stdin if it is ready."""
        want = {}
        if actions and not self.stdin_eof:
            want[0] = selectors.EVENT_READ
        if self.worker.reading:
            want[self.worker.read_fd] = want.get(self.worker.read_fd, 0) | selectors.EVENT_READ
        if self.worker.wants_write():
            want[self.worker.write_fd] = want.get(self.worker.write_fd, 0) | selectors.EVENT_WRITE
        for fd in list(self.watched):
            if fd not in want:
                self.sel.unregister(fd)
                del self.watched[fd]
        for fd, events in want.items():
            if fd not in self.watched:
                self.sel.register(fd, events)
            elif self.watched[fd] != events:
                self.sel.modify(fd, events)
            self.watched[fd] = events
        if not want:
            return  # nothing to wait for
        for key, _ in self.sel.select(timeout):
            if key.fd == 0:
                chunk = os.read(0, 1 << 16)
                self.stdin_eof = not chunk
                self.stdin_buf += chunk

    # ---- actions -----------------------------------------------------------

    def run(self):
        while True:
            self.handle_frames()
            self.flush()
            while True:
                end = self.stdin_buf.find(b"\n", self.scanned)
                if end < 0:  # a partial line: scanned once, whatever its length
                    self.scanned = len(self.stdin_buf)
                    break
                line = bytes(self.stdin_buf[:end])
                del self.stdin_buf[: end + 1]
                self.scanned = 0
                try:
                    action = json.loads(line)
                except ValueError as e:
                    print(f"adapter.py: ignoring a line that is not JSON ({e})", file=sys.stderr)
                    continue
                if self.act(action) == "shutdown":
                    return
            if self.stdin_eof:
                self.finish()
                return
            self.wait(None)

    def act(self, action):
        seq, name = action.get("seq", 0), action.get("action")
        if name == "sync":
            self.write_all()
            self.emit(event="synced", seq=seq)
            return None
        if name == "shutdown":
            self.finish()
            self.emit(event="ok", seq=seq)
            return "shutdown"
        try:
            if self.gone:
                raise Refused("the worker is gone")  # PROTOCOL.md#parent-worker-death
            effect = self.command(name, action)
        except (KeyError, TypeError, AttributeError) as e:
            self.emit(event="refused", seq=seq, message=f"bad action: {e!r}")
            return None
        except Refused as refusal:
            self.emit(event="refused", seq=seq, message=str(refusal))
            if self.worker.write_gone:
                self.lost_worker()
            return None
        if effect is not None:
            effect()
        self.emit(event="ok", seq=seq)
        return None

    def conn(self, client):
        if client not in self.conn_of:
            raise Refused(f"client {client!r} is not connected")
        return self.conn_of[client]

    def command(self, name, a):
        """Queues the action's command; returns what to do once it is
        accepted (None for nothing)."""
        send = self.worker.send
        if name == "connect":
            client = a["client"]
            if client in self.conn_of:
                raise Refused(f"client {client!r} is already connected")
            conn, self.next_conn = self.next_conn, self.next_conn + 1
            # New first (PROTOCOL.md#parent-lifecycle), whitelisted as bit 0.
            send(encode_command(NEW, WHITELISTED if a.get("whitelisted") else 0, conn))

            def opened():
                self.conn_of[client] = conn
                self.client_of[conn] = client

            return opened
        if name == "disconnect":
            client = a["client"]
            conn = self.conn(client)
            send(encode_command(CLOSE, 0, conn))

            def closed():  # from now on its frames are discarded
                del self.conn_of[client]
                del self.client_of[conn]

            return closed
        if name == "subscribe":
            req = a["req"].encode("utf-8")
            if not req:
                raise Refused("an empty REQ")
            send(encode_command(ADD, 0, self.conn(a["client"]), check_sub_id(a["sub_id"]), req))
        elif name == "unsubscribe":
            send(encode_command(REMOVE, 0, self.conn(a["client"]), check_sub_id(a["sub_id"])))
        elif name == "auth":
            key = a["pubkey"]
            if len(key) != 64 or key != key.lower():
                raise Refused(f"pubkey {key!r} is not 64 lowercase hex digits")
            try:
                raw = bytes.fromhex(key)
            except ValueError:
                raise Refused(f"pubkey {key!r} is not hex") from None
            send(encode_command(AUTH, 0, self.conn(a["client"]), data=raw))
        elif name == "fanout":
            sender = -1 if a.get("from") is None else self.conn(a["from"])
            flags = 0
            for flag in a.get("flags", []):
                if flag not in BCAST_FLAGS:
                    raise Refused(f"unknown flag {flag!r}")
                flags |= BCAST_FLAGS[flag]
            event = a["event"].encode("utf-8")  # verbatim (PROTOCOL.md#parent-bcast)
            if not event:
                raise Refused("an empty EVENT")
            if 14 + len(event) > MAX_PAYLOAD - BCAST_HEADROOM:
                raise Refused(f"an EVENT of {len(event)} bytes: too close to the maximum payload")
            send(encode_command(BCAST, flags, sender, data=event))
        else:
            raise Refused(f"unknown action {name!r}")
        return None

    def finish(self):
        """End of life: write what is queued (a worker that does not take it
        is killed), end the command stream, deliver the last frames until
        the output ends (killing a silent worker), reap the worker."""
        self.write_all(timeout=SHUTDOWN_GRACE)
        if self.worker.wants_write():
            self.worker.proc.kill()
        self.worker.close_write()
        self.drain(SHUTDOWN_GRACE)
        self.worker_gone(False, "the worker's output ended")
        self.reap()


def main():
    stdin_buf = bytearray()
    while b"\n" not in stdin_buf:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return 1
        stdin_buf += chunk
    line, _, rest = stdin_buf.partition(b"\n")
    start = json.loads(line)
    try:
        worker = Worker(list(start["worker"]), start["transport"])
    except (OSError, ValueError, KeyError) as e:
        Adapter.emit(event="refused", seq=0, message=f"cannot start the worker: {e}")
        return 1
    Adapter.emit(event="started")
    adapter = Adapter(worker)
    adapter.stdin_buf = bytearray(rest)
    adapter.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
