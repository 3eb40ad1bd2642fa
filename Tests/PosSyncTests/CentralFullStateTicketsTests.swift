import Foundation
import PosTestSupport
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosWire

/// Review of issue 19, redone: central's full state with tickets, notes and decisions across snapshot
/// runs and merges, the shape of the workload fixed by construction (a push applies its events in one
/// append, and central flushes after an append when the events applied plus those loaded from the runs
/// since the last flush reach `snapshotEvents`):
/// 1. two pushes of `4 × flushEvents` captures of fresh codes: each flushes once, loading nothing; the
///    two runs hold as many capture records each, so the second merges with the first (a merge when the
///    older is at most twice the newer);
/// 2. rounds of `flushEvents`-event pushes by four terminals (captures, a third of them with an earlier
///    code; refund requests; notes, several a ticket; decisions; a few sequence voids), then central's
///    own outcomes, approvals, rejections and completions: every push flushes exactly once;
/// 3. a push of `8 × flushEvents` captures of fresh codes: flushes once, loading nothing;
/// 4. a `flushEvents`-event push whose events load at most `flushEvents / 2` from the runs: flushes once,
///    and its run (at most 1.5 × flushEvents records) is less than half the run before it (at least
///    8 × flushEvents capture records, merges only grow it): not merged, so two runs or more;
/// 5. `flushEvents / 4` events (pushed, and central's own) loading fewer than `flushEvents` minus them:
///    no flush, so the last read has runs and a resident part of exactly those events (and what they
///    loaded: sales in the runs whose resident component wins).
/// What each event may load is bounded from what the test wrote: every event of every sale sharing the
/// payment code of the sale it touches (what central loads to fold it exactly).
extension CentralFullStateTests {
    /// `snapshotEvents` of the central under test: events (applied and loaded) between flushes.
    static let flushEvents = 128
    /// Rounds of phase 2 (each: a push of `flushEvents` events by each of the four terminals).
    static let mixedRounds = 3
    /// Tries of central's own events after each round of phase 2 (a third of them end in a completion
    /// or more: with 3 × 40, a workload with none is not to be expected of any seed).
    static let centralTriesPerRound = 40

