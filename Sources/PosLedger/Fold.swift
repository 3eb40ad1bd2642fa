// The fold: the state of every sale and ticket as a deterministic function of
// the SET of events known. Applying events in any order, any number of times,
// gives an equal state; applying B to fold(A) equals fold(A ∪ B).
//
// Storage is canonical (per-entity event lists sorted by dot, dictionaries
// keyed by id), and every derived value is recomputed from the inputs of the
// entities an insertion touched, so incremental and full folds agree.

public struct SaleView: Hashable, Sendable {
    public let id: SaleId
    public let status: SaleStatus
    /// nil while the capture is unknown.
    public let amount: Money?
    public let wallet: Wallet?
    public let duplicateKey: DuplicateKey?
    /// Tickets whose request names this sale, sorted.
    public let tickets: [TicketId]
    /// Sum of completed refund tickets (minor units, sale currency).
    public let refundedMinor: Int64
}

public struct TicketView: Hashable, Sendable {
    public let id: TicketId
    public let sale: SaleId
    /// The status shown: own status with the cross-entity rules applied.
    public let status: TicketStatus
    /// The status from the ticket's own events alone.
    public let ownStatus: TicketStatus
    public let amount: Money
    public let resolution: Resolution
    public let reason: ReturnReason
    public let requestHLC: HLCTimestamp
    public let noteCount: Int
}

struct SaleGroup: Hashable, Sendable {
    var capture: Event?
    var outcomes: [Event] = []
    var tickets: [TicketId] = []
    // Derived, recomputed with the group.
    var ownStatus: SaleStatus = .awaitingCapture
    var voided = false
}

struct TicketGroup: Hashable, Sendable {
    var request: Event?
    var statusEvents: [Event] = []
    var notes = TicketNotes()
    /// Derived: the sale `request` names (nil while no request is known), so a
    /// ticket's later events find their sale without copying the request.
    var sale: SaleId?
    /// True only inside `apply`, between a ticket's first event of the batch and the
    /// end of the batch's ingest: the ticket is listed once, not hashed again per event.
    var marked = false
}

public struct LedgerState: Equatable, Sendable {
    var saleGroups: [SaleId: SaleGroup] = [:]
    var ticketGroups: [TicketId: TicketGroup] = [:]
    var capturesByKey: [DuplicateKey: [SaleId]] = [:]
    /// Events of record types this version does not know, kept for relaying.
    public private(set) var unknownEvents: [Dot: Event] = [:]
    /// Events refused by the authority rule, kept as evidence.
    var unauthorized: [Dot: Event] = [:]

    public internal(set) var sales: [SaleId: SaleView] = [:]
    public internal(set) var tickets: [TicketId: TicketView] = [:]
    var conflictsByScope = ConflictScopes()

    public init() {}

    /// Folds a set of events (duplicates allowed, any order).
    public static func fold<S: Sequence>(_ events: S) -> LedgerState where S.Element == Event {
        var state = LedgerState()
        state.apply(events)
        return state
    }

    /// All conflict records, sorted.
    public var conflicts: [ConflictRecord] { conflictsByScope.all.sorted() }

    /// Tickets with events but no known request (it has not arrived yet).
    public var ticketsAwaitingRequest: [TicketId] {
        ticketGroups.filter { $0.value.request == nil }.keys.sorted()
    }

    // MARK: - Applying events

    /// Adds events and recomputes every entity they touch.
    public mutating func apply<S: Sequence>(_ events: S) where S.Element == Event {
        var dirtySales = Set<SaleId>()
        var dirtyOrphanTickets = Set<TicketId>()
        var markedTickets: [TicketId] = []
        // Every event touches at most one sale: room for a batch of all-new sales up front.
        dirtySales.reserveCapacity(Swift.min(events.underestimatedCount, Self.dirtyReserveMax))
        // Arrays and slices are read in place (no iterator, no copy of each event).
        let read: Void? = events.withContiguousStorageIfAvailable { buffer in
            guard var p = buffer.baseAddress else { return }
            // `pointee` is a borrow in place: the event is not copied to be read.
            for _ in 0..<buffer.count {
                // Notes, most events of a long-lived ticket, go straight to their ticket (any
                // writer may add one): read where they lie, without a copy of the event.
                if case .noteAdded(let id, let note) = p.pointee.body {
                    addNote(p.pointee.dot, id, note, &markedTickets)
                } else {
                    ingest(p.pointee, &dirtySales, &markedTickets)
                }
                p += 1
            }
        }
        if read == nil {
            for e in events { ingest(e, &dirtySales, &markedTickets) }
        }
        // A ticket's events dirty the sale its request names, or leave it an orphan.
        for t in markedTickets {
            let g = ticketGroups.index(forKey: t)!
            let (sale, reusedNoteDots) = ticketGroups.values[g].unmark()
            for dot in reusedNoteDots {
                addConflict(.event(dot), ConflictRecord(.dotReused, rule: "smaller-encoding", events: [dot],
                                                        outcome: "kept the note with the smaller text"))
            }
            if let sale { dirtySales.insert(sale) } else { dirtyOrphanTickets.insert(t) }
        }
        recompute(dirtySales: dirtySales)
        for t in dirtyOrphanTickets where ticketGroups[t]?.request == nil {
            tickets[t] = nil
            conflictsByScope[.ticket(t)] = nil
        }
    }

