//! Finding the executables the harness runs: MariaDB's server, installer and client, `script` (a pseudo
//! terminal for the CLI's interactive mode), Prometheus and etcd. Looked up in `PATH`, then in the usual system
//! folders, since `sbin` is often missing from a non-root `PATH`.

use std::path::{Path, PathBuf};

/// System folders searched after `PATH`.
const FALLBACK_DIRS: &[&str] = &[
    "/usr/sbin",
    "/usr/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
    "/sbin",
    "/bin",
];

/// Finds `name`, or panics saying how to install it.
pub fn find(name: &str) -> PathBuf {
    let from_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found in PATH nor in {FALLBACK_DIRS:?}; install it with apt-get: \
                 mariadb-server, mariadb-client, bsdutils, prometheus or etcd-server (deploy/test.sh does this)"
            )
        })
}

/// The MariaDB server.
pub fn mariadbd() -> PathBuf {
    find("mariadbd")
}

/// The tool that creates a fresh datadir with the system tables.
pub fn mariadb_install_db() -> PathBuf {
    find("mariadb-install-db")
}

/// The MariaDB command-line client.
pub fn mariadb_cli() -> PathBuf {
    find("mariadb")
}

/// The etcd server (Debian package `etcd-server`).
pub fn etcd() -> PathBuf {
    find("etcd")
}

/// The Prometheus server (Debian package `prometheus`).
pub fn prometheus() -> PathBuf {
    find("prometheus")
}

/// util-linux `script`, which runs a command on a pseudo terminal.
pub fn script() -> PathBuf {
    find("script")
}

/// Whether `path` is a regular file someone may execute.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
