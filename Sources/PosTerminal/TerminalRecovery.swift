import Foundation
import Logging
import PosJournal
import PosLedger
import PosWire

/// What `TerminalReplica.recover` did.
public struct TerminalRecoveryReport: Sendable, Equatable {
    /// The outbound journal was rebuilt (it was damaged, or shorter than what central acknowledged).
    public var outboundRebuilt = false
    /// The inbound journal did not open and was started again (its events are pulled again at the next sync).
    public var inboundRebuilt = false
    /// Sequence numbers taken from central's copy, byte for byte as it accepted them.
    public var fromCentral: ClosedRange<UInt64>?
    /// Unacknowledged events kept from the damaged journal.
    public var keptLocal: ClosedRange<UInt64>?
    /// The rebuilt journal starts here (events before it are held by central and were retired or lost for good).
    public var firstSequence: UInt64 = 1
    /// The rebuilt journal ends here: the next event gets this + 1.
    public var lastSequence: UInt64 = 0
    /// Numbers whose events are lost (below the highest number known used: an intact later event, or what
    /// central acknowledged): each is written as a `sequence-void` event, so no number is given twice.
    public var lost: [ClosedRange<UInt64>] = []
    /// Intact events after a lost number, kept at their numbers.
    public var keptAfterLoss: [ClosedRange<UInt64>] = []
    /// Numbers above every number known used, through what the terminal had reserved
    /// (inbound kind 8): voided too; an event written there, if any, is lost.
    public var voidedUnused: ClosedRange<UInt64>?
    /// The salvage found damage (not only a journal that ends early).
    public var damageFound = false
    /// Local events whose bytes differ from what central accepted under the same number (central's kept).
    public var differedFromCentral: [UInt64] = []
    /// Events central once acknowledged that neither central nor this terminal holds any more
    /// (their numbers, below the next one, will not come back).
    public var lostEverywhere: [ClosedRange<UInt64>] = []
    /// Where the old journals were moved.
    public var damagedOutbound: String?
    public var damagedInbound: String?

    public var nothingToDo: Bool { !outboundRebuilt && !inboundRebuilt }
}

extension TerminalReplica {
    /// Records appended at a time while recovery rebuilds the outbound journal.
    static let rebuildBatchRecords = 1024

    /// The explicit path when open refused: rebuilds the outbound journal from
    /// central's copy of this terminal's acknowledged events (fetched through
    /// `transport`, byte for byte as accepted) and whatever intact unacknowledged
    /// events the damaged journal still holds, so the terminal continues at the
    /// right sequence number; restarts an inbound journal that does not open.
    /// The damaged journals are kept beside the new ones (`outbound.damaged`, ...).
    /// Safe to run again; does nothing when both journals open and agree with
    /// central.
    public static func recover(directory: String, via transport: any SyncTransport, wallMillis: Int64,
                               fileSystem: any JournalFileSystem = PosixFileSystem(),
                               options: TerminalOptions = TerminalOptions(), logger: Logger? = nil) throws(SyncError) -> TerminalRecoveryReport {
        try recover(directory: directory, connect: { transport }, wallMillis: wallMillis, fileSystem: fileSystem, options: options, logger: logger)
    }

