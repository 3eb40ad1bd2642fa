import Foundation
import PosTestSupport
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosWire

@Suite("central's full state")
struct CentralFullStateTests {
    /// Captures of four terminals of one merchant, pushed in 100-event frames; one code in
    /// twenty is an earlier capture's (of any terminal), so duplicates cross batches and runs.
    @Test("the whole state read from the runs, folded a batch at a time on a second thread, is the fold of every event in central's journal")
    func fullStateAcrossBatches() throws {
        let seed = TestSeed("central full state across batches", replays: "the captures and their codes")
        var rng = Rng(state: seed.value)
        let dir = TempDir("full-state")
        // More than three fold batches, flushed into runs every 1,500 events (so most are read from runs).
        let terminals = 4, perTerminal = CentralState.bulkBatchEvents * 3 / 4 + 17
        let central = try FileCentralStore.create(directory: dir.path + "/central", snapshotEvents: 1500)
        var codes: [PaymentCode] = []
        var merchantKey: MerchantKey?
        for t in 1...terminals {
            let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(t)), merchant: "m")
            merchantKey = e.ledgerMerchantKey
            let sealer = FrameSealer(dictionary: ledgerDictionary, key: e.journalKey)
            var frames: [[UInt8]] = []
            var chain: UInt32 = 0
            var seq: UInt64 = 1
            while seq <= UInt64(perTerminal) {
                var records: [[UInt8]] = []
                for s in seq..<min(seq + 100, UInt64(perTerminal) + 1) {
                    let code = !codes.isEmpty && Int.random(in: 0..<20, using: &rng) == 0 ? codes[Int.random(in: 0..<codes.count, using: &rng)] : wechatCode(&rng)
                    codes.append(code)
                    let capture = try SaleCapture(amount: cny(Int64.random(in: 100...99_999, using: &rng)), paymentCode: code, merchantKey: e.ledgerMerchantKey)
                    records.append(RecordCodec.encode(Event(dot: try Dot(replica: e.terminal, seq: s), hlc: HLCTimestamp(millis: UInt64(baseMillis) + s * 1000, logical: 0),
                                                            context: VersionVector(), body: .saleCaptured(capture))))
                }
                let (bytes, header) = try sealer.seal(records, firstSequence: seq, previousChecksum: chain)
                frames.append(bytes)
                chain = header.checksum
                seq += UInt64(records.count)
            }
            let reply = central.handle(.push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: frames)))
            guard case .ack = reply else {
                Issue.record("\(seed.replay): push of terminal \(t) refused: \(reply)")
                return
            }
        }
        let state = try central.state
        // The straightforward fold of every event central holds, in journal order.
        let events = try Self.journalEvents(central, merchantKey!)
        let truth = LedgerState.fold(events)
        let stats = central.snapshotStatistics
        try central.close()
        #expect(events.count == terminals * perTerminal, "\(seed.replay)")
        #expect(stats.runs >= 1 && stats.eventsSinceSnapshot < CentralState.bulkBatchEvents, "\(seed.replay): \(stats)")
        #expect(state.sales.count == terminals * perTerminal, "\(seed.replay)")
        #expect(!truth.conflicts.isEmpty, "\(seed.replay): no code was shared")
        #expect(state.canonicalText == truth.canonicalText && state.conflicts == truth.conflicts,
                "\(seed.replay): the full state read from the runs differs from the fold of the journal")
    }

    /// Every event in central's journal, in journal order.
    static func journalEvents(_ central: CentralHandler, _ merchantKey: MerchantKey) throws -> [Event] {
        var events: [Event] = []
        try central.withStorage { (storage) throws(SyncError) in
            try storage.scan(after: 0) { (_, record) throws(SyncError) in
                do throws(LedgerError) { events.append(try RecordCodec.decode(record, context: RecordDecodeContext(merchantKey: merchantKey))) } catch {
                    throw SyncError(error, location: "journal")
                }
                return true
            }
        }
        return events
    }

    /// Review of issue 19: not captures alone. Four terminals push in eight rounds (runs flushed
    /// every 1,000 events, so runs are written and merged between rounds): captures, one in five
    /// with an earlier round's code; refund requests on earlier sales of any terminal; notes and
    /// decisions on earlier tickets. A sale's component then spans runs (its capture in one, its
    /// tickets and notes in later ones), and code groups span runs.
    @Test("the full state, with tickets, notes and decisions on sales of earlier runs and codes shared across runs, is the fold of the journal")
    func fullStateWithTicketsAcrossRuns() throws {
        let seed = TestSeed("central full state with tickets across runs", replays: "the events")
        var rng = Rng(state: seed.value)
        let dir = TempDir("full-state-tickets")
        let central = try FileCentralStore.create(directory: dir.path + "/central", snapshotEvents: 1000)
        let enrollments = try (1...4).map { try central.enroll(terminal: try ReplicaId.terminal(UInt32($0)), merchant: "m") }
        var chains = [UInt32](repeating: 0, count: 4), next = [UInt64](repeating: 1, count: 4)
        var sales: [(id: SaleId, amount: Money)] = [], tickets: [TicketId] = [], codes: [PaymentCode] = []
        var mostRuns = 0, readResident = false, last = LedgerState()
        for round in 0..<8 {
            let knownSales = sales, knownTickets = tickets, knownCodes = codes
            for (t, e) in enrollments.enumerated() {
                var records: [[UInt8]] = []
                let first = next[t]
                for _ in 0..<330 {
                    let dot = try Dot(replica: e.terminal, seq: next[t])
                    let hlc = HLCTimestamp(millis: UInt64(baseMillis) + UInt64(round) * 1_000_000 + next[t], logical: 0)
                    let body: EventBody
                    let pick = Int.random(in: 0..<10, using: &rng)
                    if pick < 5 || knownSales.isEmpty {
                        let code = !knownCodes.isEmpty && Int.random(in: 0..<5, using: &rng) == 0
                            ? knownCodes[Int.random(in: 0..<knownCodes.count, using: &rng)] : wechatCode(&rng)
                        let amount = cny(Int64.random(in: 100...99_999, using: &rng))
                        body = .saleCaptured(try SaleCapture(amount: amount, paymentCode: code, merchantKey: e.ledgerMerchantKey))
                        sales.append((SaleId(dot), amount))
                        codes.append(code)
                    } else if pick < 7 || knownTickets.isEmpty {
                        let sale = knownSales[Int.random(in: 0..<knownSales.count, using: &rng)]
                        body = .refundRequested(try RefundRequest(sale: sale.id, saleAmount: sale.amount,
                                                                  amount: cny(Int64.random(in: 1...sale.amount.minorUnits, using: &rng)),
                                                                  reason: .quality, resolution: .refund, contact: nil))
                        tickets.append(TicketId(dot))
                    } else {
                        let ticket = knownTickets[Int.random(in: 0..<knownTickets.count, using: &rng)]
                        body = switch Int.random(in: 0..<4, using: &rng) {
                        case 0: .refundApproved(ticket, .originalPayment)
                        case 1: .refundRejected(ticket)
                        default: .noteAdded(ticket, try NoteText("note \(round) \(Int.random(in: 0..<3, using: &rng))"))
                        }
                    }
                    records.append(RecordCodec.encode(Event(dot: dot, hlc: hlc, context: VersionVector(), body: body)))
                    next[t] += 1
                }
                let sealer = FrameSealer(dictionary: ledgerDictionary, key: e.journalKey)
                var frames: [[UInt8]] = []
                for start in stride(from: 0, to: records.count, by: 100) {
                    let sealed = try sealer.seal(Array(records[start..<min(start + 100, records.count)]),
                                                 firstSequence: first + UInt64(start), previousChecksum: chains[t])
                    frames.append(sealed.bytes)
                    chains[t] = sealed.header.checksum
                }
                let reply = central.handle(.push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: frames)))
                guard case .ack = reply else {
                    Issue.record("\(seed.replay): round \(round) push of terminal \(t + 1) refused: \(reply)")
                    return
                }
            }
            // Read after every round: the runs (one to several) and the resident part differ each time.
            let state = try central.state
            let events = try Self.journalEvents(central, enrollments[0].ledgerMerchantKey)
            let truth = LedgerState.fold(events)
            let stats = central.snapshotStatistics
            mostRuns = max(mostRuns, stats.runs)
            if stats.eventsSinceSnapshot > 0 { readResident = true }
            #expect(events.count == 4 * (round + 1) * 330, "\(seed.replay)")
            guard state.canonicalText == truth.canonicalText, state.conflicts == truth.conflicts, state == truth else {
                Issue.record("\(seed.replay): after round \(round) (\(stats)) the full state read from the runs differs from the fold of the journal")
                return
            }
            last = truth
        }
        let stats = central.snapshotStatistics
        try central.close()
        #expect(4 * 8 * 330 > 2 * CentralState.bulkBatchEvents, "more than two fold batches")
        #expect(mostRuns >= 2 && stats.compactions >= 1 && readResident, "\(seed.replay): runs written and merged: \(stats), at most \(mostRuns) runs")
        #expect(!last.conflicts.isEmpty && !last.tickets.isEmpty, "\(seed.replay): codes shared, tickets held")
    }
}
