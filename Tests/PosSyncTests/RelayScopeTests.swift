import Foundation
import Testing
import PosBytes
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosTerminal
@testable import PosWire
import PosTestSupport

/// Relays what a pull sends, decoded with the terminal's key, beside the floor the pull sent.
final class PullRecorder: SyncTransport {
    let inner: InProcessTransport
    let key: JournalKey
    private(set) var pulls: [(floor: UInt64, events: [Event])] = []
    private var floor: UInt64 = 0
    init(central: any SyncEndpoint, key: JournalKey) {
        inner = InProcessTransport(central: central)
        self.key = key
    }
    func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
        if case .pull(let p) = request { floor = p.scopeFloorMillis }
        let reply = try inner.exchange(request)
        if case .events(let batch) = reply {
            var events: [Event] = []
            let decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: key)
            for frame in batch.frames {
                let decoded = try journal { () throws(JournalError) in
                    try Frames.records(frame, dictionaryID: ledgerDictionary.id, keyID: key.id, decoder: decoder, file: "pulled frame")
                }
                for record in decoded.records {
                    guard case .pulled(_, let bytes) = try InboundRecord.decode(record, location: "pulled") else { continue }
                    do { events.append(try RecordCodec.decode(bytes)) } catch { throw SyncError(error, location: "pulled") }
                }
            }
            pulls.append((floor, events))
        }
        return reply
    }
}

/// Whether central's state puts `event` in a pull's scope at `floor` (sync-protocol.md, "Relay scope"):
/// its sale in scope, or (a capture or outcome) a capture of its key group in scope, or its sale unknown.
func inScope(_ event: Event, floor: UInt64, central: LedgerState) -> Bool {
    func captured(_ s: SaleId) -> UInt64? { central.capture(of: s)?.hlc.millis }
    func groupInScope(_ s: SaleId) -> Bool {
        guard case .saleCaptured(let c)? = central.capture(of: s)?.body else { return true }
        return central.captures(withKey: c.duplicateKey).contains { (captured($0) ?? 0) >= floor }
    }
    switch event.body {
    case .saleCaptured: return groupInScope(SaleId(event.dot))
    case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s): return captured(s) == nil || groupInScope(s)
    case .refundRequested(let r): return (captured(r.sale) ?? floor) >= floor
    default:
        guard case .ticket(let t)? = EntityKey.of(event), case .refundRequested(let r)? = central.request(of: t)?.body else { return true }
        return (captured(r.sale) ?? floor) >= floor
    }
}

@Suite("relay scope")
struct RelayScopeTests {
    static let day = Millis.perDay

    /// A world whose terminals pull within a return window of `windowDays` (span windowDays + 3 days).
    func scopedWorld(terminals: Int, windowDays: Int, store: CentralKind) throws -> World {
        let w = try World(terminals: terminals, store: store, centralOnWorldClock: true)
        for i in w.terminals.indices {
            try w.terminals[i].close()
            w.terminals[i] = try TerminalReplica.open(directory: w.dir.path + "/t\(i + 1)",
                                                      options: TerminalOptions(scope: try RelayScope(returnWindowDays: windowDays)))
        }
        return w
    }

