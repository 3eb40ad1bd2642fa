import Foundation
import Logging
import PosJournal
import PosLedger

/// Central's folded state with a bounded part in memory (sync-protocol.md,
/// "Central state and snapshots").
///
/// Every event central holds is in its journal (the truth) and, once a
/// snapshot covers it, in `state/snapshot-P.pss`, filed under the sale it
/// belongs to. Memory holds the *resident* state: the sales touched since the
/// last snapshot, each with its whole component (capture, outcomes, tickets)
/// and the components of every capture sharing its payment code, so the fold
/// decides exactly as it would over every event. Every `snapshotEvents`
/// events the resident part is merged into a new snapshot and dropped.
final class CentralState {
    let directory: String
    private let fs: any JournalFileSystem
    private let central: CentralID
    private let key: JournalKey
    private let logger: Logger
    /// Events applied between snapshots, at most (the memory bound).
    let snapshotEvents: Int

    private(set) var snapshot: SnapshotFile?
    /// The fold of every resident event.
    private(set) var resident = LedgerState()
    /// The record of every resident event, by dot (what the next snapshot files).
    private var records: [Dot: [UInt8]] = [:]
    /// Sales whose snapshot component has been loaded (or found absent).
    private var loadedSales = Set<SaleId>()
    private var checkedKeys = Set<DuplicateKey>()
    private var checkedTickets = Set<TicketId>()
    /// Per replica (central included), digests of seqs up to this are in the snapshot.
    private var baseAcknowledged: [ReplicaId: UInt64] = [:]
    /// Digests of events applied since the snapshot, per replica, in sequence order.
    private var newDigests: [ReplicaId: [UInt64]] = [:]
    private(set) var eventsSinceSnapshot = 0
    private(set) var snapshotsWritten = 0

    /// Opens `directory`, choosing the newest snapshot that checks and covers no
    /// more than `journalHead`; a damaged one is renamed `*.damaged` and logged,
    /// and the caller replays the journal from the returned position.
    init(directory: String, fileSystem: any JournalFileSystem, central: CentralID, secret: [UInt8],
         journalHead: UInt64, snapshotEvents: Int, logger: Logger) throws(SyncError) {
        precondition(snapshotEvents > 0)
        self.directory = directory
        fs = fileSystem
        self.central = central
        key = KeyDerivation.centralSnapshotKey(secret: secret)
        self.logger = logger
        self.snapshotEvents = snapshotEvents
        let names = FileStore(fs: fs).list(directory)
        for name in names where name.hasSuffix(".tmp") { try? fs.removeFile(directory + "/" + name) }
        let candidates = names.compactMap { name -> (UInt64, String)? in
            guard name.hasPrefix("snapshot-"), name.hasSuffix(".pss"), name.count == 29,
                  let p = UInt64(name.dropFirst(9).prefix(16), radix: 16) else { return nil }
            return (p, name)
        }.sorted { $0.0 > $1.0 }
        for (position, name) in candidates {
            let path = directory + "/" + name
            if snapshot != nil {
                try? fs.removeFile(path)  // superseded by a newer one that checked
                continue
            }
            guard position <= journalHead else {
                logger.error("snapshot covers more than the journal holds; ignored", metadata: ["snapshot": "\(path)", "journal.head": "\(journalHead)"])
                try? fs.rename(path, to: path + ".ahead")
                continue
            }
            do {
                let file = try SnapshotFile.open(path: path, fileSystem: fs, central: central, key: key, verifyFrames: true)
                guard file.meta.position == position else {
                    file.close()
                    throw SyncError(.malformed, "named for position \(position), holds \(file.meta.position)", location: path)
                }
                snapshot = file
            } catch {
                logger.error("snapshot damaged; the journal will be replayed instead", metadata: ["snapshot.error": "\(error)"])
                try? fs.rename(path, to: path + ".damaged")
            }
        }
        if let snapshot {
            baseAcknowledged = snapshot.meta.acknowledged
            baseAcknowledged[.central] = snapshot.meta.centralSequence
            try loadLoose()
        }
    }

    /// What the snapshot in use says (nil: the journal is replayed from the start).
    var meta: SnapshotMeta? { snapshot?.meta }

