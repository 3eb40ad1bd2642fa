import Foundation
import Logging
import PosCentral
import PosLedger
import PosWire

/// How delivery retries and how much it holds, each bound with its unit.
public struct NotificationSettings: Sendable {
    /// Attempts of one notification, at most; the definite failure of the last one dead-letters it.
    public var attemptsMax = 8
    /// The wait after the first definite failure, in milliseconds; doubled after each further one.
    public var backoffBaseMillis: Int64 = 30_000
    /// No wait between attempts is longer than this, in milliseconds (a gateway's `Retry-After` included).
    public var backoffMaxMillis: Int64 = 3_600_000
    /// Notifications queued or retrying, at most: deriving stops there (the journal keeps the rest).
    public var pendingMax = 4_096
    /// Journal positions read per hold of central's lock while deriving.
    public var scanPositionsPerLock = 1_024
    /// Finished notifications kept in `outbox.jsonl` before a pass moves them to `done.jsonl`.
    public var archiveFinishedMin = 256
    /// Decisions waiting for their ticket's request, at most (the oldest is given up beyond it, logged).
    public var orphansMax = 4_096
    public init() {}
}

/// What one delivery pass did.
public struct NotificationPass: Codable, Sendable, Equatable {
    public struct Attempt: Codable, Sendable, Equatable {
        public var id: String
        public var kind: String
        public var ticket: String
        public var channel: String
        public var to: String
        public var attempt: Int
        /// `delivered`, `retrying` or `dead-letter`.
        public var state: String
        public var reason: String?
        public var notBeforeMillis: Int64?
        public var detail: String
    }

    /// A decision the customer is not told of.
    public struct Skipped: Codable, Sendable, Equatable {
        public var event: String
        public var ticket: String
        public var kind: String
        public var reason: String
    }

    public var destination: String
    /// Central journal positions 1 … this are derived.
    public var derivedThrough: UInt64 = 0
    public var head: UInt64 = 0
    /// Central's history was cut since the last pass: deriving went back to this position.
    public var rewoundTo: UInt64?
    /// Ids derived by this pass.
    public var queued: [String] = []
    public var skipped: [Skipped] = []
    /// Ids whose attempt had no recorded outcome (the process stopped mid-delivery): dead-lettered, never sent again.
    public var interrupted: [String] = []
    public var attempts: [Attempt] = []
    /// Queued or retrying after the pass.
    public var pending = 0
    /// Why the pass did not try every notification that was due.
    public var stoppedEarly: String?
}

/// Turns central's journal into notifications and delivers them, at most once
/// each (sync-protocol.md, "Notifications"). A pass reads journal positions
/// after the log's cursor, queues what they mean durably, then tries every
/// notification that is due: the attempt is recorded (fsync) before the
/// notifier is called, its outcome after. One pass at a time; the process
/// must hold the central store (its lock), as every writer does.
public final class NotificationDispatcher: @unchecked Sendable {
    public let handler: CentralHandler
    public let notifier: any Notifier
    public let settings: NotificationSettings
    let log: DeliveryLog
    private let wallMillis: @Sendable () -> Int64
    private let logger: Logger
    private let onOutcome: (@Sendable (_ outcome: String) -> Void)?
    /// One pass at a time.
    private let passLock = NSLock()
    private let flagLock = NSLock()
    private var stopRequested = false
    /// After a gateway failure, no attempt before this (central's wall clock, Unix ms).
    private var pausedUntilMillis: Int64 = .min

