//! `shardctl topology …`: commands on topology files, one file per command.
//!
//! Place in the system: a DBA's view of what the proxy routes by. Every command goes through
//! `shardgate-topology`'s own parser and validator; none of them knows sockets or SQL.

mod generate;
pub mod pin;
mod show;
mod validate;

use std::path::PathBuf;

use clap::Subcommand;

/// The `topology` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Check a topology file; print a summary, or every problem (exit 1).
    #[command(after_help = crate::AFTER_HELP)]
    Validate {
        /// The topology YAML file.
        file: PathBuf,
    },
    /// Print a topology's shards, backends and pins.
    #[command(after_help = crate::AFTER_HELP)]
    Show {
        /// The topology YAML file.
        file: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a valid topology YAML with evenly split shards spread over backends in blocks.
    #[command(after_help = crate::AFTER_HELP)]
    Generate(generate::GenerateArgs),
    /// Pin a tenant to a shard (or remove its pin) as the next topology version, in a file or through a proxy's
    /// admin endpoint. Only routing changes: moving the tenant's rows is resharding.
    #[command(after_help = crate::AFTER_HELP)]
    Pin(pin::PinArgs),
}

/// Runs one topology command, writing its output to stdout.
pub fn run(command: TopologyCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        TopologyCommand::Validate { file } => validate::run(&file, &mut out),
        TopologyCommand::Show { file, json } => show::run(&file, json, &mut out),
        TopologyCommand::Generate(args) => generate::run(&args, &mut out),
        TopologyCommand::Pin(args) => pin::run(&args, &mut out),
    }
}
