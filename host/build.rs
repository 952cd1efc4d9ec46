//! Builds the guest crate for `wasm32-unknown-unknown`, turns the module into
//! a component with `wit-component`, and leaves it in `OUT_DIR` for
//! `include_bytes!`: the host embeds its guest, so `cargo run` needs nothing else.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Variables of the outer build that must not leak into the nested one:
/// flags meant for the host target, and wrappers such as clippy's driver.
const OUTER_BUILD_VARS: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_PRIMARY_PACKAGE",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ sits inside the workspace").to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    for path in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }

    // Its own target dir: sharing the outer one would deadlock on cargo's lock.
    let target_dir = out_dir.join("guest-target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["rustc", "--package", "dlog-guest", "--lib", "--target", "wasm32-unknown-unknown"])
        .args(["--profile", "guest", "--crate-type", "cdylib", "--target-dir"])
        .arg(&target_dir);
    for var in OUTER_BUILD_VARS {
        command.env_remove(var);
    }
    let status = command.status().expect("failed to run cargo for the guest");
    if !status.success() {
        panic!(
            "building the guest for wasm32-unknown-unknown failed ({status}): see the compiler output above; \
             if the target is missing, run `rustup target add wasm32-unknown-unknown`"
        );
    }

    let module_path = target_dir.join("wasm32-unknown-unknown/guest/dlog_guest.wasm");
    let component = encode_component(&module_path);
    std::fs::write(out_dir.join("decision_log.wasm"), component).expect("failed to write the component");
}

fn encode_component(module_path: &Path) -> Vec<u8> {
    let module = std::fs::read(module_path)
        .unwrap_or_else(|e| panic!("failed to read the guest module {}: {e}", module_path.display()));
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("failed to turn the guest module into a component: {e:#}"))
}
