//! Authentication plugins: the scrambles a client computes and the checks a server makes.
//!
//! shardgate knows its users' passwords (from config), so it verifies a scramble by computing the expected token
//! for the nonce it sent. `caching_sha2_password` is always answered on its fast path for the same reason: the
//! "cache" is the config.

use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use crate::WireError;

/// Name of the SHA-1 challenge-response plugin.
pub const MYSQL_NATIVE_PASSWORD: &str = "mysql_native_password";
/// Name of the SHA-256 challenge-response plugin (MySQL 8's default).
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";
/// Length of the nonce ("auth plugin data") in a handshake.
pub const NONCE_LEN: usize = 20;

/// caching_sha2_password's "fast authentication succeeded" marker, sent in an AuthMoreData packet.
pub const SHA2_FAST_AUTH_OK: u8 = 0x03;
/// caching_sha2_password's "send the password in full" marker.
pub const SHA2_PERFORM_FULL_AUTH: u8 = 0x04;

/// A fresh random nonce of printable ASCII bytes without NUL or `$`, as MySQL servers send.
pub fn new_nonce() -> Result<[u8; NONCE_LEN], WireError> {
    let mut n = [0u8; NONCE_LEN];
    getrandom::fill(&mut n)
        .map_err(|e| WireError::Unsupported(format!("no randomness for a nonce: {e}")))?;
    for b in &mut n {
        // Map to 0x21..=0x7e minus '$': printable, never NUL, so clients that treat it as a C string still work.
        let mut c = 0x21 + *b % 94;
        if c == b'$' {
            c = b'#';
        }
        *b = c;
    }
    Ok(n)
}

/// The token a `mysql_native_password` client sends: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))). Empty for an
/// empty password.
pub fn native_token(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(stage2);
    let mix = h.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// The token a `caching_sha2_password` client sends on the fast path:
/// SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce). Empty for an empty password.
pub fn sha2_token(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha256::digest(password);
    let stage2 = Sha256::digest(stage1);
    let mut h = Sha256::new();
    h.update(stage2);
    h.update(nonce);
    let mix = h.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// The token `plugin` computes for `password` and `nonce`; `None` for a plugin this codec does not know.
pub fn token_for(plugin: &str, password: &[u8], nonce: &[u8]) -> Option<Vec<u8>> {
    match plugin {
        MYSQL_NATIVE_PASSWORD => Some(native_token(password, nonce)),
        CACHING_SHA2_PASSWORD => Some(sha2_token(password, nonce)),
        _ => None,
    }
}

/// Checks a client's token against the password, in time independent of where they differ.
pub fn verify(plugin: &str, password: &[u8], nonce: &[u8], response: &[u8]) -> bool {
    let Some(expected) = token_for(plugin, password, nonce) else {
        return false;
    };
    // Some clients send a single NUL for an empty password.
    let response = if expected.is_empty() && response == [0] {
        &[][..]
    } else {
        response
    };
    if expected.len() != response.len() {
        return false;
    }
    expected
        .iter()
        .zip(response)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn native_token_matches_the_mysql_formula() {
        // SHA1("secret") and SHA1(SHA1("secret")) are well known; recompute the formula independently here.
        let nonce = b"abcdefghijklmnopqrst";
        let stage1 = hex("e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4");
        let stage2 = Sha1::digest(&stage1);
        let mix = Sha1::digest([&nonce[..], &stage2[..]].concat());
        let want: Vec<u8> = stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(native_token(b"secret", nonce), want);
    }

    #[test]
    fn verify_accepts_the_right_password_and_refuses_a_wrong_one() {
        let nonce = new_nonce().unwrap();
        for plugin in [MYSQL_NATIVE_PASSWORD, CACHING_SHA2_PASSWORD] {
            let tok = token_for(plugin, b"app", &nonce).unwrap();
            assert!(verify(plugin, b"app", &nonce, &tok));
            assert!(!verify(plugin, b"app2", &nonce, &tok));
            assert!(!verify(plugin, b"app", &nonce, &tok[..tok.len() - 1]));
            assert!(verify(plugin, b"", &nonce, b""));
            assert!(!verify(plugin, b"", &nonce, &tok));
        }
        assert!(!verify("dialog", b"app", &nonce, b"app"));
    }

    #[test]
    fn nonces_are_printable_and_never_nul() {
        for _ in 0..100 {
            let n = new_nonce().unwrap();
            assert!(n.iter().all(|&b| (0x21..=0x7e).contains(&b) && b != b'$'));
        }
    }
}
