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

// Review of "snapshot merges on a second thread" (48c1a74): adversarial tests of its claim (sync-protocol.md,
// "Central state and snapshots" -> "Runs", "Writing", "Opening").


/// Checks that `work` (started on another thread) waits while `fs` holds a merge, and returns once it is released.
private func expectWaitsForTheHeldMerge<T>(_ work: OffThread<T>, _ fs: MergeFaultFS, _ label: String) {
    #expect(work.done.wait(timeout: .now() + 0.3) == .timedOut, "\(label): returned while the merge was held")
    fs.release()
    #expect(work.done.wait(timeout: .now() + 30) == .success, "\(label): did not return once the merge was released")
}

/// A value handed to another thread by a test that waits for it (the test's own synchronization).
private struct Handed<T>: @unchecked Sendable { let value: T }

/// `body` run on another thread, started at once: `done` is signalled when it has returned, and `outcome` is then its result.
private final class OffThread<T>: @unchecked Sendable {  // `outcome` is written before `done` is signalled, read after
    let done = DispatchSemaphore(value: 0)
    private(set) var outcome: Result<T, any Error>?
    init(_ body: @escaping () throws -> T) {
        let work = Handed(value: body)
        DispatchQueue.global().async { [self] in
            outcome = Result { try work.value() }
            done.signal()
        }
    }
}

/// A file central (on `fs`, at `dir`) and one terminal of merchant "m" on a disk of its own.
private final class ReviewWorld {
    let tmp: TempDir?
    let dir: String
    let fs: any JournalFileSystem
    let snapshotEvents: Int
    var central: CentralHandler
    let terminal: TerminalReplica
    let enrollment: Enrollment
    /// The terminal's and central's wall clock (central keeps no clock file: its writes are the journal's and the runs').
    let clock = FixedClock(baseMillis)
    var now: Int64 {
        get { clock.millis }
        set { clock.advance(by: newValue - clock.millis) }
    }
    var rng: Rng
    var codes: [PaymentCode] = []

    /// On the real file system (`fs` wrapping `PosixFileSystem`) under a fresh directory, or on a simulated one at `/c`.
    init(seed: UInt64, fs: any JournalFileSystem, simulated: Bool, snapshotEvents: Int) throws {
        rng = Rng(state: seed)
        self.fs = fs
        self.snapshotEvents = snapshotEvents
        tmp = simulated ? nil : TempDir("bgmerge-review")
        dir = simulated ? "/c" : tmp!.path + "/c"
        central = try FileCentralStore.create(directory: dir, fileSystem: fs, environment: CentralEnvironment(wallMillis: clock.reading), snapshotEvents: snapshotEvents)
        enrollment = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "m")
        terminal = simulated
            ? try TerminalReplica.initialize(directory: "/t", enrollment: enrollment, fileSystem: SimulatedFileSystem(seed: seed ^ 0x7E7))
            : try TerminalReplica.initialize(directory: tmp!.path + "/t", enrollment: enrollment)
    }

    /// `count` captures (one in 8 reusing an earlier code), then a sync (`tolerant`: a failed sync is not an error).
    func captures(_ count: Int, tolerant: Bool = false) throws {
        for _ in 0..<count {
            now += 1000
            let code = !codes.isEmpty && Int.random(in: 0..<8, using: &rng) == 0 ? codes[Int.random(in: 0..<codes.count, using: &rng)] : wechatCode(&rng)
            codes.append(code)
            _ = try terminal.record(.saleCaptured(try SaleCapture(amount: cny(Int64.random(in: 100...9_999, using: &rng)), paymentCode: code,
                                                                  merchantKey: enrollment.ledgerMerchantKey)), wallMillis: now)
        }
        if tolerant { _ = try? sync() } else { try sync() }
    }

    func sync() throws { _ = try terminal.sync(via: InProcessTransport(central: central), wallMillis: now) }

    /// A world on `fs` whose first merge (of its first two runs, one size each) is under way, held at `fs`'s gate.
    static func mergeHeld(seed: UInt64, fs: MergeFaultFS, simulated: Bool) throws -> ReviewWorld {
        fs.hold(merge: 1)
        let w = try ReviewWorld(seed: seed, fs: fs, simulated: simulated, snapshotEvents: 100)
        try w.twoRunsOfOneSize()
        #expect(fs.arrived.wait(timeout: .now() + 30) == .success, "seed \(seed): no merge started")
        return w
    }

    /// Two flushes of `snapshotEvents` captures each: two runs of one size, whose merge then starts.
    func twoRunsOfOneSize() throws {
        try captures(snapshotEvents)
        try captures(snapshotEvents)
    }

    /// Closes central (on the real file system) and checks that `state` is the fold of its journal, that
    /// central reopened holds it, and that `state/` then holds a chain of runs from generation 1.
    func closeAndCheckReopened(_ state: LedgerState, _ label: String) throws {
        try central.close()
        #expect(state == (try journalTruth(dir)), "\(label): the state is not the fold of the journal")
        try reopen()
        #expect(try central.state == state, "\(label): reopened")
        let files = try stateFiles()
        #expect(isChain(files), "\(label): after open, state/ holds \(files), not a chain of runs from generation 1")
        try central.close()
    }

    var storage: FileCentralStorage { try! central.withStorage { (s) throws(SyncError) in s as! FileCentralStorage } }

    /// The names in `state/`, sorted (runs, temporary files, set-aside runs).
    func stateFiles() throws -> [String] { try fs.listDirectory(dir + "/state").sorted() }

    func reopen() throws {
        central = try FileCentralStore.open(directory: dir, fileSystem: fs, environment: CentralEnvironment(wallMillis: clock.reading), snapshotEvents: snapshotEvents)
    }
}

