// The straightforward fold, kept as the reference the fast fold is judged
// against (issue 19: "the fast paths and the straightforward fold agree").
// A copy of LedgerState's fold as it stood before it was made fast (Fold.swift,
// FoldRecompute.swift, the per-entity rules of Rules.swift and the rendering of
// LedgerRendering.swift at main 35e8232), renamed so nothing here calls the fast
// code: only the value types (Event, views, ConflictRecord) are shared. Used by
// tests only; do not optimise it.

@testable import PosLedger

struct RefSaleGroup: Hashable, Sendable {
    var capture: Event?
    var outcomes: [Event] = []
    var tickets: [TicketId] = []
    // Derived, recomputed with the group.
    var ownStatus: SaleStatus = .awaitingCapture
    var voided = false
}

struct RefTicketGroup: Hashable, Sendable {
    var request: Event?
    var statusEvents: [Event] = []
    var notes: [Dot: NoteText] = [:]
}

struct ReferenceLedgerState: Equatable, Sendable {
    var saleGroups: [SaleId: RefSaleGroup] = [:]
    var ticketGroups: [TicketId: RefTicketGroup] = [:]
    var capturesByKey: [DuplicateKey: [SaleId]] = [:]
    /// Events of record types this version does not know, kept for relaying.
    private(set) var unknownEvents: [Dot: Event] = [:]
    /// Events refused by the authority rule, kept as evidence.
    var unauthorized: [Dot: Event] = [:]

    internal(set) var sales: [SaleId: SaleView] = [:]
    internal(set) var tickets: [TicketId: TicketView] = [:]
    var conflictsByScope: [ConflictScope: [ConflictRecord]] = [:]

    init() {}

    /// Folds a set of events (duplicates allowed, any order).
    static func fold<S: Sequence>(_ events: S) -> ReferenceLedgerState where S.Element == Event {
        var state = ReferenceLedgerState()
        state.apply(events)
        return state
    }

    /// All conflict records, sorted.
    var conflicts: [ConflictRecord] { conflictsByScope.values.flatMap { $0 }.sorted() }

    /// Tickets with events but no known request (it has not arrived yet).
    var ticketsAwaitingRequest: [TicketId] {
        ticketGroups.filter { $0.value.request == nil }.keys.sorted()
    }

    // MARK: - Applying events

    /// Adds events and recomputes every entity they touch.
    mutating func apply<S: Sequence>(_ events: S) where S.Element == Event {
        var dirtySales = Set<SaleId>()
        var dirtyOrphanTickets = Set<TicketId>()
        for e in events { ingest(e, &dirtySales, &dirtyOrphanTickets) }
        recompute(dirtySales: dirtySales)
        for t in dirtyOrphanTickets where ticketGroups[t]?.request == nil {
            tickets[t] = nil
            conflictsByScope[.ticket(t)] = nil
        }
    }

    mutating func apply(_ event: Event) { apply(CollectionOfOne(event)) }

