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

    /// Parses an amount in major units into minor units of `currency`, exactly
    /// by this grammar (docs/cli.md, "Amounts"), ASCII only:
    ///
    ///     amount   = whole [ "." fraction ]
    ///     whole    = "0" | nonzero { digit }          (no leading zero before other digits)
    ///     fraction = digit { digit }                  (1 to the currency's decimals; none for JPY)
    ///
    /// so "120", "12.5", "12.50" and "0.50" are CNY amounts, and ".50", "5.",
    /// "05.00", "+5", "1,000", " 5" are not. Zero and amounts over
    /// `Limits.amountMinorMax` minor units are refused. Every refusal names
    /// `field` and the text.
    public static func parse(_ text: String, _ currency: Currency, field: String = "amount") throws(AppError) -> Money {
        let digitsAllowed = minorDigits(currency)
        let bytes = Array(text.utf8)
        func bad(_ why: String) -> AppError {
            AppError(.refused, "\(field) \(PrintableText.escaped(String(text.prefix(amountTextBytesMax)))): \(why)")
        }
        guard !bytes.isEmpty else { throw bad("empty; expected an amount like \(example(currency))") }
        guard bytes.count <= amountTextBytesMax else { throw bad("longer than \(amountTextBytesMax) characters") }
        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        let point = UInt8(ascii: ".")
        if let other = bytes.first(where: { !isDigit($0) && $0 != point }) {
            switch other {
            case UInt8(ascii: "+"), UInt8(ascii: "-"): throw bad("a sign is not allowed: an amount is positive, like \(example(currency))")
            case UInt8(ascii: ","), UInt8(ascii: "_"), UInt8(ascii: "'"): throw bad("digit grouping is not allowed: write the digits alone, like 1000")
            case UInt8(ascii: " "), UInt8(ascii: "\t"): throw bad("spaces are not allowed")
            default: throw bad("only the digits 0-9 and one '.' are allowed, like \(example(currency))")
            }
        }
        let parts = bytes.split(separator: point, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw bad("more than one decimal point") }
        let wholeDigits = parts[0], fractionDigits = parts.count == 2 ? parts[1] : []
        if parts.count == 2, digitsAllowed == 0 { throw bad("\(currency) has no decimals") }
        guard !wholeDigits.isEmpty else { throw bad("no digit before the decimal point (write 0\(text))") }
        guard parts.count == 1 || !fractionDigits.isEmpty else { throw bad("no digit after the decimal point (write \(text.dropLast()))") }
        guard wholeDigits.count == 1 || wholeDigits.first != UInt8(ascii: "0") else {
            let kept = wholeDigits.drop { $0 == UInt8(ascii: "0") }
            throw bad("a leading zero before other digits (write \(kept.isEmpty ? "0" : String(decoding: kept, as: UTF8.self))\(parts.count == 2 ? "." + String(decoding: fractionDigits, as: UTF8.self) : ""))")
        }
        guard fractionDigits.count <= digitsAllowed else {
            throw bad("\(currency) has \(digitsAllowed) decimals, this has \(fractionDigits.count)")
        }
        // Whole digits beyond the largest amount overflow: checked digit by digit.
        var minor: Int64 = 0
        for b in wholeDigits + fractionDigits + Array(repeating: UInt8(ascii: "0"), count: digitsAllowed - fractionDigits.count) {
            let (m, o1) = minor.multipliedReportingOverflow(by: 10)
            let (sum, o2) = m.addingReportingOverflow(Int64(b - UInt8(ascii: "0")))
            guard !o1, !o2, sum <= Limits.amountMinorMax else {
                throw bad("exceeds the largest amount, \(Limits.amountMinorMax) minor units")
            }
            minor = sum
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
