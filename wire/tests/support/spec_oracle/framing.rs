//! PROTOCOL.md#framing: `chan u8 | len u32 LE | payload`, and how a whole
//! byte stream splits into frames and ends.

/// A frame, packed by hand: `chan u8 | len u32 LE | payload` (PROTOCOL.md#frame-layout).
pub fn pack_frame(chan: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(chan);
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// What a conforming reader delivers for a whole `stream` (PROTOCOL.md#receiving-frames, PROTOCOL.md#end-of-stream): every
/// complete frame as `(chan, payload)`, heartbeats and foreign channels
/// included, up to the first header whose `len` exceeds `max_payload`, and
/// how the stream ends, spelled as the framing vectors' `end`: `clean`,
/// `truncated_stream` or `frame_too_large`.
pub fn stream_frames(stream: &[u8], max_payload: u32) -> (Vec<(u8, &[u8])>, &'static str) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        if rest.is_empty() {
            return (frames, "clean");
        }
        if rest.len() < 5 {
            return (frames, "truncated_stream");
        }
        let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]);
        // Decided from the header alone, before waiting for the payload.
        if len > max_payload {
            return (frames, "frame_too_large");
        }
        let total = 5 + len as usize;
        if rest.len() < total {
            return (frames, "truncated_stream");
        }
        frames.push((rest[0], &rest[5..total]));
        rest = &rest[total..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worked_framing_example() {
        // A heartbeat, then a 2-byte frame on channel 2, then half a header.
        let stream = [0x01, 0, 0, 0, 0, 0x02, 2, 0, 0, 0, 0xaa, 0xbb, 0x01, 0];
        assert_eq!(
            stream_frames(&stream, 16),
            (vec![(1, &[][..]), (2, &[0xaa, 0xbb][..])], "truncated_stream")
        );
        assert_eq!(stream_frames(&stream[..12], 16).1, "clean");
        assert_eq!(stream_frames(&stream[..12], 1).1, "frame_too_large");
        assert_eq!(pack_frame(2, &[0xaa, 0xbb]), stream[5..12]);
    }
}
