//! `shardctl`: the DBA's command-line tool for shardgate. The commands live in the library
//! (`shardctl::topology`); this is the argument parsing and the exit codes.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shardctl::{AFTER_HELP, reshard, topology};

/// shardgate's DBA tool: inspect, validate and generate topologies; reshard online.
#[derive(Debug, Parser)]
#[command(name = "shardctl", version, after_help = AFTER_HELP)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// Top-level command groups.
#[derive(Debug, Subcommand)]
enum Command {
    /// Validate, show or generate topology files.
    #[command(after_help = AFTER_HELP)]
    Topology {
        /// The topology command.
        #[command(subcommand)]
        command: topology::TopologyCommand,
    },
    /// Move tenants, split or merge shards online: dual-write, backfill, verify, cutover.
    #[command(after_help = AFTER_HELP)]
    Reshard {
        #[command(subcommand)]
        command: reshard::ReshardCommand,
    },
}

fn main() -> ExitCode {
    // clap exits by itself: 0 for --help/--version, 2 for usage errors.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Topology { command } => topology::run(command),
        Command::Reshard { command } => reshard::run(command, &mut std::io::stdout()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::from(1)
        }
    }
}

/// Prints an error to stderr; an invalid topology gets one line per problem.
fn report(error: &anyhow::Error) {
    let problems = error
        .downcast_ref::<shardgate_topology::TopologyError>()
        .map(shardgate_topology::TopologyError::problems)
        .unwrap_or_default();
    if problems.is_empty() {
        eprintln!("error: {error:#}");
        return;
    }
    let file = error
        .downcast_ref::<shardgate_topology::TopologyError>()
        .and_then(|e| match e {
            shardgate_topology::TopologyError::InFile { path, .. } => {
                Some(format!("{}: ", path.display()))
            }
            _ => None,
        })
        .unwrap_or_default();
    let count = problems.len();
    eprintln!(
        "error: {file}topology is invalid ({count} problem{}):",
        if count == 1 { "" } else { "s" }
    );
    for problem in problems {
        eprintln!("  {problem}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_documents_the_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes"), "{help}");
        assert!(help.contains("2  usage error"), "{help}");
    }
}
