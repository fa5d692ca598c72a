//! `syncline validate`: the shipped topology passes; a broken copy lists every problem with its key.

use syncline_test_support as common;

fn validate(path: &std::path::Path, env: &[(&str, &str)]) -> (bool, String) {
    common::syncline(path, &["validate"], env)
}

#[test]
fn the_shipped_topology_is_valid() {
    let (ok, text) = validate(&common::repo_path("topology.toml"), &[]);
    assert!(ok, "{text}");
    let workers = common::parse_topology(&std::fs::read_to_string(common::repo_path("topology.toml")).unwrap())
        .workers
        .len();
    assert_eq!(
        workers, 14,
        "the seven order-to-cash and customer workers, the order status gate, two per other workflow"
    );
    assert!(text.contains(&format!("valid ({workers} worker(s)")), "{text}");
}

#[test]
fn a_broken_topology_lists_every_problem_with_its_key() {
    let shipped = std::fs::read_to_string(common::repo_path("topology.toml")).unwrap();
    let broken = shipped
        .replacen(
            "transform = \"erp_order_events\"",
            "transform = \"erp_order_eventz\"",
            1,
        )
        .replacen("schema = \"shipment\"", "schema = \"shipments\"", 1)
        .replacen("name = \"erp-billing\"", "name = \"erp-delivery\"", 1)
        .replacen("max_wait = \"100ms\"", "max_wait = \"soon\"", 1)
        .replacen("max_records = 1000", "max_records = 50000", 1)
        .replacen("listen = \"127.0.0.1:9464\"", "listen = \"localhost\"", 1)
        .replacen("route_by = \"legal_entity\"", "route_by = \"colour\"", 1)
        .replacen(
            "adapter = \"d365_fo\"\ntransform = \"erp_events\"\n",
            "adapter = \"d365_fo\"\ntransform = \"erp_events\"\n[worker.event_types]\n\"ContosoOrderConfirmedBusinessEvent\" = \"confirmed\"\n",
            1,
        )
        .replacen(
            "\"client.id\" = \"syncline\"",
            "\"client.id\" = \"syncline\"\n\"sasl.password\" = \"${SYNCLINE_TEST_UNSET_SECRET}\"",
            1,
        );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topology.toml");
    std::fs::write(&path, broken).unwrap();
    let (ok, text) = validate(&path, &[]);
    assert!(!ok, "{text}");
    assert!(text.contains(&path.display().to_string()), "names the file: {text}");
    for expected in [
        "worker[1].transform: unknown transform `erp_order_eventz`; valid: order_submission, erp_order_events",
        "worker[2].output[0].schema: unknown schema `shipments`; valid:",
        "worker[3].name: duplicate worker name `erp-delivery`",
        "defaults.batch.max_wait: `soon` is not a duration",
        "defaults.batch.max_records: must be at most 10000",
        "metrics.listen: `localhost` is not an address",
        "worker[0].output[0].route_by: cannot route by `colour`",
        "kafka.properties.sasl.password: environment variable `SYNCLINE_TEST_UNSET_SECRET` is not set",
        "worker[5].event_types.\"ContosoOrderConfirmedBusinessEvent\": `confirmed` is not an event kind; valid: order_created, order_changed, order_accepted,",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    assert!(text.contains("9 problem(s)"), "{text}");
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topology.toml");
    let shipped = std::fs::read_to_string(common::repo_path("topology.toml")).unwrap();
    std::fs::write(&path, shipped.replacen("[metrics]", "[metrics]\nlisten_port = 1", 1)).unwrap();
    let (ok, text) = validate(&path, &[]);
    assert!(!ok);
    assert!(
        text.contains("unknown field `listen_port`") && text.contains("line"),
        "{text}"
    );
}

#[test]
fn secrets_come_from_the_environment_and_never_show() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topology.toml");
    let shipped = std::fs::read_to_string(common::repo_path("topology.toml")).unwrap();
    std::fs::write(
        &path,
        shipped.replacen(
            "\"client.id\" = \"syncline\"",
            "\"client.id\" = \"syncline\"\n\"sasl.password\" = \"${SYNCLINE_TEST_SECRET}\"",
            1,
        ),
    )
    .unwrap();
    let (ok, text) = validate(&path, &[("SYNCLINE_TEST_SECRET", "hunter2-secret")]);
    assert!(ok, "{text}");
    assert!(!text.contains("hunter2-secret"));
}

