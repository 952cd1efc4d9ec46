//! Building the guest component reproducibly.
//!
//! The same source gives the same bytes on any machine with the pinned
//! toolchain (`rust-toolchain.toml`) and the locked dependencies
//! (`Cargo.lock`, `--locked`): the only machine-specific inputs of a
//! stripped wasm build are file paths baked into panic locations, and those
//! are remapped to fixed prefixes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::manifest;

/// Where the committed component lives, relative to the workspace root.
pub const COMPONENT: &str = "host/component/decision-log.wasm";

/// Variables of an outer cargo invocation that must not reach the guest
/// build: flags meant for the host target, wrappers such as clippy's driver,
/// and a target directory the outer build holds locked.
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

/// Rebuild the component and write it, with its manifest, where the host crate embeds it.
pub fn write_committed(root: &Path) -> Result<(), String> {
    let component = build(root)?;
    let path = root.join(COMPONENT);
    write(&path, &component)?;
    let manifest = manifest::render(root, &component)?;
    write(&manifest::path_of(&path), manifest.as_bytes())?;
    println!("wrote {} ({} bytes, sha1 {})", path.display(), component.len(), manifest::sha1(&component));
    Ok(())
}

/// Rebuild the component and compare it with the committed one, byte for byte.
pub fn check_committed(root: &Path) -> Result<(), String> {
    let committed_path = root.join(COMPONENT);
    let committed = std::fs::read(&committed_path)
        .map_err(|e| format!("cannot read the committed component {}: {e}", committed_path.display()))?;
    let rebuilt = build(root)?;
    if rebuilt != committed {
        return Err(format!(
            "the committed component {COMPONENT} (sha1 {}, {} bytes) is not what the source builds \
             (sha1 {}, {} bytes): run `cargo xtask component` and commit the result",
            manifest::sha1(&committed),
            committed.len(),
            manifest::sha1(&rebuilt),
            rebuilt.len()
        ));
    }
    let stale = manifest::stale_entries(root)?;
    if !stale.is_empty() {
        return Err(format!(
            "the component's bytes match, but its manifest is out of date for {}: run `cargo xtask component`",
            stale.join(", ")
        ));
    }
    println!("{COMPONENT} is what the source builds (sha1 {})", manifest::sha1(&committed));
    Ok(())
}

/// Build the guest for wasm32 and encode it as a component.
fn build(root: &Path) -> Result<Vec<u8>, String> {
    let target_dir = root.join("target").join("component");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["rustc", "--locked", "--package", "dlog-guest", "--lib"])
        .args(["--target", "wasm32-unknown-unknown", "--profile", "guest", "--crate-type", "cdylib"])
        .arg("--target-dir")
        .arg(&target_dir);
    for var in OUTER_BUILD_VARS {
        command.env_remove(var);
    }
    command.env("CARGO_ENCODED_RUSTFLAGS", remap_flags(root));
    let status = command.status().map_err(|e| format!("cannot run cargo for the guest: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the guest for wasm32-unknown-unknown failed ({status}); see the compiler output \
             above. If it says \"can't find crate for `core`\", the target is missing: \
             `rustup target add wasm32-unknown-unknown`"
        ));
    }
    let module_path = target_dir.join("wasm32-unknown-unknown/guest/dlog_guest.wasm");
    let module = std::fs::read(&module_path)
        .map_err(|e| format!("cannot read the guest module {}: {e}", module_path.display()))?;
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| format!("cannot turn the guest module into a component: {e:#}"))
}

/// Panic locations embed source paths: the workspace's and the registry's
/// differ between machines, so both are mapped to fixed prefixes.
fn remap_flags(root: &Path) -> String {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let mut flags = vec![format!("--remap-path-prefix={}=/decision-log", root.display())];
    if let Some(home) = cargo_home {
        flags.push(format!("--remap-path-prefix={}=/cargo", home.display()));
    }
    flags.join("\x1f")
}

/// Write a file durably enough for a build artifact: whole or not at all.
fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, bytes)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