/// The fold of the journal alone, read from a copy of a simulated store without its runs.
private func simulatedJournalTruth(_ disk: SimulatedFileSystem, _ dir: String) throws -> LedgerState {
    let copy = disk.copy(seed: 1)
    for name in copy.fileNames(in: dir + "/state") { try copy.removeFile(dir + "/state/" + name) }
    let c = try FileCentralStore.open(directory: dir, fileSystem: copy, snapshotEvents: Int.max)
    defer { try? c.close() }
    return try c.state
}

/// What two centrals fed the same terminal events agree on (their keys, and so their duplicate keys, differ):
/// each sale's status and amount, and the conflicts' count.
private func reviewOutline(_ s: LedgerState) -> [String] {
    s.sales.keys.sorted().map { "\($0) \(s.sales[$0]!.status) \(s.sales[$0]!.amount.map { "\($0)" } ?? "-")" } + ["conflicts \(s.conflicts.count)"]
}

/// Runs named as a chain from generation 1 (each starting after the one before).
private func isChain(_ names: [String]) -> Bool {
    var next: UInt32 = 1
    for name in names {
        guard let g = CentralState.parseRunName(name), g.lowerBound == next else { return false }
        next = g.upperBound + 1
    }
    return true
}

@Suite("review: central's snapshot merges on a second thread")
struct BackgroundMergeReviewTests {
    @Test("a merge failing at creation, at rename or at the directory fsync, anywhere in a cascade: the same runs, files and statistics as merging at the flush, the merges before it kept, and the journal's fold after reopening")
    func cascadeFaultsMatchMergingAtTheFlush() throws {
        let seed = TestSeed("background merge review: cascade faults", replays: "the captures")
        for fault in MergeFaultFS.Fault.allCases {
            for k in 1...6 {
                let label = "\(seed.replay): \(fault) of merge \(k)"
                let bgFS = MergeFaultFS(), syncFS = MergeFaultFS()
                bgFS.fail(fault, merge: k)
                syncFS.fail(fault, merge: k)
                let background = try ReviewWorld(seed: seed.value, fs: bgFS, simulated: false, snapshotEvents: 20)
                let atFlush = try ReviewWorld(seed: seed.value, fs: syncFS, simulated: false, snapshotEvents: 20)
                try mergeAtTheFlush(atFlush.central)
                var steps = Rng(state: seed.value ^ UInt64(k))
                for step in 0..<14 {
                    let count = Int.random(in: 10...45, using: &steps)
                    try background.captures(count)
                    try atFlush.captures(count)
                    let a = background.central.snapshotStatistics, b = atFlush.central.snapshotStatistics
                    #expect(a == b, "\(label): step \(step): statistics \(a) vs \(b)")
                    let fa = try background.stateFiles(), fb = try atFlush.stateFiles()
                    #expect(fa == fb, "\(label): step \(step): files \(fa) vs \(fb)")
                    guard a == b && fa == fb else { break }
                }
                #expect(bgFS.mergesCreated >= k, "\(label): only \(bgFS.mergesCreated) merges were made: the fault never fired")
                let state = try background.central.state
                #expect(reviewOutline(state) == reviewOutline(try atFlush.central.state), "\(label): the states differ")
                try atFlush.central.close()
                try background.closeAndCheckReopened(state, label)
            }
        }
    }

