//! Calls to the vendors' APIs (SAP OData, Salesforce REST, Dynamics 365 OData) that complete
//! thin notification events: one [`ApiClient`] per `[api.<name>]` connection of the topology.
//!
//! Owns: authentication (HTTP basic, OAuth 2.0 client credentials with token refresh), the
//! request timeout, the connection's limits (concurrent requests, requests per second), a
//! response cache, a circuit breaker, and turning every answer into a typed outcome the runtime
//! can act on ([`ApiError`]: transient, unauthorized, not found, refused). Must not: retry on
//! its own or decide what a failure means for a record (the runtime does: back-pressure, park,
//! or report unhealthy), or log a secret.

mod auth;
mod breaker;
mod config;

use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use moka::future::Cache;
use reqwest::StatusCode;
use tokio::sync::Semaphore;

pub use config::{ApiAuth, ApiConfig};

use crate::telemetry::Metrics;

/// Why a call gave no answer to use.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ApiError {
    /// Timeout, connection failure, 5xx, 429: try again later (`retry_after` when the API said).
    #[error("api `{api}`: unavailable: {message}")]
    Transient {
        api: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The credentials were refused, also after a fresh token.
    #[error("api `{api}`: credentials refused ({message}); check the connection's auth settings")]
    Unauthorized { api: String, message: String },
    /// 404: the document is not (yet) visible through the API.
    #[error("api `{api}`: {path} not found")]
    NotFound { api: String, path: String },
    /// Any other 4xx: the request itself is wrong; retrying will not help.
    #[error("api `{api}`: {status} for {path}: {body}")]
    Refused {
        api: String,
        status: u16,
        path: String,
        body: String,
    },
    /// The circuit breaker is open after repeated failures: no call was made.
    #[error("api `{api}`: not called for {remaining_ms} ms more after repeated failures (circuit open)")]
    CircuitOpen { api: String, remaining_ms: u64 },
}

impl ApiError {
    /// Whether waiting and calling again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Transient { .. } | ApiError::CircuitOpen { .. })
    }
}

/// Why a connection cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("api `{api}`: {message}")]
pub struct ApiSetupError {
    pub api: String,
    pub message: String,
}

/// One configured API connection.
pub struct ApiClient {
    name: String,
    base: String,
    http: reqwest::Client,
    auth: auth::Auth,
    permits: Semaphore,
    limiter: Option<DefaultDirectRateLimiter>,
    cache: Option<Cache<String, Arc<serde_json::Value>>>,
    breaker: breaker::Breaker,
    max_concurrent: usize,
    metrics: Arc<Metrics>,
}

