// Money is an integer count of minor units (cents, fen) plus an ISO 4217
// currency code. No floating point anywhere on a money path.

/// An ISO 4217 alphabetic currency code: exactly three ASCII letters A-Z.
public struct Currency: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The three letters packed base 26 (AAA = 0 ... ZZZ = 17,575): small on the wire.
    public let packed: UInt16

    public static let packedMax: UInt16 = 26 * 26 * 26 - 1

    public init(_ code: String) throws(LedgerError) {
        let bytes = Array(code.utf8)
        guard bytes.count == 3, bytes.allSatisfy({ $0 >= 65 && $0 <= 90 }) else {
            throw LedgerError(.invalidCurrency,
                              "currency must be 3 upper-case ASCII letters (ISO 4217), got \(bytes.count) bytes",
                              field: "currency")
        }
        packed = bytes.reduce(UInt16(0)) { $0 * 26 + UInt16($1 - 65) }
    }

    public init(packed: UInt16) throws(LedgerError) {
        guard packed <= Currency.packedMax else {
            throw LedgerError(.invalidCurrency, "packed currency \(packed) exceeds \(Currency.packedMax)",
                              field: "currency")
        }
        self.packed = packed
    }

    public var code: String {
        let a = UInt8(packed / 676), b = UInt8(packed / 26 % 26), c = UInt8(packed % 26)
        return String(decoding: [65 + a, 65 + b, 65 + c], as: UTF8.self)
    }

    public var description: String { code }
    public static func < (l: Currency, r: Currency) -> Bool { l.packed < r.packed }

    // Common currencies, for convenience in callers and tests.
    // swiftlint:disable force_try
    public static let CNY = try! Currency("CNY")
    public static let EUR = try! Currency("EUR")
    public static let USD = try! Currency("USD")
    // swiftlint:enable force_try
}

/// An amount of money in minor units. May be zero or negative (totals,
/// differences); event amounts are validated positive by `Money.positive`.
public struct Money: Hashable, Sendable, CustomStringConvertible {
    public let minorUnits: Int64
    public let currency: Currency

    public init(minorUnits: Int64, currency: Currency) {
        self.minorUnits = minorUnits
        self.currency = currency
    }

    /// A validated event amount: 1...Limits.amountMinorMax minor units.
    public static func positive(_ minorUnits: Int64, _ currency: Currency,
                                field: String = "amount") throws(LedgerError) -> Money {
        guard minorUnits > 0 else {
            throw LedgerError(.invalidAmount, "amount must be > 0, got \(minorUnits) minor units", field: field)
        }
        guard minorUnits <= Limits.amountMinorMax else {
            throw LedgerError(.invalidAmount,
                              "amount \(minorUnits) exceeds \(Limits.amountMinorMax) minor units", field: field)
        }
        return Money(minorUnits: minorUnits, currency: currency)
    }

    public static func zero(_ currency: Currency) -> Money { Money(minorUnits: 0, currency: currency) }

    /// Sum of two amounts of the same currency; a currency mismatch or an
    /// Int64 overflow is an error, never a wrong number.
    public func adding(_ other: Money) throws(LedgerError) -> Money {
        guard currency == other.currency else {
            throw LedgerError(.currencyMismatch, "cannot add \(other.currency) to \(currency)", field: "currency")
        }
        let (sum, overflow) = minorUnits.addingReportingOverflow(other.minorUnits)
        guard !overflow else {
            throw LedgerError(.invalidAmount, "sum overflows Int64 minor units", field: "amount")
        }
        return Money(minorUnits: sum, currency: currency)
    }

    /// "12.50 EUR"-style rendering assuming two minor digits; exact, integer only.
    public var description: String {
        let sign = minorUnits < 0 ? "-" : ""
        let magnitude = minorUnits.magnitude
        let fraction = magnitude % 100
        return "\(sign)\(magnitude / 100).\(fraction < 10 ? "0" : "")\(fraction) \(currency)"
    }
}
