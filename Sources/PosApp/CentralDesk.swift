import Foundation
import PosLedger
import PosCentral
import PosCentralFiles
import PosCentralPostgres
import PosTerminal
import PosWire

/// Where central is: a store directory (the embedded store) or a PostgreSQL database (its URL).
public enum CentralLocation: Sendable, Equatable {
    case directory(String)
    case postgres(String)
}

/// What the back office does, over the embedded central store or PostgreSQL.
public final class CentralDesk: Sendable {
    let store: CentralHandler
    /// The store directory, or the database's URL without its password (what messages name).
    public let directory: String
    /// The database's URL without its password (nil: a store directory).
    public let postgres: String?

    /// Central's id, in hex.
    public var centralID: String { store.centralID.hex }

    /// The folded state central holds, as `central show` prints it: the same shape
    /// as a terminal's, then central's loss records when it has any.
    public func report(_ filter: LedgerReport.Filter = .all) throws(AppError) -> LedgerReport {
        var report = try LedgerReport(try PosApp.store { () throws(SyncError) in try store.state }, filter: filter)
        let losses = LedgerReport.losses(store.lossRecords)
        if !losses.isEmpty { report.losses = losses }
        return report
    }

    /// `clockMillis` is central's wall clock from the first thing it opens (its HLC
    /// follows it while replaying), so `--now` / `POSSYNC_NOW` governs every event it writes.
    public static func create(directory: String, clockMillis: @escaping @Sendable () -> Int64,
                              lockWaitMillis: Int64 = SyncLimits.storeLockWaitMillisDefault) throws(AppError) -> CentralDesk {
        try StoreKind.central.checkCreating(in: directory)
        let s = try PosApp.store { () throws(SyncError) in
            try FileCentralStore.create(directory: directory, environment: CentralEnvironment(wallMillis: clockMillis), lockWaitMillis: lockWaitMillis)
        }
        return CentralDesk(store: s, directory: directory)
    }

    /// A directory whose central was moved to PostgreSQL (it holds `MOVED`) opens only `readOnly`
    /// (`central show`, `central status`): nothing may serve or change it again.
    public static func open(directory: String, clockMillis: @escaping @Sendable () -> Int64,
                            lockWaitMillis: Int64 = SyncLimits.storeLockWaitMillisDefault, readOnly: Bool = false) throws(AppError) -> CentralDesk {
        try StoreKind.central.checkOpening(directory)
        if !readOnly { try CentralMovedMarker.refuse(directory, command: "serving or changing central") }
        let s: CentralHandler
        do {
            s = try FileCentralStore.open(directory: directory, environment: CentralEnvironment(wallMillis: clockMillis), lockWaitMillis: lockWaitMillis)
        } catch { throw AppError.opening(error, what: "central store") }
        return CentralDesk(store: s, directory: directory)
    }

    init(store: CentralHandler, directory: String, postgres: String? = nil) {
        self.store = store
        self.directory = directory
        self.postgres = postgres
    }

    public static func create(at location: CentralLocation, clockMillis: @escaping @Sendable () -> Int64,
                              lockWaitMillis: Int64 = SyncLimits.storeLockWaitMillisDefault) throws(AppError) -> CentralDesk {
        switch location {
        case .directory(let d): return try create(directory: d, clockMillis: clockMillis, lockWaitMillis: lockWaitMillis)
        case .postgres(let text):
            let urls = try postgresURLs(text)
            let s = try PosApp.store { () throws(SyncError) in try PostgresCentralStore.create(urls: urls, environment: CentralEnvironment(wallMillis: clockMillis)) }
            let shown = urls.map(\.redacted).joined(separator: ",")
            return CentralDesk(store: s, directory: shown, postgres: shown)
        }
    }

