import PosLedger

/// Something wrong with a statement file: where (line, field) and what. A
/// statement with any problem is not reconciled at all (a partial statement
/// would turn every row it lost into a false discrepancy); the report lists
/// every problem instead.
public struct StatementProblem: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// A line that is not a statement line: wrong number of columns, a value that does not parse.
        case malformed
        /// A row in another currency than the statement's.
        case wrongCurrency = "wrong-currency"
        /// Two rows with the same order id (or refund id).
        case duplicateOrderId = "duplicate-order-id"
        /// The totals line does not add up to the rows (or is missing).
        case totalsMismatch = "totals-mismatch"
        /// A statement (or a row) for another day than the one reconciled.
        case wrongDate = "wrong-date"
    }
    public var kind: Kind
    /// 1-based line number (0: the file as a whole).
    public var line: Int
    /// The column concerned, by its header name (nil: the whole line).
    public var field: String?
    public var message: String

    public init(_ kind: Kind, line: Int, field: String?, _ message: String) {
        self.kind = kind
        self.line = line
        self.field = field
        self.message = message
    }

    /// "line 7, field amount_minor: malformed: ..." (the caller prefixes the file).
    public var description: String {
        (line > 0 ? "line \(line)" : "file") + (field.map { ", field \($0)" } ?? "") + ": \(kind.rawValue): \(message)"
    }
}

/// The checks of a statement that need every row at once.
public enum StatementCheck {
    /// Every problem of `statement` when reconciled for the day `date` (at most
    /// `StatementLimits.problemsListedMax` are kept by the caller; all are found).
    public static func problems(_ statement: Statement, expectedDate date: String, checkTotals: Bool = true) -> [StatementProblem] {
        var out: [StatementProblem] = []
        if statement.date != date {
            out.append(.init(.wrongDate, line: StatementLayout.dateLine, field: "statement_date",
                             "the statement is for \(statement.date), the night's date is \(date)"))
        }
        var paymentLines: [String: Int] = [:], acquirerLines: [String: Int] = [:]
        var refundLines: [String: Int] = [:], acquirerRefundLines: [String: Int] = [:]
        func duplicate(_ seen: inout [String: Int], _ id: String, _ row: StatementRow, field: String) {
            if let first = seen[id] {
                out.append(.init(.duplicateOrderId, line: row.line, field: field, "\(id) is already on line \(first)"))
            } else {
                seen[id] = row.line
            }
        }
        for row in statement.rows {
            for (field, money) in [("currency", row.amount), ("fee_minor", row.fee)] + (row.refundAmount.map { [("refund_amount_minor", $0)] } ?? [])
            where money.currency != statement.currency {
                out.append(.init(.wrongCurrency, line: row.line, field: field, "\(money.currency), the statement's currency is \(statement.currency)"))
                break
            }
            if row.transactionMillis < statement.dayStartMillis || row.transactionMillis >= statement.dayEndMillis {
                out.append(.init(.wrongDate, line: row.line, field: "transaction_time", "not on the statement's date \(statement.date)"))
            }
            if row.status == .refund {
                if let id = row.merchantRefundId { duplicate(&refundLines, id, row, field: "merchant_refund_id") }
                if let id = row.acquirerRefundId { duplicate(&acquirerRefundLines, id, row, field: "acquirer_refund_id") }
                if let r = row.refundAmount, r.minorUnits > row.amount.minorUnits {
                    out.append(.init(.malformed, line: row.line, field: "refund_amount_minor",
                                     "refund \(r.minorUnits) is above the order amount \(row.amount.minorUnits)"))
                }
            } else {
                duplicate(&paymentLines, row.merchantOrderId, row, field: "merchant_order_id")
                duplicate(&acquirerLines, row.acquirerOrderId, row, field: "acquirer_order_id")
            }
        }
        guard checkTotals else { return out }
        let (sum, overflowLine) = StatementTotals.of(statement.rows)
        if let overflowLine {
            out.append(.init(.totalsMismatch, line: overflowLine, field: nil, "the rows' amounts add up past \(Int64.max) minor units"))
        }
        let stated = statement.totals
        for (field, said, found) in [("total_rows", Int64(stated.rows), Int64(sum.rows)), ("total_paid_minor", stated.paidMinor, sum.paidMinor),
                                     ("total_refund_minor", stated.refundedMinor, sum.refundedMinor), ("total_fee_minor", stated.feeMinor, sum.feeMinor)]
        where said != found {
            out.append(.init(.totalsMismatch, line: stated.line, field: field, "the totals line says \(said), the rows add up to \(found)"))
        }
        return out
    }
}

/// Where things are in a statement file (docs/nightly.md): what errors name.
public enum StatementLayout {
    /// Line 1: the names of the preamble's columns.
    public static let preambleHeader = ["statement_version", "statement_date", "currency", "acquirer"]
    /// Line 2: their values.
    public static let dateLine = 2
    /// The first row's line.
    public static let firstRowLine = 4
    /// Line 3: the names of the rows' columns; rows follow.
    public static let rowHeader = ["transaction_time", "acquirer_order_id", "merchant_order_id", "merchant", "terminal", "status", "currency",
                                   "amount_minor", "acquirer_refund_id", "merchant_refund_id", "refund_amount_minor", "fee_minor"]
    /// After the rows: the names of the totals' columns, then their values (the last line).
    public static let totalsHeader = ["total_rows", "total_paid_minor", "total_refund_minor", "total_fee_minor"]
}
