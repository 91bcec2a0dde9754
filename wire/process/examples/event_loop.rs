//! A relay-style event loop around a `Broadcaster`: spawn a worker, open two
//! connections with a subscription each, fan out three events, and print
//! every frame the worker sends back, driving both fds with `poll(2)`.
//!
//! ```text
//! cargo run -p broadcast-process --example event_loop
//! cargo run -p broadcast-process --example event_loop -- target/debug/broadcast-worker
//! ```
//!
//! With no argument the example runs a copy of itself as a toy worker that
//! delivers every event to every subscription (it has no filters); given a
//! worker command (and its arguments), it drives that worker over stdio
//! instead, e.g. the reference `broadcast-worker`, which applies the
//! filters: then the kind-7 event reaches only the `everything`
//! subscription. Either way the loop ends by itself: once everything is
//! sent it closes the command stream, and stops when the worker exits.

#[cfg(unix)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os(unix::TOY_WORKER_ENV).is_some() {
        return unix::toy_worker();
    }
    unix::event_loop()
}

#[cfg(not(unix))]
fn main() {
    eprintln!("the broadcaster module is unix only");
}

#[cfg(unix)]
mod unix {
    use std::collections::BTreeMap;
    use std::error::Error;
    use std::io::{self, Write};
    use std::process::Command;
    use std::time::{Duration, Instant};

    use broadcast_process::broadcaster::{Broadcaster, Incoming, Transport};
    use broadcast_wire::{BcastFlags, BroadcastFrame, FrameReader, FrameWriter, ReadStatus, SubCommand};
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    /// Set in the environment of the copy of this program that plays the
    /// worker.
    pub const TOY_WORKER_ENV: &str = "BROADCAST_EVENT_LOOP_TOY_WORKER";

    /// The loop gives up (with an error) if the worker has not finished by
    /// then, so the example always terminates.
    const DEADLINE: Duration = Duration::from_secs(10);

    const PUBKEY: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    /// A well-formed `["EVENT", {...}]` message (the worker checks shapes,
    /// not signatures: the relay already has).
    fn event(n: u8, kind: u16, content: &str) -> String {
        let id = format!("{:064x}", n);
        let sig = "5".repeat(128);
        format!(
            r#"["EVENT",{{"id":"{id}","pubkey":"{PUBKEY}","created_at":1700000000,"kind":{kind},"tags":[],"sig":"{sig}","content":"{content}"}}]"#
        )
    }

    /// The two ends of a message: the subscription, and the event's content
    /// (which `event` puts last).
    fn preview(data: &[u8]) -> String {
        let text = String::from_utf8_lossy(data);
        let chars: Vec<char> = text.chars().collect();
        if chars.len() <= 80 {
            return text.into_owned();
        }
        let head: String = chars[..28].iter().collect();
        let tail: String = chars[chars.len() - 28..].iter().collect();
        format!("{head} ... {tail} ({} bytes)", data.len())
    }

    fn worker_command() -> io::Result<Command> {
        let mut args = std::env::args_os().skip(1);
        Ok(match args.next() {
            Some(program) => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            None => {
                let mut cmd = Command::new(std::env::current_exe()?);
                cmd.env(TOY_WORKER_ENV, "1");
                cmd
            }
        })
    }

