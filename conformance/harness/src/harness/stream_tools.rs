//! `decode` and `encode`: a captured byte stream to JSON lines and back.
//!
//! Every frame becomes one JSON object that keeps the raw payload
//! (`payload_hex`) next to the decoded view, so `encode` can give back the
//! exact bytes of heartbeats, foreign channels and undecodable payloads too:
//! decode → encode is the identity on every stream that decodes to its end,
//! and on a broken stream up to the point of the fatal error (whose line
//! carries the bytes received from the start of the broken frame).
//!
//! Line shapes (`type` tells which):
//!
//! ```text
//! {"offset":0,"chan":1,"len":14,"payload_hex":"…","type":"sub_command","value":{"op","conn","flags","sub_id","data_hex"},"data_text"?}
//! {"offset":…,"chan":2,"len":…,"payload_hex":"…","type":"broadcast_frame","value":{"conn","data_hex"},"data_text"?}
//! {"offset":…,"chan":1,"len":0,"payload_hex":"","type":"heartbeat"}
//! {"offset":…,"chan":9,"len":3,"payload_hex":"…","type":"other_channel"}
//! {"offset":…,"chan":1,"len":3,"payload_hex":"…","type":"invalid","error":"truncated","detail":"…"}
//! {"offset":…,"type":"fatal","error":"truncated_stream"|"frame_too_large","detail":"…","rest_hex":"…"}
//! ```

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use broadcast_wire::{
    BroadcastFrame, CHANNEL_BROADCAST, CHANNEL_SUB_COMMAND, Frame, FrameDecoder, Message, SubCommand,
};
use serde_json::{Value, json};

use super::codec_json::{
    broadcast_frame_from_json, broadcast_frame_to_json, sub_command_from_json, sub_command_to_json,
};

/// How a decoded stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeEnd {
    /// On a frame boundary.
    Clean,
    /// With a fatal framing error (printed as the last line).
    Fatal,
}

/// The JSON object of one frame at byte `offset` of the stream.
pub fn frame_to_json(offset: u64, frame: &Frame) -> Value {
    let mut v = json!({
        "offset": offset,
        "chan": frame.chan,
        "len": frame.payload.len(),
        "payload_hex": hex::encode(&frame.payload),
    });
    let text = |data: &[u8]| std::str::from_utf8(data).ok().map(str::to_string);
    let (kind, decoded) = if frame.is_heartbeat() {
        ("heartbeat", None)
    } else if frame.chan == CHANNEL_SUB_COMMAND {
        match SubCommand::decode(frame.payload.clone()) {
            Ok(cmd) => {
                let data_text = if cmd.data().is_empty() || matches!(cmd, SubCommand::Auth { .. }) {
                    None
                } else {
                    text(cmd.data())
                };
                ("sub_command", Some((sub_command_to_json(&cmd), data_text)))
            }
            Err(e) => {
                v["error"] = json!(e.class());
                v["detail"] = json!(e.to_string());
                ("invalid", None)
            }
        }
    } else if frame.chan == CHANNEL_BROADCAST {
        match BroadcastFrame::decode(frame.payload.clone()) {
            Ok(f) => (
                "broadcast_frame",
                Some((broadcast_frame_to_json(&f), text(&f.data))),
            ),
            Err(e) => {
                v["error"] = json!(e.class());
                v["detail"] = json!(e.to_string());
                ("invalid", None)
            }
        }
    } else {
        ("other_channel", None)
    };
    v["type"] = json!(kind);
    if let Some((value, data_text)) = decoded {
        v["value"] = value;
        if let Some(t) = data_text {
            v["data_text"] = json!(t);
        }
    }
    v
}

