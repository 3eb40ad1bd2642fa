import Foundation
import Logging
import PosCentral
import PosJournal
import PosLedger
import PosWire

/// What `FileCentralStore.recover` did.
public struct CentralRecoveryReport: Sendable, Equatable {
    /// The torn or damaged tail cut off the journal, if one was.
    public var journalCut: RecoveryReport.Truncation?
    /// The journal did not open (damage inside it): its intact frames were copied into a new journal.
    public var rebuilt = false
    /// Events the rebuilt journal holds, and intact events it could not keep (a terminal's events after a gap in its sequence).
    public var eventsKept: UInt64 = 0
    public var eventsDropped = 0
    /// Where the damaged journal was moved (rebuilt only).
    public var damagedJournal: String?
    /// Snapshot runs set aside because they cover positions the journal no longer holds (or renumbered).
    public var runsSetAside: [String] = []
    /// Loss records this recovery wrote.
    public var losses: [LossRecord] = []
    /// `sequence-reservation.json` did not read (set aside as `.damaged`): central's own numbers are reserved afresh through this.
    public var sequenceReservationRenewed: UInt64?

    public var nothingToDo: Bool { journalCut == nil && !rebuilt && runsSetAside.isEmpty && losses.isEmpty && sequenceReservationRenewed == nil }
}

