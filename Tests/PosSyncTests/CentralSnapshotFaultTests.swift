import Foundation
import Testing
@testable import PosJournal
@testable import PosLedger
@_spi(Testing) @testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire
import PosTestSupport

/// Fails reads of files whose path ends with `failSuffix` while it is set, and,
/// once, the `failNth.n`-th read (counted over every handle) of files ending `failNth.suffix`.
final class ReadFaultFS: JournalFileSystem, @unchecked Sendable {  // its state is under `lock`: merges read on a second thread
    let inner = PosixFileSystem()
    private let lock = NSLock()
    private var suffix: String?
    private var nth: (suffix: String, n: Int)?
    private var reads = 0
    private var fired = false
    var failSuffix: String? {
        get { lock.withLock { suffix } }
        set { lock.withLock { suffix = newValue } }
    }
    var failNth: (suffix: String, n: Int)? {
        get { lock.withLock { nth } }
        set { lock.withLock { nth = newValue } }
    }
    var nthReads: Int { lock.withLock { reads } }
    /// Whether the `failNth` fault fired.
    var hit: Bool { lock.withLock { fired } }
    init(failNth: (suffix: String, n: Int)? = nil) { nth = failNth }
    fileprivate func shouldFail(_ path: String) -> Bool {
        lock.withLock {
            if let s = suffix, path.hasSuffix(s) { return true }
            guard let nth, path.hasSuffix(nth.suffix) else { return false }
            reads += 1
            if reads == nth.n { fired = true; return true }
            return false
        }
    }
    final class H: JournalFileHandle {
        let inner: any JournalFileHandle; let path: String; unowned let fs: ReadFaultFS
        init(_ i: any JournalFileHandle, _ p: String, _ f: ReadFaultFS) { inner = i; path = p; fs = f }
        func size() throws(JournalError) -> UInt64 { try inner.size() }
        func read(at offset: UInt64, count: Int) throws(JournalError) -> [UInt8] {
            if fs.shouldFail(path) { throw JournalError(.io, "injected read fault", file: path, offset: offset) }
            return try inner.read(at: offset, count: count)
        }
        func write(_ bytes: [UInt8], at offset: UInt64) throws(JournalError) { try inner.write(bytes, at: offset) }
        func sync() throws(JournalError) { try inner.sync() }
        func truncate(to size: UInt64) throws(JournalError) { try inner.truncate(to: size) }
        func close() throws(JournalError) { try inner.close() }
    }
    func listDirectory(_ path: String) throws(JournalError) -> [String] { try inner.listDirectory(path) }
    func createDirectory(_ path: String) throws(JournalError) { try inner.createDirectory(path) }
    func fileExists(_ path: String) -> Bool { inner.fileExists(path) }
    func openFile(_ path: String, mode: FileOpenMode) throws(JournalError) -> any JournalFileHandle { H(try inner.openFile(path, mode: mode), path, self) }
    func rename(_ from: String, to: String) throws(JournalError) { try inner.rename(from, to: to) }
    func removeFile(_ path: String) throws(JournalError) { try inner.removeFile(path) }
    func syncDirectory(_ path: String) throws(JournalError) { try inner.syncDirectory(path) }
    func removeDirectory(_ path: String) throws(JournalError) { try inner.removeDirectory(path) }
    func lockExclusive(_ path: String, waitMillis: Int64) throws(JournalError) -> any StoreLockHandle { try inner.lockExclusive(path, waitMillis: waitMillis) }
}

func journalTruth(_ dir: String) throws -> LedgerState {
    let copy = TempDir("snapfault-truth")
    let fm = FileManager.default
    try fm.removeItem(atPath: copy.path)
    try fm.copyItem(atPath: dir, toPath: copy.path)
    try fm.removeItem(atPath: copy.path + "/state")
    let c = try FileCentralStore.open(directory: copy.path, snapshotEvents: Int.max)
    defer { try? c.close() }
    return try c.state
}

