//! The provider engine's Prometheus metrics ([`ProviderMetrics`]); `docs/provider.md`
//! lists them.

use std::time::Instant;

use lilypad_core::{settlement::Outcome, state::JobFailure};
use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The steps of a deal the engine times (`phase` label of
/// `lilypad_provider_phase_duration_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Inputs checked against the deal, the module fetched and rendered.
    Prepare,
    /// The module's image made present (pulled if missing).
    Image,
    /// The job's input files fetched from storage.
    Inputs,
    /// The job in its sandbox.
    Run,
    /// The results published to storage.
    Publish,
    /// `submitResults` on chain, to its receipt.
    Submit,
}

impl Phase {
    pub(crate) const ALL: [Self; 6] =
        [Self::Prepare, Self::Image, Self::Inputs, Self::Run, Self::Publish, Self::Submit];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Prepare => "prepare",
            Self::Image => "image",
            Self::Inputs => "inputs",
            Self::Run => "run",
            Self::Publish => "publish",
            Self::Submit => "submit",
        }
    }
}

/// Why a deal ended without this provider's results (`reason` label of
/// `lilypad_provider_deals_failed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailReason {
    /// The deal was over, gone or past its deadline on chain before the provider could act.
    DealClosed,
    /// The module is not in this provider's allowlist.
    ModuleNotAllowed,
    /// The network's registry blocks the module.
    ModuleBlocked,
    /// The image could not be had for a reason the job creator did not cause.
    ImageError,
    /// No time was left before the submit deadline to run the job.
    NoTimeLeft,
    /// The executor could not run the job (not a failure inside the sandbox).
    RunError,
    /// Reported on chain: the job creator's fault (one per [`JobFailure`]).
    Reported(JobFailure),
}

impl FailReason {
    pub(crate) const ALL: [Self; 9] = [
        Self::DealClosed,
        Self::ModuleNotAllowed,
        Self::ModuleBlocked,
        Self::ImageError,
        Self::NoTimeLeft,
        Self::RunError,
        Self::Reported(JobFailure::ImageUnavailable),
        Self::Reported(JobFailure::ModuleUnresolvable),
        Self::Reported(JobFailure::InputsRejected),
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::DealClosed => "deal_closed",
            Self::ModuleNotAllowed => "module_not_allowed",
            Self::ModuleBlocked => "module_blocked",
            Self::ImageError => "image_error",
            Self::NoTimeLeft => "no_time_left",
            Self::RunError => "run_error",
            Self::Reported(JobFailure::ImageUnavailable) => "reported_image_unavailable",
            Self::Reported(JobFailure::ModuleUnresolvable) => "reported_module_unresolvable",
            Self::Reported(JobFailure::InputsRejected) => "reported_inputs_rejected",
        }
    }
}

/// The `outcome` label of `lilypad_provider_deals_completed_total`.
pub(crate) const fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Accepted => "accepted",
        Outcome::NoResultsInTime => "no_results_in_time",
        Outcome::NoJudgementInTime => "no_judgement_in_time",
        Outcome::MediationAccepted => "mediation_accepted",
        Outcome::MediationRejected => "mediation_rejected",
        Outcome::NoMediationInTime => "no_mediation_in_time",
        Outcome::FailureAccepted => "failure_accepted",
        Outcome::FailureUpheld => "failure_upheld",
        Outcome::FailureRefuted => "failure_refuted",
        Outcome::FailureNoMediationInTime => "failure_no_mediation_in_time",
    }
}

/// The engine's metrics, in a registry of their own. Cheap to clone (the clones share
/// the values): the daemon serves [`Self::render`] with [`crate::metrics::serve`].
#[derive(Debug, Clone)]
pub struct ProviderMetrics {
    registry: Registry,
    pub(crate) jobs_running: IntGaugeVec,
    pub(crate) deals_in_flight: IntGauge,
    pub(crate) phase_seconds: HistogramVec,
    pub(crate) deals_completed: IntCounterVec,
    pub(crate) deals_failed: IntCounterVec,
    pub(crate) offers_posted: IntCounterVec,
    pub(crate) retries: IntCounterVec,
    mining_proofs: IntCounter,
}

impl Default for ProviderMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ProviderMetrics {
    /// Fresh metrics, all at zero.
    pub fn new() -> Self {
        // Fixed names and label sets: registering them cannot fail (tested).
        Self::build().unwrap_or_else(|e| unreachable!("provider metrics: {e}"))
    }

