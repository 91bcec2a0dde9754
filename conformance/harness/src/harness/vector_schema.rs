//! The schema of the codec and framing vector files (docs/VECTORS.md,
//! `broadcast-wire/codec/v1` and `broadcast-wire/framing/v1`): the one
//! reader of those files, and the one mapping from a vector's `value` to
//! the [`SubCommand`] or [`BroadcastFrame`] it describes.
//!
//! The harness's `vectors` subcommand, its `encode` tool and
//! broadcast-testkit's `wire_vectors` tests all read vectors through this
//! module, so they cannot disagree on what a vector says. The mapping is
//! written from the spec's op table and never asks the codec under test
//! (no `Op::from_name`, no decoding), so a value built here is a fair
//! expectation for the codec.

use broadcast_wire::{BcastFlags, BroadcastFrame, NewFlags, PUBKEY_LEN, ReservedFlags, SubCommand, SubId};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The `schema` of every codec vector file.
pub const CODEC_SCHEMA: &str = "broadcast-wire/codec/v1";

/// The `schema` of every framing vector file.
pub const FRAMING_SCHEMA: &str = "broadcast-wire/framing/v1";

/// The ways a framing stream may end, as a framing vector's `end` spells
/// them.
pub const STREAM_ENDS: [&str; 3] = ["clean", "truncated_stream", "frame_too_large"];

/// Which payload a codec vector file is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum VectorMessage {
    /// Channel-1 payloads (`vectors/codec/subcommand.json`).
    SubCommand,
    /// Channel-2 payloads (`vectors/codec/broadcast_frame.json`).
    BroadcastFrame,
}

/// A codec vector file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodecFile {
    /// Always [`CODEC_SCHEMA`].
    pub schema: String,
    /// The payload every vector of the file is.
    pub message: VectorMessage,
    /// The vectors, in file order.
    pub vectors: Vec<CodecVector>,
}

/// One codec vector: a payload and its one exact outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodecVector {
    /// Stable id, `section/…`.
    pub id: String,
    /// What the case exercises and why, for humans; every vector has one.
    pub comment: String,
    /// The payload bytes, lowercase hex.
    pub hex: String,
    /// `valid` or `invalid`.
    pub result: String,
    /// For a valid vector: the decoded value, a [`SubCommandValue`] or a
    /// [`BroadcastFrameValue`] by the file's `message`.
    pub value: Option<Value>,
    /// For an invalid vector: the error class.
    pub error: Option<String>,
}

/// The `value` of a valid SubCommand vector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubCommandValue {
    /// The op's name: `new`, `close`, `add`, `remove`, `auth`, `bcast`.
    pub op: String,
    /// `conn` (the sender for Bcast).
    pub conn: i32,
    /// The raw flags byte, reserved bits included.
    pub flags: u8,
    /// The sub_id, empty for ops without one.
    pub sub_id: String,
    /// The data field, lowercase hex.
    pub data_hex: String,
}

/// The `value` of a valid BroadcastFrame vector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastFrameValue {
    /// The destination connection.
    pub conn: i32,
    /// The data field, lowercase hex.
    pub data_hex: String,
}

/// A framing vector file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramingFile {
    /// Always [`FRAMING_SCHEMA`].
    pub schema: String,
    /// The vectors, in file order.
    pub vectors: Vec<StreamVector>,
}

/// One framing vector: a byte stream, the frames it carries and its end.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamVector {
    /// Stable id, `section/…`.
    pub id: String,
    /// What the case exercises and why, for humans; every vector has one.
    pub comment: String,
    /// The whole stream, lowercase hex.
    pub stream_hex: String,
    /// The reader's maximum payload; absent means the default (16 MiB).
    pub max_payload: Option<u32>,
    /// Every frame a reader delivers, heartbeats and foreign channels included.
    pub frames: Vec<ExpectedFrame>,
    /// How the stream ends, one of [`STREAM_ENDS`].
    pub end: String,
}