    @Test("a merge whose directory fsync failed leaves its run under its name: the next open takes it (and removes its inputs), and the state is the journal's")
    func mergeOutputLeftByAFailedFsyncIsTakenAtOpen() throws {
        let seed = TestSeed("background merge review: failed fsync output", replays: "the captures")
        let fs = MergeFaultFS()
        fs.fail(.syncDirectory, merge: 1)
        let w = try ReviewWorld(seed: seed.value, fs: fs, simulated: false, snapshotEvents: 100)
        try w.twoRunsOfOneSize()  // two runs of one size: their merge is renamed in place, its fsync fails
        let stats = w.central.snapshotStatistics
        #expect(stats.runs == 2 && stats.compactions == 0, "\(seed.replay): \(stats)")
        let files1 = try w.stateFiles()
        #expect(files1 == [CentralState.runName(1...1), CentralState.runName(1...2), CentralState.runName(2...2)], "\(seed.replay): \(files1)")
        let state = try w.central.state
        try w.central.close()
        try w.reopen()
        let files2 = try w.stateFiles()
        #expect(files2 == [CentralState.runName(1...2)], "\(seed.replay): \(files2)")
        #expect(try w.central.state == state, "\(seed.replay): reopened")
        try w.twoRunsOfOneSize()
        try w.closeAndCheckReopened(try w.central.state, "\(seed.replay): after two more flushes")
    }

    @Test("close waits for a merge under way, then the merged run is the only one; reopened, the state is the journal's")
    func closeWaitsForAMergeUnderWay() throws {
        let seed = TestSeed("background merge review: close during a merge", replays: "the captures")
        let fs = MergeFaultFS()
        let w = try ReviewWorld.mergeHeld(seed: seed.value, fs: fs, simulated: false)
        let central = w.central
        let close = OffThread { try central.close() }
        expectWaitsForTheHeldMerge(close, fs, "\(seed.replay): close")
        if case .failure(let error)? = close.outcome { Issue.record("\(seed.replay): close failed: \(error)") }
        let files4 = try w.stateFiles()
        #expect(files4 == [CentralState.runName(1...2)], "\(seed.replay): \(files4)")
        let truth = try journalTruth(w.dir)
        try w.reopen()
        #expect(try w.central.state == truth, "\(seed.replay): reopened")
        try w.central.close()
    }

    @Test("the replay at open flushes as it goes with merges under way: a chain of runs, no temporary file, the same runs from the same journal, and the journal's fold")
    func replayAtOpenWithMergesUnderWay() throws {
        let seed = TestSeed("background merge review: replay at open", replays: "the captures")
        let w = try ReviewWorld(seed: seed.value, fs: PosixFileSystem(), simulated: false, snapshotEvents: 1_000_000)
        var steps = Rng(state: seed.value)
        for _ in 0..<12 { try w.captures(Int.random(in: 20...60, using: &steps)) }
        try w.central.close()
        let truth = try journalTruth(w.dir)
        var seen: [[String]] = []
        for copy in 0..<2 {
            let d = TempDir("bgmerge-review-replay")
            let fm = FileManager.default
            try fm.removeItem(atPath: d.path)
            try fm.copyItem(atPath: w.dir, toPath: d.path)
            for name in try fm.contentsOfDirectory(atPath: d.path + "/state") { try fm.removeItem(atPath: d.path + "/state/" + name) }
            let c = try FileCentralStore.open(directory: d.path, snapshotEvents: 16)  // replays the whole journal, a flush every 16 events
            let stats = c.snapshotStatistics
            #expect(stats.written > 8 && stats.compactions > 4, "\(seed.replay): copy \(copy): \(stats)")
            let files = try fm.contentsOfDirectory(atPath: d.path + "/state").sorted()
            #expect(isChain(files), "\(seed.replay): copy \(copy): state/ holds \(files) after the replay")
            #expect(files.count == stats.runs, "\(seed.replay): copy \(copy): \(files) for \(stats)")
            #expect(try c.state == truth, "\(seed.replay): copy \(copy): the state is not the fold of the journal")
            try c.close()
            seen.append(files)
        }
        #expect(seen[0] == seen[1], "\(seed.replay): the same journal replayed made \(seen[0]) and \(seen[1])")
    }

