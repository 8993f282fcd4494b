//! Key ranges and Vitess shard names.
//!
//! Place in the data path: a shard owns a half-open [`KeyRange`]; routing binary-searches the
//! range starts. Shard names follow Vitess (`-80`, `80-`, `40-80`, `-`): the hex digits are the
//! leading bytes of the boundary keyspace ids, empty meaning the bottom or the top of the space.
//! This module must not know backends, databases, tables or tenants.

use std::fmt;

use crate::{KeyspaceId, ShardNameFault, TopologyError};

/// The size of the key space, one past the largest keyspace id: `2^64`.
const SPACE_END: u128 = 1 << 64;

/// A half-open range of keyspace ids `[start, end)`; `end: None` runs to the top of the space
/// (inclusive of `u64::MAX`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct KeyRange {
    /// First keyspace id in the range.
    pub start: u64,
    /// First keyspace id past the range; `None` = the range reaches the top of the key space.
    pub end: Option<u64>,
}

impl KeyRange {
    /// The whole key space (`-` in Vitess).
    pub const FULL: KeyRange = KeyRange {
        start: 0,
        end: None,
    };

    /// Whether `k` lies in `[start, end)`.
    pub fn contains(&self, k: KeyspaceId) -> bool {
        k.0 >= self.start && self.end.is_none_or(|end| k.0 < end)
    }

    /// The exclusive end as a number that can also say "the top" (`2^64`).
    pub(crate) fn end_u128(&self) -> u128 {
        self.end.map_or(SPACE_END, u128::from)
    }

    /// The Vitess name of this range (`40-80`, `-80`, `80-`, `-`): each boundary as its big-endian
    /// bytes with trailing zero bytes dropped (at least one byte kept), empty at the bottom and top.
    pub fn vitess_name(&self) -> String {
        let start = if self.start == 0 {
            String::new()
        } else {
            boundary_hex(self.start)
        };
        let end = self.end.map(boundary_hex).unwrap_or_default();
        format!("{start}-{end}")
    }
}

/// Shows the range with full 16-digit hex boundaries: `[4000000000000000, 8000000000000000)`, or
/// `[fe00000000000000, ffffffffffffffff]` when it reaches the top.
impl fmt::Display for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(end) => write!(f, "[{:016x}, {end:016x})", self.start),
            None => write!(f, "[{:016x}, {:016x}]", self.start, u64::MAX),
        }
    }
}

/// A keyspace-id boundary as Vitess spells it: big-endian hex, trailing `00` bytes trimmed.
fn boundary_hex(value: u64) -> String {
    let bytes = value.to_be_bytes();
    let kept = bytes
        .iter()
        .rposition(|b| *b != 0)
        .map_or(1, |last| last + 1);
    bytes
        .iter()
        .take(kept)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses a Vitess shard name into its key range.
///
/// `"40-80"` is `[0x40 << 56, 0x80 << 56)`; `"-80"` starts at the bottom; `"80-"` runs to the
/// top; `"-"` is the whole space, and so is `"0"`, the name Vitess gives the single shard of an
/// unsharded keyspace. Each side is hex of even length, at most 16 digits, left-aligned
/// (`"4080"` is `0x4080 << 48`), upper or lower case. The range must not be empty.
pub fn parse_shard_name(name: &str) -> Result<KeyRange, TopologyError> {
    range_of_name(name).map_err(|fault| TopologyError::BadShardName {
        name: name.to_owned(),
        fault,
    })
}

/// [`parse_shard_name`] with the bare reason, for callers that add their own context.
pub(crate) fn range_of_name(name: &str) -> Result<KeyRange, ShardNameFault> {
    if name == "0" {
        return Ok(KeyRange::FULL);
    }
    let (start, end) = name.split_once('-').ok_or(ShardNameFault::NoDash)?;
    let range = KeyRange {
        start: parse_boundary(start)?.unwrap_or(0),
        end: parse_boundary(end)?,
    };
    if u128::from(range.start) >= range.end_u128() {
        return Err(ShardNameFault::EmptyRange);
    }
    Ok(range)
}

/// One side of a shard name: `None` when empty (bottom or top of the space).
fn parse_boundary(hex: &str) -> Result<Option<u64>, ShardNameFault> {
    if hex.is_empty() {
        return Ok(None);
    }
    if hex.len() > 16 {
        return Err(ShardNameFault::TooLong);
    }
    if hex.len() % 2 == 1 {
        return Err(ShardNameFault::OddLength);
    }
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ShardNameFault::NotHex);
    }
    let value = u64::from_str_radix(hex, 16).map_err(|_| ShardNameFault::NotHex)?;
    // Left-align: "40" is the first byte of the keyspace id. 2 <= len <= 16, so shift <= 56.
    Ok(Some(value << (64 - 4 * hex.len())))
}

