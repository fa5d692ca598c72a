//! Credentials on a request: HTTP basic, or an OAuth 2.0 client-credentials token that is
//! fetched once, reused until shortly before it expires, and fetched again when the API
//! answers 401 (a revoked or rotated token).

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::ApiAuth;

#[derive(Debug)]
pub enum AuthError {
    /// The token endpoint could not be reached or failed (5xx, timeout).
    Unavailable(String),
    /// The token endpoint refused the client's credentials.
    Refused(String),
}

pub struct Auth {
    kind: ApiAuth,
    http: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token is renewed this long before the expiry its endpoint gave.
const EARLY: Duration = Duration::from_secs(60);

impl Auth {
    pub fn new(kind: &ApiAuth, http: reqwest::Client) -> Self {
        Self {
            kind: kind.clone(),
            http,
            token: Mutex::new(None),
        }
    }

    /// Whether a fresh credential could differ from the one refused.
    pub fn can_refresh(&self) -> bool {
        matches!(self.kind, ApiAuth::Oauth2ClientCredentials { .. })
    }

    /// `request` with credentials; `fresh` forces a new token.
    pub async fn apply(
        &self,
        request: reqwest::RequestBuilder,
        fresh: bool,
    ) -> Result<reqwest::RequestBuilder, AuthError> {
        match &self.kind {
            ApiAuth::Basic { username, password } => Ok(request.basic_auth(username, Some(password))),
            ApiAuth::Oauth2ClientCredentials { .. } => Ok(request.bearer_auth(self.token(fresh).await?)),
        }
    }

    async fn token(&self, fresh: bool) -> Result<String, AuthError> {
        let mut held = self.token.lock().await;
        if !fresh
            && let Some((token, until)) = held.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let ApiAuth::Oauth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scope,
        } = &self.kind
        else {
            return Err(AuthError::Refused("not an OAuth connection".into()));
        };
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", client_secret.as_str()),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope.as_str()));
        }
        let response = self
            .http
            .post(token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(AuthError::Unavailable(status.to_string()));
        }
        if !status.is_success() {
            return Err(AuthError::Refused(status.to_string()));
        }
        let t: TokenResponse = response
            .json()
            .await
            .map_err(|e| AuthError::Unavailable(format!("unreadable token response: {e}")))?;
        let lifetime = Duration::from_secs(t.expires_in.unwrap_or(3600)).saturating_sub(EARLY);
        *held = Some((t.access_token.clone(), Instant::now() + lifetime));
        Ok(t.access_token)
    }
}
