// The merge rules of DOMAIN.md "Merging — the rules", as pure functions of an
// entity's events and the causal relation. sync-protocol.md "Clocks and rules"
// documents them with one worked example each.
//
// Causality (sync-protocol.md "Causality used by the fold"): f follows e
// exactly when f.context covers e.dot (`Event.follows`). HLC values never
// decide what follows what; (HLC, dot) only orders concurrent events. Forged
// or corrupted contexts can name each other (a cycle), so each entity's events
// are first put in one deterministic causal order (`causalOrder`: the root,
// then Kahn's topological sort placing the smallest ready event by (HLC, dot),
// or the smallest remaining one when none is ready). e precedes f when f
// follows e AND e is placed before f: on honest input (no cycle) exactly
// "f follows e"; on every input acyclic, so the fold is a deterministic
// function of the event set.

/// Orders events by (HLC, dot): the order among concurrent events, where a
/// rule needs one (over-refund, duplicate payment code, breaking a forged cycle).
@inline(__always)
func hlcDotOrder(_ a: Event, _ b: Event) -> Bool {
    a.hlc != b.hlc ? a.hlc < b.hlc : a.dot < b.dot
}

/// An entity's non-root events in causal order: Kahn's algorithm on the
/// "f follows e" graph that always places the smallest by (HLC, dot) of the
/// ready events (every event of `events` they follow is placed); when none is
/// ready (a cycle, only with forged input), the smallest remaining by
/// (HLC, dot), what it follows among the unplaced events then ignored. The
/// result depends on the set only, not on the order of `events`, as long as
/// their dots are distinct (the fold keeps one event per dot). The root is not
/// in `events`: it is always first.
func causalOrder(_ events: [Event]) -> [Event] {
    if events.count < 2 { return events }
    var remaining = events.sorted(by: hlcDotOrder)
    let n = remaining.count
    // Honest histories are usually in causal order by (HLC, dot) already: when
    // no event follows a later one, Kahn's algorithm would place them as sorted.
    var sortedIsCausal = true
    search: for i in 0..<n - 1 {
        for j in (i + 1)..<n where remaining[i].follows(remaining[j]) {
            sortedIsCausal = false
            break search
        }
    }
    if sortedIsCausal { return remaining }
    // waiting[i]: events not yet placed that remaining[i] follows.
    var waiting = [Int](repeating: 0, count: n)
    for i in 0..<n {
        for j in 0..<n where remaining[i].follows(remaining[j]) { waiting[i] += 1 }
    }
    var order: [Event] = []
    order.reserveCapacity(n)
    while !remaining.isEmpty {
        let next = waiting.firstIndex(of: 0) ?? 0
        let e = remaining.remove(at: next)
        waiting.remove(at: next)
        order.append(e)
        for i in 0..<remaining.count where remaining[i].follows(e) { waiting[i] -= 1 }
    }
    return order
}

/// The kinds present among some events, as a bit set (no allocation, no hashing);
/// every `EventKind` raw value is below 32.
struct EventKinds {
    private var bits: UInt32 = 0

    init(_ events: [Event]) {
        for e in events { if let k = e.body.kind { bits |= 1 << UInt32(k.rawValue) } }
    }

    func contains(_ kind: EventKind) -> Bool { bits & 1 << UInt32(kind.rawValue) != 0 }
}

/// Result of running one entity's status events through its state machine.
struct MachineResult<Status: Equatable> {
    var status: Status
    /// Valid events that precede no other valid event, sorted by dot.
    var frontier: [Event]
    var conflicts: [ConflictRecord]
    /// For the event `runMachine` was asked to probe (the writer's admission
    /// check): the status of its causal past (nil: the past lacks the root)
    /// and whether it was accepted. nil when there was no probe.
    var probe: (past: Status?, accepted: Bool)?
}

/// The generic causal state machine shared by sales and tickets.
///
/// Events are visited in `causalOrder`, after the root. Each event's causal
/// past is the set of already-valid events it follows (always including the
/// root, or the event is invalid); the status of that past is
/// `resolve(frontier(past))`; the event is valid when `transition(status,
/// event)` accepts it. The final status is `resolve` of the frontier of all
/// valid events. Every valid event was visited before any event that comes
/// later in causal order, so "already valid and followed" is exactly
/// "valid and precedes".
func runMachine<Status: Equatable>(
    root: Event, events: [Event], probe: Dot? = nil,
    resolve: ([Event]) -> (status: Status, rule: String?),
    transition: (Status?, Event) -> (next: Status?, invalidKind: ConflictRecord.Kind)
) -> MachineResult<Status> {
    if events.count < 2 {
        return runMachine(root: root, event: events.first, probe: probe, resolve: resolve, transition: transition)
    }
    // Both lists stay in causal order, which `frontier(ofOrdered:)` needs.
    var valid: [Event] = [root]
    var past: [Event] = []
    var conflicts: [ConflictRecord] = []
    var probed: (past: Status?, accepted: Bool)?
    for e in causalOrder(events) {
        var pastStatus: Status?
        if e.follows(root) {
            past.removeAll(keepingCapacity: true)
            for v in valid where e.follows(v) { past.append(v) }
            pastStatus = resolve(frontier(ofOrdered: past)).status
        }
        let (next, invalidKind) = transition(pastStatus, e)
        if next == nil {
            conflicts.append(invalidRecord(invalidKind, e, past: pastStatus))
        } else {
            valid.append(e)
        }
        if e.dot == probe { probed = (pastStatus, next != nil) }
    }
    let front = frontier(ofOrdered: valid)
    let (status, rule) = resolve(front)
    if front.count > 1, let rule { conflicts.append(concurrentRecord(root, front, rule: rule, status)) }
    return MachineResult(status: status, frontier: front, conflicts: conflicts, probe: probed)
}