/// One frame a framing vector expects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFrame {
    /// The channel byte.
    pub chan: u8,
    /// The payload, lowercase hex.
    pub payload_hex: String,
}

/// Parses a vector file of type `T` and checks its `schema` against
/// `expected`; `what` names the kind of file in the error.
fn parse_file<T: DeserializeOwned>(
    text: &str,
    what: &str,
    expected: &str,
    schema_of: impl Fn(&T) -> &str,
) -> Result<T, String> {
    let file: T = serde_json::from_str(text).map_err(|e| format!("not a {what} vector file: {e}"))?;
    match schema_of(&file) {
        schema if schema == expected => Ok(file),
        other => Err(format!("unknown schema {other:?}")),
    }
}

impl CodecFile {
    /// Reads a codec vector file: the JSON, the schema, and that every
    /// vector has a `value` exactly when valid and an `error` exactly when
    /// invalid.
    pub fn parse(text: &str) -> Result<CodecFile, String> {
        let file = parse_file(text, "codec", CODEC_SCHEMA, |f: &CodecFile| &f.schema)?;
        let consistent = |v: &CodecVector| {
            matches!(
                (v.result.as_str(), &v.value, &v.error),
                ("valid", Some(_), None) | ("invalid", None, Some(_))
            )
        };
        match file.vectors.iter().find(|v| !consistent(v)) {
            None => Ok(file),
            Some(v) => Err(format!(
                "{}: a vector has `value` when valid, `error` when invalid",
                v.id
            )),
        }
    }
}

impl FramingFile {
    /// Reads a framing vector file: the JSON, the schema, and that every
    /// `end` is one of [`STREAM_ENDS`].
    pub fn parse(text: &str) -> Result<FramingFile, String> {
        let file = parse_file(text, "framing", FRAMING_SCHEMA, |f: &FramingFile| &f.schema)?;
        match file
            .vectors
            .iter()
            .find(|v| !STREAM_ENDS.contains(&v.end.as_str()))
        {
            None => Ok(file),
            Some(v) => Err(format!("{}: unknown end {:?}", v.id, v.end)),
        }
    }
}

fn decode_hex_field(name: &str, text: &str) -> Result<Vec<u8>, String> {
    hex::decode(text).map_err(|e| format!("`{name}` is not hex: {e}"))
}

impl SubCommandValue {
    /// The SubCommand this value describes: `data_hex` decoded, then
    /// [`sub_command_from_fields`].
    pub fn to_sub_command(&self) -> Result<SubCommand, String> {
        let data = decode_hex_field("data_hex", &self.data_hex)?;
        sub_command_from_fields(&self.op, self.conn, self.flags, &self.sub_id, data)
    }
}