    /// The same, reaching central through what `connect` returns: it is called once, with this
    /// terminal's lock held and before anything is written. A caller that opens central's store
    /// there takes the two locks in the order `sync` takes them (the terminal's, then central's),
    /// so a recovery and a sync of one terminal never wait for each other in a circle.
    public static func recover(directory: String, connect: () throws(SyncError) -> any SyncTransport, wallMillis: Int64,
                               fileSystem: any JournalFileSystem = PosixFileSystem(),
                               options: TerminalOptions = TerminalOptions(), logger: Logger? = nil) throws(SyncError) -> TerminalRecoveryReport {
        let files = FileStore(fs: fileSystem)
        let path = directory + "/enrollment.json"
        guard files.exists(path) else { throw SyncError(.notFound, "no terminal store here (enrollment.json missing)", location: directory) }
        let storeLock = try StoreDirectory.lock(directory, fileSystem: fileSystem, waitMillis: options.lockWaitMillis)
        defer { storeLock.release() }
        let transport = try connect()
        let enrollment = try Enrollment.read(from: path, fileSystem: fileSystem)
        let log = logger ?? Logger(label: "possync.terminal", factory: { _ in SwiftLogNoOpLogHandler() })
        let config = journalConfiguration(enrollment: enrollment, options: options)
        let terminal = enrollment.terminal
        var report = TerminalRecoveryReport()

        // Inbound: the evidence. A journal that does not open is set aside and started again.
        let inboundDir = directory + "/inbound"
        let inbound: Journal
        do {
            inbound = try Journal.open(directory: inboundDir, configuration: config, fileSystem: fileSystem, logger: log)
        } catch where error.code != .io && error.code != .diskFull {
            report.damagedInbound = try setAside(inboundDir, files: files)
            report.inboundRebuilt = true
            inbound = try journal { () throws(JournalError) in try Journal.open(directory: inboundDir, configuration: config, fileSystem: fileSystem, logger: log) }
        } catch {
            throw SyncError(error)
        }
        defer { try? inbound.close() }
        let summary = try InboundSummary.read(inbound, terminal: terminal, context: enrollment.recordContext, location: inboundDir)

        // What central holds of this terminal, and what the journal still holds.
        let hello = SyncMessage.Hello(central: enrollment.central, terminal: terminal, knowledge: VersionVector(), pullCursor: 0,
                                      wallMillis: wallMillis, acknowledged: summary.acknowledged, epoch: summary.epoch)
        guard case .welcome(let welcome) = try expectReply(transport.exchange(.hello(hello))) else {
            throw SyncError(.malformed, "central answered hello with something other than welcome")
        }
        let centralHolds = welcome.acknowledged
        let required = max(summary.acknowledged, summary.echoed, centralHolds)
        let outboundDir = directory + "/outbound"
        var healthy = false
        var inspected: (segments: [SegmentInfo], report: RecoveryReport)?
        do {
            inspected = try Journal.inspect(directory: outboundDir, configuration: config, fileSystem: fileSystem)
            healthy = (inspected!.segments.last?.lastSequence ?? 0) >= required
        } catch where error.code == .io || error.code == .diskFull {
            throw SyncError(error)
        } catch {
            healthy = false
        }
        if healthy {
            if report.inboundRebuilt && centralHolds > 0 {
                _ = try journal { () throws(JournalError) in try inbound.append(InboundRecord.acknowledged(sequence: centralHolds).encoded()) }
            }
            return report
        }

        // Rebuild: the old journal's intact frames, then central's copy wins for what it accepted.
        let salvagedDir = directory + "/outbound.salvaged"
        if files.exists(salvagedDir) { try files.removeTree(salvagedDir) }
        var local: [UInt64: [UInt8]] = [:]
        var salvageLosses: [SalvageReport.Loss] = []
        var oldFirst: UInt64 = 1
        if files.exists(outboundDir) {
            oldFirst = (try? Journal.oldestSegmentBase(directory: outboundDir, fileSystem: fileSystem)).flatMap { $0 } ?? 1
            let salvage = try journal { () throws(JournalError) in try JournalSalvage.salvage(from: outboundDir, to: salvagedDir, fileSystem: fileSystem) }
            salvageLosses = salvage.losses
            for range in salvage.recovered {
                let reader = try journal { () throws(JournalError) in
                    try JournalReader(directory: salvagedDir, fileSystem: fileSystem, dictionaries: [ledgerDictionary], key: enrollment.journalKey,
                                      from: range.lowerBound, through: range.upperBound)
                }
                while let (seq, record) = try journal({ () throws(JournalError) in try reader.next() }) { local[seq] = record }
                reader.close()
            }
        }
        var fromCentral: [UInt64: [UInt8]] = [:]
        if centralHolds >= oldFirst {
            fromCentral = try fetchOwn(from: oldFirst, through: centralHolds, terminal: terminal, key: enrollment.journalKey, context: enrollment.recordContext, transport: transport)
        }
        // Start after the last hole central cannot fill below its mark (those events are held by central, or lost for good).
        var first = oldFirst
        if centralHolds >= oldFirst {
            for s in stride(from: centralHolds, through: oldFirst, by: -1) where fromCentral[s] == nil && local[s] == nil {
                first = s + 1
                break
            }
        }
        var records: [[UInt8]] = []
        var s = first
        while true {
            if s <= centralHolds, let c = fromCentral[s] {
                if let l = local[s], l != c { report.differedFromCentral.append(s) }
                records.append(c)
            } else if s <= centralHolds, let l = local[s] {
                records.append(l)  // central no longer holds it (lost for good there): the local copy stays
            } else if s > centralHolds, let l = local[s] {
                records.append(l)
            } else {
                break
            }
            s += 1
        }
        let contiguousEnd = first + UInt64(records.count) - 1   // first - 1 when empty
        report.firstSequence = first
        if centralHolds >= first { report.fromCentral = first...min(centralHolds, contiguousEnd) }
        if contiguousEnd > centralHolds, !records.isEmpty { report.keptLocal = max(first, centralHolds + 1)...contiguousEnd }
        // Never reuse a number: every number up to the highest one known used (an intact later event,
        // what central acknowledged or echoed) or reserved (inbound kind 8) stays taken. Intact later
        // events keep theirs; the others are written as sequence-void events.
        let knownUsed = max(local.keys.max() ?? 0, required, contiguousEnd)
        let top = max(knownUsed, summary.reserved)
        report.damageFound = !salvageLosses.isEmpty
        if top > contiguousEnd {
            var clock = HybridLogicalClock(last: records.compactMap { try? RecordCodec.decode($0, context: enrollment.recordContext).hlc }.max() ?? .zero)
            var lostStart: UInt64?
            var keptStart: UInt64?
            func closeRuns(at s: UInt64) {
                if let a = lostStart, s > a { if a <= knownUsed { report.lost.append(a...min(s - 1, knownUsed)) } }
                if let a = keptStart, s > a { report.keptAfterLoss.append(a...(s - 1)) }
                lostStart = nil
                keptStart = nil
            }
            for seq in (contiguousEnd + 1)...top {
                if let l = local[seq] {
                    if keptStart == nil { closeRuns(at: seq); keptStart = seq }
                    records.append(l)
                } else {
                    if lostStart == nil { closeRuns(at: seq); lostStart = seq }
                    let stamp: HLCTimestamp
                    do { stamp = try clock.now(wallMillis: wallMillis) } catch { throw SyncError(error) }
                    records.append(RecordCodec.encode(Event(dot: try! Dot(replica: terminal, seq: seq), hlc: stamp, context: VersionVector(), body: .sequenceVoid)))
                }
            }
            closeRuns(at: top + 1)
            if top > knownUsed { report.voidedUnused = (knownUsed + 1)...top }
        }
        report.lastSequence = first + UInt64(records.count) - 1
        // Of those, the ones central had acknowledged: gone at central too.
        report.lostEverywhere = report.lost.compactMap { r in
            let a = max(r.lowerBound, centralHolds + 1), b = min(r.upperBound, required)
            return a <= b ? a...b : nil
        }
        // Every event decodes and carries its own dot (central's copy and the salvaged ones alike).
        for (i, record) in records.enumerated() {
            let seq = first + UInt64(i)
            let event: Event
            do { event = try RecordCodec.decode(record, context: enrollment.recordContext) } catch { throw SyncError(error, location: "recovered seq \(seq)") }
            guard event.dot.replica == terminal, event.dot.seq == seq else {
                throw SyncError(.malformed, "recovered seq \(seq) holds event \(event.dot)", location: outboundDir)
            }
        }

        let rebuiltDir = directory + "/outbound.rebuilt"
        if files.exists(rebuiltDir) { try files.removeTree(rebuiltDir) }
        var newConfig = config
        newConfig.firstSequence = first
        newConfig.durability = .perRecord
        let out = try journal { () throws(JournalError) in try Journal.open(directory: rebuiltDir, configuration: newConfig, fileSystem: fileSystem, logger: log) }
        var i = 0
        while i < records.count {
            let chunk = Array(records[i..<min(i + Self.rebuildBatchRecords, records.count)])
            _ = try journal { () throws(JournalError) in try out.append(contentsOf: chunk) }
            i += chunk.count
        }
        try journal { () throws(JournalError) in try out.close() }
        if files.exists(outboundDir) { report.damagedOutbound = try setAside(outboundDir, files: files) }
        try journal { () throws(JournalError) in
            try fileSystem.rename(rebuiltDir, to: outboundDir)
            // The checkpoint covered the replaced journal: the next open folds the journals and writes a new one.
            let checkpoint = directory + "/" + TerminalCheckpoint.fileName
            if fileSystem.fileExists(checkpoint) { try fileSystem.removeFile(checkpoint) }
            try fileSystem.syncDirectory(directory)
        }
        if files.exists(salvagedDir) { try files.removeTree(salvagedDir) }
        // The evidence now stands at what the journal holds: acknowledgements above it named events lost for good.
        var notes: [[UInt8]] = [InboundRecord.recovered(through: report.lastSequence).encoded()]
        if centralHolds > 0 { notes.append(InboundRecord.acknowledged(sequence: min(centralHolds, report.lastSequence)).encoded()) }
        _ = try journal { () throws(JournalError) in try inbound.append(contentsOf: notes) }
        report.outboundRebuilt = true
        log.warning("terminal outbound journal rebuilt", metadata: [
            "recovery.first": "\(report.firstSequence)", "recovery.last": "\(report.lastSequence)",
            "recovery.lost": "\(report.lost.map { "\($0.lowerBound)...\($0.upperBound)" }.joined(separator: ","))",
        ])
        return report
    }

