//! NIP-42 authentication: the challenge a connection gets and the check of
//! the client's kind-22242 answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::event::Event;

/// The kind of a NIP-42 authentication event.
pub const AUTH_KIND: u16 = 22242;

/// A fresh challenge: 16 random bytes as hex.
pub fn new_challenge() -> String {
    let mut bytes = [0u8; 16];
    // The OS random source failing is not something a relay can serve
    // through; a predictable challenge would be a silent security hole.
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}

/// Compares relay URLs as NIP-42 clients write them: scheme and host are
/// case-insensitive, and a trailing `/` does not matter (nostr-tools
/// normalises `ws://host:port` to `ws://host:port/`). The loopback names
/// `localhost`, `127.0.0.1` and `[::1]` are one host: a client on the same
/// machine reaches a relay listening on 127.0.0.1 by any of them, and they
/// cannot name another machine's relay, so accepting them all keeps the
/// point of the `relay` tag (an AUTH event made for one relay is refused by
/// another).
///
/// ```
/// use broadcast_example_relay::auth::same_relay_url;
/// assert!(same_relay_url("ws://127.0.0.1:7447/", "WS://127.0.0.1:7447"));
/// assert!(same_relay_url("ws://localhost:7447/", "ws://127.0.0.1:7447"));
/// assert!(!same_relay_url("ws://127.0.0.1:7448", "ws://127.0.0.1:7447"));
/// assert!(!same_relay_url("ws://relay.example:7447", "ws://127.0.0.1:7447"));
/// ```
pub fn same_relay_url(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let url = s.trim().trim_end_matches('/').to_ascii_lowercase();
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url.as_str()));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let authority = ["localhost:", "[::1]:"]
            .iter()
            .find_map(|name| {
                authority
                    .strip_prefix(name)
                    .map(|port| format!("127.0.0.1:{port}"))
            })
            .unwrap_or_else(|| authority.to_owned());
        format!("{scheme}://{authority}/{path}")
    };
    norm(a) == norm(b)
}

/// Checks a verified event (id and signature already checked) as the answer
/// to `challenge` on the relay at `relay_url`: kind 22242, the `challenge`
/// tag, the `relay` tag, and `created_at` within `window` of now. The error
/// is the reason for `OK false` (after `invalid: `).
pub fn check(event: &Event, challenge: &str, relay_url: &str, window: Duration) -> Result<(), String> {
    if event.kind != AUTH_KIND {
        return Err(format!("an AUTH event has kind {AUTH_KIND}, not {}", event.kind));
    }
    if event.tag_value("challenge") != Some(challenge) {
        return Err("the challenge tag does not match this connection's challenge".into());
    }
    match event.tag_value("relay") {
        Some(url) if same_relay_url(url, relay_url) => {}
        Some(url) => return Err(format!("the relay tag {url:?} is not this relay ({relay_url})")),
        None => return Err("the AUTH event has no relay tag".into()),
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if now.abs_diff(event.created_at) > window.as_secs() {
        return Err(format!(
            "created_at is more than {} s away from the relay's clock",
            window.as_secs()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{tests::signed, verify};

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    fn auth_event(kind: u16, challenge: &str, relay: &str, created_at: u64) -> Event {
        let tags = serde_json::json!([["relay", relay], ["challenge", challenge]]);
        verify(&signed(9, kind, tags, "", created_at)).unwrap()
    }

    #[test]
    fn a_matching_answer_passes_and_each_wrong_field_is_named() {
        let url = "ws://127.0.0.1:7447";
        let window = Duration::from_secs(600);
        let ok = auth_event(AUTH_KIND, "abc", "ws://127.0.0.1:7447/", now());
        assert_eq!(check(&ok, "abc", url, window), Ok(()));
        let cases = [
            (auth_event(1, "abc", url, now()), "kind"),
            (auth_event(AUTH_KIND, "abd", url, now()), "challenge"),
            (
                auth_event(AUTH_KIND, "abc", "ws://evil.example", now()),
                "relay tag",
            ),
            (auth_event(AUTH_KIND, "abc", url, now() - 3600), "created_at"),
            (auth_event(AUTH_KIND, "abc", url, now() + 3600), "created_at"),
        ];
        for (event, says) in cases {
            let err = check(&event, "abc", url, window).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn challenges_are_fresh() {
        let (a, b) = (new_challenge(), new_challenge());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
