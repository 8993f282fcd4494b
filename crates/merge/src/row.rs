//! Result-set rows split into cells, and written back out with hidden columns dropped.
//!
//! A row keeps its shard's payload and records where each cell lies in it, so that cells the merge does not
//! change are copied to the client byte for byte. Cells computed by the merge (aggregates) are held encoded.

use bytes::{BufMut, Bytes, BytesMut};
use shardgate_wire::WireError;
use shardgate_wire::lenenc::Reader;
use shardgate_wire::packet::{begin_packet, finish_packet, put_packet};

use crate::Protocol;
use crate::column::{Column, types};
use crate::value::int_width;

/// One cell of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    Null,
    /// The cell's encoded bytes (length prefix included) at this range of the row's payload.
    Span(usize, usize),
    /// Encoded bytes computed by the merge, or copied from another row's payload.
    Owned(Box<[u8]>),
}

/// A row payload and its cells.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    payload: Bytes,
    cells: Vec<Cell>,
}

/// The first byte of a binary-protocol row; the NULL bitmap that follows starts at bit 2.
const BINARY_ROW_HEADER: u8 = 0x00;
const BINARY_NULL_OFFSET: usize = 2;

fn malformed(detail: &str) -> WireError {
    WireError::Malformed {
        what: "result row",
        detail: detail.to_string(),
    }
}

impl Row {
    /// Splits a row payload into cells of `columns`.
    pub(crate) fn parse(
        payload: Bytes,
        columns: &[Column],
        protocol: Protocol,
    ) -> Result<Row, WireError> {
        let mut cells = Vec::with_capacity(columns.len());
        let total = payload.len();
        let mut r = Reader::new(&payload, "result row");
        match protocol {
            Protocol::Text => {
                for _ in columns {
                    let start = total - r.remaining().len();
                    // 0xFB cannot start a length-encoded string, so it marks NULL unambiguously.
                    if r.remaining().first() == Some(&0xfb) {
                        r.u8()?;
                        cells.push(Cell::Null);
                    } else {
                        r.lenenc_bytes()?;
                        cells.push(Cell::Span(start, total - r.remaining().len()));
                    }
                }
            }
            Protocol::Binary => {
                if r.u8()? != BINARY_ROW_HEADER {
                    return Err(malformed("binary row does not start with 0x00"));
                }
                let bitmap = r.take((columns.len() + 7 + BINARY_NULL_OFFSET) / 8)?;
                for (i, col) in columns.iter().enumerate() {
                    let bit = i + BINARY_NULL_OFFSET;
                    if bitmap[bit / 8] >> (bit % 8) & 1 == 1 {
                        cells.push(Cell::Null);
                        continue;
                    }
                    let start = total - r.remaining().len();
                    binary_value(&mut r, col.type_code)?;
                    cells.push(Cell::Span(start, total - r.remaining().len()));
                }
            }
        }
        if !r.is_empty() {
            return Err(malformed("bytes after the last column"));
        }
        Ok(Row { payload, cells })
    }

    /// The encoded bytes of cell `i`, `None` for NULL or a column past the end.
    pub(crate) fn cell(&self, i: usize) -> Option<&[u8]> {
        match self.cells.get(i)? {
            Cell::Null => None,
            Cell::Span(a, b) => self.payload.get(*a..*b),
            Cell::Owned(b) => Some(b),
        }
    }

    /// Replaces cell `i` with encoded bytes, or NULL.
    pub(crate) fn set(&mut self, i: usize, value: Option<Vec<u8>>) {
        if let Some(c) = self.cells.get_mut(i) {
            *c = match value {
                Some(v) => Cell::Owned(v.into_boxed_slice()),
                None => Cell::Null,
            };
        }
    }

    /// Writes the first `visible` cells as one row packet; returns the next sequence id.
    pub(crate) fn write(
        &self,
        out: &mut BytesMut,
        seq: u8,
        visible: usize,
        protocol: Protocol,
    ) -> u8 {
        let untouched = self.cells.iter().all(|c| !matches!(c, Cell::Owned(_)));
        if untouched && visible == self.cells.len() {
            return put_packet(out, seq, &self.payload);
        }
        let start = begin_packet(out);
        let shown = &self.cells[..visible.min(self.cells.len())];
        if protocol == Protocol::Binary {
            out.put_u8(BINARY_ROW_HEADER);
            let mut bitmap = vec![0u8; (shown.len() + 7 + BINARY_NULL_OFFSET) / 8];
            for (i, c) in shown.iter().enumerate() {
                if *c == Cell::Null {
                    let bit = i + BINARY_NULL_OFFSET;
                    bitmap[bit / 8] |= 1 << (bit % 8);
                }
            }
            out.put_slice(&bitmap);
        }
        for (i, c) in shown.iter().enumerate() {
            match (c, self.cell(i)) {
                (Cell::Null, _) if protocol == Protocol::Text => out.put_u8(0xfb),
                (_, Some(bytes)) => out.put_slice(bytes),
                // A binary NULL lives only in the bitmap.
                _ => {}
            }
        }
        finish_packet(out, start, seq)
    }
}

