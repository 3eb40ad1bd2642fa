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
        let (merchantKey, _) = try pushCaptures(central, terminals: terminals, perTerminal: perTerminal, sharedCodeOneIn: 20, &rng)
        let state = try central.state
        // The straightforward fold of every event central holds, in journal order.
        let events = try Self.journalEvents(central, merchantKey)
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

    /// The pipeline behind the full-state read: batches of records decoded on one queue while the caller
    /// reads the next, folded on another. Confirmations by central of distinct sales (each a sale awaiting
    /// its capture), so every record folded shows as one sale.
    @Test("the decode-and-fold pipeline folds what a fold of the decoded records gives, and stops at the first record that does not decode, naming its origin")
    func pipelineFoldsAndStopsAtUndecodable() throws {
        let context = RecordDecodeContext(merchantKey: MerchantKey(bytes: Array(0..<32)))
        var events: [Event] = []
        for seq in 1...UInt64(3 * FoldPipeline.sliceEvents + 17) {
            let dot = try Dot(replica: .central, seq: seq)
            events.append(Event(dot: dot, hlc: HLCTimestamp(millis: 1_700_000_000_000 + seq, logical: 0), context: VersionVector(),
                                body: .saleConfirmed(SaleId(try Dot(replica: try ReplicaId.terminal(1), seq: seq)))))
        }
        let records = events.map { RecordCodec.encode($0) }
        let cut = records.count / 3

        let whole = FoldPipeline(LedgerState(), context: context)
        whole.reserve(sales: records.count, tickets: 0)
        #expect(whole.decodeAndApply(Array(records[..<cut]), origins: Array(repeating: 0, count: cut)) == nil)
        #expect(whole.decodeAndApply(Array(records[cut...]), origins: Array(repeating: 1, count: records.count - cut)) == nil)
        let state = try whole.finish().get()
        #expect(state.sales.count == records.count)
        #expect(state == LedgerState.fold(events), "the pipeline's fold differs from the fold of the same events")

        // A record that does not decode in the second batch: reported (by a later call or by finish) with the
        // origin given for it, and the batch after it is not folded.
        var broken = Array(records[cut...])
        broken[broken.count / 2] = [0xFF, 0x00, 0x01]
        let failing = FoldPipeline(LedgerState(), context: context)
        #expect(failing.decodeAndApply(Array(records[..<cut]), origins: Array(repeating: 0, count: cut)) == nil)
        _ = failing.decodeAndApply(broken, origins: Array(repeating: 7, count: broken.count))
        let later = failing.decodeAndApply(Array(records[..<1]), origins: [9])
        #expect(later?.origin == 7, "the failure was not reported by the next batch handed over")
        switch failing.finish() {
        case .success: Issue.record("a batch with a record that does not decode was folded")
        case .failure(let f): #expect(f.origin == 7)
        }
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