extension FileCentralStore {
    /// The explicit path after an open refused: central's journal is cut where
    /// it is damaged at its tail, or rebuilt from its intact frames when damage
    /// lies inside it; snapshot runs that cover what is gone are set aside; and
    /// what the runs, the journal and the loss log prove central once held and
    /// no longer holds is recorded in `losses.jsonl` (terminals re-push what they
    /// still hold when they next sync). Central's own sequence numbers continue
    /// above any a lost event may have used. Safe to run again.
    public static func recover(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem(),
                               environment: CentralEnvironment = CentralEnvironment(),
                               snapshotEvents: Int = SyncLimits.centralSnapshotEventsDefault,
                               lockWaitMillis: Int64 = StoreLockLimits.waitMillisDefault,
                               logger: Logger? = nil) throws(SyncError) -> CentralRecoveryReport {
        let files = FileStore(fs: fileSystem)
        guard files.exists(directory + "/central.json") else {
            throw SyncError(.notFound, "no central store here (central.json missing)", location: directory)
        }
        let storeLock = try StoreDirectory.lock(directory, fileSystem: fileSystem, waitMillis: lockWaitMillis)
        let identity = try CentralIdentity.decode(files.read(directory + "/central.json"), path: directory + "/central.json")
        let log = logger ?? Logger(label: "possync.central", factory: { _ in SwiftLogNoOpLogHandler() })
        var report = CentralRecoveryReport()
        let stateDir = directory + "/state"
        let journalDir = directory + "/journal"
        let config = JournalConfiguration(durability: .perRecord, dictionary: ledgerDictionary,
                                          key: KeyDerivation.centralJournalKey(secret: identity.secret),
                                          compressionLevel: FileCentralStorage.journalCompressionLevel)

        // What the runs prove was durable, from every run whose footer authenticates.
        var evidence = HeldEvidence()
        for name in try files.list(stateDir) where CentralState.parseRunName(name) != nil {
            guard let meta = try? SnapshotFile.open(path: stateDir + "/" + name, fileSystem: fileSystem, central: identity.central,
                                                    key: KeyDerivation.centralSnapshotKey(secret: identity.secret), verifyFrames: false) else { continue }
            evidence.note(meta.meta)
            meta.close()
        }

        var inspected: (segments: [SegmentInfo], report: RecoveryReport)?
        var damage: JournalError?
        if files.exists(journalDir) {
            do { inspected = try Journal.inspect(directory: journalDir, configuration: config, fileSystem: fileSystem) } catch {
                if error.code == .io { storeLock.release(); throw SyncError(error) }
                damage = error
            }
        }
        // A loss log with damaged lines keeps what still reads (the file is kept as .damaged); what the
        // lost lines held (a floor, a skipped range, a history change) is made up for below.
        let damagedLossLines: [Int]
        let losses: LossLog
        do {
            damagedLossLines = try LossLog.salvage(directory: directory, files: files)
            losses = try LossLog(directory: directory, files: files)
        } catch { storeLock.release(); throw error }
        var reserved: UInt64 = 0
        var reservationDamaged = false
        do { reserved = try SequenceReservation.read(directory: directory, files: files) } catch where error.code == .malformed {
            // Set aside and renewed once the store is open, above every own number it shows in use.
            reservationDamaged = true
            do {
                try journal { () throws(JournalError) in
                    try fileSystem.rename(directory + "/" + SequenceReservation.fileName, to: directory + "/" + SequenceReservation.fileName + ".damaged")
                    try fileSystem.syncDirectory(directory)
                }
            } catch { storeLock.release(); throw error }
        } catch { storeLock.release(); throw error }
        let now = environment.wallMillis()

        if let damage {
            // Damage inside the journal: rebuild it from its intact frames.
            do {
                try rebuildJournal(directory: directory, config: config, files: files, damage: damage, losses: losses, evidence: &evidence, report: &report)
                for name in try files.list(stateDir) where CentralState.parseRunName(name) != nil {
                    try journal { () throws(JournalError) in try fileSystem.rename(stateDir + "/" + name, to: stateDir + "/" + name + ".superseded") }
                    report.runsSetAside.append(name)
                }
                try journal { () throws(JournalError) in try fileSystem.syncDirectory(stateDir) }
                report.losses.append(try losses.append(LossRecord(
                    kind: .recovered, recordedMillis: now, positionsFrom: 1, file: journalDir,
                    centralSequenceFloor: max(reserved, evidence.centralSequence),
                    note: "journal rebuilt from its intact frames (\(damage.code) at \(damage.file ?? journalDir) offset \(damage.offset ?? 0)): \(report.eventsKept) events kept, \(report.eventsDropped) dropped; positions renumbered; the damaged journal is \(report.damagedJournal ?? "?")")))
            } catch {
                storeLock.release()
                throw error
            }
        } else if let inspected {
            let last = inspected.segments.last?.lastSequence ?? 0
            report.journalCut = inspected.report.truncation
            if evidence.position > last {
                // Runs cover positions the journal no longer holds: they are set aside by the open below.
                for name in try files.list(stateDir) where CentralState.parseRunName(name) != nil {
                    if let f = try? SnapshotFile.open(path: stateDir + "/" + name, fileSystem: fileSystem, central: identity.central,
                                                      key: KeyDerivation.centralSnapshotKey(secret: identity.secret), verifyFrames: false) {
                        if f.meta.position > last { report.runsSetAside.append(name) }
                        f.close()
                    }
                }
                do {
                    report.losses.append(try losses.append(LossRecord(
                        kind: .recovered, recordedMillis: now, positionsFrom: last + 1, file: journalDir,
                        centralSequenceFloor: max(reserved, evidence.centralSequence),
                        note: "journal ends at position \(last) but snapshot runs covered positions through \(evidence.position): positions from \(last + 1) are gone; the runs covering them are set aside")))
                } catch {
                    storeLock.release()
                    throw error
                }
            }
        }

        // Open as usual (a tail cut is recorded by the open itself), without the runs' evidence: the loss is accepted now.
        let before = losses.records.count
        let central = try open(directory: directory, identity: identity, files: files, storeLock: storeLock, environment: environment,
                               snapshotEvents: snapshotEvents, recovering: true, logger: log)
        do {
            try central.withStorage { (storage) throws(SyncError) in
                if !damagedLossLines.isEmpty {
                    // The lost lines may have held a history change or a floor: start a new epoch from position 1
                    // (every pull cursor starts again) and put central's own numbers above anything they may have named.
                    let floor = max(storage.centralSequence, evidence.centralSequence, storage.losses.centralSequenceFloor, storage.reservedThrough)
                        + SyncLimits.centralSequenceReservation
                    try storage.appendLoss(LossRecord(kind: .recovered, recordedMillis: now, positionsFrom: 1, file: LossLog.fileName,
                                                      centralSequenceFloor: floor,
                                                      note: "\(LossLog.fileName) had damaged lines \(damagedLossLines.map(String.init).joined(separator: ", ")) (kept as \(LossLog.fileName).damaged): what they recorded is lost; every pull cursor starts again and central's own numbers go on above \(floor)"))
                }
                try recordHeldEvidence(evidence, in: storage, now: now)
                if reservationDamaged {
                    // Above every own number the store shows in use (its journal, its runs, the loss log) by a whole
                    // reservation, which covers whatever the damaged file reserved beyond the last number used.
                    let next = max(storage.centralSequence, evidence.centralSequence, storage.losses.centralSequenceFloor, storage.reservedThrough)
                        + SyncLimits.centralSequenceReservation
                    try storage.reserve(through: next)
                    report.sequenceReservationRenewed = next
                }
                report.losses = Array(storage.losses[(before - report.losses.count)...])
            }
        } catch {
            try? central.close()
            throw error
        }
        try central.close()
        return report
    }

    /// Per terminal, central's sequence, and journal positions: the most that evidence shows central once held.
    struct HeldEvidence {
        var acknowledged: [ReplicaId: UInt64] = [:]
        var centralSequence: UInt64 = 0
        var position: UInt64 = 0

        mutating func note(_ meta: SnapshotMeta) {
            for (t, a) in meta.acknowledged { acknowledged[t] = max(acknowledged[t] ?? 0, a) }
            centralSequence = max(centralSequence, meta.centralSequence)
            position = max(position, meta.position)
        }

        mutating func note(_ dot: Dot) {
            if dot.replica.isCentral { centralSequence = max(centralSequence, dot.seq) } else { acknowledged[dot.replica] = max(acknowledged[dot.replica] ?? 0, dot.seq) }
        }
    }

