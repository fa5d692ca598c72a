//! The per-order status ledger that keeps `OrderStatus` from going backwards.
//!
//! Owns: the rank of each status, the last status published per order (by input partition, with
//! a compacted changelog like the other stores), and the decision "newer or stale". Must not:
//! send anything; the worker drops a stale status and counts it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::schema::canonical::OrderStatusCode;

/// Lifecycle rank: a status is published only if it ranks higher than the current one, or ranks
/// the same and happened later (ACCEPTED ↔ CREDIT_HOLD, a second partial shipment).
pub fn rank(s: OrderStatusCode) -> u8 {
    use OrderStatusCode::*;
    match s {
        Unknown => 0,
        Submitted => 1,
        Accepted | CreditHold => 2,
        PartiallyShipped => 3,
        Shipped => 4,
        Invoiced => 5,
        Paid => 6,
        Rejected | Cancelled => 7,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    pub rank: u8,
    pub status_at: i64,
}

#[derive(Default)]
pub struct StatusStore {
    orders: HashMap<String, (i32, Current)>,
}

impl StatusStore {
    pub fn current(&self, order_id: &str) -> Option<Current> {
        self.orders.get(order_id).map(|(_, c)| *c)
    }

    pub fn set(&mut self, order_id: String, partition: i32, current: Current) {
        self.orders.insert(order_id, (partition, current));
    }

    pub fn drop_partition(&mut self, partition: i32) {
        self.orders.retain(|_, (p, _)| *p != partition);
    }

    /// Applies one changelog record: a batch (`batch:` key, JSON map order → current) or a
    /// single order (key = order id).
    pub fn apply_changelog(&mut self, key: &[u8], value: Option<&[u8]>, partition: i32) {
        if key.starts_with(b"batch:") {
            let map: HashMap<String, Current> = value.and_then(|v| serde_json::from_slice(v).ok()).unwrap_or_default();
            for (order, current) in map {
                self.set(order, partition, current);
            }
            return;
        }
        let order = String::from_utf8_lossy(key).into_owned();
        match value.and_then(|v| serde_json::from_slice::<Current>(v).ok()) {
            Some(c) => self.set(order, partition, c),
            None => {
                self.orders.remove(&order);
            }
        }
    }
}

/// Whether `candidate` moves the order forward from `current`.
pub fn is_newer(current: Option<Current>, candidate: Current) -> bool {
    match current {
        None => true,
        Some(c) => candidate.rank > c.rank || (candidate.rank == c.rank && candidate.status_at > c.status_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatusCode::*;

    fn at(s: OrderStatusCode, t: i64) -> Current {
        Current {
            rank: rank(s),
            status_at: t,
        }
    }

    #[test]
    fn status_never_goes_backwards() {
        assert!(is_newer(None, at(Accepted, 1)));
        assert!(is_newer(Some(at(Accepted, 1)), at(Shipped, 2)));
        assert!(
            !is_newer(Some(at(Shipped, 2)), at(Accepted, 3)),
            "a late ACCEPTED after SHIPPED is stale"
        );
        assert!(
            is_newer(Some(at(Accepted, 1)), at(CreditHold, 2)),
            "same rank, later: published"
        );
        assert!(
            !is_newer(Some(at(CreditHold, 2)), at(Accepted, 1)),
            "same rank, earlier: stale"
        );
        assert!(
            !is_newer(Some(at(Cancelled, 5)), at(Paid, 6)),
            "nothing after a terminal status"
        );
    }
}
