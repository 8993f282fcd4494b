//! Rewrites a statement that the proxy must partly answer itself before a shard runs it.
//!
//! A shard would answer `DATABASE()` with its own schema name and `@@socket` with its own socket path (which
//! mysql_async then connects to directly, bypassing the proxy). [`substitute`] replaces such calls and variables with
//! the values the proxy gives, keeping the column names a client sees: at the top level of a select list the value
//! gets an alias spelled as the original expression (`SELECT 'app' AS `DATABASE()``).
//!
//! Text inside strings, quoted identifiers and comments is never touched.

use crate::scan::{is_word, skip_quoted};

/// The values the proxy answers with.
#[derive(Debug, Clone, Copy)]
pub struct ProxyValues<'a> {
    /// What `DATABASE()` and `SCHEMA()` return (`None` gives NULL).
    pub database: Option<&'a str>,
    /// System variables answered by the proxy: name (lower case, no `@@`) and the SQL literal to put in its place.
    pub variables: &'a [(&'a str, &'a str)],
    /// Functions without arguments answered by the proxy (`LAST_INSERT_ID`, `ROW_COUNT`): name (upper case) and
    /// the SQL literal to put in place of the call.
    pub functions: &'a [(&'a str, &'a str)],
}

/// Returns the rewritten statement, or `None` when nothing in it needed the proxy's values.
pub fn substitute(sql: &str, values: &ProxyValues<'_>) -> Option<String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 32);
    let mut copied = 0;
    let mut depth = 0usize;
    let mut changed = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' | b'`' => i = skip_quoted(b, i),
            b'#' => i = skip_line(b, i),
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                i = skip_line(b, i)
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'@' if b.get(i + 1) == Some(&b'@') => {
                let end = dotted_word_end(b, i + 2);
                let word = &sql[i + 2..end];
                let name = strip_scope(word).to_ascii_lowercase();
                if let Some((_, literal)) = values.variables.iter().find(|(n, _)| *n == name) {
                    out.push_str(&sql[copied..i]);
                    put_value(
                        &mut out,
                        literal,
                        &sql[i..end],
                        depth == 0 && ends_item(sql, end),
                    );
                    copied = end;
                    changed = true;
                }
                i = end;
            }
            c if is_word(c)
                && (i == 0 || !is_word(b[i - 1]) && b[i - 1] != b'.' && b[i - 1] != b'@') =>
            {
                let end = dotted_word_end(b, i);
                let word = &sql[i..end];
                let call_end = empty_call_end(b, end);
                // Only an empty call `name()` can be a value the proxy answers.
                let literal = call_end.and_then(|_| {
                    if word.eq_ignore_ascii_case("database") || word.eq_ignore_ascii_case("schema")
                    {
                        return Some(
                            values
                                .database
                                .map_or_else(|| "NULL".to_string(), quote_string),
                        );
                    }
                    values
                        .functions
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(word))
                        .map(|(_, literal)| literal.to_string())
                });
                match (call_end, literal) {
                    (Some(call_end), Some(literal)) => {
                        out.push_str(&sql[copied..i]);
                        put_value(
                            &mut out,
                            &literal,
                            &sql[i..call_end],
                            depth == 0 && ends_item(sql, call_end),
                        );
                        copied = call_end;
                        changed = true;
                        i = call_end;
                    }
                    _ => i = end,
                }
            }
            _ => i += 1,
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&sql[copied..]);
    Some(out)
}

/// Why a statement's executable comments cannot be unwrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadExecutableComment(pub &'static str);

/// The statement with its executable comments resolved as a server of version `server_version` (MySQL-style
/// number: 10.11.6 is 101106) would read it: `/*!NNNNN body */` and `/*M!NNNNNN body */` become `body` when
/// `NNNNN` is at most the version (or absent), and disappear otherwise. `None` when there were none.
///
/// Drivers and dump tools send these (`/*!40101 SET NAMES utf8mb4 */`, `SELECT /*!40001 SQL_NO_CACHE */ *`), and
/// the statement the server runs is their content: the proxy must analyse that statement, not one in which the
/// content hides inside a comment.
pub fn unwrap_executable_comments(
    sql: &str,
    server_version: u32,
) -> Result<Option<String>, BadExecutableComment> {
    let b = sql.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    // Where the body of the executable comment being read ends (its `*/`), while inside one.
    let mut inside = false;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' | b'`' => i = skip_quoted(b, i),
            b'#' => i = skip_line(b, i),
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                i = skip_line(b, i)
            }
            b'*' if inside && b.get(i + 1) == Some(&b'/') => {
                out.push_str(&sql[copied..i]);
                out.push(' ');
                i += 2;
                copied = i;
                inside = false;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let marker = match (b.get(i + 2), b.get(i + 3)) {
                    (Some(b'!'), _) => Some(i + 3),
                    (Some(b'M' | b'm'), Some(b'!')) => Some(i + 4),
                    _ => None,
                };
                let Some(body) = marker else {
                    // A plain comment: skipped whole (it may hold quotes).
                    i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
                    continue;
                };
                if inside {
                    return Err(BadExecutableComment("nested executable comments"));
                }
                let digits = b[body..].iter().take_while(|c| c.is_ascii_digit()).count();
                let version = match digits {
                    0 => 0,
                    5 | 6 => sql[body..body + digits].parse::<u32>().unwrap_or(u32::MAX),
                    _ => {
                        return Err(BadExecutableComment(
                            "an executable comment version must have 5 or 6 digits",
                        ));
                    }
                };
                out.push_str(&sql[copied..i]);
                out.push(' ');
                if version <= server_version {
                    inside = true;
                    i = body + digits;
                } else {
                    // For a newer server: the whole comment is a comment.
                    i = sql[body..].find("*/").map_or(b.len(), |p| body + p + 2);
                }
                copied = i;
            }
            _ => i += 1,
        }
    }
    if inside {
        return Err(BadExecutableComment("an executable comment is not closed"));
    }
    if copied == 0 {
        return Ok(None);
    }
    out.push_str(&sql[copied..]);
    Ok(Some(out))
}

