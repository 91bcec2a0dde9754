//! Scripted I/O for the codec and framing tests: readers and writers that
//! split, block and interrupt I/O on demand, and a small deterministic PRNG
//! for reproducible random splits. The byte layouts the tests expect are
//! packed by [`super::spec_oracle`].

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

/// A writer that follows `steps`, one per `write` or `write_vectored` call
/// (a step's limit spans the slices, like `writev`); once the script is
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

impl ScriptedWriter {
    /// The next step's byte limit, or the error it scripts.
    fn next_limit(&mut self) -> io::Result<usize> {
        let step = self.steps.get(self.next).copied();
        self.next += 1;
        match step {
            Some(WriteStep::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Some(WriteStep::Interrupted) => Err(io::ErrorKind::Interrupted.into()),
            Some(WriteStep::Accept(n)) => Ok(n.max(1)),
            None => Ok(usize::MAX),
        }
    }
}

impl Write for ScriptedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }

    /// Like `writev`: one scripted step per call, its limit spread over the
    /// slices in order, so a step can end inside any slice.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut left = self.next_limit()?;
        let mut n = 0;
        for buf in bufs {
            let take = left.min(buf.len());
            self.out.extend_from_slice(&buf[..take]);
            left -= take;
            n += take;
            if left == 0 {
                break;
            }
        }
        if n > 0 {
            self.accepted_writes += 1;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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
