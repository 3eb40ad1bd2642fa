import Testing
import PosApp
import PosLedger

@Suite("Amounts in major units, exact per currency")
struct AmountFormatTests {
    let jpy = try! Currency("JPY")
    let kwd = try! Currency("KWD")

    @Test("parses major units into exact minor units")
    func parses() throws {
        #expect(try AmountFormat.parse("12.50", .CNY).minorUnits == 1250)
        #expect(try AmountFormat.parse("12.5", .CNY).minorUnits == 1250)
        #expect(try AmountFormat.parse("12", .CNY).minorUnits == 1200)
        #expect(try AmountFormat.parse("0.01", .EUR).minorUnits == 1)
        #expect(try AmountFormat.parse("1250", jpy).minorUnits == 1250)
        #expect(try AmountFormat.parse("1.250", kwd).minorUnits == 1250)
        #expect(try AmountFormat.parse("0.1", .USD).minorUnits == 10)  // 0.1 exactly: no binary fraction anywhere
        #expect(try AmountFormat.parse("10000000000000.00", .CNY).minorUnits == Limits.amountMinorMax)
    }

    @Test("whole units and fewer decimals than the currency has are accepted")
    func shortForms() throws {
        #expect(try AmountFormat.parse("120", .CNY).minorUnits == 12000)
        #expect(try AmountFormat.parse("12.5", .CNY).minorUnits == 1250)
        #expect(try AmountFormat.parse("0.50", .CNY).minorUnits == 50)
        #expect(try AmountFormat.parse("0.5", .CNY).minorUnits == 50)
        #expect(try AmountFormat.parse("100", .CNY).minorUnits == 10000)
        #expect(try AmountFormat.parse("1.5", kwd).minorUnits == 1500)
        #expect(try AmountFormat.parse("10", jpy).minorUnits == 10)
    }

    @Test("refuses what is not an amount of the currency", arguments: [
        "", ".", "12.505", "-1.00", "+1", "1,000.00", "1e3", "12.50 ", "0", "0.00", "1.2.3", "abc",
        "10000000000000.01", "99999999999999999999999",
        ".50", "5.", "05.00", "007", "00", "00.50", "+5", "1,000", "1_000", " 5", "5 ", "5\t", "1.", "１２", "٣",
    ])
    func refuses(_ text: String) {
        #expect(throws: AppError.self) { try AmountFormat.parse(text, .CNY) }
    }

    @Test("each refusal names the field, the text and what is wrong", arguments: [
        (".50", "no digit before the decimal point (write 0.50)"),
        ("5.", "no digit after the decimal point (write 5)"),
        ("05.00", "a leading zero before other digits (write 5.00)"),
        ("+5", "a sign is not allowed"),
        ("1,000", "digit grouping is not allowed"),
        (" 5", "spaces are not allowed"),
        ("", "empty"),
        ("12.505", "CNY has 2 decimals, this has 3"),
        ("0.00", "must be greater than zero"),
    ])
    func refusalMessages(_ text: String, _ why: String) throws {
        let error = try #require(throws: AppError.self) { try AmountFormat.parse(text, .CNY, field: "--unsynced-limit") }
        #expect(error.message.hasPrefix("--unsynced-limit \"\(text)\": \(why)"), "\(error.message)")
        #expect(error.kind == .refused)
    }

    @Test("a currency without decimals refuses a decimal point")
    func noDecimals() {
        #expect(throws: AppError.self) { try AmountFormat.parse("12.5", jpy) }
        #expect(throws: AppError.self) { try AmountFormat.parse("12.", jpy) }
    }

    @Test("formats minor units back exactly")
    func formats() {
        #expect(AmountFormat.format(Money(minorUnits: 1250, currency: .CNY)) == "12.50")
        #expect(AmountFormat.format(Money(minorUnits: 5, currency: .CNY)) == "0.05")
        #expect(AmountFormat.format(Money(minorUnits: -305, currency: .CNY)) == "-3.05")
        #expect(AmountFormat.format(Money(minorUnits: 1250, currency: jpy)) == "1250")
        #expect(AmountFormat.format(Money(minorUnits: 1250, currency: kwd)) == "1.250")
        #expect(AmountFormat.display(Money(minorUnits: 100, currency: .EUR)) == "1.00 EUR")
    }

    @Test("parse and format round-trip")
    func roundTrip() throws {
        for minor: Int64 in [1, 9, 10, 99, 100, 101, 123_456, 1_000_000_000_000_000] {
            for c in [Currency.CNY, jpy, kwd] {
                let m = Money(minorUnits: minor, currency: c)
                #expect(try AmountFormat.parse(AmountFormat.format(m), c) == m)
            }
        }
    }
}

@Suite("Wall clock override")
struct WallClockTests {
    @Test("ISO 8601 times parse to Unix milliseconds and print back")
    func iso() throws {
        #expect(try WallClock.parse("1970-01-01T00:00:00Z") == 0)
        #expect(try WallClock.parse("2026-03-02T00:00:00Z") == 1_772_409_600_000)
        #expect(try WallClock.parse("2026-03-02T08:00+08:00") == 1_772_409_600_000)
        #expect(try WallClock.parse("2026-03-02") == 1_772_409_600_000)
        #expect(try WallClock.parse("2024-02-29T12:30:15.250Z") == 1_709_209_815_250)
        #expect(WallClock.format(1_709_209_815_250) == "2024-02-29T12:30:15.250Z")
        #expect(WallClock.format(1_772_409_600_000) == "2026-03-02T00:00:00Z")
    }

    @Test("bad times are refused", arguments: ["2026-02-30", "2026-03-02T08:00", "2026-13-01T00:00Z", "yesterday", "2026-03-02T25:00Z"])
    func bad(_ text: String) {
        #expect(throws: AppError.self) { try WallClock.parse(text) }
    }

    @Test("--now wins over POSSYNC_NOW, which wins over the system clock")
    func precedence() throws {
        let env = ["POSSYNC_NOW": "2026-03-02T00:00:00Z"]
        #expect(try WallClock.resolve(option: "1970-01-01T00:00:01Z", environment: env) == 1000)
        #expect(try WallClock.resolve(option: nil, environment: env) == 1_772_409_600_000)
        #expect(try WallClock.resolve(option: nil, environment: [:]) > 1_772_409_600_000 - 365 * WallClock.dayMillis * 10)
    }
}
