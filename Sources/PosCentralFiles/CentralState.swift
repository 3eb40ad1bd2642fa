import Foundation
import Logging
import PosBytes
import PosCentral
import PosJournal
import PosLedger
import PosWire

/// Central's folded state with a bounded part in memory (sync-protocol.md,
/// "Central state and snapshots").
///
/// Every event central holds is in its journal (the truth) and, once flushed,
/// in a snapshot **run** under `state/`, filed under the sale it belongs to.
/// Memory holds the *resident* part: the sales touched since the last flush,
/// each with its whole component (capture, outcomes, tickets) and the
/// components of every capture sharing its payment code, so the fold decides
/// exactly as it would over every event. Every `snapshotEvents` events the
/// resident part is written as a new run (only what was touched: the cost of a
/// flush does not grow with the store) and dropped; adjacent runs of similar
/// size are then merged, newest component of each sale winning, so there are
/// O(log n) runs and each event is rewritten O(log n) times. The merges run
/// on a second thread until the next flush (`startMerges`, `finishMerges`).
final class CentralState {
    /// Events folded (or records copied) at a time by a pass over many: the
    /// replay at open, the full-state read, a journal rebuild. Bounds the memory
    /// such a pass holds.
    static let bulkBatchEvents = 4096

    let directory: String
    private let fs: any JournalFileSystem
    private let central: CentralID
    private let key: JournalKey
    /// What the runs' records decode with (the enrolled terminals' merchant keys).
    private let recordContext: RecordDecodeContext
    private let logger: Logger
    /// Events applied between flushes, at most (the memory bound).
    let snapshotEvents: Int

    /// Snapshot runs, oldest first; generations contiguous from 1.
    private(set) var runs: [SnapshotFile] = []
    /// The fold of every resident event.
    private(set) var resident = LedgerState()
    /// The record of every resident event, by dot, with how the next flush files it.
    private var records: [Dot: ResidentRecord] = [:]
    /// Sales whose components have been loaded from the runs (or found absent).
    private(set) var loadedSales = Set<SaleId>()
    private var checkedKeys = Set<DuplicateKey>()
    private var checkedTickets = Set<TicketId>()
    /// Per replica (central included), digests of seqs up to this are in the runs.
    private var baseAcknowledged: [ReplicaId: UInt64] = [:]
    /// Digests of events applied since the last flush, per replica, in sequence order.
    private var newDigests: [ReplicaId: [UInt64]] = [:]
    private(set) var eventsSinceSnapshot = 0
    /// Events loaded from the runs since the last flush (they are resident too).
    private var loadedSinceSnapshot = 0
    /// Whether the resident part has reached the flush interval (events applied plus events loaded).
    var flushDue: Bool { eventsSinceSnapshot + loadedSinceSnapshot >= snapshotEvents }
    private(set) var snapshotsWritten = 0
    private(set) var compactions = 0
    /// The merges the last flush started, running on a second thread (nil: none in flight).
    private var merges: SecondThread<MergedRuns>?
    /// Whether a flush's merges run on a second thread (false: on the calling thread, before the flush
    /// returns). The schedule, and so the runs, are the same either way.
    var mergesInBackground = true
    /// Writes runs into place and merges them: what the merges' thread may use.
    private var runFiles: RunFiles { RunFiles(directory: directory, fs: fs, central: central, key: key) }

    static func runName(_ g: ClosedRange<UInt32>) -> String {
        String(format: "run-%08x-%08x.pss", g.lowerBound, g.upperBound)
    }

    static func parseRunName(_ name: String) -> ClosedRange<UInt32>? {
        guard name.hasPrefix("run-"), name.hasSuffix(".pss"), name.count == 25,
              let a = UInt32(name.dropFirst(4).prefix(8), radix: 16), let b = UInt32(name.dropFirst(13).prefix(8), radix: 16),
              a >= 1, a <= b, b < UInt32.max else { return nil }
        return a...b
    }

