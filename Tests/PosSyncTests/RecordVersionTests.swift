import Foundation
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire
import PosTestSupport

/// Record versions 1 (every field stored) and 2 (a capture holding its code leaves out its
/// duplicate key) side by side (sync-protocol.md, "Record versions").
@Suite("record versions 1 and 2 mixed")
struct RecordVersionTests {
    /// Terminal 0 of `w` as a terminal upgraded from version 1: seq 1...3 written in version 1, seq
    /// 4...6 in version 2 (both straight into its outbound journal), then seq 7... by the terminal
    /// itself. Seq 3 (version 1) and seq 6 (version 2) capture the same code.
    func upgradedTerminal(_ w: World) throws -> (codes: [PaymentCode], duplicate: SaleId) {
        var rng = Rng(state: 21)
        let t = w.terminals[0]
        let e = t.enrollment
        let codes = (0..<5).map { _ in wechatCode(&rng) }
        let written: [(PaymentCode, UInt8)] = [(codes[0], 1), (codes[1], 1), (codes[2], 1), (codes[3], 2), (codes[4], 2), (codes[2], 2)]
        try t.close()
        let outbound = try Journal.open(directory: w.dir.path + "/t1/outbound",
                                        configuration: TerminalReplica.journalConfiguration(enrollment: e, options: TerminalOptions()))
        for (i, (code, version)) in written.enumerated() {
            let capture = try SaleCapture(amount: cny(Int64(1000 + i)), paymentCode: code, merchantKey: e.ledgerMerchantKey)
            let event = Event(dot: try Dot(replica: e.terminal, seq: UInt64(i + 1)), hlc: HLCTimestamp(millis: UInt64(w.tick()), logical: 0),
                              context: VersionVector(), body: .saleCaptured(capture))
            _ = try outbound.append(RecordCodec.encode(event, version: version))
        }
        try outbound.close()
        w.terminals[0] = try TerminalReplica.open(directory: w.dir.path + "/t1")
        var more = Rng(state: 22)
        let sale = try w.capture(0, 2000, code: wechatCode(&more))                       // seq 7, version 2
        _ = try w.requestRefund(0, sale: SaleId(try Dot(replica: e.terminal, seq: 1)), saleMinor: 1000, 400)  // seq 8, on a version-1 sale
        _ = try w.requestRefund(0, sale: sale, saleMinor: 2000, 500)                      // seq 9
        return (codes, SaleId(try Dot(replica: e.terminal, seq: 6)))
    }

