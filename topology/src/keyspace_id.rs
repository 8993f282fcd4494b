//! The keyspace id: the 64-bit point a tenant id hashes to.
//!
//! Place in the data path: the output of a [`crate::vindex`] and the input of the shard lookup
//! ([`crate::Topology::shard_for_keyspace_id`]). It is only a number: it must not know which
//! shard owns it, nor which tenant or table produced it.

use std::fmt;

/// A point in the 64-bit key space, ordered like Vitess orders its 8-byte keyspace ids
/// (big-endian bytes compared lexicographically = this integer compared numerically).
///
/// Displays as 16 lowercase hex digits, the form Vitess prints (`166b40b44aba4bd6`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct KeyspaceId(pub u64);

impl KeyspaceId {
    /// The 8 bytes Vitess stores for this keyspace id (big-endian).
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for KeyspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_sixteen_lowercase_hex_digits() {
        assert_eq!(
            KeyspaceId(0x166b_40b4_4aba_4bd6).to_string(),
            "166b40b44aba4bd6"
        );
        assert_eq!(KeyspaceId(1).to_string(), "0000000000000001");
    }

    #[test]
    fn orders_like_vitess_byte_strings() {
        let low = KeyspaceId(u64::from_be_bytes([0x01, 0xff, 0, 0, 0, 0, 0, 0]));
        let high = KeyspaceId(u64::from_be_bytes([0x02, 0, 0, 0, 0, 0, 0, 0]));
        assert!(low < high);
        assert!(low.to_bytes() < high.to_bytes());
    }
}