    /// Opens `directory`: the chain of runs from generation 1 that check, each
    /// covering no more than `journalHead`; where two candidates start at the
    /// same generation the longer (a finished compaction) is taken. A run that
    /// fails its checks is renamed `*.damaged` and logged; runs that are
    /// superseded or no longer continue the chain are removed. The caller
    /// replays the journal after the last run's position.
    init(directory: String, fileSystem: any JournalFileSystem, central: CentralID, secret: [UInt8], recordContext: RecordDecodeContext,
         journalHead: UInt64, journalDigest: (UInt64) throws(SyncError) -> UInt64?,
         snapshotEvents: Int, logger: Logger) throws(SyncError) {
        precondition(snapshotEvents > 0)
        self.directory = directory
        fs = fileSystem
        self.central = central
        self.recordContext = recordContext
        key = KeyDerivation.centralSnapshotKey(secret: secret)
        self.logger = logger
        self.snapshotEvents = snapshotEvents
        let names = try FileStore(fs: fs).list(directory)
        for name in names where name.hasSuffix(".tmp") { try? fs.removeFile(directory + "/" + name) }
        var candidates = names.compactMap { name in Self.parseRunName(name).map { (generations: $0, name: name) } }
        var next: UInt32 = 1
        var position: UInt64 = 0
        var changed = false
        while true {
            // Candidates continuing the chain, longest first.
            let here = candidates.filter { $0.generations.lowerBound == next }.sorted { $0.generations.upperBound > $1.generations.upperBound }
            var taken: SnapshotFile?
            for c in here {
                let path = directory + "/" + c.name
                do throws(SyncError) {
                    let file = try SnapshotFile.open(path: path, fileSystem: fs, central: central, key: key, verifyFrames: true)
                    guard file.generations == c.generations else {
                        file.close()
                        throw SyncError(.malformed, "named for generations \(c.generations), holds \(file.generations)", location: path)
                    }
                    guard file.meta.position >= position else {
                        file.close()
                        throw SyncError(.malformed, "covers positions 1...\(file.meta.position), fewer than the run before it (\(position))", location: path)
                    }
                    guard file.meta.position <= journalHead else {
                        file.close()
                        logger.error("snapshot run covers more than the journal holds; set aside", metadata: ["snapshot": "\(path)", "journal.head": "\(journalHead)"])
                        try? fs.rename(path, to: path + ".ahead")
                        changed = true
                        continue
                    }
                    guard try journalDigest(file.meta.position) == file.meta.journalDigest else {
                        file.close()
                        logger.error("snapshot run was written from another journal history; set aside",
                                     metadata: ["snapshot": "\(path)", "journal.position": "\(file.meta.position)"])
                        try? fs.rename(path, to: path + ".diverged")
                        changed = true
                        continue
                    }
                    taken = file
                    break
                } catch where error.code == .io {
                    throw error  // the disk cannot be read now: say so, rather than set a good run aside
                } catch {
                    logger.error("snapshot run damaged; set aside", metadata: ["snapshot.error": "\(error)"])
                    try? fs.rename(path, to: path + ".damaged")
                    changed = true
                }
            }
            guard let file = taken else { break }
            runs.append(file)
            position = file.meta.position
            next = file.generations.upperBound + 1
            candidates.removeAll { $0.name == (file.path as NSString).lastPathComponent }
        }
        // Whatever is left is superseded by a compaction, or no longer continues the chain: the journal replaces it.
        for c in candidates where fs.fileExists(directory + "/" + c.name) {
            try? fs.removeFile(directory + "/" + c.name)
            changed = true
        }
        // Renames and removals made durable: a set-aside run must not come back after a crash.
        if changed {
            do { try fs.syncDirectory(directory) } catch {
                throw SyncError(.io, "cannot make the snapshot directory durable: \(error.message)", location: directory)
            }
        }
        if let last = runs.last {
            baseAcknowledged = last.meta.acknowledged
            baseAcknowledged[.central] = last.meta.centralSequence
            try loadLoose()
        }
    }

    /// What the runs in `directory` prove was durable, read from their
    /// authenticated footers alone (no run is changed or set aside): the run
    /// covering the most journal positions, or nil. A run whose footer does not
    /// authenticate is no evidence (open sets it aside as damaged).
    static func coverage(directory: String, fileSystem: any JournalFileSystem, central: CentralID,
                         secret: [UInt8]) throws(SyncError) -> (name: String, meta: SnapshotMeta)? {
        let key = KeyDerivation.centralSnapshotKey(secret: secret)
        var best: (name: String, meta: SnapshotMeta)?
        for name in try FileStore(fs: fileSystem).list(directory) where parseRunName(name) != nil {
            let file: SnapshotFile
            do {
                file = try SnapshotFile.open(path: directory + "/" + name, fileSystem: fileSystem, central: central, key: key, verifyFrames: false)
            } catch where error.code == .io {
                throw error
            } catch {
                continue
            }
            if file.meta.position > (best?.meta.position ?? 0) { best = (name, file.meta) }
            file.close()
        }
        return best
    }

    /// What the newest run says (nil: the journal is replayed from the start).
    var meta: SnapshotMeta? { runs.last?.meta }
    private var nextGeneration: UInt32 { (runs.last?.generations.upperBound ?? 0) + 1 }

    /// Loose events: the newest run holds all of them (they are always resident).
    private func loadLoose() throws(SyncError) {
        guard let newest = runs.last else { return }
        var events: [Event] = []
        try newest.scan(.loose) { (r: [UInt8]) throws(SyncError) in
            let record = Array(r[SnapshotSection.loose.keyBytes...])
            let e = try decode(record, newest)
            records[e.dot] = ResidentRecord(record, e)
            events.append(e)
        }
        resident.apply(events)
    }

    private func decode(_ record: [UInt8], _ file: SnapshotFile?) throws(SyncError) -> Event {
        do { return try RecordCodec.decode(record, context: recordContext) } catch {
            throw SyncError(error, location: "\(file?.path ?? directory) (an event record)")
        }
    }

    // MARK: - Digests

    /// The digest of the event `replica` wrote at `seq`, when central holds it.
    func digest(_ replica: ReplicaId, _ seq: UInt64) throws(SyncError) -> UInt64? {
        guard seq >= 1 else { return nil }
        let base = baseAcknowledged[replica] ?? 0
        if seq > base {
            let list = newDigests[replica] ?? []
            let i = Int(seq - base - 1)
            return i < list.count ? list[i] : nil
        }
        let key = SnapshotKey.digests(replica, firstSeq: seq)
        for run in runs.reversed() {
            guard let r = try run.floor(.digests, key, prefix: 4) else { continue }
            let fields = ByteReader<ByteReadError>(r)
            guard let first = fields.getBE(UInt64.self, at: 4),
                  let digest = fields.getLE(UInt64.self, at: SnapshotSection.digests.keyBytes + Int(seq - first) * 8) else { continue }
            return digest
        }
        throw SyncError(.malformed, "no snapshot run holds the digest of \(replica.rawValue):\(seq), which they cover", location: directory)
    }

