import Foundation
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire
import PosTestSupport

/// Seeds for the snapshot property: POSSYNC_SNAPSHOT_SEEDS (default 12).
private func snapshotSeeds() -> ClosedRange<UInt64> {
    let n = ProcessInfo.processInfo.environment["POSSYNC_SNAPSHOT_SEEDS"].flatMap(UInt64.init) ?? 12
    return 1...max(n, 1)
}

/// A random workload over three terminals and central: captures (some reusing
/// a code at another terminal), returns at any shop, decisions at terminals and
/// at central, completions, the acquirer's outcomes, notes, syncs in random order.
private func workload(_ w: World, seed: UInt64, steps: Int) throws {
    var rng = Rng(state: seed)
    var codes: [PaymentCode] = []
    func pick<T>(_ list: [T]) -> T? { list.isEmpty ? nil : list[Int.random(in: 0..<list.count, using: &rng)] }
    for _ in 0..<steps {
        let i = Int.random(in: 0..<w.terminals.count, using: &rng)
        let t = w.terminals[i]
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<30:
            let code = Int.random(in: 0..<10, using: &rng) == 0 ? (pick(codes) ?? wechatCode(&rng)) : wechatCode(&rng)
            codes.append(code)
            _ = try w.capture(i, Int64.random(in: 100...90_000, using: &rng), code: code)
        case 30..<45:
            guard let sale = pick(t.state.sales.values.filter { $0.amount != nil }.sorted { $0.id < $1.id }) else { continue }
            let amount = sale.amount!.minorUnits
            _ = try? w.requestRefund(i, sale: sale.id, saleMinor: amount, Int64.random(in: 1...amount, using: &rng))
        case 45..<55:
            guard let ticket = pick(t.state.tickets.keys.sorted()) else { continue }
            let bodies: [EventBody] = [.refundApproved(ticket, .originalPayment), .refundRejected(ticket), .refundCancelled(ticket),
                                       .refundEscalated(ticket), .noteAdded(ticket, try NoteText("seen \(seed)"))]
            _ = try? t.record(pick(bodies)!, wallMillis: w.tick())
        case 55..<70:
            // Central decides from what a terminal shows (its own whole state is not needed for that).
            guard let ticket = pick(t.state.tickets.keys.sorted()) else { continue }
            let bodies: [EventBody] = [.refundApproved(ticket, .originalPayment), .refundRejected(ticket), .refundCompleted(ticket)]
            _ = try? w.central.record(pick(bodies)!, wallMillis: w.tick())
        case 70..<80:
            guard let sale = pick(t.state.sales.keys.sorted()) else { continue }
            let bodies: [EventBody] = [.saleConfirmed(sale), .saleConfirmed(sale), .saleDeclined(sale), .saleExpired(sale)]
            _ = try? w.central.record(pick(bodies)!, wallMillis: w.tick())
        case 80..<85:
            // A return taken at central (a ticket central opens), for a sale a terminal shows.
            guard let sale = pick(t.state.sales.values.filter { $0.amount != nil }.sorted { $0.id < $1.id }) else { continue }
            let amount = sale.amount!
            if let request = try? RefundRequest(sale: sale.id, saleAmount: amount, amount: Money(minorUnits: max(1, amount.minorUnits / 3), currency: amount.currency),
                                                reason: .changedMind, resolution: .refund, contact: nil) {
                _ = try? w.central.record(.refundRequested(request), wallMillis: w.tick())
            }
        default:
            try w.sync(i)
        }
    }
    try w.syncAll()
}

/// The state a central rebuilds from its journal alone, in memory (a copy of its directory without snapshots).
private func rebuiltFromJournal(_ w: World) throws -> LedgerState {
    let copy = TempDir("rebuild")
    let fm = FileManager.default
    try fm.removeItem(atPath: copy.path)
    try fm.copyItem(atPath: w.dir.path + "/central", toPath: copy.path)
    try fm.removeItem(atPath: copy.path + "/state")
    let rebuilt = try FileCentralStore.open(directory: copy.path, snapshotEvents: Int.max)
    defer { try? rebuilt.close() }
    #expect(rebuilt.snapshotStatistics.written == 0)
    #expect(try fm.contentsOfDirectory(atPath: copy.path + "/state").isEmpty)
    return try rebuilt.state
}

