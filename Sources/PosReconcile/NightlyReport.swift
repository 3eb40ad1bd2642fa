import PosLedger

// The nightly report's model (docs/nightly.md, "The report"): one value the
// JSON, the CSV files and the HTML page are all rendered from. Keys are
// stable; every list is sorted; amounts are integer minor units with their
// currency; times are Unix milliseconds. Nothing in it depends on when the
// job ran: ages count to the end of the report's date.

public struct NightlyReport: Sendable, Equatable, Codable {
    public static let formatName = "possync-nightly-report-1"
    public var format = NightlyReport.formatName
    /// The night's date, "2026-03-03" (UTC).
    public var date: String
    /// The end of the date: silence and sync lag count to it.
    public var asOfMillis: Int64
    /// Central's id, hex.
    public var central: String
    /// The merchant the run was limited to (nil: every merchant).
    public var merchantFilter: String?
    /// A terminal with no event for more than this many days is silent.
    public var silentDaysMin: Int
    /// The night's bundles: imported ones, then rejected ones, each by file name.
    public var bundles: [BundleEntry]
    /// The statement and its reconciliation (nil: no statement was given).
    public var statement: StatementSection?
    public var merchants: [MerchantSection]
    /// Conflict records naming only central's events (no terminal to file them under).
    public var centralConflicts: [RuleCount]
    /// Central's loss log, every record.
    public var losses: [LossEntry]
    public var summary: Summary

    public init(date: String, asOfMillis: Int64, central: String, merchantFilter: String?, silentDaysMin: Int, bundles: [BundleEntry],
                statement: StatementSection?, merchants: [MerchantSection], centralConflicts: [RuleCount], losses: [LossEntry]) {
        self.date = date
        self.asOfMillis = asOfMillis
        self.central = central
        self.merchantFilter = merchantFilter
        self.silentDaysMin = silentDaysMin
        self.bundles = bundles
        self.statement = statement
        self.merchants = merchants
        self.centralConflicts = centralConflicts
        self.losses = losses
        summary = Summary()
        summary = Summary(of: self)
    }
}

/// A count and the money it adds up to, in one currency.
public struct Tally: Sendable, Equatable, Codable {
    public var count = 0
    public var amountMinor: Int64 = 0
    public init() {}
    public mutating func add(_ minor: Int64) {
        count += 1
        amountMinor = amountMinor.clampedAdding(minor)
    }
}

/// Captures by outcome.
public struct CaptureFigures: Sendable, Equatable, Codable {
    public var captured = Tally(), confirmed = Tally(), declined = Tally(), expired = Tally(), voidDuplicate = Tally()
    /// Outcomes not listed above (a capture not yet known: an outcome arrived first).
    public var awaitingCapture = Tally()
}

/// Refund tickets by status (exchanges move no money: counted apart).
public struct RefundFigures: Sendable, Equatable, Codable {
    public var requested = Tally(), approved = Tally(), rejected = Tally(), escalated = Tally(), cancelled = Tally(), completed = Tally()
    public var held = Tally(), pendingSale = Tally()
}

/// One currency's figures of a merchant or terminal.
public struct CurrencyFigures: Sendable, Equatable, Codable {
    public var currency: String
    public var captures = CaptureFigures()
    public var refunds = RefundFigures()
    /// Exchange tickets, of any status.
    public var exchanges = 0
    /// Confirmed captures minus completed refunds, minor units.
    public var netMinor: Int64 { captures.confirmed.amountMinor.clampedSubtracting(refunds.completed.amountMinor) }

    public init(currency: String) { self.currency = currency }

    enum CodingKeys: String, CodingKey { case currency, captures, refunds, exchanges, netMinor }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        currency = try c.decode(String.self, forKey: .currency)
        captures = try c.decode(CaptureFigures.self, forKey: .captures)
        refunds = try c.decode(RefundFigures.self, forKey: .refunds)
        exchanges = try c.decode(Int.self, forKey: .exchanges)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(currency, forKey: .currency)
        try c.encode(captures, forKey: .captures)
        try c.encode(refunds, forKey: .refunds)
        try c.encode(exchanges, forKey: .exchanges)
        try c.encode(netMinor, forKey: .netMinor)
    }
}

