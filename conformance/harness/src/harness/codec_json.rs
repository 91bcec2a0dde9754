//! The JSON view of a decoded payload, the same shape the codec vectors use
//! for `value` (docs/VECTORS.md): SubCommand `{"op","conn","flags","sub_id",
//! "data_hex"}` and BroadcastFrame `{"conn","data_hex"}`. Used by the
//! `decode`/`encode` tools and by the `vectors` replay; the bytes are always
//! produced and parsed by `broadcast_wire`, never by this module, and a
//! value becomes a command by the one mapping of [`super::vector_schema`].

use broadcast_wire::{BroadcastFrame, SubCommand, SubId};
use serde_json::{Map, Value, json};

use super::vector_schema::{BroadcastFrameValue, SubCommandValue};

/// The `value` object of a SubCommand.
pub fn sub_command_to_json(cmd: &SubCommand) -> Value {
    json!({
        "op": cmd.op().name(),
        "conn": cmd.conn(),
        "flags": cmd.flags_bits(),
        "sub_id": cmd.sub_id().map(SubId::as_str).unwrap_or(""),
        "data_hex": hex::encode(cmd.data()),
    })
}

/// The `value` object of a BroadcastFrame.
pub fn broadcast_frame_to_json(frame: &BroadcastFrame) -> Value {
    json!({
        "conn": frame.conn,
        "data_hex": hex::encode(&frame.data),
    })
}

fn int_field(obj: &Map<String, Value>, name: &str, default: Option<i64>) -> Result<i64, String> {
    match obj.get(name) {
        None => default.ok_or_else(|| format!("missing field `{name}`")),
        Some(v) => v.as_i64().ok_or_else(|| format!("`{name}` must be an integer")),
    }
}

fn str_field(obj: &Map<String, Value>, name: &str) -> Result<String, String> {
    match obj.get(name) {
        None => Ok(String::new()),
        Some(v) => v
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("`{name}` must be a string")),
    }
}

fn conn_of(v: i64) -> Result<i32, String> {
    i32::try_from(v).map_err(|_| format!("`conn` {v} is outside the i32 range"))
}

/// Builds the SubCommand a `value` object describes. As typed by a person
/// into the `encode` tool, `flags`, `sub_id` and `data_hex` may be left
/// out (0 and empty). Fails when the object describes a payload the
/// codec's rules reject (those have no value in the vectors either).
pub fn sub_command_from_json(value: &Value) -> Result<SubCommand, String> {
    let obj = value.as_object().ok_or("a SubCommand value must be an object")?;
    let op = obj.get("op").ok_or("missing field `op`")?;
    let flags = int_field(obj, "flags", Some(0))?;
    SubCommandValue {
        op: op.as_str().ok_or("`op` must be a string")?.to_owned(),
        conn: conn_of(int_field(obj, "conn", None)?)?,
        flags: u8::try_from(flags).map_err(|_| format!("`flags` {flags} is not a byte"))?,
        sub_id: str_field(obj, "sub_id")?,
        data_hex: str_field(obj, "data_hex")?,
    }
    .to_sub_command()
}

/// Builds the BroadcastFrame a `value` object describes.
pub fn broadcast_frame_from_json(value: &Value) -> Result<BroadcastFrame, String> {
    let obj = value
        .as_object()
        .ok_or("a BroadcastFrame value must be an object")?;
    BroadcastFrameValue {
        conn: conn_of(int_field(obj, "conn", None)?)?,
        data_hex: str_field(obj, "data_hex")?,
    }
    .to_broadcast_frame()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_op() {
        let cmds = [
            json!({"op":"new","conn":1,"flags":255,"sub_id":"","data_hex":""}),
            json!({"op":"close","conn":0,"flags":2,"sub_id":"","data_hex":""}),
            json!({"op":"add","conn":3,"flags":0,"sub_id":"s\n","data_hex":"5b5d"}),
            json!({"op":"remove","conn":3,"flags":0,"sub_id":"é","data_hex":""}),
            json!({"op":"auth","conn":3,"flags":0,"sub_id":"","data_hex":"11".repeat(32)}),
            json!({"op":"bcast","conn":-1,"flags":7,"sub_id":"","data_hex":"7b7d"}),
        ];
        for v in cmds {
            assert_eq!(sub_command_to_json(&sub_command_from_json(&v).unwrap()), v);
        }
        let f = json!({"conn":9,"data_hex":"78"});
        assert_eq!(
            broadcast_frame_to_json(&broadcast_frame_from_json(&f).unwrap()),
            f
        );
    }

    #[test]
    fn refuses_invalid_values() {
        let e = |v: Value| sub_command_from_json(&v).unwrap_err();
        assert!(e(json!({"op":"zap","conn":1})).contains("unknown op"));
        assert!(e(json!({"op":"new","conn":-1})).contains("invalid_conn"));
        assert!(e(json!({"op":"auth","conn":1,"data_hex":"00"})).contains("32 bytes"));
        assert!(e(json!({"op":"add","conn":1,"sub_id":"","data_hex":"00"})).contains("sub_id"));
        assert!(e(json!({"op":"new","conn":1,"data_hex":"00"})).contains("no data"));
        assert!(broadcast_frame_from_json(&json!({"conn":1,"data_hex":""})).is_err());
    }
}
