import Foundation
import PosLedger
import PosWire

/// Where a notification's delivery stands (sync-protocol.md, "Notifications", "States").
public enum NotificationState: String, Codable, Sendable {
    /// Derived from the journal, never tried.
    case queued
    /// An attempt was recorded and its outcome was not (yet): never sent again.
    case attempting
    case delivered
    /// The last attempt failed for certain; the next waits until `notBeforeMillis`.
    case retrying
    /// Given up: `reason` says why. Never sent again.
    case deadLetter = "dead-letter"

    public var isFinal: Bool { self == .delivered || self == .deadLetter }
}

public enum DeadLetterReason: String, Codable, Sendable {
    /// The attempt may have reached the gateway and nothing says what it did (or a crash came between
    /// recording the attempt and recording its outcome).
    case outcomeUnknown = "outcome-unknown"
    /// The gateway refused this notification for good.
    case permanent
    /// Definite failures up to the attempts bound.
    case retriesExhausted = "retries-exhausted"
}

/// One notification and where its delivery stands.
public struct NotificationRecord: Sendable, Equatable {
    public var notification: CustomerNotification
    /// The central journal position it was derived at.
    public var position: UInt64
    public var state: NotificationState
    /// Attempts made so far.
    public var attempts: Int
    /// When the record's last line was written (central's wall clock, Unix ms).
    public var atMillis: Int64
    public var notBeforeMillis: Int64?
    public var reason: DeadLetterReason?
    /// The last attempt's outcome in words (`HTTP 503: …`).
    public var detail: String?
}

/// One line of `outbox.jsonl` or `done.jsonl`. A line with `notification` and
/// `position` is a full record (a notification derived, or rewritten by
/// archiving); one without is a transition of a record already in the file.
struct LogLine: Codable, Equatable {
    var id: String
    var state: NotificationState
    var atMillis: Int64
    var position: UInt64?
    var notification: CustomerNotification?
    var attempt: Int?
    var notBeforeMillis: Int64?
    var reason: DeadLetterReason?
    var detail: String?

    static func full(_ r: NotificationRecord) -> LogLine {
        LogLine(id: r.notification.id, state: r.state, atMillis: r.atMillis, position: r.position, notification: r.notification,
                attempt: r.attempts, notBeforeMillis: r.notBeforeMillis, reason: r.reason, detail: r.detail)
    }

    var encoded: [UInt8] { NotifyJSON.encode(self) }

    static let fieldNames: Set<String> = ["id", "state", "atMillis", "position", "notification", "attempt", "notBeforeMillis", "reason", "detail"]

    static func decode(_ bytes: ArraySlice<UInt8>) throws(SyncError) -> LogLine {
        do { return try NotifyJSON.decode(LogLine.self, from: bytes, fields: fieldNames, nested: ["notification": CustomerNotification.fieldNames]) } catch {
            throw SyncError(.malformed, "not a delivery-log line: \(error.message)")
        }
    }
}

/// The records of one file of the log, in file order, and the rules a line must keep.
struct RecordTable {
    private(set) var records: [String: NotificationRecord] = [:]
    private(set) var order: [String] = []

    /// Applies a line. `finalFile`: `done.jsonl`, whose lines are full final records.
    mutating func apply(_ line: LogLine, finalFile: Bool = false) throws(SyncError) {
        func bad(_ why: String) -> SyncError { SyncError(.malformed, "notification \(line.id): \(why)") }
        if let n = line.notification {
            guard let position = line.position else { throw bad("a full record without position") }
            try n.validate()
            guard n.id == line.id else { throw bad("the record's id and its notification's id \(n.id) differ") }
            let attempts = line.attempt ?? 0
            switch line.state {
            case .queued where !finalFile && attempts == 0: break
            case .retrying where !finalFile && attempts >= 1 && line.notBeforeMillis != nil: break
            case .delivered where finalFile && attempts >= 1: break
            case .deadLetter where finalFile && line.reason != nil: break
            default: throw bad("a full record may not be \(line.state.rawValue) with \(attempts) attempts here")
            }
            guard records[line.id] == nil else { throw bad("recorded twice") }
            records[line.id] = NotificationRecord(notification: n, position: position, state: line.state, attempts: attempts, atMillis: line.atMillis,
                                                  notBeforeMillis: line.notBeforeMillis, reason: line.reason, detail: line.detail)
            order.append(line.id)
            return
        }
        guard !finalFile else { throw bad("a line of done.jsonl must carry the notification") }
        guard var r = records[line.id] else { throw bad("\(line.state.rawValue) before the notification was queued") }
        guard let attempt = line.attempt else { throw bad("\(line.state.rawValue) without attempt") }
        switch (r.state, line.state) {
        case (.queued, .attempting), (.retrying, .attempting):
            guard attempt == r.attempts + 1 else { throw bad("attempt \(attempt) after \(r.attempts)") }
            r.attempts = attempt
            r.notBeforeMillis = nil
        case (.attempting, .delivered), (.attempting, .deadLetter), (.attempting, .retrying):
            guard attempt == r.attempts else { throw bad("outcome of attempt \(attempt) while attempt \(r.attempts) is open") }
            if line.state == .retrying { guard line.notBeforeMillis != nil else { throw bad("retrying without notBeforeMillis") } }
            if line.state == .deadLetter { guard line.reason != nil else { throw bad("dead-letter without reason") } }
            r.notBeforeMillis = line.notBeforeMillis
            r.reason = line.reason
        default:
            throw bad("\(line.state.rawValue) may not follow \(r.state.rawValue)")
        }
        r.state = line.state
        r.atMillis = line.atMillis
        r.detail = line.detail ?? r.detail
        records[line.id] = r
    }

    mutating func removeAll(where remove: (NotificationRecord) -> Bool) {
        order.removeAll { remove(records[$0]!) }
        records = records.filter { !remove($0.value) }
    }
}

