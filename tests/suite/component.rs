//! The embedded component imports nothing but the decision-log world.

use wasmparser::{Parser, Payload};

/// Top-level import names of a component. wit-component nests helper
/// modules whose imports (`import-func-…`) are internal, so only depth 0 counts.
fn top_level_imports(bytes: &[u8]) -> Vec<String> {
    let mut depth = 0usize;
    let mut names = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("the component parses") {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    names.push(import.expect("an import entry").name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    names
}

#[test]
fn the_component_imports_exactly_the_wit_host_interfaces() {
    let mut imports = top_level_imports(decision_log::COMPONENT);
    imports.sort();
    assert_eq!(
        imports,
        [
            "dlog:decision-log/authority@0.1.0",
            "dlog:decision-log/clock@0.1.0",
            "dlog:decision-log/objects@0.1.0",
            "dlog:decision-log/refs@0.1.0",
            "dlog:decision-log/types@0.1.0",
        ],
        "no WASI or other import may creep in"
    );
}

#[test]
fn the_component_exports_the_log_interface() {
    let mut depth = 0usize;
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(decision_log::COMPONENT) {
        match payload.unwrap() {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentExportSection(section) if depth == 1 => {
                exports.extend(section.into_iter().map(|e| e.unwrap().name.name.to_owned()));
            }
            _ => {}
        }
    }
    assert_eq!(exports, ["dlog:decision-log/log@0.1.0"]);
}