    @Test("a crash while a merge is held at its start: the reopened central holds the fold of its journal and every acknowledged event, and no temporary file")
    func crashWhileAMergeIsHeld() throws {
        let seed = TestSeed("background merge review: crash during a merge", replays: "the captures and the crash")
        let disk = SimulatedFileSystem(seed: seed.value)
        let fs = MergeFaultFS(disk)
        let w = try ReviewWorld.mergeHeld(seed: seed.value, fs: fs, simulated: true)
        try w.captures(30)  // acknowledged while the merge is held
        let acknowledged = w.terminal.acknowledged
        let crashed = w.central
        disk.crash()
        try w.reopen()
        #expect(w.central.acknowledged(try ReplicaId.terminal(1)) >= acknowledged, "\(seed.replay): acknowledged events lost")
        let files = try w.stateFiles()
        #expect(!files.contains { $0.hasSuffix(".tmp") } && isChain(files), "\(seed.replay): \(files)")
        #expect(try w.central.state == (try simulatedJournalTruth(disk, w.dir)), "\(seed.replay): the state is not the fold of the journal")
        try w.central.close()
        // The crashed process's merge thread still waits: it fails, changing nothing, and is joined.
        fs.release(failing: true)
        _ = crashed.snapshotStatistics
    }

    @Test("a crash after a merge put its run in place but before it was installed: the reopened central takes the merged run, removes its inputs, and holds the journal's fold")
    func crashAfterAMergeBeforeItsInstall() throws {
        let seed = TestSeed("background merge review: crash before install", replays: "the captures and the crash")
        let disk = SimulatedFileSystem(seed: seed.value)
        let fs = MergeFaultFS(disk)
        let w = try ReviewWorld(seed: seed.value, fs: fs, simulated: true, snapshotEvents: 100)
        try w.twoRunsOfOneSize()  // flush 2: two runs of one size, their merge runs to its end
        #expect(fs.placed.wait(timeout: .now() + 30) == .success, "\(seed.replay): the merge's run was not placed")
        Thread.sleep(forTimeInterval: 0.2)  // the merge's thread opens its run and returns
        #expect(w.storage.runsServing == 2, "\(seed.replay): the merge was installed with no flush, read or append")
        let acknowledged = w.terminal.acknowledged
        disk.crash()
        try w.reopen()
        #expect(w.central.acknowledged(try ReplicaId.terminal(1)) >= acknowledged, "\(seed.replay): acknowledged events lost")
        let files5 = try w.stateFiles()
        #expect(files5 == [CentralState.runName(1...2)], "\(seed.replay): \(files5)")
        #expect(try w.central.state == (try simulatedJournalTruth(disk, w.dir)), "\(seed.replay): the state is not the fold of the journal")
        try w.central.close()
    }

