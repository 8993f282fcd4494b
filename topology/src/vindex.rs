//! Vindexes: the functions that turn a tenant id into a [`KeyspaceId`].
//!
//! Place in the data path: between the tenant id the SQL layer extracted and the key-range
//! lookup. Both functions are Vitess's own, bit for bit, so a shard map computed here agrees with
//! a Vitess keyspace sharded the same way. This module must not know shards, tables or pins:
//! it is pure arithmetic on one value.

use std::sync::LazyLock;

use des::Des;
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockEncrypt, KeyInit};
use serde::{Deserialize, Serialize};

use crate::KeyspaceId;

/// Which hashing function a table's sharding column goes through.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vindex {
    /// Vitess `hash`: for unsigned integer ids ([`hash`]). The default.
    #[default]
    Hash,
    /// Vitess `xxhash`: for any id, hashed as bytes ([`xxhash`]).
    Xxhash,
}

impl Vindex {
    /// The name used in the YAML file and by Vitess (`hash`, `xxhash`).
    pub fn name(self) -> &'static str {
        match self {
            Vindex::Hash => "hash",
            Vindex::Xxhash => "xxhash",
        }
    }
}

impl std::fmt::Display for Vindex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Single DES under the all-zero key, built once: the key schedule is the same for every call.
static NULL_KEY_DES: LazyLock<Des> = LazyLock::new(|| Des::new(&GenericArray::from([0u8; 8])));

/// Vitess `hash` vindex: DES-encrypt the big-endian 8 bytes of `id` under an all-zero 8-byte key
/// (single DES, ECB, one block, no padding); the ciphertext read big-endian is the keyspace id.
///
/// This is a bijection on `u64`, so distinct tenants never share a keyspace id. Vitess maps a
/// negative signed id through its two's complement (`-1` hashes as `u64::MAX`).
pub fn hash(id: u64) -> KeyspaceId {
    let mut block = GenericArray::from(id.to_be_bytes());
    NULL_KEY_DES.encrypt_block(&mut block);
    KeyspaceId(u64::from_be_bytes(block.into()))
}

/// Vitess `xxhash` vindex: xxh64 (seed 0) of the bytes.
///
/// Vitess (`go/vt/vtgate/vindexes/xxhash.go`, `vXXHash`) writes `xxhash.Sum64` into the 8-byte
/// keyspace id **little-endian**; key ranges then compare those bytes in order. So the keyspace
/// id here, read big-endian like every other, is the byte-swapped digest. Integers are hashed as
/// their decimal text, as Vitess's `Value.ToBytes` gives them (see [`xxhash_u64`]).
pub fn xxhash(id: &[u8]) -> KeyspaceId {
    KeyspaceId(xxhash_rust::xxh64::xxh64(id, 0).swap_bytes())
}

/// The `xxhash` vindex applied to an integer id: the hash of its decimal text
/// (`1` hashes as the byte `"1"`), without allocating.
pub fn xxhash_u64(id: u64) -> KeyspaceId {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = id;
    loop {
        at -= 1;
        // `rest % 10` is below 10, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (rest % 10) as u8;
        if let Some(slot) = digits.get_mut(at) {
            *slot = b'0' + digit;
        }
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    xxhash(digits.get(at..).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from Vitess `go/vt/vtgate/vindexes/hash_test.go` (`TestHashMap`).
    #[test]
    fn hash_matches_vitess_published_vectors() {
        let vectors: [(u64, u64); 6] = [
            (1, 0x166b_40b4_4aba_4bd6),
            (2, 0x06e7_ea22_ce92_708f),
            (3, 0x4eb1_90c9_a2fa_169c),
            (4, 0xd2fd_8867_d50d_2dfe),
            (5, 0x70bb_023c_810c_a87a),
            (6, 0xf098_480a_c4c4_be71),
        ];
        for (id, want) in vectors {
            assert_eq!(hash(id), KeyspaceId(want), "hash({id})");
        }
    }

    #[test]
    fn hash_is_injective_on_a_sample() {
        let ids: std::collections::HashSet<KeyspaceId> = (0..10_000).map(hash).collect();
        assert_eq!(ids.len(), 10_000);
    }

    /// Vectors from Vitess `go/vt/vtgate/vindexes/xxhash_test.go` (`TestXXHashMap`): the
    /// keyspace-id bytes Vitess produces, read here big-endian.
    #[test]
    fn xxhash_matches_vitess_published_vectors() {
        let vectors: [(&[u8], [u8; 8]); 5] = [
            (b"test1", [0xd0, 0x1a, 0xb7, 0xe4, 0xd6, 0x97, 0x8f, 0x0b]),
            (b"test2", [0x87, 0xeb, 0x11, 0x71, 0x4c, 0x0a, 0x0e, 0x89]),
            (
                b"testaverylongvaluetomakesurethisworks",
                [0x81, 0xd8, 0xc3, 0x8e, 0x0d, 0x85, 0x0e, 0x6a],
            ),
            // sqltypes.NewInt64(-1): the SQL layer hands negative ids over as text.
            (b"-1", [0xd8, 0xe2, 0xa6, 0xa7, 0xc8, 0xc7, 0x62, 0x3d]),
            // sqltypes.NULL hashes as the empty byte string.
            (b"", [0x99, 0xe9, 0xd8, 0x51, 0x37, 0xdb, 0x46, 0xef]),
        ];
        for (id, want) in vectors {
            assert_eq!(
                xxhash(id).to_bytes(),
                want,
                "xxhash({:?})",
                String::from_utf8_lossy(id)
            );
        }
    }

    /// Integer vectors from the same Vitess test: an integer hashes as its decimal text.
    #[test]
    fn xxhash_of_an_integer_hashes_its_decimal_text() {
        let vectors: [(u64, [u8; 8]); 3] = [
            (1, [0xd4, 0x64, 0x05, 0x36, 0x76, 0x12, 0xb4, 0xb7]),
            (u64::MAX, [0x47, 0x7c, 0xfa, 0x8d, 0x6d, 0x8f, 0x1f, 0x8d]),
            (
                9_223_372_036_854_775_807,
                [0xb3, 0x7e, 0xb0, 0x1f, 0x7b, 0xff, 0xaf, 0xd8],
            ),
        ];
        for (id, want) in vectors {
            assert_eq!(xxhash_u64(id).to_bytes(), want, "xxhash_u64({id})");
            assert_eq!(xxhash_u64(id), xxhash(id.to_string().as_bytes()));
        }
        assert_eq!(xxhash_u64(0), xxhash(b"0"));
    }

    #[test]
    fn vindex_names_match_the_yaml_spelling() {
        assert_eq!(Vindex::Hash.to_string(), "hash");
        assert_eq!(Vindex::Xxhash.to_string(), "xxhash");
        assert_eq!(Vindex::default(), Vindex::Hash);
    }
}
