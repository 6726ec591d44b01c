//! The JSON-RPC client: timeouts, retries with backoff, failover across RPC URLs.
//!
//! Built from alloy's own layers: `RetryBackoffLayer` retries rate limits and
//! transport failures with backoff, and `FallbackService` fails over across the
//! network's `rpc_urls`. The fallback service runs every method in its
//! *sequential* set one node at a time, best-ranked first, moving on when a node
//! fails; other methods are sent to all nodes at once. We list every method the
//! client uses as sequential, which turns it into a plain failover list: nodes are
//! tried in the order of the file until one misbehaves, and a JSON-RPC error (a
//! revert) is an answer, not a failure. Each HTTP request has the network's
//! timeout (reqwest has none by default).
//!
//! `ws://` and `wss://` URLs are WebSocket connections (alloy's pubsub transport, which
//! reconnects by itself) and take their place in the same failover list; every request
//! on them is bounded by the client's own timeout. A WebSocket node that cannot be
//! reached at connect time is left out while another URL remains.

use std::collections::HashSet;

use alloy::{
    pubsub::PubSubConnect,
    rpc::client::{ClientBuilder, RpcClient},
    transports::{
        BoxTransport, IntoBoxTransport, RpcError, TransportError,
        http::{Http, reqwest},
        layers::{FallbackService, RateLimitRetryPolicy, RetryBackoffLayer},
        ws::WsConnect,
    },
};

use super::{
    config::{ConfigError, NetworkConfig},
    error::ChainError,
};

/// Every JSON-RPC method the SDK sends; all of them fail over one node at a time.
const METHODS: &[&str] = &[
    "eth_blockNumber",
    "eth_call",
    "eth_chainId",
    "eth_estimateGas",
    "eth_feeHistory",
    "eth_gasPrice",
    "eth_getBalance",
    "eth_getBlockByNumber",
    "eth_getCode",
    "eth_getFilterChanges",
    "eth_getLogs",
    "eth_getTransactionByHash",
    "eth_getTransactionCount",
    "eth_getTransactionReceipt",
    "eth_maxPriorityFeePerGas",
    "eth_newFilter",
    "eth_sendRawTransaction",
    "eth_sendRawTransactionSync",
    "eth_sendTransactionSync",
    "eth_uninstallFilter",
];

/// Whether a failure is worth retrying: rate limits, unavailable nodes and
/// failures below JSON-RPC (connection refused or reset, HTTP timeouts).
fn transient(e: &TransportError) -> bool {
    matches!(e, RpcError::Transport(_))
}

fn invalid_url(cfg: &NetworkConfig, url: &str) -> ChainError {
    ChainError::Config(ConfigError::Invalid {
        network: cfg.name.clone(),
        field: "rpc_urls",
        value: url.to_owned(),
        reason: "not a valid URL",
    })
}

/// Whether `url` is a WebSocket URL.
pub(crate) fn is_ws(url: &str) -> bool {
    url.starts_with("ws://") || url.starts_with("wss://")
}

/// Whether `url` is encrypted (`https://`, `wss://`).
pub(crate) fn needs_tls(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("wss://")
}

/// The error of an encrypted URL in a build without TLS.
fn no_tls(cfg: &NetworkConfig, url: &str) -> ChainError {
    ChainError::Config(ConfigError::Invalid {
        network: cfg.name.clone(),
        field: "rpc_urls",
        value: url.to_owned(),
        reason: "https:// and wss:// URLs need lilypad-sdk's `tls` cargo feature, which this \
                 build was compiled without",
    })
}

/// Whether `url`'s host is this machine (alloy then polls faster).
fn is_local_url(url: &reqwest::Url) -> bool {
    url.host_str().is_some_and(|h| {
        h == "localhost"
            || h.trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// Opens the WebSocket connection to `url` within the network's timeout.
async fn connect_ws(cfg: &NetworkConfig, url: &str) -> Result<BoxTransport, ChainError> {
    let opts = &cfg.rpc;
    let connect = WsConnect::new(url).with_max_retries(opts.retries.max(1));
    match tokio::time::timeout(opts.timeout(), connect.into_service()).await {
        Ok(Ok(frontend)) => Ok(frontend.into_box_transport()),
        Ok(Err(cause)) => Err(ChainError::Rpc { call: "WebSocket connect", cause }),
        Err(_) => Err(ChainError::Timeout { call: "connect", after: opts.timeout() }),
    }
}

/// Builds the RPC client of `cfg`: per-request timeout, retries, failover; opens the
/// WebSocket connections among its URLs.
pub(crate) async fn rpc_client(cfg: &NetworkConfig) -> Result<RpcClient, ChainError> {
    let opts = &cfg.rpc;
    let http = reqwest::Client::builder()
        .timeout(opts.timeout())
        .connect_timeout(opts.timeout().min(std::time::Duration::from_secs(10)))
        .build()
        .map_err(|e| ChainError::Rejected {
            call: "connect",
            message: format!("cannot build the HTTP client: {e}"),
            code: 0,
        })?;
    let mut transports: Vec<BoxTransport> = Vec::with_capacity(cfg.rpc_urls.len());
    let mut is_local = true;
    let mut left_out = None;
    for url in &cfg.rpc_urls {
        let parsed = reqwest::Url::parse(url).map_err(|_| invalid_url(cfg, url))?;
        if needs_tls(url) && !cfg!(feature = "tls") {
            let e = no_tls(cfg, url);
            tracing::warn!("RPC node {url} left out: {e}");
            left_out = Some(e);
            continue;
        }
        is_local &= is_local_url(&parsed);
        if is_ws(url) {
            match connect_ws(cfg, url).await {
                Ok(t) => transports.push(t),
                Err(e) => {
                    tracing::warn!("RPC node {url} left out: {e}");
                    left_out = Some(e);
                }
            }
        } else {
            transports.push(Http::with_client(http.clone(), parsed).into_box_transport());
        }
    }
    if transports.is_empty() {
        return Err(left_out.unwrap_or_else(|| invalid_url(cfg, "")));
    }
    let retry = RetryBackoffLayer::new_with_policy(
        opts.retries,
        opts.initial_backoff_ms,
        // Compute units per second: no client-side rate budget beyond the retries.
        u64::MAX,
        RateLimitRetryPolicy::default().or(transient),
    );
    let poll = std::time::Duration::from_millis(opts.max_receipt_poll_ms.max(10));
    let client = if let [only] = transports.as_slice() {
        ClientBuilder::default().layer(retry).transport(only.clone(), is_local)
    } else {
        let count = transports.len();
        let sequential: HashSet<String> = METHODS.iter().map(|m| (*m).to_owned()).collect();
        let fallback = FallbackService::new_with_sequential_methods(transports, count, sequential);
        ClientBuilder::default().layer(retry).transport(fallback, is_local)
    };
    Ok(client.with_poll_interval(poll))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without `tls`, encrypted URLs are left out with a reason that names the feature;
    /// with only such URLs there is no client (with `tls`, the case does not arise).
    #[cfg(not(feature = "tls"))]
    #[tokio::test]
    async fn encrypted_urls_without_tls_name_the_missing_feature() {
        let mut cfg = NetworkConfig::local();
        cfg.rpc_urls = vec!["https://rpc.example".into(), "wss://rpc.example".into()];
        let e = rpc_client(&cfg).await.unwrap_err().to_string();
        assert!(e.contains("`tls` cargo feature") && e.contains("wss://rpc.example"), "{e}");
        // A plain URL beside them still gives a client.
        cfg.rpc_urls.push("http://127.0.0.1:1".into());
        assert!(rpc_client(&cfg).await.is_ok());
    }
}
