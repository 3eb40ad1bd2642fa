import Foundation
import Testing
@testable import PosJournal
@testable import PosLedger
@_spi(Testing) @testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire
import PosTestSupport

/// A merchant over `days` days: terminal 2 sells 6 sales a day (central confirms
/// or declines each, one refund request a day), terminal 1 (the subject, on a
/// simulated disk, relay scope of a 2-day window + 72 h, small segments) sells
/// one a day and syncs daily. Terminal 2 reuses one payment code on day 0 and
/// day 4, so from day 5 on the day-0 capture is out of scope but in the key
/// group of an in-scope sale until day 9.
final class ScopeWorld: @unchecked Sendable {
    static let windowDays = 2
    let centralDisk = SimulatedFileSystem(seed: 1)
    let central: CentralHandler
    let e1: Enrollment
    let other: TerminalReplica
    var disk = SimulatedFileSystem(seed: 7)
    var subject: TerminalReplica
    /// The world's clock, central's too from its creation (a central stamped with the machine's clock would
    /// give its events timestamps months after the world's).
    final class Clock: @unchecked Sendable { var millis = baseMillis }
    let clock = Clock()
    var now: Int64 { get { clock.millis } set { clock.millis = newValue } }
    var rng: Rng
    let options: TerminalOptions
    let reusedCode: PaymentCode
    /// Sale ids of terminal 2's captures with the reused code (day 0, last day).
    var reusedSales: [SaleId] = []
    /// Sale ids of the subject's own captures.
    var ownSales: [SaleId] = []

    init(seed: UInt64, segmentBytes: Int = 2_048, retentionMillis: Int64 = TerminalOptions.retentionMillisDefault) throws {
        rng = Rng(state: seed)
        let clock = self.clock
        central = try FileCentralStore.create(directory: "/c", fileSystem: centralDisk, environment: CentralEnvironment(wallMillis: { clock.millis }),
                                              snapshotEvents: 1 << 20)
        e1 = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "shop")
        let e2 = try central.enroll(terminal: try ReplicaId.terminal(2), merchant: "shop")
        options = TerminalOptions(segmentBytesMax: segmentBytes, retentionMillis: retentionMillis, scope: try RelayScope(returnWindowDays: Self.windowDays))
        subject = try TerminalReplica.initialize(directory: "/t1", enrollment: e1, fileSystem: disk, options: options)
        other = try TerminalReplica.initialize(directory: "/t2", enrollment: e2, fileSystem: SimulatedFileSystem(seed: 8))
        reusedCode = wechatCode(&rng)
    }

    func tick(_ millis: Int64 = 1000) -> Int64 { now += millis; return now }

    /// One day of trade; `subjectSyncs` false leaves the subject offline that day.
    func day(_ d: Int, last: Bool, subjectSyncs: Bool = true) throws {
        let dayStart = baseMillis + Int64(d) * Millis.perDay
        now = max(now, dayStart)
        var sales: [(SaleId, Int64)] = []
        for i in 0..<6 {
            let minor = Int64(1000 + 100 * i + d)
            let code = (i == 0 && (d == 0 || d == 4)) ? reusedCode : wechatCode(&rng)
            let capture = try SaleCapture(amount: cny(minor), paymentCode: code, merchantKey: other.enrollment.ledgerMerchantKey)
            let sale = SaleId(try other.record(.saleCaptured(capture), wallMillis: tick(Millis.perHour)).dot)
            if code == reusedCode { reusedSales.append(sale) }
            sales.append((sale, minor))
        }
        _ = try other.sync(via: InProcessTransport(central: central), wallMillis: tick())
        for (i, (sale, _)) in sales.enumerated() where !(d == 4 && i == 0) {  // the reused code's second capture is void-duplicate: never forwarded
            _ = try central.record(i % 3 == 2 ? .saleDeclined(sale) : .saleConfirmed(sale), wallMillis: tick())
        }
        _ = try other.sync(via: InProcessTransport(central: central), wallMillis: tick())
        let request = try RefundRequest(sale: sales[1].0, saleAmount: cny(sales[1].1), amount: cny(500), reason: .wrongSize, resolution: .refund, contact: nil)
        _ = try other.record(.refundRequested(request), wallMillis: tick())
        _ = try other.sync(via: InProcessTransport(central: central), wallMillis: tick())
        let own = try SaleCapture(amount: cny(777), paymentCode: wechatCode(&rng), merchantKey: e1.ledgerMerchantKey)
        ownSales.append(SaleId(try subject.record(.saleCaptured(own), wallMillis: tick()).dot))
        if subjectSyncs { _ = try subject.sync(via: InProcessTransport(central: central), wallMillis: tick()) }
    }

    func run(days: Int, from first: Int = 0, subjectSyncsFrom: Int = 0) throws {
        for d in first..<days { try day(d, last: d == days - 1, subjectSyncs: d >= subjectSyncsFrom) }
    }

    /// Opens the subject's store on `fs` (a copy of its disk, or its disk).
    func open(_ fs: SimulatedFileSystem) throws -> TerminalReplica {
        try TerminalReplica.open(directory: "/t1", fileSystem: fs, options: options)
    }

    /// The state a store on `fs` folds to from its journals alone: a copy without the checkpoint, opened.
    func journalFold(_ fs: SimulatedFileSystem, seed: UInt64 = 99) throws -> (state: LedgerState, report: TerminalReplica.OpenReport, knowledge: VersionVector) {
        let copy = fs.copy(seed: seed)
        if copy.fileExists("/t1/" + TerminalCheckpoint.fileName) { try copy.removeFile("/t1/" + TerminalCheckpoint.fileName) }
        let t = try open(copy)
        defer { try? t.close() }
        return (t.state, t.openReport, t.knowledge)
    }
}

