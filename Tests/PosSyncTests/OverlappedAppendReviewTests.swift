import Foundation
import PosTestSupport
import Testing
@testable import PosJournal
@testable import PosLedger
@_spi(Testing) @testable import PosCentral
@testable import PosCentralFiles
@testable import PosWire

/// Review of #19's overlapped append (`FileCentralStorage.overlappedFoldEventsMin`): a failed journal
/// write or fsync must leave central's resident part exactly as before (it is refolded from the records
/// it holds), for pushes mixing every event a terminal may write, not only captures.
@Suite("review: central's fold overlapped with the journal write, mixed events")
struct OverlappedAppendReviewTests {
    /// Events of every kind a terminal may push: captures (one code in three an earlier capture's),
    /// refund requests on any held sale, ticket events and notes on held tickets and on tickets no one
    /// holds (orphans: loose at a flush, re-applied from memory after it), and sequence voids.
    struct Writer {
        var rng: Rng
        var sales: [(sale: SaleId, amount: Money)] = []
        var tickets: [TicketId] = []
        var codes: [PaymentCode] = []
        var events: [Event] = []
        /// Tickets a later push will request (its events' dots): notes on them are orphans until it is held.
        var coming: [TicketId] = []

        mutating func events(_ e: Enrollment, _ seqs: ClosedRange<UInt64>) throws -> [Event] {
            var out: [Event] = []
            for s in seqs {
                let dot = try Dot(replica: e.terminal, seq: s)
                let body: EventBody
                let roll = Int.random(in: 0..<100, using: &rng)
                if roll < 45 || sales.isEmpty {
                    let shared = !codes.isEmpty && Int.random(in: 0..<3, using: &rng) == 0
                    let code = shared ? codes[Int.random(in: 0..<codes.count, using: &rng)] : wechatCode(&rng)
                    codes.append(code)
                    let amount = cny(Int64.random(in: 100...99_999, using: &rng))
                    body = .saleCaptured(try SaleCapture(amount: amount, paymentCode: code, merchantKey: e.ledgerMerchantKey))
                    sales.append((SaleId(dot), amount))
                } else if roll < 62 {
                    let (sale, amount) = sales[Int.random(in: 0..<sales.count, using: &rng)]
                    body = .refundRequested(try RefundRequest(sale: sale, saleAmount: amount, amount: cny(Int64.random(in: 1...amount.minorUnits, using: &rng)),
                                                              reason: .changedMind, resolution: .refund, contact: nil))
                    tickets.append(TicketId(dot))
                } else if roll < 80 {
                    // A note on a held ticket, or on one no event requested (an orphan, held loose).
                    let orphan = tickets.isEmpty || Int.random(in: 0..<4, using: &rng) == 0
                    let ticket = !orphan ? tickets[Int.random(in: 0..<tickets.count, using: &rng)]
                        : !coming.isEmpty && Bool.random(using: &rng) ? coming[Int.random(in: 0..<coming.count, using: &rng)]
                        : TicketId(try Dot(replica: e.terminal, seq: 1_000_000 + UInt64.random(in: 0..<50, using: &rng)))
                    body = .noteAdded(ticket, try NoteText("note \(s) of \(e.terminal.rawValue)"))
                } else if roll < 94, !tickets.isEmpty {
                    let ticket = tickets[Int.random(in: 0..<tickets.count, using: &rng)]
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0: body = .refundApproved(ticket, .originalPayment)
                    case 1: body = .refundRejected(ticket)
                    case 2: body = .refundCancelled(ticket)
                    default: body = .refundEscalated(ticket)
                    }
                } else {
                    body = .sequenceVoid
                }
                let hlc = HLCTimestamp(millis: UInt64(baseMillis) + s * 1000 + UInt64(e.terminal.rawValue), logical: 0)
                out.append(Event(dot: dot, hlc: hlc, context: VersionVector(), body: body))
            }
            events += out
            return out
        }
    }

    /// `events` (consecutive seqs of one terminal) sealed in 100-record frames as a push.
    static func push(_ e: Enrollment, _ events: [Event]) throws -> SyncMessage {
        var chain: UInt32 = 0
        return try pushMessage(e, events.map { RecordCodec.encode($0) }, firstSequence: events.first!.dot.seq, chain: &chain)
    }

    /// Appends the observer was told of.
    final class Told: @unchecked Sendable {
        private let lock = NSLock()
        private var value: [Int] = []
        func add(_ n: Int) { lock.withLock { value.append(n) } }
        var appends: [Int] { lock.withLock { value } }
    }

    @Test("a mixed push (captures, requests, ticket events, notes on held and orphan tickets, voids) whose journal write or fsync fails leaves the resident part equal (==) to what it was with the push's entities loaded, the state, statistics and observer untouched; reopened (closed, or after a crash), central holds the fold of every event")
    func failedMixedAppendLeavesResidentAsPrepared() throws {
        for round in 0..<testCount("POSSYNC_OVERLAPPED_REVIEW_ROUNDS", default: 4) {
            let seed = TestSeed("overlapped append review, round \(round)", replays: "the events, their kinds and the failing operation")
            var writer = Writer(rng: Rng(state: seed.value))
            let disk = SimulatedFileSystem(seed: seed.value)
            var central = try FileCentralStore.create(directory: "/c", fileSystem: disk, snapshotEvents: 400)
            let t1 = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "m")
            let t2 = try central.enroll(terminal: try ReplicaId.terminal(2), merchant: "m")
            let told = Told()
            central.appendObserver = { events, _ in told.add(events.count) }
            let count = UInt64(FileCentralStorage.overlappedFoldEventsMin + Int.random(in: 0..<200, using: &writer.rng))
            // Some of t1's notes are on tickets t2's push will request (held loose until then).
            writer.coming = (1...count).map { TicketId(try! Dot(replica: t2.terminal, seq: $0)) }
            // 500 events flush into a run (orphan notes stay loose and resident); 100 more stay resident.
            for seqs in [UInt64(1)...500, 501...600] {
                let reply = central.handle(try Self.push(t1, try writer.events(t1, seqs)))
                guard case .ack = reply else { Issue.record("\(seed.replay): \(reply)"); return }
            }
            #expect(central.snapshotStatistics.runs >= 1 && central.snapshotStatistics.eventsSinceSnapshot > 0, "\(seed.replay): \(central.snapshotStatistics)")
            writer.coming = []
            let pushed = try writer.events(t2, 1...count)
            let push = try Self.push(t2, pushed)
            // What the push's checks load from the runs, loaded first: the failed push must leave exactly this.
            try central.withStorage { (s) throws(SyncError) in try s.prepare(pushed) }
            let residentBefore = try central.withStorage { $0.resident }
            let before = try central.state
            let statsBefore = central.snapshotStatistics
            let toldBefore = told.appends
            let failing: SimulatedFileSystem.Operation = Bool.random(using: &writer.rng) ? .write : .sync
            disk.failOperation([failing], occurrence: 1)
            let reply = central.handle(push)
            guard case .refusal = reply else {
                Issue.record("\(seed.replay): the push was answered \(reply) though its journal \(failing) failed")
                return
            }
            #expect(!disk.hasPendingFaults, "\(seed.replay): the \(failing) fault did not fire")
            let resident = try central.withStorage { $0.resident }
            #expect(resident == residentBefore, "\(seed.replay): after a failed \(failing), the resident part is not what it was (sales \(resident.sales.count) vs \(residentBefore.sales.count), tickets \(resident.tickets.count) vs \(residentBefore.tickets.count), conflicts \(resident.conflicts.count) vs \(residentBefore.conflicts.count))")
            #expect(try central.state == before, "\(seed.replay): the state changed after a failed \(failing)")
            #expect(central.snapshotStatistics == statsBefore, "\(seed.replay)")
            #expect(told.appends == toldBefore, "\(seed.replay): the append observer was told of a failed append")
            #expect(central.acknowledged(t2.terminal) == 0, "\(seed.replay)")
            // Closed, or the machine crashes (what the failed write or fsync left unsynced is kept, torn or dropped).
            let crash = Bool.random(using: &writer.rng)
            if crash { disk.crash() } else { try? central.close() }
            disk.clearFaults()
            central = try FileCentralStore.open(directory: "/c", fileSystem: disk, snapshotEvents: 400)
            guard case .ack = central.handle(push) else { Issue.record("\(seed.replay): the push was refused after reopening (crash: \(crash))"); return }
            #expect(central.acknowledged(t2.terminal) == count, "\(seed.replay)")
            #expect(try central.state == LedgerState.fold(writer.events), "\(seed.replay): after reopening (crash: \(crash)), central's state is not the fold of every event")
            try central.close()
        }
    }

    @Test("overlapped appends on the real file system from two terminals pushing at once (four 300-event pushes each, a flush between): every push acknowledged, the statistics read meanwhile, central holds the fold of every event (run with --sanitize=thread for the race check)")
    func concurrentOverlappedPushesOnDisk() throws {
        let seed = TestSeed("overlapped pushes at once", replays: "the events of both terminals")
        var rng = Rng(state: seed.value)
        let dir = TempDir("overlapped-review")
        let central = try FileCentralStore.create(directory: dir.path + "/c", snapshotEvents: 700)
        defer { try? central.close() }
        let enrollments = [try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "m"),
                           try central.enroll(terminal: try ReplicaId.terminal(2), merchant: "m")]
        var writers = enrollments.map { _ in Writer(rng: Rng(state: rng.next())) }
        var pushes: [[SyncMessage]] = [[], []]
        for (i, e) in enrollments.enumerated() {
            for b in UInt64(0)..<4 { pushes[i].append(try Self.push(e, try writers[i].events(e, (b * 300 + 1)...(b * 300 + 300)))) }
        }
        let replies = Told(), queued = pushes
        DispatchQueue.concurrentPerform(iterations: 3) { worker in
            guard worker < 2 else {
                for _ in 0..<200 { _ = central.snapshotStatistics; _ = central.acknowledged(enrollments[0].terminal) }
                return
            }
            for p in queued[worker] {
                if case .ack(let a) = central.handle(p) { replies.add(Int(a.accepted)) } else { replies.add(-1) }
            }
        }
        #expect(replies.appends.sorted() == Array(repeating: 300, count: 8), "\(seed.replay): \(replies.appends)")
        #expect(central.snapshotStatistics.runs >= 1, "\(seed.replay): \(central.snapshotStatistics)")
        #expect(try central.state == LedgerState.fold(writers[0].events + writers[1].events), "\(seed.replay)")
    }

    @Test("a bundle imported in 300-event batches (each folded while the journal writes it) whose second batch's journal write fails: the import stops, central holds the first batch and nothing of the second (state, mark, head); reopened, the import is taken again and central holds the fold of every event")
    func bundleBatchFailingWrite() throws {
        let seed = TestSeed("overlapped bundle batch", replays: "the events and the bundle")
        var writer = Writer(rng: Rng(state: seed.value))
        let disk = SimulatedFileSystem(seed: seed.value)
        var central = try FileCentralStore.create(directory: "/c", fileSystem: disk, snapshotEvents: 400)
        let t1 = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "m")
        guard case .ack = central.handle(try Self.push(t1, try writer.events(t1, 1...500))) else { Issue.record("\(seed.replay): first push refused"); return }
        // 900 events in 9 frames of 100, imported 3 frames (300 events) a batch.
        let bundled = try writer.events(t1, 501...1400)
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: t1.journalKey)
        let path = "/bundle.pss"
        let bundle = try BundleWriter(path: path, header: BundleHeader(central: central.centralID, terminal: t1.terminal, dictionaryID: ledgerDictionary.id,
                                                                       keyID: t1.journalKey.id, firstSequence: 501, lastSequence: 1400, frameCount: 9),
                                      fileSystem: disk)
        var chain: UInt32 = 0
        for start in stride(from: 0, to: bundled.count, by: 100) {
            let part = bundled[start..<(start + 100)]
            let (bytes, header) = try sealer.seal(part.map { RecordCodec.encode($0) }, firstSequence: part.first!.dot.seq, previousChecksum: chain)
            try bundle.write(bytes)
            chain = header.checksum
        }
        try bundle.finish()
        try mergeAtTheFlush(central)  // the next write must be the journal's, not a merge's under way
        central.testOnlyFaults.importBatchFramesMax = 3
        // After the first batch is durable, the next journal write (the second batch's) fails.
        central.testOnlyFaults.afterImportBatch = { n in if n == 1 { disk.failOperation([.write], occurrence: 1) } }
        #expect(throws: SyncError.self, "\(seed.replay)") { _ = try central.importBundle(path: path) }
        #expect(!disk.hasPendingFaults, "\(seed.replay): the write fault did not fire")
        let held = Array(writer.events.prefix(800))
        #expect(central.acknowledged(t1.terminal) == 800, "\(seed.replay)")
        #expect(central.head == 800, "\(seed.replay)")
        #expect(try central.state == LedgerState.fold(held), "\(seed.replay): after the failed second batch, central's state is not the fold of the first 800 events")
        try? central.close()
        disk.clearFaults()
        central = try FileCentralStore.open(directory: "/c", fileSystem: disk, snapshotEvents: 400)
        defer { try? central.close() }
        central.testOnlyFaults.importBatchFramesMax = 3
        _ = try central.importBundle(path: path)
        #expect(central.acknowledged(t1.terminal) == 1400, "\(seed.replay)")
        #expect(try central.state == LedgerState.fold(writer.events), "\(seed.replay): after reopening and importing again, central's state is not the fold of every event")
    }
}