    private mutating func ingest(_ e: Event, _ dirtySales: inout Set<SaleId>, _ orphans: inout Set<TicketId>) {
        guard let kind = e.body.kind else {
            insertKeyed(\.unknownEvents, e)
            return
        }
        guard kind.mayBeWritten(by: e.dot.replica) else {
            insertKeyed(\.unauthorized, e)
            addConflict(.event(e.dot), ConflictRecord(.unauthorizedWriter, rule: "authority", events: [e.dot],
                                                      outcome: "ignored \(kind) written by \(e.dot.replica)"))
            return
        }
        switch e.body {
        case .sequenceVoid:
            return  // a number lost at its terminal: it keeps the number used, and holds nothing to fold
        case .saleCaptured:
            let id = SaleId(e.dot)
            let previous = saleGroups[id]?.capture
            guard let kept = keep(previous, e) else { return }
            saleGroups[id, default: RefSaleGroup()].capture = kept
            if case .saleCaptured(let old)? = previous?.body {
                // The replaced capture's code group must decide again without it.
                removeFromKeyList(old.duplicateKey, id)
                dirtySales.formUnion(capturesByKey[old.duplicateKey] ?? [])
            }
            if case .saleCaptured(let capture) = kept.body {
                var list = capturesByKey[capture.duplicateKey] ?? []
                refInsertSorted(&list, id)
                capturesByKey[capture.duplicateKey] = list
            }
            dirtySales.insert(id)
        case .saleConfirmed(let id), .saleDeclined(let id), .saleExpired(let id):
            // Mutated in place (no copy of the group's arrays per event).
            let result = ReferenceLedgerState.insertEvent(&saleGroups[id, default: RefSaleGroup()].outcomes, e)
            if case .replaced(let existing) = result { recordDotReuse(existing, e) }
            if result != .duplicate { dirtySales.insert(id) }
        case .refundRequested:
            let id = TicketId(e.dot)
            let previous = ticketGroups[id]?.request
            guard let kept = keep(previous, e) else { return }
            ticketGroups[id, default: RefTicketGroup()].request = kept
            // Only the sale named by the request kept (after a dot reuse) owns the ticket.
            if case .refundRequested(let old)? = previous?.body, var sale = saleGroups[old.sale] {
                sale.tickets.removeAll { $0 == id }
                saleGroups[old.sale] = sale.isEmpty ? nil : sale
                dirtySales.insert(old.sale)
            }
            guard case .refundRequested(let request) = kept.body else { return }
            refInsertSorted(&saleGroups[request.sale, default: RefSaleGroup()].tickets, id)
            dirtySales.insert(request.sale)
        case .noteAdded(let id, let note):
            if let existing = ticketGroups[id]?.notes[e.dot] {
                guard existing != note else { return }
                // Same dot, different note: keep the smaller text, deterministically.
                if note.text.utf8.lexicographicallyPrecedes(existing.text.utf8) { ticketGroups[id]!.notes[e.dot] = note }
                addConflict(.event(e.dot), ConflictRecord(.dotReused, rule: "smaller-encoding", events: [e.dot],
                                                          outcome: "kept the note with the smaller text"))
            } else {
                ticketGroups[id, default: RefTicketGroup()].notes[e.dot] = note
            }
            markTicket(id, &dirtySales, &orphans)
        case .refundApproved(let id, _), .refundRejected(let id), .refundCancelled(let id),
             .refundCompleted(let id), .refundEscalated(let id):
            let result = ReferenceLedgerState.insertEvent(&ticketGroups[id, default: RefTicketGroup()].statusEvents, e)
            if case .replaced(let existing) = result { recordDotReuse(existing, e) }
            if result != .duplicate { markTicket(id, &dirtySales, &orphans) }
        case .unknown:
            return
        }
    }

    private func markTicket(_ id: TicketId, _ dirtySales: inout Set<SaleId>, _ orphans: inout Set<TicketId>) {
        if case .refundRequested(let r)? = ticketGroups[id]?.request?.body {
            dirtySales.insert(r.sale)
        } else {
            orphans.insert(id)
        }
    }

    enum Insertion: Equatable {
        case inserted, duplicate
        case replaced(Event)
    }

    /// Inserts into a dot-sorted list. A different event with the same dot is
    /// replaced by the one with the smaller encoding (the caller records it).
    private static func insertEvent(_ list: inout [Event], _ e: Event) -> Insertion {
        var low = 0, high = list.count
        while low < high {
            let mid = (low + high) / 2
            if list[mid].dot < e.dot { low = mid + 1 } else { high = mid }
        }
        if low < list.count && list[low].dot == e.dot {
            if list[low] == e { return .duplicate }
            let existing = list[low]
            list[low] = refSmallerEncoding(existing, e)
            return .replaced(existing)
        }
        list.insert(e, at: low)
        return .inserted
    }

    private mutating func insertKeyed(_ map: WritableKeyPath<ReferenceLedgerState, [Dot: Event]>, _ e: Event) {
        if let kept = keep(self[keyPath: map][e.dot], e) { self[keyPath: map][e.dot] = kept }
    }

    /// The event to hold under `e`'s dot when `existing` is held there: `e` when
    /// nothing is; nil when `existing` is `e` (a duplicate: nothing changes);
    /// otherwise the one with the smaller encoding, recorded as a dot reuse.
    private mutating func keep(_ existing: Event?, _ e: Event) -> Event? {
        guard let existing else { return e }
        guard existing != e else { return nil }
        recordDotReuse(existing, e)
        return refSmallerEncoding(existing, e)
    }

