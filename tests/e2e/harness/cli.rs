//! Runs the real `mariadb` command-line client against the proxy, in batch mode (`-e`) and in interactive mode
//! (on a pseudo terminal made by util-linux `script`, since the client only behaves interactively on a terminal).
//!
//! What the client sends differs by mode (checked against MariaDB 10.11's general log):
//! - `-e SQL`, with or without `--batch`: only the statements (split on `;` by the client, one `COM_QUERY` each);
//!   `--default-character-set` goes in the handshake, no `SET NAMES`.
//! - interactive with `-A`: `select @@version_comment limit 1` (for the banner), then the statements.
//! - interactive without `-A` (the default): `show databases`, `show tables`, a `COM_FIELD_LIST` per table (for
//!   tab completion), then `select @@version_comment limit 1`, then the statements.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::binaries;
use super::deadline::within;

/// How long one client run may take.
const CLI_ALLOWANCE: Duration = Duration::from_secs(60);

/// What a client run printed.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit status (for interactive runs, `script -e` passes the client's through).
    pub status: ExitStatus,
    /// Standard output (for interactive runs: the terminal's contents, escapes removed, `\r` dropped).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// Asserts the client exited 0; returns stdout.
    pub fn success(self, what: &str) -> String {
        assert!(
            self.status.success(),
            "{what}: mariadb exited with {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self.stdout
    }
}

/// The client's arguments to log in to the proxy as `app`/`app` on keyspace `app`.
fn login_args(port: u16, extra_args: &[&str]) -> Vec<String> {
    // `--no-defaults` must come first: ignore any my.cnf on the machine. The connect timeout also bounds the wait
    // for the server greeting.
    let mut args: Vec<String> = ["--no-defaults", "--connect-timeout=10", "-h127.0.0.1"]
        .map(String::from)
        .into();
    args.extend([format!("-P{port}"), "-uapp".to_owned(), "-papp".to_owned()]);
    args.extend(extra_args.iter().map(|a| (*a).to_owned()));
    args.push("app".to_owned());
    args
}

/// `mariadb … app --batch -e SQL`.
pub async fn batch(port: u16, extra_args: &[&str], sql: &str) -> CliOutput {
    let mut command = Command::new(binaries::mariadb_cli());
    command
        .args(login_args(port, extra_args))
        .arg("--batch")
        .arg("-e")
        .arg(sql);
    run(command, None).await
}

/// `mariadb … app` on a pseudo terminal, typing `input` (lines of SQL) and then `quit`.
pub async fn interactive(port: u16, extra_args: &[&str], input: &str) -> CliOutput {
    let client = std::iter::once(binaries::mariadb_cli().display().to_string())
        .chain(login_args(port, extra_args))
        .map(|arg| shell_quote(&arg))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = Command::new(binaries::script());
    command
        .args(["--quiet", "--return", "--command"])
        .arg(client)
        .arg("/dev/null")
        .env("TERM", "dumb")
        .env("MYSQL_HISTFILE", "/dev/null");
    let mut output = run(command, Some(format!("{input}\nquit\n"))).await;
    output.stdout = strip_terminal_escapes(&output.stdout).replace('\r', "");
    output
}

/// Runs the client, feeding `stdin`, with a deadline.
async fn run(mut command: Command, stdin: Option<String>) -> CliOutput {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("cannot run the mariadb client");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .await
            .expect("cannot type into the mariadb client");
        drop(pipe);
    }
    let output = within(
        CLI_ALLOWANCE,
        "the mariadb client",
        child.wait_with_output(),
    )
    .await
    .expect("cannot wait for the mariadb client");
    CliOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Rows of `--batch` output: tab-separated cells, header row first.
pub fn tsv_rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

/// Rows of the interactive client's boxed tables (`| a | b |`), header rows included, cells trimmed.
pub fn table_rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with('|') && line.ends_with('|') && line.len() > 1)
        .map(|line| {
            line[1..line.len() - 1]
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}

/// Removes ANSI escape sequences (`ESC [ … letter`, `ESC ( X`) that the client writes to a terminal.
fn strip_terminal_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            Some('(' | ')') => {
                chars.next();
            }
            _ => {}
        }
    }
    out
}

/// Quotes an argument for `sh -c`.
fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[test]
fn table_rows_reads_the_interactive_clients_boxes() {
    let screen = "MariaDB [app]> select 1;\n+----+------+\n| id | note |\n+----+------+\n|  7 | hi   |\n+----+------+\n";
    assert_eq!(
        table_rows(screen),
        vec![vec!["id", "note"], vec!["7", "hi"]]
    );
    assert_eq!(strip_terminal_escapes("\x1b(B\x1b[0;1mBye\x1b[m"), "Bye");
}