    /// - Parameters:
    ///   - directory: the log's directory: `DeliveryLog.directory(ofCentral:)` for the embedded store.
    ///   - wallMillis: central's wall clock (the handler's by default): attempt times and backoff.
    ///   - onOutcome: told of every attempt's outcome, `delivered`, `failed` (to be retried) or
    ///     `dead-letter` (what `ServerMetrics.notification(outcome:)` counts).
    public init(handler: CentralHandler, directory: String, notifier: any Notifier, settings: NotificationSettings = NotificationSettings(),
                wallMillis: (@Sendable () -> Int64)? = nil,
                logger: Logger = Logger(label: "possync.notify", factory: { _ in SwiftLogNoOpLogHandler() }),
                onOutcome: (@Sendable (_ outcome: String) -> Void)? = nil) throws(SyncError) {
        precondition(settings.attemptsMax >= 1 && settings.backoffBaseMillis > 0 && settings.backoffMaxMillis >= settings.backoffBaseMillis)
        precondition(settings.pendingMax >= 1 && settings.scanPositionsPerLock >= 1 && settings.orphansMax >= 1)
        self.handler = handler
        self.notifier = notifier
        self.settings = settings
        self.wallMillis = wallMillis ?? handler.wallClockMillis
        self.logger = logger
        self.onOutcome = onOutcome
        log = try DeliveryLog(directory: directory)
    }

    /// Stops a pass before its next attempt (the attempt in flight finishes); passes after it deliver nothing.
    public func requestStop() { flagLock.withLock { stopRequested = true } }
    private var stopping: Bool { flagLock.withLock { stopRequested } }

    /// When a pass has something to do next (central's wall clock, Unix ms): now when the journal has
    /// positions not derived yet (and room to queue) or a notification is queued; else the earliest
    /// retry; nil: nothing.
    public var nextDueMillis: Int64? {
        passLock.withLock {
            let paused = pausedUntilMillis
            if log.cursor.cursor < handler.head, log.unfinishedCount < settings.pendingMax { return wallMillis() }
            var due: Int64?
            for r in log.records where !r.state.isFinal {
                let at = max(paused, r.state == .retrying ? (r.notBeforeMillis ?? 0) : .min)
                due = min(due ?? at, at)
            }
            return due
        }
    }

    /// One pass: settle interrupted attempts, follow a cut of central's history, derive, deliver what is due.
    public func pass() throws(SyncError) -> NotificationPass {
        passLock.lock()
        defer { passLock.unlock() }
        var report = NotificationPass(destination: notifier.destination)
        report.interrupted = try settleInterrupted()
        report.rewoundTo = try followHistory()
        try derive(&report)
        try deliverDue(&report)
        if log.finishedCount >= settings.archiveFinishedMin { try log.archiveFinished() }
        report.derivedThrough = log.cursor.cursor
        report.head = handler.head
        report.pending = log.unfinishedCount
        return report
    }

    // MARK: - Steps

    /// An attempt with no recorded outcome may have been delivered: dead-lettered, never sent again.
    private func settleInterrupted() throws(SyncError) -> [String] {
        let open = log.records.filter { $0.state == .attempting }
        guard !open.isEmpty else { return [] }
        let now = wallMillis()
        try log.append(open.map {
            LogLine(id: $0.notification.id, state: .deadLetter, atMillis: now, attempt: $0.attempts, reason: .outcomeUnknown,
                    detail: "no outcome was recorded for attempt \($0.attempts) (the process stopped while delivering): not sent again")
        })
        for r in open {
            logger.warning("notification outcome unknown: dead-lettered", metadata: ["notify.id": "\(r.notification.id)", "notify.attempt": "\(r.attempts)"])
            onOutcome?("dead-letter")
        }
        return open.map(\.notification.id)
    }

    /// When central's journal was cut (its epoch changed) or ends below the cursor: derive again from
    /// below the cut, and guard every id derived above it, so an event re-pushed to a new position
    /// is never notified twice.
    private func followHistory() throws(SyncError) -> UInt64? {
        var c = log.cursor
        let epoch = handler.epoch
        let head = handler.head
        guard epoch != c.epoch || c.cursor > head else { return nil }
        let losses = handler.lossRecords
        var to = min(c.cursor, head)
        for r in losses.dropFirst(c.lossesSeen) where r.kind == .journalCut || r.kind == .recovered {
            to = min(to, r.positionsFrom.map { $0 > 0 ? $0 - 1 : 0 } ?? 0)
        }
        var guarded = Set(c.guardIDs)
        for r in log.records where r.position > to { guarded.insert(r.notification.id) }
        try log.forEachArchived { r in if r.position > to { guarded.insert(r.notification.id) } }
        let from = c.cursor
        c.cursor = to
        c.epoch = epoch
        c.lossesSeen = losses.count
        c.orphans.removeAll { $0.position > to }
        c.guardIDs = guarded.sorted()
        try log.save(c)
        guard to < from else { return nil }
        logger.warning("central's history changed: notifications derived again from below the cut",
                       metadata: ["notify.cursor_was": "\(from)", "notify.cursor": "\(to)", "central.epoch": "\(epoch)", "notify.guarded": "\(guarded.count)"])
        return to
    }