/// Conflict records of one rule.
public struct RuleCount: Sendable, Equatable, Codable {
    public var kind: String
    public var rule: String
    public var count: Int
}

/// A ticket held for review, waiting for a decision.
public struct HeldTicket: Sendable, Equatable, Codable {
    public var ticket: String
    public var sale: String
    /// The terminal that made the sale.
    public var terminal: UInt32
    /// dispute, over-refund or sale-not-paid.
    public var reason: String
    public var currency: String
    public var amountMinor: Int64
    public var requestedMillis: Int64
}

/// Sequence numbers of a terminal whose events central will never have.
public struct SequenceGap: Sendable, Equatable, Codable {
    public var from: UInt64
    public var through: UInt64
    /// void (the terminal lost them before central held them, `terminal recover`), lost (central lost them, the terminal could not re-push),
    /// or awaiting (central lost them and waits for the terminal's re-push).
    public var kind: String
    /// The loss record that says so.
    public var lossId: Int
}

public struct TerminalSection: Sendable, Equatable, Codable {
    public var terminal: UInt32
    public var currencies: [CurrencyFigures]
    public var conflicts: [RuleCount]
    /// Central holds this terminal's events 1...this.
    public var acknowledgedThrough: UInt64
    /// The newest event of the terminal central holds (a capture, a ticket or a decision), by its HLC time.
    public var lastEventMillis: Int64?
    /// From that event to the end of the date (nil: no event; 0 when later than it).
    public var syncLagMillis: Int64?
    /// No event for more than `silentDaysMin` days (or none at all).
    public var silent: Bool
    /// Its newest event is dated past the end of the report's date by more than the clock-skew bound: its clock runs ahead.
    public var clockAhead: Bool
    /// Central found its clock off by more than the skew bound at its last sync, and kept the reading.
    public var clockSkewedAtSync: Bool
    /// Its clock minus central's at that sync, milliseconds (nil when not off).
    public var clockOffsetMillis: Int64?
    public var sequenceGaps: [SequenceGap]
}

public struct MerchantSection: Sendable, Equatable, Codable {
    public var merchant: String
    public var currencies: [CurrencyFigures]
    public var terminals: [TerminalSection]
    public var conflicts: [RuleCount]
    /// Held tickets, oldest request first (at most `ReportLimits.heldTicketsListedMax`).
    public var heldTickets: [HeldTicket]
    public var heldTicketsNotListed: Int
    /// The statement's discrepancies of this merchant (records, then its totals).
    public var discrepancies: [Discrepancy]
}

/// One bundle of the night's inbox and what became of it.
public struct BundleEntry: Sendable, Equatable, Codable {
    public var file: String
    /// imported or rejected.
    public var outcome: String
    /// Why it was rejected: corrupted, truncated, duplicate, other-central, unknown-terminal, ... (nil when imported).
    public var reason: String?
    public var detail: String?
    public var terminal: UInt32?
    public var merchant: String?
    public var firstSequence: UInt64?
    public var lastSequence: UInt64?
    /// The SHA-256 the bundle carries (its last 32 bytes), hex; nil for a file too short to carry one.
    public var sha256: String?

    public init(file: String, outcome: String, reason: String? = nil, detail: String? = nil, terminal: UInt32? = nil, merchant: String? = nil,
                firstSequence: UInt64? = nil, lastSequence: UInt64? = nil, sha256: String?) {
        self.file = file
        self.outcome = outcome
        self.reason = reason
        self.detail = detail
        self.terminal = terminal
        self.merchant = merchant
        self.firstSequence = firstSequence
        self.lastSequence = lastSequence
        self.sha256 = sha256
    }
}

