//! Backpressure without loss, on the blocking `Broadcaster`: a worker that
//! stops reading fills the pipe, then the bounded queue; the next command
//! is refused with `Backpressure` and not queued; when the worker reads
//! again every accepted command arrives once, in order, and no refused one
//! does.

use std::time::{Duration, Instant};

use broadcast_process::broadcaster::{Broadcaster, FlushStatus, SendError, Transport};
use broadcast_wire::BcastFlags;
use nix::sys::signal::Signal;

use crate::support::*;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials![
        a_stopped_worker_fills_the_queue_and_nothing_is_lost_when_it_resumes,
        a_worker_that_stalls_by_itself_gets_everything_once_it_reads_again,
        an_empty_queue_takes_one_command_larger_than_the_limit,
        flush_timeout_gives_up_on_a_stopped_worker_and_keeps_the_queue,
    ]
}

/// 1 MiB: more than a pipe (64 KiB) or a socket pair (a few hundred KiB)
/// holds, so a stalled worker makes the queue itself fill up.
const LIMIT: usize = 1 << 20;

/// Each command is a 200-byte frame.
const EVENT_LEN: usize = 181;

struct Stream {
    /// Tags of accepted commands, in the order they were accepted.
    accepted: Vec<String>,
    /// Tags of refused commands; each is never sent again.
    refused: Vec<String>,
}

impl Stream {
    fn new() -> Stream {
        Stream {
            accepted: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// Sends fresh commands until one is refused; returns how many went in.
    fn fill(&mut self, b: &mut Broadcaster) -> usize {
        let mut n = 0;
        loop {
            let tag = format!("cmd-{}", self.accepted.len() + self.refused.len());
            let queued_before = b.queued_bytes();
            let commands_before = b.queued_commands();
            match b.fanout(tagged_event(&tag, EVENT_LEN), -1, BcastFlags::EMPTY) {
                Ok(()) => {
                    self.accepted.push(tag);
                    n += 1;
                }
                Err(SendError::Backpressure(e)) => {
                    // Refused means not queued: nothing changed.
                    assert_eq!(b.queued_bytes(), queued_before);
                    assert_eq!(b.queued_commands(), commands_before);
                    assert_eq!((e.queued, e.needed, e.limit), (queued_before, 200, LIMIT));
                    assert!(e.queued <= LIMIT && e.queued + e.needed > LIMIT);
                    self.refused.push(tag);
                    return n;
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }

    /// Sends `more` fresh commands, flushing whenever the queue is full.
    fn send_all(&mut self, b: &mut Broadcaster, more: usize) {
        let target = self.accepted.len() + more;
        while self.accepted.len() < target {
            let tag = format!("cmd-{}", self.accepted.len() + self.refused.len());
            match b.fanout(tagged_event(&tag, EVENT_LEN), -1, BcastFlags::EMPTY) {
                Ok(()) => self.accepted.push(tag),
                Err(SendError::Backpressure(_)) => {
                    self.refused.push(tag);
                    b.flush_blocking().unwrap();
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        b.flush_blocking().unwrap();
    }

    /// Reads every echo and checks it against what was accepted.
    fn check_delivery(&self, b: &mut Broadcaster) {
        let got: Vec<String> = (0..self.accepted.len())
            .map(|_| tag_of(&echoed(&next_frame(b))))
            .collect();
        // In order, none lost, none duplicated...
        assert_eq!(got, self.accepted);
        // ...and nothing refused slipped through.
        for tag in &self.refused {
            assert!(!got.contains(tag), "refused command {tag} was delivered");
        }
        b.close_write().unwrap();
        assert!(wait_exited(b).success(), "{:?}", stderr_of(b));
    }
}

fn signal_worker(b: &Broadcaster, sig: Signal) {
    signal(b.pid().unwrap(), sig);
}

fn a_stopped_worker_fills_the_queue_and_nothing_is_lost_when_it_resumes() {
    for transport in TRANSPORTS {
        let opts = test_options().max_queued_bytes(LIMIT);
        let mut b = spawn_echo(transport, &[], &opts);
        // SIGSTOP: the worker stops reading, deterministically.
        stop(b.pid().unwrap());
        let mut stream = Stream::new();

        let first = stream.fill(&mut b);
        assert_eq!(first, LIMIT / 200, "{transport:?}");
        // The fd takes part of the queue, then is full.
        let mut status = b.flush().unwrap();
        let deadline = Instant::now() + PATIENCE;
        while status == FlushStatus::Flushed {
            // Only if the kernel buffer is larger than the whole queue.
            assert!(Instant::now() < deadline, "{transport:?}: the fd never filled up");
            stream.fill(&mut b);
            status = b.flush().unwrap();
        }
        assert_eq!(status, FlushStatus::WouldBlock, "{transport:?}");
        assert!(b.wants_write());
        // Whatever room the write made is taken again, then refused again.
        stream.fill(&mut b);
        assert_eq!(b.flush().unwrap(), FlushStatus::WouldBlock, "{transport:?}");
        assert!(stream.refused.len() >= 2);

        signal_worker(&b, Signal::SIGCONT);
        stream.send_all(&mut b, 3000);
        stream.check_delivery(&mut b);
    }
}

fn a_worker_that_stalls_by_itself_gets_everything_once_it_reads_again() {
    let opts = test_options().max_queued_bytes(LIMIT);
    // The worker sleeps 1.5 s before its first read.
    let mut b = spawn_echo(Transport::Stdio, &["--stall-ms", "1500"], &opts);
    let mut stream = Stream::new();
    stream.fill(&mut b);
    let _ = b.flush().unwrap();
    stream.fill(&mut b);
    assert!(stream.refused.len() >= 2);
    stream.send_all(&mut b, 2000);
    stream.check_delivery(&mut b);
}

fn an_empty_queue_takes_one_command_larger_than_the_limit() {
    let opts = test_options().max_queued_bytes(1024);
    let mut b = spawn_echo(Transport::Stdio, &[], &opts);
    b.fanout(tagged_event("big", 4000), -1, BcastFlags::EMPTY)
        .unwrap();
    assert_eq!(b.queued_bytes(), 4019);
    match b.fanout(tagged_event("small", 100), -1, BcastFlags::EMPTY) {
        Err(SendError::Backpressure(e)) => {
            assert_eq!((e.queued, e.needed, e.limit), (4019, 119, 1024));
        }
        other => panic!("expected Backpressure, got {other:?}"),
    }
    b.flush_blocking().unwrap();
    b.fanout(tagged_event("after", 100), -1, BcastFlags::EMPTY)
        .unwrap();
    assert_eq!(tag_of(&echoed(&next_frame(&mut b))), "big");
    assert_eq!(tag_of(&echoed(&next_frame(&mut b))), "after");
}

fn flush_timeout_gives_up_on_a_stopped_worker_and_keeps_the_queue() {
    let opts = test_options().max_queued_bytes(LIMIT);
    let mut b = spawn_echo(Transport::Stdio, &[], &opts);
    stop(b.pid().unwrap());
    let mut stream = Stream::new();
    stream.fill(&mut b);
    let before = b.queued_commands();
    let started = Instant::now();
    assert_eq!(
        b.flush_timeout(Duration::from_millis(100)).unwrap(),
        FlushStatus::WouldBlock
    );
    assert!(started.elapsed() >= Duration::from_millis(100));
    let written = (before - b.queued_commands()) as u64;
    assert_eq!(b.sent_commands(), written);
    signal_worker(&b, Signal::SIGCONT);
    stream.send_all(&mut b, 10);
    stream.check_delivery(&mut b);
}