    /// Reads journal positions after the cursor, a bounded run per hold of central's lock, and queues
    /// what they mean; stops at the head or when `pendingMax` notifications are unfinished.
    private func derive(_ report: inout NotificationPass) throws(SyncError) {
        let central = handler.centralID
        var c = log.cursor
        while c.cursor < handler.head, log.unfinishedCount < settings.pendingMax {
            var candidates: [(position: UInt64, event: Event)] = []
            var last = c.cursor
            let from = c.cursor
            let span = UInt64(settings.scanPositionsPerLock)
            try handler.withStorage { (s) throws(SyncError) in
                let context = s.recordContext
                try s.scan(after: from) { (position, record) throws(SyncError) -> Bool in
                    guard position - from <= span else { return false }
                    last = position
                    let event: Event
                    do throws(LedgerError) { event = try RecordCodec.decode(record, context: context) } catch { throw SyncError(error, location: "central journal position \(position)") }
                    if Self.mayNotify(event) { candidates.append((position, event)) }
                    return true
                }
            }
            guard last > from else { break }
            var lines: [LogLine] = []
            var ids = Set<String>()
            var stopAt: UInt64?
            func queue(_ n: CustomerNotification, at position: UInt64) {
                guard !log.knows(n.id), ids.insert(n.id).inserted else { return }
                lines.append(LogLine(id: n.id, state: .queued, atMillis: wallMillis(), position: position, notification: n, attempt: 0))
            }
            for (position, event) in candidates {
                if log.unfinishedCount + lines.count >= settings.pendingMax { stopAt = position - 1; break }
                let ticket = event.ticketId!
                let state = try handler.state(around: .ticket(ticket))
                var events = [event]
                if case .refundRequested = event.body {
                    // Decisions seen before their request: derived now, at the request's position.
                    let waiting = c.orphans.filter { $0.ticket == "\(ticket.dot)" }
                    c.orphans.removeAll { $0.ticket == "\(ticket.dot)" }
                    for o in waiting { if let e = try orphanEvent(o) { events.append(e) } }
                }
                for e in events {
                    switch Derivation.of(e, state: state, central: central) {
                    case .notify(let n): queue(n, at: position)
                    case .skip(let kind, let reason):
                        report.skipped.append(.init(event: "\(e.dot)", ticket: ticket.ticketNumber.text, kind: kind, reason: reason))
                    case .awaitingRequest:
                        guard !c.orphans.contains(where: { $0.event == "\(e.dot)" }) else { break }
                        if c.orphans.count >= settings.orphansMax {
                            let dropped = c.orphans.removeFirst()
                            logger.error("a decision waited too long for its ticket's request: not notified",
                                         metadata: ["notify.event": "\(dropped.event)", "notify.ticket": "\(dropped.ticket)"])
                        }
                        c.orphans.append(.init(ticket: "\(ticket.dot)", event: "\(e.dot)", position: position))
                    case .none: break
                    }
                }
            }
            c.cursor = stopAt ?? last
            // Queued first, then the cursor: a crash between derives the same ids again, and they are known.
            try log.append(lines)
            try log.save(c)
            report.queued += lines.map(\.id)
            if stopAt != nil { break }
        }
    }