/// Whether two states are equal (a function, so a failure does not print both states whole).
func sameState(_ a: LedgerState, _ b: LedgerState) -> Bool { a == b }

/// The knowledge vector the spec gives a fold of the journals on `fs` (without the own entry): per replica, the
/// largest sequence number of the kind-1 events of a position above 0 ("Roles and storage"), read here
/// straight from the inbound journal's records.
func specKnowledge(_ fs: SimulatedFileSystem, _ e: Enrollment) throws -> [String] {
    guard let first = try Journal.oldestSegmentBase(directory: "/t1/inbound", fileSystem: fs) else { return [] }
    let reader = try JournalReader(directory: "/t1/inbound", fileSystem: fs, dictionaries: [ledgerDictionary], key: e.journalKey, from: first)
    defer { reader.close() }
    var v = VersionVector()
    while let (seq, record) = try reader.next() {
        guard case .pulled(let position, let bytes) = try InboundRecord.decode(record, location: "inbound seq \(seq)"), position > 0 else { continue }
        v.add(try RecordCodec.decode(bytes, context: e.recordContext).dot)
    }
    return v.entries.filter { $0.replica != e.terminal }.map { "\($0.replica):\($0.seq)" }
}

/// The floor a terminal's journals record (inbound kind 9).
private func recordedFloor(_ t: TerminalReplica) -> Int64 { Int64(t.scopeFloorMillis) }

