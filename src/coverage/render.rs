//! A coverage map as Markdown (for people and the nightly report) and as an SVG chart.

use super::map::{CoverageMap, Diff, Share, backend_for};
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::fmt::Write;
use std::path::Path;

fn pct(s: &Share) -> String {
    format!("{}/{} ({:.1}%)", s.hit, s.measurable, s.percent())
}

/// The backends of a map in report order: the target's, then the mid-end.
pub fn backends(map: &CoverageMap) -> Vec<String> {
    let own = backend_for(&map.target).to_string();
    let mut v = vec![own.clone(), "mid-end".to_string()];
    v.retain(|b| map.backends.contains_key(b));
    v
}

pub fn markdown(map: &CoverageMap, diff: Option<&Diff>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Coverage map: {} ({} worker requests)\n",
        map.target, map.requests
    );
    let _ = writeln!(
        s,
        "A rule is *hit* when its right-hand side ran; *measurable* rules have an instrumented \
         block of their own (the others share all their code with other rules).\n"
    );
    let _ = writeln!(
        s,
        "| backend | ISLE rules hit / measurable | rules in code |"
    );
    let _ = writeln!(s, "|---|---|---|");
    for b in backends(map) {
        let sh = map.share(&b);
        let _ = writeln!(s, "| {b} | {} | {} |", pct(&sh), sh.total);
    }
    for b in backends(map) {
        let _ = writeln!(s, "\n## {b}: by ISLE file\n");
        let _ = writeln!(s, "| file | hit / measurable | rules |");
        let _ = writeln!(s, "|---|---|---|");
        for (f, sh) in map.files(&b) {
            let _ = writeln!(s, "| `{f}` | {} | {} |", pct(&sh), sh.total);
        }
        let _ = writeln!(s, "\n## {b}: top unhit rule groups\n");
        let _ = writeln!(s, "| group | unhit | hit / measurable |");
        let _ = writeln!(s, "|---|---|---|");
        for (g, sh) in map.top_unhit(&b, 15) {
            let _ = writeln!(s, "| {g} | {} | {} |", sh.measurable - sh.hit, pct(&sh));
        }
    }
    let _ = writeln!(s, "\n## Source areas\n");
    let _ = writeln!(s, "| area | lines hit | edges hit |");
    let _ = writeln!(s, "|---|---|---|");
    for (a, c) in &map.areas {
        let _ = writeln!(
            s,
            "| {a} | {}/{} ({:.1}%) | {}/{} ({:.1}%) |",
            c.lines_hit,
            c.lines,
            100.0 * c.lines_hit as f64 / c.lines.max(1) as f64,
            c.edges_hit,
            c.edges,
            100.0 * c.edges_hit as f64 / c.edges.max(1) as f64
        );
    }
    let _ = writeln!(s, "\n## Opcodes × types\n");
    for (arch, gen_ops) in &map.record.generated {
        let lowered = map.record.lowered.get(arch);
        let opcodes = |m: &std::collections::BTreeMap<String, u64>| {
            m.keys()
                .map(|k| k.split('.').next().unwrap_or(k).to_string())
                .collect::<std::collections::BTreeSet<_>>()
        };
        let lowered_n = lowered.map_or(0, |m| m.len());
        let _ = writeln!(
            s,
            "{arch}: {} opcode×type pairs generated ({} opcodes), {} lowered after optimisation \
             ({} opcodes).",
            gen_ops.len(),
            opcodes(gen_ops).len(),
            lowered_n,
            lowered.map_or(0, |m| opcodes(m).len())
        );
        let mut top: Vec<(&String, &u64)> = gen_ops.iter().collect();
        top.sort_by_key(|(k, n)| (std::cmp::Reverse(**n), (*k).clone()));
        let list: Vec<String> = top
            .iter()
            .take(12)
            .map(|(k, n)| format!("`{k}` {n}"))
            .collect();
        let _ = writeln!(s, "Most generated: {}.\n", list.join(", "));
    }
    let _ = writeln!(s, "## Relocations in compiled code\n");
    let _ = writeln!(s, "| engine/arch | kinds |");
    let _ = writeln!(s, "|---|---|");
    for (k, m) in &map.record.relocs {
        let kinds: Vec<String> = m.iter().map(|(r, n)| format!("`{r}` {n}")).collect();
        let _ = writeln!(s, "| {k} | {} |", kinds.join(", "));
    }
    if let Some(d) = diff {
        s.push_str(&diff_markdown(d));
    }
    s
}

