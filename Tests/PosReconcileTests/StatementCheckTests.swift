import PosLedger
import PosReconcile
import Testing

/// The checks that need every row: duplicates, currency, totals, date; each names its line and column.
@Suite("statement checks")
struct StatementCheckTests {
    static func honest() throws -> Statement {
        try ReconcilerTests.statement(ReconcilerTests.payments, ReconcilerTests.refunds)
    }

    @Test("a duplicate order id or refund id names the line of the first")
    func duplicates() throws {
        var s = try Self.honest()
        s.rows.append({ var r = s.rows[0]; r.line = 99; r.acquirerOrderId = "other"; return r }())
        s.totals = StatementTotals.of(s.rows, line: s.totals.line).totals
        let problems = StatementCheck.problems(s, expectedDate: s.date)
        #expect(problems == [StatementProblem(.duplicateOrderId, line: 99, field: "merchant_order_id", "\(s.rows[0].merchantOrderId) is already on line 4")])
        var t = try Self.honest()
        let refund = t.rows.first { $0.status == .refund }!
        t.rows.append({ var r = refund; r.line = 50; return r }())
        t.totals = StatementTotals.of(t.rows, line: t.totals.line).totals
        #expect(StatementCheck.problems(t, expectedDate: t.date).map(\.field) == ["merchant_refund_id", "acquirer_refund_id"])
    }

    @Test("a row in another currency is refused, naming its line and column")
    func currency() throws {
        var s = try Self.honest()
        s.rows[2].fee = Money(minorUnits: s.rows[2].fee.minorUnits, currency: .EUR)
        #expect(StatementCheck.problems(s, expectedDate: s.date) == [
            StatementProblem(.wrongCurrency, line: 6, field: "fee_minor", "EUR, the statement's currency is CNY"),
        ])
    }

    @Test("a totals line that does not add up names each column, with both numbers")
    func totals() throws {
        var s = try Self.honest()
        s.totals.paidMinor += 1
        s.totals.rows -= 1
        let p = StatementCheck.problems(s, expectedDate: s.date)
        #expect(p.map(\.kind) == [.totalsMismatch, .totalsMismatch])
        #expect(p.map(\.field) == ["total_rows", "total_paid_minor"])
        #expect(p[1].message == "the totals line says 37301, the rows add up to 37300" && p[1].line == s.totals.line)
    }

    @Test("a statement for another date, and a row outside its date, are refused")
    func date() throws {
        var s = try Self.honest()
        #expect(StatementCheck.problems(s, expectedDate: "2026-03-04") == [
            StatementProblem(.wrongDate, line: 2, field: "statement_date", "the statement is for 2026-03-03, the night's date is 2026-03-04"),
        ])
        s.rows[0].transactionMillis = s.dayEndMillis
        #expect(StatementCheck.problems(s, expectedDate: s.date).map(\.line) == [4])
    }

    @Test("amounts that add up past Int64 are a problem, not a trap")
    func overflow() throws {
        var s = try Self.honest()
        for i in s.rows.indices where s.rows[i].status == .paid { s.rows[i].amount = Money(minorUnits: .max / 2, currency: .CNY) }
        let p = StatementCheck.problems(s, expectedDate: s.date)
        #expect(p.contains { $0.kind == .totalsMismatch && $0.message.contains("past") })
    }
}
