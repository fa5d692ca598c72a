//! `[api.<name>]` of the topology: where a vendor API is, how to log in, and the connection's
//! limits. Defined beside the client, so the client needs nothing from `config`; secrets are
//! `${VAR}` references that `config` expands and checks, and `Debug` never shows them.

use std::time::Duration;

use serde::Deserialize;

/// One API connection.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// e.g. `https://my-s4.example.com/sap/opu/odata/sap`
    pub base_url: String,
    pub auth: ApiAuth,
    #[serde(default = "default_timeout", deserialize_with = "crate::duration::setting")]
    pub timeout: Duration,
    /// Requests in flight at once over this connection.
    #[serde(default = "default_concurrent")]
    pub max_concurrent: usize,
    /// Requests started per second; 0 = unlimited.
    #[serde(default)]
    pub requests_per_second: u32,
    /// How long an answer is reused; `0s` turns the cache off.
    #[serde(default = "default_cache_ttl", deserialize_with = "crate::duration::setting")]
    pub cache_ttl: Duration,
    /// Answers kept; 0 turns the cache off.
    #[serde(default = "default_cache_size")]
    pub cache_size: u64,
    /// Consecutive failed calls (transient) that open the circuit breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before it lets one through.
    #[serde(default = "default_breaker_open", deserialize_with = "crate::duration::setting")]
    pub breaker_open: Duration,
}

/// How a connection authenticates.
#[derive(Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ApiAuth {
    /// HTTP basic (SAP communication users).
    Basic { username: String, password: String },
    /// OAuth 2.0 client credentials grant (SAP BTP, Microsoft Entra ID for Dynamics 365); the
    /// token is reused until shortly before it expires and fetched again after a 401.
    Oauth2ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: String,
        #[serde(default)]
        scope: Option<String>,
    },
    /// Salesforce's OAuth 2.0 JWT bearer flow (a connected app with a certificate, for a
    /// server-to-server integration user): a JWT signed RS256 with the app's private key is
    /// exchanged for an access token; there is no refresh token, so a 401 signs a new one.
    SalesforceJwtBearer {
        /// `https://login.salesforce.com/services/oauth2/token` (sandboxes: `test.salesforce.com`).
        #[serde(default = "default_sf_token_url")]
        token_url: String,
        /// The connected app's consumer key (the JWT's `iss`).
        client_id: String,
        /// The integration user (the JWT's `sub`).
        username: String,
        /// The JWT's `aud`: `https://login.salesforce.com`, `https://test.salesforce.com`, or
        /// the My Domain login URL.
        #[serde(default = "default_sf_audience")]
        audience: String,
        /// The app certificate's RSA private key, PEM (from the environment only).
        private_key: String,
    },
}

fn default_sf_token_url() -> String {
    "https://login.salesforce.com/services/oauth2/token".into()
}
fn default_sf_audience() -> String {
    "https://login.salesforce.com".into()
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_concurrent() -> usize {
    8
}
fn default_cache_ttl() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_cache_size() -> u64 {
    10_000
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open() -> Duration {
    Duration::from_secs(30)
}

impl std::fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"***")
                .finish(),
            ApiAuth::Oauth2ClientCredentials {
                token_url,
                client_id,
                scope,
                ..
            } => f
                .debug_struct("Oauth2ClientCredentials")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("client_secret", &"***")
                .field("scope", scope)
                .finish(),
            ApiAuth::SalesforceJwtBearer {
                token_url,
                client_id,
                username,
                audience,
                ..
            } => f
                .debug_struct("SalesforceJwtBearer")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("username", username)
                .field("audience", audience)
                .field("private_key", &"***")
                .finish(),
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("base_url", &self.base_url)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .field("max_concurrent", &self.max_concurrent)
            .field("requests_per_second", &self.requests_per_second)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_size", &self.cache_size)
            .finish()
    }
}