    private func loadLoose() throws(SyncError) {
        guard let snapshot else { return }
        var events: [Event] = []
        try snapshot.scan(.loose) { (r: [UInt8]) throws(SyncError) in
            let record = Array(r[SnapshotSection.loose.keyBytes...])
            let e = try decodeSnapshotRecord(record)
            records[e.dot] = record
            events.append(e)
        }
        resident.apply(events)
    }

    private func decodeSnapshotRecord(_ record: [UInt8]) throws(SyncError) -> Event {
        do { return try RecordCodec.decode(record) } catch {
            throw SyncError(error, location: "\(snapshot?.path ?? directory) (an event record in the snapshot)")
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
        guard let snapshot else { return nil }
        let chunk = UInt64(SnapshotLimits.digestChunk)
        let found = try snapshot.lookup(.digests, SnapshotKey.digestChunk(replica, (seq - 1) / chunk))
        let at = found.first.map { $0.startIndex + SnapshotSection.digests.keyBytes + Int((seq - 1) % chunk) * 8 }
        guard let r = found.first, let at, at + 8 <= r.endIndex else {
            throw SyncError(.malformed, "the snapshot lacks the digest of \(replica.rawValue):\(seq), which it covers", location: snapshot.path)
        }
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(r[at + $1]) << (8 * $1) }
    }

    func appendDigest(_ replica: ReplicaId, _ digest: UInt64) { newDigests[replica, default: []].append(digest) }

    // MARK: - Making what an event touches resident