    func versions(_ t: TerminalReplica) throws -> [UInt8] {
        try (1...t.lastSequence).map { try #require(try t.ownRecord(seq: $0))[0] }
    }

    @Test("one journal, one central, pulled by another terminal: both versions decode and fold identically, a code captured in both is one duplicate",
          arguments: CentralKind.allCases)
    func journalAndCentral(store: CentralKind) throws {
        guard store.available(for: "record versions on \(store)") else { return }
        let w = try World(terminals: 2, snapshotEvents: 4, store: store)  // snapshot runs hold records of both versions
        let (_, duplicate) = try upgradedTerminal(w)
        let t = w.terminals[0]
        #expect(try versions(t) == [1, 1, 1, 2, 2, 2, 2, 1, 1], "captures with their code in version 1 and 2; everything else version 1")
        // Each record decodes to the same event from either version's bytes.
        for seq in 1...t.lastSequence {
            let record = try #require(try t.ownRecord(seq: seq))
            let event = try RecordCodec.decode(record, context: t.enrollment.recordContext)
            for version: UInt8 in [1, 2] {
                #expect(try RecordCodec.decode(RecordCodec.encode(event, version: version), context: t.enrollment.recordContext) == event, "seq \(seq) v\(version)")
            }
        }
        #expect(t.state.sales[duplicate]?.status == .voidDuplicate, "the version-2 capture of a code a version-1 capture holds is its duplicate")
        try w.sync(0); try w.sync(1)
        let central = try w.central.state
        #expect(central.sales[duplicate]?.status == .voidDuplicate)
        #expect(central.canonicalText == t.state.canonicalText)
        #expect(w.terminals[1].state.canonicalText == central.canonicalText, "relayed without codes, with keys")
        #expect(try w.terminals[1].heldForeignCaptures().isEmpty)
        // Central holds and digests each record byte for byte as stored, in its version.
        for seq in 1...t.lastSequence {
            let record = try #require(try t.ownRecord(seq: seq))
            #expect(try w.central.digest(of: Dot(replica: t.terminal, seq: seq)) == eventDigest(record))
        }
        // A re-push of the same stored bytes matches (nothing flagged, nothing new).
        let last = t.lastSequence
        try w.reopenTerminal(0)
        let reopened = w.terminals[0]
        let stored = try (1...last).map { try #require(try reopened.ownRecord(seq: $0)) }
        let frame = try FrameSealer(dictionary: ledgerDictionary, key: reopened.enrollment.journalKey).seal(stored, firstSequence: 1).bytes
        let again = w.central.handle(.push(.init(terminal: reopened.terminal, dictionaryID: ledgerDictionary.id,
                                                 keyID: reopened.enrollment.journalKey.id, frames: [frame])))
        guard case .ack(let ack) = again else { Issue.record("re-push refused: \(again)"); return }
        #expect(ack.accepted == 0 && ack.duplicates == UInt32(last))
        // Central reopened: its journal and snapshot runs decode both versions to the same state.
        try w.reopenCentral()
        #expect(try w.central.state.canonicalText == central.canonicalText)
        try w.reopenTerminal(1)
        #expect(w.terminals[1].state.canonicalText == central.canonicalText)
    }

    @Test("one bundle: an export holding both versions imports to the same state as a push")
    func bundle() throws {
        let w = try World(terminals: 1)
        _ = try upgradedTerminal(w)
        let t = w.terminals[0]
        let path = w.dir.path + "/t1.bundle"
        let exported = try t.exportBundle(to: path)
        #expect(exported.events == Int(t.lastSequence))
        let report = try w.central.importBundle(path: path)
        #expect(report.new == Int(t.lastSequence))
        #expect(try w.central.state.canonicalText == t.state.canonicalText)
        let sync = try w.sync(0)
        #expect(sync.pushed == 0 && w.central.acknowledged(t.terminal) == t.lastSequence)
    }

    @Test("a version-2 capture decoded without the merchant key is refused naming field duplicateKey; with another merchant's key it derives another key")
    func withoutMerchantKey() throws {
        var rng = Rng(state: 23)
        let key = MerchantKey(bytes: [UInt8](repeating: 7, count: 32))
        let capture = try SaleCapture(amount: cny(100), paymentCode: wechatCode(&rng), merchantKey: key)
        let event = Event(dot: try Dot(replica: try ReplicaId.terminal(4), seq: 9), hlc: HLCTimestamp(millis: UInt64(baseMillis), logical: 0),
                          context: VersionVector(), body: .saleCaptured(capture))
        let v2 = RecordCodec.encode(event)
        #expect(v2[0] == 2 && v2.count == RecordCodec.encode(event, version: 1).count - 18, "the key field (2 + 16 bytes) is left out")
        do {
            _ = try RecordCodec.decode(v2)
            Issue.record("decoded a version-2 capture without a merchant key")
        } catch {
            #expect(error.code == .merchantKeyMissing && error.field == "duplicateKey" && error.byteOffset == 0, "\(error)")
            #expect(error.message.contains("replica 4"))
        }
        #expect(throws: LedgerError.self) { try RecordCodec.decode(v2, context: RecordDecodeContext(merchantKeyOf: { _ in nil })) }
        #expect(try RecordCodec.decode(v2, context: RecordDecodeContext(merchantKey: key)) == event)
        // A version-2 capture that stores its key anyway is malformed.
        var both = RecordCodec.encode(event, version: 1)
        both[0] = 2
        do {
            _ = try RecordCodec.decode(both, context: RecordDecodeContext(merchantKey: key))
            Issue.record("decoded a version-2 capture holding both the code and the key")
        } catch {
            #expect(error.code == .malformed && error.field == "duplicateKey", "\(error)")
        }
        let relayed = Event(dot: event.dot, hlc: event.hlc, context: event.context, body: .saleCaptured(capture.withoutPaymentCode()))
        let relayedBytes = RecordCodec.encode(relayed)
        #expect(relayedBytes[0] == 1, "a capture without its code keeps its key, in version 1")
        #expect(try RecordCodec.decode(relayedBytes) == relayed)
    }

    /// Terminal 1's seq-1 capture holding `code`, with a context of `writers` entries (a pushed
    /// record's size is the pusher's to choose).
    func bigCapture(_ w: World, writers: Int, code: PaymentCode) throws -> Event {
        let e = w.terminals[0].enrollment
        let capture = try SaleCapture(amount: cny(1000), paymentCode: code, merchantKey: e.ledgerMerchantKey)
        let context = VersionVector(try (0..<writers).map { (try ReplicaId.terminal(UInt32(500_000 + $0)), UInt64(1 << 39)) })
        return Event(dot: try Dot(replica: e.terminal, seq: 1), hlc: HLCTimestamp(millis: UInt64(w.tick()), logical: 0),
                     context: context, body: .saleCaptured(capture))
    }

    func pushRaw(_ w: World, _ records: [[UInt8]]) throws -> SyncMessage {
        let e = w.terminals[0].enrollment
        let frame = try FrameSealer(dictionary: ledgerDictionary, key: e.journalKey).seal(records, firstSequence: 1).bytes
        return w.central.handle(.push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: [frame])))
    }

