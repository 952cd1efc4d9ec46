//! The component's manifest: the SHA-1 of the component and of every file it
//! was built from, in `sha1sum` format (`sha1sum -c` checks it too).
//!
//! Rebuilding the component needs the wasm32 target; this check does not. A
//! unit test runs it with the rest of `cargo test`, so a change to the guest
//! or the WIT without a rebuilt component fails on any machine, not only in
//! CI's byte-for-byte rebuild.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::build::COMPONENT;

/// What the component is built from, relative to the workspace root: the
/// guest crate, the WIT package and the toolchain pin. (`Cargo.lock` is left
/// out: any host dependency moves it; CI's rebuild covers the guest's.)
const INPUTS: &[&str] = &["guest", "host/wit", "rust-toolchain.toml"];

/// Folders inside the inputs that the component is never built from: the
/// guest's native integration tests and their data (the JSONTestSuite
/// files), which change without changing a byte of the component.
const NOT_INPUTS: &[&str] = &["guest/tests"];

/// The manifest beside a component file.
pub fn path_of(component: &Path) -> PathBuf {
    let mut name = component.as_os_str().to_owned();
    name.push(".sha1");
    PathBuf::from(name)
}

/// Lowercase hex SHA-1 of some bytes.
pub fn sha1(bytes: &[u8]) -> String {
    sha1_smol::Sha1::from(bytes).digest().to_string()
}

/// The manifest for `component`, built from the inputs as they are now.
pub fn render(root: &Path, component: &[u8]) -> Result<String, String> {
    let mut out = format!("{}  {COMPONENT}\n", sha1(component));
    for file in input_files(root)? {
        let bytes = read(&root.join(&file))?;
        let _ = writeln!(out, "{}  {file}", sha1(&bytes));
    }
    Ok(out)
}

/// The files whose bytes differ from the committed manifest (the component
/// among them), and inputs added or removed since: empty when it is current.
pub fn stale_entries(root: &Path) -> Result<Vec<String>, String> {
    let manifest_path = path_of(&root.join(COMPONENT));
    let manifest = String::from_utf8(read(&manifest_path)?)
        .map_err(|_| format!("{} is not UTF-8", manifest_path.display()))?;
    let mut listed = Vec::new();
    let mut stale = Vec::new();
    for (n, line) in manifest.lines().enumerate() {
        let Some((digest, file)) = line.split_once("  ") else {
            return Err(format!("{} line {}: expected `<sha1>  <path>`", manifest_path.display(), n + 1));
        };
        listed.push(file.to_owned());
        match std::fs::read(root.join(file)) {
            Ok(bytes) if sha1(&bytes) == digest => {}
            Ok(_) => stale.push(format!("{file} (changed)")),
            Err(_) => stale.push(format!("{file} (gone)")),
        }
    }
    for file in input_files(root)? {
        if !listed.contains(&file) {
            stale.push(format!("{file} (new)"));
        }
    }
    Ok(stale)
}

/// Every input file, as sorted `/`-separated paths relative to `root`.
fn input_files(root: &Path) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    for input in INPUTS {
        collect(root, &root.join(input), &mut files)?;
    }
    files.sort();
    Ok(files)
}

fn collect(root: &Path, path: &Path, files: &mut Vec<String>) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let relative = path.strip_prefix(root).map_err(|_| format!("{} is outside the root", path.display()))?;
    let relative: Vec<_> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let relative = relative.join("/");
    if meta.is_file() {
        files.push(relative);
        return Ok(());
    }
    if NOT_INPUTS.contains(&relative.as_str()) {
        return Ok(());
    }
    let entries = std::fs::read_dir(path).map_err(|e| format!("cannot list {}: {e}", path.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", path.display()))?;
        // Editor swap files and build output are not sources.
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        collect(root, &entry.path(), files)?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_component_was_built_from_the_sources_in_this_tree() {
        let stale = stale_entries(&crate::workspace_root()).unwrap();
        assert!(
            stale.is_empty(),
            "{COMPONENT} was built from other sources than these ({}): run `cargo xtask component` \
             (needs the wasm32-unknown-unknown target) and commit the result",
            stale.join(", ")
        );
    }

    /// A scratch workspace with the inputs' layout, removed on drop.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch() -> Scratch {
        // Tests run on several threads: each needs its own directory.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("xtask-manifest-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["guest/src", "host/wit", "host/component"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("guest/src/lib.rs"), "pub fn f() {}\n").unwrap();
        std::fs::write(dir.join("host/wit/world.wit"), "package a:b;\n").unwrap();
        std::fs::write(dir.join("rust-toolchain.toml"), "[toolchain]\n").unwrap();
        let component = b"\0asm fake";
        std::fs::write(dir.join(COMPONENT), component).unwrap();
        let manifest = render(&dir, component).unwrap();
        std::fs::write(path_of(&dir.join(COMPONENT)), manifest).unwrap();
        Scratch(dir)
    }

    #[test]
    fn a_fresh_manifest_has_nothing_stale_and_lists_the_component_first() {
        let dir = scratch();
        assert_eq!(stale_entries(&dir.0).unwrap(), Vec::<String>::new());
        let manifest = std::fs::read_to_string(path_of(&dir.0.join(COMPONENT))).unwrap();
        let files: Vec<_> = manifest.lines().filter_map(|l| l.split_once("  ").map(|(_, f)| f)).collect();
        assert_eq!(files, [COMPONENT, "guest/src/lib.rs", "host/wit/world.wit", "rust-toolchain.toml"]);
    }

    #[test]
    fn an_edited_added_or_removed_input_makes_the_manifest_stale() {
        let dir = scratch();
        std::fs::write(dir.0.join("guest/src/lib.rs"), "pub fn g() {}\n").unwrap();
        std::fs::write(dir.0.join("guest/src/new.rs"), "\n").unwrap();
        std::fs::remove_file(dir.0.join("host/wit/world.wit")).unwrap();
        assert_eq!(
            stale_entries(&dir.0).unwrap(),
            ["guest/src/lib.rs (changed)", "host/wit/world.wit (gone)", "guest/src/new.rs (new)"]
        );
    }

    #[test]
    fn the_guests_integration_tests_are_not_inputs() {
        let dir = scratch();
        std::fs::create_dir_all(dir.0.join("guest/tests/data")).unwrap();
        std::fs::write(dir.0.join("guest/tests/suite.rs"), "\n").unwrap();
        std::fs::write(dir.0.join("guest/tests/data/y_case.json"), "[]").unwrap();
        assert_eq!(stale_entries(&dir.0).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_replaced_component_makes_the_manifest_stale() {
        let dir = scratch();
        std::fs::write(dir.0.join(COMPONENT), b"\0asm other").unwrap();
        assert_eq!(stale_entries(&dir.0).unwrap(), [format!("{COMPONENT} (changed)")]);
    }
}
