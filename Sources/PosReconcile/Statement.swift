import PosLedger

// The acquirer's daily statement as values (docs/nightly.md, "The statement
// format"): one row per payment the acquirer decided and per refund it paid
// out on one day, in one settlement currency, and a totals line. Modelled on
// the WeChat Pay merchant daily statement: both sides' order ids, the time,
// the status, the amount, refund ids and amounts, the fee. Reading and writing
// the CSV is PosApp's (StatementFile); this is what the file means, and the
// checks that need every row at once (duplicates, totals, date, currency).

/// A row's status column.
public enum StatementStatus: String, Sendable, CaseIterable, Codable {
    /// The payment was made: money moved to the merchant.
    case paid = "SUCCESS"
    /// The acquirer refused the payment (no money moved).
    case declined = "DECLINED"
    /// The payment code's token had expired when the payment was presented (no money moved).
    case expired = "EXPIRED"
    /// A refund paid back on an earlier payment: the refund columns are filled.
    case refund = "REFUND"

    /// The ledger's sale status this statement status means (nil for a refund row).
    public var saleStatus: SaleStatus? {
        switch self {
        case .paid: .confirmed
        case .declined: .declined
        case .expired: .expired
        case .refund: nil
        }
    }

    /// The statement status for a sale the acquirer decided (nil: not decided by the acquirer).
    public init?(_ status: SaleStatus) {
        switch status {
        case .confirmed: self = .paid
        case .declined: self = .declined
        case .expired: self = .expired
        case .awaitingCapture, .captured, .voidDuplicate: return nil
        }
    }
}

/// One row of the statement: a payment, or a refund of one.
public struct StatementRow: Sendable, Equatable {
    /// 1-based line number in the file (0 for a row not read from a file).
    public var line: Int
    /// When the acquirer decided the payment or paid the refund, Unix milliseconds.
    public var transactionMillis: Int64
    /// The acquirer's own id of the payment.
    public var acquirerOrderId: String
    /// Our id of the sale: its dot, "1:5".
    public var merchantOrderId: String
    public var merchant: String
    public var terminal: UInt32
    public var status: StatementStatus
    /// The payment's amount (on a refund row too: the order refunded).
    public var amount: Money
    /// The acquirer's id of the refund (refund rows only).
    public var acquirerRefundId: String?
    /// Our id of the refund: the ticket number, "2-10-5" (refund rows only).
    public var merchantRefundId: String?
    /// The amount paid back (refund rows only).
    public var refundAmount: Money?
    /// The acquirer's fee on this row (zero on refund rows: the simulator keeps its fee).
    public var fee: Money

    public init(line: Int, transactionMillis: Int64, acquirerOrderId: String, merchantOrderId: String, merchant: String, terminal: UInt32,
                status: StatementStatus, amount: Money, acquirerRefundId: String? = nil, merchantRefundId: String? = nil,
                refundAmount: Money? = nil, fee: Money) {
        self.line = line
        self.transactionMillis = transactionMillis
        self.acquirerOrderId = acquirerOrderId
        self.merchantOrderId = merchantOrderId
        self.merchant = merchant
        self.terminal = terminal
        self.status = status
        self.amount = amount
        self.acquirerRefundId = acquirerRefundId
        self.merchantRefundId = merchantRefundId
        self.refundAmount = refundAmount
        self.fee = fee
    }
}

/// The statement's totals line: what the acquirer says its rows add up to.
public struct StatementTotals: Sendable, Equatable {
    public var line: Int
    /// Rows of every status.
    public var rows: Int
    /// Sum of the amounts of `SUCCESS` rows, minor units.
    public var paidMinor: Int64
    /// Sum of the refund amounts of `REFUND` rows, minor units.
    public var refundedMinor: Int64
    /// Sum of every row's fee, minor units.
    public var feeMinor: Int64

    public init(line: Int, rows: Int, paidMinor: Int64, refundedMinor: Int64, feeMinor: Int64) {
        self.line = line
        self.rows = rows
        self.paidMinor = paidMinor
        self.refundedMinor = refundedMinor
        self.feeMinor = feeMinor
    }

    /// What `rows` add up to (line 0: computed, not read), and the line of the
    /// first row past which a sum would overflow Int64 (nil: none did; the sums
    /// then stop growing at Int64.max).
    public static func of(_ rows: [StatementRow], line: Int = 0) -> (totals: StatementTotals, overflowLine: Int?) {
        var t = StatementTotals(line: line, rows: rows.count, paidMinor: 0, refundedMinor: 0, feeMinor: 0)
        var overflowLine: Int?
        func add(_ sum: inout Int64, _ value: Int64, _ row: StatementRow) {
            let (s, o) = sum.addingReportingOverflow(value)
            if o { overflowLine = overflowLine ?? row.line; sum = .max } else { sum = s }
        }
        for r in rows {
            if r.status == .paid { add(&t.paidMinor, r.amount.minorUnits, r) }
            if r.status == .refund { add(&t.refundedMinor, r.refundAmount?.minorUnits ?? 0, r) }
            add(&t.feeMinor, r.fee.minorUnits, r)
        }
        return (t, overflowLine)
    }
}

/// The bounds of a statement.
public enum StatementLimits {
    /// Rows one statement may hold (one day of one acquirer account).
    public static let rowsMax = 10_000_000
    /// Bytes of one line, at most.
    public static let lineBytesMax = 1024
    /// Bytes of one id column (order or refund ids, the merchant), at most.
    public static let idBytesMax = 64
    /// Problems listed for one statement; the count of the rest is given.
    public static let problemsListedMax = 100
}

/// A statement: its date, currency, rows and totals line.
public struct Statement: Sendable, Equatable {
    public static let formatVersion = 1
    /// The day it covers, "2026-03-03" (UTC).
    public var date: String
    /// The day's first millisecond and the next day's (Unix milliseconds, UTC).
    public var dayStartMillis: Int64
    public var dayEndMillis: Int64
    /// The settlement currency: every row is in it.
    public var currency: Currency
    /// Who issued it ("simulated" for the simulator).
    public var acquirer: String
    public var rows: [StatementRow]
    public var totals: StatementTotals

    public init(date: String, dayStartMillis: Int64, dayEndMillis: Int64, currency: Currency, acquirer: String,
                rows: [StatementRow], totals: StatementTotals) {
        self.date = date
        self.dayStartMillis = dayStartMillis
        self.dayEndMillis = dayEndMillis
        self.currency = currency
        self.acquirer = acquirer
        self.rows = rows
        self.totals = totals
    }
}
