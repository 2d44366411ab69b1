//! What a decode step costs a GPU backend beyond its arithmetic: kernel launches, kernel
//! compilations and host waits, counted from trace spans. CubeCL enters a `launch_inner` span
//! per kernel launch and an `integrate` span per kernel it compiles (Burn's `tracing` feature,
//! on with dia-bench's GPU features); dia-model enters [`HOST_READ_SPAN`] per device-to-host
//! read. A subscriber that counts those spans and ignores every other callsite costs nothing
//! on the CPU backends.

use std::sync::atomic::{AtomicU64, Ordering};

use dia_model::HOST_READ_SPAN;
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
/// process that already has one, keep what is there). Returns whether counting is on.
pub fn install() -> bool {
    tracing::subscriber::set_global_default(SpanCounter).is_ok() || counting()
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
