//! Validation: an unchecked [`TopologySpec`] becomes an immutable [`Topology`], or every problem
//! in it is listed at once.
//!
//! Place in the data path: before a snapshot is swapped in. A topology that fails here is never
//! served; the proxy keeps the snapshot it has. This module must not know routing or sockets: it
//! checks names, references and key-space coverage, then indexes the result for lookups.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::key_range::range_of_name;
use crate::moves::{Move, MoveSpec};
use crate::spec::{BackendSpec, PinSpec, ShardSpec, TableSpec, TableType, TopologySpec};
use crate::{
    AutoIncrement, Backend, KeyRange, Pin, Problem, Shard, ShardId, TableRule, Topology,
    TopologyError,
};

/// The size of the key space, one past the largest keyspace id: `2^64`.
const SPACE_END: u128 = 1 << 64;

/// MySQL's longest database name.
const MAX_DATABASE_LEN: usize = 64;

/// Checks every rule and builds the snapshot; see [`TopologySpec::validate`].
pub(crate) fn validate(spec: &TopologySpec) -> Result<Topology, TopologyError> {
    let mut problems = Vec::new();
    require_text(&mut problems, "keyspace".to_owned(), &spec.keyspace);
    require_text(
        &mut problems,
        "sharding_column".to_owned(),
        &spec.sharding_column,
    );
    check_tables(&mut problems, &spec.tables);
    let backend_index = check_backends(&mut problems, &spec.backends);
    let ranges = check_shards(&mut problems, &spec.shards, &backend_index);
    let shard_names: HashMap<&str, usize> = spec
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    check_pins(&mut problems, &spec.pins, &shard_names);
    check_moves(&mut problems, &spec.moves, &shard_names);
    // Coverage is only meaningful when every name parsed; a bad name is reported on its own.
    if let Some(ranges) = &ranges {
        if ranges.is_empty() && !spec.shards.is_empty() {
            // Dedicated shards alone own no key: the key space needs key-range shards.
            problems.push(Problem::NoShards);
        }
        check_coverage(&mut problems, ranges);
    }
    if !problems.is_empty() {
        return Err(TopologyError::Invalid { problems });
    }
    Ok(build(spec, &backend_index))
}

fn require_text(problems: &mut Vec<Problem>, field: String, value: &str) {
    if value.trim().is_empty() {
        problems.push(Problem::Empty { field });
    }
}

