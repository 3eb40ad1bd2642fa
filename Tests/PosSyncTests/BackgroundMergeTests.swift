import Dispatch
import Foundation
import Testing
@testable import PosJournal
@testable import PosLedger
@_spi(Testing) @testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire
import PosTestSupport

/// A file central and one terminal of merchant "m", captures pushed through the terminal's sync.
private final class MergeWorld {
    let tmp = TempDir("bgmerge")
    let central: CentralHandler
    let terminal: TerminalReplica
    let enrollment: Enrollment
    var now = baseMillis
    var rng: Rng
    var codes: [PaymentCode] = []
    var dir: String { tmp.path + "/c" }

    init(seed: UInt64, fileSystem: any JournalFileSystem = PosixFileSystem(), snapshotEvents: Int) throws {
        rng = Rng(state: seed)
        central = try FileCentralStore.create(directory: tmp.path + "/c", fileSystem: fileSystem, snapshotEvents: snapshotEvents)
        enrollment = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "m")
        terminal = try TerminalReplica.initialize(directory: tmp.path + "/t", enrollment: enrollment)
    }

    /// `count` captures (one in `sharedOneIn` reusing an earlier code), then a sync.
    func captures(_ count: Int, sharedOneIn: Int = 8) throws {
        for _ in 0..<count {
            now += 1000
            let code = !codes.isEmpty && Int.random(in: 0..<sharedOneIn, using: &rng) == 0 ? codes[Int.random(in: 0..<codes.count, using: &rng)] : wechatCode(&rng)
            codes.append(code)
            _ = try terminal.record(.saleCaptured(try SaleCapture(amount: cny(Int64.random(in: 100...9_999, using: &rng)), paymentCode: code,
                                                                  merchantKey: enrollment.ledgerMerchantKey)), wallMillis: now)
        }
        try sync()
    }

    func sync() throws {
        _ = try terminal.sync(via: InProcessTransport(central: central), wallMillis: now)
    }

    func runFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir + "/state").filter { $0.hasPrefix("run-") }.sorted()
    }
}

/// What two centrals fed the same terminal events must agree on (their keys, and so duplicate keys, differ):
/// each sale's status and amount, and the conflicts' count.
private func outline(_ s: LedgerState) -> [String] {
    s.sales.keys.sorted().map { "\($0) \(s.sales[$0]!.status) \(s.sales[$0]!.amount.map { "\($0)" } ?? "-")" } + ["conflicts \(s.conflicts.count)"]
}

@Suite("central's snapshot merges on a second thread")
struct BackgroundMergeTests {
    @Test("merges on a second thread make the runs merging at the flush makes (names, statistics, state), while decisions and reads go on between flushes")
    func sameScheduleAsMergingAtTheFlush() throws {
        for round in 0..<testCount("POSSYNC_BACKGROUND_MERGE_ROUNDS", default: 4) {
            let seed = TestSeed("background merge schedule, round \(round)", replays: "the captures, decisions and reads")
            let background = try MergeWorld(seed: seed.value, snapshotEvents: 40)
            let atFlush = try MergeWorld(seed: seed.value, snapshotEvents: 40)
            try mergeAtTheFlush(atFlush.central)
            var steps = Rng(state: seed.value ^ 0x5EED)
            for step in 0..<60 {
                let count = Int.random(in: 1...30, using: &steps)
                try background.captures(count)
                try atFlush.captures(count)
                // Central's decision on an older sale (often only in the runs: loaded from them, merges under way or not).
                let sales = background.terminal.state.sales.keys.sorted()
                if let sale = sales.isEmpty ? nil : sales[Int.random(in: 0..<sales.count, using: &steps)], Bool.random(using: &steps) {
                    let a = try? background.central.record(EventBody.saleConfirmed(sale), wallMillis: background.now)
                    let b = try? atFlush.central.record(EventBody.saleConfirmed(sale), wallMillis: atFlush.now)
                    #expect((a == nil) == (b == nil), "\(seed.replay): step \(step): the decision on \(sale) was taken by one central only")
                }
                if Int.random(in: 0..<10, using: &steps) == 0 {
                    #expect(try outline(background.central.state) == outline(atFlush.central.state), "\(seed.replay): step \(step): the states differ")
                }
            }
            try background.sync()
            try atFlush.sync()
            #expect(background.central.snapshotStatistics == atFlush.central.snapshotStatistics, "\(seed.replay)")
            #expect(background.central.snapshotStatistics.compactions > 3, "\(seed.replay): \(background.central.snapshotStatistics)")
            #expect(try background.runFiles() == (try atFlush.runFiles()), "\(seed.replay)")
            let state = try background.central.state
            #expect(outline(state) == outline(try atFlush.central.state), "\(seed.replay)")
            try background.central.close()
            try atFlush.central.close()
            #expect(state == (try journalTruth(background.dir)), "\(seed.replay): the state is not the fold of the journal")
            let reopened = try FileCentralStore.open(directory: background.dir, snapshotEvents: 40)
            #expect(try reopened.state == state, "\(seed.replay): reopened")
            try reopened.close()
        }
    }

