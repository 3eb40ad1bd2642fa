import Foundation
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire
import PosTestSupport

@Suite("sync faults")
struct SyncFaultTests {
    /// Two terminals with a backlog big enough for several push and pull batches.
    func backlog() throws -> World {
        var rng = Rng(state: 3)
        let w = try World(terminals: 2)
        w.central.pullBatchBytes = 600
        for i in 0..<2 {
            for n in 0..<30 { _ = try w.capture(i, Int64(100 + n), code: wechatCode(&rng)) }
        }
        return w
    }

    func check(_ w: World, label: String) throws {
        // Nothing lost, nothing duplicated: central holds each terminal's events once, in order.
        for t in w.terminals {
            #expect(w.central.acknowledged(t.terminal) == t.lastSequence, "\(label): terminal \(t.terminal)")
        }
        #expect(w.central.head == UInt64(w.terminals.reduce(0) { $0 + Int($1.lastSequence) }), "\(label): central journal holds each event once")
        let reference = (try w.central.state).canonicalText
        for t in w.terminals { #expect(t.state.canonicalText == reference, "\(label): terminal \(t.terminal) state") }
    }

    @Test("an interruption after any protocol step or partial batch is completed by a retry, nothing lost or duplicated",
          arguments: [FaultyTransport.Fault.dropRequest, .dropReply])
    func interruptions(fault: FaultyTransport.Fault) throws {
        // Count the exchanges of an undisturbed run first.
        let probe = try backlog()
        final class Counter: SyncTransport {
            let inner: InProcessTransport; var n = 0
            init(_ c: any SyncEndpoint) { inner = InProcessTransport(central: c) }
            func exchange(_ r: SyncMessage) throws(SyncError) -> SyncMessage { n += 1; return try inner.exchange(r) }
        }
        let counter = Counter(probe.central)
        _ = try probe.terminals[0].sync(via: counter, wallMillis: probe.tick(), pushBatchBytes: 200)
        #expect(counter.n > 6, "the backlog must need several push and pull batches")
        for failAt in 1...counter.n {
            let w = try backlog()
            try w.sync(1)  // the other terminal's events are there to pull
            let faulty = FaultyTransport(central: w.central, failAt: failAt, fault: fault)
            #expect(throws: SyncError.self) {
                _ = try w.terminals[0].sync(via: faulty, wallMillis: w.tick(), pushBatchBytes: 200)
            }
            _ = try w.terminals[0].sync(via: InProcessTransport(central: w.central), wallMillis: w.tick(), pushBatchBytes: 200)
            try w.sync(1)
            try check(w, label: "\(fault) at exchange \(failAt)")
        }
    }

    @Test("central crashing between its append and its ack loses nothing and duplicates nothing")
    func centralCrashBeforeAck() throws {
        let w = try backlog()
        let faulty = FaultyTransport(central: w.central, failAt: 2, fault: .dropReply)  // the first push is applied, its ack lost
        #expect(throws: SyncError.self) { _ = try w.terminals[0].sync(via: faulty, wallMillis: w.tick()) }
        try w.reopenCentral()   // central restarts from its journal
        #expect(w.central.acknowledged(w.terminals[0].terminal) == w.terminals[0].lastSequence)
        let report = try w.sync(0)
        #expect(report.pushed == 0)
        try w.sync(1); try w.sync(0)
        try check(w, label: "central crash")
    }

    @Test("a terminal crashing between receiving an ack and recording it loses nothing and duplicates nothing")
    func terminalCrashBeforeRecordingAck() throws {
        let w = try backlog()
        let faulty = FaultyTransport(central: w.central, failAt: 2, fault: .dropReply)
        #expect(throws: SyncError.self) { _ = try w.terminals[0].sync(via: faulty, wallMillis: w.tick()) }
        #expect(w.terminals[0].acknowledged == 0)
        try w.reopenTerminal(0)
        let report = try w.sync(0)
        #expect(report.pushed == 0)
        #expect(w.terminals[0].acknowledged == w.terminals[0].lastSequence)
        try w.sync(1); try w.sync(0)
        try check(w, label: "terminal crash")
    }
}

