//! Monitoring a model that is updated online: rolling metrics, alerts, automatic rollback.
//!
//! A [`Monitor`] watches the version `model@alias` points to when it starts. Observations
//! (e.g. each day's absolute error, fed as it becomes known) are grouped into windows of
//! `window` values; each window's mean is recorded (a signed `monitor` record about
//! `model@alias`) as soon as the window closes. A window *breaches* when its mean exceeds the
//! policy's `bound`, or the frozen reference error times `1 + tolerance` — the reference is
//! either fixed ([`Monitor::new`]) or the frozen model's error on the same observations, given
//! with each one ([`Monitor::observe_against`]), whose window mean is then the reference. After `k` consecutive breaching windows the monitor
//! records a signed `alert` and, when the policy says `auto_rollback` and the alias still
//! points to the watched version, rolls the alias back through the ordinary signed
//! [`Registry::rollback`] (so the alias history stays one consistent stack) and names the move
//! in the alert. The breach counter then restarts; a monitor rolls back at most once.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::keys::Signer;
use crate::models::parse_alias_spec;
use crate::policy::MonitorPolicy;
use crate::registry::Registry;

/// One closed window (the body of a `monitor` record).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonitorWindow {
    /// The watched version.
    pub version: u32,
    /// Window number (1, 2, …) of this monitor.
    pub window: u64,
    /// Mean of the window's observations.
    pub mean: f64,
    /// The limit it was compared with.
    pub limit: f64,
    /// Whether it breached.
    pub breach: bool,
}

/// A signed alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `model@alias`.
    pub target: String,
    /// The watched version.
    pub version: u32,
    /// First and last window of the breaching run.
    pub windows: (u64, u64),
    /// Their means.
    pub means: Vec<f64>,
    /// The limit.
    pub limit: f64,
    /// What the limit came from.
    pub reason: String,
    /// `(from, to)` when the alias was rolled back automatically.
    pub rolled_back: Option<(u32, u32)>,
}

/// Watches one alias; see the module docs. Create with [`Registry::monitor`] or
/// [`Monitor::new`].
///
/// ```
/// use adjoint_store::{Monitor, MonitorPolicy, Registry, Signer};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let reg = Registry::open(tmp.path().join("runs"))?;
/// # let signer = Signer::generate();
/// # let mut run = reg.start_run(&signer, "m", serde_json::json!({}), 0)?;
/// # let ck = tmp.path().join("w"); std::fs::write(&ck, b"w").unwrap();
/// # let h = run.add_checkpoint(&ck, "final")?; run.finish(Default::default())?;
/// reg.promote(&h, "m@prod", &signer)?;
/// let policy = MonitorPolicy { window: 2, k: 2, bound: Some(1.0), tolerance: 0.25, auto_rollback: false };
/// let mut mon = Monitor::new(&reg, "m@prod", None, policy, &signer)?;
/// for e in [0.5, 0.5, 2.0, 2.0, 3.0, 3.0] {
///     mon.observe(e)?;
/// }
/// assert_eq!(mon.alerts().len(), 1);
/// # Ok::<(), adjoint_store::StoreError>(())
/// ```
#[derive(Debug)]
pub struct Monitor<'r> {
    reg: &'r Registry,
    target: String,
    version: u32,
    policy: MonitorPolicy,
    reference: Option<f64>,
    signer: Signer,
    buf: Vec<(f64, Option<f64>)>,
    window: u64,
    breaching: Vec<(u64, f64)>,
    rolled_back: bool,
    alerts: Vec<Alert>,
}

