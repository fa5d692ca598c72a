//! Registry administration over the Confluent-compatible REST API: subjects, versions,
//! compatibility levels, and the `schemas register` plan.
//!
//! Owns: the HTTP calls the codec does not make (listing, compatibility config, lookups) and the
//! `SrSettings` every registry user shares. Must not: encode or decode records.

use std::time::Duration;

use schema_registry_converter::async_impl::schema_registry::SrSettings;
use serde::Deserialize;
use serde_json::json;

use super::catalog::Catalog;
use super::compat::error_chain;

/// `[registry]` of the topology: where the Confluent-compatible registry is, and how to log in.
/// Defined here, with the client that uses it, so the registry needs nothing from `config`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default = "default_registry_timeout", deserialize_with = "crate::duration::setting")]
    pub timeout: std::time::Duration,
}

fn default_registry_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(5)
}

impl std::fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("schema registry at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("schema registry answered {status} to {what}: {body}")]
    Refused { what: String, status: u16, body: String },
    #[error("invalid registry settings: {0}")]
    Settings(String),
    #[error(transparent)]
    Schema(#[from] super::SchemaError),
}

/// Builds the converter's settings from the topology's `[registry]`.
pub fn sr_settings(cfg: &RegistryConfig) -> Result<SrSettings, RegistryError> {
    let mut builder = SrSettings::new_builder(cfg.url.trim_end_matches('/').to_string());
    builder.set_timeout(cfg.timeout).no_proxy();
    if let Some(user) = &cfg.username {
        builder.set_basic_authorization(user, cfg.password.as_deref());
    }
    builder.build().map_err(|e| RegistryError::Settings(error_chain(&e)))
}

/// Thin REST client for administration.
pub struct RegistryClient {
    http: reqwest::Client,
    base: String,
    auth: Option<(String, Option<String>)>,
}

#[derive(Debug, Deserialize)]
struct IdResponse {
    id: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigResponse {
    #[serde(alias = "compatibility")]
    compatibility_level: Option<String>,
}

impl RegistryClient {
    pub fn new(cfg: &RegistryConfig) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .no_proxy()
            .build()
            .map_err(|e| RegistryError::Settings(error_chain(&e)))?;
        Ok(Self {
            http,
            base: cfg.url.trim_end_matches('/').to_string(),
            auth: cfg.username.clone().map(|u| (u, cfg.password.clone())),
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, String), RegistryError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::ACCEPT, CONTENT_TYPE);
        if let Some((user, pass)) = &self.auth {
            req = req.basic_auth(user, pass.as_ref());
        }
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(body.to_string());
        }
        let resp = req.send().await.map_err(|e| RegistryError::Unreachable {
            url: self.base.clone(),
            message: error_chain(&e),
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| RegistryError::Unreachable {
            url: self.base.clone(),
            message: error_chain(&e),
        })?;
        Ok((status, text))
    }

    fn ok<T: serde::de::DeserializeOwned>(what: &str, (status, body): (u16, String)) -> Result<T, RegistryError> {
        if !(200..300).contains(&status) {
            return Err(RegistryError::Refused {
                what: what.to_string(),
                status,
                body,
            });
        }
        serde_json::from_str(&body).map_err(|e| RegistryError::Refused {
            what: what.to_string(),
            status,
            body: format!("unexpected body ({e}): {body}"),
        })
    }

    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        let r = self.call(reqwest::Method::GET, "/subjects", None).await?;
        Self::ok("GET /subjects", r)
    }

    /// The id of exactly this schema under `subject`, if registered there.
    pub async fn lookup(&self, subject: &str, schema: &str) -> Result<Option<u32>, RegistryError> {
        let what = format!("lookup in {subject}");
        let r = self
            .call(
                reqwest::Method::POST,
                &format!("/subjects/{subject}"),
                Some(avro_body(schema)),
            )
            .await?;
        if r.0 == 404 {
            return Ok(None);
        }
        Ok(Some(Self::ok::<IdResponse>(&what, r)?.id))
    }

    /// Registers `schema` under `subject`; the registry refuses it if the subject's rule says so.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let r = self
            .call(
                reqwest::Method::POST,
                &format!("/subjects/{subject}/versions"),
                Some(avro_body(schema)),
            )
            .await?;
        Ok(Self::ok::<IdResponse>(&format!("register in {subject}"), r)?.id)
    }

    /// The subject's own compatibility level, if one is set.
    pub async fn compatibility(&self, subject: &str) -> Result<Option<String>, RegistryError> {
        let r = self
            .call(reqwest::Method::GET, &format!("/config/{subject}"), None)
            .await?;
        if r.0 == 404 {
            return Ok(None);
        }
        Ok(Self::ok::<ConfigResponse>(&format!("config of {subject}"), r)?.compatibility_level)
    }

    pub async fn set_compatibility(&self, subject: &str, level: &str) -> Result<(), RegistryError> {
        let r = self
            .call(
                reqwest::Method::PUT,
                &format!("/config/{subject}"),
                Some(json!({ "compatibility": level })),
            )
            .await?;
        Self::ok::<serde_json::Value>(&format!("set config of {subject}"), r).map(|_| ())
    }

    /// Waits until the registry answers, for start-up ordering in tools and tests.
    pub async fn wait_ready(&self, within: Duration) -> Result<(), RegistryError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.subjects().await {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

fn avro_body(schema: &str) -> serde_json::Value {
    json!({ "schemaType": "AVRO", "schema": schema })
}

/// What `schemas register` did for one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub subject: String,
    pub record: String,
    pub version: u32,
    pub id: u32,
    pub newly_registered: bool,
    pub compatibility_changed: bool,
}

/// Registers the latest version of the schema of every `(topic, schema record)` under
/// `<topic>-value` and sets BACKWARD; idempotent. `Topology::output_subjects` lists a topology's.
pub async fn register_all(
    client: &RegistryClient,
    subjects: &[(String, String)],
    catalog: &Catalog,
) -> Result<Vec<Registration>, RegistryError> {
    let mut done = Vec::new();
    for (topic, record) in subjects {
        let (topic, record) = (topic.clone(), record.clone());
        let latest = catalog.latest(&record)?;
        let subject = format!("{topic}-value");
        // Registered first: some registries keep no config for a subject that does not exist.
        let (id, newly_registered) = match client.lookup(&subject, &latest.raw).await? {
            Some(id) => (id, false),
            None => (client.register(&subject, &latest.raw).await?, true),
        };
        let compatibility_changed = client.compatibility(&subject).await?.as_deref() != Some("BACKWARD");
        if compatibility_changed {
            client.set_compatibility(&subject, "BACKWARD").await?;
        }
        done.push(Registration {
            subject,
            record,
            version: latest.version,
            id,
            newly_registered,
            compatibility_changed,
        });
    }
    Ok(done)
}