    @Test("a version-2 capture that fits but whose relayed form (version 1, without the code) exceeds recordBytesMax is refused at push naming the dot and both sizes; pulls go on")
    func relayedFormTooLarge() throws {
        let w = try World(terminals: 2)
        var rng = Rng(state: 24)
        let code = wechatCode(&rng)
        // The largest context whose version-2 record still fits.
        var writers = 1
        while RecordCodec.encodedSize(try bigCapture(w, writers: writers + 1, code: code)) <= Limits.recordBytesMax { writers += 1 }
        let event = try bigCapture(w, writers: writers, code: code)
        let v2 = RecordCodec.encode(event)
        let relayed = try #require(RecordCodec.relayedWithoutCode(event))
        #expect(v2[0] == 2 && v2.count > Limits.recordBytesMax - 10 && v2.count <= Limits.recordBytesMax)
        #expect(RecordCodec.encodedSize(relayed) > Limits.recordBytesMax && RecordCodec.encodeIfFits(relayed) == nil)
        let reply = try pushRaw(w, [v2])
        guard case .refusal(let r) = reply else { Issue.record("accepted: \(reply)"); return }
        #expect(r.code == "tooLarge", "\(r)")
        #expect(r.message.contains("\(event.dot)") && r.message.contains("\(v2.count) bytes") && r.message.contains("\(RecordCodec.encodedSize(relayed)) bytes"), "\(r.message)")
        #expect(w.central.head == 0 && w.central.acknowledged(w.terminals[0].terminal) == 0)
        try w.sync(1)  // before the check, this pull trapped in RecordCodec.encode
        // One writer fewer: its relayed form fits, so it is accepted and relayed.
        let fits = try bigCapture(w, writers: writers - 2, code: code)
        #expect(RecordCodec.encodedSize(try #require(RecordCodec.relayedWithoutCode(fits))) <= Limits.recordBytesMax)
        guard case .ack(let ack) = try pushRaw(w, [RecordCodec.encode(fits)]) else { Issue.record("refused a capture whose relayed form fits"); return }
        #expect(ack.accepted == 1)
        try w.sync(1)
        #expect(w.terminals[1].state.sales[SaleId(fits.dot)] != nil)
    }