impl<'r> Monitor<'r> {
    /// A monitor of `target` (`model@alias`) with explicit rules; `reference` is a fixed frozen
    /// reference error, when known (a window needs a bound or a reference to be judged).
    pub fn new(
        reg: &'r Registry,
        target: &str,
        reference: Option<f64>,
        policy: MonitorPolicy,
        signer: &Signer,
    ) -> Result<Monitor<'r>> {
        let (model, alias) = parse_alias_spec(target)?;
        if policy.window == 0 || policy.k == 0 {
            return Err(StoreError::invalid("monitor policy", "window and k must be at least 1"));
        }
        reg.require_trusted(&signer.key_id(), &format!("monitoring of {target}"))?;
        let version = reg.alias_version(model, alias)?;
        Ok(Monitor {
            reg,
            target: target.into(),
            version,
            policy,
            reference,
            signer: signer.clone(),
            buf: Vec::new(),
            window: 0,
            breaching: Vec::new(),
            rolled_back: false,
            alerts: Vec::new(),
        })
    }

    /// `(limit, what it came from)` of a window whose observations came with `refs`: the lower
    /// of the bound and reference · (1 + tolerance), the reference being the window mean of
    /// `refs` when every observation had one, else the fixed reference.
    fn limit(&self, refs: Option<f64>) -> Result<(f64, String)> {
        let tol = self.policy.tolerance;
        let rel = match refs {
            Some(r) => {
                Some((r * (1.0 + tol), format!("the frozen model's window error {r:.6} × (1 + {tol})")))
            }
            None => self
                .reference
                .filter(|r| r.is_finite())
                .map(|r| (r * (1.0 + tol), format!("reference {r:.6} × (1 + {tol})"))),
        };
        let abs = self.policy.bound.map(|b| (b, format!("policy bound {b}")));
        match (rel, abs) {
            (Some(a), Some(b)) => Ok(if a.0 <= b.0 { a } else { b }),
            (Some(a), None) | (None, Some(a)) => Ok(a),
            (None, None) => Err(StoreError::invalid(
                "monitor policy",
                format!("{}: neither a bound nor a reference error to compare the window with", self.target),
            )),
        }
    }

    /// Adds one observation; when it closes a window, records the window and returns an alert
    /// if this window completes `k` consecutive breaches. A non-finite observation makes its
    /// window breach.
    pub fn observe(&mut self, value: f64) -> Result<Option<Alert>> {
        self.observe_against(value, None)
    }

    /// [`Monitor::observe`] with the frozen model's error on the same observation as the
    /// reference (see the module docs).
    pub fn observe_against(&mut self, value: f64, reference: Option<f64>) -> Result<Option<Alert>> {
        self.buf.push((value, reference));
        if self.buf.len() < self.policy.window {
            return Ok(None);
        }
        let n = self.buf.len() as f64;
        let mean = self.buf.iter().map(|b| b.0).sum::<f64>() / n;
        let refs = self.buf.iter().map(|b| b.1).sum::<Option<f64>>().map(|s| s / n);
        self.buf.clear();
        self.window += 1;
        let (limit, why) = self.limit(refs)?;
        let breach = mean > limit || mean.is_nan();
        let w = MonitorWindow { version: self.version, window: self.window, mean, limit, breach };
        self.reg.append_record("monitor", &self.target, &w, &self.signer, &[])?;
        if !breach {
            self.breaching.clear();
            return Ok(None);
        }
        self.breaching.push((self.window, mean));
        if self.breaching.len() < self.policy.k {
            return Ok(None);
        }
        let (model, alias) = parse_alias_spec(&self.target)?;
        let mut rolled_back = None;
        if self.policy.auto_rollback
            && !self.rolled_back
            && self.reg.alias_version(model, alias)? == self.version
        {
            rolled_back = Some(self.reg.rollback(&self.target, &self.signer)?);
            self.rolled_back = true;
        }
        let alert = Alert {
            target: self.target.clone(),
            version: self.version,
            windows: (self.breaching[0].0, self.window),
            means: self.breaching.iter().map(|b| b.1).collect(),
            limit,
            reason: format!("{} consecutive windows of {} above {why}", self.policy.k, self.policy.window),
            rolled_back,
        };
        self.breaching.clear();
        self.reg.append_record("alert", &self.target, &alert, &self.signer, &[])?;
        self.alerts.push(alert.clone());
        Ok(Some(alert))
    }

    /// Alerts this monitor raised.
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// Windows closed so far.
    pub fn windows(&self) -> u64 {
        self.window
    }
}

impl Registry {
    /// A monitor of `target` with the rules the policy gives its model (an error naming the
    /// model when the policy has no `monitor` entry for it).
    pub fn monitor(&self, target: &str, reference: Option<f64>, signer: &Signer) -> Result<Monitor<'_>> {
        let (model, _) = parse_alias_spec(target)?;
        let policy = self.policy()?.models.get(model).and_then(|m| m.monitor.clone()).ok_or_else(|| {
            StoreError::NotFound(format!("a monitor entry for model {model} in the registry policy"))
        })?;
        Monitor::new(self, target, reference, policy, signer)
    }

    /// Alerts (about `model@alias` when given), oldest first, with signer and time.
    pub fn alerts(&self, target: Option<&str>) -> Result<Vec<(Alert, String, String)>> {
        self.records("alert", target)?
            .into_iter()
            .map(|r| Ok((r.parse()?, r.key_id.clone(), r.created_at.clone())))
            .collect()
    }

    /// The recorded rolling-metric windows of `model@alias`, oldest first.
    pub fn monitor_windows(&self, target: &str) -> Result<Vec<MonitorWindow>> {
        self.records("monitor", Some(target))?.iter().map(|r| r.parse()).collect()
    }
}
