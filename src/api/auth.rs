//! Credentials on a request: HTTP basic, or an OAuth 2.0 token (client credentials, or
//! Salesforce's JWT bearer flow) that is fetched once, reused until shortly before it expires,
//! and fetched again when the API answers 401 (a revoked or rotated token, or a Salesforce
//! session that timed out: its token response gives no expiry).

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

/// The claims of Salesforce's JWT bearer assertion.
#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
}

/// Salesforce accepts an assertion at most 3 minutes before its `exp`.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(180);

/// A fresh assertion for the JWT bearer flow, signed RS256 with the connected app's key.
fn jwt_assertion(client_id: &str, username: &str, audience: &str, private_key: &str) -> Result<String, AuthError> {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key.as_bytes())
        .map_err(|e| AuthError::Refused(format!("the private key is not an RSA key in PEM: {e}")))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let claims = Claims {
        iss: client_id,
        sub: username,
        aud: audience,
        exp: (now + ASSERTION_LIFETIME).as_secs(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .map_err(|e| AuthError::Refused(format!("cannot sign the JWT assertion: {e}")))
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
        !matches!(self.kind, ApiAuth::Basic { .. })
    }

    /// `request` with credentials; `fresh` forces a new token.
    pub async fn apply(
        &self,
        request: reqwest::RequestBuilder,
        fresh: bool,
    ) -> Result<reqwest::RequestBuilder, AuthError> {
        match &self.kind {
            ApiAuth::Basic { username, password } => Ok(request.basic_auth(username, Some(password))),
            ApiAuth::Oauth2ClientCredentials { .. } | ApiAuth::SalesforceJwtBearer { .. } => {
                Ok(request.bearer_auth(self.token(fresh).await?))
            }
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
        let (token_url, form) = match &self.kind {
            ApiAuth::Oauth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let mut form = vec![
                    ("grant_type", "client_credentials".to_string()),
                    ("client_id", client_id.clone()),
                    ("client_secret", client_secret.clone()),
                ];
                if let Some(scope) = scope {
                    form.push(("scope", scope.clone()));
                }
                (token_url, form)
            }
            ApiAuth::SalesforceJwtBearer {
                token_url,
                client_id,
                username,
                audience,
                private_key,
            } => {
                let assertion = jwt_assertion(client_id, username, audience, private_key)?;
                let form = vec![
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string()),
                    ("assertion", assertion),
                ];
                (token_url, form)
            }
            ApiAuth::Basic { .. } => return Err(AuthError::Refused("not an OAuth connection".into())),
        };
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