    /// The decision an orphan names, read back from its journal position (nil: the position holds another event now).
    private func orphanEvent(_ o: DerivationCursor.Orphan) throws(SyncError) -> Event? {
        // Decoded under the handler's lock: a writer missing from the key book reloads it from the store.
        let event = try handler.withStorage { (s) throws(SyncError) -> Event? in
            guard let record = try s.record(at: o.position) else { return nil }
            do throws(LedgerError) { return try RecordCodec.decode(record, context: s.recordContext) } catch {
                throw SyncError(error, location: "central journal position \(o.position)")
            }
        }
        guard let event else { return nil }
        return "\(event.dot)" == o.event ? event : nil
    }

    static func mayNotify(_ event: Event) -> Bool {
        switch event.body {
        case .refundRequested, .refundApproved, .refundRejected, .refundCompleted: true
        default: false
        }
    }

    /// Tries every queued notification and every retry whose time has come, in queue order. Stops at
    /// the first failure that is the gateway's (retryable or unknown): the rest would meet it too.
    private func deliverDue(_ report: inout NotificationPass) throws(SyncError) {
        let now = wallMillis()
        guard now >= pausedUntilMillis else {
            report.stoppedEarly = "the gateway failed recently: no attempt before \(pausedUntilMillis) (Unix ms)"
            return
        }
        for r in log.records where r.state == .queued || (r.state == .retrying && (r.notBeforeMillis ?? 0) <= now) {
            if stopping { report.stoppedEarly = "stopping"; return }
            let n = r.notification
            let attempt = r.attempts + 1
            try log.append([LogLine(id: n.id, state: .attempting, atMillis: wallMillis(), attempt: attempt)])
            let outcome = notifier.deliver(n, body: n.body, attempt: attempt)
            let at = wallMillis()
            var line = LogLine(id: n.id, state: .deadLetter, atMillis: at, attempt: attempt, detail: Self.bounded(outcome.detail))
            var metric = "dead-letter"
            var gatewayFailed = false
            switch outcome {
            case .delivered:
                line.state = .delivered
                metric = "delivered"
            case .failedRetryable(_, let after):
                gatewayFailed = true
                if attempt >= settings.attemptsMax {
                    line.reason = .retriesExhausted
                } else {
                    line.state = .retrying
                    let wait = max(backoffMillis(attempt: attempt), min(after ?? 0, settings.backoffMaxMillis))
                    line.notBeforeMillis = at + wait
                    metric = "failed"
                }
                pausedUntilMillis = at + backoffMillis(attempt: 1)
            case .failedPermanent:
                line.reason = .permanent
            case .outcomeUnknown:
                line.reason = .outcomeUnknown
                gatewayFailed = true
                pausedUntilMillis = at + backoffMillis(attempt: 1)
            }
            try log.append([line])
            onOutcome?(metric)
            logger.log(level: line.state == .delivered ? .debug : .warning, "notification \(line.state.rawValue)",
                       metadata: ["notify.id": "\(n.id)", "notify.kind": "\(n.kind)", "notify.attempt": "\(attempt)", "notify.detail": "\(line.detail ?? "")"])
            report.attempts.append(.init(id: n.id, kind: n.kind, ticket: n.ticket, channel: n.channel, to: n.to, attempt: attempt,
                                         state: line.state.rawValue, reason: line.reason?.rawValue, notBeforeMillis: line.notBeforeMillis,
                                         detail: line.detail ?? ""))
            if gatewayFailed {
                report.stoppedEarly = "the gateway failed (\(line.detail ?? "")): the rest wait for the next pass"
                return
            }
        }
    }

    /// base × 2^(attempt − 1), at most `backoffMaxMillis`.
    func backoffMillis(attempt: Int) -> Int64 {
        let shift = min(max(attempt - 1, 0), 40)
        let base = settings.backoffBaseMillis
        return base > settings.backoffMaxMillis >> shift ? settings.backoffMaxMillis : min(settings.backoffMaxMillis, base << shift)
    }

    /// A detail short enough for one log line.
    static func bounded(_ detail: String) -> String {
        let max = 300
        guard detail.utf8.count > max else { return detail }
        return String(decoding: detail.utf8.prefix(max), as: UTF8.self) + "…"
    }
}
