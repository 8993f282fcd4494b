//! Trailing spaces in collation weights.
//!
//! MariaDB compares strings of PAD SPACE collations (all but the `_nopad_` ones and `binary`) as if the shorter
//! were padded with spaces, so `'a' = 'a '`. `WEIGHT_STRING` does not pad: `'a'` weighs `0x0041` and `'a '`
//! `0x00410020` in utf8mb4_general_ci. So a weight is first cut before the weights of its value's trailing spaces
//! ([`trim_weight`]), then compared as if the shorter weight were continued by the weight of a space
//! ([`compare_padded`]), which also orders `'a\t'` before `'a'` as MariaDB does.
//!
//! The column definition does not name the column's collation (it carries the connection's), so the weight of a
//! space is recognised in the data: a value ending in k spaces has a weight ending in k copies of it. The known
//! weights, and the per-collation table used when no value of a comparison ends in a space, were generated from
//! MariaDB 10.11.19: for every row of `information_schema.COLLATION_CHARACTER_SET_APPLICABILITY`, `WEIGHT_STRING`
//! of `'a'`, `'a '` and `' '`, kept when `'a' = 'a '` and the weight of `'a '` is that of `'a'` followed by that
//! of `' '`. Multi-level collations (`uca1400_*_as_*`, `*_ai_cs`, czech, thai `_w2`) weigh a space at every
//! level; they, and `_nopad_` collations (whose weights look the same), are not handled exactly.

use std::cmp::Ordering;

/// Every weight a space has in a single-level PAD SPACE collation, longest first.
const SPACE_WEIGHTS: [&[u8]; 7] = [
    &[0x00, 0x00, 0x20],
    &[0x00, 0x20],
    &[0x02, 0x09],
    &[0x02, 0x0a],
    &[0x20],
    &[0x2c],
    &[0x30],
];

/// `weight` without the weights of the trailing spaces of `value` (the string it weighs, in the connection's
/// ASCII-compatible character set), and the weight of a space found there.
pub(crate) fn trim_weight<'a>(value: &[u8], weight: &'a [u8]) -> (&'a [u8], Option<&'static [u8]>) {
    let spaces = value.iter().rev().take_while(|&&b| b == b' ').count();
    if spaces == 0 {
        return (weight, None);
    }
    for pad in SPACE_WEIGHTS {
        let cut = pad.len() * spaces;
        // Weights are whole units, so a unit longer than one byte must divide the weight's length.
        if weight.len() < cut || weight.len() % pad.len() != 0 {
            continue;
        }
        let (head, tail) = weight.split_at(weight.len() - cut);
        if tail.chunks(pad.len()).all(|unit| unit == pad) {
            return (head, Some(pad));
        }
    }
    (weight, None)
}

/// The weight of one space in a single-level PAD SPACE collation, `None` for other collations.
pub(crate) fn pad_weight(collation: u16) -> Option<&'static [u8]> {
    Some(match collation {
        1
        | 3..=16
        | 18..=19
        | 21..=32
        | 36..=40
        | 43..=44
        | 47..=53
        | 57..=59
        | 64..=75
        | 77..=82
        | 84..=89
        | 91..=99 => &[0x20],
        20 => &[0x2c],
        41..=42 => &[0x30],
        33 | 35 | 45 | 54 | 56 | 60 | 83 | 90 | 159 | 223 => &[0x00, 0x20],
        46 | 55 | 61..=62 => &[0x00, 0x00, 0x20],
        101..=122
        | 124
        | 128..=149
        | 151
        | 160..=181
        | 183
        | 192..=213
        | 215
        | 224..=245
        | 247
        | 576
        | 608
        | 640
        | 672
        | 736 => &[0x02, 0x09],
        123 | 150 | 182 | 214 | 246 | 577 | 609 | 641 | 673 | 737 => &[0x02, 0x0a],
        // uca1400 collations: ids from 2048 in blocks of 8 per charset and language; the first of each block is
        // the `_ai_ci` PAD SPACE one.
        2048..=3264 if collation % 8 == 0 => &[0x02, 0x09],
        _ => return None,
    })
}