    private mutating func recordDotReuse(_ a: Event, _ b: Event) {
        addConflict(.event(a.dot), ConflictRecord(.dotReused, rule: "smaller-encoding", events: [a.dot],
                                                  outcome: "kept the event with the smaller encoding"))
    }

    /// Adds a record to a scope that is not recomputed (event-level facts), as a sorted set.
    private mutating func addConflict(_ scope: ConflictScope, _ record: ConflictRecord) {
        var list = conflictsByScope[scope] ?? []
        guard !list.contains(record) else { return }
        list.append(record)
        conflictsByScope[scope] = list.sorted()
    }

    private mutating func removeFromKeyList(_ key: DuplicateKey, _ id: SaleId) {
        guard var list = capturesByKey[key] else { return }
        list.removeAll { $0 == id }
        capturesByKey[key] = list.isEmpty ? nil : list
        if list.isEmpty { conflictsByScope[.paymentCode(key)] = nil }
    }
}

extension RefSaleGroup {
    var isEmpty: Bool { capture == nil && outcomes.isEmpty && tickets.isEmpty }
}

/// Of two different events with the same dot, the one whose encoding sorts first.
func refSmallerEncoding(_ a: Event, _ b: Event) -> Event {
    RecordCodec.encode(a).lexicographicallyPrecedes(RecordCodec.encode(b)) ? a : b
}

func refInsertSorted<T: Comparable>(_ list: inout [T], _ value: T) {
    var low = 0, high = list.count
    while low < high {
        let mid = (low + high) / 2
        if list[mid] < value { low = mid + 1 } else { high = mid }
    }
    if low < list.count && list[low] == value { return }
    list.insert(value, at: low)
}

// MARK: - Looking up the events behind a view (read-only)

extension ReferenceLedgerState {
    /// The capture event of a sale, when known (its HLC is the capture time;
    /// at central and at the capturing terminal it holds the payment code).
    func capture(of sale: SaleId) -> Event? { saleGroups[sale]?.capture }

    /// The sales whose captures share the duplicate key `key` (the key group), sorted.
    func captures(withKey key: DuplicateKey) -> [SaleId] { capturesByKey[key] ?? [] }

    /// The conflict records about one sale, sorted: its own, its tickets' and its payment code's.
    func conflicts(of sale: SaleId) -> [ConflictRecord] {
        var scopes: [ConflictScope] = [.sale(sale)] + (saleGroups[sale]?.tickets ?? []).map { .ticket($0) }
        if case .saleCaptured(let c)? = saleGroups[sale]?.capture?.body { scopes.append(.paymentCode(c.duplicateKey)) }
        return scopes.flatMap { conflictsByScope[$0] ?? [] }.sorted()
    }

    /// The outcome events of a sale (confirmed, declined, expired), sorted by dot.
    func outcomes(of sale: SaleId) -> [Event] { saleGroups[sale]?.outcomes ?? [] }

    /// The status events of a ticket (decisions, cancellation, escalation, completion), as known,
    /// valid or not, sorted by dot.
    func statusEvents(of ticket: TicketId) -> [Event] { ticketGroups[ticket]?.statusEvents ?? [] }

    /// The request event that opened a ticket, when known.
    func request(of ticket: TicketId) -> Event? { ticketGroups[ticket]?.request }

