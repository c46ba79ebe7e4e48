//! The `clif-diff` command line; see `cli` for the commands.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
