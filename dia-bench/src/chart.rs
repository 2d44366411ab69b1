//! `report.svg`: a horizontal bar of decode steps/s per configuration.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::measure::Row;

/// Draws one bar per row (failed rows as empty bars) into an SVG file.
pub fn bar_chart(rows: &[Row], path: &Path) -> Result<()> {
    let label = |r: &Row| {
        let s = &r.setting;
        let on = |b: bool| if b { "on" } else { "off" };
        format!(
            "{:?} {} {} rope {} fused {}",
            s.size,
            s.backend,
            s.precision(),
            on(s.rope_table),
            on(s.fused_qkv)
        )
    };
    let labels: Vec<String> = rows.iter().map(label).collect();
    let best = rows
        .iter()
        .filter_map(|r| r.decode_steps_per_s)
        .fold(0.0f64, f64::max);
    let height = 80 + 26 * rows.len().max(1) as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    let fail = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let n = rows.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Dia decode steps per second (higher is better)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(330)
        .build_cartesian_2d(0.0..(best * 1.15).max(1e-3), -0.5..n as f64 - 0.5)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| {
            let i = y.round() as usize;
            labels.get(i).cloned().unwrap_or_default()
        })
        .x_desc("steps/s")
        .draw()
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            let v = r.decode_steps_per_s.unwrap_or(0.0);
            let y = i as f64;
            Rectangle::new([(0.0, y - 0.35), (v, y + 0.35)], BLUE.mix(0.7).filled())
        }))
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
