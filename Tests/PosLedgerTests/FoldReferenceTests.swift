import Testing
@testable import PosLedger

/// Issue 19: the fast fold (`LedgerState`) and the straightforward one it
/// replaced (`ReferenceLedgerState`, Support/ReferenceFold.swift) agree on
/// random event sets with exact duplicates, reused dots, events of unknown
/// types, unauthorized writers and every conflict kind, folded all at once, in
/// several batches and one event at a time, in shuffled orders.
@Suite("Fast fold against the reference fold")
struct FoldReferenceTests {
    static let casesDefault = 1_000

    @Test("the fast fold and the straightforward fold agree on 1,000 random event sets")
    func fastAgreesWithReference() {
        let seed = Property.seed(40)
        var r = SeededRandom(seed: seed)
        var kindsSeen = Set<ConflictRecord.Kind>()
        let cases = Property.cases(default: Self.casesDefault)
        for i in 0..<cases {
            let events = ReferenceCaseGen.events(&r)
            let reference = FoldSnapshot(ReferenceLedgerState.fold(events), ids: events)
            kindsSeen.formUnion(reference.conflicts.map(\.kind))

            let shuffled = events.shuffled(using: &r)
            let whole = LedgerState.fold(shuffled)
            var batches = LedgerState()
            var rest = shuffled[...]
            while !rest.isEmpty {
                let n = r.int(1...max(1, rest.count / 2 + 1))
                batches.apply(rest.prefix(n))
                rest = rest.dropFirst(n)
            }
            var single = LedgerState()
            for e in events.shuffled(using: &r) { single.apply(e) }
            // A sequence without contiguous storage takes the fold's element-by-element path.
            let sequence = LedgerState.fold(AnySequence(shuffled.reversed()))

            for (how, state) in [("all at once", whole), ("in batches", batches), ("one at a time", single),
                                 ("as a plain sequence", sequence)] {
                let fast = FoldSnapshot(state, ids: events)
                if fast != reference {
                    Issue.record(Comment(rawValue: "seed \(seed) case \(i) (\(events.count) events, \(how)): the fast fold "
                        + "differs from the reference: \(fast.firstDifference(from: reference))\nreference:\n"
                        + "\(reference.canonicalText)---\nfast:\n\(fast.canonicalText)"))
                    return
                }
            }
            if whole != batches || whole != single || whole != sequence {
                Issue.record(Comment(rawValue: "seed \(seed) case \(i): folds of the same events are not == "
                    + "(all at once, in batches, one at a time, as a plain sequence)"))
                return
            }
        }
        // The generator must reach every rule, or agreement proves little.
        if cases >= 1000 {
            let missing = Set(ConflictRecord.Kind.allCases).subtracting(kindsSeen)
            #expect(missing.isEmpty, "seed \(seed): no case produced \(missing)")
        }
    }

    @Test("a state given room up front folds what the reference folds (the full-state read's way: part folded, room made, the rest by sale)")
    func reservedAgreesWithReference() {
        let seed = Property.seed(42)
        var r = SeededRandom(seed: seed)
        for i in 0..<Property.cases(default: Self.casesDefault) {
            let events = ReferenceCaseGen.events(&r)
            let reference = FoldSnapshot(ReferenceLedgerState.fold(events), ids: events)
            let shuffled = events.shuffled(using: &r)
            // A part folded first (central's resident part), shared with a copy that must not change.
            let k = r.int(0...shuffled.count)
            var state = LedgerState.fold(shuffled[..<k])
            let before = state
            // Room for fewer, as many or more entities than come (the runs' counts are an upper bound).
            state.reserveCapacity(sales: r.int(0...2 * events.count), tickets: r.int(0...events.count))
            // The rest grouped by sale, as the runs' components arrive, in batches cut anywhere.
            var rest = shuffled[k...].sorted { ($0.saleId?.dot ?? $0.dot) < ($1.saleId?.dot ?? $1.dot) }[...]
            while !rest.isEmpty {
                let n = r.int(1...max(1, rest.count))
                state.apply(rest.prefix(n))
                rest = rest.dropFirst(n)
            }
            let fast = FoldSnapshot(state, ids: events)
            if fast != reference || state != LedgerState.fold(events) {
                Issue.record(Comment(rawValue: "seed \(seed) case \(i) (\(events.count) events, \(k) before the room was made): "
                    + "the reserved fold differs from the reference: \(fast.firstDifference(from: reference))\nreference:\n"
                    + "\(reference.canonicalText)---\nreserved:\n\(fast.canonicalText)"))
                return
            }
            if before != LedgerState.fold(shuffled[..<k]) {
                Issue.record(Comment(rawValue: "seed \(seed) case \(i): making room changed the state it was copied from"))
                return
            }
        }
    }

