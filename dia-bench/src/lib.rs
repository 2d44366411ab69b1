//! dia-bench: measures Dia decoding and the DAC codec on every compiled-in backend, dtype and
//! model knob, with random weights generated in-process (speed does not depend on their values).
//!
//! `dia-bench report` runs each configuration in a child process (so peak memory is its own and
//! a crash is one failed row) and writes `report.json`, `report.md` and `report.svg`.
//! `dia-bench seams` measures the joins of long-form audio ([`seams`]), `dia-bench soak` the
//! memory of a full-length generation ([`soak`]), `dia-bench codec` where a codec decode's time
//! goes ([`codec`]), `dia-bench kernels` what each decode hook costs with the backend's own
//! kernels and without ([`kernels`]). On the GPU backends a step's kernel launches, compilations and host waits
//! are counted from trace spans ([`counters`]).

pub mod bandwidth;
pub mod chart;
pub mod codec;
pub mod counters;
pub mod kernels;
pub mod loading;
pub mod machine;
pub mod measure;
pub mod report;
pub mod seams;
pub mod setting;
pub mod soak;
