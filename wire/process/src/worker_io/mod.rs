//! The worker side of the process layer (unix): how a
//! worker binary reaches its parent, and a command loop that never leaves
//! owed frames unwritten while it waits.
//!
//! - [`WorkerTransport`]: stdio, or the inherited socketpair end named by
//!   `--fd N` (PROTOCOL.md#transports),
//!   opened into an [`Input`] and an [`Output`] with one fd-safety policy
//!   ([`WorkerTransport::open`]).
//! - [`WorkerChannel`]: reads commands and queues frames; before every read
//!   that may block it writes every queued frame, so the parent always has
//!   the frames of every command the worker has finished.
//!
//! ```no_run
//! use broadcast_process::worker_io::{WorkerChannel, WorkerTransport};
//! use broadcast_wire::{BroadcastFrame, ReadStatus};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Needed only for `--fd N`: claim the inherited descriptors before
//!     // anything else in the program opens one.
//!     // SAFETY: first statement of main; no descriptor was taken yet.
//!     unsafe { broadcast_process::worker_io::init_inherited_fds()? };
//!     let (input, output) = WorkerTransport::from_args(std::env::args().skip(1))?.open()?;
//!     let mut channel = WorkerChannel::new(input, output);
//!     while let ReadStatus::Ready(cmd) = channel.read_command()? {
//!         let Ok(cmd) = cmd else { continue }; // non-fatal: drop one command
//!         let echo = BroadcastFrame { conn: cmd.conn().max(0), data: "[]".into() };
//!         channel.queue(&echo)?;
//!     }
//!     channel.flush()?; // clean end of input: every owed frame is written
//!     Ok(())
//! }
//! ```

mod channel;
mod transport;

pub use channel::WorkerChannel;
/// Claims every descriptor this process inherited (other than stdio) so that
/// [`WorkerTransport::open`] can later take the one named by `--fd N`
/// safely; from [`command_fds::inherited`]. Linux only (it reads
/// `/proc/self/fd`).
///
/// # Safety
///
/// Call it first thing in `main`, before any code takes ownership of a
/// descriptor. A worker that only ever uses stdio need not call it.
pub use command_fds::inherited::init_inherited_fds;
pub use transport::{Input, Output, TransportError, WorkerTransport};
