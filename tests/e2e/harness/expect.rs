//! Checks on errors as clients see them: a MySQL error code, an SQLSTATE and a message, whether they come through
//! mysql_async or through the raw client.

use std::fmt::Debug;

use super::raw;

/// MySQL error codes and SQLSTATEs the tests expect, named once.
pub mod codes {
    /// `ER_ACCESS_DENIED_ERROR`.
    pub const ACCESS_DENIED: (u16, &str) = (1045, "28000");
    /// `ER_UNKNOWN_COM_ERROR`.
    pub const UNKNOWN_COMMAND: (u16, &str) = (1047, "08S01");
    /// `ER_BAD_DB_ERROR`.
    pub const UNKNOWN_DATABASE: (u16, &str) = (1049, "42000");
    /// `ER_PARSE_ERROR`.
    pub const PARSE_ERROR: (u16, &str) = (1064, "42000");
    /// `ER_NET_PACKET_TOO_LARGE`.
    pub const PACKET_TOO_LARGE: (u16, &str) = (1153, "08S01");
    /// `ER_NOT_SUPPORTED_YET`: what the proxy answers to a statement it cannot route.
    pub const NOT_SUPPORTED_YET: (u16, &str) = (1235, "42000");
    /// ER_BAD_FIELD_ERROR: a column that does not exist.
    pub const BAD_FIELD: (u16, &str) = (1054, "42S22");
    /// ER_UNKNOWN_SYSTEM_VARIABLE: SET of a variable the server does not have.
    pub const UNKNOWN_SYSTEM_VARIABLE: (u16, &str) = (1193, "HY000");
    /// ER_WRONG_VALUE_FOR_VAR: a value the variable cannot take.
    pub const WRONG_VALUE_FOR_VAR: (u16, &str) = (1231, "42000");
    /// ER_CANT_CHANGE_TX_CHARACTERISTICS: SET TRANSACTION inside a transaction.
    pub const CANT_CHANGE_TX_CHARACTERISTICS: (u16, &str) = (1568, "25001");
    /// ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION.
    pub const READ_ONLY_TRANSACTION: (u16, &str) = (1792, "25006");
    /// ER_LOCK_DEADLOCK.
    pub const DEADLOCK: (u16, &str) = (1213, "40001");
    /// ER_SP_DOES_NOT_EXIST: ROLLBACK TO a savepoint that does not exist.
    pub const SP_DOES_NOT_EXIST: (u16, &str) = (1305, "42000");
    /// `ER_UNKNOWN_CHARACTER_SET`: `SET NAMES` of a character set nobody knows.
    pub const UNKNOWN_CHARACTER_SET: (u16, &str) = (1115, "42000");
    /// `ER_QUERY_ON_FOREIGN_DATA_SOURCE`: what the proxy answers when DDL fan-out failed on some shards.
    pub const DDL_FAN_OUT_FAILED: (u16, &str) = (1430, "HY000");
}

/// Asserts that `result` failed with a server error `(code, state)`; returns the message.
pub fn server_error<T: Debug>(
    result: Result<T, mysql_async::Error>,
    (code, state): (u16, &str),
    what: &str,
) -> String {
    match result {
        Err(mysql_async::Error::Server(err)) => {
            assert_eq!(
                (err.code, err.state.as_str()),
                (code, state),
                "{what}: wrong error code/SQLSTATE (message: {:?})",
                err.message
            );
            err.message
        }
        Err(other) => panic!(
            "{what}: expected server error {code} ({state}), got a client-side error: {other:?}"
        ),
        Ok(value) => {
            panic!("{what}: expected server error {code} ({state}), but it succeeded: {value:?}")
        }
    }
}

/// Asserts that a raw ERR packet is `(code, state)`; returns the message.
pub fn raw_error(err: &raw::ServerError, (code, state): (u16, &str), what: &str) -> String {
    assert_eq!(
        (err.code, err.state.as_str()),
        (code, state),
        "{what}: wrong error code/SQLSTATE (message: {:?})",
        err.message
    );
    err.message.clone()
}