    func appendDigest(_ replica: ReplicaId, _ digest: UInt64) { newDigests[replica, default: []].append(digest) }

    // MARK: - Making what an event touches resident

    /// Loads from the runs everything the fold needs to apply `event` exactly.
    func prepare(_ event: Event) throws(SyncError) {
        guard !runs.isEmpty else { return }
        if cycleIsFresh { reserveResident() }
        let c = EventComponent(event)
        if let sale = c.sale { try loadSale(sale) }
        if let key = c.duplicateKey { try loadKey(key) }
        if let ticket = c.ticket { try loadTicket(ticket) }
    }

    func prepare(_ key: EntityKey) throws(SyncError) {
        switch key {
        case .sale(let s): try loadSale(s)
        case .ticket(let t): try loadTicket(t)
        }
    }

    /// A sale's component as the newest run holding it has it (a run holds every
    /// component whole, so older versions are superseded). A sale counts as
    /// loaded only once its lookups succeeded: a read error leaves nothing half
    /// loaded, and the next `prepare` tries again.
    private func loadSale(_ s: SaleId) throws(SyncError) {
        guard !runs.isEmpty else { return }
        if loadedSales.contains(s) {
            // Loaded already; its payment code's other captures may not be (an earlier read error).
            if case .saleCaptured(let c)? = resident.capture(of: s)?.body { try loadKey(c.duplicateKey) }
            return
        }
        let key = SnapshotKey.sale(s)
        var found: [ArraySlice<UInt8>] = []
        var from: SnapshotFile?
        for run in runs.reversed() {
            found = try run.lookup(.components, key)
            if !found.isEmpty { from = run; break }
        }
        var events: [Event] = []
        var loaded: [(Dot, [UInt8])] = []
        for r in found {
            let record = Array(r[(r.startIndex + SnapshotSection.components.keyBytes)...])
            let e = try decode(record, from)
            guard records[e.dot] == nil else { continue }
            loaded.append((e.dot, record))
            events.append(e)
        }
        // Every read succeeded: only now does the sale count as loaded.
        loadedSales.insert(s)
        for (i, (dot, record)) in loaded.enumerated() { records[dot] = ResidentRecord(record, events[i]) }
        for e in events { if case .refundRequested = e.body { checkedTickets.insert(TicketId(e.dot)) } }
        if !events.isEmpty {
            if cycleIsFresh { reserveResident() }
            resident.apply(events)
            loadedSinceSnapshot += events.count
            notePeak()
        }
        // The captures sharing this sale's payment code decide its status with it.
        if case .saleCaptured(let c)? = resident.capture(of: s)?.body { try loadKey(c.duplicateKey) }
    }

    /// Every sale any run lists under a duplicate key (a capture's key never
    /// changes, so the union is exact). The key counts as checked while its
    /// sales load (they name it again) and stays so only if all of them loaded.
    private func loadKey(_ k: DuplicateKey) throws(SyncError) {
        guard !runs.isEmpty, checkedKeys.insert(k).inserted else { return }
        do throws(SyncError) {
            var sales = Set<SaleId>()
            let key = k.bytes  // built once, probed in every run
            for run in runs {
                for r in try run.lookup(.duplicateKeys, key) {
                    guard let dot = SnapshotKey.decodeDot(r[(r.startIndex + 16)..<(r.startIndex + 28)]) else {
                        throw SyncError(.malformed, "a duplicate-keys record names no sale", location: run.path)
                    }
                    sales.insert(SaleId(dot))
                }
            }
            for sale in sales.sorted() { try loadSale(sale) }
        } catch {
            checkedKeys.remove(k)
            throw error
        }
    }

    private func loadTicket(_ t: TicketId) throws(SyncError) {
        guard !runs.isEmpty else { return }
        if case .refundRequested(let r)? = resident.request(of: t)?.body {
            // Its sale is resident; the sale's payment code may still need its other captures (an earlier read error).
            try loadSale(r.sale)
            return
        }
        guard !checkedTickets.contains(t) else { return }
        for run in runs.reversed() {
            guard let r = try run.lookup(.tickets, SnapshotKey.ticket(t)).first else { continue }
            guard let dot = SnapshotKey.decodeDot(r[(r.startIndex + 12)..<(r.startIndex + 24)]) else {
                throw SyncError(.malformed, "a tickets record names no sale", location: run.path)
            }
            try loadSale(SaleId(dot))
            break
        }
        checkedTickets.insert(t)
    }

    // MARK: - Applying

    /// Folds events made durable, or being made durable by the journal meanwhile (each `prepare`d
    /// first; each new to central, so its dot is not resident yet).
    func apply(_ events: [Event], records encoded: [[UInt8]]) {
        finishMerges(wait: false)
        reserveResident()
        // A sequence-void holds nothing to file (the journal and the digests keep it).
        for (e, r) in zip(events, encoded) {
            if case .sequenceVoid = e.body { continue }  // a case test: no comparison of whole bodies
            records[e.dot] = ResidentRecord(r, e)
        }
        resident.apply(events)
        eventsSinceSnapshot += events.count
        notePeak()
    }

    /// Most sales (and resident records) the resident part's tables are sized for at once (a larger
    /// cycle lets the tables grow past it as needed).
    static let residentReserveMax = 1 << 17

