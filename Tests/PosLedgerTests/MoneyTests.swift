import Foundation
import Testing
@testable import PosLedger

@Suite("Money")
struct MoneyTests {
    @Test("currency codes are three upper-case letters and round-trip packed")
    func currency() throws {
        #expect(try Currency("EUR").code == "EUR")
        #expect(try Currency(packed: Currency.CNY.packed) == .CNY)
        for bad in ["eur", "EU", "EURO", "E1R", ""] {
            #expect(throws: LedgerError.self) { try Currency(bad) }
        }
    }

    @Test("event amounts must be positive and bounded")
    func positive() throws {
        #expect(throws: LedgerError.self) { try Money.positive(0, .EUR) }
        #expect(throws: LedgerError.self) { try Money.positive(-5, .EUR) }
        #expect(throws: LedgerError.self) { try Money.positive(Limits.amountMinorMax + 1, .EUR) }
        #expect(try Money.positive(Limits.amountMinorMax, .EUR).minorUnits == Limits.amountMinorMax)
    }

    @Test("adding refuses mixed currencies and overflow")
    func adding() throws {
        #expect(try Sample.money(150).adding(Sample.money(250)).minorUnits == 400)
        #expect(throws: LedgerError.self) { try Sample.money(1, .EUR).adding(Sample.money(1, .USD)) }
        #expect(throws: LedgerError.self) {
            try Money(minorUnits: .max, currency: .EUR).adding(Money(minorUnits: 1, currency: .EUR))
        }
        #expect(Money(minorUnits: -1205, currency: .EUR).description == "-12.05 EUR")
    }

    @Test("no Float, Double or Decimal type on the money path (Sources/PosLedger)")
    func noFloatingPoint() throws {
        let dir = Sample.packageRoot.appendingPathComponent("Sources/PosLedger")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".swift") }
        #expect(!files.isEmpty)
        let pattern = try NSRegularExpression(pattern: "\\b(Float|Double|Float32|Float64|Float80|CGFloat|Decimal)\\b")
        for file in files {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let code = line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                let s = String(code)
                let hit = pattern.firstMatch(in: s, range: NSRange(s.startIndex..., in: s))
                #expect(hit == nil, "\(file):\(n + 1) uses a floating-point type")
            }
        }
    }
}
