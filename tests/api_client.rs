//! The vendor API client against a local HTTP server that answers with the vendors' documented
//! shapes (an OData v2 `{"d": ...}` body, an OAuth token response) and injects faults: slow
//! answers, 429 with `Retry-After` (honoured: no call before it passed), 503, 401, 404. Each failure comes out as the typed outcome
//! the runtime acts on; tokens are fetched once and refreshed on 401; answers are cached; the
//! connection's concurrency limit holds; a failing API trips the circuit breaker; Salesforce's
//! `Sforce-Limit-Info` feeds the budget gauge.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use syncline::api::{ApiAuth, ApiClient, ApiConfig, ApiError};
use syncline::telemetry::Metrics;

/// One scripted answer of the fixture server.
#[derive(Clone)]
enum Fault {
    Status(u16, Option<&'static str>),
    Slow(Duration),
}

#[derive(Default)]
struct Fixture {
    /// Answers to give before the normal one, in order.
    script: Mutex<VecDeque<Fault>>,
    /// Tokens handed out; the one the API accepts is the latest.
    tokens: AtomicUsize,
    /// API requests seen, and the most in flight at once.
    requests: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// Answer every API request after a delay (to observe concurrency).
    delay_ms: AtomicUsize,
    /// Refuse every token request.
    refuse_tokens: std::sync::atomic::AtomicBool,
}

async fn token(State(f): State<Arc<Fixture>>, body: String) -> Response {
    if f.refuse_tokens.load(Ordering::SeqCst) || !body.contains("grant_type=client_credentials") {
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"invalid_client\"}").into_response();
    }
    let n = f.tokens.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(serde_json::json!({"access_token": format!("token-{n}"), "token_type": "Bearer", "expires_in": 3600}))
        .into_response()
}

/// Salesforce's token endpoint for the JWT bearer flow: the assertion must be signed with the
/// connected app's key (RS256) and name the app (`iss`), the user (`sub`), the login audience
/// (`aud`) and an `exp` within 3 minutes. The answer has no `expires_in`, as Salesforce's has none.
async fn salesforce_token(
    State(f): State<Arc<Fixture>>,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
) -> Response {
    let refused = (StatusCode::BAD_REQUEST, "{\"error\":\"invalid_grant\"}").into_response();
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return refused;
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(
        &std::fs::read(repo_file("tests/fixtures/jwt/test_only_public_key.pem")).unwrap(),
    )
    .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["https://login.salesforce.com"]);
    v.set_issuer(&["3MVG9syncline"]);
    v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let Some(Ok(jwt)) = form
        .get("assertion")
        .map(|a| jsonwebtoken::decode::<serde_json::Value>(a, &key, &v))
    else {
        return refused;
    };
    let exp = jwt.claims["exp"].as_u64().unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if jwt.claims["sub"] != "integration@acme.example" || exp > now + 180 {
        return refused;
    }
    let n = f.tokens.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(serde_json::json!({"access_token": format!("token-{n}"), "scope": "api",
        "instance_url": "https://acme.my.salesforce.com", "id": "https://login.salesforce.com/id/00D/005",
        "token_type": "Bearer"}))
    .into_response()
}

fn repo_file(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `GET /sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder('<id>')`, as OData v2 answers it.
async fn odata(State(f): State<Arc<Fixture>>, uri: Uri, headers: HeaderMap) -> Response {
    f.requests.fetch_add(1, Ordering::SeqCst);
    let now = f.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    f.peak.fetch_max(now, Ordering::SeqCst);
    let answer = answer(&f, &uri, &headers).await;
    f.in_flight.fetch_sub(1, Ordering::SeqCst);
    answer
}

async fn answer(f: &Fixture, uri: &Uri, headers: &HeaderMap) -> Response {
    let delay = f.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    let next = f.script.lock().unwrap().pop_front();
    match next {
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(Fault::Status(code, retry_after)) => {
            let mut r = (
                StatusCode::from_u16(code).unwrap(),
                "{\"error\":{\"message\":{\"value\":\"fault\"}}}",
            )
                .into_response();
            if let Some(after) = retry_after {
                r.headers_mut().insert("retry-after", after.parse().unwrap());
            }
            return r;
        }
        None => {}
    }
    let expected = format!("Bearer token-{}", f.tokens.load(Ordering::SeqCst));
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected || v.starts_with("Basic "));
    if !authorized {
        return (StatusCode::UNAUTHORIZED, "").into_response();
    }
    if uri.query().is_some_and(|q| q.contains("$filter")) {
        // An OData v4 collection filtered to nothing (Dynamics 365: not posted yet).
        return axum::Json(serde_json::json!({"value": []})).into_response();
    }
    if uri.path().contains("'404") {
        return (StatusCode::NOT_FOUND, "{\"error\":{\"code\":\"SY/530\"}}").into_response();
    }
    let mut r = axum::Json(serde_json::json!({
        "d": {"SalesOrder": "4500017342", "PurchaseOrderByCustomer": "801Dn000ABC", "to_Item": {"results": []}}
    }))
    .into_response();
    r.headers_mut()
        .insert("sforce-limit-info", "api-usage=25/15000".parse().unwrap());
    r
}