    @Test("key-group partners held in a checkpoint stay out of the knowledge vector after a reopen; nothing is skipped later")
    func partnersOutOfKnowledgeAfterCheckpoint() throws {
        var rng = Rng(state: 48)
        let w = try scopedWorld(terminals: 3, windowDays: 1, store: .files)
        let code = wechatCode(&rng)
        // Day 0 at shop 1: five unrelated sales, then one with the code (dot 1:6); central confirms it.
        for _ in 0..<5 { _ = try w.capture(0, 1_500, code: wechatCode(&rng)) }
        let old = try w.capture(0, 4_000, code: code)
        try w.sync(0)
        try w.central.record(.saleConfirmed(old), wallMillis: w.tick())
        // Day 10: shop 2's scan passes day 0 (out of scope); then shop 3 scans the code again and shop 2
        // gets the new capture with the old one (and its confirmation) as key-group partners.
        w.now += 10 * Self.day
        try w.sync(1)
        _ = try w.capture(2, 4_000, code: code)
        try w.sync(2)
        try w.sync(1)
        #expect(w.terminals[1].state.sales[old] != nil, "the partner arrived")
        let live = w.terminals[1].knowledge
        #expect(live[old.dot.replica] < old.dot.seq, "the partner is not counted live")
        try w.terminals[1].compact()  // a checkpoint holding the partner
        try w.terminals[1].close()
        w.terminals[1] = try TerminalReplica.open(directory: w.dir.path + "/t2", options: TerminalOptions(scope: try RelayScope(returnWindowDays: 1)))
        #expect(w.terminals[1].openReport.usedCheckpoint)
        #expect(w.terminals[1].knowledge == live, "reopened from the checkpoint: \(w.terminals[1].knowledge) vs live \(live)")
        // Shop 1 comes back the same day with an in-scope sale: central relays it (1:7), and nothing before it is claimed.
        let back = try w.capture(0, 2_000, code: wechatCode(&rng))
        try w.sync(0)
        try w.sync(1)
        #expect(w.terminals[1].state.sales[back] == (try w.central.state).sales[back])
    }

    @Test("a terminal clock running ahead does not compact away sales in scope by central's clock")
    func compactionFloorBoundedByCentralClock() throws {
        var rng = Rng(state: 49)
        let w = try scopedWorld(terminals: 2, windowDays: 1, store: .files)  // span 4 days
        let sale = try w.capture(0, 1_000, code: wechatCode(&rng))          // day 0, shop 1
        try w.sync(0)
        w.now += 2 * Self.day
        try w.sync(1)
        #expect(w.terminals[1].state.sales[sale] != nil)
        // Shop 2's clock runs 3 days ahead: it sells and syncs at day 5 by its clock, day 2 by central's.
        let ahead = w.now + 3 * Self.day
        let t = w.terminals[1]
        _ = try t.record(.saleCaptured(try SaleCapture(amount: cny(500), paymentCode: wechatCode(&rng), merchantKey: t.enrollment.ledgerMerchantKey)), wallMillis: ahead)
        _ = try t.sync(via: InProcessTransport(central: w.central), wallMillis: ahead + 1_000)
        _ = try t.record(.saleCaptured(try SaleCapture(amount: cny(500), paymentCode: wechatCode(&rng), merchantKey: t.enrollment.ledgerMerchantKey)), wallMillis: ahead + 2_000)
        let scope = try RelayScope(returnWindowDays: 1)
        #expect(t.scopeFloorMillis(wallMillis: w.now, centralWallMillis: w.now) <= UInt64(scope.floorMillis(nowMillis: w.now + 10_000)))
        #expect(t.state.sales[sale] != nil, "a sale in scope by central's clock was compacted away")
    }

    @Test("a return window longer than the outbound retention: own acknowledged sales in scope are not retired")
    func retentionCoversScope() throws {
        var rng = Rng(state: 47)
        let w = try World(terminals: 1, centralOnWorldClock: true)
        try w.terminals[0].close()
        // Small segments so that early ones close; span 123 days, retention 90 days.
        w.terminals[0] = try TerminalReplica.open(directory: w.dir.path + "/t1", options: TerminalOptions(
            segmentBytesMax: 600, retentionMillis: 90 * Self.day, scope: try RelayScope(returnWindowDays: 120)))
        for _ in 0..<20 { _ = try w.capture(0, 4_000, code: wechatCode(&rng)) }
        try w.sync(0)
        for _ in 0..<5 { _ = try w.capture(0, 4_000, code: wechatCode(&rng)) }
        let t = w.terminals[0]
        #expect(try t.retireAcknowledged(wallMillis: w.now + 100 * Self.day).isEmpty, "own sales 100 days old, in a 123-day scope, retired")
        #expect(!(try t.retireAcknowledged(wallMillis: w.now + 124 * Self.day)).isEmpty, "nothing retired past the scope")
    }

