// The merge rules of DOMAIN.md "Merging — the rules", as pure functions of an
// entity's events and the causal relation. sync-protocol.md "Clocks and rules"
// documents them with one worked example each.
//
// Causality: e precedes f when f.context covers e.dot AND (e.hlc, e.dot) <
// (f.hlc, f.dot). Honest writers always satisfy the second condition (HLC
// respects causality); requiring it makes the relation acyclic even on
// forged or corrupted input, so the fold is defined on every event set.

/// Orders events by (HLC, dot): a linear extension of causality.
@inline(__always)
func hlcDotOrder(_ a: Event, _ b: Event) -> Bool {
    a.hlc != b.hlc ? a.hlc < b.hlc : a.dot < b.dot
}

@inline(__always)
func precedes(_ e: Event, _ f: Event) -> Bool {
    f.context.covers(e.dot) && hlcDotOrder(e, f)
}

/// Result of running one entity's status events through its state machine.
struct MachineResult<Status: Equatable> {
    var status: Status
    /// Valid events no other valid event follows.
    var frontier: [Event]
    var conflicts: [ConflictRecord]
}

/// The generic causal state machine shared by sales and tickets.
///
/// Events are visited in (HLC, dot) order. Each event's causal past is the
/// set of already-valid events it follows (always including the root, or the
/// event is invalid); the status of that past is `resolve(frontier(past))`;
/// the event is valid when `transition(status, event)` accepts it. The final
/// status is `resolve` of the frontier of all valid events.
func runMachine<Status: Equatable>(
    root: Event, events: [Event],
    resolve: ([Event]) -> (status: Status, rule: String?),
    transition: (Status?, Event) -> (next: Status?, invalidKind: ConflictRecord.Kind)
) -> MachineResult<Status> {
    var valid: [Event] = [root]
    var conflicts: [ConflictRecord] = []
    let ordered = events.sorted(by: hlcDotOrder)
    for e in ordered {
        let past = valid.filter { precedes($0, e) }
        var pastStatus: Status?
        if past.contains(where: { $0.dot == root.dot }) {
            pastStatus = resolve(frontier(of: past)).status
        }
        let (next, invalidKind) = transition(pastStatus, e)
        if next == nil {
            conflicts.append(ConflictRecord(
                invalidKind, rule: invalidKind == .invalidTransition ? "transition" : "completion-needs-confirmed-sale",
                events: [e.dot],
                outcome: "ignored \(e.body.kind!) on \(pastStatus.map { "\($0)" } ?? "no known request")"))
        } else {
            valid.append(e)
        }
    }
    let front = frontier(of: valid)
    let (status, rule) = resolve(front)
    if front.count > 1, let rule {
        let kind: ConflictRecord.Kind = root.body.kind == .saleCaptured ? .concurrentSaleOutcome : .concurrentDecision
        conflicts.append(ConflictRecord(kind, rule: rule, events: front.map(\.dot), outcome: "\(status)"))
    }
    return MachineResult(status: status, frontier: front, conflicts: conflicts)
}

/// Events of `set` that no other event of `set` follows, sorted by dot.
func frontier(of set: [Event]) -> [Event] {
    set.filter { e in !set.contains { other in other.dot != e.dot && precedes(e, other) } }
        .sorted { $0.dot < $1.dot }
}

// MARK: - Ticket rules

enum TicketRules {
    /// The precedence table for a ticket's frontier, first match wins.
    static func resolve(_ front: [Event]) -> (status: TicketStatus, rule: String?) {
        if front.count == 1 { return (status(of: front[0]), nil) }
        let kinds = Set(front.compactMap(\.body.kind))
        if kinds.contains(.refundCompleted) { return (.completed, "precedence-1-completed") }
        if kinds.contains(.refundCancelled) { return (.cancelled, "precedence-2-cancelled") }
        if kinds.contains(.refundApproved) && (kinds.contains(.refundRejected) || kinds.contains(.refundEscalated)) {
            return (.held(.dispute), "precedence-3-dispute")
        }
        if kinds.contains(.refundEscalated) { return (.escalated, "precedence-4-escalated") }
        if kinds.contains(.refundRejected) { return (.rejected, "precedence-5-rejected") }
        if kinds.contains(.refundApproved) { return (.approved, "precedence-6-approved") }
        return (.requested, "precedence-6-requested")
    }

    static func status(of e: Event) -> TicketStatus {
        switch e.body.kind {
        case .refundApproved?: .approved
        case .refundRejected?: .rejected
        case .refundCancelled?: .cancelled
        case .refundCompleted?: .completed
        case .refundEscalated?: .escalated
        default: .requested
        }
    }

    /// A ticket's own status from its events; `saleConfirmed` is whether its
    /// sale is the standing, confirmed capture (completion needs it).
    static func own(request: Event, events: [Event], saleConfirmed: Bool) -> MachineResult<TicketStatus> {
        runMachine(root: request, events: events, resolve: resolve) { past, e in
            let next = TicketStatus.after(e.body.kind!, from: past)
            if next == .completed && !saleConfirmed { return (nil, .completionOnUnconfirmedSale) }
            return (next, .invalidTransition)
        }
    }
}

// MARK: - Sale rules

/// A sale's status as the fold shows it.
public enum SaleStatus: String, Hashable, Sendable, CustomStringConvertible {
    /// Outcome events known but not the capture itself.
    case awaitingCapture = "awaiting-capture"
    case captured, confirmed, declined, expired
    /// Another capture of the same payment code stands: never forwarded, never paid.
    case voidDuplicate = "void-duplicate"
    public var description: String { rawValue }
}

enum SaleRules {
    /// Concurrent outcomes (central wrote both without seeing the other):
    /// confirmed beats declined beats expired — money may have moved.
    static func resolve(_ front: [Event]) -> (status: SaleStatus, rule: String?) {
        if front.count == 1 { return (status(of: front[0]), nil) }
        let kinds = Set(front.compactMap(\.body.kind))
        if kinds.contains(.saleConfirmed) { return (.confirmed, "sale-precedence-1-confirmed") }
        if kinds.contains(.saleDeclined) { return (.declined, "sale-precedence-2-declined") }
        return (.expired, "sale-precedence-3-expired")
    }

    static func status(of e: Event) -> SaleStatus {
        switch e.body.kind {
        case .saleConfirmed?: .confirmed
        case .saleDeclined?: .declined
        case .saleExpired?: .expired
        default: .captured
        }
    }

    static func own(capture: Event, outcomes: [Event]) -> MachineResult<SaleStatus> {
        runMachine(root: capture, events: outcomes, resolve: resolve) { past, e in
            (past == .captured ? status(of: e) : nil, .invalidTransition)
        }
    }
}
