import Foundation
import PosCentral
@_spi(Migration) import PosCentralFiles
import PosCentralPostgres
import PosLedger
import PosNotify
import PosWire

/// `possync central migrate --from-dir C --postgres URL` (sync-protocol.md, "Moving central to
/// PostgreSQL"): moves a file central into a PostgreSQL database, resumably, then checks the two
/// hold the same: storage by storage (`CentralStorageMigration.verify`), then the folded state as
/// `central show --json` prints it, line for line.
extension CentralDesk {
    /// Events per transaction of a migration by default, and at most.
    public static let migrationBatchEventsDefault = CentralStorageMigration.batchEventsDefault
    public static let migrationBatchEventsMax = CentralStorageMigration.batchEventsMax

    /// What a migration did and checked.
    public struct Migration: Codable, Sendable, Equatable {
        public var central: String
        public var from: String
        public var postgres: String
        public var copied: CentralStorageMigration.Report
        public var verified: CentralStorageMigration.Verification
        /// Sales, tickets and conflict records in the folded state, equal in both.
        public var sales: Int
        public var tickets: Int
        public var conflicts: Int
        /// The file left in the source directory: central lives in the database from now on.
        public var movedMarker: String
        /// Customer notifications queued or retrying in the directory's delivery log, left there (`--drop-notifications`).
        public var notificationsLeft: Int

        public var text: String {
            let how = copied.resumedAfter == 0 ? "moved" : "resumed after position \(copied.resumedAfter) (held from an earlier run) and moved"
            return """
                central \(central): \(how) \(copied.events) events in \(copied.batches) batches, \(copied.enrollments) enrollments, \(copied.merchantKeys) merchant keys, \
                \(copied.flags) flags, \(copied.revocations) revocations, \(copied.losses) loss records from \(from) to \(postgres)
                verified: positions 1...\(verified.positions), \(verified.terminals) terminals' marks, \(verified.losses) loss records, \
                \(verified.placeholders) numbers held with no event, \(verified.salesAwaitingOutcome) sales awaiting an outcome, \
                and the folded state (\(sales) sales, \(tickets) tickets, \(conflicts) conflicts) identical in both
                central lives in \(postgres) now: \(TextOutput.plain(movedMarker)) marks the directory moved (it is only read from now on)
                """ + (notificationsLeft == 0 ? "" : "\n\(notificationsLeft) customer notifications not delivered were left in \(TextOutput.plain(from))/notifications (--drop-notifications)")
        }
    }

