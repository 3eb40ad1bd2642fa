import PosLedger

/// One captured sale as central forwards it to the acquirer.
public struct ForwardRequest: Sendable {
    public let sale: SaleId
    public let amount: Money
    public let wallet: Wallet
    /// The payment code; `revealedDigits()` only inside an acquirer.
    public let paymentCode: PaymentCode
    public let capturedMillis: Int64
    public let forwardedMillis: Int64

    public init(sale: SaleId, amount: Money, wallet: Wallet, paymentCode: PaymentCode, capturedMillis: Int64, forwardedMillis: Int64) {
        self.sale = sale
        self.amount = amount
        self.wallet = wallet
        self.paymentCode = paymentCode
        self.capturedMillis = capturedMillis
        self.forwardedMillis = forwardedMillis
    }
}

/// What the acquirer answered.
public enum AcquirerOutcome: String, Sendable, Codable, Equatable {
    case confirmed, declined, expired
}

public struct AcquirerDecision: Sendable, Equatable {
    public let outcome: AcquirerOutcome
    /// Why, in words (never the payment code in clear).
    public let reason: String
    public init(_ outcome: AcquirerOutcome, _ reason: String) {
        self.outcome = outcome
        self.reason = reason
    }
}

/// Who learns whether an offline capture was real money. A real acquirer
/// (WeChat Pay, Alipay, a bank) plugs in here; the default is the simulator.
public protocol Acquirer {
    var name: String { get }
    func forward(_ request: ForwardRequest) throws(AppError) -> AcquirerDecision
}

/// A deterministic stand-in for the acquirer, so demos and tests run offline.
/// Its rules, in order:
/// 1. expired when forwarded more than `expiryMillisMax` after capture
///    (default 72 hours: the code's single-use token is long dead);
/// 2. declined when the payment code's last digit is 0 (about one in ten:
///    insufficient funds, simulated);
/// 3. confirmed otherwise.
public struct SimulatedAcquirer: Acquirer {
    public static let expiryHoursDefault: Int64 = 72
    public static let expiryHoursMax: Int64 = 30 * 24
    public let expiryMillisMax: Int64
    public var name: String { "simulated acquirer (expiry \(expiryMillisMax / WallClock.hourMillis) h, code ending in 0 declined)" }

    public init(expiryHours: Int64 = expiryHoursDefault) throws(AppError) {
        guard (1...Self.expiryHoursMax).contains(expiryHours) else {
            throw AppError(.refused, "expiry hours must be 1...\(Self.expiryHoursMax), got \(expiryHours)")
        }
        expiryMillisMax = expiryHours * WallClock.hourMillis
    }

    public func forward(_ r: ForwardRequest) throws(AppError) -> AcquirerDecision {
        let age = r.forwardedMillis - r.capturedMillis
        if age > expiryMillisMax {
            return AcquirerDecision(.expired, "forwarded \(WallClock.duration(age)) after capture, window \(expiryMillisMax / WallClock.hourMillis) h")
        }
        if r.paymentCode.revealedDigits().hasSuffix("0") {
            return AcquirerDecision(.declined, "code \(r.paymentCode.masked) declined (codes ending in 0)")
        }
        return AcquirerDecision(.confirmed, "paid")
    }
}