    /// The most sales, resident records and looked-up sales and keys the resident part has held since the
    /// open (at most `snapshotEvents` and a push's worth of each): what a cycle after a flush is sized for.
    private var residentPeak = (sales: 0, records: 0, loadedSales: 0, checkedKeys: 0)

    /// Sizes the resident part's tables (and the sets of what was looked up in the runs) for what the
    /// cycles before held, the first time they are written after a flush: a steady load fills them that
    /// far again before the next flush, so they are not grown and rehashed on the way (each growth
    /// rehashed every entry held: about a sixth of row 6b's push-thread samples). Never more than was
    /// held before (a small store, or the first cycle, reserves nothing), so memory stays within the peak.
    private func reserveResident() {
        let peak = residentPeak, most = Self.residentReserveMax
        if records.capacity < min(peak.records, most) { records.reserveCapacity(min(peak.records, most)) }
        if resident.salesCapacity < min(peak.sales, most) { resident.reserveCapacity(sales: min(peak.sales, most), tickets: 0) }
        if loadedSales.capacity < min(peak.loadedSales, most) { loadedSales.reserveCapacity(min(peak.loadedSales, most)) }
        if checkedKeys.capacity < min(peak.checkedKeys, most) { checkedKeys.reserveCapacity(min(peak.checkedKeys, most)) }
    }

    /// Nothing applied or loaded since the last flush (or the open): the resident tables may not be sized yet
    /// (a lookup's sets fill before the cycle's first apply). Checked per event instead of `reserveResident`.
    private var cycleIsFresh: Bool { eventsSinceSnapshot == 0 && loadedSinceSnapshot == 0 }

    /// Notes how far the resident part has grown (`reserveResident` sizes the next cycles for it).
    private func notePeak() {
        residentPeak = (max(residentPeak.sales, resident.sales.count), max(residentPeak.records, records.count),
                        max(residentPeak.loadedSales, loadedSales.count), max(residentPeak.checkedKeys, checkedKeys.count))
    }

    /// Takes back an `apply` whose journal write failed: its events' records are dropped and the
    /// resident part is folded again from the records left (the resident part is always the fold of
    /// `records`: what was loaded from the runs, the loose events and what was applied since). Costs a
    /// decode and a fold of the resident part, only after a failed write.
    func undoApply(_ events: [Event]) throws(SyncError) {
        for e in events { records[e.dot] = nil }
        var kept: [Event] = []
        kept.reserveCapacity(records.count)
        for r in records.values { kept.append(try decode(r.record, nil)) }
        resident = LedgerState.fold(kept)
        eventsSinceSnapshot -= events.count
    }

    /// The whole state: each sale's newest component across the runs, folded
    /// with the resident part. O(every event) in time and in the state it
    /// returns: for reports and checks, never on the sync path.
    /// The records are read here a batch at a time; each batch is decoded on
    /// two threads (`BulkDecode`) while the next is read, and folded on a queue
    /// of its own while the next is decoded (`FoldPipeline`): reading, decoding
    /// and folding each take a part of the time, and the three overlap.
    func fullState() throws(SyncError) -> LedgerState {
        let fold = FoldPipeline(resident, context: recordContext)
        // Room for every sale and ticket the runs hold, made on the fold's queue while the first batch
        // is read and decoded: each run's footer counts its captures (duplicate-keys records, one per
        // captured sale) and tickets. Summed over the runs, an upper bound on what the read adds (a sale
        // filed again in a newer run is counted once per run).
        var sales = 0, tickets = 0
        for run in runs {
            sales += Int(run.meta.counts[.duplicateKeys] ?? 0)
            tickets += Int(run.meta.counts[.tickets] ?? 0)
        }
        fold.reserve(sales: sales, tickets: tickets)
        var batch: [[UInt8]] = []
        var from: [Int] = []  // the run each record of the batch was read from (named when it does not decode)
        func failed(_ f: FoldPipeline.Failure) -> SyncError {
            SyncError(f.error, location: "\(runs[f.origin].path) (an event record)")
        }
        func hand() throws(SyncError) {
            // The arrays go to the pipeline whole: the next batch starts in new ones.
            let failure = fold.decodeAndApply(batch, origins: from)
            batch = []
            from = []
            batch.reserveCapacity(Self.bulkBatchEvents)
            from.reserveCapacity(Self.bulkBatchEvents)
            if let failure { throw failed(failure) }
        }
        do {
            batch.reserveCapacity(Self.bulkBatchEvents)
            from.reserveCapacity(Self.bulkBatchEvents)
            try forEachRunComponentRecords { (_, records, run) throws(SyncError) in
                batch += records
                from += repeatElement(run, count: records.count)
                if batch.count >= Self.bulkBatchEvents { try hand() }
            }
            try hand()
        } catch {
            _ = fold.finish()  // no decode or fold outlives the read that failed
            throw error
        }
        switch fold.finish() {
        case .success(let state): return state
        case .failure(let f): throw failed(f)
        }
    }

    /// Sales in the runs whose newest component holds a capture and no outcome
    /// (resident sales are left to the caller, who reads them from `resident`).
    func runSalesWithCaptureAndNoOutcome() throws(SyncError) -> [SaleId] {
        var found: [SaleId] = []
        try forEachRunComponent { (sale, events) throws(SyncError) in
            var capture = false, outcome = false
            for e in events {
                switch e.body {
                case .saleCaptured: capture = true
                case .saleConfirmed, .saleDeclined, .saleExpired: outcome = true
                default: break
                }
            }
            if capture && !outcome { found.append(sale) }
        }
        return found
    }