/// A central on a `ReadFaultFS` that flushes every 3 events, and two terminals of one merchant.
final class FaultWorld {
    let tmp: TempDir
    let fs = ReadFaultFS()
    let dir: String
    let central: CentralHandler
    var ts: [TerminalReplica] = []
    var now = baseMillis
    var rng: Rng

    init(_ label: String, seed: UInt64) throws {
        tmp = TempDir(label)
        dir = tmp.path + "/central"
        rng = Rng(state: seed)
        central = try FileCentralStore.create(directory: dir, fileSystem: fs, snapshotEvents: 3)
        for i in 1...2 {
            let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(i)), merchant: "shop")
            ts.append(try TerminalReplica.initialize(directory: tmp.path + "/t\(i)", enrollment: e))
        }
    }

    func cap(_ i: Int, _ code: PaymentCode? = nil) throws -> SaleId {
        now += 1000
        let capture = try SaleCapture(amount: cny(5000), paymentCode: code ?? wechatCode(&rng), merchantKey: ts[i].enrollment.ledgerMerchantKey)
        return SaleId(try ts[i].record(.saleCaptured(capture), wallMillis: now).dot)
    }

    func sync(_ i: Int) throws {
        now += 10
        _ = try ts[i].sync(via: InProcessTransport(central: central), wallMillis: now)
    }
}

/// A central on a simulated disk with `sales` captures of terminal 1 pushed, then closed.
private func closedSimulatedCentral(sales: Int, snapshotEvents: Int) throws -> SimulatedFileSystem {
    let disk = SimulatedFileSystem(seed: 1)
    let central = try FileCentralStore.create(directory: "/c", fileSystem: disk, snapshotEvents: snapshotEvents)
    let e = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "shop")
    let t = try TerminalReplica.initialize(directory: "/t", enrollment: e, fileSystem: SimulatedFileSystem(seed: 7))
    var rng = Rng(state: 3)
    var now = baseMillis
    for _ in 0..<sales {
        now += 1000
        _ = try t.record(.saleCaptured(try SaleCapture(amount: cny(100), paymentCode: wechatCode(&rng), merchantKey: e.ledgerMerchantKey)), wallMillis: now)
    }
    _ = try t.sync(via: InProcessTransport(central: central), wallMillis: now)
    try central.close()
    return disk
}

/// Regression tests from a review of central snapshot runs: read errors while
/// loading, a failed flush at open, set-aside runs after a crash, damaged names.
@Suite("central snapshot runs under faults")
struct CentralSnapshotFaultTests {
    @Test("a read error right after a flush does not lose loose events (they stay resident from memory)")
    func looseLostAfterFailedLoadLoose() throws {
        let w = try FaultWorld("snapfault1", seed: 5)
        let sale = try w.cap(0); try w.sync(0)
        // Terminal 1 opens a return (seq 2) but does not sync yet; central approves it from elsewhere.
        let request = try RefundRequest(sale: sale, saleAmount: cny(5000), amount: cny(1000), reason: .wrongSize, resolution: .refund, contact: nil)
        w.now += 1000
        let r = try w.ts[0].record(.refundRequested(request), wallMillis: w.now)
        let ticket = TicketId(r.dot)
        w.now += 1000
        // Loose: the request is not held yet (central's own writer refuses this; a forged push could carry it).
        try w.central.record(.refundApproved(ticket, .originalPayment), wallMillis: w.now, checkingAdmission: false)
        w.now += 1000
        try w.central.record(.noteAdded(ticket, try NoteText("customer called")), wallMillis: w.now, checkingAdmission: false)
        // flush 1 at 3 events: the approval is in run 1's loose section
        w.fs.failSuffix = "run-00000002-00000002.pss"
        _ = try w.cap(1)
        try w.sync(1)  // flush 1 at 3 events
        for _ in 0..<3 { _ = try w.cap(1) }
        try w.sync(1)  // flush 2: reading the new run back would fail now; the loose events are carried over from memory
        w.fs.failSuffix = nil
        for _ in 0..<3 { _ = try w.cap(1) }
        try w.sync(1)  // flush 3 (and merges): still with the loose events
        try w.sync(0)  // the request arrives
        let truth = try journalTruth(w.dir)
        let mine = try w.central.state
        #expect(mine.canonicalText == truth.canonicalText, "central's state differs from the fold of its journal")
        #expect(try w.central.state(around: .ticket(ticket)).tickets[ticket] == truth.tickets[ticket])
        w.now += 1000
        try w.central.close()
        let reopened = try FileCentralStore.open(directory: w.dir, snapshotEvents: 3)
        #expect(try reopened.state.canonicalText == truth.canonicalText, "after reopen")
        try reopened.close()
    }