/// The statement given, and what reconciling it found.
public struct StatementSection: Sendable, Equatable, Codable {
    /// The file's name (not its path).
    public var file: String
    /// reconciled, or refused (problems listed; nothing reconciled).
    public var status: String
    public var rows: Int?
    public var problems: [StatementProblem]
    public var problemsNotListed: Int
    public var totals: [SettlementTotals]
    public var discrepancies: Int
    public var rowsOfOtherMerchants: Int

    public init(file: String, status: String, rows: Int?, problems: [StatementProblem], problemsNotListed: Int, totals: [SettlementTotals],
                discrepancies: Int, rowsOfOtherMerchants: Int) {
        self.file = file
        self.status = status
        self.rows = rows
        self.problems = problems
        self.problemsNotListed = problemsNotListed
        self.totals = totals
        self.discrepancies = discrepancies
        self.rowsOfOtherMerchants = rowsOfOtherMerchants
    }
}

/// A record of central's loss log.
public struct LossEntry: Sendable, Equatable, Codable {
    public var id: Int
    public var kind: String
    public var terminal: UInt32?
    public var from: UInt64?
    public var through: UInt64?
    public var positionsFrom: UInt64?
    public var recordedMillis: Int64
    /// A terminal-behind record a re-push resolved (every other kind: true).
    public var resolved: Bool
    public var note: String

    public init(id: Int, kind: String, terminal: UInt32?, from: UInt64?, through: UInt64?, positionsFrom: UInt64?, recordedMillis: Int64,
                resolved: Bool, note: String) {
        self.id = id
        self.kind = kind
        self.terminal = terminal
        self.from = from
        self.through = through
        self.positionsFrom = positionsFrom
        self.recordedMillis = recordedMillis
        self.resolved = resolved
        self.note = note
    }
}

/// The report in a few numbers: what the summary line says and what decides the exit code.
public struct Summary: Sendable, Equatable, Codable {
    public var bundlesImported = 0
    public var bundlesRejected = 0
    public var terminals = 0
    public var silentTerminals = 0
    public var clockAheadTerminals = 0
    public var terminalsWithGaps = 0
    public var heldTickets = 0
    public var conflicts = 0
    /// none, reconciled or refused.
    public var statement = "none"
    public var discrepancies = 0
    public var unresolvedLosses = 0
    /// Something the operators must look at: a rejected bundle, a refused statement, a discrepancy or an unresolved loss.
    public var attention = false

    public init() {}

    public init(of r: NightlyReport) {
        bundlesImported = r.bundles.filter { $0.outcome == BundleOutcome.imported }.count
        bundlesRejected = r.bundles.count - bundlesImported
        let terminals = r.merchants.flatMap(\.terminals)
        self.terminals = terminals.count
        silentTerminals = terminals.filter(\.silent).count
        clockAheadTerminals = terminals.filter { $0.clockAhead || $0.clockSkewedAtSync }.count
        terminalsWithGaps = terminals.filter { !$0.sequenceGaps.isEmpty }.count
        heldTickets = r.merchants.map { $0.heldTickets.count + $0.heldTicketsNotListed }.reduce(0, +)
        conflicts = (r.merchants.flatMap(\.conflicts) + r.centralConflicts).map(\.count).reduce(0, +)
        statement = r.statement?.status ?? "none"
        discrepancies = r.statement?.discrepancies ?? 0
        unresolvedLosses = r.losses.filter { !$0.resolved }.count
        attention = bundlesRejected > 0 || statement == StatementStatusName.refused || discrepancies > 0 || unresolvedLosses > 0
    }
}

public enum BundleOutcome {
    public static let imported = "imported"
    public static let rejected = "rejected"
}

public enum StatementStatusName {
    public static let reconciled = "reconciled"
    public static let refused = "refused"
}

/// The report's bounds.
public enum ReportLimits {
    /// Held tickets listed per merchant (the oldest); the rest are counted.
    public static let heldTicketsListedMax = 1_000
}