@Suite("sync bad input")
struct SyncBadInputTests {
    func snapshot(_ w: World) throws -> (UInt64, String) { (w.central.head, (try w.central.state).canonicalText) }

    /// Pushes hand-made records sealed under terminal `i`'s key.
    func push(_ w: World, as i: Int, records: [[UInt8]], firstSequence: UInt64) throws -> SyncMessage {
        let t = w.terminals[i]
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: t.enrollment.journalKey)
        let frame = try sealer.seal(records, firstSequence: firstSequence).bytes
        return w.central.handle(.push(.init(terminal: t.terminal, dictionaryID: ledgerDictionary.id, keyID: t.enrollment.journalKey.id, frames: [frame])))
    }

    func event(_ w: World, replica: ReplicaId, seq: UInt64, minor: Int64, rng: inout Rng) throws -> [UInt8] {
        let capture = try SaleCapture(amount: cny(minor), paymentCode: wechatCode(&rng), merchantKey: w.terminals[0].enrollment.ledgerMerchantKey)
        return RecordCodec.encode(Event(dot: try Dot(replica: replica, seq: seq), hlc: HLCTimestamp(millis: UInt64(baseMillis), logical: 0), context: VersionVector(), body: .saleCaptured(capture)))
    }

    func refusal(_ m: SyncMessage) -> SyncMessage.Refusal? { if case .refusal(let r) = m { return r }; return nil }

    @Test("an event under another terminal's id is refused and nothing applied")
    func foreignReplica() throws {
        var rng = Rng(state: 1)
        let w = try World(terminals: 2)
        let before = try snapshot(w)
        let r = try #require(refusal(try push(w, as: 0, records: [event(w, replica: w.terminals[1].terminal, seq: 1, minor: 100, rng: &rng)], firstSequence: 1)))
        #expect(r.code == "foreignReplica")
        #expect(r.message.contains("frame 0 record 0"))
        #expect(try snapshot(w) == before)
    }

    @Test("a sequence gap is refused naming the missing range, nothing applied")
    func gap() throws {
        var rng = Rng(state: 2)
        let w = try World(terminals: 1)
        let t = w.terminals[0].terminal
        let before = try snapshot(w)
        let r = try #require(refusal(try push(w, as: 0, records: [event(w, replica: t, seq: 3, minor: 100, rng: &rng), event(w, replica: t, seq: 4, minor: 100, rng: &rng)], firstSequence: 3)))
        #expect(r.code == "sequenceGap")
        #expect(r.message.contains("1...2 are missing"))
        #expect(try snapshot(w) == before)
    }

    @Test("a rewritten event is refused, the terminal flagged, nothing applied")
    func rewrite() throws {
        var rng = Rng(state: 4)
        let w = try World(terminals: 1)
        _ = try w.capture(0, 500, code: wechatCode(&rng))
        try w.sync(0)
        let before = try snapshot(w)
        let t = w.terminals[0].terminal
        let r = try #require(refusal(try push(w, as: 0, records: [event(w, replica: t, seq: 1, minor: 999, rng: &rng), event(w, replica: t, seq: 2, minor: 1, rng: &rng)], firstSequence: 1)))
        #expect(r.code == "rewrittenHistory")
        #expect(try snapshot(w) == before)
        #expect(w.central.flaggedTerminals.rewroteHistory == [t])
        try w.reopenCentral()
        #expect(w.central.flaggedTerminals.rewroteHistory == [t], "the flag outlives a restart")
    }

    @Test("a terminal may not write central's events")
    func authority() throws {
        let w = try World(terminals: 1)
        let t = w.terminals[0].terminal
        let confirm = RecordCodec.encode(Event(dot: try Dot(replica: t, seq: 1), hlc: HLCTimestamp(millis: UInt64(baseMillis), logical: 0), context: VersionVector(),
                                               body: .saleConfirmed(SaleId(try Dot(replica: t, seq: 1)))))
        let r = try #require(refusal(try push(w, as: 0, records: [confirm], firstSequence: 1)))
        #expect(r.code == "notAuthorized")
        #expect(w.central.head == 0)
        #expect(throws: SyncError.self) { try w.terminals[0].record(.saleConfirmed(SaleId(try Dot(replica: t, seq: 1))), wallMillis: baseMillis) }
    }

    @Test("bundles: applied idempotently; truncated or for another central refused with nothing applied")
    func bundles() throws {
        var rng = Rng(state: 5)
        let w = try World(terminals: 1)
        for n in 0..<5 { _ = try w.capture(0, Int64(100 + n), code: wechatCode(&rng)) }
        let path = w.dir.path + "/b1.bundle"
        let exported = try w.terminals[0].exportBundle(to: path)
        #expect(exported.events == 5)
        let bytes = Array(FileManager.default.contents(atPath: path)!)
        // Truncated: refused before anything is read from it.
        let truncated = w.dir.path + "/truncated.bundle"
        try Data(bytes.dropLast(10)).write(to: URL(fileURLWithPath: truncated))
        do { _ = try w.central.importBundle(path: truncated); Issue.record("truncated bundle accepted") } catch {
            #expect(error.code == .checksum)
            #expect(error.description.contains("truncated.bundle"))
        }
        #expect(w.central.head == 0)
        // Another central's bundle.
        let other = try World(terminals: 1)
        do { _ = try other.central.importBundle(path: path); Issue.record("foreign bundle accepted") } catch {
            #expect(error.code == .wrongCentral)
        }
        #expect(other.central.head == 0)
        // Applied once; the same bundle again changes nothing.
        let first = try w.central.importBundle(path: path)
        #expect(first.new == 5 && first.duplicates == 0 && first.acknowledged == 5)
        let again = try w.central.importBundle(path: path)
        #expect(again.new == 0 && again.duplicates == 5)
        // A newer bundle, then the older one again: nothing changes.
        for n in 0..<3 { _ = try w.capture(0, Int64(200 + n), code: wechatCode(&rng)) }
        let newer = try w.terminals[0].exportBundle(to: w.dir.path + "/b2.bundle")
        #expect(newer.events == 8, "the terminal has no acknowledgement yet, so the bundle carries everything")
        let second = try w.central.importBundle(path: w.dir.path + "/b2.bundle")
        #expect(second.new == 3)
        let head = w.central.head
        _ = try w.central.importBundle(path: path)
        #expect(w.central.head == head)
        // The terminal then learns the acknowledgement at its next sync and pushes nothing.
        #expect(try w.sync(0).pushed == 0)
        #expect(w.terminals[0].acknowledged == 8)
    }

    @Test("a hello for another central or from an unknown terminal is refused")
    func handshakeRefusals() throws {
        let w = try World(terminals: 1)
        let other = try World(terminals: 1)
        #expect(throws: SyncError.self) { _ = try w.terminals[0].sync(via: InProcessTransport(central: other.central), wallMillis: baseMillis) }
        let stranger = SyncMessage.hello(.init(central: w.central.centralID, terminal: try ReplicaId.terminal(99), knowledge: VersionVector(), pullCursor: 0, wallMillis: baseMillis, acknowledged: 0))
        guard case .refusal(let r) = w.central.handle(stranger) else { Issue.record("unknown terminal accepted"); return }
        #expect(r.code == "notEnrolled")
    }

    @Test("malformed messages are refused with the field and offset")
    func malformed() throws {
        #expect(throws: SyncError.self) { _ = try SyncMessage.decode([0x50, 0x53, 1, 1, 0xFF]) }
        do { _ = try SyncMessage.decode([0x50, 0x53, 9, 1]) } catch {
            #expect(error.code == .versionUnsupported)
        }
        let hello = SyncMessage.hello(.init(central: CentralID.random(), terminal: try ReplicaId.terminal(4), knowledge: VersionVector([(try ReplicaId.terminal(4), 12)]), pullCursor: 9, wallMillis: -5, acknowledged: 7))
        #expect(try SyncMessage.decode(hello.encoded()) == hello)
        do { _ = try SyncMessage.decode(Array(hello.encoded().dropLast(3))) ; Issue.record("truncated message accepted") } catch {
            #expect(error.code == .malformed)
        }
    }
}

