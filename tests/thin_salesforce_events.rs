//! A Salesforce Order change event as Change Data Capture sends it for an activation (the
//! changed fields only: `Status`, `LastModifiedDate`), completed through the REST API of a local
//! fixture server, end to end on the real broker: the record from `sobjects/Order/{id}` and its
//! items from the OrderItem query become the `SalesOrder` for the ERP (units converted, total
//! exact), with two calls for the order, `Sforce-Limit-Info` feeding the budget gauge, and a
//! change that is not the activation making no call.

use syncline_test_support as common;

use syncline::config::EnrichConfig;
use syncline::samples::vendor_api::{self, SfOrder, VendorApi};
use syncline::schema::canonical::*;

const RUN: &str = "00005fdc";
const ROOT: &str = "services/data/v62.0";

#[tokio::test]
async fn a_thin_order_activation_is_completed_through_the_rest_api() {
    let api = VendorApi::default();
    let addr = api.serve(0).await.expect("fixture server");
    let order = format!("801Dn{RUN}E5");
    let seal = format!("01tDn000SEAL{RUN}");
    api.salesforce_order(
        ROOT,
        &SfOrder {
            id: &order,
            account: &format!("001Dn000ACME{RUN}"),
            legal_entity: "CA01",
            currency: "USD",
            items: &[(&seal, 5, "240.00", "Box")],
        },
    );

    let mut env = common::Scenario::new("sfcdc", RUN).await;
    env.publish_xref("mdm/xref.json").await;
    let mut cfg = vendor_api::connection(addr, ROOT).expect("api config");
    cfg.timeout = std::time::Duration::from_secs(2);
    env.topology.api.insert("sf".into(), cfg);
    let w = env.worker_config("order-submission");
    w.enrich = Some(EnrichConfig {
        api: "sf".into(),
        not_found_for: std::time::Duration::from_secs(5 * 60),
        retry_every: std::time::Duration::from_secs(1),
    });
    let running = env.start(&["order-submission"]).await;

    // A change that is not the activation: the transform emits nothing, so nothing is read.
    let draft = syncline::samples::load(
        &common::repo_path("samples/salesforce/cdc/order_change.activated.json"),
        RUN,
    )
    .expect("sample");
    let draft = String::from_utf8_lossy(&draft.value)
        .replace("\"Activated\"", "\"Draft\"")
        .replace("1186533405", "1186533404");
    common::produce(
        &env.producer,
        &env.topic("sf.order.submitted"),
        &order,
        draft.as_bytes(),
    )
    .await;

    env.publish(
        "sf.order.submitted",
        &order,
        "salesforce/cdc/order_change.activated.json",
    )
    .await;
    let out = env.wait("erp.na.sales-order.requests", 1).await;
    let o: SalesOrder = env.decode(&out[0]).await;
    assert_eq!(
        (
            o.order_id.as_str(),
            o.legal_entity.as_str(),
            o.currency.as_str(),
            o.order_number.as_deref()
        ),
        (order.as_str(), "CA01", "USD", Some("00012004"))
    );
    assert_eq!(o.erp_customer_id, "17100001");
    assert_eq!(o.total_amount.to_string(), "1200.00");
    assert_eq!(o.lines.len(), 1);
    assert_eq!(
        (
            o.lines[0].erp_material_id.as_deref(),
            o.lines[0].quantity.to_string(),
            o.lines[0].unit_of_measure.as_str()
        ),
        (Some("SK12"), "60.000".to_string(), "EA"),
        "5 Box of the product's unit of measure are 60 EA"
    );
    env.settle(&["order-submission"]).await;
    assert_eq!(api.total_calls(), 2, "the order and its items, nothing for the draft");
    assert_eq!(api.calls(&format!("{ROOT}/sobjects/Order/{order}")), 1);
    assert_eq!(
        running.metrics.api_budget_remaining.with_label_values(&["sf"]).get(),
        14_880,
        "Sforce-Limit-Info api-usage=120/15000"
    );
    running.stop().await;
}