    fn build() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let jobs_running = IntGaugeVec::new(
            Opts::new(
                "lilypad_provider_jobs_running",
                "Jobs running in their sandbox now, by slot",
            ),
            &["slot"],
        )?;
        let deals_in_flight = IntGauge::new(
            "lilypad_provider_deals_in_flight",
            "Deals recorded and not over yet (received to submitted), as of the last round",
        )?;
        let phase_seconds = crate::metrics::phase_histogram(
            "lilypad_provider_phase_duration_seconds",
            "Duration of each attempt at a step of a deal, by phase",
        )?;
        let deals_completed = IntCounterVec::new(
            Opts::new(
                "lilypad_provider_deals_completed_total",
                "Deals this provider saw end on chain, by outcome",
            ),
            &["outcome"],
        )?;
        let deals_failed = IntCounterVec::new(
            Opts::new(
                "lilypad_provider_deals_failed_total",
                "Deals given up or reported as impossible on chain, by reason",
            ),
            &["reason"],
        )?;
        let offers_posted = IntCounterVec::new(
            Opts::new("lilypad_provider_offers_posted_total", "Resource offers posted, by slot"),
            &["slot"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "lilypad_provider_step_retries_total",
                "Deal steps that failed and will be tried again, by phase",
            ),
            &["phase"],
        )?;
        let mining_proofs = IntCounter::new(
            "lilypad_provider_mining_proofs_total",
            "Proof-of-work proofs accepted on chain (--mine)",
        )?;
        registry.register(Box::new(jobs_running.clone()))?;
        registry.register(Box::new(deals_in_flight.clone()))?;
        registry.register(Box::new(phase_seconds.clone()))?;
        registry.register(Box::new(deals_completed.clone()))?;
        registry.register(Box::new(deals_failed.clone()))?;
        registry.register(Box::new(offers_posted.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(mining_proofs.clone()))?;
        // The labelled series of bounded sets show from the start (at 0), so a rate()
        // over them has a first sample.
        for p in Phase::ALL {
            phase_seconds.with_label_values(&[p.as_str()]);
        }
        for r in FailReason::ALL {
            deals_failed.with_label_values(&[r.as_str()]);
        }
        Ok(Self {
            registry,
            jobs_running,
            deals_in_flight,
            phase_seconds,
            deals_completed,
            deals_failed,
            offers_posted,
            retries,
            mining_proofs,
        })
    }

    /// Counts one proof-of-work proof accepted on chain (the daemon's miners call it).
    pub fn count_mining_proof(&self) {
        self.mining_proofs.inc();
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

    pub(crate) fn failed(&self, reason: FailReason) {
        self.deals_failed.with_label_values(&[reason.as_str()]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::is_label;

    #[test]
    fn label_sets_are_bounded_snake_case_words_without_duplicates() {
        let phases: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        let reasons: Vec<&str> = FailReason::ALL.iter().map(|r| r.as_str()).collect();
        let outcomes = [
            Outcome::Accepted,
            Outcome::NoResultsInTime,
            Outcome::NoJudgementInTime,
            Outcome::MediationAccepted,
            Outcome::MediationRejected,
            Outcome::NoMediationInTime,
            Outcome::FailureAccepted,
            Outcome::FailureUpheld,
            Outcome::FailureRefuted,
            Outcome::FailureNoMediationInTime,
        ]
        .map(outcome_label);
        for set in [&phases[..], &reasons[..], &outcomes[..]] {
            let unique: std::collections::BTreeSet<_> = set.iter().collect();
            assert_eq!(unique.len(), set.len(), "duplicate label in {set:?}");
            assert!(set.iter().all(|l| is_label(l)), "{set:?}");
        }
        // Every on-chain failure reason has its own label.
        for f in JobFailure::ALL {
            assert!(FailReason::ALL.contains(&FailReason::Reported(f)), "{f:?}");
        }
    }

    #[test]
    fn every_metric_registers_and_bounded_series_start_at_zero() {
        let m = ProviderMetrics::build().expect("metrics register");
        let text = m.render();
        for p in Phase::ALL {
            let line = format!(
                "lilypad_provider_phase_duration_seconds_count{{phase=\"{}\"}} 0",
                p.as_str()
            );
            assert!(text.contains(&line), "{line} missing from:\n{text}");
        }
        for r in FailReason::ALL {
            let line =
                format!("lilypad_provider_deals_failed_total{{reason=\"{}\"}} 0", r.as_str());
            assert!(text.contains(&line), "{line} missing from:\n{text}");
        }
        m.count_mining_proof();
        assert!(m.render().contains("lilypad_provider_mining_proofs_total 1"));
        assert!(m.render().contains("lilypad_provider_deals_in_flight 0"));
    }
}