    public mutating func apply(_ event: Event) { apply(CollectionOfOne(event)) }

    /// Makes room for `sales` more sales and `tickets` more tickets in the tables a fold fills
    /// one entry per sale (groups, views, payment-code groups) and per ticket (groups, views),
    /// so a fold of many entities at once (the full-state read) fills them in place instead of
    /// growing them one doubling at a time (each doubling rehashes every entry into fresh
    /// pages). A hint: the state folded is the same with or without it, only memory is taken
    /// early, so give what is known to come (an overestimate costs its unused slots).
    public mutating func reserveCapacity(sales: Int, tickets: Int) {
        precondition(sales >= 0 && tickets >= 0, "negative reservation")
        if sales > 0 {
            saleGroups.reserveCapacity(saleGroups.count + sales)
            self.sales.reserveCapacity(self.sales.count + sales)
            capturesByKey.reserveCapacity(capturesByKey.count + sales)
        }
        if tickets > 0 {
            ticketGroups.reserveCapacity(ticketGroups.count + tickets)
            self.tickets.reserveCapacity(self.tickets.count + tickets)
        }
    }

    /// The sales the tables hold room for without growing (`reserveCapacity(sales:tickets:)`).
    public var salesCapacity: Int { Swift.min(saleGroups.capacity, sales.capacity, capturesByKey.capacity) }

    /// Most dirty-sale slots reserved up front for one batch (sales; the set grows past it as needed).
    static let dirtyReserveMax = 1 << 16

    /// The position of ticket `id`'s group, made (empty) when there is none: one hash
    /// for a known ticket, and the group is then changed in place through `values`.
    private mutating func ticketGroupIndex(_ id: TicketId) -> [TicketId: TicketGroup].Index {
        if let i = ticketGroups.index(forKey: id) { return i }
        ticketGroups[id] = TicketGroup()
        return ticketGroups.index(forKey: id)!
    }

    private mutating func saleGroupIndex(_ id: SaleId) -> [SaleId: SaleGroup].Index {
        if let i = saleGroups.index(forKey: id) { return i }
        saleGroups[id] = SaleGroup()
        return saleGroups.index(forKey: id)!
    }

