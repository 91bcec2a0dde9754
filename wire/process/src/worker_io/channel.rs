//! A worker's command loop I/O: read commands, queue frames, and write the
//! queued frames before blocking.

use std::io::{self, Read, Write};
use std::time::Duration;

use broadcast_wire::{
    BroadcastFrame, DataPart, FrameReader, FrameWriter, OversizeFrame, PayloadError, ReadError, ReadStatus,
    SubCommand,
};

/// A pause before retrying a descriptor that was handed over in
/// non-blocking mode and is not ready: the worker is a blocking program,
/// this only avoids a busy loop in that unusual setup.
const NOT_READY_PAUSE: Duration = Duration::from_millis(1);

/// A worker's end of the protocol over a blocking input and output.
///
/// [`read_command`](Self::read_command) first writes every queued frame,
/// then reads. So frames of the commands already buffered are coalesced
/// into one write, and the parent is never left waiting for a frame while
/// the worker waits for a command: every frame a command causes is written
/// before the worker blocks for the next one.
///
/// ```
/// use broadcast_process::worker_io::WorkerChannel;
/// use broadcast_wire::{BroadcastFrame, FrameWriter, NewFlags, ReadStatus, SubCommand};
///
/// let mut commands = FrameWriter::new(Vec::new());
/// commands.write_message(&SubCommand::New { conn: 4, flags: NewFlags::EMPTY }).unwrap();
/// let mut channel = WorkerChannel::new(&commands.get_ref()[..], Vec::new());
/// let ReadStatus::Ready(Ok(cmd)) = channel.read_command().unwrap() else { panic!() };
/// channel.queue(&BroadcastFrame { conn: cmd.conn(), data: "[]".into() }).unwrap();
/// assert_eq!(channel.pending(), 5 + 8 + 2);
/// // End of input: the read wrote the queued frame first.
/// assert!(matches!(channel.read_command().unwrap(), ReadStatus::Closed));
/// assert_eq!(channel.pending(), 0);
/// assert_eq!(channel.output().len(), 15);
/// ```
#[derive(Debug)]
pub struct WorkerChannel<R, W> {
    reader: FrameReader<FlushBeforeRead<R, W>>,
}

/// The input side: flushes the output before every read.
#[derive(Debug)]
struct FlushBeforeRead<R, W> {
    input: R,
    output: FrameWriter<W>,
}

impl<R, W: Write> FlushBeforeRead<R, W> {
    fn flush_output(&mut self) -> io::Result<()> {
        loop {
            match self.output.flush() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(NOT_READY_PAUSE),
                other => return other,
            }
        }
    }
}

impl<R: Read, W: Write> Read for FlushBeforeRead<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.flush_output()
            .map_err(|e| io::Error::new(e.kind(), format!("writing frames failed: {e}")))?;
        self.input.read(buf)
    }
}

impl<R: Read, W: Write> WorkerChannel<R, W> {
    /// A channel with the default maximum payload in both directions.
    pub fn new(input: R, output: W) -> WorkerChannel<R, W> {
        WorkerChannel::from_writer(input, FrameWriter::new(output))
    }

    /// A channel whose output goes through `writer` (to choose its maximum
    /// payload); the input uses the same maximum.
    pub fn from_writer(input: R, writer: FrameWriter<W>) -> WorkerChannel<R, W> {
        let max = writer.max_payload();
        WorkerChannel {
            reader: FrameReader::with_max_payload(
                FlushBeforeRead {
                    input,
                    output: writer,
                },
                max,
            ),
        }
    }

    /// Writes every queued frame, then reads the next command. Heartbeats
    /// and frames on other channels are skipped; a payload that does not
    /// decode is `Ready(Err(_))` (drop it and go on); a framing error or an
    /// I/O error (writing included) ends the stream.
    ///
    /// A non-blocking input that is not ready is retried after a short
    /// pause, so this returns `Ready` or `Closed`, never `Pending`.
    pub fn read_command(&mut self) -> Result<ReadStatus<Result<SubCommand, PayloadError>>, ReadError> {
        loop {
            match self.reader.read_message::<SubCommand>()? {
                ReadStatus::Pending => std::thread::sleep(NOT_READY_PAUSE),
                status => return Ok(status),
            }
        }
    }

    /// Queues one frame for the parent. An oversize frame is refused and
    /// nothing is queued.
    pub fn queue(&mut self, frame: &BroadcastFrame) -> Result<(), OversizeFrame> {
        self.reader.get_mut().output.queue_message(frame)
    }

    /// Queues one frame for the parent whose data is the concatenation of
    /// `data` (see [`FrameWriter::queue_broadcast_parts`]): long shared
    /// parts are written from their handles, not copied. An oversize frame
    /// is refused and nothing is queued.
    ///
    /// ```
    /// use broadcast_process::worker_io::WorkerChannel;
    /// use broadcast_wire::DataPart;
    ///
    /// let mut channel = WorkerChannel::new(std::io::empty(), Vec::new());
    /// let event = bytes::Bytes::from_static(b"{}");
    /// channel.queue_parts(3, &[DataPart::Copied(b"["), DataPart::Shared(&event), DataPart::Copied(b"]")]).unwrap();
    /// assert_eq!(channel.pending(), 5 + 8 + 4);
    /// ```
    pub fn queue_parts(&mut self, conn: i32, data: &[DataPart<'_>]) -> Result<(), OversizeFrame> {
        self.reader.get_mut().output.queue_broadcast_parts(conn, data)
    }

    /// The frame writer, to queue raw frames or bytes (tests, heartbeats).
    pub fn writer(&mut self) -> &mut FrameWriter<W> {
        &mut self.reader.get_mut().output
    }

    /// The output itself.
    pub fn output(&self) -> &W {
        self.reader.get_ref().output.get_ref()
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.reader.get_ref().output.pending()
    }

    /// Writes every queued frame, waiting as long as it takes (a worker
    /// blocks rather than drop a frame). Call it at the end of input, before
    /// a fatal exit (the frames of complete commands are still owed), and
    /// whenever [`pending`](Self::pending) grows too large.
    pub fn flush(&mut self) -> io::Result<()> {
        self.reader.get_mut().flush_output()
    }
}
