//! The results of a comparison: cells, ratios to native, the targets, the Markdown
//! table and the JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::rows::{Row, Source, ROWS};
use crate::stats::median;

/// A column of the table: one configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Column {
    pub(crate) id: &'static str,
    pub(crate) title: &'static str,
}

pub(crate) const NATIVE: &str = "native";
pub(crate) const NATIVE_BUSY: &str = "native_busy";
pub(crate) const OURS_INPROC: &str = "ours_inproc";
pub(crate) const OURS_VTEST: &str = "ours_vtest";
pub(crate) const MESA_OURS: &str = "mesa_ours";
pub(crate) const OURS_VIRGL: &str = "ours_virgl";
pub(crate) const MESA_VIRGL: &str = "mesa_virgl";

/// Every column, in table order.
pub(crate) const COLUMNS: &[Column] = &[
    Column {
        id: NATIVE,
        title: "native lavapipe",
    },
    Column {
        id: NATIVE_BUSY,
        title: "native lavapipe, other core kept busy (reference)",
    },
    Column {
        id: OURS_INPROC,
        title: "our ICD, our host in-process",
    },
    Column {
        id: OURS_VTEST,
        title: "our ICD, our host over vtest",
    },
    Column {
        id: MESA_OURS,
        title: "Mesa venus, our host (vtest)",
    },
    Column {
        id: OURS_VIRGL,
        title: "our ICD, stock virglrenderer (vtest)",
    },
    Column {
        id: MESA_VIRGL,
        title: "Mesa venus, stock virglrenderer (vtest)",
    },
];

/// What a cell holds.
#[derive(Clone, Debug)]
pub(crate) enum Cell {
    /// One figure per timed run, over every round.
    Figures(Vec<f64>),
    /// Why the column cannot run the row.
    Na(String),
}

/// Everything a comparison measured.
#[derive(Default)]
pub(crate) struct Results {
    /// (row id, column id) -> cell.
    pub(crate) cells: BTreeMap<(&'static str, &'static str), Cell>,
    /// memcpy of the protocol benchmark's bytes, MB/s (the protocol rows' reference).
    pub(crate) memcpy_mbps: Option<f64>,
    /// Date, commit, machine, options, per-column device info.
    pub(crate) meta: Map<String, Value>,
    /// Per column: device, driver, API version, environment.
    pub(crate) column_info: BTreeMap<&'static str, Map<String, Value>>,
}

/// One comparison a target asks for.
#[derive(Clone, Debug)]
pub(crate) struct Check {
    pub(crate) row: &'static str,
    pub(crate) column: &'static str,
    /// The compared quantity (a ratio, or MB/s for the protocol target).
    pub(crate) measured: f64,
    pub(crate) what: String,
    pub(crate) limit: f64,
    /// `measured` must be at least (true) or at most (false) `limit`.
    pub(crate) at_least: bool,
    pub(crate) met: bool,
}

/// A target of the issue, with its checks.
pub(crate) struct Target {
    pub(crate) id: &'static str,
    pub(crate) text: &'static str,
    pub(crate) checks: Vec<Check>,
    /// Cells the target needs that were not measured.
    pub(crate) missing: Vec<String>,
}

impl Target {
    pub(crate) fn met(&self) -> bool {
        self.missing.is_empty() && !self.checks.is_empty() && self.checks.iter().all(|c| c.met)
    }
}

fn row(id: &str) -> Option<&'static Row> {
    ROWS.iter().find(|r| r.id == id)
}

/// Three significant digits, no exponent.
pub(crate) fn sig3(x: f64) -> String {
    if !x.is_finite() {
        return "?".into();
    }
    let a = x.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else if a >= 0.1 {
        3
    } else {
        4
    };
    format!("{x:.decimals$}")
}

impl Results {
    /// Adds figures to a cell (a cell marked n/a stays so).
    pub(crate) fn add(&mut self, row: &'static str, column: &'static str, figures: &[f64]) {
        match self
            .cells
            .entry((row, column))
            .or_insert_with(|| Cell::Figures(Vec::new()))
        {
            Cell::Figures(v) => v.extend_from_slice(figures),
            Cell::Na(_) => {}
        }
    }

    /// Marks a cell n/a (replacing figures of earlier rounds: a failure in any round
    /// makes the cell n/a).
    pub(crate) fn na(&mut self, row: &'static str, column: &'static str, reason: String) {
        self.cells.insert((row, column), Cell::Na(reason));
    }