    /// Loads from the snapshot everything the fold needs to apply `event` exactly.
    func prepare(_ event: Event) throws(SyncError) {
        guard snapshot != nil else { return }
        switch event.body {
        case .saleCaptured(let c):
            try loadSale(SaleId(event.dot))
            try loadKey(c.duplicateKey)
        case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s):
            try loadSale(s)
        case .refundRequested(let r):
            try loadSale(r.sale)
            try loadTicket(TicketId(event.dot))
        case .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t),
             .refundCompleted(let t), .refundEscalated(let t), .noteAdded(let t, _):
            try loadTicket(t)
        case .unknown:
            break
        }
    }

    func prepare(_ key: EntityKey) throws(SyncError) {
        switch key {
        case .sale(let s): try loadSale(s)
        case .ticket(let t): try loadTicket(t)
        }
    }

    private func loadSale(_ s: SaleId) throws(SyncError) {
        guard let snapshot, loadedSales.insert(s).inserted else { return }
        var events: [Event] = []
        for r in try snapshot.lookup(.components, SnapshotKey.sale(s)) {
            let record = Array(r[(r.startIndex + SnapshotSection.components.keyBytes)...])
            let e = try decodeSnapshotRecord(record)
            guard records[e.dot] == nil else { continue }
            records[e.dot] = record
            events.append(e)
            if case .refundRequested = e.body { checkedTickets.insert(TicketId(e.dot)) }
        }
        guard !events.isEmpty else { return }
        resident.apply(events)
        // The captures sharing this sale's payment code decide its status with it.
        if case .saleCaptured(let c)? = resident.capture(of: s)?.body { try loadKey(c.duplicateKey) }
    }

    private func loadKey(_ k: DuplicateKey) throws(SyncError) {
        guard let snapshot, checkedKeys.insert(k).inserted else { return }
        for r in try snapshot.lookup(.duplicateKeys, k.bytes) {
            guard let dot = SnapshotKey.decodeDot(r[(r.startIndex + 16)..<(r.startIndex + 28)]) else {
                throw SyncError(.malformed, "a duplicate-keys record names no sale", location: snapshot.path)
            }
            try loadSale(SaleId(dot))
        }
    }

    private func loadTicket(_ t: TicketId) throws(SyncError) {
        guard let snapshot, resident.request(of: t) == nil, checkedTickets.insert(t).inserted else { return }
        if let r = try snapshot.lookup(.tickets, SnapshotKey.ticket(t)).first {
            guard let dot = SnapshotKey.decodeDot(r[(r.startIndex + 12)..<(r.startIndex + 24)]) else {
                throw SyncError(.malformed, "a tickets record names no sale", location: snapshot.path)
            }
            try loadSale(SaleId(dot))
        }
    }

    // MARK: - Applying

    /// Folds events already made durable (each `prepare`d first).
    func apply(_ events: [Event], records encoded: [[UInt8]]) {
        for (e, r) in zip(events, encoded) { records[e.dot] = r }
        resident.apply(events)
        eventsSinceSnapshot += events.count
    }

    /// The whole state: the snapshot's sales that are not resident, folded with the resident ones.
    /// O(every event): for reports and checks, never on the sync path.
    func fullState() throws(SyncError) -> LedgerState {
        var state = resident
        guard let snapshot else { return state }
        var batch: [Event] = []
        try snapshot.scan(.components) { (r: [UInt8]) throws(SyncError) in
            guard let dot = SnapshotKey.decodeDot(r[0..<12]), !loadedSales.contains(SaleId(dot)) else { return }
            batch.append(try decodeSnapshotRecord(Array(r[SnapshotSection.components.keyBytes...])))
            if batch.count >= 4096 {
                state.apply(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        state.apply(batch)
        return state
    }

    // MARK: - Snapshots

    /// The sale a resident event is filed under (nil: the loose section).
    private func component(of e: Event) -> SaleId? {
        switch e.body {
        case .saleCaptured: return SaleId(e.dot)
        case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s): return s
        case .refundRequested(let r): return r.sale
        case .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t),
             .refundCompleted(let t), .refundEscalated(let t), .noteAdded(let t, _):
            if case .refundRequested(let r)? = resident.request(of: t)?.body { return r.sale }
            return nil
        case .unknown: return nil
        }
    }

    /// Merges the resident part into a new snapshot covering journal positions
    /// 1...position, makes it durable, switches to it and drops the resident part.
    func writeSnapshot(position: UInt64, centralSequence: UInt64, lastHLC: UInt64,
                       acknowledged: [ReplicaId: UInt64]) throws(SyncError) {
        // The merge's working arrays are freed when writeMerged returns, before the memory is handed back.
        let writer = try writeMerged(position: position, centralSequence: centralSequence, lastHLC: lastHLC, acknowledged: acknowledged)
        let temporary = writer.path
        let old = snapshot
        let name = String(format: "snapshot-%016llx.pss", position)
        let path = directory + "/" + name
        do {
            try fs.rename(temporary, to: path)
            try fs.syncDirectory(directory)
        } catch { throw SyncError(.io, "cannot put the new snapshot in place: \(error.message)", location: path) }
        // Switch only once the new file is open: until then the old one stays in use (and on disk).
        let next = try SnapshotFile(adopting: writer, path: path, fileSystem: fs, key: key)
        if let old, old.path != path {
            old.close()
            try? fs.removeFile(old.path)
        }
        snapshot = next
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
        try loadLoose()
        releaseFreedMemory()
        logger.info("snapshot written", metadata: ["snapshot": "\(path)", "snapshot.bytes": "\(next.fileBytes)"])
    }

    /// Writes the merged snapshot to `state/snapshot.tmp` and makes it durable; returns the finished writer.
    private func writeMerged(position: UInt64, centralSequence: UInt64, lastHLC: UInt64,
                             acknowledged: [ReplicaId: UInt64]) throws(SyncError) -> SnapshotWriter {
        var components: [(key: [UInt8], record: [UInt8])] = []
        var loose: [(key: [UInt8], record: [UInt8])] = []
        var tickets: [[UInt8]] = []
        var keys: [[UInt8]] = []
        var residentSales = loadedSales
        components.reserveCapacity(records.count)
        for (dot, record) in records {
            let e = try decodeSnapshotRecord(record)
            guard let sale = component(of: e) else {
                loose.append((SnapshotKey.dot(dot), SnapshotKey.dot(dot) + record))
                continue
            }
            residentSales.insert(sale)
            let saleKey = SnapshotKey.sale(sale)
            components.append((saleKey + SnapshotKey.dot(dot), saleKey + record))
            switch e.body {
            case .refundRequested: tickets.append(SnapshotKey.dot(dot) + saleKey)
            case .saleCaptured(let c): keys.append(c.duplicateKey.bytes + saleKey)
            default: break
            }
        }
        components.sort { keyPrecedes($0.key[...], $1.key[...]) }
        loose.sort { keyPrecedes($0.key[...], $1.key[...]) }
        tickets.sort { keyPrecedes($0[...], $1[...]) }
        keys.sort { keyPrecedes($0[...], $1[...]) }

        let old = snapshot
        let oldKeys = old.map { Int(($0.meta.counts[.components] ?? 0) + ($0.meta.counts[.tickets] ?? 0) + ($0.meta.counts[.duplicateKeys] ?? 0)) } ?? 0
        let temporary = directory + "/snapshot.tmp"
        let writer = try SnapshotWriter(path: temporary, fileSystem: fs, central: central, position: position, key: key,
                                        expectedKeys: oldKeys + components.count + tickets.count + keys.count)
        do {
            // Each section: the old snapshot's records of sales not resident, merged in key order with the resident ones.
            func merge(_ section: SnapshotSection, _ fresh: [[UInt8]], saleAt: Int?) throws(SyncError) {
                var i = 0
                try old?.scan(section) { (r: [UInt8]) throws(SyncError) in
                    if let at = saleAt, let dot = SnapshotKey.decodeDot(r[at..<at + 12]), residentSales.contains(SaleId(dot)) { return }
                    let k = r[0..<section.keyBytes]
                    while i < fresh.count, keyPrecedes(fresh[i][0..<section.keyBytes], k) {
                        try writer.add(section, fresh[i])
                        i += 1
                    }
                    try writer.add(section, r)
                }
                while i < fresh.count {
                    try writer.add(section, fresh[i])
                    i += 1
                }
            }
            try merge(.components, components.map(\.record), saleAt: 0)
            try merge(.tickets, tickets, saleAt: 12)
            try merge(.duplicateKeys, keys, saleAt: 16)
            try mergeDigests(old, writer)
            for l in loose { try writer.add(.loose, l.record) }
            var acks = acknowledged
            acks[.central] = nil
            try writer.finish(meta: SnapshotMeta(position: position, centralSequence: centralSequence, lastHLC: lastHLC,
                                                 acknowledged: acks.filter { $0.value > 0 }, counts: writer.counts))
        } catch {
            writer.abandon()
            throw error
        }
        return writer
    }

    /// The digests section: old chunks, the last partial chunk of a replica
    /// extended with its new digests, then the replica's new chunks.
    private func mergeDigests(_ old: SnapshotFile?, _ writer: SnapshotWriter) throws(SyncError) {
        let chunk = UInt64(SnapshotLimits.digestChunk)
        var fresh: [(key: [UInt8], digests: ArraySlice<UInt64>)] = []
        for (replica, list) in newDigests.sorted(by: { $0.key < $1.key }) where !list.isEmpty {
            var seq = (baseAcknowledged[replica] ?? 0) + 1  // first new sequence number
            var i = 0
            while i < list.count {
                let c = (seq - 1) / chunk
                let room = Int((c + 1) * chunk - seq + 1)
                let n = min(room, list.count - i)
                fresh.append((SnapshotKey.digestChunk(replica, c), list[i..<i + n]))
                i += n
                seq += UInt64(n)
            }
        }
        func record(_ key: [UInt8], _ prefix: ArraySlice<UInt8>, _ digests: ArraySlice<UInt64>) -> [UInt8] {
            var r = key + prefix
            r.reserveCapacity(r.count + digests.count * 8)
            for d in digests { withUnsafeBytes(of: d.littleEndian) { r += $0 } }
            return r
        }
        var i = 0
        try old?.scan(.digests) { (r: [UInt8]) throws(SyncError) in
            let k = r[0..<12]
            while i < fresh.count, keyPrecedes(fresh[i].key[...], k) {
                try writer.add(.digests, record(fresh[i].key, [], fresh[i].digests))
                i += 1
            }
            if i < fresh.count, fresh[i].key[...] == k {
                try writer.add(.digests, record(Array(k), r[12...], fresh[i].digests))
                i += 1
            } else {
                try writer.add(.digests, r)
            }
        }
        while i < fresh.count {
            try writer.add(.digests, record(fresh[i].key, [], fresh[i].digests))
            i += 1
        }
    }

    func close() { snapshot?.close() }
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
