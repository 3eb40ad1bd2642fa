import PosLedger

// Amounts as people type and read them: major units with the currency's
// number of decimals (ISO 4217 minor unit), "12.50" for CNY, "1250" for JPY,
// "1.250" for KWD. Exact: digits are parsed into integer minor units and
// printed back by integer division. No floating point anywhere.

public enum AmountFormat {
    /// Currencies whose minor unit is not 2 decimals (ISO 4217); every other has 2.
    static let minorDigitsExceptions: [String: Int] = [
        "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
        "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
        "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
        "CLF": 4, "UYW": 4,
    ]
    /// Longest amount text accepted, in bytes (more is certainly over `Limits.amountMinorMax`).
    public static let amountTextBytesMax = 32

    /// Decimal digits of the currency's minor unit: 0...4.
    public static func minorDigits(_ currency: Currency) -> Int {
        minorDigitsExceptions[currency.code] ?? 2
    }

    /// Parses "12.50" (or "12.5", "12") into minor units of `currency`. Refuses a
    /// sign, grouping, more decimals than the currency has, zero, and amounts
    /// over `Limits.amountMinorMax` minor units.
    public static func parse(_ text: String, _ currency: Currency, field: String = "amount") throws(AppError) -> Money {
        let digitsAllowed = minorDigits(currency)
        let bytes = Array(text.utf8)
        func bad(_ why: String) -> AppError {
            AppError(.refused, "\(field) \(PrintableText.escaped(String(text.prefix(amountTextBytesMax)))): \(why)")
        }
        guard !bytes.isEmpty else { throw bad("empty; expected an amount like \(example(currency))") }
        guard bytes.count <= amountTextBytesMax else { throw bad("longer than \(amountTextBytesMax) characters") }
        var whole: Int64 = 0
        var fraction: Int64 = 0
        var fractionDigits = 0
        var seenPoint = false
        var seenDigit = false
        for b in bytes {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                seenDigit = true
                let d = Int64(b - UInt8(ascii: "0"))
                if seenPoint {
                    fractionDigits += 1
                    guard fractionDigits <= digitsAllowed else {
                        throw bad(digitsAllowed == 0 ? "\(currency) has no decimals"
                                  : "\(currency) has \(digitsAllowed) decimals, this has more")
                    }
                    fraction = fraction * 10 + d
                } else {
                    let (m, o1) = whole.multipliedReportingOverflow(by: 10)
                    let (s, o2) = m.addingReportingOverflow(d)
                    guard !o1, !o2, s <= Limits.amountMinorMax else { throw bad("too large") }
                    whole = s
                }
            case UInt8(ascii: "."):
                guard !seenPoint else { throw bad("more than one decimal point") }
                guard digitsAllowed > 0 else { throw bad("\(currency) has no decimals") }
                seenPoint = true
            default:
                throw bad("only digits and one '.' are allowed, like \(example(currency))")
            }
        }
        guard seenDigit else { throw bad("no digits") }
        let scale = pow10(digitsAllowed)
        let (wholeMinor, o1) = whole.multipliedReportingOverflow(by: scale)
        let (minor, o2) = wholeMinor.addingReportingOverflow(fraction * pow10(digitsAllowed - fractionDigits))
        guard !o1, !o2, minor <= Limits.amountMinorMax else {
            throw bad("exceeds the largest amount, \(Limits.amountMinorMax) minor units")
        }
        guard minor > 0 else { throw bad("must be greater than zero") }
        return Money(minorUnits: minor, currency: currency)
    }

    /// "12.50" for 1250 CNY minor units; "-3.05" for -305; "1250" for JPY.
    public static func format(_ money: Money) -> String {
        format(minorUnits: money.minorUnits, currency: money.currency)
    }

    public static func format(minorUnits: Int64, currency: Currency) -> String {
        let digits = minorDigits(currency)
        let sign = minorUnits < 0 ? "-" : ""
        let magnitude = minorUnits.magnitude
        guard digits > 0 else { return "\(sign)\(magnitude)" }
        let scale = UInt64(pow10(digits))
        var fraction = String(magnitude % scale)
        while fraction.count < digits { fraction = "0" + fraction }
        return "\(sign)\(magnitude / scale).\(fraction)"
    }

    /// "12.50 CNY".
    public static func display(_ money: Money) -> String { "\(format(money)) \(money.currency)" }

    static func example(_ currency: Currency) -> String {
        format(minorUnits: 1250 * pow10(minorDigits(currency)) / 100, currency: currency)
    }

    static func pow10(_ n: Int) -> Int64 {
        var v: Int64 = 1
        for _ in 0..<n { v *= 10 }
        return v
    }
}