    private mutating func ingest(_ e: Event, _ dirtySales: inout Set<SaleId>, _ marked: inout [TicketId]) {
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
        case .saleCaptured(let capture):
            let id = SaleId(e.dot)
            guard let g = saleGroups.index(forKey: id) else {
                // A sale not known yet (every sale of a full-state read): what the general path below
                // does with no group and no previous capture, with one lookup where it makes two more.
                var group = SaleGroup()
                group.capture = e
                saleGroups[id] = group
                insertSorted(&capturesByKey[capture.duplicateKey, default: []], id)
                dirtySales.insert(id)
                return
            }
            let previous = saleGroups.values[g].heldCapture()
            guard let kept = keep(previous, e) else { return }
            saleGroups.values[g].capture = kept
            if case .saleCaptured(let old)? = previous?.body {
                // The replaced capture's code group must decide again without it.
                removeFromKeyList(old.duplicateKey, id)
                dirtySales.formUnion(capturesByKey[old.duplicateKey] ?? [])
            }
            if case .saleCaptured(let capture) = kept.body {
                insertSorted(&capturesByKey[capture.duplicateKey, default: []], id)
            }
            dirtySales.insert(id)
        case .saleConfirmed(let id), .saleDeclined(let id), .saleExpired(let id):
            // Mutated in place (no copy of the group's arrays per event).
            let g = saleGroupIndex(id)
            let result = LedgerState.insertEvent(&saleGroups.values[g].outcomes, e)
            if case .replaced(let existing) = result { recordDotReuse(existing, e) }
            if result != .duplicate { dirtySales.insert(id) }
        case .refundRequested:
            let id = TicketId(e.dot)
            let g = ticketGroupIndex(id)
            let previous = ticketGroups.values[g].request
            guard let kept = keep(previous, e) else { return }
            ticketGroups.values[g].request = kept
            // Only the sale named by the request kept (after a dot reuse) owns the ticket.
            if case .refundRequested(let old)? = previous?.body, var sale = saleGroups[old.sale] {
                sale.tickets.removeAll { $0 == id }
                saleGroups[old.sale] = sale.isEmpty ? nil : sale
                dirtySales.insert(old.sale)
            }
            guard case .refundRequested(let request) = kept.body else { return }
            ticketGroups.values[g].sale = request.sale
            insertSorted(&saleGroups[request.sale, default: SaleGroup()].tickets, id)
            dirtySales.insert(request.sale)
        case .noteAdded(let id, let note):
            addNote(e.dot, id, note, &marked)
        case .refundApproved(let id, _), .refundRejected(let id), .refundCancelled(let id),
             .refundCompleted(let id), .refundEscalated(let id):
            let g = ticketGroupIndex(id)
            let result = LedgerState.insertEvent(&ticketGroups.values[g].statusEvents, e)
            if case .replaced(let existing) = result { recordDotReuse(existing, e) }
            if result != .duplicate { markTicket(id, g, &marked) }
        case .unknown:
            return
        }
    }

    /// Adds the note of event `dot` to ticket `id`. Merged at the end of the batch
    /// (`TicketNotes.merge`): the same dot with a different note keeps the smaller
    /// text, deterministically, recorded as a dot reuse.
    private mutating func addNote(_ dot: Dot, _ id: TicketId, _ note: NoteText, _ marked: inout [TicketId]) {
        let g = ticketGroupIndex(id)
        ticketGroups.values[g].notes.add(dot, note)
        markTicket(id, g, &marked)
    }

    /// Lists ticket `id` (at `g`) for the end of the batch's ingest, once.
    private mutating func markTicket(_ id: TicketId, _ g: [TicketId: TicketGroup].Index, _ marked: inout [TicketId]) {
        if ticketGroups.values[g].mark() { marked.append(id) }
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
            if sameEvent(list[low], e) { return .duplicate }
            let existing = list[low]
            list[low] = smallerEncoding(existing, e)
            return .replaced(existing)
        }
        // Appending (a first event, or one after the others) is cheaper than a general insert.
        if low == list.count { list.append(e) } else { list.insert(e, at: low) }
        return .inserted
    }

    private mutating func insertKeyed(_ map: WritableKeyPath<LedgerState, [Dot: Event]>, _ e: Event) {
        if let kept = keep(self[keyPath: map][e.dot], e) { self[keyPath: map][e.dot] = kept }
    }

    /// The event to hold under `e`'s dot when `existing` is held there: `e` when
    /// nothing is; nil when `existing` is `e` (a duplicate: nothing changes);
    /// otherwise the one with the smaller encoding, recorded as a dot reuse.
    private mutating func keep(_ existing: Event?, _ e: Event) -> Event? {
        guard let existing else { return e }
        guard !sameEvent(existing, e) else { return nil }
        recordDotReuse(existing, e)
        return smallerEncoding(existing, e)
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
        // A code held by one capture or none has no duplicate record (recompute
        // visits only codes held by several).
        if list.count < 2 { conflictsByScope[.paymentCode(key)] = nil }
    }
}

extension SaleGroup {
    var isEmpty: Bool { capture == nil && outcomes.isEmpty && tickets.isEmpty }
}

// Groups are read and changed through `dictionary.values[index]` with these
// mutating methods: a mutating access works in place, where reading a field
// through the getter would copy the whole group (its arrays retained and
// released) on every event.

extension SaleGroup {
    /// The capture held (a mutating read: no copy of the group).
    mutating func heldCapture() -> Event? { capture }

    /// The duplicate key of the capture, when one is known.
    mutating func captureKey() -> DuplicateKey? {
        if case .saleCaptured(let c)? = capture?.body { return c.duplicateKey }
        return nil
    }

    /// Recomputes `ownStatus` from the capture and outcomes and clears `voided` (the
    /// duplicate rule sets it again); returns the conflict records of the outcomes.
    mutating func recomputeOwn() -> [ConflictRecord] {
        voided = false
        guard let capture else {
            ownStatus = .awaitingCapture  // outcomes wait for their capture
            return []
        }
        // A capture alone (most sales between capture and outcome, and every sale of a
        // capture-only load): what `SaleRules.own` gives for no outcomes, without its lists.
        if outcomes.isEmpty {
            ownStatus = .captured
            return []
        }
        let m = SaleRules.own(capture: capture, outcomes: outcomes)
        ownStatus = m.status
        return m.conflicts
    }

