import PosCentral
import PosJournal
import PosLedger
import PosReconcile
import PosWire

// `central statement`: the simulated acquirer's daily statement.

extension CentralDesk {
    /// What `central statement` wrote.
    public struct StatementResult: Codable, Sendable, Equatable {
        public var file: String
        public var date: String
        public var currency: String
        public var rows: Int
        public var paidMinor: Int64
        public var refundedMinor: Int64
        public var feeMinor: Int64
        public var injected: [String]
    }

    /// The statement the simulated acquirer writes for `date`: every sale it
    /// decided that day (central records its answers: the simulator keeps no
    /// books of its own) and every refund central completed that day, in
    /// `currency` (sales in another currency are another account's), with
    /// `injections` made. Streams central's state.
    public func simulatedStatement(date: String, currency: Currency, injecting injections: [StatementInjection]) throws(AppError) -> Statement {
        let (start, end) = try StatementFile.day(date)
        var builder = StatementBuilder(date: date, day: start..<end, currency: currency, acquirer: SimulatedAcquirer.statementName)
        try forEachDayRecord(day: start..<end) { payment in builder.add(payment) } refund: { refund in builder.add(refund) }
        do { return try builder.build(injecting: injections) } catch { throw AppError(.refused, error.description) }
    }

    /// Writes `statement` to `out` (a new file), crash-safely.
    public static func write(_ statement: Statement, to out: String, injected: [StatementInjection]) throws(AppError) -> StatementResult {
        try CommandPaths.checkOutput(out, what: "statement file")
        do {
            try FileStore(fs: PosixFileSystem()).writeAtomically(Array(StatementFile.encode(statement).utf8), to: out)
        } catch {
            throw AppError(.store, "\(out): cannot write the statement: \(error.description)")
        }
        let t = statement.totals
        return StatementResult(file: out, date: statement.date, currency: statement.currency.code, rows: t.rows, paidMinor: t.paidMinor,
                               refundedMinor: t.refundedMinor, feeMinor: t.feeMinor, injected: injected.map(\.rawValue))
    }

    /// The ledger's payments decided and refunds completed in `day`, part by part of central's state.
    func forEachDayRecord(day: Range<Int64>, payment: (LedgerPayment) -> Void, refund: (LedgerRefund) -> Void) throws(AppError) {
        let merchants = Dictionary(uniqueKeysWithValues: store.enrolledTerminals.map { ($0.terminal, $0.merchant) })
        try PosApp.store { () throws(SyncError) in
            try store.forEachStatePart { part in
                let (payments, refunds) = LedgerDay.records(in: part, day: day) { merchants[$0] }
                payments.forEach(payment)
                refunds.forEach(refund)
            }
        }
    }
}

extension SimulatedAcquirer {
    /// The acquirer column of the simulator's statements.
    public static let statementName = "simulated"
}

extension CentralDesk.StatementResult {
    public var text: String {
        let c = try? Currency(currency)
        func money(_ m: Int64) -> String { c.map { AmountFormat.format(minorUnits: m, currency: $0) } ?? "\(m)" }
        return "statement for \(date) written to \(TextOutput.plain(file)): \(rows) rows, paid \(money(paidMinor)) \(currency), "
            + "refunded \(money(refundedMinor)), fees \(money(feeMinor))"
            + (injected.isEmpty ? "" : "; injected: \(injected.joined(separator: ", "))")
    }
}