    /// Each sale's newest component across the runs, in sale order, leaving out
    /// the sales whose components are resident. Every run's components section
    /// is read once, all in key order together, the newest run's group winning:
    /// memory O(runs), not O(sales).
    func forEachRunComponent(_ body: (SaleId, [Event]) throws(SyncError) -> Void) throws(SyncError) {
        try forEachRunComponentRecords { (sale, records, run) throws(SyncError) in
            var events: [Event] = []
            for r in records { events.append(try decode(r, runs[run])) }
            try body(sale, events)
        }
    }

    /// `forEachRunComponent` before decoding: each component's event records (without their
    /// key), with the index in `runs` of the run they were read from.
    func forEachRunComponentRecords(_ body: (SaleId, [[UInt8]], Int) throws(SyncError) -> Void) throws(SyncError) {
        finishMerges()  // a read of every run reads the runs the schedule made
        let cursors = runs.map { SnapshotFile.Cursor($0, .components) }
        var heads: [ArraySlice<UInt8>?] = []
        for c in cursors { heads.append(try c.nextSlice()) }
        let keyBytes = SnapshotSection.components.keyBytes
        while true {
            // The smallest sale key among the heads, and the newest run holding it.
            var key: ArraySlice<UInt8>?
            var newest = -1
            for (i, h) in heads.enumerated() {
                guard let h else { continue }
                let k = h.prefix(keyBytes)
                if key == nil || keyPrecedes(k, key!) { key = k; newest = i } else if k.elementsEqual(key!) { newest = i }
            }
            guard let key else { return }
            guard let dot = SnapshotKey.decodeDot(key) else {
                throw SyncError(.malformed, "a components record's key names no sale", location: runs[newest].path)
            }
            let sale = SaleId(dot)
            let group = key  // a slice of its frame's block, kept alive by it while the heads move on
            let resident = !loadedSales.isEmpty && loadedSales.contains(sale)
            var records: [[UInt8]] = []
            for (i, cursor) in cursors.enumerated() {
                while let h = heads[i], h.prefix(keyBytes).elementsEqual(group) {
                    if i == newest && !resident { records.append(Array(h.dropFirst(keyBytes))) }
                    heads[i] = try cursor.nextSlice()
                }
            }
            if !resident { try body(sale, records, newest) }
        }
    }

    // MARK: - Flushing and compacting

    /// The sale whose component a resident record is filed in (nil: loose). A ticket's
    /// event follows its request, which may have become resident after it.
    private func component(of filing: ResidentRecord.Filing) -> SaleId? {
        switch filing {
        case .sale(let s), .capture(let s, _), .request(let s): return s
        case .ticket(let t):
            if case .refundRequested(let r)? = resident.request(of: t)?.body { return r.sale }
            return nil
        case .loose: return nil
        }
    }

    /// Writes the resident part as a new run covering journal positions
    /// 1...position, makes it durable, drops the resident part, then merges
    /// runs of similar size.
    func writeSnapshot(position: UInt64, journalDigest: UInt64, centralSequence: UInt64, lastHLC: UInt64,
                       acknowledged: [ReplicaId: UInt64]) throws(SyncError) {
        var acks = acknowledged
        acks[.central] = nil
        let meta = SnapshotMeta(position: position, journalDigest: journalDigest, centralSequence: centralSequence, lastHLC: lastHLC,
                                acknowledged: acks.filter { $0.value > 0 }, counts: [:])
        let generation = nextGeneration
        // The flush's working arrays are freed when writeResident returns, before the memory is handed back.
        let (writer, loose) = try writeResident(meta, generations: generation...generation)
        // The previous flush's merges end before this run joins the chain: the schedule sees the runs it always did.
        finishMerges()
        let next = try runFiles.install(writer)
        runs.append(next)
        snapshotsWritten += 1
        resident = LedgerState()
        records = [:]
        loadedSales = []
        checkedKeys = []
        checkedTickets = []
        newDigests = [:]
        baseAcknowledged = next.meta.acknowledged
        baseAcknowledged[.central] = centralSequence
        eventsSinceSnapshot = 0
        loadedSinceSnapshot = 0
        // The loose events stay resident: re-applied from memory, not read back (a read error here would lose them).
        var looseEvents: [Event] = []
        for (dot, record) in loose {
            let e = try decode(record, nil)
            records[dot] = ResidentRecord(record, e)
            looseEvents.append(e)
        }
        resident.apply(looseEvents)
        releaseFreedMemory()
        logger.info("snapshot run written", metadata: ["snapshot": "\(next.path)", "snapshot.bytes": "\(next.fileBytes)"])
        startMerges()
    }

