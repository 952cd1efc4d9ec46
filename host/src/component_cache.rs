//! A per-user cache of the compiled component, so a one-shot `dlog` process
//! does not recompile it (cranelift takes ~0.1 s in release, ~1 s in debug).
//!
//! Loading native code from disk is only as safe as the file: the cache lives
//! in a directory that must belong to the current user with mode 0700
//! (`$DLOG_CACHE_DIR`, else `$XDG_CACHE_HOME/dlog`, else `~/.cache/dlog`);
//! anything else disables it. Entries are keyed by the component's SHA-1 and
//! the engine's compatibility hash (wasmtime version and settings), written
//! to a temporary file and renamed into place; an entry wasmtime refuses is
//! deleted and rebuilt. `DLOG_CACHE_DIR=off` turns the cache off.

use std::hash::{Hash, Hasher};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::error::Context as _;

use crate::runtime::COMPONENT;

fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("DLOG_CACHE_DIR") {
        Some(dir) if dir == "off" => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|base| base.join("dlog")),
    }
}

/// The cache directory, created if missing, if only this user can write it.
fn private_dir() -> Option<PathBuf> {
    let dir = cache_dir()?;
    if !dir.exists() {
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).ok()?;
    }
    let meta = std::fs::metadata(&dir).ok()?;
    let ours = meta.uid() == current_uid() && meta.permissions().mode() & 0o077 == 0;
    ours.then_some(dir)
}

/// The effective user id, from the owner of a file this process just made.
fn current_uid() -> u32 {
    // std has no getuid; /proc/self is owned by the process's user.
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}

fn key(engine: &Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let component = sha1_smol::Sha1::from(COMPONENT).digest().to_string();
    format!("component-{}-{:016x}.cwasm", &component[..16], hasher.finish())
}

/// The compiled component: from the cache when possible, else compiled (and
/// cached for the next process).
pub(crate) fn load(engine: &Engine) -> wasmtime::Result<Component> {
    let Some(dir) = private_dir() else {
        return Component::new(engine, COMPONENT).context("failed to compile the decision-log component");
    };
    let path = dir.join(key(engine));
    if path.exists() {
        // SAFETY: the file is in a directory only this user can write (checked
        // above), was written by this code from `Component::serialize` under a
        // key that includes the engine's compatibility hash, and wasmtime
        // checks its header (version, target, settings) before using it.
        #[allow(unsafe_code)]
        let cached = unsafe { Component::deserialize_file(engine, &path) };
        match cached {
            Ok(component) => return Ok(component),
            Err(_) => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let component =
        Component::new(engine, COMPONENT).context("failed to compile the decision-log component")?;
    if let Ok(bytes) = component.serialize() {
        let temp = dir.join(format!(".{}.{}.tmp", key(engine), std::process::id()));
        if std::fs::write(&temp, bytes).is_ok() && std::fs::rename(&temp, &path).is_err() {
            let _ = std::fs::remove_file(&temp);
        }
    }
    Ok(component)
}
