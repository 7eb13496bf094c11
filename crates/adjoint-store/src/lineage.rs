//! The lineage graph: data → run → checkpoint → (fine-tuned) run → checkpoint → model version.
//!
//! The graph is not stored as a separate edge table: its edges are the registry's own rows
//! (`run_data` gives data → run, `checkpoints` run → checkpoint, `runs.parent` checkpoint → run,
//! `model_versions` checkpoint → version), so it can never disagree with them. `lineage` walks it
//! upstream from a model, alias, checkpoint or run and returns a tree; checkpoints also list what
//! was derived from them downstream.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use rusqlite::params;

use crate::error::{Result, StoreError};
use crate::models::parse_alias_spec;
use crate::registry::Registry;

/// One node of a lineage tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineageNode {
    /// One-line description, e.g. `run 2026…-ab12 "mnist" (finished, seed 42)`.
    pub label: String,
    /// Upstream nodes (what this was made from).
    pub children: Vec<LineageNode>,
}

impl LineageNode {
    fn leaf(label: String) -> LineageNode {
        LineageNode { label, children: Vec::new() }
    }

    /// Renders the tree with box-drawing branches.
    pub fn render(&self) -> String {
        let mut out = format!("{}\n", self.label);
        Self::render_children(&self.children, "", &mut out);
        out
    }

    fn render_children(children: &[LineageNode], prefix: &str, out: &mut String) {
        for (i, c) in children.iter().enumerate() {
            let last = i + 1 == children.len();
            let _ = writeln!(out, "{prefix}{}{}", if last { "└── " } else { "├── " }, c.label);
            Self::render_children(
                &c.children,
                &format!("{prefix}{}", if last { "    " } else { "│   " }),
                out,
            );
        }
    }
}

fn short(h: &str) -> &str {
    &h[..12.min(h.len())]
}

impl Registry {
    /// The upstream lineage of `target`: a model name, `model@alias`, `model:version`, a
    /// checkpoint spec or a run id.
    pub fn lineage(&self, target: &str) -> Result<LineageNode> {
        let mut seen = BTreeSet::new();
        if target.contains('@') {
            let (model, alias) = parse_alias_spec(target)?;
            let v = self.alias_version(model, alias)?;
            let node = self.version_node(model, v, &mut seen)?;
            return Ok(LineageNode { label: format!("alias {target} -> version {v}"), children: vec![node] });
        }
        if let Some((model, v)) = target.split_once(':') {
            let v: u32 = v.parse().map_err(|_| StoreError::invalid("version", format!("{target:?}")))?;
            return self.version_node(model, v, &mut seen);
        }
        let versions = self.model_versions(target)?;
        if !versions.is_empty() {
            let aliases: Vec<String> = self
                .aliases()?
                .into_iter()
                .filter(|(m, _, _)| m == target)
                .map(|(_, a, v)| format!("@{a} -> {v}"))
                .collect();
            let mut children = Vec::new();
            for mv in versions.iter().rev() {
                children.push(self.version_node(target, mv.version, &mut seen)?);
            }
            let al = if aliases.is_empty() { String::new() } else { format!(" [{}]", aliases.join(", ")) };
            return Ok(LineageNode { label: format!("model {target}{al}"), children });
        }
        if !target.contains('/')
            && let Ok(run_id) = self.resolve_run_id(target)
            && !(target.len() >= 6
                && target.chars().all(|c| c.is_ascii_hexdigit())
                && self.resolve(target).is_ok())
        {
            return self.run_node(&run_id, &mut seen);
        }
        let hash = self.resolve(target)?;
        self.checkpoint_node(&hash, &mut seen, true)
    }

    fn version_node(&self, model: &str, v: u32, seen: &mut BTreeSet<String>) -> Result<LineageNode> {
        let mv = self.model_version(model, v)?;
        let ck = self.checkpoint_node(&mv.sha256, seen, false)?;
        Ok(LineageNode {
            label: format!("model {model}:{v} (published {})", mv.created_at),
            children: vec![ck],
        })
    }

    fn checkpoint_node(
        &self,
        hash: &str,
        seen: &mut BTreeSet<String>,
        downstream: bool,
    ) -> Result<LineageNode> {
        let writers: Vec<(String, String)> = self.query("checkpoint writers", |c| {
            let mut st =
                c.prepare("SELECT run_id, label FROM checkpoints WHERE sha256=?1 ORDER BY run_id, seq")?;
            let rows = st.query_map([hash], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        let labels: BTreeSet<&str> = writers.iter().map(|(_, l)| l.as_str()).collect();
        let label =
            format!("checkpoint {} ({})", short(hash), labels.into_iter().collect::<Vec<_>>().join(", "));
        if !seen.insert(format!("ckpt:{hash}")) {
            return Ok(LineageNode::leaf(format!("{label} (see above)")));
        }
        let mut children = Vec::new();
        let runs: BTreeSet<String> = writers.into_iter().map(|(r, _)| r).collect();
        for r in runs {
            let mut n = self.run_node(&r, seen)?;
            n.label = format!("written by {}", n.label);
            children.push(n);
        }
        if downstream {
            let used: Vec<String> = self.query("checkpoint users", |c| {
                let mut st = c.prepare("SELECT run_id FROM runs WHERE parent=?1 ORDER BY run_id")?;
                let rows = st.query_map([hash], |r| r.get(0))?;
                rows.collect()
            })?;
            for r in used {
                children.push(LineageNode::leaf(format!("fine-tuned into run {r} (downstream)")));
            }
            let published: Vec<(String, u32)> = self.query("checkpoint versions", |c| {
                let mut st = c.prepare(
                    "SELECT model, version FROM model_versions WHERE sha256=?1 ORDER BY model, version",
                )?;
                let rows = st.query_map(params![hash], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })?;
            for (m, v) in published {
                children.push(LineageNode::leaf(format!("published as model {m}:{v} (downstream)")));
            }
        }
        Ok(LineageNode { label, children })
    }

    fn run_node(&self, run_id: &str, seen: &mut BTreeSet<String>) -> Result<LineageNode> {
        type Row = (String, String, i64, Option<String>, String);
        let (name, status, seed, parent, code): Row = self.query("read run", |c| {
            c.query_row("SELECT name, status, seed, parent, code FROM runs WHERE run_id=?1", [run_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
        })?;
        let code: serde_json::Value = serde_json::from_str(&code)
            .map_err(|e| StoreError::corrupt(format!("run {run_id}"), format!("code column: {e}")))?;
        let commit = code["git_commit"]
            .as_str()
            .map(|c| format!(", commit {}", &c[..c.len().min(10)]))
            .unwrap_or_default();
        let label = format!("run {run_id} {name:?} ({status}, seed {seed}{commit})");
        if !seen.insert(format!("run:{run_id}")) {
            return Ok(LineageNode::leaf(format!("{label} (see above)")));
        }
        let data: Vec<(String, String)> = self.query("run data", |c| {
            let mut st = c.prepare("SELECT name, sha256 FROM run_data WHERE run_id=?1 ORDER BY seq")?;
            let rows = st.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })?;
        let mut children: Vec<LineageNode> = data
            .into_iter()
            .map(|(n, h)| LineageNode::leaf(format!("data {n} (sha256 {})", short(&h))))
            .collect();
        if let Some(p) = parent {
            let mut n = self.checkpoint_node(&p, seen, false)?;
            n.label = format!("fine-tuned from {}", n.label);
            children.push(n);
        }
        Ok(LineageNode { label, children })
    }
}