/// Compares two weights as MariaDB compares the strings they weigh: the shorter one continued by `pad`.
pub(crate) fn compare_padded(a: &[u8], b: &[u8], pad: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let head = a[..n].cmp(&b[..n]);
    if head != Ordering::Equal || pad.is_empty() {
        return head.then(a.len().cmp(&b.len()));
    }
    // Weights are whole units of the pad's width, so the longer one's tail lines up with the repeated pad.
    let (tail, flip) = if a.len() > b.len() {
        (&a[n..], false)
    } else {
        (&b[n..], true)
    };
    let o = tail.iter().cmp(pad.iter().cycle().take(tail.len()));
    if flip { o.reverse() } else { o }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_spaces_do_not_count_in_pad_space_collations() {
        let pad = pad_weight(45).unwrap();
        // WEIGHT_STRING in utf8mb4_general_ci of 'a', 'a ', 'a  ', 'a\t', 'ab' (from MariaDB 10.11).
        let a = [0x00, 0x41];
        let a1 = [0x00, 0x41, 0x00, 0x20];
        let a2 = [0x00, 0x41, 0x00, 0x20, 0x00, 0x20];
        let a_tab = [0x00, 0x41, 0x00, 0x09];
        let ab = [0x00, 0x41, 0x00, 0x42];
        assert_eq!(compare_padded(&a, &a1, pad), Ordering::Equal);
        assert_eq!(compare_padded(&a2, &a, pad), Ordering::Equal);
        // A tab sorts below the space the shorter string is padded with.
        assert_eq!(compare_padded(&a_tab, &a, pad), Ordering::Less);
        assert_eq!(compare_padded(&a, &ab, pad), Ordering::Less);
        assert_eq!(compare_padded(&ab, &a1, pad), Ordering::Greater);
    }

    #[test]
    fn trailing_space_weights_are_recognised_in_the_data() {
        // (value, its WEIGHT_STRING) in utf8mb4_general_ci, utf8mb4_unicode_ci, latin1_swedish_ci, utf8mb4_bin.
        type Case = (
            &'static [u8],
            &'static [u8],
            &'static [u8],
            Option<&'static [u8]>,
        );
        let cases: [Case; 5] = [
            (
                b"a ",
                &[0x00, 0x41, 0x00, 0x20],
                &[0x00, 0x41],
                Some(&[0x00, 0x20]),
            ),
            (
                b"a  ",
                &[0x0e, 0x33, 0x02, 0x09, 0x02, 0x09],
                &[0x0e, 0x33],
                Some(&[0x02, 0x09]),
            ),
            (b"a ", &[0x41, 0x20], &[0x41], Some(&[0x20])),
            (
                b"a ",
                &[0x00, 0x00, 0x61, 0x00, 0x00, 0x20],
                &[0x00, 0x00, 0x61],
                Some(&[0x00, 0x00, 0x20]),
            ),
            (b"a", &[0x00, 0x41], &[0x00, 0x41], None),
        ];
        for (value, weight, trimmed, pad) in cases {
            assert_eq!(trim_weight(value, weight), (trimmed, pad), "{value:?}");
        }
    }

    #[test]
    fn nopad_and_binary_collations_have_no_pad() {
        // utf8mb4_general_nopad_ci, binary, utf8mb4_uca1400_nopad_ai_ci, utf8mb4_uca1400_as_cs
        for id in [1069, 63, 2308, 2307] {
            assert!(pad_weight(id).is_none(), "{id}");
        }
        assert_eq!(pad_weight(2304), Some(&[0x02, 0x09][..]));
        assert_eq!(pad_weight(8), Some(&[0x20][..]));
    }
}
