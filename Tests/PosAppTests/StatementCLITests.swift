import Foundation
import PosApp
import PosLedger
import PosReconcile
import Testing

/// `central statement` writes what the simulated acquirer decided; the reader
/// refuses every malformed statement naming line and column.
@Suite("possync: the acquirer's statement", .serialized)
struct StatementCLITests {
    static func world() throws -> NightlyWorld {
        let w = try NightlyWorld()
        try w.trade()
        try w.settleByHand()
        return w
    }

    @Test("the statement lists each sale decided that day and each refund completed, with both ids, and totals that add up")
    func honest() throws {
        let w = try Self.world()
        let path = try w.statement()
        let reading = StatementFile.read(path: path, expectedDate: NightlyWorld.date)
        #expect(reading.problems.isEmpty, "\(reading.problems)")
        let s = try #require(reading.statement)
        // 1:1, 1:2 and 1:5 paid, 1:3 declined (code ends in 0), 2:1 paid, 3:1 expired (captured 81 h before), 3:2 paid; two refunds of 1:2.
        #expect(s.rows.map(\.merchantOrderId) == ["1:1", "1:2", "1:3", "1:5", "2:1", "3:1", "3:2", "1:2", "1:2"])
        #expect(s.rows.map(\.status) == [.paid, .paid, .declined, .paid, .paid, .expired, .paid, .refund, .refund])
        #expect(s.rows.map(\.merchant) == ["acme", "acme", "acme", "acme", "acme", "bazaar", "bazaar", "acme", "acme"])
        #expect(s.rows.compactMap(\.merchantRefundId) == w.completedTickets && s.rows.compactMap(\.refundAmount?.minorUnits) == [5_000, 2_000])
        #expect(s.rows.last?.amount.minorUnits == 20_300 && s.rows.last?.acquirerRefundId?.hasPrefix("SIMR") == true)
        #expect(s.totals.rows == 9 && s.totals.paidMinor == 12_000 + 20_300 + 1_500 + 6_350 + 9_900 && s.totals.refundedMinor == 7_000)
        #expect(s.totals.feeMinor == [12_000, 20_300, 1_500, 6_350, 9_900].map(StatementBuilder.fee).reduce(0, +))
        #expect(s.rows.allSatisfy { $0.transactionMillis >= s.dayStartMillis && $0.transactionMillis < s.dayEndMillis })
        // Written and read back byte for byte; the day before has no rows.
        #expect(StatementFile.encode(s) == (try w.text(path)))
        let before = try #require(StatementFile.read(path: try {
            let p = w.tmp.path + "/before.csv"
            _ = try CLI.json(["central", "statement", "--dir", w.central, "--date", "2026-03-02", "--out", p])
            return p
        }(), expectedDate: "2026-03-02").statement)
        #expect(before.rows.isEmpty && before.totals.rows == 0)
    }

    @Test("each --inject changes one row of its kind; one the day cannot take is refused and nothing is written")
    func injections() throws {
        let w = try Self.world()
        let honest = try #require(StatementFile.read(path: try w.statement(), expectedDate: NightlyWorld.date).statement)
        let path = try w.statement("injected.csv", inject: StatementInjection.injectable.map(\.rawValue))
        let s = try #require(StatementFile.read(path: path, expectedDate: NightlyWorld.date).statement)
        let ids = Set(s.rows.map { $0.merchantRefundId ?? $0.merchantOrderId })
        #expect(!ids.contains("1:1"), "ledger-only drops the first paid order")
        #expect(s.rows.first { $0.merchantOrderId == "1:2" && $0.status == .paid }?.amount.minorUnits == 20_300 + StatementBuilder.injectedDifferenceMinor)
        #expect(s.rows.first { $0.merchantOrderId == "1:3" }?.status == .paid, "status-mismatch: declined reported paid")
        #expect(!ids.contains(w.completedTickets[0]), "refund-ledger-only drops the first refund")
        #expect(s.rows.first { $0.merchantRefundId == w.completedTickets[1] }?.refundAmount?.minorUnits == 1_999, "refund-amount-mismatch: the second")
        #expect(ids.contains("injected-1") && ids.contains("injected-2"))
        #expect(s.rows.count == honest.rows.count - 2 + 2)
        let refund = try #require(StatementFile.read(path: try w.statement("refund.csv", inject: ["refund-amount-mismatch"]), expectedDate: NightlyWorld.date).statement)
        #expect(refund.rows.compactMap(\.refundAmount?.minorUnits) == [4_999, 2_000])
        // A third refund to change: the day has two, both dropped.
        let refused = try CLI.run(["central", "statement", "--dir", w.central, "--date", NightlyWorld.date, "--out", w.tmp.path + "/no.csv",
                                   "--inject", "refund-ledger-only", "--inject", "refund-ledger-only", "--inject", "refund-amount-mismatch"])
        #expect(refused.status == 1 && refused.stderr.contains("cannot inject refund-amount-mismatch: the day has no refund with room to differ left to change"))
        #expect(!FileManager.default.fileExists(atPath: w.tmp.path + "/no.csv"))
        let bad = try CLI.run(["central", "statement", "--dir", w.central, "--date", NightlyWorld.date, "--out", w.tmp.path + "/no.csv", "--inject", "frob"])
        #expect(bad.status == 1 && bad.stderr.contains("--inject \"frob\": expected one of ledger-only"), "\(bad.stderr)")
    }

    /// The honest statement's text with `edit` applied to its lines, parsed for the night.
    static func problems(_ text: String, date: String = NightlyWorld.date, _ edit: (inout [String]) -> Void) -> [StatementProblem] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        edit(&lines)
        let r = StatementFile.parse(Data(lines.joined(separator: "\n").utf8), expectedDate: date)
        #expect(r.statement == nil || r.problems.isEmpty)
        return r.problems
    }

    @Test("malformed lines, a wrong currency, a duplicate order id, totals that do not add up and another date: each named by line and column")
    func badStatements() throws {
        let w = try Self.world()
        let text = try w.text(try w.statement())
        func field(_ line: Int, _ column: Int, _ value: String) -> (inout [String]) -> Void {
            { lines in var f = lines[line - 1].split(separator: ",", omittingEmptySubsequences: false).map(String.init); f[column] = value; lines[line - 1] = f.joined(separator: ",") }
        }
        #expect(Self.problems(text) { _ in }.isEmpty)
        let amount = Self.problems(text, field(5, 7, "203.00"))
        #expect(amount.map(\.description) == ["line 5, field amount_minor: malformed: \"203.00\": expected an amount in minor units, 1...1000000000000000, digits only"])
        #expect(Self.problems(text) { $0[5] = "2026-03-03T21:00:00Z,SIMP1-3" }.map(\.description) == ["line 6: malformed: 2 columns, expected 12"])
        #expect(Self.problems(text, field(4, 0, "yesterday")).first?.field == "transaction_time")
        #expect(Self.problems(text, field(4, 5, "PAID")).first?.message.contains("expected one of SUCCESS, DECLINED, EXPIRED, REFUND") == true)
        #expect(Self.problems(text, field(4, 8, "X1")).first?.description.hasPrefix("line 4, field acquirer_refund_id: malformed") == true)
        let currency = Self.problems(text, field(4, 6, "EUR"))
        #expect(currency.map(\.description) == ["line 4, field currency: wrong-currency: EUR, the statement's currency is CNY"])
        let duplicate = Self.problems(text) { $0[4] = $0[4].replacingOccurrences(of: ",1:2,", with: ",1:1,") }
        #expect(duplicate.map(\.description) == ["line 5, field merchant_order_id: duplicate-order-id: 1:1 is already on line 4"])
        let totals = Self.problems(text, field(14, 1, "1"))
        #expect(totals.map(\.description) == ["line 14, field total_paid_minor: totals-mismatch: the totals line says 1, the rows add up to 50050"])
        #expect(Self.problems(text) { $0.removeLast(3) }.map(\.kind) == [.totalsMismatch])
        let other = Self.problems(text, date: "2026-03-04") { _ in }
        #expect(other.map(\.description) == ["line 2, field statement_date: wrong-date: the statement is for 2026-03-03, the night's date is 2026-03-04"])
        #expect(Self.problems(text) { $0[3] += ",extra\"" }.first?.description == "line 4: malformed: not UTF-8 text without quotes or control characters")
        #expect(Self.problems(text) { $0[0] = "version,date" }.map(\.line) == [1])
        // Every problem of a file is listed in one pass, in line order.
        let several = Self.problems(text) { l in field(4, 6, "EUR")(&l); field(6, 7, "x")(&l) }
        #expect(several.map(\.line) == [4, 6])
    }
}