fn put_value(out: &mut String, literal: &str, original: &str, alias: bool) {
    if alias {
        out.push_str(literal);
        out.push_str(" AS `");
        out.push_str(&original.replace('`', "``"));
        out.push('`');
    } else {
        out.push('(');
        out.push_str(literal);
        out.push(')');
    }
}

/// `'text'` with quotes and backslashes escaped: a MySQL string literal.
pub fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn dotted_word_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (is_word(b[i]) || b[i] == b'.') {
        i += 1;
    }
    i
}

fn strip_scope(word: &str) -> &str {
    for scope in ["session.", "global.", "local."] {
        if word.len() > scope.len()
            && word
                .get(..scope.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(scope))
        {
            return word.get(scope.len()..).unwrap_or(word);
        }
    }
    word
}

/// After a word, `( )` with only spaces inside: the end of that empty call.
fn empty_call_end(b: &[u8], mut i: usize) -> Option<usize> {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    if b.get(i) != Some(&b'(') {
        return None;
    }
    i += 1;
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    (b.get(i) == Some(&b')')).then_some(i + 1)
}

/// True when a select-list item ends at `at`: a comma, the end, or a clause keyword follows.
fn ends_item(sql: &str, at: usize) -> bool {
    let rest = sql[at..].trim_start();
    if rest.is_empty() || rest.starts_with([',', ';']) {
        return true;
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    [
        "FROM", "LIMIT", "WHERE", "ORDER", "UNION", "INTO", "GROUP", "HAVING", "FOR",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(&word))
}

fn skip_line(b: &[u8], start: usize) -> usize {
    b[start..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| start + p + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: ProxyValues<'static> = ProxyValues {
        database: Some("app"),
        variables: &[("socket", "NULL"), ("max_allowed_packet", "1048576")],
        functions: &[("LAST_INSERT_ID", "42"), ("ROW_COUNT", "-1")],
    };

    fn sub(sql: &str) -> Option<String> {
        substitute(sql, &VALUES)
    }

    #[test]
    fn mysql_async_connect_query_gets_proxy_values_under_the_original_column_names() {
        assert_eq!(
            sub("SELECT @@max_allowed_packet,@@wait_timeout,@@socket").unwrap(),
            "SELECT 1048576 AS `@@max_allowed_packet`,@@wait_timeout,NULL AS `@@socket`"
        );
    }

    #[test]
    fn database_calls_become_the_keyspace() {
        assert_eq!(
            sub("SELECT DATABASE()").unwrap(),
            "SELECT 'app' AS `DATABASE()`"
        );
        assert_eq!(
            sub("select schema( ) from dual").unwrap(),
            "select 'app' AS `schema( )` from dual"
        );
        assert_eq!(
            sub("SELECT CONCAT(DATABASE(), 'x')").unwrap(),
            "SELECT CONCAT(('app'), 'x')"
        );
        assert_eq!(
            sub("SELECT DATABASE() IS NULL").unwrap(),
            "SELECT ('app') IS NULL"
        );
    }

    #[test]
    fn scoped_variables_are_replaced_and_others_kept() {
        assert_eq!(
            sub("SELECT @@session.socket").unwrap(),
            "SELECT NULL AS `@@session.socket`"
        );
        assert!(sub("SELECT @@version_comment LIMIT 1").is_none());
        assert!(sub("SELECT @@socketx").is_none());
    }

    #[test]
    fn strings_comments_and_identifiers_are_left_alone() {
        assert!(sub("SELECT 'DATABASE()', \"@@socket\", `database`()").is_none());
        assert!(sub("SELECT 1 /* DATABASE() */ -- @@socket\n").is_none());
        assert!(sub("SELECT mydb.database()").is_none());
        assert!(sub("SELECT 'it''s', 'a\\'b' # DATABASE()").is_none());
    }

    #[test]
    fn non_ascii_variable_names_do_not_panic() {
        assert!(sub("SELECT @@loca中x").is_none());
        assert!(sub("SELECT @@local.x中, @@中").is_none());
        assert!(sub("SELECT @@session.sock中et").is_none());
    }

    #[test]
    fn session_functions_become_the_values_the_proxy_tracked() {
        assert_eq!(
            sub("SELECT LAST_INSERT_ID(), row_count()").unwrap(),
            "SELECT 42 AS `LAST_INSERT_ID()`, -1 AS `row_count()`"
        );
        assert_eq!(
            sub("INSERT INTO t (id, x) VALUES (LAST_INSERT_ID(), 1)").unwrap(),
            "INSERT INTO t (id, x) VALUES ((42), 1)"
        );
        // With an argument LAST_INSERT_ID(expr) sets the value on the server: left alone.
        assert!(sub("UPDATE s SET id = LAST_INSERT_ID(id + 1)").is_none());
    }

    #[test]
    fn executable_comments_become_their_content_for_this_version() {
        let unwrap = |sql| unwrap_executable_comments(sql, 101106);
        assert_eq!(
            unwrap("/*!40101 SET NAMES utf8mb4 */").unwrap().unwrap(),
            "  SET NAMES utf8mb4  "
        );
        assert_eq!(
            unwrap("SELECT /*!40001 SQL_NO_CACHE */ * FROM t")
                .unwrap()
                .unwrap(),
            "SELECT   SQL_NO_CACHE   * FROM t"
        );
        assert_eq!(
            unwrap("SELECT 1 /*M!110500 + 1 */").unwrap().unwrap(),
            "SELECT 1  "
        );
        assert_eq!(
            unwrap("SELECT 1 /*! + 1 */").unwrap().unwrap(),
            "SELECT 1   + 1  "
        );
        // A `*/` inside a string in the body does not end it.
        assert_eq!(
            unwrap("/*!50000 SELECT '*/' */").unwrap().unwrap(),
            "  SELECT '*/'  "
        );
        assert!(
            unwrap("SELECT '/*!40101 x */', 1 /* plain */")
                .unwrap()
                .is_none()
        );
        assert!(unwrap("SELECT 1 /*!40101 + 1").is_err());
        assert!(unwrap("SELECT /*!40101 /*!40101 1 */ */").is_err());
        assert!(unwrap("SELECT /*!401 1 */").is_err());
    }

    #[test]
    fn a_null_database_is_null() {
        let v = ProxyValues {
            database: None,
            variables: &[],
            functions: &[],
        };
        assert_eq!(
            substitute("SELECT DATABASE()", &v).unwrap(),
            "SELECT NULL AS `DATABASE()`"
        );
    }
}