private func snapshotFiles(_ w: World) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: w.dir.path + "/central/state").sorted()
}

/// Central's state in parts holds every sale and ticket of `truth` exactly once, as `truth` has it, and every conflict record once.
private func expectPartsEqual(_ central: CentralHandler, _ truth: LedgerState, _ context: String) throws {
    var sales: [SaleId: SaleView] = [:], tickets: [TicketId: TicketView] = [:], conflicts: [ConflictRecord] = [], parts = 0
    try central.forEachStatePart { part in
        parts += 1
        for (id, v) in part.sales { #expect(sales.updateValue(v, forKey: id) == nil, "\(context): \(id) in two parts") }
        for (id, v) in part.tickets { #expect(tickets.updateValue(v, forKey: id) == nil, "\(context): \(id) in two parts") }
        conflicts += part.conflicts
    }
    #expect(sales == truth.sales, "\(context): sales in parts differ (\(parts) parts)")
    #expect(tickets == truth.tickets, "\(context): tickets in parts differ")
    #expect(conflicts.sorted() == truth.conflicts, "\(context): conflicts in parts differ")
}

/// The runs in state/ form one chain of generations from 1, with nothing superseded left over.
private func runsFormAChain(_ w: World) throws -> Bool {
    let ranges = try snapshotFiles(w).compactMap(CentralState.parseRunName).sorted { $0.lowerBound < $1.lowerBound }
    var next: UInt32 = 1
    for r in ranges {
        guard r.lowerBound == next else { return false }
        next = r.upperBound + 1
    }
    return true
}

@Suite("central snapshots")
struct CentralSnapshotTests {
    @Test("every record a flush files sits where decoding it says: a sale's events and its tickets' in its component, each request in tickets, each capture's key in duplicate keys")
    func flushesFileEachRecordByItsEvent() throws {
        // A flush files each resident record from what was noted when it became resident
        // (it decodes none again): this reads every run back and checks each against its decoded event.
        for seed in snapshotSeeds().prefix(6) {
            let w = try World(terminals: 3, snapshotEvents: Int(2 + seed % 5))
            try workload(w, seed: seed, steps: 160)
            let dir = w.dir.path + "/central"
            let identity = try CentralIdentity.decode(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/central.json"))), path: dir + "/central.json")
            let key = KeyDerivation.centralSnapshotKey(secret: identity.secret)
            let context = try w.central.withStorage { $0.recordContext }
            var filed = 0
            for name in try snapshotFiles(w) where name.hasSuffix(".pss") {
                let run = try SnapshotFile.open(path: dir + "/state/" + name, fileSystem: PosixFileSystem(), central: identity.central, key: key, verifyFrames: true)
                var sections: [SnapshotSection: [[UInt8]]] = [:]
                for section in [SnapshotSection.tickets, .duplicateKeys, .components, .loose] {
                    try run.scan(section) { r in sections[section, default: []].append(r) }
                }
                run.close()
                var tickets: [Dot: Dot] = [:]
                for r in sections[.tickets] ?? [] { tickets[try #require(SnapshotKey.decodeDot(r[0..<12]))] = try #require(SnapshotKey.decodeDot(r[12..<24])) }
                let keys = Set(sections[.duplicateKeys] ?? [])
                var requests = Set<Dot>(), captureKeys = Set<[UInt8]>()
                for r in sections[.components] ?? [] {
                    let sale = try #require(SnapshotKey.decodeDot(r[0..<12]))
                    let e = try RecordCodec.decode(Array(r[12...]), context: context)
                    let expected: Dot?
                    switch e.body {
                    case .saleCaptured(let c):
                        expected = e.dot
                        captureKeys.insert(c.duplicateKey.bytes + SnapshotKey.dot(e.dot))
                    case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s): expected = s.dot
                    case .refundRequested(let q):
                        expected = q.sale.dot
                        requests.insert(e.dot)
                        #expect(tickets[e.dot] == q.sale.dot, "seed \(seed) \(name): request \(e.dot) has no tickets entry naming its sale")
                    case .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t),
                         .refundCompleted(let t), .refundEscalated(let t), .noteAdded(let t, _): expected = tickets[t.dot]
                    case .unknown, .sequenceVoid: expected = nil
                    }
                    #expect(expected == sale, "seed \(seed) \(name): \(e.dot) filed under sale \(sale), its event says \(expected.map { "\($0)" } ?? "loose")")
                    filed += 1
                }
                #expect(Set(tickets.keys) == requests, "seed \(seed) \(name): tickets entries and filed requests differ")
                #expect(keys == captureKeys, "seed \(seed) \(name): duplicate-key entries and filed captures differ")
                for r in sections[.loose] ?? [] {
                    let e = try RecordCodec.decode(Array(r[12...]), context: context)
                    switch e.body {
                    case .refundApproved, .refundRejected, .refundCancelled, .refundCompleted, .refundEscalated, .noteAdded, .unknown: break
                    default: Issue.record("seed \(seed) \(name): \(e.dot) is loose, but its event names a sale")
                    }
                }
            }
            #expect(filed > 0, "seed \(seed): no run filed anything")
        }
    }

    @Test("central folding through snapshots every few events holds exactly the fold of its journal, and so do its terminals")
    func snapshotsAgreeWithTheJournal() throws {
        for seed in snapshotSeeds() {
            let interval = Int(2 + seed % 9)
            let w = try World(terminals: 3, snapshotEvents: interval)
            try workload(w, seed: seed, steps: 160)
            let state = try w.central.state
            let truth = try rebuiltFromJournal(w)
            let written = w.central.snapshotStatistics.written
            guard state.canonicalText == truth.canonicalText, state.conflicts == truth.conflicts, written > 3 else {
                Issue.record("seed \(seed) (snapshot every \(interval) events, \(written) written): central's state differs from the fold of its journal; replay: POSSYNC_SNAPSHOT_SEEDS=\(seed)")
                return
            }
            #expect(state.moneyInvariantViolations().isEmpty, "seed \(seed)")
            // What forwarding works through, streamed from the runs and the resident part.
            let awaiting = truth.sales.keys.filter { truth.capture(of: $0) != nil && truth.eventDots(of: $0).count == 1 }.sorted()
            #expect(try w.central.salesAwaitingOutcome() == awaiting, "seed \(seed)")
            // The state in parts (what the nightly report streams): each entity once, exact, every conflict once.
            try expectPartsEqual(w.central, truth, "seed \(seed)")
            // What central decides from (its resident part, loaded from disk as needed) is exact for each entity.
            try w.reopenCentral()
            try expectPartsEqual(w.central, truth, "seed \(seed), reopened")
            for (id, view) in truth.sales.sorted(by: { $0.key < $1.key }) where try w.central.state(around: .sale(id)).sales[id] != view {
                Issue.record("seed \(seed): \(id) as central decides from it differs from the fold of its journal")
                return
            }
            for (id, view) in truth.tickets.sorted(by: { $0.key < $1.key }) where try w.central.state(around: .ticket(id)).tickets[id] != view {
                Issue.record("seed \(seed): \(id) as central decides from it differs from the fold of its journal")
                return
            }
            for (i, t) in w.terminals.enumerated() where t.state.canonicalText != state.canonicalText {
                Issue.record("seed \(seed): t\(i + 1) differs from central")
            }
            // Reopened, central starts from its newest snapshot and replays only the journal after it.
            try w.reopenCentral()
            #expect(try w.central.state.canonicalText == truth.canonicalText, "seed \(seed)")
            #expect(try w.central.salesAwaitingOutcome() == awaiting, "seed \(seed): after reopening")
            let files = try snapshotFiles(w)
            #expect(try runsFormAChain(w), "seed \(seed): runs \(files)")
        }
    }

    @Test("memory holds only what was touched since the last snapshot; a decision on a sale only on disk loads it and is checked against it")
    func decisionsOnEvictedSales() throws {
        let w = try World(terminals: 2, snapshotEvents: 4)
        var rng = Rng(state: 7)
        let sale = try w.capture(0, 5000, code: wechatCode(&rng))
        let ticket = try w.requestRefund(0, sale: sale, saleMinor: 5000, 2000)
        for _ in 0..<10 { _ = try w.capture(1, 100, code: wechatCode(&rng)) }
        try w.sync(0)
        try w.sync(1)
        #expect(w.central.snapshotStatistics.written >= 1)
        #expect(w.central.snapshotStatistics.eventsSinceSnapshot < 4)
        // Completing an unapproved ticket of an unconfirmed sale is refused from the state on disk.
        #expect(throws: SyncError.self) { try w.central.record(.refundCompleted(ticket), wallMillis: w.tick()) }
        try w.central.record(.saleConfirmed(sale), wallMillis: w.tick())
        try w.central.record(.refundApproved(ticket, .originalPayment), wallMillis: w.tick())
        for _ in 0..<6 { _ = try w.capture(1, 100, code: wechatCode(&rng)) }
        try w.sync(1)  // evicts the sale again
        try w.central.record(.refundCompleted(ticket), wallMillis: w.tick())
        let around = try w.central.state(around: .ticket(ticket))
        #expect(around.tickets[ticket]?.status == .completed)
        #expect(around.sales[sale]?.refundedMinor == 2000)
        #expect(try w.central.state.tickets[ticket]?.status == .completed)
        #expect(try w.central.context(of: .sale(sale)).covers(sale.dot))
    }

    @Test("a payment code seen again after its first capture went to disk is still a duplicate")
    func duplicateAcrossSnapshots() throws {
        let w = try World(terminals: 2, snapshotEvents: 3)
        var rng = Rng(state: 11)
        let code = wechatCode(&rng)
        let first = try w.capture(0, 700, code: code)
        try w.sync(0)
        for _ in 0..<8 { _ = try w.capture(1, 100, code: wechatCode(&rng)) }
        try w.sync(1)  // several snapshots: the first capture is only on disk
        let second = try w.capture(1, 700, code: code)
        try w.sync(1)
        // Central decides from its resident part: the twin is known to be a duplicate, so never forwarded.
        #expect(try w.central.state(around: .sale(second)).sales[second]?.status == .voidDuplicate)
        #expect(throws: SyncError.self) { try w.central.record(.saleConfirmed(second), wallMillis: w.tick()) }
        let state = try w.central.state
        #expect(state.sales[first]?.status == .captured)
        #expect(state.sales[second]?.status == .voidDuplicate)
        #expect(state.conflicts.contains { $0.kind == .duplicatePaymentCode })
        #expect(try rebuiltFromJournal(w).canonicalText == state.canonicalText)
    }

    @Test("re-sent events covered by a snapshot are recognised; a rewritten one is refused and flagged")
    func digestsInTheSnapshot() throws {
        let w = try World(terminals: 1, snapshotEvents: 2)
        var rng = Rng(state: 3)
        for _ in 0..<6 { _ = try w.capture(0, 100, code: wechatCode(&rng)) }
        try w.sync(0)
        #expect(w.central.snapshotStatistics.written >= 1)
        let t = w.terminals[0]
        let records = try (1...6).map { (seq: UInt64) in try #require(try t.ownRecord(seq: seq)) }
        let frames = [try FrameSealer(dictionary: ledgerDictionary, key: t.enrollment.journalKey).seal(records, firstSequence: 1).bytes]
        let replay = w.central.handle(.push(.init(terminal: t.terminal, dictionaryID: ledgerDictionary.id, keyID: t.enrollment.journalKey.id, frames: frames)))
        guard case .ack(let ack) = replay else { Issue.record("re-sent events refused: \(replay)"); return }
        #expect(ack.accepted == 0 && ack.duplicates == 6 && ack.acknowledged == 6)
        for seq in 1...6 { #expect(try w.central.digest(of: Dot(replica: t.terminal, seq: UInt64(seq))) != nil) }
        #expect(try w.central.digest(of: Dot(replica: t.terminal, seq: 7)) == nil)
        // The same sequence number with other bytes: seq 2, sealed anew.
        var other = Rng(state: 99)
        let forged = try RecordCodec.encode(Event(dot: Dot(replica: t.terminal, seq: 2), hlc: HLCTimestamp(millis: 1, logical: 0), context: VersionVector(),
                                                  body: .saleCaptured(SaleCapture(amount: cny(100), paymentCode: wechatCode(&other), merchantKey: t.enrollment.ledgerMerchantKey))))
        let sealed = try FrameSealer(dictionary: ledgerDictionary, key: t.enrollment.journalKey).seal([forged], firstSequence: 2)
        let refused = w.central.handle(.push(.init(terminal: t.terminal, dictionaryID: ledgerDictionary.id, keyID: t.enrollment.journalKey.id, frames: [sealed.bytes])))
        guard case .refusal(let r) = refused else { Issue.record("a rewritten event was accepted"); return }
        #expect(r.code == "rewrittenHistory")
        #expect(w.central.flaggedTerminals.rewroteHistory == [t.terminal])
    }

    @Test("flushes write only what was touched; runs are merged so their number stays logarithmic")
    func compaction() throws {
        let w = try World(terminals: 2, snapshotEvents: 2)
        var rng = Rng(state: 21)
        for round in 0..<120 {
            _ = try w.capture(round % 2, 100 + Int64(round), code: wechatCode(&rng))
            try w.sync(round % 2)
        }
        let stats = w.central.snapshotStatistics
        #expect(stats.written >= 50)
        #expect(stats.compactions >= 40)
        #expect(stats.runs <= 8, "\(stats.runs) runs after \(stats.written) flushes")
        #expect(try runsFormAChain(w))
        #expect(try w.central.state.canonicalText == rebuiltFromJournal(w).canonicalText)
        try w.reopenCentral()
        #expect(w.central.snapshotStatistics.runs == stats.runs)
        #expect(try w.central.state.sales.count == 120)
    }

    @Test("a damaged, incomplete or foreign snapshot run is set aside and the journal replayed: same state; a run ahead of the journal refuses the open until recovery")
    func damagedSnapshots() throws {
        let w = try World(terminals: 2, snapshotEvents: 5)
        try workload(w, seed: 42, steps: 80)
        let truth = try w.central.state
        let dir = w.dir.path + "/central/state"
        let fm = FileManager.default
        func newestRun() throws -> String { try #require(try snapshotFiles(w).filter { $0.hasSuffix(".pss") }.last) }
        func reopen() throws { w.central = try FileCentralStore.open(directory: w.dir.path + "/central", snapshotEvents: w.snapshotEvents) }

        // One flipped bit in the middle of the newest run.
        try w.central.close()
        var name = try newestRun()
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
        bytes[bytes.count / 2] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
        try reopen()
        #expect(try w.central.state.canonicalText == truth.canonicalText)
        #expect(try snapshotFiles(w).contains(name + ".damaged"))
        #expect(try runsFormAChain(w))

        // The oldest run cut short (no trailer): every later run depends on it, so all go and the journal is replayed.
        try w.central.close()
        name = try #require(try snapshotFiles(w).first { $0.hasSuffix(".pss") })
        bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))
        try Data(bytes.prefix(bytes.count - 9)).write(to: URL(fileURLWithPath: dir + "/" + name))
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/run.tmp"))
        try reopen()
        #expect(try w.central.state.canonicalText == truth.canonicalText)
        #expect(!(try snapshotFiles(w).contains("run.tmp")))
        #expect(try runsFormAChain(w))

        // Runs from a later point put beside an older journal (a journal restored from a backup): set aside.
        try w.central.close()
        let backup = TempDir("backup")
        try fm.removeItem(atPath: backup.path)
        try fm.copyItem(atPath: w.dir.path + "/central", toPath: backup.path)
        try reopen()
        try workload(w, seed: 43, steps: 60)
        try w.central.close()
        for f in try fm.contentsOfDirectory(atPath: backup.path + "/state") { try fm.removeItem(atPath: backup.path + "/state/" + f) }
        for f in try snapshotFiles(w) where f.hasSuffix(".pss") { try fm.copyItem(atPath: dir + "/" + f, toPath: backup.path + "/state/" + f) }
        // The runs prove positions the journal lacks were durable: open refuses and changes nothing.
        let stateBefore = try fm.contentsOfDirectory(atPath: backup.path + "/state").sorted()
        #expect {
            _ = try FileCentralStore.open(directory: backup.path, snapshotEvents: w.snapshotEvents)
        } throws: { error in
            guard let e = error as? SyncError else { return false }
            return e.code == .journal && e.message.contains("behindEvidence") && e.message.contains("snapshot run") && e.message.contains("central recover")
        }
        #expect(try fm.contentsOfDirectory(atPath: backup.path + "/state").sorted() == stateBefore)
        // Recovery is explicit: the runs are set aside and the loss recorded.
        let recovery = try FileCentralStore.recover(directory: backup.path, snapshotEvents: w.snapshotEvents)
        #expect(!recovery.runsSetAside.isEmpty)
        #expect(recovery.losses.contains { $0.kind == .recovered })
        let restored = try FileCentralStore.open(directory: backup.path, snapshotEvents: w.snapshotEvents)
        #expect(try restored.state.canonicalText == truth.canonicalText)
        #expect(try fm.contentsOfDirectory(atPath: backup.path + "/state").contains { $0.hasSuffix(".ahead") })
        #expect(restored.lossRecords.contains { $0.kind == .recovered })
        try restored.close()
        try reopen()

        // Another central's run is refused by its id, before any key is tried.
        let other = try World(terminals: 1, snapshotEvents: 2)
        var rng = Rng(state: 5)
        for _ in 0..<4 { _ = try other.capture(0, 100, code: wechatCode(&rng)) }
        try other.sync(0)
        let foreign = try #require(try snapshotFiles(other).first { $0.hasSuffix(".pss") })
        let key = KeyDerivation.centralSnapshotKey(secret: KeyDerivation.randomSecret())
        #expect {
            _ = try SnapshotFile.open(path: other.dir.path + "/central/state/" + foreign, fileSystem: PosixFileSystem(), central: w.central.centralID, key: key, verifyFrames: true)
        } throws: { error in
            (error as? SyncError).map { $0.message.contains("another central") && $0.location?.contains(foreign) == true } ?? false
        }
    }

    @Test("an I/O error at any operation of a flush or a merge loses nothing: central goes on (or reopens) and holds the fold of its journal")
    func faultsDuringFlushes() throws {
        var fired = 0, wentOn = 0
        for n in 1...400 {
            let disk = SimulatedFileSystem(seed: UInt64(n))
            var central = try FileCentralStore.create(directory: "/c", fileSystem: disk, snapshotEvents: 3)
            let e = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "shop")
            let t = try TerminalReplica.initialize(directory: "/t", enrollment: e, fileSystem: SimulatedFileSystem(seed: 7))
            var rng = Rng(state: UInt64(n))
            var now = baseMillis
            func capture() throws {
                now += 1000
                _ = try t.record(.saleCaptured(try SaleCapture(amount: cny(100), paymentCode: wechatCode(&rng), merchantKey: e.ledgerMerchantKey)), wallMillis: now)
            }
            // Runs on disk first (flushes every 3 events, merges), then a push whose flush and merge meet the fault.
            for _ in 0..<4 {
                for _ in 0..<2 { try capture() }
                _ = try t.sync(via: InProcessTransport(central: central), wallMillis: now)
            }
            for _ in 0..<3 { try capture() }
            _ = central.snapshotStatistics  // the earlier steps' merges have ended: the n-th operation is this step's
            disk.failOperation(Set(SimulatedFileSystem.Operation.allCases), occurrence: n)
            _ = try? t.sync(via: InProcessTransport(central: central), wallMillis: now)
            _ = central.snapshotStatistics  // the step's merges (on a second thread) end with it
            guard !disk.hasPendingFaults else { break }  // the step has fewer operations than n: every one was tried
            fired += 1
            // A failed flush does not stop central; a failed journal write poisons the journal until it is reopened (fsyncgate).
            for _ in 0..<3 { _ = try? t.sync(via: InProcessTransport(central: central), wallMillis: now) }
            if (try? central.state)?.canonicalText == t.state.canonicalText {
                wentOn += 1
            } else {
                try? central.close()
                central = try FileCentralStore.open(directory: "/c", fileSystem: disk, snapshotEvents: 3)
                for _ in 0..<3 { _ = try t.sync(via: InProcessTransport(central: central), wallMillis: now) }
            }
            let state = try central.state
            guard state.canonicalText == t.state.canonicalText, state.sales.count == 11 else {
                Issue.record("fault at operation \(n): central (\(state.sales.count) sales) differs from the terminal")
                return
            }
            try central.close()
            let reopened = try FileCentralStore.open(directory: "/c", fileSystem: disk, snapshotEvents: 3)
            #expect(try reopened.state.canonicalText == state.canonicalText, "fault at operation \(n): reopened")
            try reopened.close()
        }
        #expect(fired > 20, "faults were injected into \(fired) operations")
        #expect(wentOn > 0, "some faults hit only the flush, and central went on without a reopen")
        print("flush faults: \(fired) operations failed in turn; central went on without a reopen after \(wentOn)")
    }
}