async fn serve() -> (Arc<Fixture>, String) {
    let fixture = Arc::new(Fixture::default());
    let app = Router::new()
        .route("/oauth/token", post(token))
        .route("/services/oauth2/token", post(salesforce_token))
        .route("/sap/opu/odata/sap/{*path}", get(odata))
        .with_state(fixture.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fixture, format!("http://{addr}"))
}

fn config(base: &str, oauth: bool) -> ApiConfig {
    let auth = if oauth {
        ApiAuth::Oauth2ClientCredentials {
            token_url: format!("{base}/oauth/token"),
            client_id: "syncline".into(),
            client_secret: "s3cret".into(),
            scope: None,
        }
    } else {
        ApiAuth::Basic {
            username: "COMM_USER".into(),
            password: "s3cret".into(),
        }
    };
    ApiConfig {
        base_url: format!("{base}/sap/opu/odata/sap"),
        auth,
        timeout: std::time::Duration::from_millis(300),
        max_concurrent: 4,
        requests_per_second: 0,
        cache_ttl: std::time::Duration::from_secs(0),
        cache_size: 0,
        breaker_failures: 100,
        breaker_open: std::time::Duration::from_millis(200),
    }
}

const ORDER: &str = "API_SALES_ORDER_SRV/A_SalesOrder('4500017342')?$expand=to_Item";

fn client(cfg: &ApiConfig) -> (ApiClient, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new().unwrap());
    (ApiClient::new("s4", cfg, metrics.clone()).unwrap(), metrics)
}

#[tokio::test]
async fn an_odata_answer_with_a_token_fetched_once() {
    let (f, base) = serve().await;
    let (c, m) = client(&config(&base, true));
    for _ in 0..3 {
        let v = c.get_json(ORDER).await.unwrap();
        assert_eq!(v["d"]["PurchaseOrderByCustomer"], "801Dn000ABC");
    }
    assert_eq!(f.tokens.load(Ordering::SeqCst), 1, "one token for three calls");
    assert_eq!(m.api_requests.with_label_values(&["s4", "ok"]).get(), 3);
    assert_eq!(m.api_budget_remaining.with_label_values(&["s4"]).get(), 14975);
}

