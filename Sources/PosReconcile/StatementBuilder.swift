import PosLedger

/// A deliberate difference the simulated acquirer can put into its
/// statement, so every kind of discrepancy can be shown offline: each record
/// kind of discrepancy names the change that makes it (the totals follow).
public typealias StatementInjection = DiscrepancyKind

extension DiscrepancyKind {
    /// The kinds a statement can be made to show (one row each): every kind but the totals.
    public static let injectable: [DiscrepancyKind] = allCases.filter { $0 != .totalsLong && $0 != .totalsShort && $0 != .otherCurrency }
}

/// Builds the statement an acquirer that decided the ledger's payments would
/// write: one row per payment decided and per refund completed on the day, in
/// the statement's currency, with the acquirer's own ids and a fee.
public struct StatementBuilder {
    /// The simulated acquirer's fee on a paid order, in basis points (0.6 %).
    public static let feeBasisPoints: Int64 = 60
    static let basisPointsPerUnit: Int64 = 10_000
    /// An injected amount difference, minor units.
    public static let injectedDifferenceMinor: Int64 = 100
    /// An injected row's amount (an order the ledger never had), minor units.
    public static let injectedAmountMinor: Int64 = 8_800

    public let date: String
    public let day: Range<Int64>
    public let currency: Currency
    public let acquirer: String
    var rows: [StatementRow] = []

    public init(date: String, day: Range<Int64>, currency: Currency, acquirer: String) {
        self.date = date
        self.day = day
        self.currency = currency
        self.acquirer = acquirer
    }

    /// The fee on a paid amount, rounded half up.
    public static func fee(_ amountMinor: Int64) -> Int64 {
        (amountMinor * feeBasisPoints + basisPointsPerUnit / 2) / basisPointsPerUnit
    }

    /// Adds a payment the acquirer decided (left out when in another currency).
    public mutating func add(_ p: LedgerPayment) {
        guard p.amount.currency == currency, let status = StatementStatus(p.status) else { return }
        rows.append(StatementRow(line: 0, transactionMillis: p.decidedMillis, acquirerOrderId: Self.acquirerOrderID(p.orderId),
                                 merchantOrderId: p.orderId, merchant: p.merchant, terminal: p.terminal, status: status, amount: p.amount,
                                 fee: Money(minorUnits: status == .paid ? Self.fee(p.amount.minorUnits) : 0, currency: currency)))
    }

    /// Adds a refund the acquirer paid out (left out when in another currency).
    public mutating func add(_ r: LedgerRefund) {
        guard r.amount.currency == currency else { return }
        rows.append(StatementRow(line: 0, transactionMillis: r.completedMillis, acquirerOrderId: Self.acquirerOrderID(r.orderId),
                                 merchantOrderId: r.orderId, merchant: r.merchant, terminal: r.terminal, status: .refund, amount: r.saleAmount,
                                 acquirerRefundId: "SIMR" + r.refundId.replacingOccurrences(of: "-", with: ""), merchantRefundId: r.refundId,
                                 refundAmount: r.amount, fee: .zero(currency)))
    }

    /// The acquirer's id of an order: "SIMP" and the sale's terminal and sequence number.
    static func acquirerOrderID(_ orderId: String) -> String { "SIMP" + orderId.replacingOccurrences(of: ":", with: "-") }

    /// Time, payments before refunds, then order id (sale order) and refund id.
    static func fileOrder(_ a: StatementRow, _ b: StatementRow) -> Bool {
        if a.transactionMillis != b.transactionMillis { return a.transactionMillis < b.transactionMillis }
        if (a.status == .refund) != (b.status == .refund) { return b.status == .refund }
        if a.merchantOrderId != b.merchantOrderId { return OrderID.precedes(a.merchantOrderId, b.merchantOrderId) }
        return (a.merchantRefundId ?? "") < (b.merchantRefundId ?? "")
    }

    /// Why an injection could not be made.
    public struct InjectionError: Error, Equatable, CustomStringConvertible {
        public let injection: StatementInjection
        public let reason: String
        public var description: String { "cannot inject \(injection.rawValue): \(reason)" }
    }

