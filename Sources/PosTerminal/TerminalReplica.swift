import Foundation
import Logging
import PosJournal
import PosLedger
import PosWire

/// How a terminal store is run.
public struct TerminalOptions: Sendable {
    /// Outbound and inbound journal segments roll at this size, in bytes.
    public var segmentBytesMax: Int
    /// A terminal's segments are small: a focused open walks each journal's last segment frame by
    /// frame and only the headers of the sealed ones (`JournalOpenCheck.lastSegment`), so this bounds
    /// what a scan checks at open (about 2,000 one-event frames), whatever the terminal holds.
    public static let segmentBytesDefault = 262_144
    /// Acknowledged events are kept at least this long, in milliseconds, before their segment may be retired.
    public var retentionMillis: Int64
    public static let retentionMillisDefault: Int64 = 90 * Millis.perDay
    /// Deliberate breakage for proving the simulator's checks can fail: when true the
    /// outbound journal does not fsync before an event is acknowledged. Never set outside
    /// tests: only `@_spi(Testing) import PosTerminal` sees it.
    @_spi(Testing) public var testOnlyUnsyncedOutbound = false
    /// With `testOnlyUnsyncedOutbound`, outbound records are buffered up to this many bytes before they are written.
    static let testOnlyUnsyncedBufferBytes = 1 << 20
    /// How long opening waits for another process's lock on the store directory, in milliseconds.
    public var lockWaitMillis: Int64
    /// The relay scope this terminal holds (its policy's return window, sync-protocol.md "Relay
    /// scope"); nil holds every sale and never compacts.
    public var scope: RelayScope?
    /// Open writes a new checkpoint when it read more than this many journal records after the
    /// checkpoint (records of both journals): the next open reads at most about this many again.
    public var checkpointTailRecordsMax: Int
    public static let checkpointTailRecordsMaxDefault = 4_096
    /// Open compacts when the scope floor would move at least this far, in milliseconds (syncs that pull compact every time).
    public var compactionFloorStepMillis: Int64
    public static let compactionFloorStepMillisDefault: Int64 = Millis.perDay
    /// A compaction retires at most this many inbound segments (the next one goes on).
    public var compactionSegmentsPerRunMax: Int
    public static let compactionSegmentsPerRunMaxDefault = 64
    /// An inbound segment still holding kept pulled events is retired only when they are at most this
    /// percentage of its records: they are appended again first (carried forward), so a segment of
    /// in-scope sales stays and one that holds only a few long-kept events (the outcomes of the
    /// terminal's own retained sales, key-group partners) goes.
    public static let inboundCarryPercentMax = 12

    public init(segmentBytesMax: Int = TerminalOptions.segmentBytesDefault, retentionMillis: Int64 = TerminalOptions.retentionMillisDefault,
                lockWaitMillis: Int64 = StoreLockLimits.waitMillisDefault, scope: RelayScope? = nil,
                checkpointTailRecordsMax: Int = TerminalOptions.checkpointTailRecordsMaxDefault,
                compactionFloorStepMillis: Int64 = TerminalOptions.compactionFloorStepMillisDefault,
                compactionSegmentsPerRunMax: Int = TerminalOptions.compactionSegmentsPerRunMaxDefault) {
        precondition(checkpointTailRecordsMax >= 0 && compactionFloorStepMillis >= 0 && compactionSegmentsPerRunMax >= 1)
        self.segmentBytesMax = segmentBytesMax
        self.retentionMillis = retentionMillis
        self.lockWaitMillis = lockWaitMillis
        self.scope = scope
        self.checkpointTailRecordsMax = checkpointTailRecordsMax
        self.compactionFloorStepMillis = compactionFloorStepMillis
        self.compactionSegmentsPerRunMax = compactionSegmentsPerRunMax
    }
}

/// What a focused open loads of a terminal's checkpoint (sync-protocol.md "Terminal checkpoint and
/// compaction", Focused open): the sales of these tickets, these sales, and every held capture of these
/// duplicate keys and of the focused sales' keys, each with its whole group; then the journal tail.
/// Every sale it loads is decided exactly as a full open decides it; nothing else is complete.
public struct OpenFocus: Sendable, Equatable {
    public var keys: Set<DuplicateKey>
    public var sales: Set<SaleId>
    public var tickets: Set<TicketId>
    /// `terminal status`'s open: besides the above, every sale the journal tail touches, and the status
    /// counts (`TerminalReplica.statusCounts`) from the checkpoint's meta record, less the loaded groups'
    /// counts as the checkpoint holds them, plus theirs after the tail.
    public var statusCounts: Bool

    public init(keys: Set<DuplicateKey> = [], sales: Set<SaleId> = [], tickets: Set<TicketId> = [], statusCounts: Bool = false) {
        self.keys = keys
        self.sales = sales
        self.tickets = tickets
        self.statusCounts = statusCounts
    }

    /// The status open: the tail's sales, and the counts.
    public static let status = OpenFocus(statusCounts: true)
}

/// A terminal's store: its own events (outbound journal), what it pulled from
/// central (inbound journal), the folded state of both, and its sync cursors.
/// Everything is restored from the two journals when it is reopened.
///
///     enrollment.json   the terminal's identity and secret (mode 0600)
///     outbound/         journal of the terminal's own events; record n is the event with dot (terminal, n)
///     inbound/          journal of inbound records (pulled events, acknowledgements, sync marks)
///     checkpoint.psc    the events the state is folded from, as of a journal position (derived; see TerminalCheckpoint)
public final class TerminalReplica: @unchecked Sendable {
    public let directory: String
    public let enrollment: Enrollment
    private let outbound: Journal
    private let inbound: Journal
    private let lock = NSLock()
    private let logger: Logger
    private var stateValue = LedgerState()
    /// The events the state is folded from, by dot, each with the inbound sequence
    /// number of the record that brought it (0 for own events).
    private var held: [Dot: (event: Event, inboundSeq: UInt64)] = [:]
    /// True when the state folded an event `held` does not hold: another event under a held event's dot
    /// (a dot reuse; `held` keeps one event per dot), told apart as the fold does (`sameEvent`: by their
    /// bytes, so a text canonically equal but written with other Unicode scalars is another event). A checkpoint written then does not fold to the
    /// state, so its status counts are those of the fold of its entries (`currentCheckpoint`).
    private var stateFoldsUnheld = false
    /// What the inbound journal says so far (its `events` unused): kept in step with every append.
    private var journalSummary = InboundSummary()
    /// How the last open went: read a checkpoint and the tails after it, or folded
    /// the journals (and why). For `status` and logs.
    public private(set) var openReport = OpenReport()
    /// Own and pulled events folded since the last checkpoint written or read (the next open's tail, roughly).
    private var recordsSinceCheckpoint = 0
    /// The checkpoint file open found was not usable, and none was written since.
    private var checkpointStale = false
    /// Set by a focused open that read the checkpoint: the sales it loaded whole (each with its component
    /// and key group) and their duplicate keys. The state holds nothing else complete, so such a replica
    /// never writes a checkpoint or compacts, refuses what needs the whole state, and records only events
    /// of these sales (or a capture of these keys). nil: a full open.
    public private(set) var focusLoaded: (sales: Set<SaleId>, keys: Set<DuplicateKey>)?
    /// Set by a status open (`OpenFocus.status`) that read the checkpoint: tickets by status and conflicts
    /// by kind over the whole state, as a full open's fold gives them. nil otherwise (count the state).
    public private(set) var statusCounts: LedgerCounts?
    private var hlc = HybridLogicalClock()
    /// Highest sequence number held per replica (own and pulled).
    private var knowledgeValue = VersionVector()
    /// The highest acknowledgement central ever gave (kind-2 records): the outbound journal must reach it.
    public private(set) var acknowledged: UInt64 = 0
    /// What central holds of this terminal's events as last heard (below `acknowledged` after central
    /// lost some); segments are retired only through it.
    public private(set) var centralHolds: UInt64 = 0
    /// Central's history epoch the pull cursor belongs to.
    public private(set) var centralEpoch: UInt64 = 0
    /// Central's wall clock at the last sync (the clock guard's reference).
    public private(set) var lastCentralWallMillis: Int64? = nil
    /// Own sequence numbers through this may be in use (inbound kind 8).
    private var reservedThrough: UInt64 = 0
    /// Central journal position pulled through.
    public private(set) var pullCursor: UInt64 = 0
    /// The digest of central's record at `pullCursor` (nil: not known), sent at hello so central can
    /// tell whether that position still holds what this terminal pulled there.
    private var pullCursorDigest: UInt64?
    public private(set) var lastSyncMillis: Int64? = nil

    public var terminal: ReplicaId { enrollment.terminal }

    /// Creates the store of a newly enrolled terminal.
    public static func initialize(directory: String, enrollment: Enrollment, fileSystem: any JournalFileSystem = PosixFileSystem(),
                                  options: TerminalOptions = TerminalOptions(), logger: Logger? = nil) throws(SyncError) -> TerminalReplica {
        let files = FileStore(fs: fileSystem)
        try files.makeDirectories(directory)
        let storeLock = try StoreDirectory.lock(directory, fileSystem: fileSystem, waitMillis: options.lockWaitMillis)
        if files.exists(directory + "/enrollment.json") {
            throw SyncError(.invalidArgument, "a terminal store already exists here", location: directory)
        }
        if files.exists(directory + "/central.json") {
            throw SyncError(.invalidArgument, "a central store is here (central.json): a terminal store needs its own directory", location: directory)
        }
        try enrollment.write(to: directory + "/enrollment.json", fileSystem: fileSystem)
        return try open(directory: directory, enrollment: enrollment, fileSystem: fileSystem, storeLock: storeLock, options: options, logger: logger)
    }