    @Test("a chain over 24 days: every terminal decides each sale in its scope as central does; pulls relay nothing out of scope",
          arguments: CentralKind.allCases)
    func chainOverDays(store: CentralKind) throws {
        guard store.available(for: "relay scope chain on \(store)") else { return }
        let seed: UInt64 = 0x5C0E
        var rng = Rng(state: seed)
        let w = try scopedWorld(terminals: 4, windowDays: 2, store: store)
        let recorders = w.terminals.map { PullRecorder(central: w.central, key: $0.enrollment.journalKey) }
        var codes: [PaymentCode] = []
        var yesterday: [(terminal: Int, code: PaymentCode)] = []
        var caughtOffline: [SaleId] = []
        var overRefundsHeld = 0, returnsElsewhere = 0
        for dayIndex in 0..<24 {
            w.now = baseMillis + Int64(dayIndex) * Self.day
            var today: [(terminal: Int, code: PaymentCode)] = []
            for i in w.terminals.indices {
                for n in 0..<3 {
                    // A code scanned yesterday at another shop, scanned again here: this shop holds that capture
                    // (in scope, pulled), so the duplicate is caught offline, as central decides it later.
                    if n == 0, let reused = yesterday.first(where: { $0.terminal != i }), Int.random(in: 0..<3, using: &rng) == 0 {
                        let sale = try w.capture(i, 2_000, code: reused.code)
                        #expect(w.terminals[i].state.sales[sale]?.status == .voidDuplicate, "seed \(seed): duplicate scan at t\(i + 1) not caught offline")
                        caughtOffline.append(sale)
                        continue
                    }
                    // Now and then a code of any earlier day again (older than the scope: caught at central only).
                    let code = codes.isEmpty || Int.random(in: 0..<10, using: &rng) > 0 ? wechatCode(&rng) : codes.randomElement(using: &rng)!
                    codes.append(code)
                    today.append((i, code))
                    _ = try w.capture(i, Int64.random(in: 1_000...9_000, using: &rng), code: code)
                }
            }
            yesterday = today
            // Returns at another shop, of sales each terminal holds; two shops refund one receipt offline.
            let target = Int.random(in: 0..<w.terminals.count, using: &rng)
            let other = (target + 1) % w.terminals.count
            let held = w.terminals[target].state.sales.values.filter { $0.status == .confirmed && $0.id.dot.replica != w.terminals[target].terminal }
                .sorted { $0.id < $1.id }
            if let sale = held.last, let amount = sale.amount, w.terminals[other].state.sales[sale.id] != nil {
                _ = try w.requestRefund(target, sale: sale.id, saleMinor: amount.minorUnits, amount.minorUnits)
                _ = try w.requestRefund(other, sale: sale.id, saleMinor: amount.minorUnits, amount.minorUnits - 1)
                returnsElsewhere += 1
            }
            for (i, t) in w.terminals.enumerated() { _ = try t.sync(via: recorders[i], wallMillis: w.tick(10)) }
            // Central forwards what is captured: most confirmed, some declined.
            for sale in try w.central.salesAwaitingOutcome() where try w.central.state(around: .sale(sale)).sales[sale]?.status == .captured {
                let body: EventBody = Int.random(in: 0..<10, using: &rng) < 8 ? .saleConfirmed(sale) : .saleDeclined(sale)
                try w.central.record(body, wallMillis: w.tick())
            }
            for (i, t) in w.terminals.enumerated() { _ = try t.sync(via: recorders[i], wallMillis: w.tick(10)) }
        }
        for _ in 0..<2 { for (i, t) in w.terminals.enumerated() { _ = try t.sync(via: recorders[i], wallMillis: w.tick(10)) } }
        let central = try w.central.state
        overRefundsHeld = central.conflicts.filter { $0.kind == .overRefund }.count
        #expect(!caughtOffline.isEmpty && caughtOffline.allSatisfy { central.sales[$0]?.status == .voidDuplicate },
                "seed \(seed): duplicates caught offline are void at central too")
        var compared = 0
        for (i, t) in w.terminals.enumerated() {
            let floor = try #require(t.lastPullFloorMillis)
            #expect(floor > UInt64(baseMillis), "seed \(seed): the floor of t\(i + 1) moved past the first days")
            let comparison = ScopeComparison(central: central, terminal: t.state, floorMillis: floor)
            compared += comparison.compared
            #expect(comparison.differences.isEmpty, "seed \(seed) t\(i + 1): \(comparison.differences.prefix(3))")
            // Out-of-scope sales of other terminals that the pulls relayed: none (counted over every pull).
            var outOfScope = 0, relayed = 0
            for pull in recorders[i].pulls {
                for e in pull.events {
                    relayed += 1
                    if !inScope(e, floor: pull.floor, central: central) { outOfScope += 1 }
                }
            }
            #expect(relayed > 0 && outOfScope == 0, "seed \(seed) t\(i + 1): \(outOfScope) of \(relayed) relayed events out of scope")
        }
        #expect(compared > 0 && returnsElsewhere > 0 && overRefundsHeld > 0, "seed \(seed): compared \(compared), returns \(returnsElsewhere), over-refunds held \(overRefundsHeld)")
    }

    @Test("a key-group partner older than the scope reaches the terminal with a new capture of its code, and the duplicate is decided the same",
          arguments: CentralKind.allCases)
    func oldPartnerComesWithNewCapture(store: CentralKind) throws {
        guard store.available(for: "old key-group partner on \(store)") else { return }
        var rng = Rng(state: 31)
        let w = try scopedWorld(terminals: 3, windowDays: 1, store: store)
        let code = wechatCode(&rng)
        // Day 0: shop 1 sells with the code; central confirms it.
        let old = try w.capture(0, 4_000, code: code)
        let unrelated = try w.capture(0, 1_500, code: wechatCode(&rng))
        try w.sync(0)
        try w.central.record(.saleConfirmed(old), wallMillis: w.tick())
        // Day 10: shop 3 scans the same code again; shop 2 syncs for the first time.
        w.now += 10 * Self.day
        let recorder = PullRecorder(central: w.central, key: w.terminals[1].enrollment.journalKey)
        _ = try w.terminals[1].sync(via: recorder, wallMillis: w.tick(10))
        #expect(w.terminals[1].state.sales[old] == nil && w.terminals[1].state.sales[unrelated] == nil,
                "sales older than the scope are not relayed")
        let again = try w.capture(2, 4_000, code: code)
        try w.sync(2)
        _ = try w.terminals[1].sync(via: recorder, wallMillis: w.tick(10))
        let central = try w.central.state
        #expect(central.sales[again]?.status == .voidDuplicate)
        // The partner and its confirmation came with the new capture; the unrelated old sale did not.
        #expect(w.terminals[1].state.sales[old] == central.sales[old])
        #expect(w.terminals[1].state.sales[again] == central.sales[again], "the duplicate is decided as central decides it")
        #expect(w.terminals[1].state.sales[unrelated] == nil)
        #expect(w.terminals[1].state.conflicts(of: again) == central.conflicts(of: again))
        let sent = recorder.pulls.flatMap(\.events).map(\.dot)
        #expect(sent.filter { $0 == old.dot }.count == 1, "the partner is sent once: \(sent)")
        // Sent again with a later capture of the code, it is held once.
        let third = try w.capture(0, 4_000, code: code)
        try w.sync(0)
        _ = try w.terminals[1].sync(via: recorder, wallMillis: w.tick(10))
        #expect(w.terminals[1].state.sales[third] == (try w.central.state).sales[third])
        #expect(w.terminals[1].state.eventCount == Set(w.terminals[1].state.sales.keys.flatMap { w.terminals[1].state.eventDots(of: $0) }).count)
        // Reopened, the terminal restores the same state and pulls nothing more.
        let before = w.terminals[1].state.canonicalText
        try w.terminals[1].close()
        w.terminals[1] = try TerminalReplica.open(directory: w.dir.path + "/t2", options: TerminalOptions(scope: try RelayScope(returnWindowDays: 1)))
        #expect(w.terminals[1].state.canonicalText == before)
        #expect(try w.sync(1).pulled == 0)
        // Scanning the code at shop 2 offline is caught there: it holds every capture of the code.
        let offline = try w.capture(1, 4_000, code: code)
        #expect(w.terminals[1].state.sales[offline]?.status == .voidDuplicate)
        try w.sync(1)
        #expect((try w.central.state).sales[offline]?.status == .voidDuplicate)
    }

    @Test("a partner central journals after the in-scope capture is relayed where the scan finds it", arguments: CentralKind.allCases)
    func partnerAfterCapture(store: CentralKind) throws {
        guard store.available(for: "partner after capture on \(store)") else { return }
        var rng = Rng(state: 32)
        let w = try scopedWorld(terminals: 3, windowDays: 1, store: store)
        let code = wechatCode(&rng)
        // Shop 1 scanned the code on day 0 and stayed offline; on day 10 shop 3 scans it again and syncs first.
        let old = try w.capture(0, 4_000, code: code)
        w.now += 10 * Self.day
        let again = try w.capture(2, 4_000, code: code)
        try w.sync(2)
        try w.sync(1)
        #expect(w.terminals[1].state.sales[again] != nil && w.terminals[1].state.sales[old] == nil)
        try w.sync(0)
        try w.sync(1)
        let central = try w.central.state
        #expect(w.terminals[1].state.sales[old] == central.sales[old])
        #expect(w.terminals[1].state.sales[again] == central.sales[again])
        #expect(central.sales[again]?.status == .voidDuplicate || central.sales[old]?.status == .voidDuplicate)
    }

    @Test("floor 0 pulls every sale, however old")
    func unscopedPullsEverything() throws {
        var rng = Rng(state: 33)
        let w = try World(terminals: 2)
        let old = try w.capture(0, 4_000, code: wechatCode(&rng))
        try w.sync(0)
        w.now += 400 * Self.day
        try w.sync(1)
        #expect(w.terminals[1].state.sales[old] != nil)
        #expect(w.terminals[1].scopeFloorMillis(wallMillis: w.now) == 0)
    }

    @Test("the pull's scope floor is on the wire; a floor above 48 bits and a version-2 message are refused")
    func wire() throws {
        let pull = SyncMessage.pull(.init(terminal: try ReplicaId.terminal(3), cursor: 17, knowledge: VersionVector(), batchBytes: 0, scopeFloorMillis: 1_785_000_000_000))
        let bytes = pull.encoded()
        #expect(bytes[2] == 3)
        #expect(try SyncMessage.decode(bytes) == pull)
        var v2 = bytes
        v2[2] = 2
        do { _ = try SyncMessage.decode(v2); Issue.record("a version-2 message was accepted") } catch {
            #expect(error.code == .versionUnsupported && error.message.contains("version 2") && error.message.contains("3"), "\(error)")
        }
        var w = ByteWriter()
        w.writeBytes(Array(bytes.dropLast(6)))
        w.writeVarint(UInt64(1) << 48)
        do { _ = try SyncMessage.decode(w.bytes); Issue.record("a floor above 48 bits was accepted") } catch {
            #expect(error.code == .malformed && error.message.contains("scopeFloor"), "\(error)")
        }
    }
}
