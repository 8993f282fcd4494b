//! What a client session has set that its statements need on whichever backend connection runs them.
//!
//! Backend connections are shared between sessions one statement (or one transaction) at a time, so a session's
//! character set and session variables cannot live on a connection. The session keeps them here; every backend
//! connection remembers which settings it carries, and before a statement runs on it the difference is applied in
//! one `SET` (ProxySQL does the same). A connection that carries another session's variables gets them reset to
//! `DEFAULT`, so nothing one session set is seen by another.

use std::sync::Arc;

/// A session's settings. Compared often (before every statement), changed rarely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// The `SET NAMES` argument (`utf8mb4`, `latin1 COLLATE latin1_bin`, `DEFAULT`).
    pub names: String,
    /// Variables the client set: lower-case name (user variables with their `@`) and the value as a SQL literal,
    /// sorted by name.
    /// Values are what the server resolved when the client set them, never the client's expression, so replaying
    /// one on another connection gives the same value.
    vars: Vec<(String, String)>,
}

impl SessionSettings {
    /// Settings with the character set `names` and no variables.
    pub fn new(names: &str) -> Self {
        Self {
            names: names.to_string(),
            vars: Vec::new(),
        }
    }

    /// The value literal of variable `name` (lower case), if the session set it.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.vars[i].1.as_str())
    }

    /// These settings with variable `name` (lower case) set to `literal`.
    pub fn with_var(&self, name: &str, literal: &str) -> Self {
        let mut next = self.clone();
        match next.vars.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => next.vars[i].1 = literal.to_string(),
            Err(i) => next.vars.insert(i, (name.to_string(), literal.to_string())),
        }
        next
    }

    /// These settings without variable `name` (lower case): the server default applies.
    pub fn without_var(&self, name: &str) -> Self {
        let mut next = self.clone();
        next.vars.retain(|(n, _)| n != name);
        next
    }

    /// The statements that take a connection carrying `from` to these settings, in order (none when equal).
    pub fn transition_from(&self, from: &SessionSettings) -> Vec<String> {
        let mut statements = Vec::new();
        if self.names != from.names {
            statements.push(format!("SET NAMES {}", self.names));
        }
        let mut assignments = Vec::new();
        for (name, _) in &from.vars {
            if self.var(name).is_none() {
                // A user variable cannot be unset; NULL is what reading an unset one gives.
                let reset = if name.starts_with('@') {
                    "NULL"
                } else {
                    "DEFAULT"
                };
                assignments.push(format!("{} = {reset}", target(name)));
            }
        }
        for (name, value) in &self.vars {
            if from.var(name) != Some(value.as_str()) {
                assignments.push(format!("{} = {value}", target(name)));
            }
        }
        if !assignments.is_empty() {
            statements.push(format!("SET {}", assignments.join(", ")));
        }
        statements
    }
}

/// The left side of an assignment to `name`: `@x` for a user variable (stored with its `@`), `@@SESSION.x` for a
/// system variable.
pub fn target(name: &str) -> String {
    if name.starts_with('@') {
        name.to_string()
    } else {
        format!("@@SESSION.{name}")
    }
}

/// Whether a connection carrying `applied` needs no change to serve `wanted`: the common case, checked first by
/// pointer (a session's settings are one `Arc` until it changes them).
pub fn same(applied: &Arc<SessionSettings>, wanted: &Arc<SessionSettings>) -> bool {
    Arc::ptr_eq(applied, wanted) || applied == wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_settings_need_no_statement() {
        let a = SessionSettings::new("utf8mb4").with_var("sql_mode", "'ANSI'");
        let b = SessionSettings::new("utf8mb4").with_var("sql_mode", "'ANSI'");
        assert!(a.transition_from(&b).is_empty());
    }

    #[test]
    fn another_sessions_variables_are_reset_and_ours_applied() {
        let theirs = SessionSettings::new("latin1")
            .with_var("sql_mode", "'ANSI'")
            .with_var("autocommit", "0");
        let ours = SessionSettings::new("utf8mb4").with_var("wait_timeout", "60");
        assert_eq!(
            ours.transition_from(&theirs),
            [
                "SET NAMES utf8mb4",
                "SET @@SESSION.autocommit = DEFAULT, @@SESSION.sql_mode = DEFAULT, @@SESSION.wait_timeout = 60"
            ]
        );
    }

    #[test]
    fn setting_a_variable_again_replaces_its_value() {
        let s = SessionSettings::new("utf8mb4")
            .with_var("sql_mode", "'ANSI'")
            .with_var("sql_mode", "''");
        assert_eq!(s.var("sql_mode"), Some("''"));
        let before = SessionSettings::new("utf8mb4").with_var("sql_mode", "'ANSI'");
        assert_eq!(s.transition_from(&before), ["SET @@SESSION.sql_mode = ''"]);
    }

    #[test]
    fn user_variables_are_set_and_cleared_with_their_at_sign() {
        let theirs = SessionSettings::new("utf8mb4").with_var("@secret", "'x'");
        let ours = SessionSettings::new("utf8mb4").with_var("@mine", "42");
        assert_eq!(
            ours.transition_from(&theirs),
            ["SET @secret = NULL, @mine = 42"]
        );
    }
}