    /// The cell's median.
    pub(crate) fn value(&self, row: &str, column: &str) -> Option<f64> {
        let key = self.cells.keys().find(|(r, c)| *r == row && *c == column)?;
        match self.cells.get(key)? {
            Cell::Figures(v) if !v.is_empty() => Some(median(v)),
            _ => None,
        }
    }

    /// figure / native figure (protocol rows: figure / memcpy).
    pub(crate) fn ratio(&self, row_id: &str, column: &str) -> Option<f64> {
        let r = row(row_id)?;
        let v = self.value(row_id, column)?;
        let base = if r.source == Source::Protocol {
            self.memcpy_mbps?
        } else {
            self.value(row_id, NATIVE)?
        };
        (base > 0.0).then_some(v / base)
    }

    /// How many times faster than native (> 1 is faster), whatever the unit.
    pub(crate) fn speed(&self, row_id: &str, column: &str) -> Option<f64> {
        let r = row(row_id)?;
        if r.source == Source::Protocol {
            return None;
        }
        let ratio = self.ratio(row_id, column)?;
        Some(if r.higher_is_better {
            ratio
        } else {
            1.0 / ratio
        })
    }

    fn check_ratio(
        &self,
        t: &mut Target,
        row_id: &'static str,
        column: &'static str,
        limit: f64,
        at_least: bool,
        speed: bool,
    ) {
        let got = if speed {
            self.speed(row_id, column)
        } else {
            self.ratio(row_id, column)
        };
        let Some(m) = got else {
            t.missing.push(format!("{row_id} / {column}"));
            return;
        };
        let what = if speed {
            format!("{:.1} % of native", m * 100.0)
        } else {
            format!("{}× native time", sig3(m))
        };
        t.checks.push(Check {
            row: row_id,
            column,
            measured: m,
            what,
            limit,
            at_least,
            met: if at_least { m >= limit } else { m <= limit },
        });
    }