/// The evenly split shard list Vitess would create for `n` shards (`n` a power of two in
/// `1..=256`), in key order: `"-"` for 1; `"-80"`, `"80-"` for 2; `"-02"`, `"02-04"`, …, `"fe-"`
/// for 128. Boundaries are whole first bytes, as Vitess's `key.GenerateShardRanges` names them.
pub fn even_shard_ranges(n: u32) -> Result<Vec<(String, KeyRange)>, TopologyError> {
    if !(1..=256).contains(&n) || !n.is_power_of_two() {
        return Err(TopologyError::BadShardCount { n });
    }
    let width = SPACE_END / u128::from(n);
    let boundary = |i: u32| -> Option<u64> { u64::try_from(u128::from(i) * width).ok() };
    let ranges = (0..n)
        .map(|i| {
            let range = KeyRange {
                start: boundary(i).unwrap_or(0),
                end: boundary(i + 1),
            };
            (range.vitess_name(), range)
        })
        .collect();
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers_exactly_once(ranges: &[(String, KeyRange)]) -> bool {
        let mut cursor: u128 = 0;
        for (_, range) in ranges {
            if u128::from(range.start) != cursor {
                return false;
            }
            cursor = range.end_u128();
        }
        cursor == SPACE_END
    }

    #[test]
    fn split_into_128_is_named_like_vitess_and_covers_keyspace_exactly_once() {
        let ranges = even_shard_ranges(128).unwrap();
        assert_eq!(ranges.len(), 128);
        let names: Vec<&str> = ranges.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(&names[..3], ["-02", "02-04", "04-06"]);
        assert_eq!(names[64], "80-82");
        assert_eq!(&names[126..], ["fc-fe", "fe-"]);
        assert!(covers_exactly_once(&ranges));
        for (name, range) in &ranges {
            assert_eq!(parse_shard_name(name).unwrap(), *range, "{name}");
        }
    }

    #[test]
    fn small_splits_are_named_like_vitess() {
        let names = |n| {
            even_shard_ranges(n)
                .unwrap()
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(1), ["-"]);
        assert_eq!(names(2), ["-80", "80-"]);
        assert_eq!(names(4), ["-40", "40-80", "80-c0", "c0-"]);
        assert_eq!(names(256).last().map(String::as_str), Some("ff-"));
        for n in [1, 2, 4, 8, 16, 32, 64, 256] {
            assert!(covers_exactly_once(&even_shard_ranges(n).unwrap()), "{n}");
        }
    }

    #[test]
    fn split_refuses_counts_that_are_not_powers_of_two_up_to_256() {
        for n in [0, 3, 100, 512] {
            let err = even_shard_ranges(n).unwrap_err();
            assert!(err.to_string().contains(&n.to_string()), "{err}");
        }
    }

    #[test]
    fn shard_names_parse_left_aligned() {
        let top = |start| KeyRange { start, end: None };
        assert_eq!(parse_shard_name("-").unwrap(), KeyRange::FULL);
        assert_eq!(parse_shard_name("0").unwrap(), KeyRange::FULL);
        assert_eq!(
            parse_shard_name("-80").unwrap(),
            KeyRange {
                start: 0,
                end: Some(0x80 << 56)
            }
        );
        assert_eq!(parse_shard_name("80-").unwrap(), top(0x80 << 56));
        assert_eq!(
            parse_shard_name("40-80").unwrap(),
            KeyRange {
                start: 0x40 << 56,
                end: Some(0x80 << 56)
            }
        );
        assert_eq!(parse_shard_name("4080-").unwrap(), top(0x4080 << 48));
        assert_eq!(parse_shard_name("C0-").unwrap(), top(0xc0 << 56));
        assert_eq!(parse_shard_name("00-").unwrap(), KeyRange::FULL);
        assert_eq!(
            parse_shard_name("0123456789abcdef-").unwrap(),
            top(0x0123_4567_89ab_cdef)
        );
    }

    #[test]
    fn malformed_shard_names_are_refused_with_the_reason() {
        let cases = [
            ("80", "no '-'"),
            ("8-", "odd number"),
            ("zz-", "not hexadecimal"),
            ("0123456789abcdef01-", "more than 16"),
            ("80-40", "empty"),
            ("80-80", "empty"),
            ("-00", "empty"),
            ("", "no '-'"),
        ];
        for (name, reason) in cases {
            let err = parse_shard_name(name).unwrap_err().to_string();
            assert!(err.contains(reason), "{name:?}: {err}");
            assert!(err.contains(&format!("{name:?}")), "{name:?}: {err}");
        }
    }

    #[test]
    fn ranges_are_half_open() {
        let range = parse_shard_name("40-80").unwrap();
        assert!(range.contains(KeyspaceId(0x40 << 56)));
        assert!(range.contains(KeyspaceId((0x80 << 56) - 1)));
        assert!(!range.contains(KeyspaceId(0x80 << 56)));
        assert!(
            parse_shard_name("80-")
                .unwrap()
                .contains(KeyspaceId(u64::MAX))
        );
    }

    #[test]
    fn vitess_names_trim_trailing_zero_bytes() {
        assert_eq!(
            KeyRange {
                start: 0x4080 << 48,
                end: None
            }
            .vitess_name(),
            "4080-"
        );
        assert_eq!(
            KeyRange {
                start: 0,
                end: Some(0x0100 << 48)
            }
            .vitess_name(),
            "-01"
        );
        assert_eq!(KeyRange::FULL.vitess_name(), "-");
        assert_eq!(
            KeyRange {
                start: 1,
                end: None
            }
            .vitess_name(),
            "0000000000000001-"
        );
    }

    #[test]
    fn display_shows_full_hex_boundaries() {
        let range = parse_shard_name("40-80").unwrap();
        assert_eq!(range.to_string(), "[4000000000000000, 8000000000000000)");
        assert_eq!(
            parse_shard_name("fe-").unwrap().to_string(),
            "[fe00000000000000, ffffffffffffffff]"
        );
    }
}