    @Test("power fails at any operation of a push whose flush starts merges (the journal's, the flush's or the merges' thread): after the crash nothing acknowledged is lost and the state is the journal's fold")
    func powerCutAnywhereWithMergesUnderWay() throws {
        let seed = TestSeed("background merge review: power cut", replays: "the captures and the crashes")
        var fired = 0
        for n in 1...400 {
            let disk = SimulatedFileSystem(seed: seed.value &+ UInt64(n))
            let w = try ReviewWorld(seed: seed.value, fs: disk, simulated: true, snapshotEvents: 6)
            for _ in 0..<5 { try w.captures(3) }  // runs on disk, merged
            _ = w.central.snapshotStatistics
            disk.cutPower(afterOperations: n)
            try w.captures(6, tolerant: true)  // a flush; merges start on the second thread
            try w.captures(6, tolerant: true)  // another flush: waits for them
            _ = w.central.snapshotStatistics   // the crashed process's merges end before the crash
            guard disk.isPowerOff else { break }  // the steps have fewer operations than n: every one was cut
            fired += 1
            let acknowledged = w.terminal.acknowledged
            let summary = disk.crash()
            let label = "\(seed.replay): power cut at operation \(n) (\(summary))"
            try w.reopen()
            #expect(w.central.acknowledged(try ReplicaId.terminal(1)) >= acknowledged, "\(label): acknowledged events lost")
            _ = w.central.snapshotStatistics  // the replay at open may have started merges: they end here
            let files = try w.stateFiles()
            #expect(!files.contains { $0.hasSuffix(".tmp") } && isChain(files.filter { !$0.contains(".pss.") }), "\(label): \(files)")
            let state = try w.central.state
            #expect(state == (try simulatedJournalTruth(disk, w.dir)), "\(label): the state is not the fold of the journal")
            try w.captures(6)
            #expect(try w.central.state.canonicalText == w.terminal.state.canonicalText, "\(label): central and terminal differ after a sync")
            try w.central.close()
        }
        #expect(fired > 30, "power was cut at \(fired) operations")
        print("background merge review: power was cut at \(fired) operations in turn")
    }