/// Reads `input` to its end (or to a fatal framing error) and writes one JSON
/// line per frame to `out`.
pub fn decode(mut input: impl Read, mut out: impl Write, max_payload: u32) -> io::Result<DecodeEnd> {
    let mut decoder = FrameDecoder::with_max_payload(max_payload);
    // A copy of the bytes since the last frame boundary, for `rest_hex`.
    let mut pending: Vec<u8> = Vec::new();
    let mut offset: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n > 0 {
            decoder.feed(&buf[..n]);
            pending.extend_from_slice(&buf[..n]);
        }
        let mut consumed = 0usize;
        let result = loop {
            match decoder.decode() {
                Ok(Some(frame)) => {
                    writeln!(out, "{}", frame_to_json(offset, &frame))?;
                    let len = frame.encoded_len();
                    offset += len as u64;
                    consumed += len;
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        pending.drain(..consumed);
        let fatal = match result {
            Err(e) => Some(e),
            Ok(()) if n == 0 => decoder.finish().err(),
            Ok(()) => None,
        };
        if let Some(e) = fatal {
            let line = json!({
                "offset": offset,
                "type": "fatal",
                "error": e.class(),
                "detail": e.to_string(),
                "rest_hex": hex::encode(&pending),
            });
            writeln!(out, "{line}")?;
            out.flush()?;
            return Ok(DecodeEnd::Fatal);
        }
        if n == 0 {
            out.flush()?;
            return Ok(DecodeEnd::Clean);
        }
    }
}

/// A line `encode` cannot turn into bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: String,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for EncodeError {}

/// Either side of a failed `encode`.
#[derive(Debug)]
pub enum EncodeFailure {
    /// Reading or writing failed.
    Io(io::Error),
    /// A line is not a frame.
    Line(EncodeError),
}

impl From<io::Error> for EncodeFailure {
    fn from(e: io::Error) -> Self {
        EncodeFailure::Io(e)
    }
}

/// The bytes of one JSON line (see the module docs). `payload_hex` is
/// authoritative when present; otherwise `value` is encoded by the library,
/// so hand-written lines need only `type` (or `chan`) and `value`.
pub fn line_to_bytes(v: &Value) -> Result<Vec<u8>, String> {
    let obj = v.as_object().ok_or("a line must be a JSON object")?;
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
    let hex_of = |name: &str| -> Result<Option<Vec<u8>>, String> {
        match obj.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => hex::decode(s)
                .map(Some)
                .map_err(|e| format!("`{name}` is not hex: {e}")),
            Some(_) => Err(format!("`{name}` must be a string")),
        }
    };
    if kind == "fatal" {
        return Ok(hex_of("rest_hex")?.unwrap_or_default());
    }
    let chan = match obj.get("chan") {
        Some(c) => Some(
            c.as_u64()
                .and_then(|c| u8::try_from(c).ok())
                .ok_or("`chan` must be an integer 0-255")?,
        ),
        None => None,
    };
    let mut bytes = Vec::new();
    if let Some(payload) = hex_of("payload_hex")? {
        let chan = chan.ok_or("`payload_hex` needs `chan`")?;
        if let Some(len) = obj.get("len")
            && len.as_u64() != Some(payload.len() as u64)
        {
            return Err(format!(
                "`len` {len} does not match `payload_hex` ({} bytes)",
                payload.len()
            ));
        }
        Frame::new(chan, payload.into()).encode(&mut bytes);
        return Ok(bytes);
    }
    match kind {
        "heartbeat" => Frame::heartbeat(chan.ok_or("a heartbeat needs `chan`")?).encode(&mut bytes),
        "sub_command" | "broadcast_frame" | "" => {
            let value = obj.get("value").ok_or("a line needs `payload_hex` or `value`")?;
            let chan = chan.unwrap_or(if kind == "broadcast_frame" {
                CHANNEL_BROADCAST
            } else {
                CHANNEL_SUB_COMMAND
            });
            match chan {
                CHANNEL_SUB_COMMAND => sub_command_from_json(value)?.encode_framed(&mut bytes),
                CHANNEL_BROADCAST => broadcast_frame_from_json(value)?.encode_framed(&mut bytes),
                other => {
                    return Err(format!(
                        "`value` needs chan 1 or 2, not {other}; use `payload_hex`"
                    ));
                }
            }
        }
        other => return Err(format!("a line of type {other:?} needs `payload_hex`")),
    }
    Ok(bytes)
}

/// Reads JSON lines from `input` and writes the bytes they describe.
pub fn encode(input: impl BufRead, mut out: impl Write) -> Result<(), EncodeFailure> {
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let fail = |reason: String| EncodeFailure::Line(EncodeError { line: i + 1, reason });
        let v: Value = serde_json::from_str(&line).map_err(|e| fail(format!("not JSON: {e}")))?;
        let bytes = line_to_bytes(&v).map_err(fail)?;
        out.write_all(&bytes)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(stream: &[u8]) -> (Vec<u8>, DecodeEnd, String) {
        let mut lines = Vec::new();
        let end = decode(stream, &mut lines, 16 << 20).unwrap();
        let mut bytes = Vec::new();
        encode(&lines[..], &mut bytes).unwrap();
        (bytes, end, String::from_utf8(lines).unwrap())
    }

    #[test]
    fn identity_on_mixed_stream() {
        let mut s = Vec::new();
        SubCommand::New {
            conn: 1,
            flags: broadcast_wire::NewFlags::from_bits(0x81),
        }
        .encode_framed(&mut s);
        Frame::heartbeat(1).encode(&mut s);
        Frame::new(7, bytes::Bytes::from_static(b"\xff\x00")).encode(&mut s);
        Frame::new(1, bytes::Bytes::from_static(b"\x09")).encode(&mut s); // invalid payload
        BroadcastFrame {
            conn: 4,
            data: "[\"EVENT\"]".into(),
        }
        .encode_framed(&mut s);
        let (bytes, end, lines) = round_trip(&s);
        assert_eq!(end, DecodeEnd::Clean);
        assert_eq!(bytes, s);
        let types: Vec<String> = lines
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            types,
            [
                "sub_command",
                "heartbeat",
                "other_channel",
                "invalid",
                "broadcast_frame"
            ]
        );
        assert!(lines.contains("\"error\":\"truncated\""));
        assert!(lines.contains("\"data_text\":\"[\\\"EVENT\\\"]\""));
    }

    #[test]
    fn fatal_errors_keep_the_rest() {
        let s = [1u8, 0, 0, 0, 0, 2, 9, 0];
        let (bytes, end, lines) = round_trip(&s);
        assert_eq!(end, DecodeEnd::Fatal);
        assert_eq!(bytes, s);
        assert!(
            lines
                .lines()
                .last()
                .unwrap()
                .contains("\"error\":\"truncated_stream\"")
        );
        let mut out = Vec::new();
        assert_eq!(
            decode(&[1u8, 9, 0, 0, 0][..], &mut out, 8).unwrap(),
            DecodeEnd::Fatal
        );
        assert!(String::from_utf8(out).unwrap().contains("frame_too_large"));
    }

    #[test]
    fn hand_written_lines() {
        let lines = r#"{"value":{"op":"close","conn":5}}
{"type":"broadcast_frame","value":{"conn":1,"data_hex":"78"}}
{"type":"heartbeat","chan":2}
"#;
        let mut out = Vec::new();
        encode(lines.as_bytes(), &mut out).unwrap();
        let mut expected = Vec::new();
        SubCommand::Close {
            conn: 5,
            flags: broadcast_wire::ReservedFlags::EMPTY,
        }
        .encode_framed(&mut expected);
        BroadcastFrame {
            conn: 1,
            data: "x".into(),
        }
        .encode_framed(&mut expected);
        Frame::heartbeat(2).encode(&mut expected);
        assert_eq!(out, expected);
        let Err(EncodeFailure::Line(e)) = encode(&b"\n{\"chan\":1,\"payload_hex\":\"zz\"}"[..], Vec::new())
        else {
            panic!()
        };
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("not hex"));
    }
}