    /// The resident part, as one run.
    private func writeResident(_ meta: SnapshotMeta, generations: ClosedRange<UInt32>) throws(SyncError) -> (SnapshotWriter, loose: [(Dot, [UInt8])]) {
        // Sorted by integer keys (sale, then dot), not by byte arrays; the records are built once, in order.
        var components: [(sale: Dot, dot: Dot, record: [UInt8])] = []
        var loose: [(dot: Dot, record: [UInt8])] = []
        var tickets: [(ticket: Dot, sale: Dot)] = []
        var keys: [(key: DuplicateKey, sale: Dot)] = []
        components.reserveCapacity(records.count)
        // Filed from what was noted when each record became resident: no record is decoded again here.
        for (dot, held) in records {
            guard let sale = component(of: held.filing) else {
                loose.append((dot, held.record))
                continue
            }
            components.append((sale.dot, dot, held.record))
            switch held.filing {
            case .request: tickets.append((dot, sale.dot))
            case .capture(_, let key): keys.append((key, sale.dot))
            default: break
            }
        }
        components.sort { ($0.sale.replica.rawValue, $0.sale.seq, $0.dot.replica.rawValue, $0.dot.seq) < ($1.sale.replica.rawValue, $1.sale.seq, $1.dot.replica.rawValue, $1.dot.seq) }
        loose.sort { ($0.dot.replica.rawValue, $0.dot.seq) < ($1.dot.replica.rawValue, $1.dot.seq) }
        tickets.sort { ($0.ticket.replica.rawValue, $0.ticket.seq) < ($1.ticket.replica.rawValue, $1.ticket.seq) }
        // A duplicate key orders as its bytes do (DuplicateKey is compared big-endian), then the sale as its key bytes do.
        keys.sort { ($0.key, $0.sale.replica.rawValue, $0.sale.seq) < ($1.key, $1.sale.replica.rawValue, $1.sale.seq) }
        let writer = try SnapshotWriter(path: directory + "/run.tmp", fileSystem: fs, central: central, position: meta.position,
                                        generations: generations, key: key, expectedKeys: components.count + tickets.count + keys.count)
        do {
            for c in components { try writer.add(.components, dot: c.sale, payload: c.record[...]) }
            for t in tickets { try writer.add(.tickets, dot: t.ticket, payload: SnapshotKey.dot(t.sale)[...]) }
            for k in keys { try writer.add(.duplicateKeys, SnapshotKey.duplicateKey(k.key, sale: SaleId(k.sale))) }
            for (replica, list) in newDigests.sorted(by: { $0.key < $1.key }) where !list.isEmpty {
                var seq = (baseAcknowledged[replica] ?? 0) + 1
                for start in stride(from: 0, to: list.count, by: SnapshotLimits.digestChunk) {
                    let chunk = list[start..<min(start + SnapshotLimits.digestChunk, list.count)]
                    var r = ByteWriter(SnapshotKey.digests(replica, firstSeq: seq))
                    for d in chunk { r.writeLE(d) }
                    try writer.add(.digests, r.bytes)
                    seq += UInt64(chunk.count)
                }
            }
            for l in loose { try writer.add(.loose, dot: l.dot, payload: l.record[...]) }
            try writer.finish(meta: meta)
        } catch {
            writer.abandon()
            throw error
        }
        return (writer, loose.map { ($0.dot, $0.record) })
    }

    /// Starts the merges the runs are due after a flush (`RunFiles.mergeDue`), on a second thread: reads
    /// go on from the runs as they are (a merge only rewrites what they hold) until `finishMerges`
    /// installs the merged runs. With `mergesInBackground` false they run here, before the flush returns.
    private func startMerges() {
        guard RunFiles.mergeDue(runs) else { return }
        let files = runFiles, chain = HandedOver(runs)
        guard mergesInBackground else {
            installMerged(.success(files.merge(chain)))
            return
        }
        merges = SecondThread { () throws(SyncError) in files.merge(chain) }
    }

    /// Installs the merges the last flush started once they are done (`wait`: waits for them; else
    /// installs them only if they are done already). A flush, a read of every run, the statistics and
    /// close wait; an append takes them if done, so lookups probe fewer runs sooner.
    func finishMerges(wait: Bool = true) {
        guard let m = merges else { return }
        let outcome: Result<MergedRuns, SyncError>
        if wait {
            do { outcome = .success(try m.result()) } catch { outcome = .failure(error) }
        } else {
            guard let done = m.poll() else { return }
            outcome = done
        }
        merges = nil
        installMerged(outcome)
    }

    /// Takes the merged chain in place of the runs it was made from: the inputs of every merge it made are
    /// closed and removed (a crash before leaves them beside the merged run; opening takes the longer).
    private func installMerged(_ outcome: Result<MergedRuns, SyncError>) {
        guard case .success(let merged) = outcome else { return }  // the merges' thread returns its errors in MergedRuns
        let kept = Set(merged.chain.value.map { ObjectIdentifier($0) })
        for run in runs where !kept.contains(ObjectIdentifier(run)) {
            run.close()
            try? fs.removeFile(run.path)
        }
        runs = merged.chain.value
        compactions += merged.count
        if merged.count > 0 { releaseFreedMemory() }
        if let error = merged.error {
            logger.error("snapshot merge failed; it will be retried at the next flush", metadata: ["sync.error": "\(error)"])
        }
    }

    func close() {
        finishMerges()
        for run in runs { run.close() }
    }

    /// A state dropped without `close` (a test's simulated crash, a failed open) still waits for its merges:
    /// no thread goes on writing its directory after it is gone. Their runs are left as they are (the next
    /// open takes the longest chain and removes the rest).
    deinit { _ = try? merges?.result() }
}

/// Folds batches of events into one state, in the order given, on a queue of
/// its own: `apply` returns once the batch before has been folded and this
/// one is under way, so the caller prepares the next batch meanwhile and at
/// most two batches are held (the caller's and the one being folded).
/// `decodeAndApply` puts a decode in front, on a second queue: a batch of
/// records is decoded there while the caller reads the next and the one
/// before is folded (at most three batches held).
final class FoldPipeline: @unchecked Sendable {  // `state` and `failure` are touched by one side at a time: the groups order them
    private var state: LedgerState
    private let context: RecordDecodeContext
    private let queue = DispatchQueue(label: "possync.central.fold")
    private let group = DispatchGroup()
    private let decodeQueue = DispatchQueue(label: "possync.central.decode")
    private let decodeGroup = DispatchGroup()
    /// The first record that did not decode: nothing after it is decoded or folded.
    private var failure: Failure?