pub fn diff_markdown(d: &Diff) -> String {
    let mut s = String::from(
        "\n## Against the baseline\n\n| backend | baseline | now | gained | lost |\n|---|---|---|---|---|\n",
    );
    for (b, (old, new)) in &d.shares {
        let _ = writeln!(
            s,
            "| {b} | {} | {} | {} | {} |",
            pct(old),
            pct(new),
            d.gained[b].len(),
            d.lost[b].len()
        );
    }
    for (what, m) in [("Gained", &d.gained), ("Lost", &d.lost)] {
        for (b, rules) in m {
            if rules.is_empty() {
                continue;
            }
            let shown: Vec<&str> = rules.iter().take(30).map(String::as_str).collect();
            let more = rules.len().saturating_sub(shown.len());
            let _ = writeln!(
                s,
                "\n{what} ({b}): {}{}",
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
    }
    s
}

/// A horizontal bar chart per backend: for its 40 largest ISLE sections, the share of measurable
/// rules hit (a share, not a count, so that one 1000-rule section does not flatten the others;
/// each label carries the counts).
pub fn chart(map: &CoverageMap, path: &Path) -> Result<()> {
    let panels: Vec<(String, Vec<(String, Share)>)> = backends(map)
        .into_iter()
        .map(|b| {
            let mut g = map.groups(&b);
            g.retain(|(_, s)| s.measurable > 0);
            g.sort_by_key(|(_, s)| std::cmp::Reverse(s.measurable));
            g.truncate(40);
            // The chart's first row is at the bottom: put the largest section on top.
            g.reverse();
            (b, g)
        })
        .collect();
    let rows: usize = panels.iter().map(|(_, g)| g.len() + 4).sum();
    let height = (rows as u32 * 16 + 60).max(200);
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let heights: Vec<u32> = panels
        .iter()
        .map(|(_, g)| (g.len() as u32 + 4) * 16 + 60 / panels.len().max(1) as u32)
        .collect();
    let mut area = root;
    for ((backend, groups), h) in panels.iter().zip(heights) {
        let (top, rest) = area.split_vertically(h);
        area = rest;
        let n = groups.len().max(1) as u32;
        let sh = map.share(backend);
        let mut chart = ChartBuilder::on(&top)
            .caption(
                format!(
                    "{backend} ({}): % of measurable ISLE rules hit, largest sections",
                    map.target
                ) + &format!(" — {} of {}", sh.hit, sh.measurable),
                ("sans-serif", 14),
            )
            .margin(6)
            .x_label_area_size(24)
            .y_label_area_size(360)
            .build_cartesian_2d(0u32..100, (0u32..n).into_segmented())
            .map_err(|e| anyhow!("{e}"))?;
        let names: Vec<String> = groups
            .iter()
            .map(|(g, s)| format!("{g} ({}/{})", s.hit, s.measurable))
            .collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n as usize)
            .y_label_formatter(&|v: &SegmentValue<u32>| match v {
                SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        let bar = |i: usize, w: usize, style: ShapeStyle| {
            Rectangle::new(
                [
                    (0, SegmentValue::Exact(i as u32)),
                    (w as u32, SegmentValue::Exact(i as u32 + 1)),
                ],
                style,
            )
        };
        // Measurable rules in light, hit ones over them in dark.
        let layers = [
            (false, RGBColor(190, 210, 235)),
            (true, RGBColor(40, 90, 160)),
        ];
        for (hit, colour) in layers {
            let width = |s: &Share| {
                if hit {
                    s.percent().round() as usize
                } else {
                    100
                }
            };
            chart
                .draw_series(
                    groups
                        .iter()
                        .enumerate()
                        .map(|(i, (_, s))| bar(i, width(s), colour.filled())),
                )
                .map_err(|e| anyhow!("{e}"))?;
        }
    }
    Ok(())
}
