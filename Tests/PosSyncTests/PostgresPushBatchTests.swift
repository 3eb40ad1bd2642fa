import Foundation
import Logging
import PosTestSupport
import Testing
import PosCentral
@testable import PosCentralPostgres
import PosJournal
import PosLedger
import PosTerminal
import PosWire

/// A push on PostgreSQL makes resident what its checks read for the whole push at once and reads a
/// re-sent push's digests in one query (sync-protocol.md, "Central on PostgreSQL", "Round trips of a push").
@Suite("central on PostgreSQL: a push prepared as a whole")
struct PostgresPushBatchTests {
    @Test("captures sharing payment codes within a push and across terminals: every sales row equals the fold of every event; a re-sent push is all duplicates; one rewritten among them is refused and the terminal flagged")
    func sharedCodesAndResend() throws {
        guard CentralKind.postgres.available(for: "a push prepared as a whole") else { return }
        let w = try World(terminals: 2, store: .postgres)
        var rng = Rng(state: 11)
        let codes = (0..<4).map { _ in wechatCode(&rng) }
        for i in 0..<8 { _ = try w.capture(0, 100 + Int64(i), code: codes[i % 4]) }  // two captures per code in one push
        try w.sync(0)
        for i in 0..<4 { _ = try w.capture(1, 300 + Int64(i), code: codes[i]) }  // each code again: another terminal, another push
        try w.sync(1)

        // The sales rows the appends wrote come from the resident fold: exact only if each push loaded every sale sharing its codes.
        let session = PostgresSession(url: try #require(w.postgres), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { session.close() }
        var rows: [SaleId: String] = [:]
        for row in try session.query("SELECT sale_replica, sale_seq, status FROM sales WHERE merchant = 'shop'", "test: table sales") {
            let (r, q, status) = try row.decode((Int32, Int64, String).self)
            rows[SaleId(try Dot(replica: ReplicaId.terminal(UInt32(r)), seq: UInt64(q)))] = status
        }
        let truth = try w.central.state.sales
        #expect(truth.count == 12 && rows.count == 12, "sales: fold \(truth.count), table \(rows.count)")
        for (id, view) in truth { #expect(rows[id] == view.status.rawValue, "sale \(id): table \(rows[id] ?? "none"), fold \(view.status.rawValue)") }

        // The whole push again: every event a duplicate (its digest held), nothing applied.
        let t = w.terminals[0]
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: t.enrollment.journalKey)
        let records = try (1...8).map { (seq: UInt64) in try #require(try t.ownRecord(seq: seq)) }
        let again = w.central.handle(.push(.init(terminal: t.terminal, dictionaryID: ledgerDictionary.id, keyID: t.enrollment.journalKey.id,
                                                 frames: [try sealer.seal(records, firstSequence: 1).bytes])))
        guard case .ack(let ack) = again else { Issue.record("a re-sent push refused: \(again)"); return }
        #expect(ack.accepted == 0 && ack.duplicates == 8 && ack.acknowledged == 8)
        #expect(w.central.head == 12)

        // The same push with seq 5 rewritten (other bytes under the same number).
        let forged = RecordCodec.encode(Event(dot: try Dot(replica: t.terminal, seq: 5), hlc: HLCTimestamp(millis: 1, logical: 0), context: VersionVector(),
                                              body: .saleCaptured(try SaleCapture(amount: cny(1), paymentCode: wechatCode(&rng), merchantKey: t.enrollment.ledgerMerchantKey))))
        var rewritten = records
        rewritten[4] = forged
        let refused = w.central.handle(.push(.init(terminal: t.terminal, dictionaryID: ledgerDictionary.id, keyID: t.enrollment.journalKey.id,
                                                   frames: [try sealer.seal(rewritten, firstSequence: 1).bytes])))
        guard case .refusal(let r) = refused else { Issue.record("a rewritten event was accepted: \(refused)"); return }
        #expect(r.code == "rewrittenHistory", "\(r)")
        #expect(w.central.flaggedTerminals.rewroteHistory == [t.terminal])
        #expect(w.central.head == 12)
    }

    @Test("a rewritten event followed in the same push by a record refused on its own (a type a terminal may not write): refused as a rewrite and the terminal flagged, as when each record was checked in turn",
          arguments: CentralKind.allCases)
    func rewriteBeforeALaterFault(_ store: CentralKind) throws {
        guard store.available(for: "a rewrite before a later fault") else { return }
        let w = try World(terminals: 1, store: store)
        var rng = Rng(state: 12)
        for i in 0..<4 { _ = try w.capture(0, 100 + Int64(i), code: wechatCode(&rng)) }
        try w.sync(0)
        let t = w.terminals[0]
        let head = w.central.head
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: t.enrollment.journalKey)
        var records = try (1...4).map { (seq: UInt64) in try #require(try t.ownRecord(seq: seq)) }
        records[2] = RecordCodec.encode(Event(dot: try Dot(replica: t.terminal, seq: 3), hlc: HLCTimestamp(millis: 1, logical: 0), context: VersionVector(),
                                              body: .saleCaptured(try SaleCapture(amount: cny(1), paymentCode: wechatCode(&rng), merchantKey: t.enrollment.ledgerMerchantKey))))
        // Seq 5: central's kind of event, which a terminal may not write (notAuthorized on its own).
        records.append(RecordCodec.encode(Event(dot: try Dot(replica: t.terminal, seq: 5), hlc: HLCTimestamp(millis: 2, logical: 0), context: VersionVector(),
                                                body: .saleConfirmed(SaleId(try Dot(replica: t.terminal, seq: 1))))))
        let refused = w.central.handle(.push(.init(terminal: t.terminal, dictionaryID: ledgerDictionary.id, keyID: t.enrollment.journalKey.id,
                                                   frames: [try sealer.seal(records, firstSequence: 1).bytes])))
        guard case .refusal(let r) = refused else { Issue.record("the push was accepted: \(refused)"); return }
        #expect(r.code == "rewrittenHistory", "\(r)")
        #expect(w.central.flaggedTerminals.rewroteHistory == [t.terminal])
        #expect(w.central.head == head)
    }
}