    /// A record that did not decode: the origin the caller gave it, and why.
    struct Failure: Error {
        let origin: Int
        let error: LedgerError
    }

    /// Events folded by one `LedgerState.apply`, at most: a slice's sales are looked up again when it
    /// is recomputed, and a slice this small still has their table entries in cache then (a whole
    /// batch's do not: each lookup in a state of a million sales would miss again).
    static let sliceEvents = 512

    /// `context`: what `decodeAndApply` decodes records with.
    init(_ state: LedgerState, context: RecordDecodeContext) {
        self.state = state
        self.context = context
    }

    /// `LedgerState.reserveCapacity` on the fold's queue (the state is copied there once, when it is
    /// shared with the caller's, and grown to its size before the first batch).
    func reserve(sales: Int, tickets: Int) {
        group.wait()
        queue.async(group: group) { self.state.reserveCapacity(sales: sales, tickets: tickets) }
    }

    func apply(_ batch: [Event]) {
        group.wait()
        guard !batch.isEmpty else { return }
        queue.async(group: group) {
            var start = 0
            while start < batch.count {
                let end = Swift.min(start + Self.sliceEvents, batch.count)
                self.state.apply(batch[start..<end])
                start = end
            }
        }
    }

    /// Decodes `records` (on the decode queue, `BulkDecode`'s two threads) and folds them (`apply`);
    /// returns once the batch before has been decoded. `origins[i]` names where record `i` came from.
    /// The first record that does not decode is returned, by this call or a later one, or by `finish`.
    func decodeAndApply(_ records: [[UInt8]], origins: [Int]) -> Failure? {
        precondition(records.count == origins.count, "one origin per record")
        decodeGroup.wait()
        if let failure { return failure }
        guard !records.isEmpty else { return nil }
        decodeQueue.async(group: decodeGroup) {
            let context = self.context
            switch BulkDecode.map(records, { (r) throws(LedgerError) in try RecordCodec.decode(r, context: context) }) {
            case .success(let events): self.apply(events)
            case .failure(let f): self.failure = Failure(origin: origins[f.index], error: f.error)
            }
        }
        return nil
    }

    /// The state once every batch given is folded, or the first record that did not decode.
    func finish() -> Result<LedgerState, Failure> {
        decodeGroup.wait()
        group.wait()
        if let failure { return .failure(failure) }
        return .success(state)
    }
}

/// Hands the heap pages the dropped resident part occupied back to the
/// system (glibc keeps freed memory otherwise, so the process's resident size
/// would keep the high-water mark of every cycle, fragmented). A no-op where
/// the C library has no `malloc_trim`.
private func releaseFreedMemory() {
    #if os(Linux)
    typealias Trim = @convention(c) (Int) -> Int32
    if let symbol = mallocTrim { _ = unsafeBitCast(symbol, to: Trim.self)(0) }
    #endif
}

#if os(Linux)
private nonisolated(unsafe) let mallocTrim: UnsafeMutableRawPointer? = dlsym(nil, "malloc_trim")
#endif

/// A resident event's record and how a flush files it, taken from the event
/// when it becomes resident (it was decoded then), so a flush reads no record
/// twice. What it holds besides the record is a few ids: the memory bound stays
/// the flush interval.
struct ResidentRecord {
    enum Filing: Equatable {
        /// A sale outcome: in its sale's component.
        case sale(SaleId)
        /// A capture: its own sale's component, and a duplicate-keys entry.
        case capture(SaleId, DuplicateKey)
        /// A refund request: its sale's component, and a tickets entry.
        case request(SaleId)
        /// A ticket's later event: in the component of the sale its request names, loose while the request is not resident.
        case ticket(TicketId)
        /// An event of a type this version does not know: loose.
        case loose

        init(_ e: Event) {
            switch e.body {
            case .saleCaptured(let c): self = .capture(SaleId(e.dot), c.duplicateKey)
            case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s): self = .sale(s)
            case .refundRequested(let r): self = .request(r.sale)
            case .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t),
                 .refundCompleted(let t), .refundEscalated(let t), .noteAdded(let t, _): self = .ticket(t)
            case .unknown, .sequenceVoid: self = .loose
            }
        }
    }
    let record: [UInt8]
    let filing: Filing
    init(_ record: [UInt8], _ event: Event) {
        self.record = record
        filing = Filing(event)
    }
}

/// The runs an object hands to another thread. Only the immutable parts of its
/// runs (what their footers said) are read there: each run is read through a
/// sibling reader of its own (`SnapshotFile(sibling:)`).
struct HandedOver<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// What the merges started at a flush made: the chain in place of the runs
/// they were given (a run not merged is the same object), how many merges,
/// and the error that stopped them (the merges before it are kept).
struct MergedRuns: Sendable {
    let chain: HandedOver<[SnapshotFile]>
    let count: Int
    let error: SyncError?
}

/// Puts runs into place and merges them. Holds only what does not change, so
/// the merges' thread uses it while the state reads its runs on its own.
struct RunFiles: @unchecked Sendable {  // the file system is used from both threads, as the journal's second thread does
    let directory: String
    let fs: any JournalFileSystem
    let central: CentralID
    let key: JournalKey

