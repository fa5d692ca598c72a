//! No Docker engine runs here, so the compose file is checked by reading it: same images as the
//! versions scripts/stack.sh fetches, same ports, same one-node broker settings.

use syncline_test_support as common;

use std::collections::BTreeMap;

fn stack_script() -> String {
    std::fs::read_to_string(common::repo_path("scripts/stack.sh")).unwrap()
}

/// The default of `NAME="${SYNCLINE_...:-DEFAULT}"` in stack.sh.
fn script_default(script: &str, var: &str) -> String {
    let line = script
        .lines()
        .find(|l| l.starts_with(&format!("{var}=")))
        .unwrap_or_else(|| panic!("{var} not in stack.sh"));
    line.split(":-")
        .nth(1)
        .and_then(|r| r.split('}').next())
        .unwrap()
        .to_string()
}

/// `key=value` lines of the server.properties heredoc in stack.sh.
fn broker_properties(script: &str) -> BTreeMap<String, String> {
    let start = script
        .find("server.properties\" <<EOF")
        .expect("server.properties heredoc");
    script[start..]
        .lines()
        .skip(1)
        .take_while(|l| *l != "EOF")
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

#[test]
fn compose_file_matches_the_local_stack() {
    let compose: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(common::repo_path("docker-compose.kafka.yml")).unwrap()).unwrap();
    let script = stack_script();
    let kafka = &compose["services"]["kafka"];
    let registry = &compose["services"]["registry"];

    let kafka_version = script_default(&script, "KAFKA_VERSION");
    let apicurio_version = script_default(&script, "APICURIO_VERSION");
    assert_eq!(
        kafka["image"].as_str().unwrap(),
        format!("apache/kafka:{kafka_version}")
    );
    assert_eq!(
        registry["image"].as_str().unwrap(),
        format!("apicurio/apicurio-registry:{apicurio_version}")
    );

    let ports = |svc: &serde_yaml::Value| -> Vec<String> {
        svc["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ports(kafka),
        vec![format!("127.0.0.1:{}:9092", script_default(&script, "KAFKA_PORT"))]
    );
    assert_eq!(
        ports(registry),
        vec![format!("127.0.0.1:{}:8080", script_default(&script, "REGISTRY_PORT"))]
    );

    // Every cluster-wide setting the local broker uses is set the same way in the image.
    let env = kafka["environment"].as_mapping().unwrap();
    let env_of = |key: &str| {
        let name = format!("KAFKA_{}", key.replace('.', "_").to_uppercase());
        env.get(serde_yaml::Value::String(name.clone()))
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("{name} missing from docker-compose.kafka.yml"))
    };
    let props = broker_properties(&script);
    for (key, value) in &props {
        if key.contains("listener") || key.contains("quorum") || key.starts_with("log.") || key == "node.id" {
            continue; // addresses and paths differ by design between a container and a host
        }
        assert_eq!(
            &env_of(key),
            value,
            "{key} differs between stack.sh and the compose file"
        );
    }
    assert_eq!(env_of("process.roles"), "broker,controller", "KRaft combined mode");
    assert!(props.contains_key("transaction.state.log.min.isr"));
}
