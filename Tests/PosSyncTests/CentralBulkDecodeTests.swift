import Foundation
import PosTestSupport
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosWire

@Suite("central's bulk decode (two threads)")
struct CentralBulkDecodeTests {
    @Test("a batch decoded on two threads gives the events, in order, and the first record that does not decode, as one thread does")
    func twoThreadsAgreeWithOne() throws {
        let seed = TestSeed("bulk decode against one thread", replays: "the batches, their events and which records are damaged")
        var rng = Rng(state: seed.value)
        let key = MerchantKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let context = RecordDecodeContext(merchantKey: key)
        let writer = try ReplicaId.terminal(7)
        var parallelBatches = 0, failedBatches = 0
        for round in 0..<40 {
            // Sizes on both sides of the two-thread threshold; some batches with damaged records.
            let count = Int.random(in: 0...(3 * BulkDecode.parallelRecordsMin), using: &rng)
            var records: [[UInt8]] = []
            for s in 0..<count {
                let dot = try Dot(replica: writer, seq: UInt64(s + 1))
                let body: EventBody
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: body = .saleConfirmed(SaleId(try Dot(replica: writer, seq: UInt64(Int.random(in: 1...1000, using: &rng)))))
                case 1: body = .sequenceVoid
                default: body = .saleCaptured(try SaleCapture(amount: cny(Int64.random(in: 100...99_999, using: &rng)), paymentCode: wechatCode(&rng), merchantKey: key))
                }
                records.append(RecordCodec.encode(Event(dot: dot, hlc: HLCTimestamp(millis: UInt64(baseMillis) + UInt64(s), logical: 0), context: VersionVector(), body: body)))
            }
            if count > 0 && Int.random(in: 0..<3, using: &rng) == 0 {
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let i = Int.random(in: 0..<count, using: &rng)
                    records[i] = Int.random(in: 0..<2, using: &rng) == 0 ? Array(records[i].prefix(records[i].count / 2)) : [0xFF, 0xFF, 0xFF]
                }
            }
            // One thread, one record at a time: the events up to the first that does not decode.
            var expected: [Event] = []
            var firstBad: Int?
            for (i, r) in records.enumerated() {
                do throws(LedgerError) { expected.append(try RecordCodec.decode(r, context: context)) } catch {
                    firstBad = i
                    break
                }
            }
            if count >= BulkDecode.parallelRecordsMin { parallelBatches += 1 }
            switch BulkDecode.map(records, { (r) throws(LedgerError) in (try RecordCodec.decode(r, context: context), eventDigest(r)) }) {
            case .success(let decoded):
                #expect(firstBad == nil, "\(seed.replay): round \(round) of \(count) records: two threads decoded record \(firstBad ?? -1), which one thread refuses")
                #expect(decoded.map(\.0) == expected, "\(seed.replay): round \(round) of \(count) records: the events differ")
                #expect(decoded.map(\.1) == records.map(eventDigest), "\(seed.replay): round \(round): the digests differ")
            case .failure(let f):
                failedBatches += 1
                #expect(f.index == firstBad, "\(seed.replay): round \(round) of \(count) records: two threads stop at record \(f.index), one thread at \(firstBad.map { "\($0)" } ?? "none")")
            }
        }
        #expect(parallelBatches > 0 && failedBatches > 0, "\(seed.replay): the rounds did not cover both paths (\(parallelBatches) on two threads, \(failedBatches) failed)")
    }

    @Test("a central reopened with no runs replays its journal, decoded a batch at a time on two threads, into the fold of every event and the digest of each")
    func replayWithoutRunsAgreesWithTheJournal() throws {
        let seed = TestSeed("replay without runs against the journal", replays: "the captures, their codes and central's outcomes")
        var rng = Rng(state: seed.value)
        let dir = TempDir("bulk-replay")
        // More than one replay batch (4,096 records), flushed into runs every 1,000 events as it goes.
        var central = try FileCentralStore.create(directory: dir.path + "/central", snapshotEvents: 1000)
        let (merchantKey, terminals) = try pushCaptures(central, terminals: 3, perTerminal: 1700, sharedCodeOneIn: 10, &rng)
        // Central's own events between the terminals': outcomes for some sales.
        for _ in 0..<300 {
            let sale = SaleId(try Dot(replica: terminals[Int.random(in: 0..<terminals.count, using: &rng)], seq: UInt64(Int.random(in: 1...1700, using: &rng))))
            _ = try? central.record(Int.random(in: 0..<2, using: &rng) == 0 ? .saleConfirmed(sale) : .saleDeclined(sale), wallMillis: baseMillis + 10_000_000)
        }
        try central.close()
        try FileManager.default.removeItem(atPath: dir.path + "/central/state")
        try FileManager.default.createDirectory(atPath: dir.path + "/central/state", withIntermediateDirectories: true)
        central = try FileCentralStore.open(directory: dir.path + "/central", snapshotEvents: 1000)
        defer { try? central.close() }
        // The straightforward fold of every event in central's journal, decoded one at a time, with each one's digest.
        let context = RecordDecodeContext(merchantKey: merchantKey)
        var events: [Event] = []
        var digests: [(Dot, UInt64)] = []
        try central.withStorage { (storage) throws(SyncError) in
            try storage.scan(after: 0) { (_, record) throws(SyncError) in
                do throws(LedgerError) {
                    let e = try RecordCodec.decode(record, context: context)
                    events.append(e)
                    digests.append((e.dot, eventDigest(record)))
                } catch { throw SyncError(error, location: "journal") }
                return true
            }
        }
        let truth = LedgerState.fold(events)
        let stats = central.snapshotStatistics
        #expect(events.count > CentralState.bulkBatchEvents, "\(seed.replay): \(events.count) events")
        #expect(stats.written >= 3, "\(seed.replay): the replay flushed \(stats.written) runs")
        let state = try central.state
        #expect(state.canonicalText == truth.canonicalText && state.conflicts == truth.conflicts,
                "\(seed.replay): the state replayed without runs differs from the fold of the journal")
        #expect(!truth.conflicts.isEmpty, "\(seed.replay): no code was shared")
        var wrong = 0
        try central.withStorage { (storage) throws(SyncError) in
            for (dot, digest) in digests where try storage.digest(of: dot) != digest { wrong += 1 }
        }
        #expect(wrong == 0, "\(seed.replay): \(wrong) of \(digests.count) digests differ from the journal's records")
    }
}