impl ApiClient {
    pub fn new(name: &str, cfg: &ApiConfig, metrics: Arc<Metrics>) -> Result<Self, ApiSetupError> {
        let setup = |message: String| ApiSetupError {
            api: name.to_string(),
            message,
        };
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| setup(e.to_string()))?;
        let limiter =
            std::num::NonZeroU32::new(cfg.requests_per_second).map(|rate| RateLimiter::direct(Quota::per_second(rate)));
        let cache = (cfg.cache_size > 0 && !cfg.cache_ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(cfg.cache_size)
                .time_to_live(cfg.cache_ttl)
                .build()
        });
        Ok(Self {
            name: name.to_string(),
            base: cfg.base_url.trim_end_matches('/').to_string(),
            auth: auth::Auth::new(&cfg.auth, http.clone()),
            http,
            permits: Semaphore::new(cfg.max_concurrent.max(1)),
            limiter,
            cache,
            breaker: breaker::Breaker::new(cfg.breaker_failures, cfg.breaker_open),
            max_concurrent: cfg.max_concurrent.max(1),
            metrics,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Requests this connection has in flight at most.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// GETs `path` (relative to the base URL, query included) as JSON: from the cache when a
    /// fresh answer is there, else within the connection's limits.
    pub async fn get_json(&self, path: &str) -> Result<Arc<serde_json::Value>, ApiError> {
        self.get(path, true).await
    }

    /// The same, past the cache (the answer still refreshes it): for a state that just changed.
    pub async fn get_fresh(&self, path: &str) -> Result<Arc<serde_json::Value>, ApiError> {
        self.get(path, false).await
    }

    async fn get(&self, path: &str, cached: bool) -> Result<Arc<serde_json::Value>, ApiError> {
        if cached
            && let Some(cache) = &self.cache
            && let Some(hit) = cache.get(path).await
        {
            self.metrics.api_cache_hits.with_label_values(&[&self.name]).inc();
            return Ok(hit);
        }
        if let Some(remaining) = self.breaker.open_for() {
            self.count("circuit_open");
            return Err(ApiError::CircuitOpen {
                api: self.name.clone(),
                remaining_ms: remaining.as_millis() as u64,
            });
        }
        let outcome = self.call(path).await;
        // Only an unavailable API counts against the breaker: one that answers (even 401 or
        // 404) is up, and refused credentials must surface as such, not as an open circuit.
        match &outcome {
            Err(e) if e.is_transient() => {
                self.breaker.failure();
                // An API that says when to come back (429/503 `Retry-After`) is not called before.
                if let Err(ApiError::Transient {
                    retry_after: Some(wait),
                    ..
                }) = &outcome
                {
                    self.breaker.hold(*wait);
                }
            }
            _ => self.breaker.success(),
        }
        let value = Arc::new(outcome?);
        // An OData collection that lists nothing yet (a document not visible yet) is asked again.
        let nothing_yet = value
            .get("value")
            .and_then(serde_json::Value::as_array)
            .is_some_and(Vec::is_empty);
        if let Some(cache) = &self.cache
            && !nothing_yet
        {
            cache.insert(path.to_string(), value.clone()).await;
        }
        Ok(value)
    }

    /// One request, within the limits, with one token refresh on 401.
    async fn call(&self, path: &str) -> Result<serde_json::Value, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.transient("shutting down", None))?;
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let mut refreshed = false;
        loop {
            let started = Instant::now();
            let mut request = self.http.get(&url).header(reqwest::header::ACCEPT, "application/json");
            request = self
                .auth
                .apply(request, refreshed)
                .await
                .map_err(|e| self.auth_error(e))?;
            let response = request.send().await;
            self.metrics
                .api_seconds
                .with_label_values(&[&self.name])
                .observe(started.elapsed().as_secs_f64());
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    self.count("unavailable");
                    return Err(self.transient(&describe(&e), None));
                }
            };
            self.read_budget(response.headers());
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed && self.auth.can_refresh() {
                self.count("unauthorized_refreshing");
                refreshed = true;
                continue;
            }
            return self.answer(path, status, response).await;
        }
    }

    async fn answer(
        &self,
        path: &str,
        status: StatusCode,
        response: reqwest::Response,
    ) -> Result<serde_json::Value, ApiError> {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if status.is_success() {
            return match response.json::<serde_json::Value>().await {
                Ok(v) => {
                    self.count("ok");
                    Ok(v)
                }
                Err(e) => {
                    self.count("unavailable");
                    Err(self.transient(&format!("unreadable answer: {e}"), None))
                }
            };
        }
        let body: String = response.text().await.unwrap_or_default().chars().take(500).collect();
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                self.count("throttled");
                Err(self.transient("429 too many requests", retry_after))
            }
            s if s.is_server_error() => {
                self.count("unavailable");
                Err(self.transient(&format!("{s}"), retry_after))
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                self.count("unauthorized");
                Err(ApiError::Unauthorized {
                    api: self.name.clone(),
                    message: format!("{status}"),
                })
            }
            StatusCode::NOT_FOUND => {
                self.count("not_found");
                Err(ApiError::NotFound {
                    api: self.name.clone(),
                    path: path.to_string(),
                })
            }
            s => {
                self.count("refused");
                Err(ApiError::Refused {
                    api: self.name.clone(),
                    status: s.as_u16(),
                    path: path.to_string(),
                    body,
                })
            }
        }
    }

    /// Salesforce reports the org's daily API budget in `Sforce-Limit-Info: api-usage=25/15000`.
    fn read_budget(&self, headers: &reqwest::header::HeaderMap) {
        let Some(usage) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').find_map(|p| p.trim().strip_prefix("api-usage=")))
        else {
            return;
        };
        if let Some((used, limit)) = usage.split_once('/')
            && let (Ok(used), Ok(limit)) = (used.trim().parse::<i64>(), limit.trim().parse::<i64>())
        {
            self.metrics
                .api_budget_remaining
                .with_label_values(&[&self.name])
                .set(limit - used);
        }
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .api_requests
            .with_label_values(&[&self.name, outcome])
            .inc();
    }

    fn transient(&self, message: &str, retry_after: Option<Duration>) -> ApiError {
        ApiError::Transient {
            api: self.name.clone(),
            message: message.to_string(),
            retry_after,
        }
    }

    fn auth_error(&self, e: auth::AuthError) -> ApiError {
        match e {
            auth::AuthError::Unavailable(message) => {
                self.count("unavailable");
                self.transient(&format!("token endpoint: {message}"), None)
            }
            auth::AuthError::Refused(message) => {
                self.count("unauthorized");
                ApiError::Unauthorized {
                    api: self.name.clone(),
                    message: format!("token endpoint: {message}"),
                }
            }
        }
    }
}

/// A reqwest error in words an operator can act on (timeout, connection, other).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}