@Suite("terminal retention")
struct TerminalRetentionTests {
    @Test("only segments fully acknowledged and older than the retention period are retired")
    func retention() throws {
        var rng = Rng(state: 11)
        let dir = TempDir("retention")
        let central = try FileCentralStore.create(directory: dir.path + "/central")
        let e = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "shop")
        let day: Int64 = 24 * 3_600_000
        let options = TerminalOptions(segmentBytesMax: 600, retentionMillis: 30 * day)
        let t = try TerminalReplica.initialize(directory: dir.path + "/t1", enrollment: e, options: options)
        var now = baseMillis
        func sale() throws {
            now += day
            _ = try t.record(.saleCaptured(try SaleCapture(amount: cny(500), paymentCode: wechatCode(&rng), merchantKey: e.ledgerMerchantKey)), wallMillis: now)
        }
        let segments = { (try? FileManager.default.contentsOfDirectory(atPath: dir.path + "/t1/outbound"))?.filter { $0.hasSuffix(".seg") }.sorted() ?? [] }
        // 25 sales, carried to central by courier; then 15 more that central never gets.
        for _ in 0..<25 { try sale() }
        #expect(try t.exportBundle(to: dir.path + "/b.bundle").events == 25)
        for _ in 0..<15 { try sale() }
        #expect(segments().count > 5)
        // Nothing acknowledged yet: nothing retired, however old.
        #expect(try t.retireAcknowledged(wallMillis: now + 365 * day).isEmpty)
        _ = try central.importBundle(path: dir.path + "/b.bundle")
        // The terminal learns the acknowledgement at a handshake; the link then fails before the push.
        #expect(throws: SyncError.self) {
            try t.sync(via: FaultyTransport(central: central, failAt: 2, fault: .dropRequest), wallMillis: now)
        }
        #expect(t.acknowledged == 25)
        // At day 40 with 30 days' retention only events of days 1...10 are old enough.
        #expect(!(try t.retireAcknowledged(wallMillis: now)).isEmpty)
        #expect(UInt64(segments().first!.prefix(20))! <= 11, "an event younger than the retention period was retired")
        // Long after: only whole segments of acknowledged events go.
        #expect(!(try t.retireAcknowledged(wallMillis: now + 365 * day)).isEmpty)
        let firstKept = UInt64(segments().first!.prefix(20))!
        #expect(firstKept <= 26, "a segment holding an unacknowledged event was retired (first kept seq \(firstKept))")
        #expect(firstKept > 1)
        try t.sync(via: InProcessTransport(central: central), wallMillis: now)
        #expect(t.acknowledged == 40)
        // Reopening works after retirement, and new events continue the sequence.
        try t.close()
        let again = try TerminalReplica.open(directory: dir.path + "/t1", options: options)
        #expect(again.lastSequence == 40)
        _ = try again.record(.saleCaptured(try SaleCapture(amount: cny(700), paymentCode: wechatCode(&rng), merchantKey: e.ledgerMerchantKey)), wallMillis: now + day)
        #expect(again.lastSequence == 41)
        #expect(try again.sync(via: InProcessTransport(central: central), wallMillis: now + day).pushed == 1)
        #expect(central.acknowledged(e.terminal) == 41)
    }
}