    @Test("a version-2 record that is not a capture holding its code (a refund request, a capture without a code) is refused at push as malformed naming dot and field; nothing is stored or relayed")
    func versionTwoOnlyForCodeCaptures() throws {
        let w = try World(terminals: 2)
        let e = w.terminals[0].enrollment
        var rng = Rng(state: 25)
        let code = wechatCode(&rng)
        let capture = try SaleCapture(amount: cny(1000), paymentCode: code, merchantKey: e.ledgerMerchantKey)
        let sale = Event(dot: try Dot(replica: e.terminal, seq: 1), hlc: HLCTimestamp(millis: UInt64(w.tick()), logical: 0),
                         context: VersionVector(), body: .saleCaptured(capture))
        let request = try RefundRequest(sale: SaleId(sale.dot), saleAmount: cny(1000), amount: cny(400), reason: .wrongSize, resolution: .refund, contact: nil)
        let refund = Event(dot: try Dot(replica: e.terminal, seq: 2), hlc: HLCTimestamp(millis: UInt64(w.tick()), logical: 0),
                           context: VersionVector(), body: .refundRequested(request))
        let noCode = Event(dot: sale.dot, hlc: sale.hlc, context: sale.context, body: .saleCaptured(capture.withoutPaymentCode()))
        for (records, bad) in [([RecordCodec.encode(sale), RecordCodec.encode(refund, version: 2)], refund.dot),
                               ([RecordCodec.encode(noCode, version: 2)], noCode.dot)] {
            #expect(try RecordCodec.decode(records.last!, context: e.recordContext).dot == bad, "the codec itself takes it")
            let reply = try pushRaw(w, records)
            guard case .refusal(let r) = reply else { Issue.record("accepted: \(reply)"); continue }
            #expect(r.code == "malformed" && r.message.contains("\(bad)") && r.message.contains("field version"), "\(r)")
            #expect(w.central.head == 0)
        }
        // The same events in the versions a writer writes are accepted, and pulled in version 1 only.
        guard case .ack(let ack) = try pushRaw(w, [RecordCodec.encode(sale), RecordCodec.encode(refund)]) else { Issue.record("refused"); return }
        #expect(ack.accepted == 2)
        try w.sync(1)
        #expect(w.terminals[1].state.tickets[TicketId(refund.dot)] != nil)
    }

