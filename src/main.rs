//! joulebench's command line: parse the arguments, run the subcommand, exit
//! with the code README's contract gives (0, 1, 2, 3; 130/143 when stopped).

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    cli::Cli::parse().run()
}