    @Test("the full state, with tickets, notes and decisions on sales of earlier runs and codes shared across runs, read from merged runs and a resident part, is the fold of the journal")
    func fullStateWithTicketsAcrossRuns() throws {
        let seed = TestSeed("central full state with tickets across runs", replays: "every iteration's events")
        var rng = Rng(state: seed.value)
        let iterations = testCount("POSSYNC_FULL_STATE_ITERATIONS", default: 1)
        let s = Self.flushEvents
        for iteration in 0..<iterations {
            let dir = TempDir("full-state-tickets")
            let central = try FileCentralStore.create(directory: dir.path + "/central", snapshotEvents: s)
            var w = try TicketWorkload(rng: rng, central: central)
            let at = "\(seed.replay), iteration \(iteration)"
            /// A push and the flushes it makes, exactly (a hard precondition: the construction, not the state under test).
            func push(_ t: Int, _ count: Int, _ kind: TicketWorkload.Kind, flushes: Int, _ phase: String) throws {
                let before = central.snapshotStatistics.written
                try w.push(t, count, kind, at)
                let stats = central.snapshotStatistics
                try #require(stats.written == before + flushes, "\(at): \(phase): a push of \(count) events made \(stats.written - before) flushes, not \(flushes): \(stats)")
            }
            // 1. Two equal runs, merged.
            try push(0, 4 * s, .freshCaptures, flushes: 1, "phase 1")
            try push(1, 4 * s, .freshCaptures, flushes: 1, "phase 1")
            var stats = central.snapshotStatistics
            try #require(stats.runs == 1 && stats.compactions == 1 && stats.eventsSinceSnapshot == 0, "\(at): phase 1 did not merge its two runs: \(stats)")
            guard try Self.sameFullState(central, w.merchantKey, "\(at): after phase 1") else { return }
            // 2. Mixed rounds, a flush a push; central's own events between rounds.
            for round in 0..<Self.mixedRounds {
                for t in 0..<4 { try push(t, s, .mixed(loadBudget: nil), flushes: 1, "round \(round)") }
                try w.centralEvents(Self.centralTriesPerRound)
                guard try Self.sameFullState(central, w.merchantKey, "\(at): after round \(round)") else { return }
            }
            // 3. A large run of fresh captures.
            try push(2, 8 * s, .freshCaptures, flushes: 1, "phase 3")
            // 4. A small run after it: not merged.
            try push(3, s, .mixed(loadBudget: s / 2), flushes: 1, "phase 4")
            stats = central.snapshotStatistics
            try #require(stats.runs >= 2 && stats.eventsSinceSnapshot == 0, "\(at): phase 4's run was merged: \(stats)")
            guard try Self.sameFullState(central, w.merchantKey, "\(at): after phase 4") else { return }
            // 5. The resident part: pushed events and central's own, loading what they touch from the runs.
            let before = central.snapshotStatistics
            // At most s / 4 events (three tries of central's: at most 9) loading at most s - s / 4 - 1, half of it left to central's.
            let pushed = s / 4 - 9, loadBudget = s - s / 4 - 1
            try w.push(0, pushed, .mixed(loadBudget: loadBudget / 2), at)
            let recorded = try w.centralEvents(3, loadBudget: loadBudget - w.loadSpent)
            stats = central.snapshotStatistics
            try #require(stats.written == before.written && stats.eventsSinceSnapshot == pushed + recorded && stats.runs >= 2 && stats.compactions >= 1,
                         "\(at): the last read is not of runs and a resident part of \(pushed + recorded) events: \(stats) (before phase 5: \(before))")
            guard try Self.sameFullState(central, w.merchantKey, "\(at): the last read") else { return }
            let truth = LedgerState.fold(try Self.journalEvents(central, w.merchantKey))
            try central.close()
            // The workload's own shape: what the comparison covered.
            let notes = truth.tickets.values.filter { $0.noteCount >= 2 }.count
            print("iteration \(iteration): \(stats.written) flushes, \(stats.compactions) merges, \(stats.runs) runs and \(stats.eventsSinceSnapshot) resident events (\(recorded) central's) at the last read; "
                  + "\(truth.sales.count) sales, \(truth.tickets.count) tickets (\(notes) with several notes, \(truth.tickets.values.filter { $0.status == .completed }.count) completed), \(truth.conflicts.count) conflicts")
            #expect(!truth.conflicts.filter { $0.kind == .duplicatePaymentCode }.isEmpty, "\(at): no code was shared")
            #expect(notes > 0 && truth.tickets.values.contains { $0.status == .completed } && truth.sales.values.contains { $0.status == .confirmed },
                    "\(at): tickets with several notes \(notes), a completed ticket, a confirmed sale")
            rng = w.rng
        }
    }

    /// Whether central's full state (what reports read) is the fold of every event in its journal, in every
    /// part: sales and tickets (views, statuses), each ticket's notes (their dots and bytes), conflicts, the
    /// status counts, the canonical text and `==`. Records the first difference.
    static func sameFullState(_ central: CentralHandler, _ merchantKey: MerchantKey, _ at: String) throws -> Bool {
        let state = try central.state
        let truth = LedgerState.fold(try journalEvents(central, merchantKey))
        let stats = central.snapshotStatistics
        func differs(_ what: String) -> Bool {
            Issue.record("\(at) (\(stats)): the full state read from the runs differs from the fold of the journal: \(what)")
            return false
        }
        if state.sales.count != truth.sales.count { return differs("\(state.sales.count) sales, \(truth.sales.count) in the fold") }
        for (id, view) in truth.sales where state.sales[id] != view { return differs("sale \(id.dot): \(String(describing: state.sales[id])), fold \(view)") }
        if state.tickets.count != truth.tickets.count { return differs("\(state.tickets.count) tickets, \(truth.tickets.count) in the fold") }
        for (id, view) in truth.tickets {
            guard state.tickets[id] == view else { return differs("ticket \(id.dot): \(String(describing: state.tickets[id])), fold \(view)") }
            let a = state.notes(of: id).map { "\($0.dot) \(Array($0.note.text.utf8))" }, b = truth.notes(of: id).map { "\($0.dot) \(Array($0.note.text.utf8))" }
            guard a == b else { return differs("notes of ticket \(id.dot): \(a), fold \(b)") }
        }
        if state.conflicts != truth.conflicts { return differs("\(state.conflicts.count) conflicts, \(truth.conflicts.count) in the fold") }
        if LedgerCounts(state) != LedgerCounts(truth) { return differs("status counts \(LedgerCounts(state)), fold \(LedgerCounts(truth))") }
        if state.canonicalText != truth.canonicalText { return differs("the canonical text") }
        if state != truth { return differs("the states (==)") }
        return true
    }
}