@Suite("central money guards")
struct CentralMoneyGuardTests {
    @Test("central refuses to complete a ticket whose sale is not confirmed, or to forward a void-duplicate")
    func guards() throws {
        var rng = Rng(state: 21)
        let w = try World(terminals: 2)
        let code = wechatCode(&rng)
        let sale = try w.capture(0, 10_000, code: code)
        let twin = try w.capture(1, 10_000, code: code)   // the same code scanned next door
        let ticket = try w.requestRefund(0, sale: sale, saleMinor: 10_000, 2_000)
        try w.syncAll()
        try w.central.record(.refundApproved(ticket, .originalPayment), wallMillis: w.tick())
        let head = w.central.head
        do { try w.central.record(.refundCompleted(ticket), wallMillis: w.tick()); Issue.record("completed on a captured sale") } catch {
            #expect(error.message.contains("not confirmed"))
        }
        // The later capture of the same code is a void-duplicate: never forwarded.
        #expect((try w.central.state).sales[twin]?.status == .voidDuplicate)
        do { try w.central.record(.saleConfirmed(twin), wallMillis: w.tick()); Issue.record("void-duplicate forwarded") } catch {
            #expect(error.message.contains("void-duplicate"))
        }
        #expect(w.central.head == head, "nothing written by a refused decision")
        try w.central.record(.saleConfirmed(sale), wallMillis: w.tick())
        try w.central.record(.refundCompleted(ticket), wallMillis: w.tick())
        #expect((try w.central.state).tickets[ticket]?.status == .completed)
    }
}

