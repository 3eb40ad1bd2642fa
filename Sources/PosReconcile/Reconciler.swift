import PosLedger

/// Matches the ledger's records of a day, streamed in any order, against a
/// statement held whole (one day of one acquirer account): the statement's
/// rows are indexed by order id and refund id (positions, not copies), each
/// ledger record is matched as it comes and its row taken out of the index,
/// and the rows left at the end are the statement's alone. Memory: the
/// statement once and its index, not the ledger.
public struct Reconciler {
    let merchantFilter: String?
    /// The statement's one settlement currency: records in another are listed, not matched.
    let currency: Currency
    let rows: [StatementRow]
    var paymentRows: [String: Int] = [:]
    var refundRows: [String: Int] = [:]
    var discrepancies: [Discrepancy] = []
    var totals: [TotalsKey: SettlementTotals] = [:]
    var rowsOfOtherMerchants = 0

    struct TotalsKey: Hashable { var merchant: String; var currency: String }

    /// `statement` must have passed `StatementCheck` (no duplicate ids). Rows of
    /// merchants other than `merchant` (when given) are left out and counted.
    public init(statement: Statement, merchant: String? = nil) {
        merchantFilter = merchant
        currency = statement.currency
        rows = statement.rows
        for (i, row) in rows.enumerated() {
            if let merchant, row.merchant != merchant { rowsOfOtherMerchants += 1; continue }
            let currency = row.amount.currency.code
            totals[TotalsKey(merchant: row.merchant, currency: currency), default: .init(merchant: row.merchant, currency: currency)].addStatement(row)
            if row.status == .refund {
                refundRows[row.merchantRefundId ?? ""] = i
            } else {
                paymentRows[row.merchantOrderId] = i
            }
        }
    }

    /// A payment the ledger says was decided on the day.
    public mutating func add(_ p: LedgerPayment) {
        if let merchantFilter, p.merchant != merchantFilter { return }
        guard p.amount.currency == currency else {
            discrepancies.append(Discrepancy(kind: .otherCurrency, merchant: p.merchant, terminal: p.terminal, orderId: p.orderId, refundId: nil,
                                             currency: p.amount.currency.code,
                                             ledger: DiscrepancySide(status: p.status.rawValue, amountMinor: p.amount.minorUnits, atMillis: p.decidedMillis),
                                             statement: nil, differenceMinor: 0))
            return
        }
        let key = TotalsKey(merchant: p.merchant, currency: p.amount.currency.code)
        totals[key, default: .init(merchant: p.merchant, currency: key.currency)].ledgerPaidMinor.addClamped(p.status == .confirmed ? p.amount.minorUnits : 0)
        let ledger = DiscrepancySide(status: p.status.rawValue, amountMinor: p.amount.minorUnits, atMillis: p.decidedMillis)
        let ledgerPaid = p.status == .confirmed ? p.amount.minorUnits : 0
        guard let row = paymentRows.removeValue(forKey: p.orderId).map({ rows[$0] }) else {
            discrepancies.append(Discrepancy(kind: .ledgerOnly, merchant: p.merchant, terminal: p.terminal, orderId: p.orderId, refundId: nil,
                                             currency: key.currency, ledger: ledger, statement: nil, differenceMinor: ledgerPaid))
            return
        }
        totals[key]!.matched += 1
        let statement = Self.side(row)
        let statementPaid = row.status == .paid ? row.amount.minorUnits : 0
        let difference = ledgerPaid.clampedSubtracting(statementPaid)
        // One discrepancy per record: a status difference says more than an amount difference.
        if row.status.saleStatus != p.status {
            discrepancies.append(Discrepancy(kind: .statusMismatch, merchant: p.merchant, terminal: p.terminal, orderId: p.orderId, refundId: nil,
                                             currency: key.currency, ledger: ledger, statement: statement, differenceMinor: difference))
        } else if row.amount != p.amount {
            discrepancies.append(Discrepancy(kind: .amountMismatch, merchant: p.merchant, terminal: p.terminal, orderId: p.orderId, refundId: nil,
                                             currency: key.currency, ledger: ledger, statement: statement, differenceMinor: difference))
        }
    }

    /// A refund the ledger says was completed on the day.
    public mutating func add(_ r: LedgerRefund) {
        if let merchantFilter, r.merchant != merchantFilter { return }
        guard r.amount.currency == currency else {
            discrepancies.append(Discrepancy(kind: .otherCurrency, merchant: r.merchant, terminal: r.terminal, orderId: r.orderId, refundId: r.refundId,
                                             currency: r.amount.currency.code,
                                             ledger: DiscrepancySide(status: "completed", amountMinor: r.saleAmount.minorUnits, refundAmountMinor: r.amount.minorUnits,
                                                                     atMillis: r.completedMillis),
                                             statement: nil, differenceMinor: 0))
            return
        }
        let key = TotalsKey(merchant: r.merchant, currency: r.amount.currency.code)
        totals[key, default: .init(merchant: r.merchant, currency: key.currency)].ledgerRefundedMinor.addClamped(r.amount.minorUnits)
        let ledger = DiscrepancySide(status: "completed", amountMinor: r.saleAmount.minorUnits, refundAmountMinor: r.amount.minorUnits, atMillis: r.completedMillis)
        guard let row = refundRows.removeValue(forKey: r.refundId).map({ rows[$0] }) else {
            discrepancies.append(Discrepancy(kind: .refundLedgerOnly, merchant: r.merchant, terminal: r.terminal, orderId: r.orderId, refundId: r.refundId,
                                             currency: key.currency, ledger: ledger, statement: nil, differenceMinor: -r.amount.minorUnits))
            return
        }
        totals[key]!.matched += 1
        let statementRefund = row.refundAmount?.minorUnits ?? 0
        if row.refundAmount != r.amount {
            discrepancies.append(Discrepancy(kind: .refundAmountMismatch, merchant: r.merchant, terminal: r.terminal, orderId: r.orderId, refundId: r.refundId,
                                             currency: key.currency, ledger: ledger, statement: Self.side(row),
                                             differenceMinor: statementRefund.clampedSubtracting(r.amount.minorUnits)))
        }
    }