    /// Where a merge writes before its run is put into place (a flush writes `run.tmp`: both may be under way at once).
    var mergeTemporaryPath: String { directory + "/merge.tmp" }

    /// Renames a finished run into place (after which it is durable under its name) and opens it.
    func install(_ writer: SnapshotWriter) throws(SyncError) -> SnapshotFile {
        let path = directory + "/" + CentralState.runName(writer.generations)
        do {
            try fs.rename(writer.path, to: path)
            try fs.syncDirectory(directory)
        } catch { throw SyncError(.io, "cannot put the new snapshot run in place: \(error.message)", location: path) }
        return try SnapshotFile(adopting: writer, path: path, fileSystem: fs, key: key)
    }

    /// Whether the two newest runs are to be merged: the older is not more than twice the newer's size
    /// (a binary-counter schedule: O(log n) runs, each record rewritten O(log n) times), or there are
    /// more than `runsMax`.
    static func mergeDue(_ runs: [SnapshotFile]) -> Bool {
        guard runs.count >= 2 else { return false }
        return runs[runs.count - 2].fileBytes <= 2 * runs[runs.count - 1].fileBytes || runs.count > SnapshotLimits.runsMax
    }

    /// Merges the two newest runs of `chain` while `mergeDue`. The runs given are read through siblings
    /// (closed here); a run merged here and merged again is removed here (no other thread knew it).
    func merge(_ chain: HandedOver<[SnapshotFile]>) -> MergedRuns {
        var runs = chain.value
        let given = Set(runs.map { ObjectIdentifier($0) })
        var count = 0
        var failure: SyncError?
        while Self.mergeDue(runs) {
            let older = runs[runs.count - 2], newer = runs[runs.count - 1]
            do throws(SyncError) {
                let joined = try install(try merge(older, newer, given: given))
                for run in [older, newer] where !given.contains(ObjectIdentifier(run)) {
                    run.close()
                    try? fs.removeFile(run.path)
                }
                runs.removeLast(2)
                runs.append(joined)
                count += 1
            } catch {
                failure = error
                break
            }
        }
        return MergedRuns(chain: HandedOver(runs), count: count, error: failure)
    }

    /// One run equal to `older` followed by `newer` (adjacent generations): a
    /// sale's or ticket's newest entry wins, duplicate-key entries are united,
    /// digests and the newer run's loose events are kept. Streams both, each
    /// read through a sibling when it is one of the runs `given` (another
    /// thread reads those).
    private func merge(_ older: SnapshotFile, _ newer: SnapshotFile, given: Set<ObjectIdentifier>) throws(SyncError) -> SnapshotWriter {
        func reader(_ run: SnapshotFile) throws(SyncError) -> SnapshotFile {
            given.contains(ObjectIdentifier(run)) ? try SnapshotFile(sibling: run, fileSystem: fs, key: key) : run
        }
        let a = try reader(older)
        defer { if a !== older { a.close() } }
        let b = try reader(newer)
        defer { if b !== newer { b.close() } }
        var keys = 0
        for run in [a, b] {
            for section: SnapshotSection in [.components, .tickets, .duplicateKeys] { keys += Int(run.meta.counts[section] ?? 0) }
        }
        let writer = try SnapshotWriter(path: mergeTemporaryPath, fileSystem: fs, central: central, position: b.meta.position,
                                        generations: a.generations.lowerBound...b.generations.upperBound, key: key, expectedKeys: keys)
        do {
            /// Merges a section by `groupBytes` of key: on a tie the newer run's group replaces the older's (or both are kept, deduplicated).
            func mergeSection(_ section: SnapshotSection, groupBytes: Int, newerWins: Bool) throws(SyncError) {
                // Records are taken in place, as slices of their frames' blocks: only keys are compared, bytes copied once.
                let older = SnapshotFile.Cursor(a, section), newer = SnapshotFile.Cursor(b, section)
                var x = try older.nextSlice(), y = try newer.nextSlice()
                while x != nil || y != nil {
                    if let l = x, y == nil || keyPrecedes(l.prefix(groupBytes), y!.prefix(groupBytes)) {
                        try writer.add(section, l)
                        x = try older.nextSlice()
                    } else if let r = y, x == nil || keyPrecedes(r.prefix(groupBytes), x!.prefix(groupBytes)) {
                        try writer.add(section, r)
                        y = try newer.nextSlice()
                    } else if newerWins {
                        // Same group in both: the newer run's whole group, none of the older's.
                        let group = Array(x!.prefix(groupBytes))
                        while let l = x, l.prefix(groupBytes).elementsEqual(group) { x = try older.nextSlice() }
                        while let r = y, r.prefix(groupBytes).elementsEqual(group) {
                            try writer.add(section, r)
                            y = try newer.nextSlice()
                        }
                    } else {
                        try writer.add(section, y!)
                        if x! == y! { x = try older.nextSlice() }  // the same entry in both: once
                        y = try newer.nextSlice()
                    }
                }
            }
            try mergeSection(.components, groupBytes: 12, newerWins: true)
            try mergeSection(.tickets, groupBytes: 12, newerWins: true)
            try mergeSection(.duplicateKeys, groupBytes: 28, newerWins: false)
            try mergeSection(.digests, groupBytes: 12, newerWins: true)
            try b.scan(.loose) { (r: [UInt8]) throws(SyncError) in try writer.add(SnapshotSection.loose, r) }
            try writer.finish(meta: b.meta)
        } catch {
            writer.abandon()
            throw error
        }
        return writer
    }
}