/// The SubCommand an op name and its fields describe, built by the op
/// table of PROTOCOL.md#operations (`conn` is the sender for Bcast; `sub_id` is empty
/// for ops without one). Fails, saying why, when the fields describe no
/// valid command: an unknown op name, a sub_id or data on an op without
/// one, a pubkey that is not 32 bytes, or a field the codec's rules refuse
/// (those payloads have an `error`, not a `value`).
pub fn sub_command_from_fields(
    op: &str,
    conn: i32,
    flags: u8,
    sub_id: &str,
    data: Vec<u8>,
) -> Result<SubCommand, String> {
    let need_sub_id = || SubId::try_from(sub_id).map_err(|p| format!("`sub_id`: {p:?}"));
    let no_sub_id = || {
        if sub_id.is_empty() {
            Ok(())
        } else {
            Err(format!("op {op:?} has no sub_id"))
        }
    };
    let no_data = || {
        if data.is_empty() {
            Ok(())
        } else {
            Err(format!("op {op:?} has no data"))
        }
    };
    let cmd = match op {
        "new" => {
            no_sub_id()?;
            no_data()?;
            SubCommand::New {
                conn,
                flags: NewFlags::from_bits(flags),
            }
        }
        "close" => {
            no_sub_id()?;
            no_data()?;
            SubCommand::Close {
                conn,
                flags: ReservedFlags::from_bits(flags),
            }
        }
        "add" => SubCommand::Add {
            conn,
            flags: ReservedFlags::from_bits(flags),
            sub_id: need_sub_id()?,
            req: data.into(),
        },
        "remove" => {
            no_data()?;
            SubCommand::Remove {
                conn,
                flags: ReservedFlags::from_bits(flags),
                sub_id: need_sub_id()?,
            }
        }
        "auth" => {
            no_sub_id()?;
            let pubkey: [u8; PUBKEY_LEN] = data
                .as_slice()
                .try_into()
                .map_err(|_| format!("auth data must be {PUBKEY_LEN} bytes, not {}", data.len()))?;
            SubCommand::Auth {
                conn,
                flags: ReservedFlags::from_bits(flags),
                pubkey,
            }
        }
        "bcast" => {
            no_sub_id()?;
            SubCommand::Bcast {
                sender: conn,
                flags: BcastFlags::from_bits(flags),
                event: data.into(),
            }
        }
        other => return Err(format!("unknown op {other:?}")),
    };
    cmd.validate().map_err(|e| format!("{}: {e}", e.class()))?;
    Ok(cmd)
}

impl BroadcastFrameValue {
    /// The BroadcastFrame this value describes; fails when the codec's
    /// rules refuse it.
    pub fn to_broadcast_frame(&self) -> Result<BroadcastFrame, String> {
        let frame = BroadcastFrame {
            conn: self.conn,
            data: decode_hex_field("data_hex", &self.data_hex)?.into(),
        };
        frame.validate().map_err(|e| format!("{}: {e}", e.class()))?;
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(op: &str, conn: i32, sub_id: &str, data_hex: &str) -> SubCommandValue {
        SubCommandValue {
            op: op.into(),
            conn,
            flags: 0,
            sub_id: sub_id.into(),
            data_hex: data_hex.into(),
        }
    }

    #[test]
    fn maps_each_op_to_its_variant() {
        assert_eq!(
            value("remove", 3, "é", "").to_sub_command(),
            Ok(SubCommand::Remove {
                conn: 3,
                flags: ReservedFlags::EMPTY,
                sub_id: SubId::try_from("é").unwrap(),
            })
        );
        let bcast = value("bcast", -1, "", "7b7d").to_sub_command().unwrap();
        assert_eq!((bcast.conn(), bcast.data()), (-1, &b"{}"[..]));
    }

    #[test]
    fn refuses_what_no_valid_command_carries() {
        let e = |v: SubCommandValue| v.to_sub_command().unwrap_err();
        assert!(e(value("zap", 1, "", "")).contains("unknown op"));
        assert!(e(value("new", -1, "", "")).contains("invalid_conn"));
        assert!(e(value("auth", 1, "", "00")).contains("32 bytes"));
        assert!(e(value("add", 1, "", "00")).contains("sub_id"));
        assert!(e(value("new", 1, "", "00")).contains("no data"));
        assert!(e(value("close", 1, "s", "")).contains("no sub_id"));
        let empty = BroadcastFrameValue {
            conn: 1,
            data_hex: String::new(),
        };
        assert!(empty.to_broadcast_frame().is_err());
    }

    #[test]
    fn every_vector_needs_a_comment() {
        let without = r#"{"schema":"broadcast-wire/framing/v1","vectors":[
            {"id":"a/b","stream_hex":"","frames":[],"end":"clean"}]}"#;
        assert!(FramingFile::parse(without).unwrap_err().contains("comment"));
        let with = without.replace(r#""id":"a/b","#, r#""id":"a/b","comment":"empty","#);
        assert_eq!(FramingFile::parse(&with).unwrap().vectors[0].comment, "empty");
    }
}