    /// Opens a terminal's store, holding its directory lock (`LOCK`) until
    /// `close()`: a second process waits up to `options.lockWaitMillis`, then
    /// fails with `locked`.
    /// With `focus`, a focused open: reads only what the checkpoint's index names for the focus and the
    /// journal tail (sync-protocol.md "Terminal checkpoint and compaction"); without a usable checkpoint
    /// it folds the journals as a full open does (`openReport` says which).
    public static func open(directory: String, fileSystem: any JournalFileSystem = PosixFileSystem(),
                            options: TerminalOptions = TerminalOptions(), logger: Logger? = nil,
                            focus: OpenFocus? = nil) throws(SyncError) -> TerminalReplica {
        let path = directory + "/enrollment.json"
        guard fileSystem.fileExists(path) else {
            throw SyncError(.notFound, "no terminal store here (enrollment.json missing)", location: directory)
        }
        let storeLock = try StoreDirectory.lock(directory, fileSystem: fileSystem, waitMillis: options.lockWaitMillis)
        return try open(directory: directory, enrollment: Enrollment.read(from: path, fileSystem: fileSystem), fileSystem: fileSystem,
                        storeLock: storeLock, options: options, logger: logger, focus: focus)
    }

    private static func open(directory: String, enrollment: Enrollment, fileSystem: any JournalFileSystem, storeLock: any StoreLockHandle,
                             options: TerminalOptions, logger: Logger?, focus: OpenFocus? = nil) throws(SyncError) -> TerminalReplica {
        do {
            return try TerminalReplica(directory: directory, enrollment: enrollment, fileSystem: fileSystem, storeLock: storeLock, options: options,
                                       logger: logger ?? Logger(label: "possync.terminal", factory: { _ in SwiftLogNoOpLogHandler() }), focus: focus)
        } catch {
            storeLock.release()
            throw error
        }
    }

    /// The file system the stores live on (the real one, or a simulated disk).
    public let fileSystem: any JournalFileSystem

    public let options: TerminalOptions
    /// The directory's lock, held from open to close.
    private let storeLock: any StoreLockHandle

    private init(directory: String, enrollment: Enrollment, fileSystem: any JournalFileSystem, storeLock: any StoreLockHandle,
                 options: TerminalOptions, logger: Logger, focus: OpenFocus?) throws(SyncError) {
        self.directory = directory
        self.storeLock = storeLock
        self.enrollment = enrollment
        self.fileSystem = fileSystem
        self.options = options
        self.logger = logger
        let config = Self.journalConfiguration(enrollment: enrollment, options: options)
        // A focused open checks the sealed journal segments it reads as it reads them, a full one all at open
        // (sync-protocol.md "Terminal checkpoint and compaction", Focused open).
        let check: JournalOpenCheck = focus == nil ? .full : .lastSegment
        // Inbound first: what central acknowledged and echoed back is the evidence the outbound journal is checked against.
        let inbound = try journal { () throws(JournalError) in
            try Journal.open(directory: directory + "/inbound", configuration: config, fileSystem: fileSystem, check: check, logger: logger)
        }
        self.inbound = inbound
        // A focused open reads the checkpoint's header, root and meta frame only (its index); a full open reads it whole.
        var index = focus == nil ? nil : Self.readCheckpointIndex(directory: directory, enrollment: enrollment, inbound: inbound,
                                                                  fileSystem: fileSystem, logger: logger, report: &openReport)
        defer { index?.close() }
        var whole = focus == nil
        if focus?.statusCounts == true, let i = index, i.meta.status == nil {
            // A version-2 checkpoint holds no status counts: status reads it whole (the next checkpoint written has them).
            i.close()
            index = nil
            whole = true
            openReport = OpenReport()
            openReport.statusNote = "checkpoint version \(i.header.version) holds no status counts: read whole"
        }
        var checkpoint = whole ? Self.readCheckpoint(directory: directory, enrollment: enrollment, inbound: inbound, fileSystem: fileSystem,
                                                            logger: logger, report: &openReport) : index?.meta
        var summary: InboundSummary
        do {
            if let c = checkpoint {
                summary = try InboundSummary.read(inbound, terminal: enrollment.terminal, context: enrollment.recordContext, location: directory + "/inbound",
                                                  from: c.inboundThrough + 1, continuing: c.summary)
            } else {
                summary = try InboundSummary.read(inbound, terminal: enrollment.terminal, context: enrollment.recordContext, location: directory + "/inbound")
            }
        } catch {
            try? inbound.close()
            throw error
        }
        do {
            outbound = try Self.openOutbound(directory: directory, configuration: config, fileSystem: fileSystem, check: check,
                                             evidence: summary.evidence, logger: logger)
        } catch {
            try? inbound.close()
            throw error
        }
        do {
            if let c = checkpoint, c.outboundJournal != outbound.journalID || c.outboundThrough > outbound.lastSequence {
                // The outbound journal is not the one the checkpoint covered (rebuilt by recover, or shorter): fold the journals.
                Self.refuseCheckpoint("it covers outbound seq \(c.outboundThrough) of journal \(c.outboundJournal), the outbound journal is \(outbound.journalID) through seq \(outbound.lastSequence)",
                                      directory: directory, logger: logger, report: &openReport)
                checkpoint = nil
                index?.close()
                index = nil
                summary = try InboundSummary.read(inbound, terminal: enrollment.terminal, context: enrollment.recordContext, location: directory + "/inbound")
            }
            acknowledged = summary.acknowledged
            centralHolds = summary.centralHolds
            pullCursor = summary.pullCursor
            pullCursorDigest = summary.pullCursorDigest
            lastSyncMillis = summary.lastSync?.wallMillis
            lastCentralWallMillis = summary.lastSync?.centralWallMillis
            centralEpoch = summary.epoch
            reservedThrough = summary.reserved
            journalSummary = summary
            journalSummary.events = []
            journalSummary.counted = []
            do {
                // A status open whose checkpoint counts do not hold for the journals now (a floor raised or own
                // segments retired since it was written, or a count below zero) reads the checkpoint whole, as
                // the full open does: its output is then the full open's.
                var readWhole: String?
                if let index, let focus {
                    if focus.statusCounts, let stored = index.meta.status,
                       summary.scopeFloor != index.meta.summary.scopeFloor || outbound.firstSequence != stored.outboundFirst {
                        readWhole = "the checkpoint's status counts hold for floor \(index.meta.summary.scopeFloor) and outbound first seq \(stored.outboundFirst); the journals now say floor \(summary.scopeFloor), first seq \(outbound.firstSequence): read whole"
                    } else {
                        try restore(index: index, focus: focus, pulled: summary.events, counted: summary.counted)
                        if focus.statusCounts && statusCounts == nil {
                            readWhole = "the checkpoint's status counts do not line up with the loaded groups (a count below zero): read whole"
                        }
                    }
                } else {
                    try restore(checkpoint: checkpoint, pulled: summary.events, counted: summary.counted)
                }
                if let why = readWhole {
                    index?.close()
                    index = nil
                    statusCounts = nil
                    focusLoaded = nil
                    knowledgeValue = VersionVector()
                    openReport = OpenReport()
                    openReport.statusNote = why
                    checkpoint = Self.readCheckpoint(directory: directory, enrollment: enrollment, inbound: inbound, fileSystem: fileSystem,
                                                     logger: logger, report: &openReport)
                    if checkpoint == nil {
                        // Refused when read whole (a table frame the index read did not reach): fold the journals, as the full open does.
                        summary = try InboundSummary.read(inbound, terminal: enrollment.terminal, context: enrollment.recordContext, location: directory + "/inbound")
                        journalSummary = summary
                        journalSummary.events = []
                        journalSummary.counted = []
                    }
                    try restore(checkpoint: checkpoint, pulled: summary.events, counted: summary.counted)
                }
            } catch where checkpoint != nil {
                // An entry that authenticates but does not decode (a record of a newer build): fold the journals.
                openReport = OpenReport()
                statusCounts = nil
                Self.refuseCheckpoint("\(error)", directory: directory, logger: logger, report: &openReport)
                summary = try InboundSummary.read(inbound, terminal: enrollment.terminal, context: enrollment.recordContext, location: directory + "/inbound")
                journalSummary = summary
                journalSummary.events = []
                journalSummary.counted = []
                knowledgeValue = VersionVector()
                focusLoaded = nil
                try restore(checkpoint: nil, pulled: summary.events, counted: summary.counted)
            }
            recordsSinceCheckpoint = openReport.tailRecords
            checkpointStale = openReport.checkpointRefused
        } catch {
            try? inbound.close()
            try? outbound.close()
            throw error
        }
    }

    static func journalConfiguration(enrollment: Enrollment, options: TerminalOptions) -> JournalConfiguration {
        JournalConfiguration(durability: options.testOnlyUnsyncedOutbound ? .none(bufferBytes: TerminalOptions.testOnlyUnsyncedBufferBytes) : .perRecord,
                             segmentBytesMax: options.segmentBytesMax, dictionary: ledgerDictionary, key: enrollment.journalKey)
    }

