import PosLedger

// Reconciliation of the ledger's day against the acquirer's statement
// (docs/nightly.md, "Reconciliation"): records are matched by order id (the
// sale's dot) and refund id (the ticket number), never by amount; every
// difference is a discrepancy carrying both sides' values; then the net
// settled money per merchant and currency is compared.

/// The kinds of discrepancy, in the terms finance teams use.
public enum DiscrepancyKind: String, Sendable, Codable, CaseIterable {
    /// A payment the ledger has and the statement lacks (long).
    case ledgerOnly = "ledger-only"
    /// A payment the statement has and the ledger lacks (short).
    case statementOnly = "statement-only"
    /// The same order with different amounts.
    case amountMismatch = "amount-mismatch"
    /// The same order with different outcomes (e.g. ledger expired, statement paid).
    case statusMismatch = "status-mismatch"
    /// A refund completed in the ledger and absent from the statement.
    case refundLedgerOnly = "refund-ledger-only"
    /// A refund on the statement that the ledger has not completed.
    case refundStatementOnly = "refund-statement-only"
    /// The same refund with different amounts.
    case refundAmountMismatch = "refund-amount-mismatch"
    /// A merchant's net settled money is more in the ledger than on the statement.
    case totalsLong = "totals-long"
    /// A merchant's net settled money is less in the ledger than on the statement.
    case totalsShort = "totals-short"
    /// A ledger record (payment or refund) in another currency than the statement's one settlement
    /// currency: not matched against it, nor counted in its totals (reconcile it against the statement
    /// of that currency). Listed so that no record of the day goes unreconciled silently.
    case otherCurrency = "other-currency"
}

/// One side's values of a discrepancy.
public struct DiscrepancySide: Sendable, Equatable, Codable {
    /// The payment's outcome (ledger: confirmed / declined / expired; statement: SUCCESS / DECLINED / EXPIRED / REFUND).
    public var status: String?
    /// The payment's amount (totals: paid), minor units.
    public var amountMinor: Int64?
    /// The refund's amount (totals: refunded), minor units.
    public var refundAmountMinor: Int64?
    /// Totals: paid minus refunded, minor units.
    public var netMinor: Int64?
    /// When it happened (ledger: central's event; statement: the row's time), Unix milliseconds.
    public var atMillis: Int64?
    /// The statement's line.
    public var line: Int?
    /// The acquirer's id of the payment or refund.
    public var acquirerId: String?

    public init(status: String? = nil, amountMinor: Int64? = nil, refundAmountMinor: Int64? = nil, netMinor: Int64? = nil,
                atMillis: Int64? = nil, line: Int? = nil, acquirerId: String? = nil) {
        self.status = status
        self.amountMinor = amountMinor
        self.refundAmountMinor = refundAmountMinor
        self.netMinor = netMinor
        self.atMillis = atMillis
        self.line = line
        self.acquirerId = acquirerId
    }
}

public struct Discrepancy: Sendable, Equatable, Codable {
    public var kind: DiscrepancyKind
    public var merchant: String
    /// The terminal of the sale (nil for totals).
    public var terminal: UInt32?
    /// The sale ("1:5"; nil for totals).
    public var orderId: String?
    /// The refund's ticket number (refund kinds).
    public var refundId: String?
    public var currency: String
    /// nil: the ledger has no such record.
    public var ledger: DiscrepancySide?
    /// nil: the statement has no such record.
    public var statement: DiscrepancySide?
    /// The settled money this difference accounts for: the ledger's minus the
    /// statement's (a payment counts when paid, a refund negatively), minor units.
    /// A merchant's per-record differences add up to its totals' difference.
    public var differenceMinor: Int64
}

/// One merchant's settled money for the day in one currency, on both sides.
public struct SettlementTotals: Sendable, Equatable, Codable {
    public var merchant: String
    public var currency: String
    public var ledgerPaidMinor: Int64 = 0
    public var ledgerRefundedMinor: Int64 = 0
    public var statementPaidMinor: Int64 = 0
    public var statementRefundedMinor: Int64 = 0
    public var statementFeeMinor: Int64 = 0
    /// Records found on both sides (payments and refunds), whether they agree or not.
    public var matched = 0
    public var ledgerNetMinor: Int64 { ledgerPaidMinor.clampedSubtracting(ledgerRefundedMinor) }
    public var statementNetMinor: Int64 { statementPaidMinor.clampedSubtracting(statementRefundedMinor) }
    /// Ledger net minus statement net: positive long, negative short.
    public var differenceMinor: Int64 { ledgerNetMinor.clampedSubtracting(statementNetMinor) }

    enum CodingKeys: String, CodingKey {
        case merchant, currency, ledgerPaidMinor, ledgerRefundedMinor, statementPaidMinor, statementRefundedMinor, statementFeeMinor, matched
        case ledgerNetMinor, statementNetMinor, differenceMinor
    }

    public init(merchant: String, currency: String) {
        self.merchant = merchant
        self.currency = currency
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        merchant = try c.decode(String.self, forKey: .merchant)
        currency = try c.decode(String.self, forKey: .currency)
        ledgerPaidMinor = try c.decode(Int64.self, forKey: .ledgerPaidMinor)
        ledgerRefundedMinor = try c.decode(Int64.self, forKey: .ledgerRefundedMinor)
        statementPaidMinor = try c.decode(Int64.self, forKey: .statementPaidMinor)
        statementRefundedMinor = try c.decode(Int64.self, forKey: .statementRefundedMinor)
        statementFeeMinor = try c.decode(Int64.self, forKey: .statementFeeMinor)
        matched = try c.decode(Int.self, forKey: .matched)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(merchant, forKey: .merchant)
        try c.encode(currency, forKey: .currency)
        try c.encode(ledgerPaidMinor, forKey: .ledgerPaidMinor)
        try c.encode(ledgerRefundedMinor, forKey: .ledgerRefundedMinor)
        try c.encode(statementPaidMinor, forKey: .statementPaidMinor)
        try c.encode(statementRefundedMinor, forKey: .statementRefundedMinor)
        try c.encode(statementFeeMinor, forKey: .statementFeeMinor)
        try c.encode(matched, forKey: .matched)
        try c.encode(ledgerNetMinor, forKey: .ledgerNetMinor)
        try c.encode(statementNetMinor, forKey: .statementNetMinor)
        try c.encode(differenceMinor, forKey: .differenceMinor)
    }
}

/// What reconciling a day gave.
public struct Reconciliation: Sendable, Equatable, Codable {
    /// Sorted by merchant, then order id, refund id and kind; totals last per merchant.
    public var discrepancies: [Discrepancy]
    /// Sorted by merchant and currency.
    public var totals: [SettlementTotals]
    /// Statement rows of merchants left out by the merchant filter.
    public var rowsOfOtherMerchants: Int
}

extension Int64 {
    /// Sum that stops at the bounds instead of trapping (no real day comes near them).
    public func clampedAdding(_ other: Int64) -> Int64 {
        let (s, o) = addingReportingOverflow(other)
        return o ? (other > 0 ? .max : .min) : s
    }
    public func clampedSubtracting(_ other: Int64) -> Int64 {
        let (s, o) = subtractingReportingOverflow(other)
        return o ? (other < 0 ? .max : .min) : s
    }
}