@Suite("terminal checkpoint and compaction")
struct TerminalCheckpointTests {
    @Test("a reopened terminal reads its checkpoint and equals the fold of its journals; scope kept, old sales dropped, segments retired")
    func checkpointEqualsJournalFold() throws {
        let seed: UInt64 = 11
        let w = try ScopeWorld(seed: seed)
        try w.run(days: 8)
        let live = w.subject.state
        try w.subject.close()
        let reopened = try w.open(w.disk)
        #expect(reopened.openReport.usedCheckpoint, "seed \(seed): \(reopened.openReport)")
        #expect(sameState(reopened.state, live), "seed \(seed): reopened state differs from the live one")
        let fold = try w.journalFold(w.disk)
        #expect(!fold.report.usedCheckpoint)
        #expect(sameState(reopened.state, fold.state), "seed \(seed): checkpoint state differs from the fold of the journals")

        let floor = recordedFloor(reopened)
        #expect(floor > 0, "seed \(seed): compaction never raised the floor")
        let central = try w.central.state
        var inScope = 0
        for (id, view) in central.sales {
            guard let capture = central.capture(of: id) else { continue }
            let holds = RelayScope.holds(capture: capture.hlc, floorMillis: floor)
            if holds {
                // Every in-scope sale is held and decided as central decides it.
                inScope += 1
                #expect(reopened.state.sales[id] == view, "seed \(seed): sale \(id) in scope differs from central's")
                for t in view.tickets { #expect(reopened.state.tickets[t] == central.tickets[t], "seed \(seed): ticket \(t)") }
            } else if id.dot.replica != w.e1.terminal && !w.reusedSales.contains(id) {
                #expect(reopened.state.sales[id] == nil, "seed \(seed): sale \(id) left the scope but is still held")
            }
        }
        #expect(inScope > 0)
        // The key group of day 4's reused code: the day-0 capture stays, with its outcome.
        let old = w.reusedSales[0]
        #expect(!RelayScope.holds(capture: central.capture(of: old)!.hlc, floorMillis: floor))
        #expect(reopened.state.sales[old]?.status == central.sales[old]?.status, "seed \(seed): the old capture of a reused code was dropped")
        #expect(reopened.state.conflicts.contains { $0.events.contains(old.dot) } == central.conflicts.contains { $0.events.contains(old.dot) })
        // Own sales stay (retention, not the scope, decides).
        for s in w.ownSales { #expect(reopened.state.sales[s] != nil, "seed \(seed): own sale \(s) dropped") }
        // The day-0 capture no longer pins the inbound journal: it was carried forward (appended again) and the
        // segment that brought it retired, while it is still held (checked above) and the journals still fold to it.
        let oldInbound = try w.disk.listDirectory("/t1/inbound").filter { $0.hasSuffix(SegmentName.suffix) }.count
        #expect(try Journal.oldestSegmentBase(directory: "/t1/inbound", fileSystem: w.disk)! > 1,
                "seed \(seed): the inbound segment of a long-kept partner was not retired (\(oldInbound) segments)")
        // Four days on, day 4's sale left the scope too: both go, and the old inbound segments with them.
        try reopened.close()
        w.subject = try w.open(w.disk)
        try w.run(days: 12, from: 8)
        try w.subject.close()
        let later = try w.open(w.disk)
        defer { try? later.close() }
        #expect(later.openReport.usedCheckpoint)
        #expect(later.state.sales[old] == nil && later.state.sales[w.reusedSales[1]] == nil, "seed \(seed): sales out of scope still held")
        #expect(sameState(later.state, try w.journalFold(w.disk).state), "seed \(seed): checkpoint state differs from the fold of the journals")
        #expect(try Journal.oldestSegmentBase(directory: "/t1/inbound", fileSystem: w.disk)! > 1, "seed \(seed): no inbound segment retired")
        for s in w.ownSales { #expect(later.state.sales[s] != nil, "seed \(seed): own sale \(s) dropped") }
    }

    @Test("a selling terminal stays bounded: own segments retire past retention, its own sales' outcomes are carried forward, old inbound segments go")
    func sellingTerminalStaysBounded() throws {
        let seed: UInt64 = 14
        let retentionDays = 3
        let w = try ScopeWorld(seed: seed, retentionMillis: Int64(retentionDays) * Millis.perDay)
        func segments(_ journal: String) throws -> Int { try w.disk.listDirectory("/t1/" + journal).filter { $0.hasSuffix(SegmentName.suffix) }.count }
        var counts: [Int: (inbound: Int, outbound: Int)] = [:]
        for d in 0..<30 {
            try w.day(d, last: d == 29)
            // Central confirms the subject's sale of the day: the next sync pulls its outcome.
            _ = try w.central.record(.saleConfirmed(w.ownSales.last!), wallMillis: w.tick())
            if d == 14 || d == 29 { counts[d] = (try segments("inbound"), try segments("outbound")) }
        }
        _ = try w.subject.sync(via: InProcessTransport(central: w.central), wallMillis: w.tick())  // the last outcome
        let live = w.subject.state
        let liveKnowledge = w.subject.knowledge
        try w.subject.close()
        let reopened = try w.open(w.disk)
        defer { try? reopened.close() }
        #expect(reopened.openReport.usedCheckpoint, "seed \(seed): \(reopened.openReport)")
        #expect(sameState(reopened.state, live), "seed \(seed): reopened state differs from the live one")
        #expect(reopened.knowledge == liveKnowledge, "seed \(seed): knowledge vector differs after a reopen")
        #expect(sameState(reopened.state, try w.journalFold(w.disk).state), "seed \(seed): checkpoint state differs from the fold of the journals")
        // Own sales: those in retired segments (acknowledged, older than the scope's span of 2 days + 72 h, which is
        // longer than the retention) are gone with their outcomes; the others are held whole and decided as central.
        let span = try RelayScope(returnWindowDays: ScopeWorld.windowDays).spanMillis
        let oldestOwn = try Journal.oldestSegmentBase(directory: "/t1/outbound", fileSystem: w.disk) ?? 0
        #expect(oldestOwn > 1, "seed \(seed): no own segment retired after 30 days with a \(retentionDays)-day retention")
        let central = try w.central.state
        var heldOwn = 0
        for s in w.ownSales {
            if s.dot.seq < oldestOwn {
                #expect(Int64(central.capture(of: s)!.hlc.millis) < w.now - span, "seed \(seed): own sale \(s) within the scope's span retired")
                #expect(reopened.state.sales[s] == nil, "seed \(seed): own sale \(s) retired but still held")
            } else {
                #expect(reopened.state.sales[s] == central.sales[s], "seed \(seed): own sale \(s) held differs from central's")
                heldOwn += 1
            }
        }
        #expect(heldOwn >= 2)
        // Bounded: the journals do not grow from day 14 to day 29 (a segment or two of slack for where a day falls).
        let mid = counts[14]!, end = counts[29]!
        #expect(end.inbound <= mid.inbound + 2, "seed \(seed): inbound segments grew from \(mid.inbound) to \(end.inbound)")
        #expect(end.outbound <= mid.outbound + 1, "seed \(seed): outbound segments grew from \(mid.outbound) to \(end.outbound)")
    }

    @Test("a code the terminal captured long ago, retired by retention, scanned again elsewhere: central sends the old capture back and the terminal decides the duplicate as central")
    func retiredOwnCaptureStillCatchesReuse() throws {
        let seed: UInt64 = 15
        let w = try ScopeWorld(seed: seed, segmentBytes: 400, retentionMillis: Millis.perDay)
        let code = wechatCode(&w.rng)
        let first = SaleId(try w.subject.record(.saleCaptured(try SaleCapture(amount: cny(4_200), paymentCode: code, merchantKey: w.e1.ledgerMerchantKey)),
                                                wallMillis: w.tick()).dot)
        _ = try w.subject.sync(via: InProcessTransport(central: w.central), wallMillis: w.tick())
        _ = try w.central.record(.saleConfirmed(first), wallMillis: w.tick())
        try w.run(days: 12, from: 1)
        let oldestOwn = try Journal.oldestSegmentBase(directory: "/t1/outbound", fileSystem: w.disk) ?? 0
        #expect(oldestOwn > first.dot.seq, "seed \(seed): the first own sale's segment was not retired (outbound starts at \(oldestOwn))")
        #expect(w.subject.state.sales[first] == nil, "seed \(seed): the retired own sale is still held")
        // Another shop takes the same code: central voids the later capture as a duplicate of the old one.
        let reuse = SaleId(try w.other.record(.saleCaptured(try SaleCapture(amount: cny(900), paymentCode: code, merchantKey: w.other.enrollment.ledgerMerchantKey)),
                                              wallMillis: w.tick()).dot)
        _ = try w.other.sync(via: InProcessTransport(central: w.central), wallMillis: w.tick())
        let central = try w.central.state
        #expect(central.sales[reuse]?.status == .voidDuplicate, "seed \(seed): central did not void the reuse: \(String(describing: central.sales[reuse]))")
        _ = try w.subject.sync(via: InProcessTransport(central: w.central), wallMillis: w.tick())
        #expect(w.subject.state.sales[reuse] == central.sales[reuse], "seed \(seed): the terminal decides the reused code otherwise than central")
        #expect(w.subject.state.capture(of: first) != nil, "seed \(seed): central did not send the retired own capture back as a partner")
        #expect(w.subject.state.conflicts.filter { $0.events.contains(reuse.dot) } == central.conflicts.filter { $0.events.contains(reuse.dot) })
        // And the same after a reopen from the checkpoint, and from the journals alone.
        let live = w.subject.state
        try w.subject.close()
        let reopened = try w.open(w.disk)
        defer { try? reopened.close() }
        #expect(reopened.openReport.usedCheckpoint, "seed \(seed): \(reopened.openReport)")
        #expect(sameState(reopened.state, live), "seed \(seed): reopened state differs from the live one")
        #expect(sameState(reopened.state, try w.journalFold(w.disk).state), "seed \(seed): checkpoint state differs from the fold of the journals")
    }

    @Test("open reads the checkpoint and only the records after it, not the covered history")
    func openReadsOnlyTail() throws {
        let w = try ScopeWorld(seed: 12)
        try w.run(days: 8)
        try w.subject.close()
        var t = try w.open(w.disk)
        let entries = t.openReport.recordsRead
        #expect(t.openReport.usedCheckpoint && t.openReport.tailRecords == 0, "\(t.openReport)")
        let total = Int(t.lastSequence) + Int(t.pullCursor)
        #expect(entries < total, "read \(entries) records of \(total) ever written")
        // Own events after the checkpoint: read as the tail, and nothing before it.
        for _ in 0..<5 {
            let c = try SaleCapture(amount: cny(300), paymentCode: wechatCode(&w.rng), merchantKey: w.e1.ledgerMerchantKey)
            _ = try t.record(.saleCaptured(c), wallMillis: w.tick())
        }
        try t.close()
        t = try w.open(w.disk)
        defer { try? t.close() }
        #expect(t.openReport.usedCheckpoint)
        #expect(t.openReport.tailRecords == 5, "\(t.openReport)")
        #expect(t.openReport.recordsRead == entries + 5, "\(t.openReport)")
    }

    @Test("open never writes; the first own event after the tail grew past checkpointTailRecordsMax writes a checkpoint")
    func longTailWritesCheckpoint() throws {
        let w = try ScopeWorld(seed: 13)
        var options = w.options
        options.checkpointTailRecordsMax = 3
        try w.run(days: 2)
        for _ in 0..<4 {
            let c = try SaleCapture(amount: cny(300), paymentCode: wechatCode(&w.rng), merchantKey: w.e1.ledgerMerchantKey)
            _ = try w.subject.record(.saleCaptured(c), wallMillis: w.tick())
        }
        try w.subject.close()
        let before = w.disk.contents(of: "/t1/" + TerminalCheckpoint.fileName)
        var t = try TerminalReplica.open(directory: "/t1", fileSystem: w.disk, options: options)
        #expect(t.openReport.tailRecords == 4)
        try t.close()
        #expect(w.disk.contents(of: "/t1/" + TerminalCheckpoint.fileName) == before, "an open wrote the checkpoint")
        t = try TerminalReplica.open(directory: "/t1", fileSystem: w.disk, options: options)
        #expect(t.openReport.tailRecords == 4)
        let c = try SaleCapture(amount: cny(300), paymentCode: wechatCode(&w.rng), merchantKey: w.e1.ledgerMerchantKey)
        _ = try t.record(.saleCaptured(c), wallMillis: w.tick())
        try t.close()
        t = try TerminalReplica.open(directory: "/t1", fileSystem: w.disk, options: options)
        #expect(t.openReport.usedCheckpoint && t.openReport.tailRecords == 0, "\(t.openReport)")
        try t.close()
    }

    @Test("a damaged or missing checkpoint falls back to the fold of the journals, with the same state")
    func damagedCheckpointFallsBack() throws {
        let w = try ScopeWorld(seed: 14)
        try w.run(days: 9)
        try w.subject.close()
        let path = "/t1/" + TerminalCheckpoint.fileName
        let good = try w.open(w.disk)
        let expected = good.state
        try good.close()
        let bytes = try #require(w.disk.contents(of: path))
        var rng = Rng(state: 14)
        var offsets = Array(0..<min(bytes.count, 200))  // the header and the meta frame, every byte
        for _ in 0..<60 { offsets.append(Int.random(in: 0..<bytes.count, using: &rng)) }
        for (i, offset) in offsets.enumerated() {
            for damage in [Damage.flip, Damage.truncate] {
                guard let damaged = damage.apply(to: bytes, at: offset) else { continue }
                let copy = w.disk.copy(seed: UInt64(i))
                copy.install(path, contents: damaged)
                let t = try w.open(copy)
                #expect(!t.openReport.usedCheckpoint, "offset \(offset) \(damage): a damaged checkpoint was used")
                #expect(t.openReport.note?.contains("checkpoint.psc") == true, "offset \(offset) \(damage): \(t.openReport)")
                #expect(sameState(t.state, expected), "offset \(offset) \(damage) (seed 14): state differs after the fallback")
                // The next own event writes a good checkpoint again.
                let c = try SaleCapture(amount: cny(300), paymentCode: wechatCode(&rng), merchantKey: w.e1.ledgerMerchantKey)
                _ = try t.record(.saleCaptured(c), wallMillis: w.now + 1)
                let after = t.state
                try t.close()
                let again = try w.open(copy)
                #expect(again.openReport.usedCheckpoint, "offset \(offset) \(damage): no new checkpoint after the fallback")
                #expect(sameState(again.state, after))
                try again.close()
            }
        }
        let copy = w.disk.copy(seed: 1)
        try copy.removeFile(path)
        let t = try w.open(copy)
        #expect(!t.openReport.usedCheckpoint && sameState(t.state, expected))
        try t.close()
    }

    @Test("power loss at every file-system operation of a sync that compacts: reopen equals the fold of what is held")
    func powerLossDuringCompaction() throws {
        let w = try ScopeWorld(seed: 15)
        // The subject is offline from day 2: its next sync pulls ten days and compacts.
        try w.run(days: 12, subjectSyncsFrom: 100)
        try w.subject.close()
        let before = try w.open(w.disk)
        let heldBefore = before.state
        let ownLast = before.lastSequence
        try before.close()
        var n = 1
        var completed = false
        while !completed {
            let disk = w.disk.copy(seed: UInt64(n))
            let t = try w.open(disk)
            disk.cutPower(afterOperations: n)
            do {
                _ = try t.sync(via: InProcessTransport(central: w.central), wallMillis: w.now + 1000)
            } catch {}
            try? t.close()
            completed = !disk.isPowerOff
            disk.crash()
            let reopened = try w.open(disk)
            let fold = try w.journalFold(disk, seed: UInt64(n) + 1000)
            #expect(sameState(reopened.state, fold.state), "power cut at operation \(n) (seed 15): reopened state is not the fold of what is held")
            #expect(reopened.lastSequence == ownLast, "operation \(n): own events lost")
            let floor = recordedFloor(reopened)
            for (id, view) in heldBefore.sales {
                guard let c = heldBefore.capture(of: id), RelayScope.holds(capture: c.hlc, floorMillis: floor) || id.dot.replica == w.e1.terminal else { continue }
                #expect(reopened.state.sales[id] != nil, "operation \(n): sale \(id) in scope lost (was \(view.status))")
            }
            if completed {
                let oldest = try Journal.oldestSegmentBase(directory: "/t1/inbound", fileSystem: disk) ?? 0
                #expect(floor > 0 && oldest > 1,
                        "the completed sync did not compact (floor \(floor))")
            }
            try reopened.close()
            n += 1
            #expect(n < 2_000, "the sync never completed")
            if n >= 2_000 { break }
        }
        #expect(n > 10)
    }

    @Test("power loss at every operation of a compaction alone (floor raise, checkpoint, restatement, retirement)")
    func powerLossDuringCompactCall() throws {
        let w = try ScopeWorld(seed: 16)
        var noScope = w.options
        noScope.scope = nil
        // Pull ten days without a scope (nothing compacted), then open with the scope and write: the write compacts.
        try w.subject.close()
        w.subject = try TerminalReplica.open(directory: "/t1", fileSystem: w.disk, options: noScope)
        try w.run(days: 10)
        try w.subject.close()
        let pristine = w.disk.copy(seed: 3)
        #expect(try Journal.oldestSegmentBase(directory: "/t1/inbound", fileSystem: pristine) == 1)
        let before = try w.open(pristine.copy(seed: 4))
        let (knowledge, acknowledged, cursor) = (before.knowledge, before.acknowledged, before.pullCursor)
        try before.close()
        /// The knowledge vector without the terminal's own entry (the write may or may not have become durable).
        func others(_ v: VersionVector) -> [String] { v.entries.filter { $0.replica != w.e1.terminal }.map { "\($0.replica):\($0.seq)" } }
        var n = 1
        while n < 2_000 {
            let disk = pristine.copy(seed: UInt64(n))
            disk.cutPower(afterOperations: n)
            var completed = false
            do {
                let t = try w.open(disk)
                let c = try SaleCapture(amount: cny(300), paymentCode: try PaymentCode("134567890123456782"), merchantKey: w.e1.ledgerMerchantKey)
                _ = try t.record(.saleCaptured(c), wallMillis: w.now + 1)  // the floor is due: compacts after the event
                try? t.close()
            } catch {}
            completed = !disk.isPowerOff
            disk.crash()
            let reopened = try w.open(disk)
            let fold = try w.journalFold(disk, seed: UInt64(n) + 5000)
            #expect(sameState(reopened.state, fold.state), "power cut at operation \(n) (seed 16): reopened state is not the fold of what is held")
            #expect(others(fold.knowledge) == (try specKnowledge(disk, w.e1)), "power cut at operation \(n) (seed 16): the journals' knowledge vector is not the spec's")
            // Compaction moves no cursor, acknowledgement or knowledge: what the journals say stays what it was.
            #expect(others(reopened.knowledge) == others(knowledge), "power cut at operation \(n) (seed 16): knowledge vector changed")
            #expect(reopened.acknowledged == acknowledged && reopened.pullCursor == cursor, "power cut at operation \(n) (seed 16): cursors changed")
            if completed {
                let oldest = try Journal.oldestSegmentBase(directory: "/t1/inbound", fileSystem: disk) ?? 0
                #expect(recordedFloor(reopened) > 0 && oldest > 1,
                        "the completed write did not compact")
            }
            try reopened.close()
            if completed { break }
            n += 1
        }
        #expect(n > 5)
    }

