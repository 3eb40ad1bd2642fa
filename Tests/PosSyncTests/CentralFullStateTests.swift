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
}