/// Four terminals' events and central's own, with what the test knows of them: enough to bound what an
/// event makes central load from its runs (every event of every sale sharing its sale's payment code).
private struct TicketWorkload {
    enum Kind {
        /// Captures of codes no sale has: central loads nothing for them.
        case freshCaptures
        /// Any event; with a budget, one that would load more than is left becomes a fresh capture.
        case mixed(loadBudget: Int?)
    }

    var rng: Rng
    let central: CentralHandler
    let enrollments: [Enrollment]
    var merchantKey: MerchantKey { enrollments[0].ledgerMerchantKey }
    var next: [UInt64] = [1, 1, 1, 1]
    var chains: [UInt32] = [0, 0, 0, 0]
    var millis = UInt64(baseMillis)
    var sales: [(id: SaleId, amount: Money)] = []
    var codeOf: [SaleId: PaymentCode] = [:]
    var salesOfCode: [PaymentCode: [SaleId]] = [:]
    /// Every capture's code, once a capture (so a code shared often is picked more often).
    var codes: [PaymentCode] = []
    /// Events of each sale's component (its capture, outcomes, requests and their tickets' events).
    var componentEvents: [SaleId: Int] = [:]
    var tickets: [TicketId] = []
    var saleOfTicket: [TicketId: SaleId] = [:]
    var decisions: [TicketId: [Dot]] = [:]
    /// Of the current budgeted batch: code groups touched, and the events they may load.
    var touched: Set<PaymentCode> = []
    var loadSpent = 0

    init(rng: Rng, central: CentralHandler) throws {
        self.rng = rng
        self.central = central
        enrollments = try (1...4).map { try central.enroll(terminal: try ReplicaId.terminal(UInt32($0)), merchant: "m") }
    }

    /// Events central may load to fold an event of `code`'s group, at most.
    func groupEvents(_ code: PaymentCode) -> Int { (salesOfCode[code] ?? []).reduce(0) { $0 + componentEvents[$1, default: 0] } }

    /// Whether an event of `code`'s group fits what is left of `budget` (nil: no bound), counting it when it does.
    mutating func take(_ code: PaymentCode, _ budget: Int?) -> Bool {
        guard !touched.contains(code) else { return true }
        let cost = groupEvents(code)
        if let budget, loadSpent + cost > budget { return false }
        touched.insert(code)
        loadSpent += cost
        return true
    }

    mutating func freshCode() -> PaymentCode {
        while true {
            let c = wechatCode(&rng)
            if salesOfCode[c] == nil { return c }
        }
    }

