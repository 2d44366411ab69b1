//! The report: `report.json` (machine, command, rows), `report.md` (one table) and
//! `report.svg` (steps/s per configuration).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::measure::Row;

/// Everything a report holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub machine: Machine,
    /// The command line that made it.
    pub command: String,
    /// What the PyTorch reference printed in the same sitting (`torch_bench.py`), if given.
    pub reference: Option<serde_json::Value>,
    pub rows: Vec<Row>,
}

impl Report {
    /// Writes the three files into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = dir.join("report.json");
        std::fs::write(&json, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", json.display()))?;
        let md = dir.join("report.md");
        std::fs::write(&md, self.markdown())
            .with_context(|| format!("writing {}", md.display()))?;
        crate::chart::bar_chart(&self.rows, &dir.join("report.svg"))
    }

    /// The Markdown page: machine, command, reference, then one row per configuration.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut s = String::new();
        let _ = writeln!(s, "# dia-bench report\n");
        let _ = writeln!(
            s,
            "- Machine: {} ({} logical cores, {:.1} GiB), {}",
            m.cpu,
            m.logical_cores,
            m.memory_bytes as f64 / (1u64 << 30) as f64,
            m.os
        );
        let _ = writeln!(
            s,
            "- Threads: {}; measured read bandwidth: {:.1} GB/s ({}); flex kernels: {}; w8a8 kernel: {}",
            m.threads, m.read_bandwidth_gb_s, m.read_pattern, m.flex_kernels, m.int8_kernel
        );
        let _ = writeln!(
            s,
            "- Date: {}; Burn {}; dia-burn {}",
            m.date, m.burn_version, m.dia_burn_version
        );
        let _ = writeln!(s, "- Command: `{}`", self.command);
        if let Some(r) = &self.reference {
            let _ = writeln!(s, "- PyTorch reference, same sitting: `{r}`");
        }
        let _ = writeln!(
            s,
            "\nBandwidth bound = weight bytes read per step ÷ measured bandwidth; a step reads every decoder weight once.\n"
        );
        let _ = writeln!(
            s,
            "| size | backend | dtype | weights | rope table | fused qkv | fusion | requests | sampling | custom kernels | steps/s | aggregate frames/s | × realtime | step ms (min–max) | of bound | encoder ms | first step ms | first audio s | DAC ms per audio s (streamed) | load s | weights GB | peak RSS GB | kernels/step | syncs/step | error |"
        );
        let _ = writeln!(s, "|{}", "---|".repeat(25));
        for r in &self.rows {
            let _ = writeln!(s, "| {} |", self.cells(r).join(" | "));
        }
        for r in &self.rows {
            if let Some(names) = &r.kernels_by_name {
                s.push_str(&kernel_table(&r.setting.to_string(), names));
            }
        }
        s
    }

    /// One row's table cells.
    fn cells(&self, r: &Row) -> Vec<String> {
        let st = &r.setting;
        let f = |v: Option<f64>, p: usize| v.map_or("–".to_string(), |v| format!("{v:.p$}"));
        let gb = |v: Option<u64>| f(v.map(|b| b as f64 / 1e9), 2);
        let on = |b: bool| if b { "on" } else { "off" }.to_string();
        let spread = match (r.step_ms_min, r.step_ms_median, r.step_ms_max) {
            (Some(lo), Some(mid), Some(hi)) => format!("{mid:.1} ({lo:.1}–{hi:.1})"),
            _ => "–".into(),
        };
        let codec = match (r.dac_ms_per_audio_s, r.stream_dac_ms_per_audio_s) {
            (Some(whole), Some(streamed)) => format!("{whole:.0} ({streamed:.0})"),
            (whole, _) => f(whole, 0),
        };
        vec![
            format!("{:?}", st.size),
            st.backend.to_string(),
            dia_model::runtime::dtype_name(st.dtype),
            st.weights.to_string(),
            on(st.rope_table),
            on(st.fused_qkv),
            r.fusion.map_or("–".into(), on),
            st.requests.to_string(),
            match r.read_back {
                Some(n) => format!("device (1/{n})"),
                None if r.error.is_some() => "–".into(),
                None => "host".into(),
            },
            on(st.custom_kernels),
            f(r.decode_steps_per_s, 2),
            f(r.aggregate_frames_per_s, 2),
            f(r.realtime_factor, 3),
            spread,
            self.fraction_of_bound(r)
                .map_or("–".into(), |x| format!("{:.0}%", x * 100.0)),
            f(r.encoder_ms, 1),
            f(r.first_step_ms, 1),
            f(r.first_audio_ms.map(|v| v / 1000.0), 2),
            codec,
            f(r.load_ms.map(|v| v / 1000.0), 1),
            gb(r.weights_bytes),
            gb(r.peak_rss_bytes),
            f(r.kernels_per_step, 1),
            f(r.syncs_per_step, 2),
            r.error.as_deref().unwrap_or("").replace('|', "/"),
        ]
    }

    /// Measured steps/s as a fraction of what the machine's read bandwidth allows when every
    /// decoder weight is read once per step.
    pub fn fraction_of_bound(&self, row: &Row) -> Option<f64> {
        let bytes = row.decoder_bytes_per_step? as f64;
        let bound = self.machine.read_bandwidth_gb_s * 1e9 / bytes;
        Some(row.decode_steps_per_s? / bound)
    }
}

/// The launches of one step by kernel name, most launched first.
fn kernel_table(setting: &str, names: &BTreeMap<String, u64>) -> String {
    let mut rows: Vec<_> = names.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let total: u64 = names.values().sum();
    let mut s = format!("\n### One step of {setting}: {total} launches by kernel\n\n");
    s.push_str("| kernel | launches |\n|---|---:|\n");
    for (name, n) in rows {
        let _ = writeln!(s, "| `{name}` | {n} |");
    }
    s
}
