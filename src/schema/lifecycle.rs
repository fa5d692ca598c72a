//! Lifecycles of the canonical model: the states an order goes through, the rank of every
//! status of an order, a return and a part reservation, and the rule that a lifecycle only moves
//! forward.
//!
//! Owns: the ordering of statuses, shared by the status ledger (which drops a stale status), the
//! tracker (which follows orders) and the topology's service levels. Must not: keep state.

use serde::{Deserialize, Serialize};

use super::canonical::{OrderStatusCode, ReservationStatus, ReturnStatus};

/// The order states, as the topology's service levels and the tracker's gauges name them.
pub const STATES: [&str; 9] = [
    "SUBMITTED",
    "ACCEPTED",
    "CREDIT_HOLD",
    "REJECTED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "INVOICED",
    "PAID",
    "CANCELLED",
];

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

pub fn return_rank(s: ReturnStatus) -> u8 {
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
pub fn reservation_rank(s: ReservationStatus) -> u8 {
    use ReservationStatus::*;
    match s {
        Unknown => 0,
        Requested => 1,
        BackOrdered | Allocated => 2,
        Rejected | Cancelled => 3,
    }
}

/// Where a lifecycle stands: the rank of its status and when that status happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    pub rank: u8,
    pub status_at: i64,
}

impl Current {
    pub fn new(rank: u8, status_at: i64) -> Self {
        Self { rank, status_at }
    }
}

/// Whether `candidate` moves the order forward from `current`.
pub fn is_newer(current: Option<Current>, candidate: Current) -> bool {
    match current {
        None => true,
        Some(c) => candidate.rank > c.rank || (candidate.rank == c.rank && candidate.status_at > c.status_at),
    }
}

/// `FROM->TO` of a service level.
pub fn parse_transition(text: &str) -> Option<(OrderStatusCode, OrderStatusCode)> {
    let (from, to) = text.split_once("->")?;
    Some((state(from.trim())?, state(to.trim())?))
}

fn state(name: &str) -> Option<OrderStatusCode> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .ok()
        .filter(|s| *s != OrderStatusCode::Unknown)
}

pub fn state_name(s: OrderStatusCode) -> String {
    enum_name(&s)
}

/// The Avro symbol of a canonical enum (`IN_DUNNING`).
pub fn enum_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatusCode::*;

    fn at(s: OrderStatusCode, t: i64) -> Current {
        Current::new(rank(s), t)
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

    #[test]
    fn transitions_parse() {
        assert_eq!(parse_transition("SUBMITTED->ACCEPTED"), Some((Submitted, Accepted)));
        assert_eq!(parse_transition("SUBMITTED->LOST"), None);
        assert_eq!(parse_transition("nonsense"), None);
        assert_eq!(state_name(PartiallyShipped), "PARTIALLY_SHIPPED");
        assert!(STATES.iter().all(|s| parse_transition(&format!("{s}->{s}")).is_some()));
    }
}