    /// Opens central where it is. On PostgreSQL no lock is waited for: several processes share the database.
    public static func open(at location: CentralLocation, clockMillis: @escaping @Sendable () -> Int64,
                            lockWaitMillis: Int64 = SyncLimits.storeLockWaitMillisDefault, readOnly: Bool = false) throws(AppError) -> CentralDesk {
        switch location {
        case .directory(let d): return try open(directory: d, clockMillis: clockMillis, lockWaitMillis: lockWaitMillis, readOnly: readOnly)
        case .postgres(let text):
            let urls = try postgresURLs(text)
            let s: CentralHandler
            do { s = try PostgresCentralStore.open(urls: urls, environment: CentralEnvironment(wallMillis: clockMillis)) } catch {
                throw AppError.opening(error, what: "central store")
            }
            let shown = urls.map(\.redacted).joined(separator: ",")
            return CentralDesk(store: s, directory: shown, postgres: shown)
        }
    }

    /// `--postgres URL` or `URL1,URL2,...` (the shards, in the order they were added).
    static func postgresURLs(_ text: String) throws(AppError) -> [PostgresURL] {
        do { return try PostgresURL.list(parsing: text) } catch { throw AppError(.usage, "--postgres: \(error.message)") }
    }

    /// `--postgres URL`: one database (where `central migrate` moves a file central; a list of shards is refused).
    static func postgresURL(_ text: String) throws(AppError) -> PostgresURL {
        let urls = try postgresURLs(text)
        guard urls.count == 1 else {
            throw AppError(.usage, "--postgres: \(urls.count) URLs; central migrate moves a central into one database: move it into the first, then add the others as shards with `central init --postgres URL1,URL2,...` (the moved merchants stay in the first, new merchants fill the new shards first)")
        }
        return urls[0]
    }

    public func close() throws(AppError) { try PosApp.store { () throws(SyncError) in try store.close() } }

    public struct EnrollResult: Codable, Sendable, Equatable {
        public var terminal: UInt32
        public var merchant: String
        public var central: String
        public var file: String
    }

    /// Enrolls a terminal and writes its enrollment (identity, secret, merchant key) to `out`, mode 0600.
    public func enroll(terminal: UInt32, merchant: String, out: String) throws(AppError) -> EnrollResult {
        let id = try ledger { () throws(LedgerError) in try ReplicaId.terminal(terminal) }
        // Refuse before central records anything when the file cannot be written there.
        try CommandPaths.checkOutput(out, what: "an enrollment file")
        let e = try PosApp.store { () throws(SyncError) in try store.enroll(terminal: id, merchant: merchant) }
        do {
            try e.write(to: out)
        } catch {
            // Central keeps its copy (terminals/N.json), so the secret is not lost.
            let copy = postgres.map { "in table terminals of \($0)" } ?? "\(directory)/terminals/\(terminal).json"
            throw AppError(.store, "\(out): \(error.message); terminal \(terminal) is enrolled and central's copy of the enrollment is \(copy)")
        }
        return EnrollResult(terminal: terminal, merchant: merchant, central: store.centralID.hex, file: out)
    }

    // MARK: - Decisions

    public func decide(_ action: TicketAction, ticket: TicketId, route: RefundRoute? = nil, note: NoteText? = nil,
                       nowMillis: Int64) throws(AppError) -> DecisionResult {
        let bodies = try TicketDecisions.plan(action, ticket: ticket, state: try PosApp.store { () throws(SyncError) in try store.state(around: .ticket(ticket)) },
                                              route: route, note: note)
        var events: [Event] = []
        for body in bodies {
            events.append(try PosApp.store { () throws(SyncError) in try store.record(body, wallMillis: nowMillis) })
        }
        return DecisionResult(ticket: ticket, action: action, events: events,
                              state: try PosApp.store { () throws(SyncError) in try store.state(around: .ticket(ticket)) })
    }

    // MARK: - Forwarding to the acquirer

    public struct Forwarded: Codable, Sendable, Equatable {
        public var sale: String
        public var amount: String
        public var currency: String
        public var outcome: String
        public var reason: String
    }

    public struct ForwardResult: Codable, Sendable, Equatable {
        public var acquirer: String
        public var forwarded: [Forwarded]
        /// Void duplicates: never forwarded.
        public var skippedDuplicates: [String]
        public var counts: [String: Int]
    }

