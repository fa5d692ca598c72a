//! Customer master governance end to end on the real broker with the shipped topology: a new
//! account is proposed, suspected a duplicate of a known customer, approved by an operator with
//! `syncline customers approve` (the binary, as an operator runs it), requested from the EU ERP,
//! activated by the ERP's answer on `mdm.xref`, and the order parked on it flows.

use syncline_test_support as common;

use rdkafka::message::Message;
use syncline::schema::canonical::*;

const RUN: &str = "0000gv01";

fn json(out: &str) -> serde_json::Value {
    let start = out.find(['{', '[']).unwrap_or_else(|| panic!("no JSON in: {out}"));
    serde_json::from_str(&out[start..]).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test]
async fn an_account_is_proposed_suspected_approved_requested_activated_and_its_parked_order_flows() {
    use GovernanceState as S;
    let env = common::Scenario::new("governance", RUN).await;
    let file = common::TopologyFile::create(&common::shipped_topology_text_private(&env.suffix)).await;
    let cli = |args: &[&str]| common::syncline(&file.path, args, &[]);
    env.publish_xref("mdm/xref.json").await;
    env.publish_xref("mdm/xref.customers.json").await;
    let running = env.start(&["order-submission", "account-sync"]).await;
    let account = format!("001Dn000LATE{RUN}");

    // An order for the account before it is an ERP customer: parked on the account.
    env.publish(
        "sf.order.submitted",
        &format!("801Dn{RUN}B2"),
        "salesforce/order_submitted.pubsub.json",
    )
    .await;
    env.wait("syncline.parked", 1).await;

    // Proposed: named like the known customer Berliner Pumpenwerk AG, so a person decides.
    env.publish("sf.account.changes", &account, "salesforce/account_change.create.json")
        .await;
    let g: AccountGovernance = env.decode(&env.wait("mdm.account-governance", 1).await[0]).await;
    assert_eq!(g.state, S::DuplicateSuspected);
    assert_eq!(
        g.transitions.iter().map(|t| t.to).collect::<Vec<_>>(),
        [S::Proposed, S::Validated, S::DuplicateSuspected]
    );
    assert_eq!(g.transitions[0].by, "salesforce:005Dn000001Xyz1IAC");
    assert_eq!(
        (g.reasons[0].code.as_str(), g.reasons[0].candidate_account_id.as_deref()),
        ("DUPLICATE_NAME", Some(format!("001Dn000BPW0{RUN}").as_str()))
    );

    // The operator sees it waiting, with its reason, and approves it.
    let (ok, out) = cli(&["customers", "pending", "--json"]);
    assert!(ok, "{out}");
    let pending = json(&out);
    assert_eq!(pending.as_array().map(Vec::len), Some(1), "{out}");
    assert_eq!(pending[0]["salesforce_id"], account.as_str());
    assert_eq!(pending[0]["reasons"][0]["code"], "DUPLICATE_NAME");
    assert!(
        common::read_all(&env.topic("erp.eu.customer.requests"))
            .await
            .is_empty(),
        "no CustomerMaster before approval"
    );
    let (ok, out) = cli(&[
        "customers",
        "approve",
        &account,
        "--reason",
        "another company: a different register entry",
        "--by",
        "alice",
    ]);
    assert!(ok && out.contains("decision sent"), "{out}");

    // APPROVED by alice, then REQUESTED: the CustomerMaster goes to the EU ERP (legal entity DE01).
    let g: AccountGovernance = env.decode(&env.wait("mdm.account-governance", 2).await[1]).await;
    assert_eq!(g.state, S::Requested);
    assert_eq!(
        (g.transitions[0].to, g.transitions[0].by.as_str()),
        (S::Approved, "operator:alice")
    );
    let requests = env.wait("erp.eu.customer.requests", 1).await;
    assert_eq!(requests[0].key(), Some(account.as_bytes()));
    let customer: CustomerMaster = env.decode(&requests[0]).await;
    assert_eq!(
        (customer.change_type, customer.legal_entity.as_deref()),
        (ChangeType::Create, Some("DE01"))
    );

    // The same approval again is a no-op, said as such.
    let (ok, out) = cli(&["customers", "approve", &account, "--reason", "again", "--by", "alice"]);
    assert!(ok && out.contains("already done"), "{out}");
    assert!(
        common::read_all(&env.topic("erp.eu.sales-order.requests"))
            .await
            .is_empty(),
        "the order still waits for the ERP's customer number"
    );

    // The ERP answers with the customer number: ACTIVE, and the parked order flows, once.
    env.publish_xref("mdm/xref.late.json").await;
    let g: AccountGovernance = env.decode(&env.wait("mdm.account-governance", 3).await[2]).await;
    assert_eq!(
        (g.state, g.erp_customer_id.as_deref()),
        (S::Active, Some(format!("DE-{RUN}").as_str()))
    );
    assert_eq!(g.transitions[0].by, "erp:erp-eu");
    let order: SalesOrder = env.decode(&env.wait("erp.eu.sales-order.requests", 1).await[0]).await;
    assert_eq!(order.erp_customer_id, format!("DE-{RUN}"));

    // The audit: every transition, who decided, in order.
    let (ok, out) = cli(&["customers", "show", &account, "--json"]);
    assert!(ok, "{out}");
    let shown = json(&out);
    let history: Vec<(String, String)> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["to"].as_str().unwrap().to_string(),
                t["by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let to: Vec<&str> = history.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        to,
        [
            "PROPOSED",
            "VALIDATED",
            "DUPLICATE_SUSPECTED",
            "APPROVED",
            "REQUESTED",
            "ACTIVE"
        ]
    );
    assert_eq!(history[3].1, "operator:alice");
    let (ok, out) = cli(&["customers", "pending"]);
    assert!(ok && out.contains("0 account(s) waiting"), "{out}");

    // Nothing more appears later: one request, one order, three governance records.
    env.settle(&["order-submission", "account-sync"]).await;
    assert_eq!(common::read_all(&env.topic("erp.eu.customer.requests")).await.len(), 1);
    assert_eq!(
        common::read_all(&env.topic("erp.eu.sales-order.requests")).await.len(),
        1
    );
    assert_eq!(common::read_all(&env.topic("mdm.account-governance")).await.len(), 3);
    // The process's cross-reference feed counts the governed accounts per state.
    let gauge = running.metrics.accounts_in_state.clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while gauge.with_label_values(&["ACTIVE"]).get() != 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        gauge.with_label_values(&["ACTIVE"]).get(),
        1,
        "syncline_accounts_in_state{{state=\"ACTIVE\"}}"
    );
    assert_eq!(gauge.with_label_values(&["DUPLICATE_SUSPECTED"]).get(), 0);
    running.stop().await;
}