    @Test("own events are never dropped while in the outbound journal, however old")
    func ownEventsKept() throws {
        let w = try ScopeWorld(seed: 17)
        // The subject sells on day 0 and never syncs; 12 days later it sells again and compacts.
        try w.run(days: 1, subjectSyncsFrom: 100)
        let first = w.ownSales[0]
        w.now += 12 * Millis.perDay
        let c = try SaleCapture(amount: cny(300), paymentCode: wechatCode(&w.rng), merchantKey: w.e1.ledgerMerchantKey)
        _ = try w.subject.record(.saleCaptured(c), wallMillis: w.tick())
        try w.subject.compact(floorMillis: w.options.scope!.floorMillis(nowMillis: w.now))
        #expect(w.subject.state.sales[first] != nil)
        try w.subject.close()
        let t = try w.open(w.disk)
        defer { try? t.close() }
        #expect(t.openReport.usedCheckpoint)
        #expect(t.state.sales[first] != nil, "an own unacknowledged sale was dropped")
        #expect(try t.unacknowledgedEvents().map(\.dot).contains(first.dot))
    }

    @Test("the checkpoint holds no payment code in clear")
    func noPaymentCodeInClear() throws {
        let w = try ScopeWorld(seed: 18)
        var codes: [PaymentCode] = []
        for _ in 0..<20 {
            let code = wechatCode(&w.rng)
            codes.append(code)
            _ = try w.subject.record(.saleCaptured(try SaleCapture(amount: cny(100), paymentCode: code, merchantKey: w.e1.ledgerMerchantKey)), wallMillis: w.tick())
        }
        try w.subject.compact()
        let bytes = try #require(w.disk.contents(of: "/t1/" + TerminalCheckpoint.fileName))
        for code in codes {
            let digits = code.digits.map { $0 + 48 }
            let found = bytes.indices.contains { i in i + digits.count <= bytes.count && Array(bytes[i..<(i + digits.count)]) == digits }
            #expect(!found, "a payment code is in clear in the checkpoint")
        }
        try w.subject.close()
    }

