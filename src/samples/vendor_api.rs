//! A local stand-in for the vendors' APIs (SAP OData v2, Dynamics 365 OData v4), for the demo,
//! the integration tests and the benchmark: it answers with the documented response shapes and
//! injects the faults the failure policy is tested against (latency, 429 with `Retry-After`,
//! 503, 401, 404). The client under test is the real one (`api::ApiClient`).
//!
//! Owns: the documents it serves (by request path and query, as the client sends them), the
//! scripted faults, and the count of calls per document. Must not: be used by a worker in a
//! user's deployment: it binds to loopback and serves only what a test or the demo put in.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An answer to give instead of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// This status (with `Retry-After` seconds, if given) and an OData error body.
    Status(u16, Option<u64>),
}

#[derive(Default)]
struct Inner {
    documents: HashMap<String, Value>,
    /// Faults answered next, in order, whatever is asked.
    script: VecDeque<Fault>,
    /// Every request answered with this fault until cleared (an outage).
    outage: Option<Fault>,
    calls: HashMap<String, usize>,
}

/// The fixture's state, shared with the test or demo that fills it.
#[derive(Clone, Default)]
pub struct VendorApi {
    inner: Arc<Mutex<Inner>>,
    delay_ms: Arc<AtomicU64>,
}

/// A connection to the fixture at `addr`, its API under `root`, with the connection defaults
/// (basic auth: the fixture only asks that credentials are sent).
pub fn connection(addr: SocketAddr, root: &str) -> Result<crate::api::ApiConfig, toml::de::Error> {
    toml::from_str(&format!(
        "base_url = \"http://{addr}/{root}\"\nauth = {{ kind = \"basic\", username = \"syncline\", password = \"fixture\" }}"
    ))
}

/// The request path and query as one key, percent-decoded, so that the key a test writes
/// (`API_SALES_ORDER_SRV/A_SalesOrder('4500017342')`) matches whatever the HTTP client encoded.
fn key_of(path_and_query: &str) -> String {
    percent_encoding::percent_decode_str(path_and_query.trim_start_matches('/'))
        .decode_utf8_lossy()
        .into_owned()
}

