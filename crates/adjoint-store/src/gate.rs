//! The release gate: [`Registry::promote`] checks a candidate against the policy's rules for its
//! model before moving the alias.
//!
//! Checks, each named in a refusal: the candidate has an evaluation record; each overall
//! threshold holds; no slice regresses by more than its rule allows against the evaluation of
//! the version the alias points to now. Every decision on a model with rules — passed, refused,
//! or overridden (with the reason and the signer) — is a signed `gate` record about
//! `model@alias`, so refusals are on file too. A model without rules promotes as before.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::evaluation::Evaluation;
use crate::keys::Signer;
use crate::models::parse_alias_spec;
use crate::policy::ModelPolicy;
use crate::registry::Registry;

/// One check of the gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateCheck {
    /// What was checked, e.g. `threshold mae <= 1.2` or `slice stock=AAPL mae regression <= 0.05`.
    pub check: String,
    /// Whether it held.
    pub passed: bool,
    /// The values behind the verdict.
    pub detail: String,
}

/// A signed gate decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateDecision {
    /// `model@alias`.
    pub target: String,
    /// The candidate checkpoint.
    pub candidate: String,
    /// The version the alias pointed to when the gate ran.
    pub current_version: Option<u32>,
    /// Every check.
    pub checks: Vec<GateCheck>,
    /// `passed`, `refused` or `override`.
    pub outcome: String,
    /// The override's reason.
    pub reason: Option<String>,
    /// The version promoted (none when refused).
    pub promoted_version: Option<u32>,
}

impl GateDecision {
    /// The failed checks as `check (detail)`.
    pub fn failed(&self) -> Vec<String> {
        self.checks.iter().filter(|c| !c.passed).map(|c| format!("{} ({})", c.check, c.detail)).collect()
    }
}

fn fmt(x: f64) -> String {
    format!("{x:.6}")
}

/// The checks of `rules` for `cand` against `current` (the alias's version's evaluation).
pub fn gate_checks(
    rules: &ModelPolicy,
    cand: Option<&Evaluation>,
    current: Option<(u32, Option<&Evaluation>)>,
) -> Vec<GateCheck> {
    let mut out = Vec::new();
    let Some(cand) = cand else {
        out.push(GateCheck {
            check: "evaluation record".into(),
            passed: false,
            detail: "the candidate checkpoint has no evaluation record".into(),
        });
        return out;
    };
    for t in &rules.thresholds {
        let v = cand.metrics.get(&t.metric).copied();
        let mut bound = |op: &str, b: f64, ok: fn(f64, f64) -> bool| {
            let (passed, detail) = match v {
                Some(v) => (ok(v, b), format!("{} = {}", t.metric, fmt(v))),
                None => (false, format!("the evaluation has no metric {:?}", t.metric)),
            };
            out.push(GateCheck { check: format!("threshold {} {op} {b}", t.metric), passed, detail });
        };
        if let Some(min) = t.min {
            bound(">=", min, |v, b| v >= b);
        }
        if let Some(max) = t.max {
            bound("<=", max, |v, b| v <= b);
        }
    }
    if rules.max_slice_regression.is_empty() {
        return out;
    }
    let Some((version, cur)) = current else { return out };
    let Some(cur) = cur else {
        out.push(GateCheck {
            check: "slice regression".into(),
            passed: false,
            detail: format!("the current version {version} has no evaluation record to compare slices with"),
        });
        return out;
    };
    let before = cur.slice_map();
    for rule in &rules.max_slice_regression {
        for s in &cand.slices {
            let (Some(now), Some(was)) =
                (s.metrics.get(&rule.metric), before.get(s.name.as_str()).and_then(|m| m.get(&rule.metric)))
            else {
                continue;
            };
            let worse = if rule.higher_is_better { was - now } else { now - was };
            out.push(GateCheck {
                check: format!("slice {} {} regression <= {}", s.name, rule.metric, rule.max),
                passed: worse <= rule.max,
                detail: format!(
                    "{} vs {} in version {version} (worse by {})",
                    fmt(*now),
                    fmt(*was),
                    fmt(worse)
                ),
            });
        }
    }
    out
}

impl Registry {
    /// The gate's decision for promoting `checkpoint` to `target` (nothing is recorded or
    /// moved); `None` when the policy has no rules for the model.
    pub fn evaluate_gate(&self, checkpoint: &str, target: &str) -> Result<Option<GateDecision>> {
        let (model, alias) = parse_alias_spec(target)?;
        let policy = self.policy()?;
        let Some(rules) = policy.models.get(model) else { return Ok(None) };
        let sha = self.resolve(checkpoint)?;
        let cand = self.latest_evaluation(&sha)?;
        let current = match self.alias_version(model, alias) {
            Ok(v) => {
                let cur_sha = self.model_version(model, v)?.sha256;
                Some((v, cur_sha))
            }
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let cur_eval = match &current {
            Some((_, s)) => self.latest_evaluation(s)?,
            None => None,
        };
        let checks =
            gate_checks(rules, cand.as_ref(), current.as_ref().map(|(v, _)| (*v, cur_eval.as_ref())));
        let passed = checks.iter().all(|c| c.passed);
        Ok(Some(GateDecision {
            target: target.into(),
            candidate: sha,
            current_version: current.map(|(v, _)| v),
            checks,
            outcome: if passed { "passed" } else { "refused" }.into(),
            reason: None,
            promoted_version: None,
        }))
    }

    /// Publishes `checkpoint` as a version of the model (if it is not one already) and points
    /// `model@alias` at it, if the release gate allows (see the module docs). Requires a writer
    /// key. A refusal is recorded and returned as [`StoreError::GateRefused`] naming each failed
    /// check. Returns the version.
    pub fn promote(&self, checkpoint: &str, target: &str, by: &Signer) -> Result<u32> {
        self.promote_gated(checkpoint, target, by, None).map(|(v, _)| v)
    }

    /// [`Registry::promote`], with `override_reason` promoting despite failed checks (the
    /// decision records the reason and the signer). Returns the version and the decision
    /// (`None` when the model has no rules).
    pub fn promote_gated(
        &self,
        checkpoint: &str,
        target: &str,
        by: &Signer,
        override_reason: Option<&str>,
    ) -> Result<(u32, Option<GateDecision>)> {
        self.require_writer(&by.key_id(), &format!("move alias {target}"))?;
        if let Some(r) = override_reason
            && r.trim().is_empty()
        {
            return Err(StoreError::invalid("override", "the reason must not be empty"));
        }
        let Some(mut d) = self.evaluate_gate(checkpoint, target)? else {
            return Ok((self.promote_unchecked(checkpoint, target, by)?, None));
        };
        if d.outcome == "refused" {
            match override_reason {
                None => {
                    let record = self.append_record("gate", target, &d, by, &[])?;
                    return Err(StoreError::GateRefused {
                        target: target.into(),
                        failed: d.failed(),
                        record,
                    });
                }
                Some(r) => {
                    d.outcome = "override".into();
                    d.reason = Some(r.into());
                }
            }
        }
        let v = self.promote_unchecked(checkpoint, target, by)?;
        d.promoted_version = Some(v);
        self.append_record("gate", target, &d, by, &[])?;
        Ok((v, Some(d)))
    }

    /// Gate decisions (for `model@alias`, or all), oldest first, with their signers.
    pub fn gate_decisions(&self, target: Option<&str>) -> Result<Vec<(GateDecision, String, String)>> {
        self.records("gate", target)?
            .into_iter()
            .map(|r| Ok((r.parse()?, r.key_id.clone(), r.created_at.clone())))
            .collect()
    }
}