    @Test("while a merge is under way, pushes and decisions read the runs it merges (sales loaded, duplicate codes found); once it ends one run serves, and the state is the journal's")
    func readsGoOnDuringAMerge() throws {
        let seed = TestSeed("background merge reads", replays: "the captures")
        let fs = MergeFaultFS()
        let w = try MergeWorld(seed: seed.value, fileSystem: fs, snapshotEvents: 100)
        let storage = try w.central.withStorage { (s) throws(SyncError) in s as! FileCentralStorage }
        fs.hold(merge: 1)
        try w.captures(100, sharedOneIn: 1_000_000)  // flush 1: one run
        try w.captures(100, sharedOneIn: 1_000_000)  // flush 2: two runs of one size, their merge starts and is held
        #expect(fs.arrived.wait(timeout: .now() + 30) == .success, "\(seed.replay): no merge started after the second flush")
        #expect(storage.runsServing == 2, "\(seed.replay)")
        // Below the flush interval: captures reusing codes of both runs' sales, and decisions on sales of both runs.
        let first = w.codes[5], second = w.codes[150]
        w.now += 1000
        for code in [first, second] {
            _ = try w.terminal.record(.saleCaptured(try SaleCapture(amount: cny(500), paymentCode: code, merchantKey: w.enrollment.ledgerMerchantKey)),
                                      wallMillis: w.now)
        }
        try w.sync()
        let sales = w.terminal.state.sales.keys.sorted()
        _ = try w.central.record(.saleConfirmed(sales[10]), wallMillis: w.now)
        _ = try w.central.record(.saleDeclined(sales[160]), wallMillis: w.now)
        #expect(storage.runsServing == 2, "\(seed.replay): the merge is held, yet its runs were replaced")
        fs.release()
        let stats = w.central.snapshotStatistics
        #expect(stats.runs == 1 && stats.compactions == 1, "\(seed.replay): \(stats)")
        let state = try w.central.state
        #expect(state.conflicts.count >= 2, "\(seed.replay): the reused codes are not flagged as duplicates: \(state.conflicts.count) conflicts")
        #expect(state.sales[sales[10]]?.status == .confirmed && state.sales[sales[160]]?.status == .declined, "\(seed.replay)")
        try w.central.close()
        #expect(state == (try journalTruth(w.dir)), "\(seed.replay): the state is not the fold of the journal")
        let files = try w.runFiles()
        #expect(files.count == 1, "\(seed.replay): \(files)")
    }

    @Test("a merge that fails keeps its inputs (logged; central goes on) and the next flush's schedule merges them again")
    func failedMergeRetriedAtTheNextFlush() throws {
        let seed = TestSeed("background merge failure", replays: "the captures")
        let fs = MergeFaultFS()
        let w = try MergeWorld(seed: seed.value, fileSystem: fs, snapshotEvents: 100)
        fs.fail(.create, merge: 1)
        try w.captures(100, sharedOneIn: 1_000_000)
        try w.captures(100, sharedOneIn: 1_000_000)  // two runs of one size: their merge fails
        var stats = w.central.snapshotStatistics
        #expect(stats.runs == 2 && stats.compactions == 0 && fs.mergesCreated == 1, "\(seed.replay): \(stats), \(fs.mergesCreated) merges started")
        #expect(try w.runFiles().count == 2, "\(seed.replay)")
        try w.captures(100, sharedOneIn: 1_000_000)  // a third run: the schedule merges the newest two, then the oldest with them
        stats = w.central.snapshotStatistics
        #expect(stats.runs == 1 && stats.compactions == 2, "\(seed.replay): \(stats)")
        let state = try w.central.state
        #expect(state.sales.count == 300, "\(seed.replay)")
        try w.central.close()
        #expect(state == (try journalTruth(w.dir)), "\(seed.replay): the state is not the fold of the journal")
        let files = try w.runFiles()
        #expect(files == [CentralState.runName(1...3)], "\(seed.replay): \(files)")
    }
}