@Suite("review findings")
struct ReviewFindingTests {
    @Test("a hello with an extreme wall clock is answered (flagged as skewed), not a crash")
    func extremeClock() throws {
        let w = try World(terminals: 1)
        for wall in [Int64.min, Int64.max] {
            let hello = SyncMessage.hello(.init(central: w.central.centralID, terminal: w.terminals[0].terminal, knowledge: VersionVector(), pullCursor: 0, wallMillis: wall, acknowledged: 0))
            guard case .welcome(let welcome) = w.central.handle(hello) else { Issue.record("refused"); return }
            #expect(welcome.clockSkewed)
        }
    }

    /// Central answering with an acknowledgement beyond what was pushed.
    final class LyingTransport: SyncTransport {
        let inner: InProcessTransport
        init(_ c: any SyncEndpoint) { inner = InProcessTransport(central: c) }
        func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
            let reply = try inner.exchange(request)
            if case .ack(var ack) = reply { ack.acknowledged += 1000; return .ack(ack) }
            return reply
        }
    }

    @Test("an acknowledgement beyond what the push carried is refused and never recorded")
    func ackTooHigh() throws {
        var rng = Rng(state: 31)
        let w = try World(terminals: 1)
        _ = try w.capture(0, 100, code: wechatCode(&rng))
        do { _ = try w.terminals[0].sync(via: LyingTransport(w.central), wallMillis: w.tick()); Issue.record("accepted") } catch {
            #expect(error.message.contains("acknowledged through seq 1001"))
        }
        #expect(w.terminals[0].acknowledged == 0)
        try w.reopenTerminal(0)
        #expect(w.terminals[0].acknowledged == 0)
        #expect(try w.terminals[0].retireAcknowledged(wallMillis: Int64.max / 2).isEmpty)
        try w.sync(0)
        #expect(w.terminals[0].acknowledged == 1)
    }

    @Test("a pull cursor beyond central's journal (central restored from a backup) starts over; nothing is missed")
    func cursorBeyondHead() throws {
        var rng = Rng(state: 41)
        let dir = TempDir("backup")
        let w = try World(terminals: 2)
        _ = try w.capture(0, 100, code: wechatCode(&rng))
        try w.sync(0)
        // Back up central with one event, then let it grow and let terminal 2 pull far.
        try w.central.close()
        try FileManager.default.copyItem(atPath: w.dir.path + "/central", toPath: dir.path + "/central-backup")
        w.central = try FileCentralStore.open(directory: w.dir.path + "/central")
        for _ in 0..<5 { _ = try w.capture(0, 200, code: wechatCode(&rng)) }
        try w.sync(0)
        try w.sync(1)
        let cursor = w.terminals[1].pullCursor
        #expect(cursor == 6)
        // Central is restored from the backup; terminal 1 pushes its events again.
        try w.central.close()
        try FileManager.default.removeItem(atPath: w.dir.path + "/central")
        try FileManager.default.copyItem(atPath: dir.path + "/central-backup", toPath: w.dir.path + "/central")
        w.central = try FileCentralStore.open(directory: w.dir.path + "/central")
        #expect(w.central.head == 1)
        try w.reopenTerminal(0)
        _ = try w.terminals[0].sync(via: InProcessTransport(central: w.central), wallMillis: w.tick())
        // Terminal 1 had pulled through position 6 of the old journal; it starts over and converges.
        _ = try w.capture(0, 300, code: wechatCode(&rng))
        try w.syncAll()
        #expect(w.terminals[1].state.canonicalText == (try w.central.state).canonicalText)
        #expect(w.terminals[1].pullCursor == w.central.head)
    }
}