#[tokio::test]
async fn the_salesforce_jwt_bearer_flow_signs_an_assertion_and_signs_again_after_a_401() {
    let (f, base) = serve().await;
    let mut cfg = config(&base, false);
    cfg.auth = ApiAuth::SalesforceJwtBearer {
        token_url: format!("{base}/services/oauth2/token"),
        client_id: "3MVG9syncline".into(),
        username: "integration@acme.example".into(),
        audience: "https://login.salesforce.com".into(),
        private_key: std::fs::read_to_string(repo_file("tests/fixtures/jwt/test_only_private_key.pem")).unwrap(),
    };
    let (c, _) = client(&cfg);
    c.get_json(ORDER).await.unwrap();
    c.get_json(ORDER).await.unwrap();
    assert_eq!(f.tokens.load(Ordering::SeqCst), 1, "one assertion for two calls");
    // The session timed out: the API refuses the token, a new assertion gets a new one.
    f.script.lock().unwrap().push_back(Fault::Status(401, None));
    c.get_json(ORDER).await.unwrap();
    assert_eq!(f.tokens.load(Ordering::SeqCst), 2);
    // An assertion for a user the app does not know: refused, and reported as such.
    let mut wrong = cfg.clone();
    if let ApiAuth::SalesforceJwtBearer { username, .. } = &mut wrong.auth {
        *username = "someone@else.example".into();
    }
    let (c, _) = client(&wrong);
    assert!(matches!(c.get_json(ORDER).await, Err(ApiError::Unauthorized { .. })));
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_then_reports_unauthorized() {
    let (f, base) = serve().await;
    let (c, _) = client(&config(&base, true));
    c.get_json(ORDER).await.unwrap();
    // The API stops accepting the token it gave (rotated): one refresh and the call succeeds.
    f.tokens.fetch_add(1, Ordering::SeqCst);
    c.get_json(ORDER).await.unwrap();
    assert_eq!(f.tokens.load(Ordering::SeqCst), 3, "a new token after the 401");
    // Refused again after the refresh: unauthorized, naming the connection, not transient.
    f.script
        .lock()
        .unwrap()
        .extend([Fault::Status(401, None), Fault::Status(401, None)]);
    let e = c.get_json(ORDER).await.unwrap_err();
    assert!(matches!(&e, ApiError::Unauthorized { api, .. } if api == "s4"), "{e}");
    assert!(!e.is_transient());
    // A token endpoint that refuses the client is the same.
    f.refuse_tokens.store(true, Ordering::SeqCst);
    f.tokens.fetch_add(1, Ordering::SeqCst);
    let e = c.get_json(ORDER).await.unwrap_err();
    assert!(matches!(e, ApiError::Unauthorized { .. }), "{e}");
}

#[tokio::test]
async fn throttling_outages_and_timeouts_are_transient_and_not_found_is_not() {
    let (f, base) = serve().await;
    let (c, m) = client(&config(&base, false));
    f.script.lock().unwrap().extend([
        Fault::Status(429, Some("1")),
        Fault::Status(503, None),
        Fault::Slow(Duration::from_secs(2)),
    ]);
    match c.get_json(ORDER).await.unwrap_err() {
        ApiError::Transient { retry_after, .. } => assert_eq!(retry_after, Some(Duration::from_secs(1))),
        e => panic!("429 must be transient: {e}"),
    }
    // Retry-After is honoured: the connection is not called again before it has passed.
    let calls = f.requests.load(Ordering::SeqCst);
    let e = c.get_json(ORDER).await.unwrap_err();
    assert!(matches!(e, ApiError::CircuitOpen { .. }) && e.is_transient(), "{e}");
    assert_eq!(f.requests.load(Ordering::SeqCst), calls, "no call within Retry-After");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let e = c.get_json(ORDER).await.unwrap_err();
    assert!(e.is_transient(), "503: {e}");
    let e = c.get_json(ORDER).await.unwrap_err();
    assert!(
        e.is_transient() && e.to_string().contains("timed out"),
        "slow answer: {e}"
    );
    let e = c.get_json("API_SALES_ORDER_SRV/A_SalesOrder('404')").await.unwrap_err();
    assert!(matches!(e, ApiError::NotFound { .. }) && !e.is_transient(), "{e}");
    assert_eq!(m.api_requests.with_label_values(&["s4", "throttled"]).get(), 1);
    assert_eq!(m.api_requests.with_label_values(&["s4", "unavailable"]).get(), 2);
    assert_eq!(m.api_requests.with_label_values(&["s4", "not_found"]).get(), 1);
}

#[tokio::test]
async fn answers_are_cached_per_request() {
    let (f, base) = serve().await;
    let mut cfg = config(&base, false);
    cfg.cache_ttl = std::time::Duration::from_secs(60);
    cfg.cache_size = 100;
    let (c, m) = client(&cfg);
    for _ in 0..5 {
        c.get_json(ORDER).await.unwrap();
    }
    assert_eq!(f.requests.load(Ordering::SeqCst), 1, "one call, four cache hits");
    assert_eq!(m.api_cache_hits.with_label_values(&["s4"]).get(), 4);
    // A collection that lists nothing yet is asked again: the document may appear any moment.
    let empty = "SalesInvoiceHeadersV2?$filter=InvoiceNumber%20eq%20'CIV-1'";
    for _ in 0..2 {
        c.get_json(empty).await.unwrap();
    }
    assert_eq!(
        f.requests.load(Ordering::SeqCst),
        3,
        "an empty collection is not cached"
    );
}

#[tokio::test]
async fn no_more_requests_in_flight_than_the_connection_allows() {
    let (f, base) = serve().await;
    let mut cfg = config(&base, false);
    cfg.max_concurrent = 3;
    cfg.timeout = std::time::Duration::from_secs(5);
    let (c, _) = client(&cfg);
    f.delay_ms.store(50, Ordering::SeqCst);
    let c = Arc::new(c);
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.get_json(ORDER).await.map(|_| ()) })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(f.requests.load(Ordering::SeqCst), 12);
    let peak = f.peak.load(Ordering::SeqCst);
    assert!((1..=3).contains(&peak), "{peak} requests in flight at once");
}

#[tokio::test]
async fn a_failing_api_trips_the_circuit_breaker() {
    let (f, base) = serve().await;
    let mut cfg = config(&base, false);
    cfg.breaker_failures = 3;
    let (c, m) = client(&cfg);
    f.script
        .lock()
        .unwrap()
        .extend(std::iter::repeat_n(Fault::Status(503, None), 3));
    for _ in 0..3 {
        assert!(c.get_json(ORDER).await.unwrap_err().is_transient());
    }
    let before = f.requests.load(Ordering::SeqCst);
    let e = c.get_json(ORDER).await.unwrap_err();
    assert!(matches!(e, ApiError::CircuitOpen { .. }) && e.is_transient(), "{e}");
    assert_eq!(f.requests.load(Ordering::SeqCst), before, "no call while open");
    assert_eq!(m.api_requests.with_label_values(&["s4", "circuit_open"]).get(), 1);
    // After the open period a call goes through again, and succeeds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match c.get_json(ORDER).await {
            Ok(_) => break,
            Err(ApiError::CircuitOpen { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
}
