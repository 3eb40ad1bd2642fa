import Foundation
import Testing
@testable import PosJournal
@testable import PosLedger
@_spi(Testing) @testable import PosCentral
@testable import PosCentralFiles
@testable import PosWire
import PosTestSupport

/// The nightly job's import checks every batch of a bundle before it applies
/// the first, so a bundle refused part-way applies nothing; a plain import
/// keeps the batches before the refused one (each is all or nothing).
@Suite("bundle import: every batch checked before the first is applied")
struct BundleCheckFirstTests {
    /// A bundle of terminal 1 whose first frame is a valid capture and whose second a sale
    /// confirmation (central's to write: refused), one frame per import batch.
    static func bundle(_ w: World, rng: inout Rng) throws -> String {
        let t = w.terminals[0]
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: t.enrollment.journalKey)
        let capture = try SaleCapture(amount: cny(500), paymentCode: wechatCode(&rng), merchantKey: t.enrollment.ledgerMerchantKey)
        let first = RecordCodec.encode(Event(dot: try Dot(replica: t.terminal, seq: 1), hlc: HLCTimestamp(millis: UInt64(baseMillis), logical: 0),
                                             context: VersionVector(), body: .saleCaptured(capture)))
        let second = RecordCodec.encode(Event(dot: try Dot(replica: t.terminal, seq: 2), hlc: HLCTimestamp(millis: UInt64(baseMillis), logical: 1),
                                              context: VersionVector(), body: .saleConfirmed(SaleId(try Dot(replica: t.terminal, seq: 1)))))
        let path = w.dir.path + "/mixed.bundle"
        let writer = try BundleWriter(path: path, header: BundleHeader(central: w.central.centralID, terminal: t.terminal, dictionaryID: ledgerDictionary.id,
                                                                       keyID: t.enrollment.journalKey.id, firstSequence: 1, lastSequence: 2, frameCount: 2))
        try writer.write(try sealer.seal([first], firstSequence: 1).bytes)
        try writer.write(try sealer.seal([second], firstSequence: 2).bytes)
        try writer.finish()
        w.central.testOnlyFaults.importBatchFramesMax = 1
        return path
    }

    @Test("a bundle whose second batch is refused: checked first, nothing applied; a plain import keeps the first batch")
    func refusedPartWay() throws {
        var rng = Rng(state: 21)
        let w = try World(terminals: 1)
        let path = try Self.bundle(w, rng: &rng)
        do {
            _ = try w.central.importBundle(path: path, checkingEveryBatchFirst: true)
            Issue.record("the bundle was taken")
        } catch {
            #expect(error.code == .notAuthorized && "\(error)".contains("batch 1"), "\(error)")
        }
        #expect(w.central.head == 0, "nothing applied")
        #expect(throws: SyncError.self) { _ = try w.central.importBundle(path: path) }
        #expect(w.central.head == 1, "a plain import applies the batch before the refused one")
    }
}