    @Test("central recover with a terminal's enrollment file missing refuses naming the file and drops nothing (a missing merchant key is not damage); open names it too; restored, recover drops only the damaged frame")
    func recoverWithoutEnrollmentFile() throws {
        var rng = Rng(state: 26)
        let w = try World(terminals: 2)
        _ = try w.capture(1, 900, code: wechatCode(&rng))
        try w.sync(1)                                                                      // frame 0: terminal 2
        for n in 0..<3 { _ = try w.capture(0, Int64(100 + n), code: wechatCode(&rng)) }  // version-2 captures of terminal 1
        try w.sync(0)
        _ = try w.capture(1, 901, code: wechatCode(&rng))
        try w.sync(1)                                                                      // a frame after: the damage is inside
        let t1 = w.terminals[0].terminal
        let dir = w.dir.path + "/central"
        try w.central.close()
        let enrollment = dir + "/terminals/\(t1.rawValue).json"
        let saved = try Data(contentsOf: URL(fileURLWithPath: enrollment))
        try FileManager.default.removeItem(atPath: enrollment)
        #expect {
            _ = try FileCentralStore.open(directory: dir)
        } throws: { error in "\(error)".contains(enrollment) }
        // Damage terminal 2's first frame: terminal 1's records after it are intact.
        let segment = try onlySegment(dir + "/journal")
        let frames = try frameLayout(segment)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        bytes[Int(frames[0].offset) + JournalLimits.frameHeaderBytes + 4] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let journalBefore = storeBytes(dir + "/journal")
        #expect {
            _ = try FileCentralStore.recover(directory: dir)
        } throws: { error in
            let text = "\(error)"
            return text.contains(enrollment) && text.contains("missing or unreadable")
        }
        #expect(storeBytes(dir + "/journal") == journalBefore, "the refusal dropped nothing")
        #expect(!FileManager.default.fileExists(atPath: dir + "/journal.rebuilt") && !FileManager.default.fileExists(atPath: dir + "/journal.salvaged"))
        try saved.write(to: URL(fileURLWithPath: enrollment))
        let report = try FileCentralStore.recover(directory: dir)
        // Terminal 2's damaged frame is not read; its seq 2 is dropped by the sequence gate; every event of terminal 1 is kept.
        #expect(report.rebuilt && report.eventsKept == 3 && report.eventsDropped == 1, "\(report)")
        w.central = try FileCentralStore.open(directory: dir)
        #expect(w.central.acknowledged(t1) == 3)
        try w.syncAll()
        #expect(w.central.acknowledged(w.terminals[1].terminal) == 2)
    }

    /// Full record decodes `body` makes on this task.
    func fullDecodes(_ body: () throws -> Void) rethrows -> Int {
        let counter = RecordCodec.DecodeCounter()
        try RecordCodec.$decodeCounter.withValue(counter) { try body() }
        return counter.count
    }

    @Test("pull and fetch skip records from their headers: an own, a covered or another merchant's record is never decoded in full; only what is relayed is")
    func skippedRecordsNotDecoded() throws {
        var rng = Rng(state: 27)
        let w = try World(terminals: 2)
        for n in 0..<5 { _ = try w.capture(0, Int64(100 + n), code: wechatCode(&rng)) }  // version-2 captures: an HMAC each to decode
        try w.sync(0)
        let t1 = w.terminals[0].terminal, t2 = w.terminals[1].terminal
        let other = try ReplicaId.terminal(9)
        _ = try w.central.enroll(terminal: other, merchant: "other-shop")
        func pull(_ terminal: ReplicaId, knowledge: VersionVector = VersionVector()) -> SyncMessage {
            w.central.handle(.pull(.init(terminal: terminal, cursor: 0, knowledge: knowledge)))
        }
        var reply = pull(t1)
        #expect(fullDecodes { reply = pull(t1) } == 0, "the terminal's own records")
        guard case .events(let own) = reply else { Issue.record("\(reply)"); return }
        #expect(own.frames.isEmpty && own.cursor == 5)
        #expect(fullDecodes { reply = pull(t2, knowledge: VersionVector([(t1, 5)])) } == 0, "covered by the puller's knowledge")
        #expect(fullDecodes { reply = pull(other) } == 0, "another merchant's records")
        guard case .events(let foreign) = reply else { Issue.record("\(reply)"); return }
        #expect(foreign.frames.isEmpty && foreign.cursor == 5)
        #expect(fullDecodes { reply = pull(t2, knowledge: VersionVector([(t1, 3)])) } == 2, "only the two relayed")
        guard case .events(let relayed) = reply else { Issue.record("\(reply)"); return }
        #expect(relayed.frames.count == 1 && relayed.cursor == 5)
        // Fetch returns the terminal's own records byte for byte from their headers.
        var fetched = SyncMessage.fetched(.init(cursor: 0, more: false, frames: []))
        #expect(fullDecodes { fetched = w.central.handle(.fetch(.init(terminal: t1, from: 2, cursor: 0))) } == 0)
        guard case .fetched(let f) = fetched else { Issue.record("\(fetched)"); return }
        let records = try f.frames.flatMap { frame in
            try Frames.records(frame, dictionaryID: ledgerDictionary.id, keyID: w.terminals[0].enrollment.journalKey.id,
                               decoder: FrameDecoder(dictionaries: [ledgerDictionary], key: w.terminals[0].enrollment.journalKey), file: "fetched").records
        }
        #expect(try records == (2...5).map { try #require(try w.terminals[0].ownRecord(seq: UInt64($0))) })
    }

    @Test("a key book whose reload fails names the store and the failure in the decode error, instead of hiding it; a reload that reads clears it")
    func keyBookReloadFailureNamed() throws {
        var rng = Rng(state: 28)
        let w = try World(terminals: 1)
        let e = w.terminals[0].enrollment
        let capture = try SaleCapture(amount: cny(100), paymentCode: wechatCode(&rng), merchantKey: e.ledgerMerchantKey)
        let record = RecordCodec.encode(Event(dot: try Dot(replica: e.terminal, seq: 1), hlc: HLCTimestamp(millis: UInt64(baseMillis), logical: 0),
                                              context: VersionVector(), body: .saleCaptured(capture)))
        var fail = true
        var book: MerchantKeyBook!
        book = MerchantKeyBook(reload: { () throws(SyncError) in
            if fail { throw SyncError(.io, "connection reset", location: "postgres://central table terminals") }
            book.note(e)
        }, source: { _ in "postgres://central table terminals" })
        do {
            _ = try RecordCodec.decode(record, context: book.context)
            Issue.record("decoded without the key")
        } catch {
            #expect(error.code == .merchantKeyMissing)
            #expect(error.message.contains("postgres://central table terminals") && error.message.contains("connection reset"), "\(error.message)")
        }
        fail = false
        #expect(try RecordCodec.decode(record, context: book.context).dot.replica == e.terminal)
    }
}
