//! What the relay benchmarks share: the events their publishers send.

use secp256k1::hashes::{Hash, sha256};
use secp256k1::{Keypair, SECP256K1};

/// `count` signed kind-1 `["EVENT", {...}]` messages, as a client would
/// send them, about 400 bytes each; one fixed key, so runs compare.
pub fn signed_event_messages(count: usize) -> Vec<String> {
    let keypair = Keypair::from_seckey_slice(SECP256K1, &[7; 32]).expect("a valid fixed secret key");
    let pubkey = hex::encode(keypair.x_only_public_key().0.serialize());
    (0..count)
        .map(|i| {
            let content = format!("benchmark event {i} {}", "x".repeat(100));
            let tags = serde_json::json!([["t", "bench"]]);
            let canonical = serde_json::json!([0, pubkey, 1_700_000_000, 1, tags, content]).to_string();
            let id = sha256::Hash::hash(canonical.as_bytes()).to_byte_array();
            let sig = SECP256K1.sign_schnorr_no_aux_rand(&id, &keypair);
            let event = serde_json::json!({
                "id": hex::encode(id), "pubkey": pubkey, "created_at": 1_700_000_000, "kind": 1,
                "tags": tags, "content": content, "sig": hex::encode(sig.to_byte_array()),
            });
            serde_json::json!(["EVENT", event]).to_string()
        })
        .collect()
}
