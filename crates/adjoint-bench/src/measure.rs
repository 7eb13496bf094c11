//! The output line of the workload suite; the timing is [`crate::timing`], the procedure
//! `benches/WORKLOADS.md` fixes for all three frameworks.

use serde_json::{json, Map, Value};

pub use crate::timing::{measure, Plan, Stats};

/// One result line of the suite's output format.
pub struct Line {
    pub workload: &'static str,
    pub variant: &'static str,
    pub stats: Stats,
    pub notes: String,
    /// Extra keys (`check`, …).
    pub extra: Map<String, Value>,
}

impl Line {
    pub fn new(
        workload: &'static str,
        variant: &'static str,
        stats: Stats,
        notes: impl Into<String>,
    ) -> Line {
        Line { workload, variant, stats, notes: notes.into(), extra: Map::new() }
    }

    /// Adds an extra key.
    pub fn with(mut self, key: &str, value: Value) -> Line {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// Prints the JSON line on stdout (flushed by the line-buffered lock on drop).
    pub fn print(self) {
        let mut v = json!({
            "workload": self.workload,
            "framework": "adjoint",
            "variant": self.variant,
            "median_s": self.stats.median_s,
            "p10_s": self.stats.p10_s,
            "p90_s": self.stats.p90_s,
            "notes": self.notes,
        });
        let obj = v.as_object_mut().expect("a JSON object");
        obj.insert("batch".into(), json!(self.stats.batch));
        obj.insert("samples".into(), json!(self.stats.samples));
        obj.extend(self.extra);
        println!("{v}");
    }
}
