//! The event ids one worker reads: its profile's built-in ones and those its deployment names.
//!
//! Owns: event id → kind for one worker. Must not: hold field names (the profile does) or
//! guess a kind for an id nobody named.

use super::{ErpEventKind, Profile};

/// A kind name in `[worker.event_types]` that is none of [`ErpEventKind::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an event kind")]
pub struct UnknownKind(pub String);

/// A profile as one worker reads it: the vendor's built-in event ids, and those the deployment
/// adds in `[worker.event_types]` for events the vendor publishes without a documented id
/// (Dynamics 365's catalog depends on what is enabled and extended).
#[derive(Debug, Clone)]
pub struct Catalog {
    pub profile: &'static Profile,
    added: Vec<(String, ErpEventKind)>,
}

impl Catalog {
    pub fn of(profile: &'static Profile) -> Self {
        Catalog {
            profile,
            added: Vec::new(),
        }
    }

    /// `profile` with `added` (event id → kind name, see [`ErpEventKind::from_name`]); the
    /// first unknown kind name is the error.
    pub fn with<'n>(
        profile: &'static Profile,
        added: impl IntoIterator<Item = (&'n String, &'n String)>,
    ) -> Result<Self, UnknownKind> {
        let mut c = Catalog::of(profile);
        for (id, kind) in added {
            let k = ErpEventKind::from_name(kind).ok_or_else(|| UnknownKind(kind.clone()))?;
            c.added.push((id.clone(), k));
        }
        Ok(c)
    }

    /// The deployment's names first: they may re-map a built-in id.
    pub fn kind_of(&self, event_type: &str) -> Option<ErpEventKind> {
        self.added
            .iter()
            .find(|(t, _)| t == event_type)
            .map(|(_, k)| *k)
            .or_else(|| self.profile.kind_of(event_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::erp::profile::D365_FO;

    #[test]
    fn one_sap_billing_event_is_an_invoice_or_a_credit_memo_by_its_category() {
        use crate::adapters::erp::profile::SAP_S4;
        let parse = |category: &str| {
            let payload = format!(
                r#"{{"specversion":"1.0","id":"e","source":"/default/sap.s4.beh/erp-na","type":"sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1","time":"2026-11-27T18:00:00Z","data":{{"BillingDocument":"90000001","BillingDocumentCategory":"{category}"}}}}"#
            );
            let raw = crate::adapters::RawRecord {
                topic: "erp",
                partition: 0,
                offset: 0,
                key: None,
                payload: Some(payload.as_bytes()),
                headers: &[],
                timestamp_ms: None,
            };
            crate::adapters::erp::parse(&raw, &Catalog::of(&SAP_S4)).map(|e| e.kind)
        };
        assert_eq!(parse("O"), Ok(ErpEventKind::CreditMemoPosted));
        assert_eq!(parse("M"), Ok(ErpEventKind::InvoicePosted));
    }

    #[test]
    fn a_deployment_names_the_ids_its_catalog_lists() {
        let named = [(
            "ContosoOrderConfirmedBusinessEvent".to_string(),
            "order_accepted".to_string(),
        )];
        let c = Catalog::with(&D365_FO, named.iter().map(|(a, b)| (a, b))).unwrap();
        assert_eq!(
            c.kind_of("ContosoOrderConfirmedBusinessEvent"),
            Some(ErpEventKind::OrderAccepted)
        );
        assert_eq!(
            c.kind_of("SalesInvoicePostedBusinessEvent"),
            Some(ErpEventKind::InvoicePosted)
        );
        assert_eq!(
            Catalog::of(&D365_FO).kind_of("ContosoOrderConfirmedBusinessEvent"),
            None
        );
        let wrong = [("X".to_string(), "confirmed".to_string())];
        assert_eq!(
            Catalog::with(&D365_FO, wrong.iter().map(|(a, b)| (a, b))).unwrap_err(),
            UnknownKind("confirmed".into())
        );
    }
}
