//! `cargo xtask`: the project's chores that are not part of any crate.
//!
//! - `cargo xtask component` rebuilds the guest component from `guest/` and
//!   `host/wit/` and writes it to `host/component/decision-log.wasm`, the
//!   file the `decision-log` crate embeds, with a manifest of what it was
//!   built from (`decision-log.wasm.sha1`, in `sha1sum` format).
//! - `cargo xtask component --check` rebuilds it elsewhere and fails unless
//!   the bytes equal the committed file: CI runs it, so the committed
//!   component is always what the source builds.
//!
//! Why a committed component: the host must embed its guest, and building the
//! guest needs the `wasm32-unknown-unknown` standard library, which a stock
//! toolchain does not have. Committing the artifact (as wasmtime does for its
//! preview1 adapter) lets `cargo run` and `cargo install` work anywhere, and
//! the packaged crate build without the guest's source.

mod build;
mod manifest;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  component           rebuild host/component/decision-log.wasm from guest/ and host/wit/
                      (needs `rustup target add wasm32-unknown-unknown`)
  component --check   rebuild it in target/ and fail unless it equals the committed file
  help                this text";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["component"] => build::write_committed(&workspace_root()),
        ["component", "--check"] => build::check_committed(&workspace_root()),
        [] | ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown arguments {args:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: this crate sits one level below it.
fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}