    @Test("the reference fold is what the fold was: it renders the golden scenario's state")
    func referenceMatchesFold() {
        // A hand-written scenario touching every path once, so a reference that
        // silently stopped folding could not pass the random test by agreeing on nothing.
        let events = [Common.sale, Common.confirmed, Common.ticket]
        let state = ReferenceLedgerState.fold(events)
        #expect(state.sales[SaleId(Common.sale.dot)]?.status == .confirmed)
        #expect(state.tickets[TicketId(Common.ticket.dot)]?.status == .requested)
        #expect(state.eventCount == 3)
    }
}

/// Every random event set of `FoldReferenceTests`: the scenario generator's
/// histories (plain or with skewed clocks and forged cycles), plus exact
/// duplicates, reused dots (the same dot with another event's body, or a
/// random body), events of an unknown type, sequence voids, and events written
/// by a replica the authority rule refuses.
enum ReferenceCaseGen {
    static func events(_ r: inout SeededRandom) -> [Event] {
        let big = r.chance(10)
        var events = ScenarioGen.events(&r, salesMax: big ? 12 : 4, ticketsMax: big ? 16 : 5, skewed: r.chance(30))
        let base = events
        // Reused dots: another event's body under this event's dot, or a random body of any kind.
        for _ in 0..<r.int(0...3) where r.chance(60) {
            let e = r.pick(base)
            let body = r.chance(60) ? r.pick(base).body : Gen.body(&r, kind: r.pick(EventKind.allCases))
            events.append(Event(dot: e.dot, hlc: r.chance(50) ? e.hlc : Gen.hlc(&r), context: e.context, body: body))
        }
        // A second capture or note under the same dot, differing in amount or text only.
        if r.chance(20), let e = base.first(where: { if case .saleCaptured = $0.body { true } else { false } }),
           case .saleCaptured(let c) = e.body {
            let other = try! SaleCapture(amount: Money(minorUnits: c.amount.minorUnits + 1, currency: c.amount.currency),
                                         wallet: c.wallet, duplicateKey: c.duplicateKey, paymentCode: c.paymentCode)
            events.append(Event(dot: e.dot, hlc: e.hlc, context: e.context, body: .saleCaptured(other)))
        }
        if r.chance(20), let e = base.first(where: { if case .noteAdded = $0.body { true } else { false } }),
           case .noteAdded(let t, _) = e.body {
            events.append(Event(dot: e.dot, hlc: e.hlc, context: e.context,
                                body: .noteAdded(t, try! NoteText(r.chance(50) ? "a" : "zz"))))
        }
        // A ticket with many notes (past `TicketNotes`' insert-one-by-one ratio when applied one
        // at a time), some sharing a dot with another text.
        if r.chance(15), let request = base.first(where: { $0.body.kind == .refundRequested }) {
            let writer = r.pick([Sample.t1, Sample.t2, ReplicaId.central])
            for k in 0..<UInt64(r.int(9...30)) {
                let dot = Sample.dot(writer, 800 + (r.chance(20) ? k / 2 : k))
                events.append(Event(dot: dot, hlc: Gen.hlc(&r), context: B.ctx([request.dot]),
                                    body: .noteAdded(TicketId(request.dot), try! NoteText("note \(r.int(0...3))"))))
            }
        }
        // Unknown record types (kept for relaying), some under a dot in use.
        if r.chance(15) {
            let dot = r.chance(50) ? r.pick(base).dot : Sample.dot(Sample.t3, UInt64(r.int(500...510)))
            events.append(Event(dot: dot, hlc: Gen.hlc(&r), context: VersionVector(),
                                body: .unknown(type: UInt8(r.int(100...102)), fields: [UInt8(r.int(0...3))])))
        }
        // Sequence voids, and events their writer may not write (refused, kept as evidence).
        if r.chance(10) {
            events.append(Event(dot: Sample.dot(Sample.t2, UInt64(r.int(600...605))), hlc: Gen.hlc(&r),
                                context: VersionVector(), body: .sequenceVoid))
        }
        if r.chance(15) {
            let e = r.pick(base)
            let writer: ReplicaId = r.chance(50) ? .central : Sample.t1
            let body: EventBody = switch r.int(0...2) {
            case 0: writer.isCentral ? Gen.body(&r, kind: .saleCaptured) : .saleConfirmed(SaleId(e.dot))
            case 1: writer.isCentral ? .sequenceVoid : .refundCompleted(TicketId(e.dot))
            default: writer.isCentral ? Gen.body(&r, kind: .saleCaptured) : .saleDeclined(SaleId(e.dot))
            }
            events.append(Event(dot: Sample.dot(writer, UInt64(r.int(700...703))), hlc: Gen.hlc(&r),
                                context: VersionVector(), body: body))
        }
        // Exact duplicates.
        for _ in 0..<r.int(0...4) { events.append(r.pick(events)) }
        return events
    }
}

