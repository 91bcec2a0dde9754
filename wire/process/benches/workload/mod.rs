//! The subscription workload the process benches share (`sharded`,
//! `recovery`): a deterministic generator and the mix of REQ filters a
//! relay sees, so both benches measure the same kind of state.

/// `created_at` of the generated events; `since` filters sit just above it.
pub const SINCE: u64 = 1_700_000_000;

/// xorshift64: deterministic, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A 64-hex-digit key (pubkey or event id) numbered `i`.
pub fn hex_key(i: usize) -> String {
    format!(
        "{:064x}",
        (i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}

/// The filter of subscription `i`: by author, a DM (`#p`, kinds 4 and
/// 1059), kinds and author, or a hashtag with `since`, in turn; keys drawn
/// from `authors`, hashtags from `hashtags`.
pub fn filter(i: usize, authors: usize, hashtags: usize, rng: &mut Rng) -> String {
    match i % 4 {
        0 => format!(r#"{{"authors":["{}"]}}"#, hex_key(rng.below(authors))),
        1 => format!(
            r##"{{"#p":["{}"],"kinds":[4,1059]}}"##,
            hex_key(rng.below(authors))
        ),
        2 => format!(
            r#"{{"kinds":[1,6],"authors":["{}"]}}"#,
            hex_key(rng.below(authors))
        ),
        _ => format!(
            r##"{{"#t":["tag{}"],"since":{}}}"##,
            rng.below(hashtags),
            SINCE + rng.below(100) as u64
        ),
    }
}