impl VendorApi {
    /// Serves on `127.0.0.1:port` (0: any free port) until the process ends; returns the address.
    pub async fn serve(&self, port: u16) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().fallback(answer).with_state(self.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "vendor API fixture stopped");
            }
        });
        Ok(addr)
    }

    /// Serves `answer` at `path` (relative to the server root, query included).
    pub fn put(&self, path: &str, answer: Value) {
        if let Ok(mut i) = self.inner.lock() {
            i.documents.insert(key_of(path), answer);
        }
    }

    /// The next requests get these faults, one each, in order.
    pub fn script(&self, faults: &[Fault]) {
        if let Ok(mut i) = self.inner.lock() {
            i.script.extend(faults.iter().copied());
        }
    }

    /// Every request gets `fault` until `outage(None)`.
    pub fn outage(&self, fault: Option<Fault>) {
        if let Ok(mut i) = self.inner.lock() {
            i.outage = fault;
        }
    }

    /// Every answer after this delay.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Requests for `path` answered so far (faults included).
    pub fn calls(&self, path: &str) -> usize {
        self.inner
            .lock()
            .map(|i| i.calls.get(&key_of(path)).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Requests answered so far, all paths.
    pub fn total_calls(&self) -> usize {
        self.inner.lock().map(|i| i.calls.values().sum()).unwrap_or(0)
    }

    /// An SAP sales order (`API_SALES_ORDER_SRV`, OData v2) with the Salesforce order id in
    /// `PurchaseOrderByCustomer`.
    pub fn sap_sales_order(&self, root: &str, order: &str, salesforce_order: &str) {
        self.sap_sales_order_in(root, order, salesforce_order, "", "");
    }

    /// The same order in a given state: `credit` its `TotalCreditCheckStatus` (`B` blocked),
    /// `rejection` its `OverallSDDocumentRejectionSts` (`C` all items rejected).
    pub fn sap_sales_order_in(&self, root: &str, order: &str, salesforce_order: &str, credit: &str, rejection: &str) {
        self.put(
            &format!("{root}/API_SALES_ORDER_SRV/A_SalesOrder('{order}')"),
            json!({"d": {
                "__metadata": {"type": "API_SALES_ORDER_SRV.A_SalesOrderType"},
                "SalesOrder": order,
                "SalesOrderType": "OR",
                "SalesOrganization": "1710",
                "SoldToParty": "17100001",
                "PurchaseOrderByCustomer": salesforce_order,
                "RequestedDeliveryDate": "/Date(1795651200000)/",
                "TransactionCurrency": "USD",
                "TotalNetAmount": "12480.50",
                "TotalCreditCheckStatus": credit,
                "OverallSDDocumentRejectionSts": rejection,
            }}),
        );
    }

    /// An SAP outbound delivery (`API_OUTBOUND_DELIVERY_SRV;v=0002`) of `order`, items expanded.
    pub fn sap_delivery(&self, root: &str, delivery: &str, order: &str) {
        self.put(
            &format!(
                "{root}/API_OUTBOUND_DELIVERY_SRV;v=0002/A_OutbDeliveryHeader('{delivery}')?$expand=to_DeliveryDocumentItem"
            ),
            json!({"d": {
                "__metadata": {"type": "API_OUTBOUND_DELIVERY_SRV.A_OutbDeliveryHeaderType"},
                "DeliveryDocument": delivery,
                "OverallGoodsMovementStatus": "C",
                "ShippingPoint": "1710",
                "to_DeliveryDocumentItem": {"results": [
                    {"DeliveryDocument": delivery, "DeliveryDocumentItem": "000010", "Material": "TG11",
                     "ActualDeliveryQuantity": "10", "DeliveryQuantityUnit": "EA",
                     "ReferenceSDDocument": order, "ReferenceSDDocumentItem": "10"},
                    {"DeliveryDocument": delivery, "DeliveryDocumentItem": "000020", "Material": "SK12",
                     "ActualDeliveryQuantity": "24", "DeliveryQuantityUnit": "EA",
                     "ReferenceSDDocument": order, "ReferenceSDDocumentItem": "20"}
                ]}
            }}),
        );
    }

    /// An SAP billing document (`API_BILLING_DOCUMENT_SRV`) of `order`, items expanded.
    pub fn sap_billing_document(&self, root: &str, billing: &str, order: &str) {
        self.put(
            &format!("{root}/API_BILLING_DOCUMENT_SRV/A_BillingDocument('{billing}')?$expand=to_Item"),
            json!({"d": {
                "__metadata": {"type": "API_BILLING_DOCUMENT_SRV.A_BillingDocumentType"},
                "BillingDocument": billing,
                "BillingDocumentType": "F2",
                "BillingDocumentCategory": "M",
                "SoldToParty": "17100001",
                "BillingDocumentDate": "/Date(1795651200000)/",
                "TransactionCurrency": "USD",
                "TotalNetAmount": "12480.50",
                "TotalTaxAmount": "1060.84",
                "CustomerPaymentTerms": "NT30",
                "to_Item": {"results": [
                    {"BillingDocument": billing, "BillingDocumentItem": "10", "Material": "TG11",
                     "BillingQuantity": "10", "BillingQuantityUnit": "EA", "NetAmount": "12000.50",
                     "BillingDocumentItemText": "Industrial pump TG-11", "SalesDocument": order},
                    {"BillingDocument": billing, "BillingDocumentItem": "20", "Material": "SK12",
                     "BillingQuantity": "24", "BillingQuantityUnit": "EA", "NetAmount": "480.00",
                     "SalesDocument": order}
                ]}
            }}),
        );
    }

    /// A Salesforce Order as the REST API answers `sobjects/Order/{id}` (every field, custom ones
    /// included, with `attributes`), and its OrderItems as the SOQL query of
    /// `adapters::salesforce::lookups` answers it (`records`, `done`).
    pub fn salesforce_order(&self, root: &str, o: &SfOrder<'_>) {
        let mut total = 0.0;
        let records: Vec<Value> = o
            .items
            .iter()
            .enumerate()
            .map(|(i, (product, quantity, price, unit))| {
                total += f64::from(*quantity) * price.parse::<f64>().unwrap_or(0.0);
                json!({
                    "attributes": {"type": "OrderItem", "url": format!("/{root}/sobjects/OrderItem/802Dn{i:010}")},
                    "Id": format!("802Dn{i:010}"),
                    "OrderItemNumber": format!("{:010}", i + 1),
                    "Product2Id": product,
                    "Quantity": quantity,
                    "UnitPrice": price.parse::<f64>().unwrap_or(0.0),
                    "Description": null,
                    "Product2": {"attributes": {"type": "Product2"}, "QuantityUnitOfMeasure": unit},
                })
            })
            .collect();
        self.put(
            &format!("{root}/sobjects/Order/{}", o.id),
            json!({
                "attributes": {"type": "Order", "url": format!("/{root}/sobjects/Order/{}", o.id)},
                "Id": o.id,
                "AccountId": o.account,
                "Status": "Activated",
                "StatusCode": "Activated",
                "EffectiveDate": "2026-11-26",
                "OrderNumber": "00012004",
                "PoNumber": null,
                "CurrencyIsoCode": o.currency,
                "TotalAmount": total,
                "Legal_Entity__c": o.legal_entity,
            }),
        );
        self.put(
            &format!(
                "{root}/query?q=SELECT+Id,OrderItemNumber,Product2Id,Quantity,UnitPrice,Description,Product2.QuantityUnitOfMeasure+FROM+OrderItem+WHERE+OrderId='{}'+ORDER+BY+OrderItemNumber",
                o.id
            ),
            json!({"totalSize": records.len(), "done": true, "records": records}),
        );
    }

    /// A Dynamics 365 posted sales invoice as the `SalesInvoiceHeadersV2` data entity answers a
    /// filter on its number and legal entity (OData v4 collection), the Salesforce order in
    /// `CustomersOrderReference`.
    pub fn d365_sales_invoice(&self, root: &str, d: &D365Invoice<'_>) {
        self.put(
            &format!(
                "{root}/data/SalesInvoiceHeadersV2?$filter=InvoiceNumber eq '{}' and dataAreaId eq '{}'&cross-company=true",
                d.invoice, d.company
            ),
            json!({
                "@odata.context": format!("https://d365.local/{root}/data/$metadata#SalesInvoiceHeadersV2"),
                "value": [{
                    "@odata.etag": "W/\"JzEsNTYzNzE0NDU3Nic=\"",
                    "dataAreaId": d.company.to_lowercase(),
                    "InvoiceNumber": d.invoice,
                    "InvoiceDate": "2026-11-26T12:00:00Z",
                    "LedgerVoucher": format!("ARI-{}", d.invoice),
                    "SalesOrderNumber": d.order,
                    "InvoiceCustomerAccountNumber": d.customer,
                    "CustomersOrderReference": d.salesforce_order,
                    "CurrencyCode": "EUR",
                    "PaymentTermsName": "Net30",
                    "DeliveryTermsCode": "FOB",
                    "TotalDiscountAmount": 0,
                    "TotalChargeAmount": 0,
                    "TotalTaxAmount": 209.00,
                    "TotalInvoiceAmount": 1309.00,
                }]
            }),
        );
    }
}

/// One Salesforce Order the fixture serves, and its items (product, quantity, unit price, the
/// product's `QuantityUnitOfMeasure`).
pub struct SfOrder<'a> {
    pub id: &'a str,
    pub account: &'a str,
    pub legal_entity: &'a str,
    pub currency: &'a str,
    pub items: &'a [(&'a str, u32, &'a str, &'a str)],
}