@Suite("merchant boundaries and push bounds")
struct MerchantBoundaryTests {
    @Test("a refund request for another merchant's sale is refused and nothing applied")
    func foreignMerchant() throws {
        var rng = Rng(state: 51)
        let w = try World(terminals: 1, merchant: "shop-a")
        let sale = try w.capture(0, 5_000, code: wechatCode(&rng))
        try w.sync(0)
        let outsider = try w.central.enroll(terminal: try ReplicaId.terminal(9), merchant: "shop-b")
        let request = try RefundRequest(sale: sale, saleAmount: cny(5_000), amount: cny(5_000), reason: .changedMind, resolution: .refund, contact: nil)
        let event = Event(dot: try Dot(replica: outsider.terminal, seq: 1), hlc: HLCTimestamp(millis: UInt64(baseMillis), logical: 0),
                          context: VersionVector(), body: .refundRequested(request))
        let frame = try FrameSealer(dictionary: ledgerDictionary, key: outsider.journalKey).seal([RecordCodec.encode(event)], firstSequence: 1).bytes
        let before = (w.central.head, (try w.central.state).canonicalText)
        let reply = w.central.handle(.push(.init(terminal: outsider.terminal, dictionaryID: ledgerDictionary.id, keyID: outsider.journalKey.id, frames: [frame])))
        guard case .refusal(let r) = reply else { Issue.record("accepted: \(reply)"); return }
        #expect(r.code == "foreignMerchant")
        #expect(r.message.contains("shop-b"))
        #expect((w.central.head, (try w.central.state).canonicalText) == before)
    }

    @Test("a push whose records would inflate past pushRecordBytesMax is refused before decoding")
    func pushTooLarge() throws {
        let w = try World(terminals: 1)
        let e = w.terminals[0].enrollment
        // Frames of 4 MiB record blocks (incompressible bytes, encrypted): 5 of them pass the bound.
        var rng = Rng(state: 61)
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: e.journalKey)
        var frames: [[UInt8]] = []
        var seq: UInt64 = 1
        for _ in 0..<5 {
            let records = (0..<4).map { _ in (0..<(1 << 20) - 8).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            frames.append(try sealer.seal(records, firstSequence: seq).bytes)
            seq += 4
        }
        let reply = w.central.handle(.push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: frames)))
        guard case .refusal(let r) = reply else { Issue.record("accepted"); return }
        #expect(r.code == "tooLarge")
        #expect(r.message.contains("frame 4"))
        #expect(w.central.head == 0)
    }

    @Test("every refusal code central sends reaches the terminal as the same code (an I/O refusal is not called malformed)")
    func refusalCodes() {
        let codes: [SyncError.Code] = [.malformed, .tooLarge, .versionUnsupported, .wrongCentral, .notEnrolled, .foreignReplica,
                                       .notAuthorized, .foreignMerchant, .sequenceGap, .rewrittenHistory, .checksum, .journal,
                                       .ledger, .io, .invalidArgument, .notFound]
        for code in codes { #expect(SyncError.Code(refusal: "\(code)") == code) }
        #expect(SyncError.Code(refusal: "somethingNew") == .malformed)
    }
}
