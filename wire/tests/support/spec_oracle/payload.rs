//! PROTOCOL.md#payloads, the two payloads: packing a SubCommand or a
//! BroadcastFrame by hand.

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
