//! Keys on the move: the part of a resharding workflow every proxy must know about.
//!
//! A controller (`shardctl reshard`) writes one [`MoveSpec`] per source shard into the topology while it moves
//! rows. Routing does not change until the workflow flips ownership in a later version; what a move tells a proxy
//! is how to treat statements for the moving keys meanwhile:
//! - `dual_write`: nothing yet. Writes go to the source, where the workflow's change capture records them.
//! - `hold`: the cutover is under way. New statements for the moving keys wait (at most `hold_ms` plus a grace)
//!   for a version that ends the hold, then run where that version sends them.
//! - `cleanup`: ownership has flipped but the source still holds copies of the moved rows until the workflow
//!   completes; a statement that would read every shard (and so count those rows twice) is refused.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::tenant::parse_unsigned_decimal;
use crate::{PinTenant, ShardId, TenantRef};

/// What proxies do about a move; see the module documentation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveState {
    DualWrite,
    Hold,
    Cleanup,
}

/// The longest a cutover may hold statements unless the workflow says otherwise.
pub const DEFAULT_HOLD_MS: u64 = 2_000;

fn default_hold_ms() -> u64 {
    DEFAULT_HOLD_MS
}

/// One source shard of a resharding workflow, as written in the topology file.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveSpec {
    /// The workflow moving the keys.
    pub workflow: String,
    /// The shard the keys leave.
    pub shard: String,
    /// The tenants that move; empty when every key of the shard moves (a split or a merge).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<PinTenant>,
    pub state: MoveState,
    /// The cutover's bound on holding a statement.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
}

/// A validated move of one snapshot.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Move {
    pub workflow: String,
    pub shard: ShardId,
    /// The moving tenants as written; empty: the whole shard.
    listed: Vec<PinTenant>,
    /// Canonical text of each.
    tenants: HashSet<String>,
    pub state: MoveState,
    pub hold: Duration,
}

impl Move {
    pub(crate) fn new(spec: &MoveSpec, shard: ShardId) -> Move {
        Move {
            workflow: spec.workflow.clone(),
            shard,
            listed: spec.tenants.clone(),
            tenants: spec.tenants.iter().map(PinTenant::canonical_text).collect(),
            state: spec.state,
            hold: Duration::from_millis(spec.hold_ms),
        }
    }

    /// The moving tenants as written; empty when the whole shard moves.
    pub fn tenants(&self) -> Vec<PinTenant> {
        self.listed.clone()
    }

    /// Whether every key of the shard moves.
    pub fn whole_shard(&self) -> bool {
        self.tenants.is_empty()
    }

    /// Whether a statement for `tenant` on `shard` touches the moving keys. `None` (a statement that is not
    /// limited to one tenant) touches them whenever it runs on the shard.
    pub fn covers(&self, shard: ShardId, tenant: Option<TenantRef<'_>>) -> bool {
        if shard != self.shard {
            return false;
        }
        if self.whole_shard() {
            return true;
        }
        match tenant {
            None => true,
            Some(TenantRef::Int(n)) => self.tenants.contains(&n.to_string()),
            // '042' is tenant 42 on a hash table; either spelling may be the one listed.
            Some(TenantRef::Str(s)) => {
                self.tenants.contains(s)
                    || parse_unsigned_decimal(s)
                        .is_ok_and(|n| self.tenants.contains(&n.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(tenants: Vec<PinTenant>) -> MoveSpec {
        MoveSpec {
            workflow: "wf".into(),
            shard: "-80".into(),
            tenants,
            state: MoveState::Hold,
            hold_ms: DEFAULT_HOLD_MS,
        }
    }

    #[test]
    fn a_tenant_move_covers_its_tenants_on_its_shard_and_unknown_tenants_there() {
        let m = Move::new(
            &spec(vec![PinTenant::Int(42), PinTenant::Str("acme".into())]),
            ShardId(3),
        );
        assert!(m.covers(ShardId(3), Some(TenantRef::Int(42))));
        assert!(m.covers(ShardId(3), Some(TenantRef::Str("042"))));
        assert!(m.covers(ShardId(3), Some(TenantRef::Str("acme"))));
        assert!(!m.covers(ShardId(3), Some(TenantRef::Int(7))));
        assert!(!m.covers(ShardId(3), Some(TenantRef::Str("ACME"))));
        assert!(!m.covers(ShardId(4), Some(TenantRef::Int(42))));
        assert!(
            m.covers(ShardId(3), None),
            "a scatter reaches the moving rows"
        );
        assert!(!m.covers(ShardId(2), None));
    }

    #[test]
    fn a_shard_move_covers_every_key_of_the_shard() {
        let m = Move::new(&spec(vec![]), ShardId(0));
        assert!(m.whole_shard());
        assert!(m.covers(ShardId(0), Some(TenantRef::Int(7))));
        assert!(!m.covers(ShardId(1), Some(TenantRef::Int(7))));
        assert_eq!(m.hold, Duration::from_secs(2));
    }
}