    /// The terminal's own accepted events `from`...`through` as central holds them.
    private static func fetchOwn(from: UInt64, through: UInt64, terminal: ReplicaId, key: JournalKey, context: RecordDecodeContext,
                                 transport: any SyncTransport) throws(SyncError) -> [UInt64: [UInt8]] {
        let decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: key)
        var out: [UInt64: [UInt8]] = [:]
        var cursor: UInt64 = 0
        var next = from
        while next <= through {
            guard case .fetched(let batch) = try expectReply(transport.exchange(.fetch(.init(terminal: terminal, from: next, cursor: cursor)))) else {
                throw SyncError(.malformed, "central answered fetch with something other than fetched")
            }
            for (i, frame) in batch.frames.enumerated() {
                let decoded = try journal { () throws(JournalError) in
                    try Frames.records(frame, dictionaryID: ledgerDictionary.id, keyID: key.id, decoder: decoder, file: "fetched frame \(i)")
                }
                for record in decoded.records {
                    let dot: Dot
                    do { dot = try RecordCodec.decode(record, context: context).dot } catch { throw SyncError(error, location: "fetched frame \(i)") }
                    guard dot.replica == terminal, dot.seq >= next else {
                        throw SyncError(.malformed, "central returned event \(dot) for a fetch of terminal \(terminal.rawValue) from seq \(next)")
                    }
                    out[dot.seq] = record
                    next = dot.seq + 1
                }
            }
            guard batch.more, batch.cursor > cursor else { break }
            cursor = batch.cursor
        }
        return out
    }

    private static func expectReply(_ reply: SyncMessage) throws(SyncError) -> SyncMessage {
        if case .refusal(let r) = reply { throw SyncError(.init(refusal: r.code), r.message, location: "central") }
        return reply
    }

    /// Moves a directory aside as `NAME.damaged` (or `.damaged-2`, ...), durably; returns the new path.
    private static func setAside(_ path: String, files: FileStore) throws(SyncError) -> String {
        var aside = path + ".damaged"
        var n = 1
        while files.exists(aside) { n += 1; aside = path + ".damaged-\(n)" }
        try journal { () throws(JournalError) in
            try files.fs.rename(path, to: aside)
            let parent = (path as NSString).deletingLastPathComponent
            try files.fs.syncDirectory(parent.isEmpty ? "." : parent)
        }
        return aside
    }
}