    /// The notes of a ticket, sorted by the dot of the event that added them.
    func notes(of ticket: TicketId) -> [(dot: Dot, note: NoteText)] {
        (ticketGroups[ticket]?.notes ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

extension ReferenceLedgerState {
    /// Dots of every event known about a sale (capture and outcomes), sorted.
    func eventDots(of sale: SaleId) -> [Dot] {
        guard let g = saleGroups[sale] else { return [] }
        return ((g.capture.map { [$0.dot] } ?? []) + g.outcomes.map(\.dot)).sorted()
    }

    /// Dots of every event known about a ticket (request, status events, notes), sorted.
    func eventDots(of ticket: TicketId) -> [Dot] {
        guard let g = ticketGroups[ticket] else { return [] }
        return ((g.request.map { [$0.dot] } ?? []) + g.statusEvents.map(\.dot) + Array(g.notes.keys)).sorted()
    }
}

extension ReferenceLedgerState {
    mutating func recompute(dirtySales: Set<SaleId>) {
        // Captures sharing a payment code decide together.
        var sales = dirtySales
        var keys = Set<DuplicateKey>()
        for id in dirtySales {
            if case .saleCaptured(let c)? = saleGroups[id]?.capture?.body { keys.insert(c.duplicateKey) }
        }
        for key in keys { sales.formUnion(capturesByKey[key] ?? []) }

        var ownConflicts: [SaleId: [ConflictRecord]] = [:]
        for id in sales {
            guard var group = saleGroups[id] else { continue }
            if let capture = group.capture {
                let m = RefSaleRules.own(capture: capture, outcomes: group.outcomes)
                group.ownStatus = m.status
                ownConflicts[id] = m.conflicts
            } else {
                group.ownStatus = .awaitingCapture  // outcomes wait for their capture
            }
            group.voided = false
            saleGroups[id] = group
        }
        for key in keys { applyDuplicateRule(key) }
        for id in sales { recomputeSale(id, ownConflicts: ownConflicts[id] ?? []) }
    }

    /// Duplicate payment code: a confirmed capture stands; if none is
    /// confirmed, the earliest by (HLC, dot); every other is void-duplicate.
    private mutating func applyDuplicateRule(_ key: DuplicateKey) {
        let ids = capturesByKey[key] ?? []
        guard ids.count > 1 else {
            conflictsByScope[.paymentCode(key)] = nil
            return
        }
        let captures = ids.compactMap { saleGroups[$0]?.capture }
        let confirmed = captures.filter { saleGroups[SaleId($0.dot)]?.ownStatus == .confirmed }
        let pool = confirmed.isEmpty ? captures : confirmed
        let standing = pool.min(by: refHlcDotOrder)!
        for id in ids where id.dot != standing.dot { saleGroups[id]?.voided = true }
        let rule = confirmed.isEmpty ? "earliest-capture-stands" : "confirmed-capture-stands"
        conflictsByScope[.paymentCode(key)] = [ConflictRecord(
            .duplicatePaymentCode, rule: rule, events: ids.map(\.dot),
            outcome: "sale \(standing.dot) stands; \(ids.filter { $0.dot != standing.dot }.map { "\($0.dot)" }.joined(separator: ",")) void-duplicate")]
    }

    private mutating func recomputeSale(_ id: SaleId, ownConflicts: [ConflictRecord]) {
        guard let group = saleGroups[id] else {
            sales[id] = nil
            conflictsByScope[.sale(id)] = nil
            return
        }
        var records = ownConflicts
        var capture: SaleCapture?
        if case .saleCaptured(let c)? = group.capture?.body { capture = c }
        let status: SaleStatus = capture == nil ? .awaitingCapture : group.voided ? .voidDuplicate : group.ownStatus
        let confirmed = status == .confirmed

        struct Entry {
            let id: TicketId
            let request: RefundRequest
            let event: Event
            let own: TicketStatus
            var shown: TicketStatus
            let notes: Int
        }
        var entries: [Entry] = []
        for t in group.tickets {
            guard let tg = ticketGroups[t], let req = tg.request, case .refundRequested(let r) = req.body,
                  r.sale == id else { continue }
            let m = RefTicketRules.own(request: req, events: tg.statusEvents, saleConfirmed: confirmed)
            conflictsByScope[.ticket(t)] = m.conflicts.isEmpty ? nil : m.conflicts.sorted()
            entries.append(Entry(id: t, request: r, event: req, own: m.status, shown: m.status, notes: tg.notes.count))
        }

        var refunded: Int64 = 0
        switch status {
        case .awaitingCapture:
            for i in entries.indices { entries[i].shown = .pendingSale }
        case .declined, .expired, .voidDuplicate:
            for i in entries.indices where ![.cancelled, .rejected, .completed].contains(entries[i].own) {
                entries[i].shown = .held(.saleNotPaid)
                records.append(ConflictRecord(
                    .saleNotPaid, rule: "refund-on-unpaid-sale", events: [entries[i].id.dot, id.dot],
                    outcome: "ticket \(entries[i].id.dot) held(sale-not-paid): sale is \(status)"))
            }
        case .captured, .confirmed:
            let saleAmount = capture!.amount
            // Refund tickets that still claim money: completed first, then by (request HLC, dot).
            let order = entries.indices.filter {
                entries[$0].request.resolution == .refund && ![.cancelled, .rejected].contains(entries[$0].own)
            }.sorted { a, b in
                let ca = entries[a].own == .completed, cb = entries[b].own == .completed
                if ca != cb { return ca }
                return refHlcDotOrder(entries[a].event, entries[b].event)
            }
            var total: Int64 = 0
            var counted: [Dot] = []
            for i in order {
                let amount = entries[i].request.amount
                let fits = amount.currency == saleAmount.currency && total + amount.minorUnits <= saleAmount.minorUnits
                if fits {
                    total += amount.minorUnits
                    counted.append(entries[i].id.dot)
                    if entries[i].own == .completed { refunded += amount.minorUnits }
                } else {
                    if entries[i].own != .held(.dispute) { entries[i].shown = .held(.overRefund) }
                    records.append(ConflictRecord(
                        .overRefund, rule: "over-refund-order", events: [entries[i].id.dot] + counted,
                        outcome: "ticket \(entries[i].id.dot) \(entries[i].shown) not counted: \(total) + "
                            + "\(amount.minorUnits) \(amount.currency) > sale \(saleAmount.minorUnits) \(saleAmount.currency)"))
                }
            }
        }

        for e in entries {
            tickets[e.id] = TicketView(id: e.id, sale: id, status: e.shown, ownStatus: e.own, amount: e.request.amount,
                                       resolution: e.request.resolution, reason: e.request.reason,
                                       requestHLC: e.event.hlc, noteCount: e.notes)
        }
        sales[id] = SaleView(id: id, status: status, amount: capture?.amount, wallet: capture?.wallet,
                             duplicateKey: capture?.duplicateKey, tickets: entries.map(\.id),
                             refundedMinor: refunded)
        conflictsByScope[.sale(id)] = records.isEmpty ? nil : records.sorted()
    }
}

/// Orders events by (HLC, dot): the order among concurrent events, where a
/// rule needs one (over-refund, duplicate payment code, breaking a forged cycle).
func refHlcDotOrder(_ a: Event, _ b: Event) -> Bool {
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
func refCausalOrder(_ events: [Event]) -> [Event] {
    if events.count < 2 { return events }
    var remaining = events.sorted(by: refHlcDotOrder)
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

/// Result of running one entity's status events through its state machine.
struct RefMachineResult<Status: Equatable> {
    var status: Status
    /// Valid events that precede no other valid event, sorted by dot.
    var frontier: [Event]
    var conflicts: [ConflictRecord]
    /// For the event `refRunMachine` was asked to probe (the writer's admission
    /// check): the status of its causal past (nil: the past lacks the root)
    /// and whether it was accepted. nil when there was no probe.
    var probe: (past: Status?, accepted: Bool)?
}

/// The generic causal state machine shared by sales and tickets.
///
/// Events are visited in `refCausalOrder`, after the root. Each event's causal
/// past is the set of already-valid events it follows (always including the
/// root, or the event is invalid); the status of that past is
/// `resolve(frontier(past))`; the event is valid when `transition(status,
/// event)` accepts it. The final status is `resolve` of the frontier of all
/// valid events. Every valid event was visited before any event that comes
/// later in causal order, so "already valid and followed" is exactly
/// "valid and precedes".
func refRunMachine<Status: Equatable>(
    root: Event, events: [Event], probe: Dot? = nil,
    resolve: ([Event]) -> (status: Status, rule: String?),
    transition: (Status?, Event) -> (next: Status?, invalidKind: ConflictRecord.Kind)
) -> RefMachineResult<Status> {
    // Both lists stay in causal order, which `refFrontier(ofOrdered:)` needs.
    var valid: [Event] = [root]
    var past: [Event] = []
    var conflicts: [ConflictRecord] = []
    var probed: (past: Status?, accepted: Bool)?
    for e in refCausalOrder(events) {
        var pastStatus: Status?
        if e.follows(root) {
            past.removeAll(keepingCapacity: true)
            for v in valid where e.follows(v) { past.append(v) }
            pastStatus = resolve(refFrontier(ofOrdered: past)).status
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
        if e.dot == probe { probed = (pastStatus, next != nil) }
    }
    let front = refFrontier(ofOrdered: valid)
    let (status, rule) = resolve(front)
    if front.count > 1, let rule {
        let kind: ConflictRecord.Kind = root.body.kind == .saleCaptured ? .concurrentSaleOutcome : .concurrentDecision
        conflicts.append(ConflictRecord(kind, rule: rule, events: front.map(\.dot), outcome: "\(status)"))
    }
    return RefMachineResult(status: status, frontier: front, conflicts: conflicts, probe: probed)
}

/// Events of `list` that no later event of `list` follows, sorted by dot.
/// `list` is in causal order, so an event can only be followed by a later
/// one: an earlier event that covers it does not precede it (a broken cycle).
func refFrontier(ofOrdered list: [Event]) -> [Event] {
    var front: [Event] = []
    outer: for i in 0..<list.count {
        for j in (i + 1)..<list.count where list[j].follows(list[i]) { continue outer }
        front.append(list[i])
    }
    return front.count > 1 ? front.sorted { $0.dot < $1.dot } : front
}

// MARK: - Ticket rules

enum RefTicketRules {
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
    static func own(request: Event, events: [Event], saleConfirmed: Bool,
                    probe: Dot? = nil) -> RefMachineResult<TicketStatus> {
        refRunMachine(root: request, events: events, probe: probe, resolve: resolve) { past, e in
            let next = TicketStatus.after(e.body.kind!, from: past)
            if next == .completed && !saleConfirmed { return (nil, .completionOnUnconfirmedSale) }
            return (next, .invalidTransition)
        }
    }
}

// MARK: - Sale rules

enum RefSaleRules {
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

    static func own(capture: Event, outcomes: [Event], probe: Dot? = nil) -> RefMachineResult<SaleStatus> {
        refRunMachine(root: capture, events: outcomes, probe: probe, resolve: resolve) { past, e in
            (past == .captured ? status(of: e) : nil, .invalidTransition)
        }
    }
}

extension ReferenceLedgerState {
    var canonicalText: String {
        var lines: [String] = []
        for id in sales.keys.sorted() {
            let s = sales[id]!
            var line = "sale \(id.dot) \(s.status)"
            if let amount = s.amount { line += " amount=\(amount.minorUnits) \(amount.currency)" }
            if let wallet = s.wallet { line += " wallet=\(wallet)" }
            if let key = s.duplicateKey { line += " key=\(key.hex)" }
            line += " refunded=\(s.refundedMinor)"
            line += " tickets=[\(s.tickets.map { "\($0.dot)" }.joined(separator: ","))]"
            lines.append(line)
        }
        for id in tickets.keys.sorted() {
            let t = tickets[id]!
            lines.append("ticket \(id.dot) sale=\(t.sale.dot) \(t.status) own=\(t.ownStatus) "
                + "\(t.resolution) amount=\(t.amount.minorUnits) \(t.amount.currency) reason=\(t.reason.description) "
                + "hlc=\(t.requestHLC) notes=\(t.noteCount)")
        }
        for id in ticketsAwaitingRequest {
            let g = ticketGroups[id]!
            lines.append("ticket \(id.dot) awaiting-request events=\(g.statusEvents.count) notes=\(g.notes.count)")
        }
        for dot in unknownEvents.keys.sorted() {
            lines.append("unknown-event \(dot) type=\(unknownEvents[dot]!.body.typeByte)")
        }
        for dot in unauthorized.keys.sorted() {
            lines.append("refused-event \(dot) \(unauthorized[dot]!.body.kind!)")
        }
        for c in conflicts { lines.append(c.description) }
        return lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
    }

    /// Number of distinct events the state holds (including unknown and refused ones).
    var eventCount: Int {
        var n = unknownEvents.count + unauthorized.count
        for g in saleGroups.values { n += g.outcomes.count + (g.capture == nil ? 0 : 1) }
        for g in ticketGroups.values { n += g.statusEvents.count + g.notes.count + (g.request == nil ? 0 : 1) }
        return n
    }
}