/// `runMachine` for an entity with at most one event besides its root (most sales
/// and tickets): the same walk written out for one event, without the lists.
/// With one event `e`: its past is the root when `e` follows it, else empty; the
/// frontier of the valid events is the root alone (`e` invalid), `e` alone (it
/// follows the root), or both, by dot.
private func runMachine<Status: Equatable>(
    root: Event, event: Event?, probe: Dot?,
    resolve: ([Event]) -> (status: Status, rule: String?),
    transition: (Status?, Event) -> (next: Status?, invalidKind: ConflictRecord.Kind)
) -> MachineResult<Status> {
    guard let e = event else {
        return MachineResult(status: resolve([root]).status, frontier: [root], conflicts: [], probe: nil)
    }
    var conflicts: [ConflictRecord] = []
    let followsRoot = e.follows(root)
    let pastStatus = followsRoot ? resolve([root]).status : nil
    let (next, invalidKind) = transition(pastStatus, e)
    let front: [Event]
    if next == nil {
        conflicts.append(invalidRecord(invalidKind, e, past: pastStatus))
        front = [root]
    } else if followsRoot {
        front = [e]
    } else {
        front = e.dot < root.dot ? [e, root] : [root, e]
    }
    let (status, rule) = resolve(front)
    if front.count > 1, let rule { conflicts.append(concurrentRecord(root, front, rule: rule, status)) }
    let probed: (past: Status?, accepted: Bool)? = e.dot == probe ? (pastStatus, next != nil) : nil
    return MachineResult(status: status, frontier: front, conflicts: conflicts, probe: probed)
}

/// The record of an event the machine refused: not a transition from its past's status.
private func invalidRecord<Status>(_ kind: ConflictRecord.Kind, _ e: Event, past: Status?) -> ConflictRecord {
    ConflictRecord(kind, rule: kind == .invalidTransition ? "transition" : "completion-needs-confirmed-sale",
                   events: [e.dot], outcome: "ignored \(e.body.kind!) on \(past.map { "\($0)" } ?? "no known request")")
}

/// The record of a frontier of several events, decided by precedence `rule`.
private func concurrentRecord<Status>(_ root: Event, _ front: [Event], rule: String, _ status: Status) -> ConflictRecord {
    let kind: ConflictRecord.Kind = root.body.kind == .saleCaptured ? .concurrentSaleOutcome : .concurrentDecision
    return ConflictRecord(kind, rule: rule, events: front.map(\.dot), outcome: "\(status)")
}

/// Events of `list` that no later event of `list` follows, sorted by dot.
/// `list` is in causal order, so an event can only be followed by a later
/// one: an earlier event that covers it does not precede it (a broken cycle).
func frontier(ofOrdered list: [Event]) -> [Event] {
    if list.count < 2 { return list }
    var front: [Event] = []
    outer: for i in 0..<list.count {
        for j in (i + 1)..<list.count where list[j].follows(list[i]) { continue outer }
        front.append(list[i])
    }
    return front.count > 1 ? front.sorted { $0.dot < $1.dot } : front
}

// MARK: - Ticket rules

enum TicketRules {
    /// The precedence table for a ticket's frontier, first match wins.
    static func resolve(_ front: [Event]) -> (status: TicketStatus, rule: String?) {
        if front.count == 1 { return (status(of: front[0]), nil) }
        let kinds = EventKinds(front)
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
    static func own(request: Event, events: [Event], saleConfirmed: Bool,
                    probe: Dot? = nil) -> MachineResult<TicketStatus> {
        runMachine(root: request, events: events, probe: probe, resolve: resolve) { past, e in
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
        let kinds = EventKinds(front)
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

    static func own(capture: Event, outcomes: [Event], probe: Dot? = nil) -> MachineResult<SaleStatus> {
        runMachine(root: capture, events: outcomes, probe: probe, resolve: resolve) { past, e in
            (past == .captured ? status(of: e) : nil, .invalidTransition)
        }
    }
}