    @Test("a run that cannot be written while the journal is replayed at open does not stop central from opening")
    func openFailsOnFlushFault() throws {
        let disk = try closedSimulatedCentral(sales: 6, snapshotEvents: 1000)
        disk.failOperation([.rename], occurrence: 1)
        let central = try FileCentralStore.open(directory: "/c", fileSystem: disk, snapshotEvents: 3)
        #expect(try central.state.sales.count == 6)
        #expect(!disk.hasPendingFaults, "the rename fault was met")
    }

    @Test("a run from a later journal history never rejoins the chain, even when its set-aside rename is undone by a crash")
    func aheadRunComesBack() throws {
        for seed in UInt64(1)...40 {
            let disk = SimulatedFileSystem(seed: 1)
            var central = try FileCentralStore.create(directory: "/c", fileSystem: disk, snapshotEvents: 3)
            let e1 = try central.enroll(terminal: try ReplicaId.terminal(1), merchant: "shop")
            let e2 = try central.enroll(terminal: try ReplicaId.terminal(2), merchant: "shop")
            let t1 = try TerminalReplica.initialize(directory: "/t1", enrollment: e1, fileSystem: SimulatedFileSystem(seed: 7))
            let t2 = try TerminalReplica.initialize(directory: "/t2", enrollment: e2, fileSystem: SimulatedFileSystem(seed: 8))
            var rng = Rng(state: 3)
            var now = baseMillis
            func cap(_ t: TerminalReplica, _ e: Enrollment) throws { now += 1000; _ = try t.record(.saleCaptured(try SaleCapture(amount: cny(100), paymentCode: wechatCode(&rng), merchantKey: e.ledgerMerchantKey)), wallMillis: now) }
            for _ in 0..<3 { try cap(t1, e1) }
            _ = try t1.sync(via: InProcessTransport(central: central), wallMillis: now)
            try central.close()
            let backup = disk.copy(seed: seed)   // journal head 3, run 1 (P=3)
            central = try FileCentralStore.open(directory: "/c", fileSystem: disk, snapshotEvents: 3)
            for _ in 0..<3 { try cap(t1, e1) }
            _ = try t1.sync(via: InProcessTransport(central: central), wallMillis: now)
            try central.close()
            // The journal is restored from the backup; the state directory keeps the later runs.
            for name in disk.fileNames(in: "/c/state") where name.hasSuffix(".pss") {
                backup.install("/c/state/" + name, contents: disk.contents(of: "/c/state/" + name)!)
            }
            let runsBefore = backup.fileNames(in: "/c/state")
            #expect(throws: SyncError.self, "a run ahead of the journal refuses the open") {
                _ = try FileCentralStore.open(directory: "/c", fileSystem: backup, snapshotEvents: 1000)
            }
            #expect(backup.fileNames(in: "/c/state") == runsBefore)
            _ = try FileCentralStore.recover(directory: "/c", fileSystem: backup, snapshotEvents: 1000)
            var restored = try FileCentralStore.open(directory: "/c", fileSystem: backup, snapshotEvents: 1000)
            let aside = backup.fileNames(in: "/c/state")
            // Terminal 2 sells; the journal grows past the set-aside run's position. No flush yet.
            for _ in 0..<3 { try cap(t2, e2) }
            _ = try t2.sync(via: InProcessTransport(central: restored), wallMillis: now)
            let truthBefore = try restored.state.canonicalText
            restored = try { () throws -> CentralHandler in try restored.close(); return restored }()
            backup.crash()
            let afterCrash = backup.fileNames(in: "/c/state")
            _ = (runsBefore, aside, afterCrash)
            do {
                let again = try FileCentralStore.open(directory: "/c", fileSystem: backup, snapshotEvents: 1000)
                let s = try again.state
                #expect(again.acknowledged(e2.terminal) == 3, "seed \(seed)")
                #expect(s.canonicalText == truthBefore, "reopened central's state differs from the fold of its journal")
            } catch {
                Issue.record("reopen after crash failed: \(error)")
            }
        }
    }

    @Test("a read error while loading a sale leaves it unloaded: the retried push folds onto the whole component")
    func partialComponentAfterReadError() throws {
        let w = try FaultWorld("snapfault4", seed: 9)
        let sale = try w.cap(0); try w.sync(0)
        for _ in 0..<3 { _ = try w.cap(1) }
        try w.sync(1)  // flush: the sale is only on disk w.now
        #expect(w.central.snapshotStatistics.written >= 1)
        let request = try RefundRequest(sale: sale, saleAmount: cny(5000), amount: cny(1000), reason: .wrongSize, resolution: .refund, contact: nil)
        w.now += 1000
        _ = try w.ts[0].record(.refundRequested(request), wallMillis: w.now)
        w.fs.failSuffix = ".pss"
        #expect(throws: SyncError.self) { try w.sync(0) }
        w.fs.failSuffix = nil
        try w.sync(0)  // retried: accepted
        #expect(try w.central.state(around: .sale(sale)).sales[sale]?.status == .captured)
        for _ in 0..<3 { _ = try w.cap(1) }
        try w.sync(1)  // flush: the sale's component as resident
        let truth = try journalTruth(w.dir)
        let mine = try w.central.state
        #expect(mine.sales[sale] == truth.sales[sale])
        try w.central.close()
        let reopened = try FileCentralStore.open(directory: w.dir, snapshotEvents: 3)
        #expect(try reopened.state.sales[sale] == truth.sales[sale], "after reopen")
        try reopened.close()
    }

    @Test("a run named and headed for generation ffffffff is not taken (no overflow): the journal is replayed")
    func generationOverflow() throws {
        let disk = try closedSimulatedCentral(sales: 3, snapshotEvents: 3)
        var bytes = disk.contents(of: "/c/state/run-00000001-00000001.pss")!
        for i in 38..<42 { bytes[i] = 0xff }
        try disk.removeFile("/c/state/run-00000001-00000001.pss")
        disk.install("/c/state/run-00000001-ffffffff.pss", contents: bytes)
        let c = try FileCentralStore.open(directory: "/c", fileSystem: disk, snapshotEvents: 3)
        #expect(try c.state.sales.count == 3)
        #expect(c.snapshotStatistics.runs <= 1)
    }

    @Test("a read error while loading a payment code's other captures leaves the code unchecked: the twin is still void and never forwarded")
    func duplicateMissedAfterReadError() throws {
        let w = try FaultWorld("snapfault6", seed: 9)
        let code = wechatCode(&w.rng)
        _ = try w.cap(0, code); try w.sync(0)
        for _ in 0..<3 { _ = try w.cap(0) }
        try w.sync(0)  // flush: the first capture is only on disk
        let twin = try w.cap(1, code)
        w.fs.failSuffix = ".pss"
        #expect(throws: SyncError.self) { try w.sync(1) }
        w.fs.failSuffix = nil
        try w.sync(1)
        let truth = try journalTruth(w.dir)
        #expect(truth.sales[twin]?.status == .voidDuplicate)
        #expect(try w.central.state(around: .sale(twin)).sales[twin]?.status == .voidDuplicate)
        w.now += 1000
        #expect(throws: SyncError.self) { try w.central.record(.saleConfirmed(twin), wallMillis: w.now) }
    }

    /// A read error in loadKey after loadSale succeeded leaves the sale loaded and its
    /// payment code unchecked; loadTicket returns early (request resident) and never retries the code.
    @Test("after a read error on a payment code's other captures, a decision through the ticket still loads them")
    func ticketAfterFailedKey() throws {
        let w = try FaultWorld("snapfault7", seed: 11)
        let code = wechatCode(&w.rng)
        let standing = try w.cap(0, code)
        for _ in 0..<60 { _ = try w.cap(0) }
        try w.sync(0)                       // run 1: 61 sales
        let twin = try w.cap(1, code)       // later capture, same code: void-duplicate
        let request = try RefundRequest(sale: twin, saleAmount: cny(5000), amount: cny(1000), reason: .wrongSize, resolution: .refund, contact: nil)
        w.now += 1000
        let ticket = TicketId(try w.ts[1].record(.refundRequested(request), wallMillis: w.now).dot)
        try w.sync(1)                       // run 2: twin, standing (loaded), ticket
        let names = try FileManager.default.contentsOfDirectory(atPath: w.dir + "/state").sorted()
        #expect(names.contains("run-00000001-00000001.pss") && names.contains("run-00000002-00000002.pss"))
        let truth = try journalTruth(w.dir)
        #expect(truth.sales[twin]?.status == .voidDuplicate)
        _ = standing
        w.fs.failSuffix = "run-00000001-00000001.pss"
        #expect(throws: SyncError.self) { _ = try w.central.state(around: .sale(twin)) }
        w.fs.failSuffix = nil
        let around = try w.central.state(around: .ticket(ticket))
        #expect(around.sales[twin]?.status == truth.sales[twin]?.status, "sale status around its ticket")
        #expect(around.tickets[ticket] == truth.tickets[ticket], "ticket view")
        // salesAwaitingOutcome vs truth, for good measure
        let awaiting = try w.central.salesAwaitingOutcome()
        let expected = truth.sales.values.filter { ($0.status == .captured || $0.status == .voidDuplicate) }.map(\.id).sorted()
        #expect(awaiting == expected)
    }

    @Test("a passing I/O error reading the journal at open fails the open or is met without setting any run aside")
    func journalReadErrorSetsRunAside() throws {
        let w = try FaultWorld("snapfault8", seed: 3)
        for _ in 0..<12 { _ = try w.cap(0); try w.sync(0) }
        try w.central.close()
        let good = try FileManager.default.contentsOfDirectory(atPath: w.dir + "/state").sorted()
        var faultsMet = 0
        for n in 1...30 {
            let copy = TempDir("snapfault8-copy")
            try FileManager.default.removeItem(atPath: copy.path)
            try FileManager.default.copyItem(atPath: w.dir, toPath: copy.path)
            let fs = ReadFaultFS(failNth: (".seg", n))
            do {
                let c = try FileCentralStore.open(directory: copy.path, fileSystem: fs, snapshotEvents: 3)
                let names = try FileManager.default.contentsOfDirectory(atPath: copy.path + "/state").sorted()
                let aside = names.filter { $0.hasSuffix(".damaged") || $0.hasSuffix(".diverged") }
                #expect(aside.isEmpty || !fs.hit, "n=\(n): a transient journal read error set runs aside: \(aside)")
                try c.close()
            } catch {
                // Failing the open (the error names the segment and offset) is a fine answer too.
                #expect((error as? SyncError)?.code == .io, "n=\(n): \(error)")
            }
            if !fs.hit { break }
            faultsMet += 1
        }
        #expect(!good.isEmpty && faultsMet > 2)
    }
}
