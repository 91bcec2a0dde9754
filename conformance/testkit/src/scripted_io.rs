//! Test helpers shared by `vectors.rs`, `properties.rs` and
//! `hostile_lengths.rs`: scripted readers and writers that split, block and
//! interrupt I/O on demand, and a tiny independent packer for the byte
//! layouts (written from PROTOCOL.md#frame-layout, PROTOCOL.md#subcommand-layout and
//! PROTOCOL.md#broadcastframe-layout, not from the crate's encoder),
//! so expected bytes never come from the code under test.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{self, Read, Write};

/// One step of a [`ScriptedReader`]'s behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStep {
    /// Deliver at most this many bytes (at least 1 is asked for).
    Bytes(usize),
    /// Fail with `WouldBlock` (the fd has nothing right now).
    WouldBlock,
    /// Fail with `Interrupted` (a signal arrived).
    Interrupted,
}

/// A reader over `data` that follows `steps`, one per `read` call; once the
/// script is used up it delivers everything that is left, then EOF forever.
#[derive(Debug)]
pub struct ScriptedReader {
    data: Vec<u8>,
    pos: usize,
    steps: Vec<ReadStep>,
    next: usize,
    /// How many times `read` was called.
    pub calls: usize,
}

impl ScriptedReader {
    pub fn new(data: Vec<u8>, steps: Vec<ReadStep>) -> Self {
        ScriptedReader {
            data,
            pos: 0,
            steps,
            next: 0,
            calls: 0,
        }
    }

    /// Reads of exactly the given chunk sizes with a `WouldBlock` between
    /// two chunks (the OS splitting the stream); empty chunks become a lone
    /// `WouldBlock` (a wake-up with nothing to read).
    pub fn chunked(data: &[u8], sizes: &[usize]) -> Self {
        let mut steps = Vec::new();
        for &n in sizes {
            steps.push(if n == 0 {
                ReadStep::WouldBlock
            } else {
                ReadStep::Bytes(n)
            });
            steps.push(ReadStep::WouldBlock);
        }
        ScriptedReader::new(data.to_vec(), steps)
    }

    /// Bytes not yet handed out.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
}

impl Read for ScriptedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        let step = self.steps.get(self.next).copied();
        self.next += 1;
        let limit = match step {
            Some(ReadStep::WouldBlock) => return Err(io::ErrorKind::WouldBlock.into()),
            Some(ReadStep::Interrupted) => return Err(io::ErrorKind::Interrupted.into()),
            Some(ReadStep::Bytes(n)) => n.max(1),
            None => usize::MAX,
        };
        let n = limit.min(buf.len()).min(self.remaining());
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// One step of a [`ScriptedWriter`]'s behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    /// Accept at most this many bytes (at least 1).
    Accept(usize),
    /// Fail with `WouldBlock` (the fd is full).
    WouldBlock,
    /// Fail with `Interrupted`.
    Interrupted,
}

/// A writer that follows `steps`, one per `write` call; once the script is
/// used up it accepts everything.
#[derive(Debug, Default)]
pub struct ScriptedWriter {
    /// Everything accepted so far, in order.
    pub out: Vec<u8>,
    steps: Vec<WriteStep>,
    next: usize,
    /// `write` calls that accepted bytes.
    pub accepted_writes: usize,
}

impl ScriptedWriter {
    pub fn new(steps: Vec<WriteStep>) -> Self {
        ScriptedWriter {
            steps,
            ..ScriptedWriter::default()
        }
    }
}

impl Write for ScriptedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let step = self.steps.get(self.next).copied();
        self.next += 1;
        let limit = match step {
            Some(WriteStep::WouldBlock) => return Err(io::ErrorKind::WouldBlock.into()),
            Some(WriteStep::Interrupted) => return Err(io::ErrorKind::Interrupted.into()),
            Some(WriteStep::Accept(n)) => n.max(1),
            None => usize::MAX,
        };
        let n = limit.min(buf.len());
        self.out.extend_from_slice(&buf[..n]);
        if n > 0 {
            self.accepted_writes += 1;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A frame, packed by hand: `chan u8 | len u32 LE | payload` (PROTOCOL.md#frame-layout).
pub fn pack_frame(chan: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(chan);
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// A SubCommand payload, packed by hand (PROTOCOL.md#subcommand-layout):
/// `op u8 | flags u8 | conn i32 LE | sub_id_len u32 LE | sub_id | data_len u32 LE | data`.
pub fn pack_sub_command(op: u8, flags: u8, conn: i32, sub_id: &[u8], data: &[u8]) -> Vec<u8> {
    let mut v = vec![op, flags];
    v.extend_from_slice(&conn.to_le_bytes());
    v.extend_from_slice(&(sub_id.len() as u32).to_le_bytes());
    v.extend_from_slice(sub_id);
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// A BroadcastFrame payload, packed by hand (PROTOCOL.md#broadcastframe-layout): `conn i32 LE | data_len u32 LE | data`.
pub fn pack_broadcast_frame(conn: i32, data: &[u8]) -> Vec<u8> {
    let mut v = conn.to_le_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// A tiny deterministic PRNG (xorshift64*) for reproducible random splits.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
