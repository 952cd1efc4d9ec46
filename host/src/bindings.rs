//! The one `bindgen!` of the host: Rust types and traits for the WIT world.
//!
//! Imports are trappable: an import returns `wasmtime::Result`, whose `Err`
//! traps the guest (a host bug), while guest-visible failures travel inside
//! the WIT `result`.

wasmtime::component::bindgen!({
    world: "decision-log",
    path: "wit",
    imports: { default: trappable },
});