    @Test("a read of every run (the full state, the sales awaiting an outcome) waits for a merge under way, then reads the merged runs: the journal's fold")
    func readsOfEveryRunWaitForAMerge() throws {
        let seed = TestSeed("background merge review: reads of every run during a merge", replays: "the captures")
        let fs = MergeFaultFS()
        let w = try ReviewWorld.mergeHeld(seed: seed.value, fs: fs, simulated: false)
        let central = w.central
        let read = OffThread { (try central.state, try central.salesAwaitingOutcome()) }
        expectWaitsForTheHeldMerge(read, fs, "\(seed.replay): a read of every run")
        guard case .success(let (state, awaiting))? = read.outcome else {
            Issue.record("\(seed.replay): the read failed: \(String(describing: read.outcome))")
            return
        }
        #expect(w.storage.runsServing == 1, "\(seed.replay): the merged run does not serve after the read")
        #expect(awaiting == state.sales.values.filter { $0.status == .captured || $0.status == .voidDuplicate }.map(\.id).sorted(),
                "\(seed.replay): sales awaiting an outcome")
        try w.central.close()
        #expect(state == (try journalTruth(w.dir)), "\(seed.replay): the state is not the fold of the journal")
    }

    @Test("a flush while a merge is under way waits for it before its run joins the chain (one cascade at a time); then the runs are the schedule's and the state the journal's")
    func aFlushWaitsForTheMergeUnderWay() throws {
        let seed = TestSeed("background merge review: a flush during a merge", replays: "the captures")
        let fs = MergeFaultFS()
        let w = try ReviewWorld.mergeHeld(seed: seed.value, fs: fs, simulated: false)
        let world = Handed(value: w)
        let flush = OffThread { try world.value.captures(100) }  // flush 3
        expectWaitsForTheHeldMerge(flush, fs, "\(seed.replay): the third flush")
        if case .failure(let error)? = flush.outcome { Issue.record("\(seed.replay): the push failed: \(error)") }
        let stats = w.central.snapshotStatistics
        #expect(stats.written == 3 && stats.compactions >= 1, "\(seed.replay): \(stats)")
        let files = try w.stateFiles()
        #expect(isChain(files) && files.count == stats.runs && files.first != CentralState.runName(1...1), "\(seed.replay): \(files) for \(stats)")
        try w.closeAndCheckReopened(try w.central.state, seed.replay)
    }

    @Test("an overlapped append that installs a finished merge and whose journal write then fails: central is as before the push (merged run serving), and reopened takes the push again and holds the journal's fold")
    func failedOverlappedAppendAfterInstallingAMerge() throws {
        let seed = TestSeed("background merge review: failed append installing a merge", replays: "the captures")
        let disk = SimulatedFileSystem(seed: seed.value)
        let fs = MergeFaultFS(disk)
        let w = try ReviewWorld(seed: seed.value, fs: fs, simulated: true, snapshotEvents: 100)
        try w.twoRunsOfOneSize()  // two runs of one size: their merge runs to its end, not installed
        #expect(fs.placed.wait(timeout: .now() + 30) == .success, "\(seed.replay): the merge's run was not placed")
        Thread.sleep(forTimeInterval: 0.2)  // the merge's thread opens its run and returns
        #expect(w.storage.runsServing == 2, "\(seed.replay)")
        let before = try simulatedJournalTruth(disk, w.dir)  // read from a copy: central itself is not asked (a read of every run would install the merge)
        let head = w.central.head
        disk.failOperation([.write], occurrence: 1)  // the push's journal write (a merge's install removes files, writes nothing)
        try w.captures(300, tolerant: true)  // at least 256 events: folded while the journal writes; the fold installs the merge
        #expect(!disk.hasPendingFaults, "\(seed.replay): the journal write was not failed")
        #expect(w.central.head == head, "\(seed.replay): head \(w.central.head), was \(head)")
        #expect(w.storage.runsServing == 1, "\(seed.replay): the finished merge was not installed by the append")
        #expect(try w.central.state == before, "\(seed.replay): central is not as before the failed push")
        try? w.central.close()
        try w.reopen()
        try w.sync()
        #expect(try w.central.state.sales.count == 500, "\(seed.replay)")
        #expect(try w.central.state == (try simulatedJournalTruth(disk, w.dir)), "\(seed.replay): the state is not the fold of the journal")
        try w.central.close()
    }

    /// What a push after a flush comes to when power fails `k` operations later, with the flush's merge held
    /// until the push is done (`mergeFirst` false) or run to its end before it (true): whether the push was
    /// acknowledged, and central's journal head and state after the crash.
    private func powerCutOutcome(seed: UInt64, k: Int, mergeFirst: Bool) throws -> (acknowledged: UInt64, head: UInt64, state: String) {
        let disk = SimulatedFileSystem(seed: seed)
        let fs = MergeFaultFS(disk)
        let w = try ReviewWorld.mergeHeld(seed: seed, fs: fs, simulated: true)
        disk.cutPower(afterOperations: k)
        if mergeFirst {
            fs.release()
            let deadline = Date().addingTimeInterval(30)
            while !disk.isPowerOff && fs.placed.wait(timeout: .now() + 0.01) == .timedOut && Date() < deadline {}
            Thread.sleep(forTimeInterval: 0.1)
        }
        try w.captures(5, tolerant: true)
        if !mergeFirst { fs.release() }
        _ = w.central.snapshotStatistics
        let acknowledged = w.terminal.acknowledged
        disk.crash()
        try w.reopen()
        defer { try? w.central.close() }
        return (acknowledged, w.central.head, try w.central.state.canonicalText)
    }

    /// Which thread takes "the k-th operation" after a flush depends on when the merge's thread runs, so a
    /// count-based power cut may end otherwise from one run to the next (tests that count operations end the
    /// merges first; the simulator's crashes come after its statistics read, which ends them). What must hold
    /// either way: nothing acknowledged is lost.
    @Test("whether a merge runs before or after the next push, a power cut k operations on loses no acknowledged event (which operation is the k-th may differ)")
    func powerCutEitherOrderLosesNothing() throws {
        let seed = TestSeed("background merge review: power cut, either order", replays: "the captures and the crash")
        for k in 1...24 {
            for mergeFirst in [false, true] {
                let outcome = try powerCutOutcome(seed: seed.value, k: k, mergeFirst: mergeFirst)
                #expect(outcome.head >= outcome.acknowledged,
                        "\(seed.replay): k \(k), merge \(mergeFirst ? "before" : "after") the push: central holds \(outcome.head) events, \(outcome.acknowledged) were acknowledged")
            }
        }
    }
}
