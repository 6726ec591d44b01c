//! The bridge's Prometheus metrics ([`BridgeMetrics`]); `docs/bridge.md` lists them.

use std::time::Instant;

use prometheus::{HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// What the bridge times (`phase` label of `lilypad_bridge_phase_duration_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// One scan of the manager's events up to the confirmed head.
    Scan,
    /// One run of a job by the runner (the network's job flow).
    Run,
    /// `fulfill` sent, to its receipt.
    Fulfill,
    /// `cancel` sent, to its receipt.
    Cancel,
}

impl Phase {
    pub(crate) const ALL: [Self; 4] = [Self::Scan, Self::Run, Self::Fulfill, Self::Cancel];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Scan => "scan",
            Self::Run => "run",
            Self::Fulfill => "fulfill",
            Self::Cancel => "cancel",
        }
    }
}

/// What went wrong (`reason` label of `lilypad_bridge_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A run failed in a way worth retrying; the job is backed off.
    RunRetry,
    /// A run failed for good (or out of attempts); the job is cancelled.
    RunFailed,
    /// The job's deadline passed before its results could be posted; it is cancelled.
    Expired,
    /// The results cannot be posted (CID length, or the manager refused them); cancelled.
    ResultsRejected,
    /// A step failed (chain, database); the job is backed off.
    StepError,
    /// Scanning the chain or claiming jobs failed.
    ScanError,
    /// A job's driver panicked; its lease expires and the job is taken up again.
    DriverPanic,
}

impl Failure {
    pub(crate) const ALL: [Self; 7] = [
        Self::RunRetry,
        Self::RunFailed,
        Self::Expired,
        Self::ResultsRejected,
        Self::StepError,
        Self::ScanError,
        Self::DriverPanic,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::RunRetry => "run_retry",
            Self::RunFailed => "run_failed",
            Self::Expired => "expired",
            Self::ResultsRejected => "results_rejected",
            Self::StepError => "step_error",
            Self::ScanError => "scan_error",
            Self::DriverPanic => "driver_panic",
        }
    }
}

/// The `outcome` label of `lilypad_bridge_jobs_ended_total`.
pub(crate) const OUTCOMES: [&str; 2] = ["fulfilled", "cancelled"];

/// The bridge's metrics, in a registry of their own. Cheap to clone (the clones share
/// the values): `lilypad-cli bridge run` serves [`Self::render`] with
/// [`crate::metrics::serve`].
#[derive(Debug, Clone)]
pub struct BridgeMetrics {
    registry: Registry,
    pub(crate) jobs_in_flight: IntGauge,
    phase_seconds: HistogramVec,
    pub(crate) jobs_ended: IntCounterVec,
    failures: IntCounterVec,
}

impl Default for BridgeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl BridgeMetrics {
    /// Fresh metrics, all at zero.
    pub fn new() -> Self {
        // Fixed names and label sets: registering them cannot fail (tested).
        Self::build().unwrap_or_else(|e| unreachable!("bridge metrics: {e}"))
    }

    fn build() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let jobs_in_flight = IntGauge::new(
            "lilypad_bridge_jobs_in_flight",
            "Jobs this instance is driving now (claimed, not over or released)",
        )?;
        let phase_seconds = crate::metrics::phase_histogram(
            "lilypad_bridge_phase_duration_seconds",
            "Duration of each scan, run and fulfill or cancel transaction, by phase",
        )?;
        let jobs_ended = IntCounterVec::new(
            Opts::new(
                "lilypad_bridge_jobs_ended_total",
                "Jobs this instance ended on chain with its own transaction, by outcome",
            ),
            &["outcome"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new("lilypad_bridge_failures_total", "Failures, by reason"),
            &["reason"],
        )?;
        registry.register(Box::new(jobs_in_flight.clone()))?;
        registry.register(Box::new(phase_seconds.clone()))?;
        registry.register(Box::new(jobs_ended.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        // Bounded label sets show from the start (at 0).
        for p in Phase::ALL {
            phase_seconds.with_label_values(&[p.as_str()]);
        }
        for o in OUTCOMES {
            jobs_ended.with_label_values(&[o]);
        }
        for f in Failure::ALL {
            failures.with_label_values(&[f.as_str()]);
        }
        Ok(Self { registry, jobs_in_flight, phase_seconds, jobs_ended, failures })
    }

    /// The text exposition format of every metric.
    pub fn render(&self) -> String {
        crate::metrics::render(&self.registry)
    }

    /// Observes the time since `since` for `phase`.
    pub(crate) fn observe(&self, phase: Phase, since: Instant) {
        self.phase_seconds
            .with_label_values(&[phase.as_str()])
            .observe(since.elapsed().as_secs_f64());
    }

    pub(crate) fn failed(&self, f: Failure) {
        self.failures.with_label_values(&[f.as_str()]).inc();
    }
}

/// Holds the in-flight gauge one higher for as long as it lives.
pub(crate) struct InFlight(IntGauge);

impl InFlight {
    pub(crate) fn new(m: &BridgeMetrics) -> Self {
        m.jobs_in_flight.inc();
        Self(m.jobs_in_flight.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::is_label;

    #[test]
    fn label_sets_are_bounded_snake_case_words_without_duplicates() {
        let phases: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        let failures: Vec<&str> = Failure::ALL.iter().map(|f| f.as_str()).collect();
        for set in [&phases[..], &failures[..], &OUTCOMES[..]] {
            let unique: std::collections::BTreeSet<_> = set.iter().collect();
            assert_eq!(unique.len(), set.len(), "duplicate label in {set:?}");
            assert!(set.iter().all(|l| is_label(l)), "{set:?}");
        }
    }

    #[test]
    fn every_metric_registers_and_bounded_series_start_at_zero() {
        let m = BridgeMetrics::build().expect("metrics register");
        let text = m.render();
        for f in Failure::ALL {
            let line = format!("lilypad_bridge_failures_total{{reason=\"{}\"}} 0", f.as_str());
            assert!(text.contains(&line), "{line} missing from:\n{text}");
        }
        for o in OUTCOMES {
            let line = format!("lilypad_bridge_jobs_ended_total{{outcome=\"{o}\"}} 0");
            assert!(text.contains(&line), "{line} missing from:\n{text}");
        }
        {
            let _a = InFlight::new(&m);
            let _b = InFlight::new(&m);
            assert!(m.render().contains("lilypad_bridge_jobs_in_flight 2"));
        }
        assert!(m.render().contains("lilypad_bridge_jobs_in_flight 0"));
    }
}