    /// What recomputing the sale's view reads: the capture, the status before the
    /// cross-entity rules, and the tickets.
    mutating func viewInputs() -> (capture: SaleCapture?, status: SaleStatus, tickets: [TicketId]) {
        guard case .saleCaptured(let c)? = capture?.body else { return (nil, .awaitingCapture, tickets) }
        return (c, voided ? .voidDuplicate : ownStatus, tickets)
    }
}

extension TicketGroup {
    /// Marks the group for the end of the batch's ingest; true when it was not marked yet.
    mutating func mark() -> Bool {
        if marked { return false }
        marked = true
        return true
    }

    /// Clears the mark and merges the batch's notes; returns the sale the request
    /// names and the dots that carried two different notes.
    mutating func unmark() -> (sale: SaleId?, reusedNoteDots: [Dot]) {
        marked = false
        return (sale, notes.merge())
    }
}

/// The same event, byte for byte: `==` alone compares texts as Swift strings, which treat
/// canonically equivalent text (one character written as different Unicode scalars) as equal,
/// so two encodings under one dot would pass for a duplicate and the bytes kept would depend on
/// arrival order. Encoded only when `==` holds (the duplicate path). Public: whatever else tells
/// whether two events under one dot are one (a terminal's `held` against its state) asks this.
public func sameEvent(_ a: Event, _ b: Event) -> Bool {
    a == b && RecordCodec.encode(a) == RecordCodec.encode(b)
}

/// Of two different events with the same dot, the one whose encoding sorts first.
func smallerEncoding(_ a: Event, _ b: Event) -> Event {
    RecordCodec.encode(a).lexicographicallyPrecedes(RecordCodec.encode(b)) ? a : b
}

func insertSorted<T: Comparable>(_ list: inout [T], _ value: T) {
    var low = 0, high = list.count
    while low < high {
        let mid = (low + high) / 2
        if list[mid] < value { low = mid + 1 } else { high = mid }
    }
    if low < list.count && list[low] == value { return }
    if low == list.count { list.append(value) } else { list.insert(value, at: low) }
}

// MARK: - Looking up the events behind a view (read-only)

extension LedgerState {
    /// The capture event of a sale, when known (its HLC is the capture time;
    /// at central and at the capturing terminal it holds the payment code).
    public func capture(of sale: SaleId) -> Event? { saleGroups[sale]?.capture }

    /// The sales whose captures share the duplicate key `key` (the key group), sorted.
    public func captures(withKey key: DuplicateKey) -> [SaleId] { capturesByKey[key] ?? [] }

    /// The conflict records about one sale, sorted: its own, its tickets' and its payment code's.
    public func conflicts(of sale: SaleId) -> [ConflictRecord] {
        var scopes: [ConflictScope] = [.sale(sale)] + (saleGroups[sale]?.tickets ?? []).map { .ticket($0) }
        if case .saleCaptured(let c)? = saleGroups[sale]?.capture?.body { scopes.append(.paymentCode(c.duplicateKey)) }
        return scopes.flatMap { conflictsByScope[$0] ?? [] }.sorted()
    }

    /// The outcome events of a sale (confirmed, declined, expired), sorted by dot.
    public func outcomes(of sale: SaleId) -> [Event] { saleGroups[sale]?.outcomes ?? [] }

    /// The status events of a ticket (decisions, cancellation, escalation, completion), as known,
    /// valid or not, sorted by dot.
    public func statusEvents(of ticket: TicketId) -> [Event] { ticketGroups[ticket]?.statusEvents ?? [] }

    /// The request event that opened a ticket, when known.
    public func request(of ticket: TicketId) -> Event? { ticketGroups[ticket]?.request }

    /// The notes of a ticket, sorted by the dot of the event that added them.
    public func notes(of ticket: TicketId) -> [(dot: Dot, note: NoteText)] {
        (ticketGroups[ticket]?.notes.entries ?? []).map { ($0.dot, $0.note) }
    }
}

extension LedgerState {
    /// Dots of every event known about a sale (capture and outcomes), sorted.
    public func eventDots(of sale: SaleId) -> [Dot] {
        guard let g = saleGroups[sale] else { return [] }
        return ((g.capture.map { [$0.dot] } ?? []) + g.outcomes.map(\.dot)).sorted()
    }

    /// Dots of every event known about a ticket (request, status events, notes), sorted.
    public func eventDots(of ticket: TicketId) -> [Dot] {
        guard let g = ticketGroups[ticket] else { return [] }
        return ((g.request.map { [$0.dot] } ?? []) + g.statusEvents.map(\.dot) + g.notes.dots).sorted()
    }
}