fn check_tables(problems: &mut Vec<Problem>, tables: &[TableSpec]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, table) in tables.iter().enumerate() {
        require_text(problems, format!("tables[{i}].name"), &table.name);
        match table.kind {
            TableType::Sharded => {
                if let Some(column) = &table.column {
                    require_text(problems, format!("tables[{i}].column"), column);
                }
                if let Some(auto) = &table.auto_increment {
                    check_auto_increment(problems, i, auto, tables);
                }
            }
            TableType::Reference => {
                let given = [
                    ("column", table.column.is_some()),
                    ("vindex", table.vindex.is_some()),
                    ("auto_increment", table.auto_increment.is_some()),
                ];
                for (what, _) in given.into_iter().filter(|(_, given)| *given) {
                    problems.push(Problem::ShardingOfReferenceTable {
                        field: format!("tables[{i}].{what}"),
                        name: table.name.clone(),
                        what,
                    });
                }
            }
        }
        match seen.entry(table.name.as_str()) {
            Entry::Occupied(first) => problems.push(Problem::DuplicateTable {
                field: format!("tables[{i}].name"),
                name: table.name.clone(),
                first: format!("tables[{}]", first.get()),
            }),
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
}

/// Checks the sequence column of `tables[i]`: a column, and a sequence name that can go between
/// backticks unescaped and is not a listed table (the sequence table lives on the first shard,
/// next to that shard's copy of every sharded table).
fn check_auto_increment(
    problems: &mut Vec<Problem>,
    i: usize,
    auto: &AutoIncrement,
    tables: &[TableSpec],
) {
    require_text(
        problems,
        format!("tables[{i}].auto_increment.column"),
        &auto.column,
    );
    let field = format!("tables[{i}].auto_increment.sequence");
    if auto.sequence.is_empty() {
        problems.push(Problem::Empty { field });
    } else if !is_safe_identifier(&auto.sequence) {
        problems.push(Problem::UnsafeSequence {
            field,
            sequence: auto.sequence.clone(),
        });
    } else if let Some(at) = tables.iter().position(|t| t.name == auto.sequence) {
        problems.push(Problem::SequenceIsTable {
            field,
            sequence: auto.sequence.clone(),
            table: format!("tables[{at}]"),
        });
    }
}

/// Checks backends; returns name -> index of the first backend with each name.
fn check_backends<'a>(
    problems: &mut Vec<Problem>,
    backends: &'a [BackendSpec],
) -> HashMap<&'a str, usize> {
    let mut index = HashMap::new();
    for (i, backend) in backends.iter().enumerate() {
        require_text(problems, format!("backends[{i}].name"), &backend.name);
        require_text(problems, format!("backends[{i}].host"), &backend.host);
        if backend.port == 0 {
            problems.push(Problem::ZeroPort {
                field: format!("backends[{i}].port"),
            });
        }
        match index.entry(backend.name.as_str()) {
            Entry::Occupied(first) => problems.push(Problem::DuplicateBackend {
                field: format!("backends[{i}].name"),
                name: backend.name.clone(),
                first: format!("backends[{}]", first.get()),
            }),
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
    index
}

/// Checks shards; returns every shard's (name, range) when all names parsed.
fn check_shards<'a>(
    problems: &mut Vec<Problem>,
    shards: &'a [ShardSpec],
    backends: &HashMap<&str, usize>,
) -> Option<Vec<(&'a str, KeyRange)>> {
    if shards.is_empty() {
        problems.push(Problem::NoShards);
    }
    let mut ranges = Some(Vec::with_capacity(shards.len()));
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut databases: HashMap<(&str, &str), &str> = HashMap::new();
    for (i, shard) in shards.iter().enumerate() {
        if shard.dedicated {
            let plain = !shard.name.is_empty()
                && shard
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !plain || range_of_name(&shard.name).is_ok() {
                problems.push(Problem::BadDedicatedName {
                    field: format!("shards[{i}].name"),
                    name: shard.name.clone(),
                });
            }
        }
        match range_of_name(&shard.name) {
            _ if shard.dedicated => {}
            Ok(range) => ranges
                .iter_mut()
                .for_each(|r| r.push((shard.name.as_str(), range))),
            Err(fault) => {
                problems.push(Problem::BadShardName {
                    field: format!("shards[{i}].name"),
                    name: shard.name.clone(),
                    fault,
                });
                ranges = None;
            }
        }
        match names.entry(shard.name.as_str()) {
            Entry::Occupied(first) => problems.push(Problem::DuplicateShard {
                field: format!("shards[{i}].name"),
                name: shard.name.clone(),
                first: format!("shards[{}]", first.get()),
            }),
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
        if !backends.contains_key(shard.backend.as_str()) {
            problems.push(Problem::UnknownBackend {
                field: format!("shards[{i}].backend"),
                backend: shard.backend.clone(),
            });
        }
        let field = format!("shards[{i}].database");
        if shard.database.is_empty() {
            problems.push(Problem::Empty { field });
        } else if !is_safe_identifier(&shard.database) {
            problems.push(Problem::UnsafeDatabase {
                field,
                database: shard.database.clone(),
            });
        } else if let Some(other) = databases.insert((&shard.backend, &shard.database), &shard.name)
        {
            problems.push(Problem::SharedDatabase {
                field,
                database: shard.database.clone(),
                backend: shard.backend.clone(),
                other: other.to_owned(),
            });
        }
    }
    ranges
}

/// `[A-Za-z0-9_$]+`, at most 64 bytes (MySQL's longest database and table name): safe to put
/// between backticks with no escaping.
fn is_safe_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_DATABASE_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

fn check_moves(problems: &mut Vec<Problem>, moves: &[MoveSpec], shards: &HashMap<&str, usize>) {
    for (i, m) in moves.iter().enumerate() {
        require_text(problems, format!("moves[{i}].workflow"), &m.workflow);
        if !shards.contains_key(m.shard.as_str()) {
            problems.push(Problem::UnknownMoveShard {
                field: format!("moves[{i}].shard"),
                shard: m.shard.clone(),
            });
        }
    }
}

fn check_pins(problems: &mut Vec<Problem>, pins: &[PinSpec], shards: &HashMap<&str, usize>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, pin) in pins.iter().enumerate() {
        if !shards.contains_key(pin.shard.as_str()) {
            problems.push(Problem::UnknownPinShard {
                field: format!("pins[{i}].shard"),
                shard: pin.shard.clone(),
            });
        }
        match seen.entry(pin.tenant.canonical_text()) {
            Entry::Occupied(first) => problems.push(Problem::DuplicatePin {
                field: format!("pins[{i}].tenant"),
                tenant: pin.tenant.to_string(),
                first: format!("pins[{}]", first.get()),
            }),
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
}

/// Walks the ranges in key order and reports every gap and overlap.
fn check_coverage(problems: &mut Vec<Problem>, ranges: &[(&str, KeyRange)]) {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|(_, range)| (range.start, range.end_u128()));
    // Everything below `reach` is owned; `owner` is the shard whose end is `reach`.
    let mut reach: u128 = 0;
    let mut owner: Option<&str> = None;
    for (name, range) in sorted {
        let start = u128::from(range.start);
        let end = range.end_u128();
        if start > reach {
            problems.push(Problem::Gap {
                range: span(reach, start),
                after: owner.map_or_else(|| "the bottom of the key space".to_owned(), quote),
                before: quote(name),
            });
        } else if start < reach {
            problems.push(Problem::Overlap {
                range: span(start, reach.min(end)),
                first: owner.unwrap_or_default().to_owned(),
                second: name.to_owned(),
            });
        }
        if end > reach {
            reach = end;
            owner = Some(name);
        }
    }
    if reach < SPACE_END && owner.is_some() {
        problems.push(Problem::Gap {
            range: span(reach, SPACE_END),
            after: owner.map_or_else(|| "the bottom of the key space".to_owned(), quote),
            before: "the top of the key space".to_owned(),
        });
    }
}

fn quote(name: &str) -> String {
    format!("{name:?}")
}

/// `[start, end)` with `end == 2^64` meaning the top; both are within `0..=2^64` here.
fn span(start: u128, end: u128) -> KeyRange {
    KeyRange {
        start: u64::try_from(start).unwrap_or(u64::MAX),
        end: u64::try_from(end).ok(),
    }
}

/// Indexes a spec that passed every check.
fn build(spec: &TopologySpec, backend_index: &HashMap<&str, usize>) -> Topology {
    let mut order: Vec<(KeyRange, &ShardSpec)> = spec
        .shards
        .iter()
        .filter(|s| !s.dedicated)
        .filter_map(|s| range_of_name(&s.name).ok().map(|range| (range, s)))
        .collect();
    order.sort_by_key(|(range, _)| range.start);
    // Dedicated shards after the key ranges, in file order, with an empty range.
    let empty = KeyRange {
        start: 0,
        end: Some(0),
    };
    order.extend(
        spec.shards
            .iter()
            .filter(|s| s.dedicated)
            .map(|s| (empty, s)),
    );
    let shards: Vec<Shard> = order
        .into_iter()
        .zip(0u32..)
        .map(|((range, s), id)| Shard {
            id: ShardId(id),
            name: s.name.clone(),
            range,
            dedicated: s.dedicated,
            backend: backend_index
                .get(s.backend.as_str())
                .copied()
                .unwrap_or_default(),
            database: s.database.clone(),
        })
        .collect();
    let shard_index: HashMap<String, ShardId> =
        shards.iter().map(|s| (s.name.clone(), s.id)).collect();
    let pins: Vec<Pin> = spec
        .pins
        .iter()
        .filter_map(|p| {
            shard_index.get(&p.shard).map(|&shard| Pin {
                tenant: p.tenant.clone(),
                shard,
            })
        })
        .collect();
    let moves: Vec<Move> = spec
        .moves
        .iter()
        .filter_map(|m| shard_index.get(&m.shard).map(|&shard| Move::new(m, shard)))
        .collect();
    let tables: Vec<TableRule> = spec
        .tables
        .iter()
        .filter(|t| t.kind == TableType::Sharded)
        .map(|t| TableRule {
            name: t.name.clone(),
            column: t
                .column
                .clone()
                .unwrap_or_else(|| spec.sharding_column.clone()),
            vindex: t.vindex.unwrap_or_default(),
            auto_increment: t.auto_increment.clone(),
        })
        .collect();
    let references: Vec<String> = spec
        .tables
        .iter()
        .filter(|t| t.kind == TableType::Reference)
        .map(|t| t.name.clone())
        .collect();
    let backends = spec
        .backends
        .iter()
        .map(|b| Backend {
            name: b.name.clone(),
            host: b.host.clone(),
            port: b.port,
        })
        .collect();
    Topology::from_parts(
        spec.version,
        spec.keyspace.clone(),
        spec.sharding_column.clone(),
        (tables, references),
        backends,
        shards,
        (pins, moves),
    )
}

#[cfg(test)]
mod tests;