    /// After recovery: a terminal whose events central once held beyond what it holds now is behind (awaiting re-push).
    private static func recordHeldEvidence(_ evidence: HeldEvidence, in storage: any CentralStorage, now: Int64) throws(SyncError) {
        for (terminal, held) in evidence.acknowledged.sorted(by: { $0.key < $1.key }) {
            let holds = storage.mark(of: terminal)
            guard held > holds, !storage.losses.unresolved(terminal).contains(where: { ($0.through ?? 0) >= held }) else { continue }
            try storage.appendLoss(LossRecord(kind: .terminalBehind, recordedMillis: now, terminal: terminal.rawValue, from: holds + 1, through: held,
                                              note: "central held terminal \(terminal.rawValue)'s events through seq \(held) before recovery and holds them through \(holds) now: awaiting re-push"))
        }
    }

    /// Copies every intact record of the damaged journal, in order, into a new
    /// journal that keeps each terminal's sequence contiguous from its first
    /// event, except across a range the loss log records as lost for good
    /// (a terminal's events after another gap are dropped: it re-pushes them),
    /// and central's own numbers increasing; then swaps the directories.
    private static func rebuildJournal(directory: String, config: JournalConfiguration, files: FileStore, damage: JournalError,
                                       losses: LossLog, evidence: inout HeldEvidence, report: inout CentralRecoveryReport) throws(SyncError) {
        let fs = files.fs
        let journalDir = directory + "/journal"
        let salvaged = directory + "/journal.salvaged"
        let rebuilt = directory + "/journal.rebuilt"
        for leftover in [salvaged, rebuilt] where fs.fileExists(leftover) { try files.removeTree(leftover) }
        let salvage = try journal { () throws(JournalError) in try JournalSalvage.salvage(from: journalDir, to: salvaged, fileSystem: fs) }
        let out = try journal { () throws(JournalError) in try Journal.open(directory: rebuilt, configuration: config, fileSystem: fs) }
        // The records are checked as central reads them: a version-2 capture derives its key with its writer's merchant key.
        let merchantKeys = MerchantKeyBook(source: { FileCentralStorage.enrollmentPath(directory: directory, $0) })
        for e in try FileCentralStorage.readEnrollments(directory: directory, files: files) { merchantKeys.note(e) }
        let context = merchantKeys.context
        var hwm: [ReplicaId: UInt64] = [:]
        var own: UInt64 = 0
        var batch: [[UInt8]] = []
        func flush() throws(SyncError) {
            guard !batch.isEmpty else { return }
            _ = try journal { () throws(JournalError) in try out.append(contentsOf: batch) }
            report.eventsKept += UInt64(batch.count)
            batch.removeAll(keepingCapacity: true)
        }
        for range in salvage.recovered {
            let reader = try journal { () throws(JournalError) in
                try JournalReader(directory: salvaged, fileSystem: fs, dictionaries: [ledgerDictionary], key: config.key,
                                  from: range.lowerBound, through: range.upperBound)
            }
            defer { reader.close() }
            while let (_, record) = try journal({ () throws(JournalError) in try reader.next() }) {
                let event: Event
                do throws(LedgerError) { event = try RecordCodec.decode(record, context: context) } catch {
                    if error.code == .merchantKeyMissing {
                        // A missing key is not damage: dropping the record would drop every later event of its terminal too.
                        let writer = (try? RecordCodec.header(record))?.dot
                        let path = writer.map { FileCentralStorage.enrollmentPath(directory: directory, $0.replica) } ?? directory + "/terminals"
                        try? out.close()
                        try? files.removeTree(rebuilt)
                        try? files.removeTree(salvaged)
                        throw SyncError(.notFound, "enrollment file \(path) is missing or unreadable: event \(writer.map { "\($0)" } ?? "?") is an intact version-2 capture whose duplicate key derives from the merchant key it holds; restore it (the terminal's enrollment.json is a copy) and run central recover again. Nothing was changed in the journal.",
                                    location: path)
                    }
                    report.eventsDropped += 1
                    continue
                }
                evidence.note(event.dot)
                let keep: Bool
                if event.dot.replica.isCentral {
                    keep = event.dot.seq > own
                    if keep { own = event.dot.seq }
                } else {
                    let next = (hwm[event.dot.replica] ?? 0) + 1
                    // A recorded unrecoverable range is skipped as the open's replay skips it.
                    keep = event.dot.seq == next
                        || (event.dot.seq > next && losses.records.skipped(event.dot.replica).contains(next...(event.dot.seq - 1)))
                    if keep { hwm[event.dot.replica] = event.dot.seq }
                }
                if keep { batch.append(record) } else { report.eventsDropped += 1 }
                if batch.count >= CentralState.bulkBatchEvents { try flush() }
            }
        }
        try flush()
        try journal { () throws(JournalError) in try out.close() }
        var aside = directory + "/journal.damaged"
        var n = 1
        while fs.fileExists(aside) { n += 1; aside = directory + "/journal.damaged-\(n)" }
        try journal { () throws(JournalError) in
            try fs.rename(journalDir, to: aside)
            try fs.rename(rebuilt, to: journalDir)
            try fs.syncDirectory(directory)
        }
        try files.removeTree(salvaged)
        report.rebuilt = true
        report.damagedJournal = aside
    }
}