    /// Opens the outbound journal, refusing (and changing nothing) when it would
    /// end below what the inbound journal proves central had: a sequence number
    /// is never reused.
    static func openOutbound(directory: String, configuration: JournalConfiguration, fileSystem: any JournalFileSystem,
                             check: JournalOpenCheck = .full, evidence: DurableEvidence?, logger: Logger) throws(SyncError) -> Journal {
        do {
            return try Journal.open(directory: directory + "/outbound", configuration: configuration, fileSystem: fileSystem,
                                    check: check, evidence: evidence, logger: logger)
        } catch where error.code == .behindEvidence {
            throw SyncError(.journal, "\(error); the terminal refuses to write rather than reuse a sequence number: run `possync terminal recover --dir \(directory) --central DIR`")
        } catch {
            throw SyncError(error)
        }
    }

    /// Folds the checkpoint's events (own ones still in the outbound journal), the
    /// outbound tail after it and the pulled events read, keeping what the scope
    /// floor keeps (`RelayScope.kept`).
    private func restore(checkpoint: TerminalCheckpoint?, pulled: [(event: Event, inboundSeq: UInt64)], counted: Set<Dot>) throws(SyncError) {
        var events: [(event: Event, inboundSeq: UInt64)] = []
        var newestOwn = HLCTimestamp.zero
        if let c = checkpoint {
            events.reserveCapacity(c.entries.count + pulled.count)
            let decoded = try decodeEntries(c.entries)
            try Self.checkTables(c, decoded: decoded, path: "\(directory)/\(TerminalCheckpoint.fileName)")
            for (event, inboundSeq) in decoded {
                // An own event retired from the outbound journal since is no longer held (one central sent
                // back as a key-group partner, with an inbound sequence number, still is).
                if inboundSeq == 0 && event.dot.replica == terminal && event.dot.seq < outbound.firstSequence { continue }
                events.append((event, inboundSeq))
            }
            openReport.recordsRead += c.entries.count
            knowledgeValue = c.knowledge
            newestOwn = c.clock
        }
        let fromCheckpoint = events.count  // the events above come from the checkpoint
        let own = try readOwnTail(after: checkpoint?.outboundThrough ?? 0)
        events.append(contentsOf: own.events)
        events.append(contentsOf: pulled)
        try finishRestore(events, fromCheckpoint: fromCheckpoint, newestOwn: max(newestOwn, own.newest), tail: own.events.count + pulled.count,
                          counted: counted)
    }

    /// A focused open (sync-protocol.md "Terminal checkpoint and compaction", Focused open): from the
    /// checkpoint's index, the groups of the focused sales and of the sales of the focused tickets, then
    /// the groups of every held capture sharing a duplicate key with the focus (its keys and the focused
    /// sales' captures' keys), and the sentinel group; the journal tail as a full open reads it; then
    /// `kept` at the recorded floor and the fold, as a full open. Each loaded sale has its component and
    /// key group whole, so the fold decides it as a full open does.
    private func restore(index: TerminalCheckpoint.Index, focus: OpenFocus, pulled: [(event: Event, inboundSeq: UInt64)],
                         counted: Set<Dot>) throws(SyncError) {
        let c = index.meta
        let own = try readOwnTail(after: c.outboundThrough)
        let tail = own.events + pulled
        let tailGroups = SaleGroups(tail.lazy.map(\.event))
        // Tickets to sales: the ticket table, or a request in the tail.
        var sales = focus.sales
        var focusTickets = focus.tickets
        if focus.statusCounts {
            let touched = Self.touched(by: tail.lazy.map(\.event))
            sales.formUnion(touched.sales)
            focusTickets.formUnion(touched.tickets)
        }
        let ticketSales = try index.sales(ofTickets: focusTickets)
        for t in focusTickets {
            if let s = ticketSales[t] ?? tailGroups.requests[t] { sales.insert(s) }
        }
        var raw = try index.entries(ofGroups: Set(sales.map { Optional($0) }).union([nil]))
        var loaded = try decodeEntries(raw)
        // Their captures' keys, and every held capture of the focused keys: the key groups.
        var keys = focus.keys
        for (e, _) in loaded + tail {
            if case .saleCaptured(let capture) = e.body, sales.contains(SaleId(e.dot)) { keys.insert(capture.duplicateKey) }
        }
        var partnerSales = try index.sales(ofKeys: keys)
        for (id, key) in tailGroups.captures where keys.contains(key) { partnerSales.insert(id) }
        let more = partnerSales.subtracting(sales)
        if !more.isEmpty {
            let partnerEntries = try index.entries(ofGroups: Set(more.map { Optional($0) }))
            raw += partnerEntries
            loaded += try decodeEntries(partnerEntries)
        }
        sales.formUnion(partnerSales)
        try Self.checkLoaded(loaded, groups: raw.map(\.group), keys: keys, keySales: partnerSales, tickets: ticketSales, path: index.path)
        var events = loaded.filter { !($0.inboundSeq == 0 && $0.event.dot.replica == terminal && $0.event.dot.seq < outbound.firstSequence) }
        let fromCheckpoint = events.count
        events.append(contentsOf: tail)
        knowledgeValue = c.knowledge
        openReport.recordsRead += loaded.count
        openReport.focused = true
        openReport.checkpointFramesRead = index.framesRead
        openReport.checkpointEntriesRead = index.entriesRead
        try finishRestore(events, fromCheckpoint: fromCheckpoint, newestOwn: max(c.clock, own.newest), tail: tail.count, counted: counted)
        focusLoaded = (sales, keys)
        if focus.statusCounts { statusCounts = countStatus(meta: c, loaded: Array(events[..<fromCheckpoint])) }
    }

    /// A status open's counts (sync-protocol.md "Terminal checkpoint and compaction", Status open): the meta
    /// record's, less the counts of the fold of the loaded checkpoint entries (`kept` at the checkpoint's
    /// floor), plus the counts of the state now (those entries and the tail). The loaded groups are closed
    /// (every sale the tail touches, with its component and key group, and the sentinel group), so the
    /// groups not loaded count the same before and after. nil (the open then reads the checkpoint whole, as
    /// the full open does) when the floor or the outbound journal's first sequence moved since the
    /// checkpoint (the caller checks this before loading), or a count would go below zero.
    private func countStatus(meta c: TerminalCheckpoint, loaded: [(event: Event, inboundSeq: UInt64)]) -> LedgerCounts? {
        guard let stored = c.status, journalSummary.scopeFloor == c.summary.scopeFloor, outbound.firstSequence == stored.outboundFirst else { return nil }
        let before = RelayScope.kept(loaded.map(\.event), floorMillis: Int64(c.summary.scopeFloor), own: terminal, ownFrom: outbound.firstSequence)
        let counts = stored.counts - LedgerCounts(LedgerState.fold(before)) + LedgerCounts(stateValue)
        return counts.isValid ? counts : nil
    }