/// The numbers of one Dynamics 365 sales invoice the fixture serves.
pub struct D365Invoice<'a> {
    pub company: &'a str,
    pub invoice: &'a str,
    pub order: &'a str,
    pub customer: &'a str,
    pub salesforce_order: &'a str,
}

async fn answer(State(api): State<VendorApi>, uri: Uri, headers: HeaderMap) -> Response {
    let key = key_of(uri.path_and_query().map(|p| p.as_str()).unwrap_or(""));
    let delay = api.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let (fault, document) = match api.inner.lock() {
        Ok(mut i) => {
            *i.calls.entry(key.clone()).or_default() += 1;
            let fault = i.script.pop_front().or(i.outage);
            (fault, i.documents.get(&key).cloned())
        }
        Err(_) => (Some(Fault::Status(500, None)), None),
    };
    if !headers.contains_key(axum::http::header::AUTHORIZATION) {
        return odata_error(StatusCode::UNAUTHORIZED, "no credentials", None);
    }
    if let Some(Fault::Status(code, retry_after)) = fault {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return odata_error(status, "injected fault", retry_after);
    }
    match document {
        // Salesforce reports the org's daily API use on every REST answer.
        Some(d) if key.contains("services/data/") => {
            let mut r = axum::Json(d).into_response();
            r.headers_mut().insert(
                "sforce-limit-info",
                axum::http::HeaderValue::from_static("api-usage=120/15000"),
            );
            r
        }
        Some(d) => axum::Json(d).into_response(),
        // A filter that matches nothing is an empty collection, not an error (OData v4).
        None if key.contains("$filter=") => axum::Json(json!({"value": []})).into_response(),
        None => odata_error(StatusCode::NOT_FOUND, "Resource not found for the segment", None),
    }
}

/// The OData error body both SAP Gateway and Dynamics answer with.
fn odata_error(status: StatusCode, message: &str, retry_after: Option<u64>) -> Response {
    let body = json!({"error": {"code": status.as_u16().to_string(), "message": {"lang": "en", "value": message}}});
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(seconds) = retry_after
        && let Ok(v) = seconds.to_string().parse()
    {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    response
}
