//! The one place where failures become MySQL error codes and SQLSTATEs.
//!
//! Every ERR packet the proxy writes is built from a [`MysqlError`]; every code is a named constant from the MySQL
//! or MariaDB server error list, chosen so that a client library reacts as it would to the real server.

use std::borrow::Cow;

/// A MySQL server error number and its SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    pub code: u16,
    pub state: &'static str,
}

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $state:literal;)*) => {
        $( $(#[$doc])* pub const $name: ErrorCode = ErrorCode { code: $code, state: $state }; )*
    };
}

codes! {
    /// A transaction whose keys changed shards under it (a resharding cutover): it was rolled back and can be
    /// retried, as after a deadlock.
    ER_RESTART_TRANSACTION = 1213, "40001";
    /// Too many client connections, or a shard's pool exhausted for longer than the acquire timeout.
    ER_CON_COUNT_ERROR = 1040, "08004";
    /// The handshake response could not be decoded.
    ER_HANDSHAKE_ERROR = 1043, "08S01";
    /// Wrong user or password.
    ER_ACCESS_DENIED_ERROR = 1045, "28000";
    /// A command byte the proxy does not implement.
    ER_UNKNOWN_COM_ERROR = 1047, "08S01";
    /// USE or COM_INIT_DB of a database that is not the keyspace.
    ER_BAD_DB_ERROR = 1049, "42000";
    /// The proxy is shutting down.
    ER_SERVER_SHUTDOWN = 1053, "08S01";
    /// CREATE TEMPORARY TABLE of a name the session already has.
    ER_TABLE_EXISTS_ERROR = 1050, "42S01";
    /// DROP TEMPORARY TABLE of a table the session did not create.
    ER_BAD_TABLE_ERROR = 1051, "42S02";
    /// The statement does not parse.
    ER_PARSE_ERROR = 1064, "42000";
    /// The statement is empty (only blanks or comments).
    ER_EMPTY_QUERY = 1065, "42000";
    /// SET NAMES of a character set the proxy does not know.
    ER_UNKNOWN_CHARACTER_SET = 1115, "42000";
    /// COMMIT failed on a shard of a transaction.
    ER_ERROR_DURING_COMMIT = 1180, "HY000";
    /// A client packet larger than max_allowed_packet.
    ER_NET_PACKET_TOO_LARGE = 1153, "08S01";
    /// The backend connection broke during a statement.
    ER_NET_READ_ERROR = 1158, "08S01";
    /// A COM_STMT_EXECUTE whose parameters cannot be read.
    ER_WRONG_ARGUMENTS = 1210, "HY000";
    /// A value a session variable cannot take (autocommit = 'maybe').
    ER_WRONG_VALUE_FOR_VAR = 1231, "42000";
    /// A statement shape shardgate cannot run correctly (yet).
    ER_NOT_SUPPORTED_YET = 1235, "42000";
    /// A prepared statement id the session does not have.
    ER_UNKNOWN_STMT_HANDLER = 1243, "HY000";
    /// The client's auth plugin cannot be served.
    ER_NOT_SUPPORTED_AUTH_MODE = 1251, "08004";
    /// ROLLBACK TO or RELEASE of a savepoint that does not exist.
    ER_SP_DOES_NOT_EXIST = 1305, "42000";
    /// COM_STMT_FETCH: the proxy never opens cursors.
    ER_STMT_HAS_NO_OPEN_CURSOR = 1421, "HY000";
    /// A shard's backend cannot be reached.
    ER_CONNECT_TO_FOREIGN_DATA_SOURCE = 1429, "HY000";
    /// DDL fan-out failed on some shards.
    ER_QUERY_ON_FOREIGN_DATA_SOURCE = 1430, "HY000";
    /// SET TRANSACTION inside a transaction.
    ER_CANT_CHANGE_TX_CHARACTERISTICS = 1568, "25001";
    /// A session holds too many prepared statements.
    ER_MAX_PREPARED_STMT_COUNT_REACHED = 1461, "42000";
    /// A statement ran past `statement_timeout_ms` (MariaDB's own error for max_statement_time).
    ER_STATEMENT_TIMEOUT = 1969, "70100";
}

/// An error on its way to a client: code, SQLSTATE and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlError {
    pub code: u16,
    /// Five-character SQLSTATE.
    pub state: Cow<'static, str>,
    pub message: String,
}

impl MysqlError {
    /// One of the proxy's own errors.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        MysqlError {
            code: code.code,
            state: Cow::Borrowed(code.state),
            message: message.into(),
        }
    }

    /// An error a backend answered with, passed on unchanged.
    pub fn from_backend(code: u16, state: String, message: String) -> Self {
        MysqlError {
            code,
            state: Cow::Owned(state),
            message,
        }
    }
}

impl From<&shardgate_sql::SqlError> for MysqlError {
    fn from(e: &shardgate_sql::SqlError) -> Self {
        use shardgate_sql::SqlError as S;
        let code = match e {
            S::Parse { .. } => ER_PARSE_ERROR,
            S::Empty => ER_EMPTY_QUERY,
            _ => ER_NOT_SUPPORTED_YET,
        };
        MysqlError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_states_match_the_server_error_list() {
        let table = [
            (ER_CON_COUNT_ERROR, 1040, "08004"),
            (ER_HANDSHAKE_ERROR, 1043, "08S01"),
            (ER_ACCESS_DENIED_ERROR, 1045, "28000"),
            (ER_UNKNOWN_COM_ERROR, 1047, "08S01"),
            (ER_BAD_DB_ERROR, 1049, "42000"),
            (ER_TABLE_EXISTS_ERROR, 1050, "42S01"),
            (ER_BAD_TABLE_ERROR, 1051, "42S02"),
            (ER_SERVER_SHUTDOWN, 1053, "08S01"),
            (ER_PARSE_ERROR, 1064, "42000"),
            (ER_EMPTY_QUERY, 1065, "42000"),
            (ER_UNKNOWN_CHARACTER_SET, 1115, "42000"),
            (ER_NET_PACKET_TOO_LARGE, 1153, "08S01"),
            (ER_NET_READ_ERROR, 1158, "08S01"),
            (ER_ERROR_DURING_COMMIT, 1180, "HY000"),
            (ER_WRONG_ARGUMENTS, 1210, "HY000"),
            (ER_WRONG_VALUE_FOR_VAR, 1231, "42000"),
            (ER_NOT_SUPPORTED_YET, 1235, "42000"),
            (ER_UNKNOWN_STMT_HANDLER, 1243, "HY000"),
            (ER_NOT_SUPPORTED_AUTH_MODE, 1251, "08004"),
            (ER_SP_DOES_NOT_EXIST, 1305, "42000"),
            (ER_CONNECT_TO_FOREIGN_DATA_SOURCE, 1429, "HY000"),
            (ER_STMT_HAS_NO_OPEN_CURSOR, 1421, "HY000"),
            (ER_QUERY_ON_FOREIGN_DATA_SOURCE, 1430, "HY000"),
            (ER_MAX_PREPARED_STMT_COUNT_REACHED, 1461, "42000"),
            (ER_CANT_CHANGE_TX_CHARACTERISTICS, 1568, "25001"),
            (ER_STATEMENT_TIMEOUT, 1969, "70100"),
        ];
        for (c, code, state) in table {
            assert_eq!((c.code, c.state), (code, state));
            assert_eq!(c.state.len(), 5);
        }
    }
}
