//! PROTOCOL.md#payloads, the two payloads: packing a SubCommand or a BroadcastFrame
//! by hand, and reading one field by field with the spec's error precedence.

use broadcast_wire::SubCommand;

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

/// The payload of a SubCommand value, packed by hand from its variant's
/// fields with the op numbers of the PROTOCOL.md#operations table (never through the encoder).
pub fn pack_sub_command_value(cmd: &SubCommand) -> Vec<u8> {
    match cmd {
        SubCommand::New { conn, flags } => pack_sub_command(1, flags.bits(), *conn, b"", b""),
        SubCommand::Close { conn, flags } => pack_sub_command(2, flags.bits(), *conn, b"", b""),
        SubCommand::Add {
            conn,
            flags,
            sub_id,
            req,
        } => pack_sub_command(3, flags.bits(), *conn, sub_id.as_str().as_bytes(), req),
        SubCommand::Remove { conn, flags, sub_id } => {
            pack_sub_command(4, flags.bits(), *conn, sub_id.as_str().as_bytes(), b"")
        }
        SubCommand::Auth { conn, flags, pubkey } => pack_sub_command(5, flags.bits(), *conn, b"", pubkey),
        SubCommand::Bcast { sender, flags, event } => pack_sub_command(6, flags.bits(), *sender, b"", event),
    }
}

/// A BroadcastFrame payload, packed by hand (PROTOCOL.md#broadcastframe-layout): `conn i32 LE | data_len u32 LE | data`.
pub fn pack_broadcast_frame(conn: i32, data: &[u8]) -> Vec<u8> {
    let mut v = conn.to_le_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// A SubCommand's raw fields as PROTOCOL.md#subcommand-layout lays them out: op, flags, conn, sub_id, data.
pub type SubCommandFields<'a> = (u8, u8, i32, &'a [u8], &'a [u8]);

/// Takes fixed-size and length-prefixed fields front to back.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn i32(&mut self) -> Result<i32, &'static str> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn sized(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.u32()?;
        // A length that does not fit in usize cannot fit in the payload either.
        self.take(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn end(&self) -> Result<(), &'static str> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("trailing_bytes")
        }
    }
}

/// Reads a SubCommand payload by PROTOCOL.md#subcommand-layout and PROTOCOL.md#precedence: its fields, or the one error class
/// (as `PayloadError::class` spells it) the precedence rule picks.
pub fn read_sub_command(payload: &[u8]) -> Result<SubCommandFields<'_>, &'static str> {
    let mut f = Fields(payload);
    let op = f.take(1)?[0];
    let flags = f.take(1)?[0];
    let conn = f.i32()?;
    let sub_id = f.sized()?;
    let data = f.sized()?;
    f.end()?;
    if !(1..=6).contains(&op) {
        return Err("unknown_op");
    }
    let min_conn = if op == 6 { -1 } else { 0 };
    if conn < min_conn {
        return Err("invalid_conn");
    }
    let sub_id_ok = match op {
        // Add and Remove: 1 to 64 bytes of UTF-8.
        3 | 4 => (1..=64).contains(&sub_id.len()) && std::str::from_utf8(sub_id).is_ok(),
        _ => sub_id.is_empty(),
    };
    if !sub_id_ok {
        return Err("invalid_sub_id");
    }
    let data_ok = match op {
        3 | 6 => !data.is_empty(),
        5 => data.len() == 32,
        _ => data.is_empty(),
    };
    if !data_ok {
        return Err("invalid_data");
    }
    Ok((op, flags, conn, sub_id, data))
}

/// Reads a BroadcastFrame payload by PROTOCOL.md#broadcastframe-layout: conn and data, or the error class.
pub fn read_broadcast_frame(payload: &[u8]) -> Result<(i32, &[u8]), &'static str> {
    let mut f = Fields(payload);
    let conn = f.i32()?;
    let data = f.sized()?;
    f.end()?;
    if conn < 0 {
        return Err("invalid_conn");
    }
    if data.is_empty() {
        return Err("invalid_data");
    }
    Ok((conn, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_and_reading_agree() {
        let add = pack_sub_command(3, 0, 7, b"s", b"[]");
        assert_eq!(add, [3, 0, 7, 0, 0, 0, 1, 0, 0, 0, b's', 2, 0, 0, 0, b'[', b']']);
        assert_eq!(read_sub_command(&add), Ok((3, 0, 7, &b"s"[..], &b"[]"[..])));
        assert_eq!(read_sub_command(&add[..5]), Err("truncated"));
        // Precedence: the whole layout is read before the op is judged.
        assert_eq!(
            read_sub_command(&pack_sub_command(9, 0, -5, b"", b"")),
            Err("unknown_op")
        );
        assert_eq!(
            read_sub_command(&pack_sub_command(1, 0, -1, b"", b"")),
            Err("invalid_conn")
        );
        let frame = pack_broadcast_frame(4, b"x");
        assert_eq!(read_broadcast_frame(&frame), Ok((4, &b"x"[..])));
        assert_eq!(
            read_broadcast_frame(&pack_broadcast_frame(4, b"")),
            Err("invalid_data")
        );
    }
}
