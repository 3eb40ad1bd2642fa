import Foundation
import PosLedger
import PosReconcile
import Testing

/// Matching by id, each discrepancy kind with both sides' values, totals per merchant and currency.
@Suite("reconciliation against the acquirer's statement")
struct ReconcilerTests {
    static let day: Range<Int64> = 1_772_496_000_000..<(1_772_496_000_000 + Millis.perDay)  // 2026-03-03
    static let at = day.lowerBound + 21 * Millis.perHour

    static func cny(_ minor: Int64) -> Money { Money(minorUnits: minor, currency: .CNY) }

    static func payment(_ id: String, _ minor: Int64, _ status: SaleStatus = .confirmed, merchant: String = "acme") -> LedgerPayment {
        LedgerPayment(orderId: id, merchant: merchant, terminal: UInt32(id.split(separator: ":")[0])!, status: status, amount: cny(minor), decidedMillis: at)
    }

    static func refund(_ ticket: String, of id: String, _ minor: Int64, sale: Int64) -> LedgerRefund {
        LedgerRefund(refundId: ticket, orderId: id, merchant: "acme", terminal: UInt32(id.split(separator: ":")[0])!, amount: cny(minor),
                     saleAmount: cny(sale), completedMillis: at + Millis.perHour)
    }

    /// The statement an honest acquirer writes for these records, with `injections` made.
    static func statement(_ payments: [LedgerPayment], _ refunds: [LedgerRefund], _ injections: [StatementInjection] = []) throws -> Statement {
        var b = StatementBuilder(date: "2026-03-03", day: day, currency: .CNY, acquirer: "simulated")
        for p in payments { b.add(p) }
        for r in refunds { b.add(r) }
        return try b.build(injecting: injections)
    }

    static func reconcile(_ s: Statement, _ payments: [LedgerPayment], _ refunds: [LedgerRefund], merchant: String? = nil) -> Reconciliation {
        var r = Reconciler(statement: s, merchant: merchant)
        for p in payments.reversed() { r.add(p) }  // any order
        for x in refunds { r.add(x) }
        return r.finish()
    }

    static let payments = [payment("1:1", 12_000), payment("1:2", 20_300), payment("2:1", 6_350, .declined), payment("2:2", 7_400, .expired),
                           payment("2:3", 5_000)]
    static let refunds = [refund("2-10-5", of: "1:1", 5_000, sale: 12_000), refund("1-6-2", of: "2:3", 1_000, sale: 5_000)]