    @Test("the scope filter keeps components, key groups and unknown-capture events; drops the rest")
    func scopeFilter() throws {
        var rng = Rng(state: 19)
        let key = MerchantKey(bytes: Array(repeating: 7, count: 32))
        let t2 = try ReplicaId.terminal(2), t1 = try ReplicaId.terminal(1)
        func ev(_ r: ReplicaId, _ seq: UInt64, _ millis: UInt64, _ body: EventBody) throws -> Event {
            Event(dot: try Dot(replica: r, seq: seq), hlc: HLCTimestamp(millis: millis, logical: 0), context: VersionVector(), body: body)
        }
        let shared = wechatCode(&rng)
        let oldShared = try ev(t2, 1, 100, .saleCaptured(try SaleCapture(amount: cny(100), paymentCode: shared, merchantKey: key).withoutPaymentCode()))
        let oldAlone = try ev(t2, 2, 110, .saleCaptured(try SaleCapture(amount: cny(100), paymentCode: wechatCode(&rng), merchantKey: key).withoutPaymentCode()))
        let newShared = try ev(t2, 3, 1000, .saleCaptured(try SaleCapture(amount: cny(100), paymentCode: shared, merchantKey: key).withoutPaymentCode()))
        let confirmOld = try ev(.central, 1, 120, .saleConfirmed(SaleId(oldShared.dot)))
        let confirmAlone = try ev(.central, 2, 130, .saleConfirmed(SaleId(oldAlone.dot)))
        let request = try ev(t2, 4, 140, .refundRequested(try RefundRequest(sale: SaleId(oldShared.dot), saleAmount: cny(100), amount: cny(50), reason: .wrongSize, resolution: .refund, contact: nil)))
        let orphanNew = try ev(.central, 3, 1200, .saleConfirmed(SaleId(try Dot(replica: t2, seq: 9))))
        let orphanOld = try ev(.central, 4, 150, .saleConfirmed(SaleId(try Dot(replica: t2, seq: 8))))
        let own = try ev(t1, 1, 50, .saleCaptured(try SaleCapture(amount: cny(100), paymentCode: wechatCode(&rng), merchantKey: key)))
        let all = [oldShared, oldAlone, newShared, confirmOld, confirmAlone, request, orphanNew, orphanOld, own]
        let kept = RelayScope.kept(all, floorMillis: 500, own: t1).map(\.dot)
        #expect(kept == [oldShared.dot, newShared.dot, confirmOld.dot, orphanNew.dot, own.dot])
        #expect(RelayScope.kept(all, floorMillis: 0, own: t1).count == all.count)
    }
}
