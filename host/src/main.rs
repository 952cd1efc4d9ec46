//! `dlog`: the decision-log command line.

use std::process::ExitCode;

fn main() -> ExitCode {
    decision_log::cli::run()
}
