//! What a decode step costs a GPU backend beyond its arithmetic: kernel launches, kernel
//! compilations and host waits, counted from trace spans. CubeCL enters a `launch_inner` span
//! per kernel launch and an `integrate` span per kernel it compiles (Burn's `tracing` feature,
//! on with dia-bench's GPU features); dia-model enters [`HOST_READ_SPAN`] per device-to-host
//! read. A subscriber that counts those spans and ignores every other callsite costs nothing
//! on the CPU backends. For one untimed step it can also tally launches by kernel name.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dia_model::generation::HOST_READ_SPAN;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// Totals since the process started (or since [`install`], whichever is later).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub launches: u64,
    pub compilations: u64,
    pub host_reads: u64,
}

impl Counts {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Counts) -> Counts {
        self.zip(earlier, |a, b| a - b)
    }

    /// Both counts together.
    pub fn plus(self, other: Counts) -> Counts {
        self.zip(other, |a, b| a + b)
    }

    fn zip(self, other: Counts, f: impl Fn(u64, u64) -> u64) -> Counts {
        Counts {
            launches: f(self.launches, other.launches),
            compilations: f(self.compilations, other.compilations),
            host_reads: f(self.host_reads, other.host_reads),
        }
    }
}

/// The counted spans: `(target prefix, span name)`, in [`Counts`]' field order.
const COUNTED: [(&str, &str); 3] = [
    ("cubecl_runtime", "launch_inner"),
    ("cubecl_core", "integrate"),
    ("dia_model", HOST_READ_SPAN),
];

static TOTALS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Installs the counting subscriber as the process's global one (once; later calls, or a
/// process that already has one, keep what is there; [`counting`] tells).
pub fn install() {
    let _ = tracing::subscriber::set_global_default(SpanCounter);
}

/// Whether the counting subscriber is the global one.
pub fn counting() -> bool {
    tracing::dispatcher::get_default(|d| d.is::<SpanCounter>())
}

/// The totals now.
pub fn now() -> Counts {
    let at = |i: usize| TOTALS[i].load(Ordering::Relaxed);
    Counts {
        launches: at(0),
        compilations: at(1),
        host_reads: at(2),
    }
}

/// Launches by kernel name while [`name_launches`] is on (the lock is taken only then).
static NAMING: AtomicBool = AtomicBool::new(false);
static NAMES: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// Starts (`true`, from an empty tally) or stops recording each launch's kernel name; naming
/// costs a lock and a string per launch, so it is for an untimed step.
pub fn name_launches(on: bool) {
    if on {
        names_lock().clear();
    }
    NAMING.store(on, Ordering::Relaxed);
}

/// Launches by kernel name (generic arguments and module path cut) since naming started.
pub fn launches_by_name() -> BTreeMap<String, u64> {
    names_lock().clone()
}

fn names_lock() -> std::sync::MutexGuard<'static, BTreeMap<String, u64>> {
    NAMES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `a::b::Kernel<T, U>` → `Kernel`.
fn short_name(name: &str) -> &str {
    let name = name.split('<').next().unwrap_or(name);
    name.rsplit("::").next().unwrap_or(name)
}

/// Picks the `kernel.name` field out of a launch span.
#[derive(Default)]
struct KernelName(String);

impl Visit for KernelName {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "kernel.name" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Which of [`COUNTED`] a callsite is.
fn counted(meta: &Metadata<'_>) -> Option<usize> {
    COUNTED.iter().position(|(target, name)| {
        meta.is_span() && meta.name() == *name && meta.target().starts_with(target)
    })
}

/// Counts the [`COUNTED`] spans; every other callsite is never enabled.
struct SpanCounter;

impl Subscriber for SpanCounter {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        match counted(meta) {
            Some(_) => Interest::always(),
            None => Interest::never(),
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        counted(meta).is_some()
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        if let Some(i) = counted(span.metadata()) {
            TOTALS[i].fetch_add(1, Ordering::Relaxed);
            if i == 0 && NAMING.load(Ordering::Relaxed) {
                let mut name = KernelName::default();
                span.record(&mut name);
                *names_lock()
                    .entry(short_name(&name.0).to_string())
                    .or_default() += 1;
            }
        }
        // Nothing is stored per span, so every span can share one id.
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::short_name;

    #[test]
    fn kernel_names_lose_paths_and_generics() {
        assert_eq!(short_name("cubecl::matmul::Gemv<f32, Line<4>>"), "Gemv");
        assert_eq!(short_name("ElemwiseKernel"), "ElemwiseKernel");
        assert_eq!(short_name("a::b::Reduce<x::Y>"), "Reduce");
    }
}