    /// The statement, rows in time then order id order, numbered as the file
    /// will number them, with `injections` made (each on its own row) and a totals line that adds up.
    public func build(injecting injections: [StatementInjection] = []) throws(InjectionError) -> Statement {
        var rows = self.rows.sorted(by: Self.fileOrder)
        var used = Set<Int>()
        func take(_ injection: StatementInjection, _ what: String, _ matches: (StatementRow) -> Bool) throws(InjectionError) -> Int {
            guard let i = rows.indices.first(where: { !used.contains($0) && matches(rows[$0]) }) else {
                throw InjectionError(injection: injection, reason: "the day has no \(what) left to change")
            }
            used.insert(i)
            return i
        }
        var removed: [Int] = []
        var added: [StatementRow] = []
        for injection in injections {
            switch injection {
            case .ledgerOnly:
                removed.append(try take(injection, "paid order", { $0.status == .paid }))
            case .amountMismatch:
                let i = try take(injection, "paid order", { $0.status == .paid })
                rows[i].amount = Money(minorUnits: rows[i].amount.minorUnits + Self.injectedDifferenceMinor, currency: currency)
                rows[i].fee = Money(minorUnits: Self.fee(rows[i].amount.minorUnits), currency: currency)
            case .statusMismatch:
                let unpaid = rows.indices.contains { !used.contains($0) && (rows[$0].status == .expired || rows[$0].status == .declined) }
                let i = try take(injection, "decided order", { unpaid ? ($0.status == .expired || $0.status == .declined) : $0.status == .paid })
                rows[i].status = rows[i].status == .paid ? .declined : .paid
                rows[i].fee = Money(minorUnits: rows[i].status == .paid ? Self.fee(rows[i].amount.minorUnits) : 0, currency: currency)
            case .refundLedgerOnly:
                removed.append(try take(injection, "refund", { $0.status == .refund }))
            case .refundAmountMismatch:
                let i = try take(injection, "refund with room to differ", { $0.status == .refund && ($0.refundAmount?.minorUnits ?? 0) > 1 })
                rows[i].refundAmount = Money(minorUnits: rows[i].refundAmount!.minorUnits - 1, currency: currency)
            case .totalsLong, .totalsShort:
                throw InjectionError(injection: injection, reason: "the totals follow from the rows: inject a record's difference")
            case .otherCurrency:
                throw InjectionError(injection: injection, reason: "a statement has one currency: a sale in another currency shows this")
            case .statementOnly, .refundStatementOnly:
                guard let model = rows.first(where: { $0.status == .paid }) ?? rows.first else {
                    throw InjectionError(injection: injection, reason: "the day has no row to model an added one on")
                }
                let n = added.count + 1
                var row = model
                row.transactionMillis = day.upperBound - 1
                row.merchantOrderId = "injected-\(n)"
                row.acquirerOrderId = "SIMPinjected\(n)"
                row.amount = Money(minorUnits: Self.injectedAmountMinor, currency: currency)
                if injection == .statementOnly {
                    (row.status, row.acquirerRefundId, row.merchantRefundId, row.refundAmount) = (.paid, nil, nil, nil)
                    row.fee = Money(minorUnits: Self.fee(Self.injectedAmountMinor), currency: currency)
                } else {
                    row.merchantOrderId = model.merchantOrderId
                    row.acquirerOrderId = model.acquirerOrderId
                    row.amount = model.amount
                    (row.status, row.acquirerRefundId, row.merchantRefundId) = (.refund, "SIMRinjected\(n)", "injected-\(n)")
                    row.refundAmount = Money(minorUnits: max(1, model.amount.minorUnits / 2), currency: currency)
                    row.fee = .zero(currency)
                }
                added.append(row)
            }
        }
        for i in removed.sorted(by: >) { rows.remove(at: i) }
        rows += added
        for i in rows.indices { rows[i].line = StatementLayout.firstRowLine + i }
        let (totals, _) = StatementTotals.of(rows, line: StatementLayout.firstRowLine + rows.count + 1)
        return Statement(date: date, dayStartMillis: day.lowerBound, dayEndMillis: day.upperBound, currency: currency, acquirer: acquirer,
                         rows: rows, totals: totals)
    }
}