/// Skips one binary-protocol value of `type_code`.
fn binary_value(r: &mut Reader<'_>, type_code: u8) -> Result<(), WireError> {
    match type_code {
        types::TINY | types::SHORT | types::YEAR | types::LONG | types::INT24 | types::LONGLONG => {
            r.take(int_width(type_code))?;
        }
        types::FLOAT => {
            r.take(4)?;
        }
        types::DOUBLE => {
            r.take(8)?;
        }
        types::DATE | types::NEWDATE | types::DATETIME | types::TIMESTAMP | types::TIME => {
            let len = r.u8()?;
            r.take(usize::from(len))?;
        }
        types::NULL => return Err(malformed("NULL-typed column without its NULL bit")),
        // Strings, blobs, DECIMAL, BIT, ENUM, SET, JSON, geometry.
        _ => {
            r.lenenc_bytes()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardgate_wire::lenenc::put_lenenc_bytes;
    use shardgate_wire::packet::next_packet;

    fn col(type_code: u8) -> Column {
        let mut b = BytesMut::new();
        for s in ["def", "", "", "", "c", ""] {
            put_lenenc_bytes(&mut b, s.as_bytes());
        }
        b.put_slice(&[0x0c, 63, 0, 10, 0, 0, 0, type_code, 0, 0, 0, 0, 0]);
        Column::parse(&b).unwrap()
    }

    fn payload_of(framed: &[u8]) -> Vec<u8> {
        let (_, r) = next_packet(framed, 0).unwrap();
        framed[r].to_vec()
    }

    #[test]
    fn dropping_hidden_binary_columns_rebuilds_the_null_bitmap() {
        let cols = [
            col(types::LONG),
            col(0xfd),
            col(types::TINY),
            col(types::LONGLONG),
        ];
        // id=7, name=NULL, tiny=-1, hidden=NULL: NULL bits are column index + 2.
        let payload = Bytes::from_static(&[0x00, (1 << 3) | (1 << 5), 7, 0, 0, 0, 0xff]);
        let row = Row::parse(payload, &cols, Protocol::Binary).unwrap();
        let mut out = BytesMut::new();
        assert_eq!(row.write(&mut out, 4, 3, Protocol::Binary), 5);
        assert_eq!(payload_of(&out), vec![0x00, 1 << 3, 7, 0, 0, 0, 0xff]);
    }

    #[test]
    fn text_rows_keep_untouched_cells_verbatim() {
        let cols = [col(0xfd), col(0xfd), col(0xfd)];
        let row = Row::parse(
            Bytes::from_static(b"\x01a\xfb\x02bc"),
            &cols,
            Protocol::Text,
        )
        .unwrap();
        assert_eq!(row.cell(0), Some(&b"\x01a"[..]));
        assert_eq!(row.cell(1), None);
        let mut out = BytesMut::new();
        row.write(&mut out, 0, 2, Protocol::Text);
        assert_eq!(payload_of(&out), b"\x01a\xfb".to_vec());
    }

    #[test]
    fn short_or_overlong_rows_are_errors() {
        let cols = [col(types::LONG), col(0xfd)];
        for bad in [
            &b""[..],
            b"\x00",
            b"\x00\x00\x01\x00",
            b"\x01\x00\x01\x00\x00\x00\x00",
            b"\x00\x00\x01\x00\x00\x00\x00\x00",
        ] {
            assert!(
                Row::parse(Bytes::copy_from_slice(bad), &cols, Protocol::Binary).is_err(),
                "{bad:?}"
            );
        }
        assert!(Row::parse(Bytes::from_static(b"\x05ab"), &cols, Protocol::Text).is_err());
        assert!(
            Row::parse(
                Bytes::from_static(b"\x01a\x01b\x01c"),
                &cols,
                Protocol::Text
            )
            .is_err()
        );
    }
}
