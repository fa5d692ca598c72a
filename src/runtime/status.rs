//! The status ledger that keeps lifecycles from going backwards: orders (`OrderStatus`), returns
//! (`ReturnAuthorization`) and part reservations (`PartReservation`).
//!
//! Owns: the rank of each status, the last status published per lifecycle (by input partition,
//! with a changelog like the other stores), and the decision "newer or stale". Must not: send
//! anything; the worker drops a stale status and counts it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::schema::canonical::{CanonicalRecord, OrderStatusCode, ReservationStatus, ReturnStatus};

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

fn return_rank(s: ReturnStatus) -> u8 {
    use ReturnStatus::*;
    match s {
        Unknown => 0,
        Requested => 1,
        Authorized => 2,
        GoodsReceived => 3,
        Credited => 4,
        Rejected | Closed => 5,
    }
}

/// BACK_ORDERED and ALLOCATED share a rank: stock can be re-assigned, so the later decision wins.
fn reservation_rank(s: ReservationStatus) -> u8 {
    use ReservationStatus::*;
    match s {
        Unknown => 0,
        Requested => 1,
        BackOrdered | Allocated => 2,
        Rejected | Cancelled => 3,
    }
}

/// The ledger key and position of a status-bearing record; `None` for records without a
/// lifecycle status. Order keys are the bare order id (the changelog format of earlier versions);
/// the other lifecycles are prefixed so ids of different objects never collide.
pub fn gate(record: &CanonicalRecord) -> Option<(String, Current)> {
    let (key, rank, status_at) = match record {
        CanonicalRecord::OrderStatus(s) => (s.order_id.clone(), rank(s.status), s.status_at),
        CanonicalRecord::ReturnAuthorization(r) => {
            (format!("return:{}", r.case_id), return_rank(r.status), r.status_at)
        }
        CanonicalRecord::PartReservation(r) => (
            format!("reservation:{}", r.reservation_id),
            reservation_rank(r.status),
            r.status_at,
        ),
        _ => return None,
    };
    Some((key, Current { rank, status_at }))
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

    /// Applies a changelog record read back for the changelog partitions in `wanted`: a
    /// `batch2:` record (JSON map lifecycle → [partition, current]) keeps the entries of wanted
    /// partitions; older records belong to the partition they were read from.
    pub fn restore_record(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        partition: i32,
        wanted: &std::collections::BTreeSet<i32>,
    ) {
        if key.starts_with(super::state::BATCH_KEY.as_bytes()) {
            let map: HashMap<String, (i32, Current)> =
                value.and_then(|v| serde_json::from_slice(v).ok()).unwrap_or_default();
            for (order, (owner, current)) in map {
                if wanted.contains(&owner) {
                    self.set(order, owner, current);
                }
            }
        } else if wanted.contains(&partition) {
            self.apply_changelog(key, value, partition);
        }
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

    #[test]
    fn returns_and_reservations_have_their_own_lifecycles() {
        assert!(return_rank(ReturnStatus::Credited) > return_rank(ReturnStatus::GoodsReceived));
        assert!(return_rank(ReturnStatus::GoodsReceived) > return_rank(ReturnStatus::Authorized));
        let back = reservation_rank(ReservationStatus::BackOrdered);
        assert_eq!(back, reservation_rank(ReservationStatus::Allocated));
        assert!(reservation_rank(ReservationStatus::Rejected) > back);
    }
}