    /// Forwards every captured sale (never a void-duplicate, never one already
    /// decided) to the acquirer, in sale-id order, and records each outcome as
    /// a central event (sale confirmed / declined / expired).
    /// `merchant`: only that merchant's sales; `forwarded`: told of each outcome once it is recorded.
    public func forward(to acquirer: any Acquirer, nowMillis: Int64, merchant: String? = nil, progress: any ProgressSink = SilentProgress(),
                        forwarded: (Forwarded) -> Void = { _ in }) throws(AppError) -> ForwardResult {
        // Sales with a capture and no outcome, streamed from central's state; each decided on the exact state around it.
        var candidates = try PosApp.store { () throws(SyncError) in try store.salesAwaitingOutcome() }
        if let merchant {
            let terminals = Set(store.enrolledTerminals.filter { $0.merchant == merchant }.map(\.terminal))
            candidates = candidates.filter { terminals.contains($0.dot.replica) }
        }
        var result = ForwardResult(acquirer: acquirer.name, forwarded: [], skippedDuplicates: [], counts: [:])
        progress.begin("forward", total: candidates.count, unit: "sales")
        defer { progress.end() }
        for id in candidates {
            defer { progress.advance(by: 1) }
            let state = try PosApp.store { () throws(SyncError) in try store.state(around: .sale(id)) }
            switch state.sales[id]?.status {
            case .voidDuplicate?:
                result.skippedDuplicates.append("\(id.dot)")
                continue
            case .captured?:
                break
            default:
                continue
            }
            guard let event = state.capture(of: id), case .saleCaptured(let c) = event.body, let code = c.paymentCode else {
                throw AppError(.store, "sale \(id.dot): central holds no payment code for it")
            }
            let decision = try acquirer.forward(ForwardRequest(sale: id, amount: c.amount, wallet: c.wallet, paymentCode: code,
                                                               capturedMillis: Int64(event.hlc.millis), forwardedMillis: nowMillis))
            let body: EventBody = switch decision.outcome {
            case .confirmed: .saleConfirmed(id)
            case .declined: .saleDeclined(id)
            case .expired: .saleExpired(id)
            }
            _ = try PosApp.store { () throws(SyncError) in try store.record(body, wallMillis: nowMillis) }
            result.forwarded.append(Forwarded(sale: "\(id.dot)", amount: AmountFormat.format(c.amount), currency: c.amount.currency.code,
                                              outcome: decision.outcome.rawValue, reason: decision.reason))
            forwarded(result.forwarded[result.forwarded.count - 1])
            result.counts[decision.outcome.rawValue, default: 0] += 1
        }
        return result
    }

    // MARK: - Bundles

    public struct ImportResult: Codable, Sendable, Equatable {
        public var file: String
        public var terminal: UInt32
        public var events: Int
        public var new: Int
        public var alreadyHeld: Int
        public var acknowledgedThrough: UInt64
    }

    /// Imports courier bundles in order; stops at the first refused file (the
    /// bundles before it stay imported: each is all-or-nothing per batch). A revoked
    /// terminal's bundle is refused unless `allowRevoked` (operations decided to take its events).
    public func importBundles(_ paths: [String], allowRevoked: Bool = false, progress: any ProgressSink = SilentProgress()) throws(AppError) -> [ImportResult] {
        for p in paths { try CommandPaths.checkInput(p, what: "bundle file") }
        // Every bundle is checked whole (size, magic, version, SHA-256, central id)
        // before the first is applied, so a damaged one among several changes nothing.
        for p in paths {
            do throws(SyncError) {
                let reader = try BundleReader(path: p)
                defer { reader.close() }
                guard reader.header.central == store.centralID else {
                    throw SyncError(.wrongCentral, "bundle is for central \(reader.header.central), this is \(store.centralID)", location: p)
                }
                if !allowRevoked, let note = store.revocation(of: reader.header.terminal) {
                    throw SyncError.revokedBundle(terminal: reader.header.terminal, note: note, path: p)
                }
            } catch {
                throw AppError(error.code == .io ? .store : .refused, "import: \(error.description)")
            }
        }
        progress.begin("import", total: paths.count, unit: "bundles")
        var out: [ImportResult] = []
        for p in paths {
            let r: BundleImportReport
            do { r = try store.importBundle(path: p, allowRevoked: allowRevoked) } catch {
                throw AppError(error.code == .io ? .store : .refused, "import: \(error.description)")
            }
            out.append(ImportResult(file: p, terminal: r.terminal.rawValue, events: r.events, new: r.new,
                                    alreadyHeld: r.duplicates, acknowledgedThrough: r.acknowledged))
            progress.advance(by: 1)
        }
        progress.end()
        return out
    }
}