    /// The discrepancies and totals, once every ledger record was added.
    public mutating func finish() -> Reconciliation {
        for row in paymentRows.values.sorted().map({ rows[$0] }) {
            discrepancies.append(Discrepancy(kind: .statementOnly, merchant: row.merchant, terminal: row.terminal, orderId: row.merchantOrderId, refundId: nil,
                                             currency: row.amount.currency.code, ledger: nil, statement: Self.side(row),
                                             differenceMinor: row.status == .paid ? -row.amount.minorUnits : 0))
        }
        for row in refundRows.values.sorted().map({ rows[$0] }) {
            discrepancies.append(Discrepancy(kind: .refundStatementOnly, merchant: row.merchant, terminal: row.terminal, orderId: row.merchantOrderId,
                                             refundId: row.merchantRefundId, currency: row.amount.currency.code, ledger: nil, statement: Self.side(row),
                                             differenceMinor: row.refundAmount?.minorUnits ?? 0))
        }
        paymentRows = [:]
        refundRows = [:]
        let sortedTotals = totals.values.sorted { ($0.merchant, $0.currency) < ($1.merchant, $1.currency) }
        for t in sortedTotals where t.differenceMinor != 0 {
            discrepancies.append(Discrepancy(kind: t.differenceMinor > 0 ? .totalsLong : .totalsShort, merchant: t.merchant, terminal: nil, orderId: nil,
                                             refundId: nil, currency: t.currency,
                                             ledger: DiscrepancySide(amountMinor: t.ledgerPaidMinor, refundAmountMinor: t.ledgerRefundedMinor, netMinor: t.ledgerNetMinor),
                                             statement: DiscrepancySide(amountMinor: t.statementPaidMinor, refundAmountMinor: t.statementRefundedMinor,
                                                                        netMinor: t.statementNetMinor),
                                             differenceMinor: t.differenceMinor))
        }
        discrepancies.sort(by: Self.order)
        return Reconciliation(discrepancies: discrepancies, totals: sortedTotals, rowsOfOtherMerchants: rowsOfOtherMerchants)
    }

    static func side(_ row: StatementRow) -> DiscrepancySide {
        DiscrepancySide(status: row.status.rawValue, amountMinor: row.amount.minorUnits, refundAmountMinor: row.refundAmount?.minorUnits,
                        atMillis: row.transactionMillis, line: row.line, acquirerId: row.acquirerRefundId ?? row.acquirerOrderId)
    }

    /// Merchant; its records by order id, refund id and kind; its totals last.
    static func order(_ a: Discrepancy, _ b: Discrepancy) -> Bool {
        if a.merchant != b.merchant { return a.merchant < b.merchant }
        let aTotals = a.orderId == nil, bTotals = b.orderId == nil
        if aTotals != bTotals { return bTotals }
        if a.orderId != b.orderId { return OrderID.precedes(a.orderId ?? "", b.orderId ?? "") }
        if a.refundId != b.refundId { return (a.refundId ?? "") < (b.refundId ?? "") }
        if a.currency != b.currency { return a.currency < b.currency }
        return a.kind.rawValue < b.kind.rawValue
    }
}

extension SettlementTotals {
    mutating func addStatement(_ row: StatementRow) {
        switch row.status {
        case .paid: statementPaidMinor.addClamped(row.amount.minorUnits)
        case .refund: statementRefundedMinor.addClamped(row.refundAmount?.minorUnits ?? 0)
        case .declined, .expired: break
        }
        statementFeeMinor.addClamped(row.fee.minorUnits)
    }
}

extension Int64 {
    mutating func addClamped(_ other: Int64) { self = clampedAdding(other) }
}

/// Order ids ("1:5") in sale order (terminal, then sequence number); any other text after them, bytewise.
enum OrderID {
    static func precedes(_ a: String, _ b: String) -> Bool {
        switch (parse(a), parse(b)) {
        case let (x?, y?): return x != y ? x < y : a < b
        case (.some, nil): return true
        case (nil, .some): return false
        case (nil, nil): return a < b
        }
    }

    static func parse(_ s: String) -> Dot? {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let r = UInt32(parts[0]), let q = UInt64(parts[1]), let replica = try? ReplicaId(r) else { return nil }
        return try? Dot(replica: replica, seq: q)
    }
}