    /// The targets, evaluated.
    pub(crate) fn targets(&self) -> Vec<Target> {
        let ours = [OURS_INPROC, OURS_VTEST];
        let mut out = Vec::new();
        // Sync round trip: submit + fence wait (empty, and with a 64-element dispatch);
        // query round trip: vkGetFenceStatus, vkGetBufferDeviceAddress,
        // vkGetEventStatus, and a query that must reach the host.
        let groups: [(&str, &[&'static str]); 2] = [
            ("sync", &["submit_wait", "dispatch64"]),
            (
                "query",
                &[
                    "fence_status",
                    "device_address",
                    "event_status",
                    "host_query",
                ],
            ),
        ];
        for (id, rows) in groups {
            let mut t = Target {
                id: if id == "sync" {
                    "sync_vs_native"
                } else {
                    "query_vs_native"
                },
                text: if id == "sync" {
                    "sync round trip ≤ 3× native (our ICD, both transports)"
                } else {
                    "query round trip ≤ 3× native (our ICD, both transports)"
                },
                checks: Vec::new(),
                missing: Vec::new(),
            };
            for &r in rows {
                for c in ours {
                    self.check_ratio(&mut t, r, c, 3.0, false, false);
                }
            }
            out.push(t);
        }
        for (id, rows) in groups {
            let mut t = Target {
                id: if id == "sync" {
                    "sync_vs_mesa"
                } else {
                    "query_vs_mesa"
                },
                text: if id == "sync" {
                    "sync round trip ≥ 7× faster than stock Mesa venus (our ICD over vtest \
                     to our host, vs Mesa venus on our host and on stock virglrenderer)"
                } else {
                    "query round trip ≥ 7× faster than stock Mesa venus (same comparison)"
                },
                checks: Vec::new(),
                missing: Vec::new(),
            };
            for &r in rows {
                for mesa in [MESA_OURS, MESA_VIRGL] {
                    match (self.value(r, OURS_VTEST), self.value(r, mesa)) {
                        (Some(ours), Some(theirs)) if ours > 0.0 => {
                            let m = theirs / ours;
                            let title = COLUMNS
                                .iter()
                                .find(|c| c.id == mesa)
                                .map_or(mesa, |c| c.title);
                            t.checks.push(Check {
                                row: r,
                                column: OURS_VTEST,
                                measured: m,
                                what: format!("{}× faster than {title}", sig3(m)),
                                limit: 7.0,
                                at_least: true,
                                met: m >= 7.0,
                            });
                        }
                        // Rows a stock virglrenderer column cannot run are not missing.
                        _ if self.cells.iter().any(|((ri, ci), c)| {
                            *ri == r && *ci == mesa && matches!(c, Cell::Na(_))
                        }) => {}
                        _ => t.missing.push(format!("{r}: {OURS_VTEST} vs {mesa}")),
                    }
                }
            }
            out.push(t);
        }

        for (id, text, rows) in [
            (
                "batched_submits",
                "batched submits ≥ 95 % of native throughput",
                &["submit_batch"][..],
            ),
            (
                "compute",
                "compute (1M-element dispatch) ≥ 95 % of native throughput",
                &["dispatch1m"][..],
            ),
            (
                "mapped_memory",
                "mapped memory bandwidth ≥ 95 % of native",
                &["map_write", "map_read"][..],
            ),
        ] {
            let mut t = Target {
                id,
                text,
                checks: Vec::new(),
                missing: Vec::new(),
            };
            for &r in rows {
                for c in ours {
                    self.check_ratio(&mut t, r, c, 0.95, true, true);
                }
            }
            out.push(t);
        }

        let mut t = Target {
            id: "protocol",
            text: "protocol encode and decode ≥ 1 GB/s",
            checks: Vec::new(),
            missing: Vec::new(),
        };
        for r in ["encode", "decode"] {
            match self.value(r, OURS_INPROC) {
                Some(v) => t.checks.push(Check {
                    row: r,
                    column: OURS_INPROC,
                    measured: v,
                    what: format!("{} MB/s", sig3(v)),
                    limit: 1000.0,
                    at_least: true,
                    met: v >= 1000.0,
                }),
                None => t.missing.push(r.to_string()),
            }
        }
        out.push(t);
        out
    }

    /// The table (Markdown), its footnotes, and the targets.
    pub(crate) fn markdown(&self) -> String {
        let mut s = String::new();
        let mut notes: Vec<String> = Vec::new();
        let mut note = |reason: &str| -> usize {
            match notes.iter().position(|n| n == reason) {
                Some(i) => i + 1,
                None => {
                    notes.push(reason.to_string());
                    notes.len()
                }
            }
        };
        s.push_str("| row |");
        for c in COLUMNS {
            let _ = write!(s, " {} |", c.title);
        }
        s.push_str("\n|---|");
        for _ in COLUMNS {
            s.push_str("---:|");
        }
        s.push('\n');
        for r in ROWS {
            let _ = write!(s, "| {} |", r.title);
            for c in COLUMNS {
                let cell = self
                    .cells
                    .iter()
                    .find(|((ri, ci), _)| *ri == r.id && *ci == c.id);
                let text = match cell.map(|(_, v)| v) {
                    None => "—".to_string(),
                    Some(Cell::Na(reason)) => format!("n/a [{}]", note(reason)),
                    Some(Cell::Figures(_)) => {
                        let v = self.value(r.id, c.id).unwrap_or(f64::NAN);
                        let fig = format!("{} {}", sig3(v), r.unit);
                        match self.ratio(r.id, c.id) {
                            Some(x) if r.source == Source::Protocol => {
                                format!("{fig} ({}× memcpy)", sig3(x))
                            }
                            Some(x) if c.id != NATIVE => format!("{fig} ({}×)", sig3(x)),
                            _ => fig,
                        }
                    }
                };
                let _ = write!(s, " {text} |");
            }
            s.push('\n');
        }
        s.push_str(
            "\nEach cell: the median over every timed run of every round, and in parentheses \
             the ratio figure / native figure (for times, µs and ms, lower is better: 2× means \
             twice as long; for rates, GB/s, higher is better: 0.5× means half the bandwidth). \
             Protocol rows: ratio to a memcpy of the same bytes in the same run.\n",
        );
        if !notes.is_empty() {
            s.push('\n');
            for (i, n) in notes.iter().enumerate() {
                let _ = writeln!(s, "[{}] {}  ", i + 1, n);
            }
        }
        s.push_str("\nTargets:\n\n");
        for t in self.targets() {
            let _ = writeln!(
                s,
                "- **{}** — {}",
                if t.met() { "met" } else { "missed" },
                t.text
            );
            for c in &t.checks {
                let limit = if c.what.contains("% of native") {
                    format!("{:.0} %", c.limit * 100.0)
                } else if c.what.contains("MB/s") {
                    format!("{} MB/s", sig3(c.limit))
                } else {
                    format!("{}×", sig3(c.limit))
                };
                let _ = writeln!(
                    s,
                    "  - {} {} / {}: {} (needs {} {}) — {}",
                    if c.met { "✓" } else { "✗" },
                    row(c.row).map_or(c.row, |r| r.title),
                    COLUMNS
                        .iter()
                        .find(|x| x.id == c.column)
                        .map_or(c.column, |x| x.title),
                    c.what,
                    if c.at_least { "≥" } else { "≤" },
                    limit,
                    if c.met { "met" } else { "missed" }
                );
            }
            for m in &t.missing {
                let _ = writeln!(s, "  - ? {m}: not measured");
            }
        }
        s
    }

    /// Everything, as JSON.
    pub(crate) fn json(&self) -> Value {
        let columns: Vec<Value> = COLUMNS
            .iter()
            .map(|c| {
                let mut m = self.column_info.get(c.id).cloned().unwrap_or_default();
                m.insert("id".into(), json!(c.id));
                m.insert("title".into(), json!(c.title));
                Value::Object(m)
            })
            .collect();
        let rows: Vec<Value> = ROWS
            .iter()
            .map(|r| {
                let mut cells = Map::new();
                for c in COLUMNS {
                    let Some((_, cell)) = self
                        .cells
                        .iter()
                        .find(|((ri, ci), _)| *ri == r.id && *ci == c.id)
                    else {
                        continue;
                    };
                    let v = match cell {
                        Cell::Na(reason) => json!({ "na": reason }),
                        Cell::Figures(f) => json!({
                            "median": self.value(r.id, c.id),
                            "ratio_to_native": if r.source == Source::Protocol {
                                None
                            } else {
                                self.ratio(r.id, c.id)
                            },
                            "ratio_to_memcpy": if r.source == Source::Protocol {
                                self.ratio(r.id, c.id)
                            } else {
                                None
                            },
                            "speed_vs_native": self.speed(r.id, c.id),
                            "figures": f,
                        }),
                    };
                    cells.insert(c.id.into(), v);
                }
                json!({
                    "id": r.id,
                    "title": r.title,
                    "unit": r.unit,
                    "higher_is_better": r.higher_is_better,
                    "cells": cells,
                })
            })
            .collect();
        let targets: Vec<Value> = self
            .targets()
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "text": t.text,
                    "met": t.met(),
                    "missing": t.missing,
                    "checks": t.checks.iter().map(|c| json!({
                        "row": c.row,
                        "column": c.column,
                        "measured": c.measured,
                        "what": c.what,
                        "limit": c.limit,
                        "at_least": c.at_least,
                        "met": c.met,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut out = self.meta.clone();
        out.insert("columns".into(), json!(columns));
        out.insert("rows".into(), json!(rows));
        out.insert("protocol_memcpy_mbps".into(), json!(self.memcpy_mbps));
        out.insert("targets".into(), json!(targets));
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_targets() {
        let mut r = Results::default();
        r.add("submit_wait", NATIVE, &[10.0, 10.0, 12.0]);
        r.add("submit_wait", OURS_VTEST, &[20.0]);
        r.add("submit_wait", MESA_OURS, &[200.0]);
        r.add("map_write", NATIVE, &[10.0]);
        r.add("map_write", OURS_INPROC, &[9.0]);
        r.na("map_write", MESA_VIRGL, "cannot map".into());
        assert_eq!(r.ratio("submit_wait", OURS_VTEST), Some(2.0));
        assert_eq!(r.speed("submit_wait", OURS_VTEST), Some(0.5));
        assert_eq!(r.speed("map_write", OURS_INPROC), Some(0.9));
        let targets = r.targets();
        let sync = targets.iter().find(|t| t.id == "sync_vs_mesa").unwrap();
        assert!(sync.checks[0].met, "10x faster than Mesa");
        let mapped = targets.iter().find(|t| t.id == "mapped_memory").unwrap();
        assert!(!mapped.met());
        let md = r.markdown();
        assert!(
            md.contains("n/a [1]") && md.contains("[1] cannot map"),
            "{md}"
        );
        assert_eq!(sig3(1234.6), "1235");
        assert_eq!(sig3(0.01234), "0.0123");
    }
}
