//! `adjoint runs audit <model or run> [--out DIR]`: the registry gathers the facts
//! ([`adjoint_store::Registry::audit_report`]), this module draws the figures (PNG, with
//! adjoint-nn's charts and a heat map for attribution images), writes `report.md` and
//! `audit.json`, and has the registry sign the folder and store it linked to the checkpoint
//! ([`adjoint_store::Registry::record_audit`]). Every file is written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use adjoint_nn::train::{Chart, Series};
use adjoint_store::cli::StoreArgs;
use adjoint_store::{Attribution, AuditReport};

/// Writes `text` to `dir/name` atomically.
fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let p = dir.join(name);
    adjoint_store::write_atomic(&p, |f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: cannot write: {e}", p.display()))
}

/// Saves a chart as `dir/<stem>.png` (and `.svg`), returning the PNG's file name.
fn chart(dir: &Path, stem: &str, c: Chart) -> Result<String, String> {
    c.save(dir.join(stem)).map_err(|e| e.to_string())?;
    Ok(format!("{stem}.png"))
}

/// A heat map of up to 4 maps `[n, h, w]` side by side (blue negative, red positive, scaled
/// to the largest magnitude), as a PNG.
fn heatmap_png(path: &Path, a: &Attribution) -> Result<(), String> {
    use plotters::prelude::*;
    let (n, h, w) = match a.shape[..] {
        [h, w] => (1, h, w),
        [n, h, w] => (n.min(4), h, w),
        _ => return Err(format!("attribution {:?}: shape {:?} is not an image", a.name, a.shape)),
    };
    let scale = (256 / h.max(w).max(1)).max(1);
    let gap = 4;
    let (pw, ph) = ((n * (w + gap)) * scale, h * scale);
    let root = BitMapBackend::new(path, (pw as u32, ph as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    for k in 0..n {
        let m = &a.values[k * h * w..(k + 1) * h * w];
        let top = m.iter().fold(0f32, |acc, v| acc.max(v.abs())).max(f32::MIN_POSITIVE);
        for y in 0..h {
            for x in 0..w {
                let v = (m[y * w + x] / top).clamp(-1.0, 1.0);
                let c = (255.0 * (1.0 - v.abs())) as u8;
                let col = if v >= 0.0 { RGBColor(255, c, c) } else { RGBColor(c, c, 255) };
                let (x0, y0) = (((k * (w + gap)) + x) * scale, y * scale);
                root.draw(&Rectangle::new(
                    [(x0 as i32, y0 as i32), ((x0 + scale) as i32, (y0 + scale) as i32)],
                    col.filled(),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
    }
    root.present().map_err(|e| format!("{}: {e}", path.display()))
}

/// The figures of a report: `(caption, file name)`.
fn figures(dir: &Path, rep: &AuditReport) -> Result<Vec<(String, String)>, String> {
    let e = &rep.evaluation;
    let mut out = Vec::new();
    if !rep.slices_worst_first.is_empty() {
        let map = e.slice_map();
        let pts: Vec<(f64, f64)> = rep
            .slices_worst_first
            .iter()
            .enumerate()
            .map(|(i, s)| (i as f64, map[s.as_str()][&e.primary_metric]))
            .collect();
        let c = Chart::new(format!("{} per slice, worst first", e.primary_metric))
            .x_label(format!(
                "slice rank ({} … {})",
                rep.slices_worst_first[0],
                rep.slices_worst_first.last().map_or("", |s| s.as_str())
            ))
            .y_label(e.primary_metric.clone())
            .series(Series::new(e.primary_metric.clone(), pts));
        out.push(("Metric per slice, worst first".to_string(), chart(dir, "slices", c)?));
    }
    for (i, cal) in e.calibration.iter().enumerate() {
        let mut c = Chart::new(format!("Calibration: {} ({})", cal.name, cal.kind))
            .x_label("predicted")
            .y_label("observed")
            .series(Series::new("model", cal.bins.iter().map(|b| (b.predicted, b.observed)).collect()));
        if cal.kind == "reliability" {
            c = c.series(Series::new("perfect", vec![(0.0, 0.0), (1.0, 1.0)]));
        }
        out.push((format!("Calibration: {}", cal.name), chart(dir, &format!("calibration_{i}"), c)?));
    }
    if !rep.drift.is_empty() {
        let c = Chart::new("Input drift: population stability index per feature (largest first)")
            .x_label(format!("feature rank ({} first)", rep.drift[0].feature))
            .y_label("PSI")
            .series(Series::new(
                "PSI",
                rep.drift.iter().enumerate().map(|(i, d)| (i as f64, d.psi)).collect(),
            ))
            .series(Series::new(
                "0.25 (major shift)",
                vec![(0.0, 0.25), ((rep.drift.len() - 1) as f64, 0.25)],
            ));
        out.push(("Input drift (PSI)".to_string(), chart(dir, "drift", c)?));
    }
    for (i, a) in e.attributions.iter().enumerate() {
        let stem = format!("attribution_{i}");
        if a.labels.is_empty() {
            heatmap_png(&dir.join(format!("{stem}.png")), a)?;
            out.push((format!("Attributions: {} ({})", a.name, a.method), format!("{stem}.png")));
            continue;
        }
        let f = a.labels.len();
        let rows = a.values.len() / f.max(1);
        let mut c = Chart::new(format!("Attributions: {} ({})", a.name, a.method))
            .x_label("step")
            .y_label("attribution");
        for (j, l) in a.labels.iter().enumerate() {
            c = c.series(Series::new(
                l.clone(),
                (0..rows).map(|t| (t as f64, a.values[t * f + j] as f64)).collect(),
            ));
        }
        out.push((format!("Attributions: {} ({})", a.name, a.method), chart(dir, &stem, c)?));
    }
    Ok(out)
}

/// Runs `runs audit`: returns the report folder.
pub fn run_audit(
    store: &StoreArgs,
    target: &str,
    out: Option<&Path>,
    say: &mut dyn Write,
) -> Result<PathBuf, String> {
    let e = |e: adjoint_store::StoreError| e.to_string();
    let reg = store.open_existing_registry().map_err(e)?;
    let signer = store.require_signer("signing an audit").map_err(e)?;
    let rep = reg.audit_report(target).map_err(e)?;
    let dir = match out {
        Some(d) => d.to_path_buf(),
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let what = match &rep.model_version {
                Some((m, v)) => format!("{m}-v{v}"),
                None => rep.checkpoint[..12].to_string(),
            };
            reg.dir().join("audits").join(format!("{what}-{}", crate::demos::common::utc_stamp(now)))
        }
    };
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(format!("{}: the audit folder exists and is not empty", dir.display()));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let figs = figures(&dir, &rep)?;
    write(&dir, "report.md", &rep.markdown(&figs))?;
    let json = serde_json::to_string_pretty(&rep).map_err(|e| format!("audit.json: {e}"))? + "\n";
    write(&dir, "audit.json", &json)?;
    let sig = reg.record_audit(&dir, &rep, &signer).map_err(e)?;
    let io = |e: std::io::Error| format!("<output>: {e}");
    for g in &rep.slice_gaps {
        let m = &rep.evaluation.primary_metric;
        writeln!(say, "{}: worst slice {}, best slice {}, gap {:.4} ({m})", g.group, g.worst, g.best, g.gap)
            .map_err(io)?;
    }
    writeln!(
        say,
        "audit of {} written to {} ({} files, {} figures), signed by {} and recorded as audit #{}",
        target,
        dir.display(),
        sig.body.files.len(),
        figs.len(),
        adjoint_store::keys::short_id(&sig.signer),
        sig.record
    )
    .map_err(io)?;
    Ok(dir)
}
