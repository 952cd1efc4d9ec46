//! The wasmtime side: one engine and one compiled, pre-linked component per
//! process, and sandboxed instances of it.
//!
//! Sandbox bounds (ARCHITECTURE.md, "Trust and limits"): each instance has a
//! memory cap enforced by a store limiter, and every call gets an epoch
//! deadline, so a runaway guest traps instead of hanging the host.

use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder};

use crate::bindings::{DecisionLog, DecisionLogPre};
use crate::imports::HostState;

/// The guest component, embedded in the binary: the committed build of
/// `guest/` (rebuilt by `cargo xtask component`, checked byte for byte in CI).
/// It imports only the `dlog:decision-log` interfaces of [`crate::WIT_FILES`].
pub static COMPONENT: &[u8] = include_bytes!("../component/decision-log.wasm");

/// How often the engine's epoch advances: the granularity of call deadlines.
const TICK: Duration = Duration::from_millis(10);

/// Bounds on one guest instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory the guest may grow to, in bytes.
    pub memory_bytes: usize,
    /// Longest a single call into the guest may run before it is trapped.
    pub call_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { memory_bytes: 1 << 30, call_timeout: Duration::from_secs(120) }
    }
}

impl Limits {
    /// The call timeout in epoch ticks.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        (self.call_timeout.as_millis() / TICK.as_millis()).max(1) as u64
    }
}

/// The engine and the pre-linked component.
pub struct Runtime {
    engine: Engine,
    pre: DecisionLogPre<HostState>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// A live instance with its store.
pub(crate) struct Session {
    pub(crate) store: Store<HostState>,
    pub(crate) bindings: DecisionLog,
}

impl Runtime {
    /// The process-wide runtime: the component is compiled once, on first use.
    pub fn shared() -> wasmtime::Result<Arc<Runtime>> {
        static SHARED: OnceLock<Arc<Runtime>> = OnceLock::new();
        if let Some(runtime) = SHARED.get() {
            return Ok(runtime.clone());
        }
        let runtime = Arc::new(Runtime::new()?);
        Ok(SHARED.get_or_init(|| runtime).clone())
    }

    fn new() -> wasmtime::Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).context("failed to create the wasmtime engine")?;
        let component = crate::component_cache::load(&engine)?;
        let mut linker = Linker::new(&engine);
        DecisionLog::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .context("failed to link the host imports")?;
        let pre = DecisionLogPre::new(linker.instantiate_pre(&component)?)
            .context("the component does not export the decision-log world")?;
        let ticker = engine.clone();
        thread::Builder::new()
            .name("dlog-epoch".into())
            .spawn(move || {
                loop {
                    thread::sleep(TICK);
                    ticker.increment_epoch();
                }
            })
            .context("failed to start the epoch ticker thread")?;
        Ok(Runtime { engine, pre })
    }

    /// A fresh, sandboxed instance over `state`.
    pub(crate) fn instantiate(&self, mut state: HostState, limits: Limits) -> wasmtime::Result<Session> {
        state.limits = GuestLimits {
            limits: StoreLimitsBuilder::new().memory_size(limits.memory_bytes).instances(4).build(),
            refused: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(limits.deadline_ticks());
        let bindings = self.pre.instantiate(&mut store).context("failed to instantiate the component")?;
        Ok(Session { store, bindings })
    }
}

/// An instance's resource bounds, remembering a refused memory growth: the
/// guest's allocator then aborts, which reaches the host as a bare
/// `unreachable` trap, and the host reports it as what it is instead.
#[derive(Debug, Default)]
pub(crate) struct GuestLimits {
    limits: StoreLimits,
    /// The memory size, in bytes, of the last growth refused.
    pub(crate) refused: Option<usize>,
}

impl ResourceLimiter for GuestLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.refused = Some(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}