#[test]
fn api_connections_take_secrets_from_the_environment_only() {
    let shipped = std::fs::read_to_string(common::repo_path("topology.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topology.toml");
    let with_api = |api: &str| format!("{shipped}\n{api}\n");
    std::fs::write(
        &path,
        with_api(
            r#"[api.s4]
base_url = "my-s4.example.com/sap/opu/odata/sap"
auth = { kind = "basic", username = "COMM_USER", password = "hunter2" }
[api.d365]
base_url = "https://contoso.operations.dynamics.com/data"
auth = { kind = "oauth2_client_credentials", token_url = "https://login.microsoftonline.com/t/oauth2/v2.0/token", client_id = "app", client_secret = "${SYNCLINE_TEST_D365_SECRET}" }
timeout = "soon"
max_concurrent = 0
[api.sf]
base_url = "https://acme.my.salesforce.com/services/data/v62.0"
auth = { kind = "salesforce_jwt_bearer", client_id = "3MVG9", username = "integration@acme.example", private_key = "${SYNCLINE_TEST_SF_KEY}" }
[api.sf_sandbox]
base_url = "https://acme--uat.sandbox.my.salesforce.com/services/data/v62.0"
auth = { kind = "salesforce_jwt_bearer", client_id = "3MVG9", username = "integration@acme.example", private_key = "-----BEGIN PRIVATE KEY-----" }"#,
        ),
    )
    .unwrap();
    let (ok, text) = validate(
        &path,
        &[
            ("SYNCLINE_TEST_D365_SECRET", "from-env"),
            ("SYNCLINE_TEST_SF_KEY", "from-env-not-a-key"),
        ],
    );
    assert!(!ok, "{text}");
    for expected in [
        "api.s4.auth.password: a secret must come from the environment",
        "api.s4.base_url: `my-s4.example.com/sap/opu/odata/sap` is not an http(s) URL",
        "api.d365.timeout: `soon` is not a duration",
        "api.d365.max_concurrent: must be at least 1",
        "api.sf.auth.private_key: not an RSA private key in PEM",
        "api.sf_sandbox.auth.private_key: a secret must come from the environment",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    assert!(
        !text.contains("hunter2") && !text.contains("from-env"),
        "a secret in the output:\n{text}"
    );
    assert!(text.contains("7 problem(s)"), "{text}");

    std::fs::write(
        &path,
        with_api(
            r#"[api.s4]
base_url = "https://my-s4.example.com/sap/opu/odata/sap"
auth = { kind = "basic", username = "COMM_USER", password = "${SYNCLINE_TEST_S4_PASSWORD}" }"#,
        ),
    )
    .unwrap();
    let (ok, text) = validate(&path, &[("SYNCLINE_TEST_S4_PASSWORD", "from-env")]);
    assert!(ok, "{text}");
}

#[test]
fn a_duration_can_come_from_the_environment_and_is_read_once() {
    let shipped = std::fs::read_to_string(common::repo_path("topology.toml")).unwrap();
    let text = shipped.replacen("max_wait = \"100ms\"", "max_wait = \"${SYNCLINE_TEST_WAIT:-100ms}\"", 1);
    let schemas = syncline::schema::Catalog::record_names(&common::repo_path("schemas"));
    let env = std::collections::HashMap::from([("SYNCLINE_TEST_WAIT".to_string(), "250ms".to_string())]);
    let t = syncline::config::parse(&text, &env, &schemas).unwrap();
    assert_eq!(t.defaults.batch.max_wait, std::time::Duration::from_millis(250));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topology.toml");
    std::fs::write(&path, &text).unwrap();
    let (ok, out) = validate(&path, &[("SYNCLINE_TEST_WAIT", "soon")]);
    assert!(!ok);
    assert!(
        out.contains("defaults.batch.max_wait: `soon` is not a duration"),
        "{out}"
    );
}

#[test]
fn governance_rules_are_checked_with_their_keys() {
    let shipped = std::fs::read_to_string(common::repo_path("topology.toml")).unwrap();
    let broken = shipped
        .replacen(
            "inputs = [\"sf.account.changes\", \"syncline.customers.decisions\", \"mdm.xref\"]",
            "inputs = [\"sf.account.changes\"]\nconcurrency = 2",
            1,
        )
        .replacen("name_similarity = 0.92", "name_similarity = 92", 1)
        .replacen(
            "DE01 = { amount = \"50000.00\", currency = \"EUR\" }",
            "DE01 = { amount = \"lots\", currency = \"euro\" }",
            1,
        )
        .replacen("\"PROPOSED->APPROVED\" = \"1d\"", "\"PROPOSED->SIGNED\" = \"1d\"", 1)
        .replacen("\"REQUESTED->ACTIVE\" = \"1d\"", "\"REQUESTED->ACTIVE\" = \"a day\"", 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topology.toml");
    std::fs::write(&path, broken).unwrap();
    let (ok, text) = validate(&path, &[]);
    assert!(!ok, "{text}");
    for expected in [
        "worker[7].inputs: lacks `syncline.customers.decisions`, where operators' decisions arrive; add it to the worker's inputs",
        "worker[7].inputs: lacks `mdm.xref`",
        "worker[7].concurrency: account governance runs one instance",
        "worker[7].governance.duplicates.name_similarity: 92 is outside 0.5..1",
        "worker[7].governance.credit_review.DE01.amount: `lots` is not a positive decimal",
        "worker[7].governance.credit_review.DE01.currency: `euro` is not an ISO 4217 code",
        "worker[7].governance.service_levels.\"PROPOSED->SIGNED\": is not FROM->TO of two governance states",
        "worker[7].governance.service_levels.REQUESTED->ACTIVE: `a day` is not a duration",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    assert!(text.contains("8 problem(s)"), "{text}");
}