    @Test("an honest statement reconciles with no discrepancy, and its totals line adds up")
    func honest() throws {
        let s = try Self.statement(Self.payments, Self.refunds)
        #expect(StatementCheck.problems(s, expectedDate: "2026-03-03").isEmpty)
        let r = Self.reconcile(s, Self.payments, Self.refunds)
        #expect(r.discrepancies.isEmpty, "\(r.discrepancies)")
        #expect(r.totals == [{
            var t = SettlementTotals(merchant: "acme", currency: "CNY")
            (t.ledgerPaidMinor, t.ledgerRefundedMinor, t.statementPaidMinor, t.statementRefundedMinor) = (37_300, 6_000, 37_300, 6_000)
            t.statementFeeMinor = StatementBuilder.fee(12_000) + StatementBuilder.fee(20_300) + StatementBuilder.fee(5_000)
            t.matched = 7
            return t
        }()])
        #expect(s.totals.rows == 7 && s.totals.paidMinor == 37_300 && s.totals.refundedMinor == 6_000)
    }

    @Test("each injection gives its discrepancy, with both sides' values, and the totals account for it")
    func eachKind() throws {
        for injection in StatementInjection.injectable {
            let s = try Self.statement(Self.payments, Self.refunds, [injection])
            let r = Self.reconcile(s, Self.payments, Self.refunds)
            let records = r.discrepancies.filter { $0.orderId != nil }
            try #require(records.count == 1, "\(injection): \(r.discrepancies)")
            let d = records[0]
            #expect(d.kind.rawValue == injection.rawValue, "\(injection): \(d)")
            switch injection {
            case .ledgerOnly, .refundLedgerOnly: #expect(d.ledger != nil && d.statement == nil)
            case .statementOnly, .refundStatementOnly: #expect(d.ledger == nil && d.statement?.line != nil)
            default: #expect(d.ledger != nil && d.statement?.line != nil)
            }
            if injection == .statusMismatch {
                #expect(d.orderId == "2:1" && d.ledger?.status == "declined" && d.statement?.status == "SUCCESS" && d.differenceMinor == -6_350)
            }
            if injection == .amountMismatch {
                #expect(d.ledger?.amountMinor == 12_000 && d.statement?.amountMinor == 12_000 + StatementBuilder.injectedDifferenceMinor)
            }
            // Settled money moved by the difference: the totals say long or short by exactly it.
            let totals = r.discrepancies.filter { $0.orderId == nil }
            if d.differenceMinor == 0 {
                #expect(totals.isEmpty, "\(injection): \(totals)")
            } else {
                try #require(totals.count == 1, "\(injection): \(r.discrepancies)")
                #expect(totals[0].kind == (d.differenceMinor > 0 ? .totalsLong : .totalsShort))
                #expect(totals[0].differenceMinor == d.differenceMinor)
                #expect(totals[0].ledger?.netMinor == 31_300)
            }
        }
    }

    @Test("records are matched by order id, never by amount: two orders with swapped amounts are two amount mismatches")
    func byIdNotAmount() throws {
        let ledger = [Self.payment("1:1", 1_000), Self.payment("1:2", 2_000)]
        let swapped = [Self.payment("1:1", 2_000), Self.payment("1:2", 1_000)]
        let r = Self.reconcile(try Self.statement(swapped, []), ledger, [])
        #expect(r.discrepancies.map(\.kind) == [.amountMismatch, .amountMismatch])
        #expect(r.discrepancies.map(\.orderId) == ["1:1", "1:2"])
        #expect(r.totals.first?.differenceMinor == 0)
        // An order the statement has under another id is not taken for the ledger's, however equal the amount.
        let renamed = Self.reconcile(try Self.statement([Self.payment("1:9", 1_000), Self.payment("1:2", 2_000)], []), ledger, [])
        #expect(renamed.discrepancies.map(\.kind) == [.ledgerOnly, .statementOnly])
        #expect(renamed.discrepancies.map(\.orderId) == ["1:1", "1:9"])
    }

    @Test("a record in another currency than the statement's is listed as other-currency, not matched, not in any totals")
    func otherCurrency() throws {
        let s = try Self.statement(Self.payments, Self.refunds)
        let usd = LedgerPayment(orderId: "1:9", merchant: "acme", terminal: 1, status: .confirmed, amount: Money(minorUnits: 4_200, currency: .USD), decidedMillis: Self.at)
        let usdRefund = LedgerRefund(refundId: "1-9-3", orderId: "1:9", merchant: "acme", terminal: 1, amount: Money(minorUnits: 1_000, currency: .USD),
                                     saleAmount: Money(minorUnits: 4_200, currency: .USD), completedMillis: Self.at + 1)
        let r = Self.reconcile(s, Self.payments + [usd], Self.refunds + [usdRefund])
        #expect(r.discrepancies.map(\.kind) == [.otherCurrency, .otherCurrency], "\(r.discrepancies)")
        #expect(r.discrepancies.allSatisfy { $0.currency == "USD" && $0.differenceMinor == 0 && $0.ledger != nil && $0.statement == nil })
        #expect(Set(r.discrepancies.compactMap(\.refundId)) == ["1-9-3"])
        #expect(r.totals.map(\.currency) == ["CNY"], "no USD totals against a CNY statement: \(r.totals)")
    }

    @Test("a merchant filter leaves the other merchants' rows and records out, and counts the rows")
    func merchantFilter() throws {
        let ledger = [Self.payment("1:1", 1_000), Self.payment("3:1", 3_000, merchant: "other")]
        let s = try Self.statement([Self.payment("1:1", 1_000)] + [Self.payment("3:1", 3_100, merchant: "other")], [])
        let all = Self.reconcile(s, ledger, [])
        #expect(all.discrepancies.map(\.kind) == [.amountMismatch, .totalsShort])
        let acme = Self.reconcile(s, ledger, [], merchant: "acme")
        #expect(acme.discrepancies.isEmpty && acme.rowsOfOtherMerchants == 1 && acme.totals.map(\.merchant) == ["acme"])
    }

    @Test("random statements: every change found at its order id, the records' differences add up to the totals' (seed printed)")
    func randomized() throws {
        let base = ProcessInfo.processInfo.environment["POSSYNC_SEED"].flatMap(UInt64.init) ?? 17
        let cases = Int(ProcessInfo.processInfo.environment["POSSYNC_PROPERTY_CASES"] ?? "") ?? 500
        for c in 0..<UInt64(cases) {
            let seed = base &+ c
            var rng = SplitMix64(seed: seed)
            var payments: [LedgerPayment] = []
            for t in 1...3 {
                for q in stride(from: 1, through: rng.int(0...8), by: 1) {
                    payments.append(Self.payment("\(t):\(q)", Int64(rng.int(1...50_000)), rng.pick([.confirmed, .confirmed, .declined, .expired]),
                                                 merchant: t == 3 ? "other" : "acme"))
                }
            }
            let refunds = payments.filter { $0.status == .confirmed && rng.chance(30) }.enumerated().map { i, p in
                LedgerRefund(refundId: "r\(i)", orderId: p.orderId, merchant: p.merchant, terminal: p.terminal,
                             amount: Self.cny(Int64(rng.int(1...Int(p.amount.minorUnits)))), saleAmount: p.amount, completedMillis: Self.at)
            }
            var injections: [StatementInjection] = []
            for i in StatementInjection.injectable where rng.chance(25) { injections.append(i) }
            let s: Statement
            do { s = try Self.statement(payments, refunds, injections) } catch { continue }  // the day had no row for it
            let r = Self.reconcile(s, payments, refunds)
            let records = r.discrepancies.filter { $0.orderId != nil }
            #expect(records.map(\.kind.rawValue).sorted() == injections.map(\.rawValue).sorted(), "seed \(seed): \(records) for \(injections)")
            var byKey: [String: Int64] = [:]
            for d in records { byKey[d.merchant + d.currency, default: 0] += d.differenceMinor }
            for t in r.totals {
                #expect(t.differenceMinor == byKey[t.merchant + t.currency, default: 0], "seed \(seed): \(t)")
            }
        }
        print("reconciliation property: \(cases) cases from seed \(base) (POSSYNC_SEED replays)")
    }
}
