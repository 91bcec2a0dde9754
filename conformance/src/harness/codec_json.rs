//! The JSON view of a decoded payload, the same shape the codec vectors use
//! for `value` (docs/VECTORS.md): SubCommand `{"op","conn","flags","sub_id",
//! "data_hex"}` and BroadcastFrame `{"conn","data_hex"}`. Used by the
//! `decode`/`encode` tools and by the `vectors` replay; the bytes are always
//! produced and parsed by `broadcast_wire`, never by this module.

use broadcast_wire::{
    BcastFlags, BroadcastFrame, NewFlags, Op, PUBKEY_LEN, ReservedFlags, SubCommand, SubId,
};
use serde_json::{Map, Value, json};

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

fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a Value, String> {
    obj.get(name).ok_or_else(|| format!("missing field `{name}`"))
}

fn int_field(obj: &Map<String, Value>, name: &str, default: Option<i64>) -> Result<i64, String> {
    match obj.get(name) {
        None => default.ok_or_else(|| format!("missing field `{name}`")),
        Some(v) => v.as_i64().ok_or_else(|| format!("`{name}` must be an integer")),
    }
}

fn str_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match obj.get(name) {
        None => Ok(""),
        Some(v) => v.as_str().ok_or_else(|| format!("`{name}` must be a string")),
    }
}

fn hex_field(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    hex::decode(str_field(obj, name)?).map_err(|e| format!("`{name}` is not hex: {e}"))
}

fn conn_of(v: i64) -> Result<i32, String> {
    i32::try_from(v).map_err(|_| format!("`conn` {v} is outside the i32 range"))
}

/// Builds the SubCommand a `value` object describes. Fails when the object
/// describes a payload the codec's rules reject (those have no value in the
/// vectors either).
pub fn sub_command_from_json(value: &Value) -> Result<SubCommand, String> {
    let obj = value.as_object().ok_or("a SubCommand value must be an object")?;
    let op_name = field(obj, "op")?.as_str().ok_or("`op` must be a string")?;
    let op = Op::from_name(op_name).ok_or_else(|| format!("unknown op {op_name:?}"))?;
    let conn = conn_of(int_field(obj, "conn", None)?)?;
    let flags = int_field(obj, "flags", Some(0))?;
    let flags = u8::try_from(flags).map_err(|_| format!("`flags` {flags} is not a byte"))?;
    let sub_id = str_field(obj, "sub_id")?;
    let data = hex_field(obj, "data_hex")?;
    let need_sub_id = || SubId::try_from(sub_id).map_err(|p| format!("`sub_id`: {p:?}"));
    let no_sub_id = || {
        if sub_id.is_empty() {
            Ok(())
        } else {
            Err(format!("op {op_name:?} has no sub_id"))
        }
    };
    let no_data = || {
        if data.is_empty() {
            Ok(())
        } else {
            Err(format!("op {op_name:?} has no data"))
        }
    };
    let cmd = match op {
        Op::New => {
            no_sub_id()?;
            no_data()?;
            SubCommand::New {
                conn,
                flags: NewFlags::from_bits(flags),
            }
        }
        Op::Close => {
            no_sub_id()?;
            no_data()?;
            SubCommand::Close {
                conn,
                flags: ReservedFlags::from_bits(flags),
            }
        }
        Op::Add => SubCommand::Add {
            conn,
            flags: ReservedFlags::from_bits(flags),
            sub_id: need_sub_id()?,
            req: data.into(),
        },
        Op::Remove => {
            no_data()?;
            SubCommand::Remove {
                conn,
                flags: ReservedFlags::from_bits(flags),
                sub_id: need_sub_id()?,
            }
        }
        Op::Auth => {
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
        Op::Bcast => {
            no_sub_id()?;
            SubCommand::Bcast {
                sender: conn,
                flags: BcastFlags::from_bits(flags),
                event: data.into(),
            }
        }
    };
    cmd.validate().map_err(|e| format!("{}: {e}", e.class()))?;
    Ok(cmd)
}

/// Builds the BroadcastFrame a `value` object describes.
pub fn broadcast_frame_from_json(value: &Value) -> Result<BroadcastFrame, String> {
    let obj = value
        .as_object()
        .ok_or("a BroadcastFrame value must be an object")?;
    let frame = BroadcastFrame {
        conn: conn_of(int_field(obj, "conn", None)?)?,
        data: hex_field(obj, "data_hex")?.into(),
    };
    frame.validate().map_err(|e| format!("{}: {e}", e.class()))?;
    Ok(frame)
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