/// Everything a folded state shows, read through the accessors both folds have,
/// for every sale, ticket and payment code the events name.
struct FoldSnapshot: Equatable {
    struct Sale: Equatable {
        var capture: Event?
        var outcomes: [Event]
        var conflicts: [ConflictRecord]
        var dots: [Dot]
    }

    struct Ticket: Equatable {
        var request: Event?
        var statusEvents: [Event]
        var noteDots: [Dot]
        var notes: [NoteText]
        var dots: [Dot]
    }

    var canonicalText: String
    var eventCount: Int
    var sales: [SaleId: SaleView]
    var tickets: [TicketId: TicketView]
    var conflicts: [ConflictRecord]
    var awaitingRequest: [TicketId]
    var unknownEvents: [Dot: Event]
    var perSale: [SaleId: Sale] = [:]
    var perTicket: [TicketId: Ticket] = [:]
    var keyGroups: [DuplicateKey: [SaleId]] = [:]
    var counts: LedgerCounts

    init(_ s: some FoldedLedger, ids events: [Event]) {
        canonicalText = s.canonicalText
        eventCount = s.eventCount
        sales = s.sales
        tickets = s.tickets
        conflicts = s.conflicts
        awaitingRequest = s.ticketsAwaitingRequest
        unknownEvents = s.unknownEvents
        counts = s.counts
        for e in events {
            for id in [SaleId(e.dot), e.saleId].compactMap({ $0 }) {
                perSale[id] = Sale(capture: s.capture(of: id), outcomes: s.outcomes(of: id), conflicts: s.conflicts(of: id),
                                   dots: s.eventDots(of: id))
            }
            for id in [TicketId(e.dot), e.ticketId].compactMap({ $0 }) {
                let notes = s.notes(of: id)
                perTicket[id] = Ticket(request: s.request(of: id), statusEvents: s.statusEvents(of: id),
                                       noteDots: notes.map(\.dot), notes: notes.map(\.note), dots: s.eventDots(of: id))
            }
            if case .saleCaptured(let c) = e.body { keyGroups[c.duplicateKey] = s.captures(withKey: c.duplicateKey) }
        }
    }

    /// The first part that differs, named (for the failure message).
    func firstDifference(from o: FoldSnapshot) -> String {
        if canonicalText != o.canonicalText { return "canonical text" }
        if eventCount != o.eventCount { return "event count \(eventCount) vs \(o.eventCount)" }
        if sales != o.sales { return "sale views" }
        if tickets != o.tickets { return "ticket views" }
        if conflicts != o.conflicts { return "conflicts" }
        if awaitingRequest != o.awaitingRequest { return "tickets awaiting their request" }
        if unknownEvents != o.unknownEvents { return "unknown events" }
        if counts != o.counts { return "counts" }
        for (id, v) in perSale where o.perSale[id] != v { return "events or conflicts of \(id)" }
        for (id, v) in perTicket where o.perTicket[id] != v { return "events or notes of \(id)" }
        for (k, v) in keyGroups where o.keyGroups[k] != v { return "captures with key \(k.hex)" }
        return "nothing named (sets of ids differ)"
    }
}

/// What both folds show, so one snapshot reads either.
protocol FoldedLedger {
    var canonicalText: String { get }
    var eventCount: Int { get }
    var sales: [SaleId: SaleView] { get }
    var tickets: [TicketId: TicketView] { get }
    var conflicts: [ConflictRecord] { get }
    var ticketsAwaitingRequest: [TicketId] { get }
    var unknownEvents: [Dot: Event] { get }
    var counts: LedgerCounts { get }
    func capture(of sale: SaleId) -> Event?
    func captures(withKey key: DuplicateKey) -> [SaleId]
    func conflicts(of sale: SaleId) -> [ConflictRecord]
    func outcomes(of sale: SaleId) -> [Event]
    func statusEvents(of ticket: TicketId) -> [Event]
    func request(of ticket: TicketId) -> Event?
    func notes(of ticket: TicketId) -> [(dot: Dot, note: NoteText)]
    func eventDots(of sale: SaleId) -> [Dot]
    func eventDots(of ticket: TicketId) -> [Dot]
}

extension LedgerState: FoldedLedger {
    var counts: LedgerCounts { LedgerCounts(self) }
}

extension ReferenceLedgerState: FoldedLedger {
    /// `LedgerCounts.init(_:)` over the reference's views and conflicts (the same two loops).
    var counts: LedgerCounts {
        var c = LedgerCounts()
        for t in tickets.values { c.tickets[LedgerCounts.ticketStatuses.firstIndex(of: t.status)!] += 1 }
        for k in conflicts { c.conflicts[LedgerCounts.conflictKinds.firstIndex(of: k.kind)!] += 1 }
        return c
    }
}