    /// The sales and tickets events name: a capture's own sale, an outcome's and a refund request's sale, a
    /// ticket event's or note's ticket (its sale is its request's: the ticket table, or a request in the tail).
    static func touched<S: Sequence>(by events: S) -> (sales: Set<SaleId>, tickets: Set<TicketId>) where S.Element == Event {
        var sales: Set<SaleId> = []
        var tickets: Set<TicketId> = []
        for e in events {
            switch e.body {
            case .saleCaptured: sales.insert(SaleId(e.dot))
            case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s): sales.insert(s)
            case .refundRequested(let r):
                // The request's sale, and its ticket: a request held under the same dot (a dot reuse) may name
                // another sale, whose group holds that ticket (the ticket table says which).
                sales.insert(r.sale)
                tickets.insert(TicketId(e.dot))
            case .noteAdded(let t, _), .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t), .refundCompleted(let t),
                 .refundEscalated(let t):
                tickets.insert(t)
            case .sequenceVoid, .unknown: break
            }
        }
        return (sales, tickets)
    }

    /// Decodes checkpoint entries (a record of a newer build that authenticates but does not decode is
    /// refused: the terminal then folds its journals).
    private func decodeEntries(_ entries: [TerminalCheckpoint.Entry]) throws(SyncError) -> [(event: Event, inboundSeq: UInt64)] {
        var out: [(event: Event, inboundSeq: UInt64)] = []
        out.reserveCapacity(entries.count)
        for (i, entry) in entries.enumerated() {
            do { out.append((try RecordCodec.decode(entry.record, context: enrollment.recordContext), entry.inboundSeq)) } catch {
                throw SyncError(error, location: "\(directory)/\(TerminalCheckpoint.fileName) entry \(i)")
            }
        }
        return out
    }

    /// A full read checks what the writer computed from the entries: each entry's group (`SaleGroups`
    /// over the entries), the key table (every capture's key and sale) and the ticket table (every
    /// request's ticket and sale), so a focused open finds exactly what a full open folds.
    static func checkTables(_ c: TerminalCheckpoint, decoded: [(event: Event, inboundSeq: UInt64)], path: String) throws(SyncError) {
        let groups = SaleGroups(decoded.lazy.map(\.event))
        for (i, (e, _)) in decoded.enumerated() where groups.group(of: e) != c.entries[i].group {
            throw SyncError(.malformed, "entry \(i): event \(e.dot) is filed under group \(c.entries[i].group.map { "\($0.dot)" } ?? "0:0"), it belongs to \(groups.group(of: e).map { "\($0.dot)" } ?? "0:0")",
                            location: "\(path) offset \(TerminalCheckpoint.headerBytes)")
        }
        guard c.keys.count == groups.captures.count, c.keys.allSatisfy({ groups.captures[$0.sale] == $0.key }),
              c.tickets.count == groups.requests.count, c.tickets.allSatisfy({ groups.requests[$0.ticket] == $0.sale }) else {
            throw SyncError(.malformed, "the key or ticket table is not the entries' captures and refund requests", location: "\(path) offset \(TerminalCheckpoint.headerBytes)")
        }
    }

    /// What a focused open can check of what it loaded: each loaded entry's group as `SaleGroups` over
    /// the loaded entries gives it (a whole group is loaded, its capture and requests with it; a sentinel
    /// entry's capture or request must not be among them), every loaded capture of a focused key in the
    /// key table, every loaded request of a focused ticket in the ticket table.
    static func checkLoaded(_ loaded: [(event: Event, inboundSeq: UInt64)], groups stated: [SaleId?], keys: Set<DuplicateKey>, keySales: Set<SaleId>,
                            tickets: [TicketId: SaleId], path: String) throws(SyncError) {
        let groups = SaleGroups(loaded.lazy.map(\.event))
        for (i, (e, _)) in loaded.enumerated() {
            guard groups.group(of: e) == stated[i] else {
                throw SyncError(.malformed, "event \(e.dot) is filed under group \(stated[i].map { "\($0.dot)" } ?? "0:0"), it belongs to \(groups.group(of: e).map { "\($0.dot)" } ?? "0:0")",
                                location: "\(path) offset \(TerminalCheckpoint.headerBytes)")
            }
            if case .saleCaptured(let capture) = e.body, keys.contains(capture.duplicateKey), !keySales.contains(SaleId(e.dot)) {
                throw SyncError(.malformed, "capture \(e.dot) is not in the key table", location: "\(path) offset \(TerminalCheckpoint.headerBytes)")
            }
            if case .refundRequested(let r) = e.body, let named = tickets[TicketId(e.dot)], named != r.sale {
                throw SyncError(.malformed, "the ticket table names sale \(named.dot) for ticket \(e.dot), its request names \(r.sale.dot)",
                                location: "\(path) offset \(TerminalCheckpoint.headerBytes)")
            }
        }
    }

    /// Own events after `outboundThrough` still in the outbound journal, and the newest one's HLC.
    private func readOwnTail(after outboundThrough: UInt64) throws(SyncError) -> (events: [(event: Event, inboundSeq: UInt64)], newest: HLCTimestamp) {
        var events: [(event: Event, inboundSeq: UInt64)] = []
        var newest = HLCTimestamp.zero
        let from = max(outbound.firstSequence, outboundThrough + 1)
        guard from <= outbound.lastSequence else { return ([], newest) }
        let own = try journal { () throws(JournalError) in try outbound.reader(from: from) }
        defer { own.close() }
        while let (seq, record) = try journal({ () throws(JournalError) in try own.next() }) {
            let event: Event
            do { event = try RecordCodec.decode(record, context: enrollment.recordContext) } catch { throw SyncError(error, location: "\(directory)/outbound seq \(seq)") }
            guard event.dot == (try? Dot(replica: terminal, seq: seq)) else {
                throw SyncError(.malformed, "outbound seq \(seq) holds event \(event.dot)", location: "\(directory)/outbound")
            }
            newest = max(newest, event.hlc)
            events.append((event, 0))
        }
        return (events, newest)
    }

    /// The end of both opens: the clock, the knowledge vector, `kept` at the recorded floor and the fold.
    /// `events[..<fromCheckpoint]` come from the checkpoint, the rest (`tail` records) from the journals.
    private func finishRestore(_ events: [(event: Event, inboundSeq: UInt64)], fromCheckpoint: Int, newestOwn: HLCTimestamp, tail: Int,
                               counted: Set<Dot>) throws(SyncError) {
        openReport.recordsRead += tail
        openReport.tailRecords += tail
        // The clock resumes after the newest own event (this clock made them) or the checkpoint's
        // clock; pulled events may only move it within the remote-ahead guard of the last sync's
        // reference time, so an absurd remote timestamp never drags it.
        hlc = HybridLogicalClock(last: newestOwn)
        let wall = clockReference(lastSyncMillis ?? Int64(newestOwn.millis))
        // Only events a record of a position above 0 brought (`counted`, read after the checkpoint) count in
        // the knowledge vector: a key-group partner comes out of journal order, and the vector tells central
        // how far the scan delivered; an event carried forward was counted when first pulled (in the
        // checkpoint's vector, or by its first record when that is still read). Checkpoint entries are not
        // counted again: the checkpoint's vector already holds what counts of them.
        for (i, (e, _)) in events.enumerated() {
            if i >= fromCheckpoint, e.dot.replica == terminal || counted.contains(e.dot) { knowledgeValue.add(e.dot) }
            if e.dot.replica != terminal { _ = try? hlc.receive(e.hlc, wallMillis: wall) }
        }
        keep(events, floorMillis: Int64(journalSummary.scopeFloor))
    }

    /// Replaces the held events and the state with what `floorMillis` keeps of `events`.
    private func keep(_ events: [(event: Event, inboundSeq: UInt64)], floorMillis: Int64) {
        // An event held twice (a checkpoint entry and its carried-forward record) counts at its later record.
        let origin = Dictionary(events.map { ($0.event.dot, $0.inboundSeq) }, uniquingKeysWith: { a, b in max(a, b) })
        let kept = RelayScope.kept(events.map(\.event), floorMillis: floorMillis, own: terminal, ownFrom: outbound.firstSequence)
        var reused = false
        held = Dictionary(kept.map { ($0.dot, ($0, origin[$0.dot] ?? 0)) }, uniquingKeysWith: { a, b in
            if !sameEvent(a.0, b.0) { reused = true }  // as the fold tells them apart: by their bytes
            return a
        })
        stateFoldsUnheld = reused
        stateValue = LedgerState.fold(kept)
    }

    /// The time a remote timestamp is judged against: the later of this
    /// terminal's wall clock and central's as the last welcome gave it, so a
    /// terminal whose own clock is days behind still moves past what it pulls.
    private func clockReference(_ wallMillis: Int64) -> Int64 {
        max(wallMillis, lastCentralWallMillis ?? wallMillis)
    }

    /// Folds events in; each moves the clock no further than the guard allows at `wallMillis`.
    /// Key-group partners (`partners`) are not counted in the knowledge vector: central sends
    /// them out of journal order, and the vector tells central how far the scan delivered.
    private func absorb(_ events: [Event], inboundSeqs: [UInt64]? = nil, partners: Set<Dot> = [], wallMillis: Int64) {
        for (i, e) in events.enumerated() {
            if let h = held[e.dot] {
                if !sameEvent(h.event, e) { stateFoldsUnheld = true }  // as the fold tells them apart: by their bytes
            } else {
                held[e.dot] = (e, inboundSeqs?[i] ?? 0)
            }
            if !partners.contains(e.dot) { knowledgeValue.add(e.dot) }
            if e.dot.replica != terminal { _ = try? hlc.receive(e.hlc, wallMillis: wallMillis) }
        }
        stateValue.apply(events)
    }

    // MARK: - Focus

    /// Refuses what needs the whole state on a focused replica: a programming error of the caller
    /// (the CLI opens focused only for a scan, a return and a ticket decision or note).
    private func requireWhole(_ what: String) throws(SyncError) {
        guard let loaded = lock.withLock({ focusLoaded }) else { return }
        throw SyncError(.invalidArgument, "\(what) needs the whole state; this terminal store was opened focused on \(loaded.sales.count) sales: open it without a focus",
                        location: directory)
    }

    /// On a focused replica, only an event of a loaded sale (or ticket of one), or a capture of a loaded
    /// duplicate key, may be written: its checks and context read that sale's component and key group.
    /// Called under the lock.
    private func requireFocus(_ body: EventBody) throws(SyncError) {
        guard let loaded = focusLoaded else { return }
        let sale: SaleId?
        switch body {
        case .saleCaptured(let c):
            guard loaded.keys.contains(c.duplicateKey) else {
                throw SyncError(.invalidArgument, "a capture of a duplicate key outside this focused open's focus", location: directory)
            }
            return
        case .refundRequested(let r): sale = r.sale
        case .noteAdded(let t, _), .refundApproved(let t, _), .refundRejected(let t), .refundCancelled(let t), .refundCompleted(let t), .refundEscalated(let t):
            sale = stateValue.tickets[t]?.sale
        case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s): sale = s
        case .sequenceVoid, .unknown: sale = nil
        }
        guard let sale, loaded.sales.contains(sale) else {
            throw SyncError(.invalidArgument, "an event outside this focused open's focus (\(sale.map { "sale \($0.dot)" } ?? "no sale loaded"))", location: directory)
        }
    }

    // MARK: - Reading

    public var state: LedgerState { lock.withLock { stateValue } }
    public var knowledge: VersionVector { lock.withLock { knowledgeValue } }
    public var lastSequence: UInt64 { outbound.lastSequence }
    /// The relay scope floor the journals record (HLC ms; 0 holds every sale).
    public var scopeFloorMillis: UInt64 { lock.withLock { journalSummary.scopeFloor } }
    public func context(of key: EntityKey) -> VersionVector { lock.withLock { stateValue.context(of: key) } }

    /// The terminal's own events central has not acknowledged yet.
    public func unacknowledgedEvents() throws(SyncError) -> [Event] {
        let from = lock.withLock { centralHolds } + 1
        guard from <= outbound.lastSequence else { return [] }
        let reader = try journal { () throws(JournalError) in try outbound.reader(from: from) }
        var out: [Event] = []
        while let (seq, record) = try journal({ () throws(JournalError) in try reader.next() }) {
            do { out.append(try RecordCodec.decode(record, context: enrollment.recordContext)) } catch { throw SyncError(error, location: "\(directory)/outbound seq \(seq)") }
        }
        return out
    }

    /// The terminal's own event at `seq` as stored (nil when retired or not written).
    public func ownRecord(seq: UInt64) throws(SyncError) -> [UInt8]? {
        guard seq >= outbound.firstSequence, seq <= outbound.readableSequence else { return nil }
        let reader = try journal { () throws(JournalError) in try outbound.reader(from: seq) }
        defer { reader.close() }
        return try journal { () throws(JournalError) in try reader.next() }?.record
    }

    /// Captures written by other terminals that this store holds with their
    /// payment code. Central relays captures without it, so this must be empty.
    public func heldForeignCaptures() throws(SyncError) -> [Dot] {
        let reader = try journal { () throws(JournalError) in try inbound.reader(from: inbound.firstSequence) }
        var found: [Dot] = []
        while let (seq, record) = try journal({ () throws(JournalError) in try reader.next() }) {
            guard case .pulled(_, let bytes) = try InboundRecord.decode(record, location: "\(directory)/inbound seq \(seq)") else { continue }
            let event: Event
            do { event = try RecordCodec.decode(bytes, context: enrollment.recordContext) } catch { throw SyncError(error, location: "\(directory)/inbound seq \(seq)") }
            if case .saleCaptured(let c) = event.body, c.paymentCode != nil, event.dot.replica != terminal { found.append(event.dot) }
        }
        return found
    }

    // MARK: - Writing

    /// Writes one of the terminal's own events: its dot is the next outbound
    /// sequence number, its HLC from `wallMillis`, its context what this
    /// terminal knows of the entity. Returns after the event is durable.
    @discardableResult
    public func record(_ body: EventBody, wallMillis: Int64) throws(SyncError) -> Event {
        let event = try recordLocked(body, wallMillis: wallMillis)
        // After the event is durable and outside the lock: a checkpoint (and compaction) when due. One scan in
        // `checkpointTailRecordsMax`, or the first of a day when the floor moved a day, pays for it.
        maintainAfterWrite()
        return event
    }

    private func recordLocked(_ body: EventBody, wallMillis: Int64) throws(SyncError) -> Event {
        lock.lock()
        defer { lock.unlock() }
        guard let kind = body.kind, kind.mayBeWritten(by: terminal) else {
            throw SyncError(.notAuthorized, "a terminal may not write \(body.kind.map { "\($0)" } ?? "an unknown event")")
        }
        try requireFocus(body)
        let seq = outbound.lastSequence + 1
        let dot = try! Dot(replica: terminal, seq: seq)
        let stamp: HLCTimestamp
        do { stamp = try hlc.now(wallMillis: wallMillis) } catch { throw SyncError(error) }
        let event = Event(dot: dot, hlc: stamp, context: stateValue.writerContext(for: body, dot: dot), body: body)
        // A writer never records what its own fold would ignore.
        do { try stateValue.checkAdmission(event) } catch { throw SyncError(error) }
        if seq > reservedThrough {
            // Reserve numbers before using them: recovery then knows how far they may have gone.
            let through = seq + SyncLimits.terminalSequenceReservation - 1
            try appendInbound([.reserved(through: through)])
            reservedThrough = through
        }
        let written = try journal { () throws(JournalError) in try outbound.append(RecordCodec.encode(event)) }
        precondition(written == seq, "outbound journal assigned seq \(written), expected \(seq): writes must be serialized")
        absorb([event], wallMillis: wallMillis)
        if case .saleCaptured = body { focusLoaded?.sales.insert(SaleId(dot)) }
        recordsSinceCheckpoint += 1
        return event
    }

    // MARK: - Sync

    public struct SyncReport: Sendable, Equatable, CustomStringConvertible {
        public var pushed: Int = 0
        public var pushBatches: Int = 0
        public var duplicatesAtCentral: Int = 0
        public var pulled: Int = 0
        public var pullBatches: Int = 0
        public var acknowledged: UInt64 = 0
        public var clockSkewed = false
        /// Events central had acknowledged and no longer held at the handshake (re-pushed in this session, as far as this journal still held them).
        public var centralLost: ClosedRange<UInt64>? = nil
        /// False when the session stopped early because `yield` asked it to (what it did is kept; the next session goes on).
        public var complete = true
        public var description: String {
            (complete ? "" : "stopped early (more remains): ") + "pushed \(pushed) events in \(pushBatches) batches (\(duplicatesAtCentral) central already had), acknowledged through seq \(acknowledged); pulled \(pulled) events in \(pullBatches) batches"
                + (clockSkewed ? "; central says this terminal's clock is off" : "")
                + (centralLost.map { "; central had lost seq \($0.lowerBound)...\($0.upperBound), re-pushed" } ?? "")
        }
    }

    /// One sync session: handshake, push what central lacks, record its
    /// acknowledgement, pull what this terminal lacks. Safe to interrupt at
    /// any step and to repeat: a retry resumes from what both sides hold.
    /// How far a sync session is, reported after the handshake and after every batch.
    public struct SyncProgress: Sendable, Equatable {
        /// Events to push (known after the handshake) and pushed so far.
        public var toPush: Int
        public var pushed: Int
        /// Central journal positions to scan for this terminal (after the handshake) and scanned so far.
        public var toScan: Int
        public var scanned: Int
    }

    public func sync(via transport: any SyncTransport, wallMillis: Int64,
                     pushBatchBytes: Int = SyncLimits.pushBatchBytesMax, pullBatchBytes: Int = SyncLimits.pullBatchBytesMax,
                     yield: (() -> Bool)? = nil,
                     progress: ((SyncProgress) -> Void)? = nil) throws(SyncError) -> SyncReport {
        precondition(pushBatchBytes > 0 && pushBatchBytes <= SyncLimits.pushBatchBytesMax)
        precondition(pullBatchBytes > 0 && pullBatchBytes <= SyncLimits.pullBatchBytesMax)
        try requireWhole("sync")
        var report = SyncReport()
        let hello = SyncMessage.Hello(central: enrollment.central, terminal: terminal, knowledge: knowledge,
                                      pullCursor: lock.withLock { pullCursor }, wallMillis: wallMillis,
                                      acknowledged: lock.withLock { acknowledged }, epoch: lock.withLock { centralEpoch },
                                      cursorDigest: lock.withLock { pullCursorDigest ?? 0 })
        guard case .welcome(let welcome) = try expect(transport.exchange(.hello(hello))) else {
            throw SyncError(.malformed, "central answered hello with something other than welcome")
        }
        report.clockSkewed = welcome.clockSkewed
        lock.withLock { lastCentralWallMillis = welcome.wallMillis }
        let reference = clockReference(wallMillis)
        // Central can only hold what was pushed, and only durable events are pushed.
        guard welcome.acknowledged <= outbound.durableSequence else {
            throw SyncError(.sequenceGap, "central holds this terminal's events through seq \(welcome.acknowledged) but this terminal's journal holds seq \(outbound.durableSequence) durably: the terminal store is older than what it sent; run `possync terminal recover`", location: directory)
        }
        let recorded = lock.withLock { acknowledged }
        if welcome.acknowledged < recorded {
            // Central lost events it had acknowledged: re-push them, and retire nothing it does not hold again.
            logger.error("central holds fewer of this terminal's events than it acknowledged; re-pushing", metadata: [
                "sync.acknowledged": "\(recorded)", "sync.central_holds": "\(welcome.acknowledged)",
            ])
            try appendInbound([.centralBehind(sequence: welcome.acknowledged)])
            lock.withLock { centralHolds = welcome.acknowledged }
            report.centralLost = (welcome.acknowledged + 1)...recorded
        } else {
            try noteAcknowledged(welcome.acknowledged)
        }
        if welcome.epoch != lock.withLock({ centralEpoch }) || lock.withLock({ pullCursor }) > welcome.cursorMax {
            // Central's journal was cut or rebuilt since the cursor was set (or central cannot vouch
            // for it: restored from an older copy): positions after `cursorMax` may name other events
            // now. Pull again from there (the knowledge vector keeps what is already held from coming
            // twice); the epoch and cursor are recorded together before anything is pulled.
            let cursor = min(lock.withLock { pullCursor }, welcome.cursorMax)
            logger.warning("central's history changed; pulling again from the last position still valid", metadata: [
                "sync.epoch": "\(centralEpoch)", "sync.central_epoch": "\(welcome.epoch)", "sync.cursor": "\(cursor)",
            ])
            try appendInbound([.epoch(welcome.epoch), .pullCursor(position: cursor, digest: nil)])
            lock.withLock { centralEpoch = welcome.epoch; pullCursor = cursor; pullCursorDigest = nil }
        }
        if lock.withLock({ pullCursor }) > welcome.head {
            // Central's journal is shorter than what this terminal pulled through
            // (central restored from a backup): pull from the start again; the
            // knowledge vector keeps what is already held from coming twice.
            logger.warning("pull cursor beyond central's journal; pulling from the start", metadata: [
                "sync.cursor": "\(pullCursor)", "sync.central_head": "\(welcome.head)",
            ])
            lock.withLock { pullCursor = 0; pullCursorDigest = nil }
        }
        let cursorAtStart = lock.withLock { pullCursor }
        var status = SyncProgress(toPush: Int(outbound.durableSequence - min(outbound.durableSequence, welcome.acknowledged)), pushed: 0,
                                  toScan: Int(welcome.head - min(welcome.head, cursorAtStart)), scanned: 0)
        progress?(status)
        // Push: the unacknowledged records repacked into batch frames (one deflate and one seal
        // per push, however they were framed when stored), from what this journal still holds
        // when central lost events this terminal has since retired (central records them lost).
        let sealer = batchSealer()
        var from = max(welcome.acknowledged + 1, outbound.firstSequence)
        while from <= outbound.durableSequence {
            if report.pushBatches > 0, yield?() == true { report.complete = false; break }
            guard let frame = try nextBatchFrame(from: from, through: nil, blockBytesMax: pushBatchBytes, sealer: sealer) else { break }
            let pushedThrough = frame.header.lastSequence
            let push = SyncMessage.Push(terminal: terminal, dictionaryID: sealer.dictionaryID, keyID: sealer.keyID, frames: [frame.bytes])
            guard case .ack(let ack) = try expect(transport.exchange(.push(push))) else {
                throw SyncError(.malformed, "central answered push with something other than ack")
            }
            report.pushBatches += 1
            report.pushed += Int(ack.accepted)
            report.duplicatesAtCentral += Int(ack.duplicates)
            // An acknowledgement is kept for good and lets segments be retired:
            // it must lie within what this push carried.
            guard ack.acknowledged >= from, ack.acknowledged <= pushedThrough else {
                throw SyncError(.malformed, "central acknowledged through seq \(ack.acknowledged) after a push of seq \(from)...\(pushedThrough): refused, not recorded")
            }
            try noteAcknowledged(ack.acknowledged)
            from = ack.acknowledged + 1
            status.pushed = Int(ack.acknowledged - min(ack.acknowledged, welcome.acknowledged))
            progress?(status)
        }
        report.acknowledged = acknowledged
        // Pull: what this terminal lacks, in bounded batches, within its relay scope.
        let floor = scopeFloorMillis(wallMillis: wallMillis, centralWallMillis: welcome.wallMillis)
        lock.withLock { lastPullFloorMillis = floor }
        var more = report.complete
        while more {
            if report.pullBatches > 0 || report.pushBatches > 0, yield?() == true { report.complete = false; break }
            let request = SyncMessage.Pull(terminal: terminal, cursor: lock.withLock { pullCursor }, knowledge: knowledge,
                                           batchBytes: pullBatchBytes == SyncLimits.pullBatchBytesMax ? 0 : UInt32(pullBatchBytes),
                                           scopeFloorMillis: floor)
            guard case .events(let batch) = try expect(transport.exchange(.pull(request))) else {
                throw SyncError(.malformed, "central answered pull with something other than events")
            }
            guard batch.cursor >= request.cursor else {
                throw SyncError(.malformed, "central answered a pull after position \(request.cursor) with position \(batch.cursor): refused")
            }
            report.pullBatches += 1
            report.pulled += try applyPulled(batch, wallMillis: reference)
            more = batch.more && batch.cursor > request.cursor
            status.scanned = min(status.toScan, Int(batch.cursor - min(batch.cursor, cursorAtStart)))
            progress?(status)
        }
        let (cursor, cursorDigest) = lock.withLock { (pullCursor, pullCursorDigest) }
        guard report.complete else {
            // Stopped early: the cursor each pulled batch reached is already recorded with it; not synced yet.
            return report
        }
        try appendInbound([.pullCursor(position: cursor, digest: cursorDigest), .synced(wallMillis: wallMillis, centralWallMillis: welcome.wallMillis)])
        lock.withLock { lastSyncMillis = wallMillis }
        // Compaction and the checkpoint are written after a session, never on a scan.
        try maintain(afterSync: report)
        return report
    }

    /// The floor a pull sends (sync-protocol.md, "Relay scope"): the relay scope's floor at this
    /// terminal's time — the later of `wallMillis` and its HLC, which never reads earlier than
    /// anything it has seen — or at central's clock (`centralWallMillis`, the welcome's) when that
    /// is earlier, so a clock running ahead does not push sales out of scope; 0 when unscoped.
    /// It never goes below a floor this process sent or the inbound journal recorded (kind 9), so a
    /// wall clock set back, across restarts too, does not lower it.
    public func scopeFloorMillis(wallMillis: Int64, centralWallMillis: Int64? = nil) -> UInt64 {
        guard let scope = options.scope else { return 0 }
        return lock.withLock {
            let own = max(wallMillis, Int64(hlc.last.millis))
            let now = centralWallMillis.map { min(own, $0) } ?? own
            // Never below a floor recorded before (kind 9, kept across restarts) or sent by this process.
            return max(UInt64(scope.floorMillis(nowMillis: now)), lastPullFloorMillis ?? 0, journalSummary.scopeFloor)
        }
    }

    /// The scope floor the last pull of this process sent (nil: none yet).
    public private(set) var lastPullFloorMillis: UInt64?

    private func expect(_ reply: SyncMessage) throws(SyncError) -> SyncMessage {
        if case .refusal(let r) = reply { throw SyncError(.init(refusal: r.code), r.message, location: "central") }
        return reply
    }

    private func noteAcknowledged(_ sequence: UInt64) throws(SyncError) {
        guard sequence > lock.withLock({ centralHolds }) else { return }
        try appendInbound([.acknowledged(sequence: sequence)])
        lock.withLock {
            acknowledged = max(acknowledged, sequence)
            centralHolds = sequence
        }
    }

    /// Decrypts a pulled batch, stores it durably in the inbound journal, folds it.
    private func applyPulled(_ pulledBatch: SyncMessage.Events, wallMillis: Int64) throws(SyncError) -> Int {
        let decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: enrollment.journalKey)
        var records: [InboundRecord] = []
        var events: [Event] = []
        // Dedup by what is held, not by the knowledge vector: an event compaction dropped is known but no
        // longer held, and central sends it again when it joins an in-scope key group (sync-protocol.md "Relay scope").
        var seen = Set<Dot>()  // within this batch
        var partners: Set<Dot> = []  // sent as key-group partners (position 0)
        let context = enrollment.recordContext  // one merchant key for the whole batch
        for (i, frame) in pulledBatch.frames.enumerated() {
            let decoded = try journal { () throws(JournalError) in
                try Frames.records(frame, dictionaryID: ledgerDictionary.id, keyID: enrollment.journalKey.id, decoder: decoder, file: "pulled frame \(i)")
            }
            for (j, record) in decoded.records.enumerated() {
                guard case .pulled(let position, let bytes) = try InboundRecord.decode(record, location: "pulled frame \(i) record \(j)") else {
                    throw SyncError(.malformed, "pulled batch holds a record that is not an event", location: "pulled frame \(i) record \(j)")
                }
                let event: Event
                do { event = try RecordCodec.decode(bytes, context: context) } catch { throw SyncError(error, location: "pulled frame \(i) record \(j)") }
                if case .saleCaptured(let c) = event.body, c.paymentCode != nil {
                    throw SyncError(.notAuthorized, "central relayed a payment code (event \(event.dot)): refused", location: "pulled frame \(i) record \(j)")
                }
                // An own event comes back only as a key-group partner (position 0) that retention retired here.
                let ownHeld = event.dot.replica == terminal && (position != 0 || event.dot.seq >= outbound.firstSequence)
                if ownHeld || lock.withLock({ held[event.dot] != nil }) || !seen.insert(event.dot).inserted { continue }
                if position == 0 { partners.insert(event.dot) }
                records.append(.pulled(position: position, event: bytes))
                events.append(event)
            }
        }
        // The cursor reached, and the digest of central's record there, move with the batch's records.
        let advanced = pulledBatch.cursor > lock.withLock { pullCursor }
        let digest: UInt64? = pulledBatch.cursorDigest == 0 ? nil : pulledBatch.cursorDigest
        var seqs: [UInt64] = []
        if !records.isEmpty {
            var written = records
            if advanced { written.append(.pullCursor(position: pulledBatch.cursor, digest: digest)) }
            let range = try appendInbound(written, pulled: events)
            seqs = events.indices.map { range.lowerBound + UInt64($0) }
        }
        lock.withLock {
            if advanced { pullCursor = pulledBatch.cursor; pullCursorDigest = digest }
            absorb(events, inboundSeqs: seqs, partners: partners, wallMillis: wallMillis)
        }
        return events.count
    }

    /// Appends records to the inbound journal (durably) and keeps `journalSummary` in step.
    /// `pulled` are the decoded events of the `.pulled` records, in order.
    @discardableResult
    private func appendInbound(_ records: [InboundRecord], pulled: [Event] = []) throws(SyncError) -> ClosedRange<UInt64> {
        let range = try journal { () throws(JournalError) in try inbound.append(contentsOf: records.map { $0.encoded() }) }
        var next = 0
        for (i, r) in records.enumerated() {
            if case .pulled(let position, _) = r {
                journalSummary.notePulled(pulled[next], position: position, terminal: terminal)
                next += 1
            } else {
                try journalSummary.apply(r, seq: range.lowerBound + UInt64(i), terminal: terminal, context: enrollment.recordContext, location: directory + "/inbound")
            }
        }
        return range
    }

    // MARK: - Retention

    /// Retires outbound segments whose every event central has acknowledged
    /// and whose newest event is older than `options.retentionMillis` (or the
    /// relay scope's span, when longer: sync-protocol.md "Relay scope") at
    /// `wallMillis` (by its HLC time). Never a segment holding an
    /// unacknowledged event. Crash-safe (see the journal's retention). Retired
    /// events stay at central; after a reopen they are no longer in this
    /// terminal's folded state. Returns the removed segment files.
    @discardableResult
    public func retireAcknowledged(wallMillis: Int64) throws(SyncError) -> [String] {
        try requireWhole("retention")
        // Only what central holds now: after central lost events, not until it has them again.
        return try retireOwn(acked: lock.withLock { min(acknowledged, centralHolds) }, wallMillis: wallMillis)
    }

    private func retireOwn(acked: UInt64, wallMillis: Int64) throws(SyncError) -> [String] {
        guard acked >= outbound.firstSequence else { return [] }
        // An own sale in the relay scope stays whole (central sends an own event back only as a key-group partner).
        let cutoff = wallMillis - max(options.retentionMillis, options.scope?.spanMillis ?? 0)
        // The newest acknowledged event old enough: own HLC times only grow with the sequence number.
        var through: UInt64 = 0
        let reader = try journal { () throws(JournalError) in try outbound.reader(from: outbound.firstSequence) }
        defer { reader.close() }
        while let (seq, record) = try journal({ () throws(JournalError) in try reader.next() }), seq <= acked {
            let event: Event
            do { event = try RecordCodec.decode(record, context: enrollment.recordContext) } catch { throw SyncError(error, location: "\(directory)/outbound seq \(seq)") }
            guard Int64(event.hlc.millis) <= cutoff else { break }
            through = seq
        }
        guard through > 0 else { return [] }
        return try journal { () throws(JournalError) in try outbound.retire(through: through) }
    }

    // MARK: - Batch frames

    /// Seals the terminal's own records for sending: its dictionary and journal
    /// key, as its stored frames are.
    private func batchSealer() -> FrameSealer {
        FrameSealer(dictionary: ledgerDictionary, key: enrollment.journalKey)
    }

    /// The terminal's own records from `from` (through `through`, or what is
    /// written), as many as one batch frame of at most `blockBytesMax` record
    /// bytes takes, sealed as one frame (first-sequence field its first record's
    /// number, previous checksum 0); nil when there is none. Stored frames are
    /// repacked, never shipped as they are: a per-record terminal stores one frame
    /// per event (sync-protocol.md, "A session" and "Bundles").
    private func nextBatchFrame(from: UInt64, through: UInt64?, blockBytesMax: Int,
                                sealer: FrameSealer) throws(SyncError) -> (bytes: [UInt8], header: FrameHeader)? {
        let reader = try journal { () throws(JournalError) in
            try JournalReader(directory: directory + "/outbound", fileSystem: fileSystem, dictionaries: [ledgerDictionary],
                              key: enrollment.journalKey, from: from, through: through ?? outbound.readableSequence)
        }
        defer { reader.close() }
        return try journal { () throws(JournalError) in
            try reader.nextBatch(blockBytesMax: min(blockBytesMax, JournalLimits.frameRecordBytesMax)).map { batch throws(JournalError) in
                try sealer.seal(batch.records, firstSequence: batch.firstSequence)
            }
        }
    }


    // MARK: - Checkpoint and compaction

    /// How a terminal's open went (sync-protocol.md "Terminal checkpoint and compaction").
    public struct OpenReport: Sendable, Equatable {
        /// True when open read a checkpoint and only the journal records after it.
        public var usedCheckpoint = false
        /// Why the checkpoint was not used (missing, damaged, not matching the journals); nil when it was.
        public var note: String? = "no checkpoint"
        /// Records decoded to build the state: checkpoint entries plus journal records read.
        public var recordsRead = 0
        /// Of those, journal records after what the checkpoint covered (the whole journals without one).
        public var tailRecords = 0
        /// True when a checkpoint file was there but not used (damaged, or not matching the journals).
        public var checkpointRefused = false
        /// True when a focused open read the checkpoint's index and only the frames its focus needs.
        public var focused = false
        /// A focused open's checkpoint frames read (header aside: the root, the meta frame and the table
        /// frames its lookups needed) and entry records decoded from them; 0 for a full open.
        public var checkpointFramesRead = 0
        public var checkpointEntriesRead = 0
        /// A status open that read the checkpoint whole (a version-2 checkpoint holds no status counts; a floor or the
        /// outbound journal's first sequence moved since it was written; a count below zero): why.
        public var statusNote: String?
        mutating func fellBack(_ why: String, refused: Bool = true) {
            usedCheckpoint = false
            focused = false
            note = why
            checkpointRefused = refused
        }
    }

    /// Reads `checkpoint.psc` when it exists and matches the inbound journal; nil otherwise
    /// (the reason in `report`, logged as a warning when a file was there). Never throws:
    /// the checkpoint is derived, the journals are the truth.
    private static func readCheckpoint(directory: String, enrollment: Enrollment, inbound: Journal, fileSystem: any JournalFileSystem,
                                       logger: Logger, report: inout OpenReport) -> TerminalCheckpoint? {
        let path = directory + "/" + TerminalCheckpoint.fileName
        guard fileSystem.fileExists(path) else {
            report.fellBack("no checkpoint", refused: false)
            return nil
        }
        do {
            let c = try TerminalCheckpoint.decode(FileStore(fs: fileSystem).read(path), terminal: enrollment.terminal,
                                                  key: enrollment.journalKey, path: path)
            try checkCovers(c, inbound: inbound, path: path)
            report.usedCheckpoint = true
            report.note = nil
            return c
        } catch {
            refuseCheckpoint("\(error)", directory: directory, logger: logger, report: &report)
            return nil
        }
    }

    /// A focused open's reading of `checkpoint.psc`: its header, root index and meta frame (the index
    /// reads the rest on demand); nil, as `readCheckpoint`, when it is missing, refused or does not match
    /// the inbound journal.
    private static func readCheckpointIndex(directory: String, enrollment: Enrollment, inbound: Journal, fileSystem: any JournalFileSystem,
                                            logger: Logger, report: inout OpenReport) -> TerminalCheckpoint.Index? {
        let path = directory + "/" + TerminalCheckpoint.fileName
        guard fileSystem.fileExists(path) else {
            report.fellBack("no checkpoint", refused: false)
            return nil
        }
        do {
            let index = try TerminalCheckpoint.Index(path: path, fileSystem: fileSystem, terminal: enrollment.terminal, key: enrollment.journalKey)
            do { try checkCovers(index.meta, inbound: inbound, path: path) } catch {
                index.close()
                throw error
            }
            report.usedCheckpoint = true
            report.note = nil
            return index
        } catch {
            refuseCheckpoint("\(error)", directory: directory, logger: logger, report: &report)
            return nil
        }
    }

    /// A checkpoint is used only for the inbound journal it covers, when nothing after what it covers was retired.
    private static func checkCovers(_ c: TerminalCheckpoint, inbound: Journal, path: String) throws(SyncError) {
        guard c.inboundJournal == inbound.journalID else {
            throw SyncError(.malformed, "it covers inbound journal \(c.inboundJournal), the inbound journal is \(inbound.journalID)", location: path)
        }
        guard c.inboundThrough <= inbound.lastSequence, c.inboundThrough + 1 >= inbound.firstSequence else {
            throw SyncError(.malformed, "it covers inbound seq 1...\(c.inboundThrough), the inbound journal holds \(inbound.firstSequence)...\(inbound.lastSequence)", location: path)
        }
    }

    /// A checkpoint file that is there but not used: said in the open report (and so in `terminal status`) and logged.
    private static func refuseCheckpoint(_ why: String, directory: String, logger: Logger, report: inout OpenReport) {
        let path = "\(directory)/\(TerminalCheckpoint.fileName)"
        report.fellBack("\(path) not used (\(why)); folded the journals")
        logger.warning("terminal checkpoint not used; folding the journals", metadata: ["checkpoint.file": "\(path)", "checkpoint.reason": "\(why)"])
    }

    /// After an own event: compacts when the scope floor would move at least `compactionFloorStepMillis`,
    /// and writes a checkpoint when more than `checkpointTailRecordsMax` records lie after the last one, or
    /// when the one open found was not usable. Opening never writes: a command that only reads changes nothing.
    private func maintainAfterWrite() {
        // A focused replica holds part of the state: the next full open (every sync) writes the checkpoint.
        guard focusLoaded == nil else { return }
        if let floor = dueFloor(), floor >= Int64(journalSummary.scopeFloor) + options.compactionFloorStepMillis {
            maintainLogged(compactTo: floor)
        } else if recordsSinceCheckpoint > options.checkpointTailRecordsMax || checkpointStale {
            maintainLogged(compactTo: nil)
        }
    }

    /// After a sync session: compacts (the floor moves with the clock) and writes a checkpoint when it pulled
    /// or learnt an acknowledgement.
    private func maintain(afterSync report: SyncReport) throws(SyncError) {
        let floor = dueFloor()
        if floor.map({ $0 > Int64(journalSummary.scopeFloor) }) == true || report.pulled > 0 || report.pushed > 0 {
            maintainLogged(compactTo: floor)
        }
    }

    /// The floor compaction moves to, when a scope is set: at the terminal's HLC, but never past
    /// central's clock as the last sync's welcome gave it, so a terminal clock running ahead never
    /// records a floor that drops sales still in scope (the pull's floor is bounded the same way). A
    /// terminal that does not sync does not compact further: it pulls nothing new meanwhile.
    private func dueFloor() -> Int64? {
        options.scope.map { scope in
            let own = Int64(hlc.last.millis)
            return scope.floorMillis(nowMillis: lastCentralWallMillis.map { min(own, $0) } ?? own)
        }
    }

    /// A failure to compact or to write a checkpoint never fails the command that triggered it (what it
    /// did is durable in the journals): it is logged and tried again at the next trigger.
    private func maintainLogged(compactTo floor: Int64?) {
        do { try compact(floorMillis: floor) } catch {
            logger.warning("terminal compaction or checkpoint failed; the journals hold everything, tried again later", metadata: [
                "checkpoint.file": "\(directory)/\(TerminalCheckpoint.fileName)", "checkpoint.reason": "\(error)",
            ])
        }
    }

    /// Compaction (sync-protocol.md "Terminal checkpoint and compaction"), in this order, each step durable
    /// before the next: (1) raise the scope floor (inbound kind 9) and drop from the state what it no longer
    /// keeps; (2) retire the own segments acknowledged and past retention, and drop their events; (3) when
    /// old inbound segments can go, restate the inbound summary and carry their kept pulled events forward;
    /// (4) write the checkpoint; (5) retire those inbound segments. A power loss between any two steps
    /// reopens to the fold of what the journals hold, kept by the recorded floor.
    /// With `floorMillis` nil (or not above the recorded floor) step (1) does nothing.
    public func compact(floorMillis: Int64? = nil) throws(SyncError) {
        try requireWhole("compaction")
        lock.lock()
        defer { lock.unlock() }
        if let floor = floorMillis, floor > Int64(journalSummary.scopeFloor) {
            try appendInbound([.scopeFloor(millis: UInt64(floor))])
            let before = held.count
            keep(held.values.map { ($0.event, $0.inboundSeq) }, floorMillis: floor)
            logger.debug("terminal scope floor raised", metadata: [
                "scope.floor_millis": "\(floor)", "scope.events_dropped": "\(before - held.count)", "scope.events_kept": "\(held.count)",
            ])
        }
        // (2) A scoped terminal (the CLI's), at the scope's clock (`dueFloor`'s): the terminal's HLC, never past
        // central's last welcome clock. An unscoped one retires only when asked (`retireAcknowledged`).
        let own = Int64(hlc.last.millis)
        let removed = options.scope == nil ? []
            : try retireOwn(acked: min(acknowledged, centralHolds), wallMillis: lastCentralWallMillis.map { min(own, $0) } ?? own)
        // Own events below the outbound journal's first sequence are no longer held (this run's retention, or
        // an earlier `retireAcknowledged`).
        let first = outbound.firstSequence
        func retired(_ dot: Dot, _ inboundSeq: UInt64) -> Bool { inboundSeq == 0 && dot.replica == terminal && dot.seq < first }
        if !removed.isEmpty || held.contains(where: { retired($0.key, $0.value.inboundSeq) }) {
            let before = held.count
            keep(held.values.filter { !retired($0.event.dot, $0.inboundSeq) }.map { ($0.event, $0.inboundSeq) },
                 floorMillis: Int64(journalSummary.scopeFloor))
            logger.debug("own segments retired", metadata: [
                "journal.removed": "\(removed.count)", "journal.first_sequence": "\(first)", "scope.events_dropped": "\(before - held.count)",
            ])
        }
        let retireThrough = try carryForward()
        let checkpoint = currentCheckpoint()
        try checkpoint.write(directory: directory, key: enrollment.journalKey, fileSystem: fileSystem)
        recordsSinceCheckpoint = 0
        checkpointStale = false
        if let through = retireThrough {
            let removed = try journal { () throws(JournalError) in try inbound.retire(through: through) }
            logger.debug("inbound segments retired", metadata: ["journal.removed": "\(removed.count)", "journal.through": "\(through)"])
        }
    }

    /// The checkpoint of what is held now: only durable records (an own event above the outbound
    /// journal's durable sequence is left to the tail), own events still in the outbound journal.
    private func currentCheckpoint() -> TerminalCheckpoint {
        let outboundThrough = outbound.durableSequence
        let inboundThrough = inbound.durableSequence
        let first = outbound.firstSequence
        let kept = held.values.filter { h in
            h.inboundSeq == 0 ? (h.event.dot.seq >= first && h.event.dot.seq <= outboundThrough) : h.inboundSeq <= inboundThrough
        }
        // The status counts are over what a full open of this checkpoint with no tail folds: `kept` of the entries
        // at the floor. That is the state itself when it keeps every held event and the state folded no event
        // `held` lacks (the usual case); after a dot reuse the state holds both events, the entries one.
        let entries = kept.map(\.event)
        let keptAgain = RelayScope.kept(entries, floorMillis: Int64(journalSummary.scopeFloor), own: terminal, ownFrom: first)
        let counts = keptAgain.count == held.count && !stateFoldsUnheld ? LedgerCounts(stateValue) : LedgerCounts(LedgerState.fold(keptAgain))
        return TerminalCheckpoint.of(kept.map { ($0.event, $0.inboundSeq) }, terminal: terminal, outboundJournal: outbound.journalID,
                                     outboundThrough: outboundThrough, inboundJournal: inbound.journalID, inboundThrough: inboundThrough,
                                     summary: journalSummary, clock: hlc.last, knowledge: knowledgeValue,
                                     status: TerminalCheckpoint.StatusCounts(outboundFirst: first, counts: counts))
    }

    /// Chooses the oldest inbound segments that may go — whole segments, durable, whose kept pulled events are
    /// at most `inboundCarryPercentMax` % of their records, at most `compactionSegmentsPerRunMax` — and, when
    /// there are any, appends the records restating the inbound summary, then the kept pulled events of those
    /// segments again (kind-1 records of position 0: carried forward), so that the journal after them alone
    /// still folds to the same state, cursors and acknowledgements. Returns the inbound sequence the caller
    /// retires through once a checkpoint covers the appended records; nil when no segment can go.
    private func carryForward() throws(SyncError) -> UInt64? {
        let bases = try journal { () throws(JournalError) in try inbound.segmentBases() }
        guard bases.count >= 2 else { return nil }
        let durable = inbound.durableSequence
        let keptSeqs = held.values.lazy.filter { $0.inboundSeq > 0 }.map(\.inboundSeq).sorted()
        // Segment i holds bases[i] ..< bases[i + 1]; the last one is being written and never goes. The longest
        // prefix whose kept events are at most inboundCarryPercentMax % of its records goes (a dense segment
        // between sparse ones goes with them, diluted; a carry never fills the journal's head again).
        // An unscoped terminal keeps everything it pulled: only segments before its oldest pulled event go.
        let carryPercent = options.scope == nil ? 0 : UInt64(TerminalOptions.inboundCarryPercentMax)
        var through: UInt64 = 0
        var carried = 0
        var keptInPrefix = 0
        for i in 0..<min(bases.count - 1, options.compactionSegmentsPerRunMax) {
            let end = bases[i + 1] - 1
            guard end <= durable else { break }
            while keptInPrefix < keptSeqs.count, keptSeqs[keptInPrefix] <= end { keptInPrefix += 1 }
            if UInt64(keptInPrefix) * 100 <= (end - bases[0] + 1) * carryPercent {
                carried = keptInPrefix
                through = end
            }
        }
        guard through > 0 else { return nil }
        try appendInbound(journalSummary.restatement)
        if carried > 0 {
            let carry = held.values.filter { $0.inboundSeq > 0 && $0.inboundSeq <= through }.map(\.event)
                .sorted { ($0.dot.replica.rawValue, $0.dot.seq) < ($1.dot.replica.rawValue, $1.dot.seq) }
            let range = try appendInbound(carry.map { .pulled(position: 0, event: RecordCodec.encode($0)) }, pulled: carry)
            for (i, e) in carry.enumerated() { held[e.dot]?.inboundSeq = range.lowerBound + UInt64(i) }
            logger.debug("inbound events carried forward", metadata: ["journal.carried": "\(carried)", "journal.through": "\(through)"])
        }
        return through
    }

    // MARK: - Bundles

    /// Writes every event central lacks (as far as this terminal knows) into a
    /// bundle file as batch frames of at most `pushBatchBytesMax` record bytes,
    /// streaming: one pass to count (batch boundaries depend on record sizes
    /// alone), one to seal and write.
    public func exportBundle(to path: String) throws(SyncError) -> (events: Int, first: UInt64, last: UInt64) {
        try requireWhole("export")
        let from = lock.withLock { centralHolds } + 1
        let through = outbound.durableSequence
        let sealer = batchSealer()
        var header = BundleHeader(central: enrollment.central, terminal: terminal, dictionaryID: sealer.dictionaryID,
                                  keyID: sealer.keyID, firstSequence: 0, lastSequence: 0, frameCount: 0)
        /// Each batch's first sequence number and records, in order.
        func batches(_ body: (UInt64, [[UInt8]]) throws(SyncError) -> Void) throws(SyncError) {
            guard from <= through else { return }
            let reader = try journal { () throws(JournalError) in
                try JournalReader(directory: directory + "/outbound", fileSystem: fileSystem, dictionaries: [ledgerDictionary],
                                  key: enrollment.journalKey, from: from, through: through)
            }
            defer { reader.close() }
            while let batch = try journal({ () throws(JournalError) in try reader.nextBatch(blockBytesMax: SyncLimits.pushBatchBytesMax) }) {
                try body(batch.firstSequence, batch.records)
            }
        }
        try batches { (first, records) throws(SyncError) in
            if header.frameCount == 0 { header.firstSequence = first }
            header.frameCount += 1
            header.lastSequence = first + UInt64(records.count) - 1
        }
        let writer = try BundleWriter(path: path, header: header, fileSystem: fileSystem)
        var written: UInt32 = 0
        try batches { (first, records) throws(SyncError) in
            guard written < header.frameCount else { return }
            let frame = try journal { () throws(JournalError) in try sealer.seal(records, firstSequence: first) }
            try writer.write(frame.bytes)
            written += 1
        }
        try writer.finish()
        let count = header.frameCount == 0 ? 0 : Int(header.lastSequence - header.firstSequence + 1)
        return (count, header.firstSequence, header.lastSequence)
    }

    public func close() throws(SyncError) {
        defer { storeLock.release() }
        try journal { () throws(JournalError) in try outbound.close() }
        try journal { () throws(JournalError) in try inbound.close() }
    }
}
