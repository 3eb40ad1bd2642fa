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