    pub fn event_loop() -> Result<(), Box<dyn Error>> {
        let mut b = Broadcaster::spawn(worker_command()?, Transport::Stdio)?;

        // What a relay does as clients come and go.
        b.on_connect(10, true)?;
        b.on_connect(11, false)?;
        b.on_subscribe(10, "notes", r#"["REQ","notes",{"kinds":[1]}]"#)?;
        b.on_subscribe(11, "everything", r#"["REQ","everything",{}]"#)?;
        b.fanout(event(1, 1, "hello"), 10, BcastFlags::EMPTY)?;
        b.fanout(event(2, 7, "+"), 11, BcastFlags::EMPTY)?;
        b.fanout(event(3, 1, "bye"), -1, BcastFlags::EMPTY)?;

        let deadline = Instant::now() + DEADLINE;
        let mut input_closed = false;
        loop {
            // Everything is written: end the command stream, so the worker
            // finishes and exits.
            if !b.wants_write() && !input_closed {
                b.close_write()?;
                input_closed = true;
            }

            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("the worker did not finish in time".into());
            }
            let (readable, writable) = {
                let mut fds = vec![PollFd::new(b.read_fd(), PollFlags::POLLIN)];
                let write_fd = if b.wants_write() { b.write_fd() } else { None };
                if let Some(w) = write_fd {
                    fds.push(PollFd::new(w, PollFlags::POLLOUT));
                }
                poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX))?;
                let ready = |i: usize| {
                    fds.get(i)
                        .and_then(PollFd::revents)
                        .is_some_and(|r| !r.is_empty())
                };
                (ready(0), ready(1))
            };

            if writable {
                // WouldBlock just means "later": the loop polls again.
                b.flush()?;
            }
            if readable {
                // Drain everything that is complete.
                loop {
                    match b.read_frame()? {
                        Incoming::Frame(f) => println!("to conn {}: {}", f.conn, preview(&f.data)),
                        Incoming::InvalidFrame(e) => eprintln!("the worker sent a bad frame: {e}"),
                        Incoming::Pending => break,
                        // A supervised handle (spawn_supervised) replaced its worker.
                        Incoming::WorkerRestarted(r) => eprintln!("{r}"),
                        Incoming::WorkerExited(status) => {
                            let status = status.or_else(|| b.wait_exit(Duration::from_secs(2)));
                            match status {
                                Some(status) => println!("worker exited: {status}"),
                                None => println!("worker closed its output"),
                            }
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// The toy worker: remembers subscriptions per connection and delivers
    /// every event to all of them, in the format of PROTOCOL.md#output-frame.
    pub fn toy_worker() -> Result<(), Box<dyn Error>> {
        let mut input = FrameReader::new(io::stdin().lock());
        let mut output = FrameWriter::new(io::stdout().lock());
        let mut subs: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        loop {
            let cmd = match input.read_message::<SubCommand>()? {
                ReadStatus::Ready(Ok(cmd)) => cmd,
                ReadStatus::Ready(Err(e)) => {
                    eprintln!("toy worker: dropped a bad command: {e}");
                    continue;
                }
                ReadStatus::Pending => continue,
                ReadStatus::Closed => return Ok(()),
            };
            match cmd {
                SubCommand::New { conn, .. } => {
                    subs.insert(conn, Vec::new());
                }
                SubCommand::Close { conn, .. } => {
                    subs.remove(&conn);
                }
                SubCommand::Add { conn, sub_id, .. } => {
                    if let Some(list) = subs.get_mut(&conn) {
                        list.retain(|s| s != sub_id.as_str());
                        list.push(sub_id.as_str().to_owned());
                    }
                }
                SubCommand::Remove { conn, sub_id, .. } => {
                    if let Some(list) = subs.get_mut(&conn) {
                        list.retain(|s| s != sub_id.as_str());
                    }
                }
                SubCommand::Auth { .. } => {}
                SubCommand::Bcast { event, .. } => {
                    // The event object is the message minus `["EVENT",` and `]`.
                    let object = event
                        .strip_prefix(b"[\"EVENT\",")
                        .and_then(|rest| rest.strip_suffix(b"]"))
                        .unwrap_or(&event);
                    for (&conn, list) in &subs {
                        for sub_id in list {
                            // The example's sub_ids need no JSON escaping.
                            let mut data = format!("[\"EVENT\",\"{sub_id}\",").into_bytes();
                            data.extend_from_slice(object);
                            data.push(b']');
                            output.queue_message(&BroadcastFrame {
                                conn,
                                data: data.into(),
                            })?;
                        }
                    }
                }
            }
            // Every frame of a command goes out before the next is read.
            output.flush()?;
            output.get_mut().flush()?;
        }
    }
}