    mutating func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }

    mutating func capture(_ dot: Dot, _ code: PaymentCode, _ t: Int) throws -> EventBody {
        let amount = cny(Int64.random(in: 100...99_999, using: &rng))
        let id = SaleId(dot)
        sales.append((id, amount))
        codeOf[id] = code
        salesOfCode[code, default: []].append(id)
        codes.append(code)
        componentEvents[id] = 1
        return .saleCaptured(try SaleCapture(amount: amount, paymentCode: code, merchantKey: enrollments[t].ledgerMerchantKey))
    }

    /// One terminal event under `dot`: its body and causal context.
    mutating func event(_ dot: Dot, _ t: Int, _ kind: Kind) throws -> (EventBody, VersionVector) {
        guard case .mixed(let budget) = kind else { return (try capture(dot, freshCode(), t), VersionVector()) }
        let pick = Int.random(in: 0..<40, using: &rng)
        if pick == 0 && budget == nil { return (.sequenceVoid, VersionVector()) }  // as `terminal recover` writes them
        if pick < 14 || tickets.isEmpty && pick >= 20 {
            let shared = !codes.isEmpty && Int.random(in: 0..<3, using: &rng) == 0 ? self.pick(codes) : nil
            if let shared, take(shared, budget) { return (try capture(dot, shared, t), VersionVector()) }
            return (try capture(dot, freshCode(), t), VersionVector())
        }
        if pick < 20 {
            let sale = self.pick(sales)
            guard take(codeOf[sale.id]!, budget) else { return (try capture(dot, freshCode(), t), VersionVector()) }
            let ticket = TicketId(dot)
            tickets.append(ticket)
            saleOfTicket[ticket] = sale.id
            componentEvents[sale.id, default: 0] += 1
            var context = VersionVector()
            context.add(sale.id.dot)
            let reason: ReturnReason = Int.random(in: 0..<4, using: &rng) == 0 ? .other(try ReasonText("caf\u{E9} \(dot.seq)")) : .quality
            return (.refundRequested(try RefundRequest(sale: sale.id, saleAmount: sale.amount, amount: cny(Int64.random(in: 1...sale.amount.minorUnits, using: &rng)),
                                                       reason: reason, resolution: Int.random(in: 0..<5, using: &rng) == 0 ? .exchange : .refund, contact: nil)),
                    context)
        }
        let ticket = self.pick(tickets)
        let sale = saleOfTicket[ticket]!
        guard take(codeOf[sale]!, budget) else { return (try capture(dot, freshCode(), t), VersionVector()) }
        componentEvents[sale, default: 0] += 1
        var context = VersionVector()
        context.add(ticket.dot)
        if pick < 30 {
            // Notes: several a ticket, many on tickets of earlier runs.
            return (.noteAdded(ticket, try NoteText("note \(Int.random(in: 0..<1000, using: &rng))")), context)
        }
        // A decision: after every decision known of the ticket (sequential) or after its request alone (concurrent with them).
        if Bool.random(using: &rng) { for d in decisions[ticket] ?? [] { context.add(d) } }
        decisions[ticket, default: []].append(dot)
        let body: EventBody = switch Int.random(in: 0..<5, using: &rng) {
        case 0, 1: .refundApproved(ticket, .originalPayment)
        case 2: .refundRejected(ticket)
        case 3: .refundEscalated(ticket)
        default: .refundCancelled(ticket)
        }
        return (body, context)
    }

    /// Terminal `t` pushes `count` new events in 100-event frames; central must take them all.
    mutating func push(_ t: Int, _ count: Int, _ kind: Kind, _ at: String) throws {
        touched = []
        loadSpent = 0
        let e = enrollments[t]
        var records: [[UInt8]] = []
        let first = next[t]
        for _ in 0..<count {
            let dot = try Dot(replica: e.terminal, seq: next[t])
            millis += 10
            let (body, context) = try event(dot, t, kind)
            records.append(RecordCodec.encode(Event(dot: dot, hlc: HLCTimestamp(millis: millis, logical: 0), context: context, body: body)))
            next[t] += 1
        }
        let reply = central.handle(try pushMessage(e, records, firstSequence: first, chain: &chains[t]))
        guard case .ack(let ack) = reply, ack.accepted == UInt32(count) else {
            throw SyncError(.malformed, "\(at): the push of \(count) events of terminal \(t + 1) was not taken whole: \(reply)")
        }
    }

    /// Central's own events, `count` tries, each on a sale or a ticket: the sale's outcome; or the ticket approved
    /// or rejected; or the ticket's sale confirmed, the ticket approved and completed. Central's checks refuse
    /// some (the sale not captured, the decision not a valid transition, the ticket not approved or its sale
    /// not confirmed): those are not counted. With a budget, only tries on code groups that fit it. Returns
    /// how many events central recorded.
    @discardableResult
    mutating func centralEvents(_ count: Int, loadBudget: Int? = nil) throws -> Int {
        if loadBudget != nil { touched = []; loadSpent = 0 }
        var recorded = 0
        for _ in 0..<count {
            let ticket = pick(tickets)
            let sale = Int.random(in: 0..<3, using: &rng) == 0 ? pick(sales).id : saleOfTicket[ticket]!
            guard take(codeOf[sale]!, loadBudget) else { continue }
            let bodies: [EventBody] = if sale != saleOfTicket[ticket] {
                [[.saleConfirmed(sale), .saleConfirmed(sale), .saleDeclined(sale), .saleExpired(sale)][Int.random(in: 0..<4, using: &rng)]]
            } else if Bool.random(using: &rng) {
                [Bool.random(using: &rng) ? .refundApproved(ticket, .originalPayment) : .refundRejected(ticket)]
            } else {
                [.saleConfirmed(sale), .refundApproved(ticket, .originalPayment), .refundCompleted(ticket)]
            }
            for body in bodies {
                millis += 10
                let written: Event?
                do { written = try central.record(body, wallMillis: Int64(millis)) } catch {
                    guard error.code != .io else { throw error }
                    written = nil  // refused by central's checks
                }
                guard let e = written else { continue }
                componentEvents[sale, default: 0] += 1
                switch body {
                case .saleConfirmed, .saleDeclined, .saleExpired: break
                default: decisions[ticket, default: []].append(e.dot)
                }
                recorded += 1
            }
        }
        return recorded
    }
}