    /// Moves the file central in `directory` (opened under its store lock; its only write is the
    /// `MOVED` marker once the check passed) into the database `postgres`, which is marked `migrating`
    /// (never opened as central) until then. `afterBatch` (tests) is called after each durable batch of events with how
    /// many this run appended; what it throws stops the run there, as a kill would.
    public static func migrate(fromDirectory directory: String, postgres: String, clockMillis: @escaping @Sendable () -> Int64,
                               lockWaitMillis: Int64 = SyncLimits.storeLockWaitMillisDefault,
                               batchEvents: Int = CentralStorageMigration.batchEventsDefault,
                               dropNotifications: Bool = false,
                               afterBatch: ((Int) throws(SyncError) -> Void)? = nil,
                               progress: any ProgressSink = SilentProgress()) throws(AppError) -> Migration {
        guard (1...CentralStorageMigration.batchEventsMax).contains(batchEvents) else {
            throw AppError(.usage, "--batch-events \(batchEvents): 1...\(CentralStorageMigration.batchEventsMax) events")
        }
        try StoreKind.central.checkOpening(directory)
        let url = try postgresURL(postgres)
        let undelivered = try undeliveredNotifications(directory)
        if let first = undelivered.first, !dropNotifications {
            let n = first.notification
            throw AppError(.refused, "\(TextOutput.plain(DeliveryLog.directory(ofCentral: directory)))/outbox.jsonl: \(undelivered.count) customer notifications not delivered yet "
                           + "(queued or retrying; the first \(n.id), \(n.kind) of ticket \(n.ticket)): the delivery log is not moved to PostgreSQL; "
                           + "deliver them first (`possync central notify --dir \(TextOutput.plain(directory)) ...`), or give --drop-notifications to move without them")
        }
        let environment = CentralEnvironment(wallMillis: clockMillis)
        let source: CentralHandler
        do { source = try FileCentralStore.open(directory: directory, environment: environment, lockWaitMillis: lockWaitMillis) } catch {
            throw AppError.opening(error, what: "central store to migrate from")
        }
        defer { try? source.close() }
        let secret = try PosApp.store { () throws(SyncError) in
            try source.withStorage { (s) throws(SyncError) -> [UInt8] in
                guard let files = s as? FileCentralStorage else { throw SyncError(.invalidArgument, "not a file central", location: directory) }
                return files.migrationSecret
            }
        }
        let sourceName = URL(fileURLWithPath: directory).standardizedFileURL.path
        let (targetStorage, targetState) = try PosApp.store { () throws(SyncError) in
            try PostgresCentralStore.migrationTarget(url: url, central: source.centralID, secret: secret, source: sourceName)
        }
        let target = try PosApp.store { () throws(SyncError) in
            do throws(SyncError) { return try CentralHandler(storage: targetStorage, environment: environment) } catch {
                try? targetStorage.close()
                throw error
            }
        }
        defer { try? target.close() }

        let shown = url.redacted
        var began = false, reported: UInt64 = 0
        // A database whose move was checked may be serving central already: it is only compared again, never written.
        let copied = try PosApp.store { () throws(SyncError) in
            try source.withStorage { (s) throws(SyncError) in
                if targetState == .done {
                    var r = CentralStorageMigration.Report()
                    r.head = s.head
                    r.resumedAfter = try target.withStorage { (t) throws(SyncError) in t.head }
                    return r
                }
                return try target.withStorage { (t) throws(SyncError) in
                    try CentralStorageMigration.copy(from: s, directory, to: t, shown, batchEvents: batchEvents, afterBatch: afterBatch) { done, total in
                        if !began { progress.begin("moving events", total: Int(total), unit: "events"); began = true }
                        progress.advance(by: Int(done - reported))
                        reported = done
                    }
                }
            }
        }
        if began { progress.end() }
        // A difference is a store error (exit 3), as the folded states' below.
        let verified: CentralStorageMigration.Verification
        do {
            verified = try source.withStorage { (s) throws(SyncError) in
                try target.withStorage { (t) throws(SyncError) in try CentralStorageMigration.verify(s, directory, t, shown) }
            }
        } catch {
            throw AppError(error.code == .locked ? .busy : .store, error.description)
        }
        // The folded states, as `central show --json` prints them.
        let here = try CentralDesk(store: source, directory: directory).report()
        let there = try CentralDesk(store: target, directory: shown, postgres: shown).report()
        let a = here.json(), b = there.json()
        if a != b {
            let la = a.split(separator: "\n", omittingEmptySubsequences: false), lb = b.split(separator: "\n", omittingEmptySubsequences: false)
            let n = (0..<min(la.count, lb.count)).first(where: { la[$0] != lb[$0] }) ?? min(la.count, lb.count)
            let lineA = n < la.count ? String(la[n]) : "(end)", lineB = n < lb.count ? String(lb[n]) : "(end)"
            throw AppError(.store, "migration check failed: `central show --json` differs at line \(n + 1): \(directory) has \(lineA.trimmingCharacters(in: .whitespaces)), \(shown) has \(lineB.trimmingCharacters(in: .whitespaces))")
        }
        // Checked: the directory is marked moved (the migration's one write to it), then the database opens as central.
        // Killed between the two, neither is served; the next run checks again and finishes.
        try CentralMovedMarker.write(CentralMovedMarker(postgres: shown, movedAt: WallClock.format(clockMillis()), central: source.centralID.hex), in: directory)
        if targetState != .done {
            try PosApp.store { () throws(SyncError) in try PostgresCentralStore.finishMigration(url: url) }
        }
        return Migration(central: source.centralID.hex, from: directory, postgres: shown, copied: copied, verified: verified,
                         sales: here.sales.count, tickets: here.tickets.count, conflicts: here.conflicts.count,
                         movedMarker: CentralMovedMarker.path(in: directory), notificationsLeft: undelivered.count)
    }

    /// The customer notifications queued or retrying in the delivery log of the file central in `directory`
    /// (none when it has no log): the migration does not move the log (sync-protocol.md, "Moving central to PostgreSQL").
    static func undeliveredNotifications(_ directory: String) throws(AppError) -> [NotificationRecord] {
        let log: DeliveryLog
        do { log = try DeliveryLog(directory: DeliveryLog.directory(ofCentral: directory)) } catch {
            throw AppError(.store, "notifications: \(error.description)")
        }
        return log.records.filter { $0.state == .queued || $0.state == .retrying }
    }
}
