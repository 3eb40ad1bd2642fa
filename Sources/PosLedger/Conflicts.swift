// Conflict records: every concurrent or contradictory case the fold decides
// is written down — which events, which rule, which outcome — and is part of
// the folded state, so every replica with the same events reports the same
// conflicts. Nothing is dropped silently.

public struct ConflictRecord: Hashable, Comparable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        /// Several concurrent status events on one ticket; precedence decided.
        case concurrentDecision = "concurrent-decision"
        /// Several concurrent outcomes on one sale; precedence decided.
        case concurrentSaleOutcome = "concurrent-sale-outcome"
        /// An event that is not a valid transition from the state of its causal past: ignored.
        case invalidTransition = "invalid-transition"
        /// A completion on a ticket whose sale is not (or not the standing) confirmed capture: ignored.
        case completionOnUnconfirmedSale = "completion-on-unconfirmed-sale"
        /// Refund tickets of one sale adding up past its amount: the extra ones held.
        case overRefund = "over-refund"
        /// Several captures of one payment code: one stands, the others void.
        case duplicatePaymentCode = "duplicate-payment-code"
        /// A live ticket on a declined, expired or void-duplicate sale: held.
        case saleNotPaid = "sale-not-paid"
        /// An event of a type its writer may not write: ignored.
        case unauthorizedWriter = "unauthorized-writer"
        /// Two different events with the same dot: the one with the smaller encoding kept.
        case dotReused = "dot-reused"
    }

    public let kind: Kind
    /// The rule applied, e.g. "precedence-3" or "over-refund-order".
    public let rule: String
    /// The events involved, sorted.
    public let events: [Dot]
    /// What the fold decided, in words: canonical, so replicas compare equal.
    public let outcome: String

    init(_ kind: Kind, rule: String, events: [Dot], outcome: String) {
        self.kind = kind
        self.rule = rule
        self.events = events.sorted()
        self.outcome = outcome
    }

    public var description: String {
        "conflict \(kind.rawValue) rule=\(rule) events=[\(events.map(\.description).joined(separator: ","))] "
            + "outcome=\(outcome)"
    }

    public static func < (l: ConflictRecord, r: ConflictRecord) -> Bool {
        if l.events != r.events { return l.events.lexicographicallyPrecedes(r.events) }
        if l.kind != r.kind { return l.kind.rawValue < r.kind.rawValue }
        if l.rule != r.rule { return l.rule < r.rule }
        return l.outcome < r.outcome
    }
}

/// Where a conflict record belongs: recomputing that entity replaces its records.
enum ConflictScope: Hashable, Sendable {
    case sale(SaleId)
    case ticket(TicketId)
    case paymentCode(DuplicateKey)
    case event(Dot)
}

/// A state's conflict records by scope: one dictionary per kind of scope, each keyed
/// by its id (dots, sales and tickets hash as one word; see `Dot.hashWord`), so
/// recomputing a sale does not hash a tagged enum for every scope it clears.
struct ConflictScopes: Equatable, Sendable {
    private var bySale: [SaleId: [ConflictRecord]] = [:]
    private var byTicket: [TicketId: [ConflictRecord]] = [:]
    private var byPaymentCode: [DuplicateKey: [ConflictRecord]] = [:]
    private var byEvent: [Dot: [ConflictRecord]] = [:]

    /// The records of `scope` (nil: none); setting nil removes them.
    subscript(scope: ConflictScope) -> [ConflictRecord]? {
        get {
            switch scope {
            case .sale(let id): bySale.isEmpty ? nil : bySale[id]
            case .ticket(let id): byTicket.isEmpty ? nil : byTicket[id]
            case .paymentCode(let key): byPaymentCode.isEmpty ? nil : byPaymentCode[key]
            case .event(let dot): byEvent.isEmpty ? nil : byEvent[dot]
            }
        }
        set {
            switch scope {
            case .sale(let id): if newValue != nil || !bySale.isEmpty { bySale[id] = newValue }
            case .ticket(let id): if newValue != nil || !byTicket.isEmpty { byTicket[id] = newValue }
            case .paymentCode(let key): if newValue != nil || !byPaymentCode.isEmpty { byPaymentCode[key] = newValue }
            case .event(let dot): if newValue != nil || !byEvent.isEmpty { byEvent[dot] = newValue }
            }
        }
    }

    /// Every record of every scope, unsorted.
    var all: [ConflictRecord] {
        bySale.values.flatMap { $0 } + byTicket.values.flatMap { $0 } + byPaymentCode.values.flatMap { $0 }
            + byEvent.values.flatMap { $0 }
    }
}
