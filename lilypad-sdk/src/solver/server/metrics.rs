//! Prometheus metrics of one solver (its own registry, so several solvers can
//! run in one process, e.g. in tests).

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// The solver's metrics.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) offers_accepted: IntCounterVec,
    pub(crate) offers_rejected: IntCounterVec,
    pub(crate) deals_created: IntCounter,
    pub(crate) deal_failures: IntCounterVec,
    pub(crate) open_offers: IntGaugeVec,
    pub(crate) chain_block: IntGauge,
    /// 1 while this replica holds the lease and matches (always 1 on SQLite).
    pub(crate) leader: IntGauge,
    pub(crate) request_seconds: HistogramVec,
}

impl Metrics {
    pub(crate) fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let offers_accepted = IntCounterVec::new(
            Opts::new("solver_offers_accepted_total", "Offers stored, by kind"),
            &["kind"],
        )?;
        let offers_rejected = IntCounterVec::new(
            Opts::new("solver_offers_rejected_total", "Offer posts refused, by reason"),
            &["reason"],
        )?;
        let deals_created =
            IntCounter::new("solver_deals_created_total", "Deals created on chain")?;
        let deal_failures = IntCounterVec::new(
            Opts::new(
                "solver_deal_failures_total",
                "createDeal attempts that failed, by kind (revert or transient)",
            ),
            &["kind"],
        )?;
        let open_offers = IntGaugeVec::new(
            Opts::new("solver_open_offers", "Offers waiting for a match, by kind"),
            &["kind"],
        )?;
        let chain_block =
            IntGauge::new("solver_chain_cursor_block", "Next block the chain follower scans")?;
        let leader = IntGauge::new(
            "solver_leader",
            "1 while this replica leads (holds the lease and matches), else 0",
        )?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("solver_http_request_duration_seconds", "HTTP request latency")
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
            &["method", "route", "status"],
        )?;
        registry.register(Box::new(offers_accepted.clone()))?;
        registry.register(Box::new(offers_rejected.clone()))?;
        registry.register(Box::new(deals_created.clone()))?;
        registry.register(Box::new(deal_failures.clone()))?;
        registry.register(Box::new(open_offers.clone()))?;
        registry.register(Box::new(chain_block.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        Ok(Self {
            registry,
            offers_accepted,
            offers_rejected,
            deals_created,
            deal_failures,
            open_offers,
            chain_block,
            leader,
            request_seconds,
        })
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        crate::metrics::render(&self.registry)
    }
}
