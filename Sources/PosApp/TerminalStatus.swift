import PosLedger
import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire

/// What a seller wants to see at a glance: the unsynced queue and its amount,
/// how long offline capture may go on, how long before the oldest unsynced
/// capture expires at the acquirer, limits used, tickets by state, conflicts.
public struct TerminalStatus: Codable, Sendable, Equatable {
    public var terminal: UInt32
    public var merchant: String
    public var now: String
    public var currency: String
    public var unsyncedEvents: Int
    public var unsyncedCaptures: Int
    public var unsyncedAmount: String
    public var unsyncedLimit: String
    public var perPaymentLimit: String
    /// The latest wall time this terminal has seen (set-up, last sync, its own
    /// newest event); when the clock is behind it, time offline counts to it.
    public var latestWallTimeSeen: String
    public var clockBehind: Bool
    public var lastSync: String?
    public var offlineFor: String
    /// Never negative.
    public var offlineForMillis: Int64
    public var offlineHoursMax: Int64
    /// Offline capture time left before the terminal refuses captures.
    public var offlineCaptureTimeLeft: String
    public var offlineCaptureTimeLeftMillis: Int64
    /// Time left before the oldest unsynced capture is past the acquirer's window.
    public var oldestUnsyncedCapture: String?
    public var captureExpiresIn: String?
    public var captureExpiresInMillis: Int64?
    public var acquirerWindowHours: Int64
    public var ticketsByStatus: [String: Int]
    public var conflicts: Int
    public var conflictsByKind: [String: Int]
    /// Set when this command's open could not use the terminal's checkpoint (damaged, or not matching
    /// the journals) and folded the journals instead; absent otherwise (JSON key omitted).
    public var checkpointNote: String? = nil

    public var text: String {
        var lines = [
            "terminal \(terminal) of merchant \(TextOutput.plain(merchant)), now \(now)"
                + (clockBehind ? " (behind \(latestWallTimeSeen), the latest time this terminal has seen: time offline counts to it)" : ""),
            "unsynced: \(unsyncedEvents) events, \(unsyncedCaptures) captures, \(unsyncedAmount) \(currency) of \(unsyncedLimit) \(currency) allowed offline (per payment \(perPaymentLimit))",
            "last sync: \(lastSync ?? "never"); offline for \(offlineFor), capture allowed for \(offlineCaptureTimeLeft) more (limit \(offlineHoursMax) h)",
        ]
        if let oldest = oldestUnsyncedCapture, let left = captureExpiresIn {
            lines.append("oldest unsynced capture \(oldest): expires at the acquirer in \(left) (window \(acquirerWindowHours) h)")
        } else {
            lines.append("no unsynced captures")
        }
        let tickets = ticketsByStatus.keys.sorted().map { "\($0) \(ticketsByStatus[$0]!)" }
        lines.append("tickets: " + (tickets.isEmpty ? "none" : tickets.joined(separator: ", ")))
        let kinds = conflictsByKind.keys.sorted().map { "\($0) \(conflictsByKind[$0]!)" }
        lines.append("conflicts: \(conflicts)" + (kinds.isEmpty ? "" : " (" + kinds.joined(separator: ", ") + ")"))
        if let checkpointNote { lines.append("checkpoint: " + checkpointNote) }
        return lines.joined(separator: "\n")
    }
}

extension TerminalDesk {
    public func status(nowMillis: Int64, acquirerWindowMillis: Int64 = SimulatedAcquirer.expiryHoursDefault * WallClock.hourMillis) throws(AppError) -> TerminalStatus {
        // A status open (`Focus.status`) that read the checkpoint has the counts over the whole state; any
        // other full open counts its state. Another focused open holds part of the state only.
        let counts = replica.statusCounts ?? LedgerCounts(replica.state)
        precondition(replica.focusLoaded == nil || replica.statusCounts != nil,
                     "status counts tickets and conflicts over the whole state: open the terminal without a focus or with .status")
        let unsynced = try unsyncedCaptures()
        let since = lastSyncOrSetupMillis
        let oldest = unsynced.captures.map { Int64($0.hlc.millis) }.min()
        // A clock behind what the terminal has seen counts as the latest time seen.
        let latest = try latestWallMillisSeen()
        let countedTo = max(nowMillis, latest)
        let left = limits.offlineMillisLeft(lastSyncMillis: since, nowMillis: countedTo)
        return TerminalStatus(
            terminal: replica.terminal.rawValue, merchant: replica.enrollment.merchant, now: WallClock.format(nowMillis),
            currency: currency.code, unsyncedEvents: unsynced.events, unsyncedCaptures: unsynced.captures.count,
            unsyncedAmount: AmountFormat.format(unsynced.total),
            unsyncedLimit: AmountFormat.format(minorUnits: limits.unsyncedTotalMinorMax, currency: currency),
            perPaymentLimit: AmountFormat.format(minorUnits: limits.perPaymentMinorMax, currency: currency),
            latestWallTimeSeen: WallClock.format(latest), clockBehind: nowMillis < latest,
            lastSync: replica.lastSyncMillis.map(WallClock.format), offlineFor: WallClock.duration(countedTo - since),
            offlineForMillis: max(0, countedTo - since),
            offlineHoursMax: limits.offlineHoursMax, offlineCaptureTimeLeft: WallClock.duration(left),
            offlineCaptureTimeLeftMillis: left, oldestUnsyncedCapture: oldest.map(WallClock.format),
            captureExpiresIn: oldest.map { WallClock.duration($0 + acquirerWindowMillis - countedTo) },
            captureExpiresInMillis: oldest.map { max(0, $0 + acquirerWindowMillis - countedTo) },
            acquirerWindowHours: acquirerWindowMillis / WallClock.hourMillis,
            ticketsByStatus: counts.ticketsByStatus, conflicts: counts.conflictTotal, conflictsByKind: counts.conflictsByKind,
            checkpointNote: replica.openReport.checkpointRefused ? replica.openReport.note.map(TextOutput.plain) : nil)
    }
}
