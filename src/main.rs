//! The `clif-diff` command line; see `cli` for the commands.

mod cli;

fn main() {
    // `clif-diff gen | head` must end quietly, not panic on a closed pipe.
    // SAFETY: restoring a default signal disposition at startup.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    std::process::exit(cli::main());
}
