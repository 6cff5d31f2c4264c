//! `mmkit`: the command-line tool.

use clap::{Parser, Subcommand};

/// mmkit: a Linux-exact virtual-memory subsystem, on a simulated machine.
#[derive(Parser, Debug)]
#[command(name = "mmkit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the demo scenario.
    Demo,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => println!("mmkit demo: coming with the simulator"),
    }
}