// MARK: - Losses, status and recovery

extension CentralDesk {
    /// What `central status` prints: the store's counts, the terminals it knows and how far each is held, flags, and every loss record.
    public struct Status: Codable, Sendable, Equatable {
        public struct Terminal: Codable, Sendable, Equatable {
            public var terminal: UInt32
            public var merchant: String
            public var acknowledgedThrough: UInt64
            public var rewroteHistory: Bool
            public var clockSkewed: Bool
        }
        public var central: String
        public var journalPositions: UInt64
        public var epoch: UInt64
        public var terminals: [Terminal]
        public var losses: [LedgerReport.Loss]
        /// Loss records still waiting for a terminal's re-push.
        public var unresolvedLosses: Int
    }

    public func status() -> Status {
        let flags = store.flaggedTerminals
        let losses = LedgerReport.losses(store.lossRecords)
        return Status(central: store.centralID.hex, journalPositions: store.head, epoch: store.epoch,
                      terminals: store.enrolledTerminals.map {
                          .init(terminal: $0.terminal.rawValue, merchant: $0.merchant, acknowledgedThrough: store.acknowledged($0.terminal),
                                rewroteHistory: flags.rewroteHistory.contains($0.terminal), clockSkewed: flags.clockSkewed.contains($0.terminal))
                      },
                      losses: losses, unresolvedLosses: losses.filter { !$0.resolved }.count)
    }

    /// What `central recover` did.
    public struct RecoverResult: Codable, Sendable, Equatable {
        public var directory: String
        public var nothingToDo: Bool
        public var journalCut: String?
        public var rebuilt: Bool
        public var eventsKept: UInt64
        public var eventsDropped: Int
        public var damagedJournal: String?
        public var runsSetAside: [String]
        public var losses: [LedgerReport.Loss]
        /// The sequence reservation did not read: central's own numbers are reserved afresh through this.
        public var sequenceReservationRenewed: UInt64?
    }

    /// `central recover`: cut or rebuild the journal, set aside runs that cover what is gone, record the losses.
    public static func recover(directory: String, clockMillis: @escaping @Sendable () -> Int64,
                               lockWaitMillis: Int64 = SyncLimits.storeLockWaitMillisDefault) throws(AppError) -> RecoverResult {
        try StoreKind.central.checkOpening(directory)
        try CentralMovedMarker.refuse(directory, command: "central recover")
        let r: CentralRecoveryReport
        do {
            r = try FileCentralStore.recover(directory: directory, environment: CentralEnvironment(wallMillis: clockMillis), lockWaitMillis: lockWaitMillis)
        } catch { throw AppError.opening(error, what: "central store for recovery") }
        return RecoverResult(directory: directory, nothingToDo: r.nothingToDo,
                             journalCut: r.journalCut.map { "\($0.file) at offset \($0.offset): \($0.bytesRemoved) bytes (\($0.reason))" },
                             rebuilt: r.rebuilt, eventsKept: r.eventsKept, eventsDropped: r.eventsDropped, damagedJournal: r.damagedJournal,
                             runsSetAside: r.runsSetAside, losses: LedgerReport.losses(r.losses), sequenceReservationRenewed: r.sequenceReservationRenewed)
    }
}
