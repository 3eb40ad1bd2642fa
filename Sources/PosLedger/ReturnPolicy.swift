// A merchant's return policy and its evaluation for one request. The
// terminal shows every condition with whether it holds.

public struct ReturnPolicy: Hashable, Sendable {
    public static let windowDaysMax = 365
    public static let refundsPerSaleMaxCeiling = 50

    public let windowDays: Int
    public let requiresUnused: Bool
    public let requiresPackagingIntact: Bool
    /// Refund tickets (partial or full) one sale may have.
    public let refundsPerSaleMax: Int

    public init(windowDays: Int = 7, requiresUnused: Bool = true, requiresPackagingIntact: Bool = true,
                refundsPerSaleMax: Int = 3) throws(LedgerError) {
        guard (0...ReturnPolicy.windowDaysMax).contains(windowDays) else {
            throw LedgerError(.valueOutOfRange, "window days must be 0...\(ReturnPolicy.windowDaysMax)",
                              field: "windowDays")
        }
        guard (1...ReturnPolicy.refundsPerSaleMaxCeiling).contains(refundsPerSaleMax) else {
            throw LedgerError(.valueOutOfRange, "refunds per sale must be 1...\(ReturnPolicy.refundsPerSaleMaxCeiling)",
                              field: "refundsPerSaleMax")
        }
        self.windowDays = windowDays
        self.requiresUnused = requiresUnused
        self.requiresPackagingIntact = requiresPackagingIntact
        self.refundsPerSaleMax = refundsPerSaleMax
    }

    public enum Condition: String, Hashable, Sendable, CaseIterable {
        case withinWindow = "within-window"
        case unused = "unused"
        case packagingIntact = "packaging-intact"
        case amountWithinPaid = "amount-within-paid"
        case refundCount = "refund-count"
    }

    public struct ConditionResult: Hashable, Sendable, CustomStringConvertible {
        public let condition: Condition
        public let holds: Bool
        public let detail: String
        public var description: String { "\(condition.rawValue): \(holds ? "ok" : "FAILS") (\(detail))" }
    }

    public struct Evaluation: Hashable, Sendable {
        /// Every condition the policy checks, in `Condition` order.
        public let results: [ConditionResult]
        public var allHold: Bool { results.allSatisfy(\.holds) }
        public var failing: [Condition] { results.filter { !$0.holds }.map(\.condition) }
    }

    /// What the terminal knows when a customer asks for a return.
    public struct Request: Hashable, Sendable {
        public var saleMillis: Int64
        public var nowMillis: Int64
        public var goodsUnused: Bool
        public var packagingIntact: Bool
        public var saleAmount: Money
        /// Refunds already requested and not cancelled/rejected on this sale.
        public var alreadyRefunded: Money
        public var refundTicketsSoFar: Int
        public var requested: Money
        public var resolution: Resolution

        public init(saleMillis: Int64, nowMillis: Int64, goodsUnused: Bool, packagingIntact: Bool,
                    saleAmount: Money, alreadyRefunded: Money, refundTicketsSoFar: Int, requested: Money,
                    resolution: Resolution) {
            self.saleMillis = saleMillis
            self.nowMillis = nowMillis
            self.goodsUnused = goodsUnused
            self.packagingIntact = packagingIntact
            self.saleAmount = saleAmount
            self.alreadyRefunded = alreadyRefunded
            self.refundTicketsSoFar = refundTicketsSoFar
            self.requested = requested
            self.resolution = resolution
        }
    }

    public func evaluate(_ r: Request) -> Evaluation {
        var results: [ConditionResult] = []
        let ageMillis = r.nowMillis - r.saleMillis
        let windowMillis = Int64(windowDays) * Millis.perDay
        results.append(ConditionResult(condition: .withinWindow, holds: ageMillis <= windowMillis,
                                       detail: ageMillis <= windowMillis
                                           ? "sold \(ageMillis / Millis.perHour) h ago, window \(windowDays) days"
                                           : "window of \(windowDays) days passed \(ageMillis - windowMillis) ms ago"))
        if requiresUnused {
            results.append(ConditionResult(condition: .unused, holds: r.goodsUnused,
                                           detail: r.goodsUnused ? "goods unused" : "goods were used"))
        }
        if requiresPackagingIntact {
            results.append(ConditionResult(condition: .packagingIntact, holds: r.packagingIntact,
                                           detail: r.packagingIntact ? "packaging intact" : "packaging damaged"))
        }
        if r.resolution == .refund {
            let sameCurrency = r.requested.currency == r.saleAmount.currency
                && r.alreadyRefunded.currency == r.saleAmount.currency
            let left = r.saleAmount.minorUnits - r.alreadyRefunded.minorUnits
            let fits = sameCurrency && r.requested.minorUnits > 0 && r.requested.minorUnits <= left
            results.append(ConditionResult(
                condition: .amountWithinPaid, holds: fits,
                detail: !sameCurrency ? "currency differs from the sale's \(r.saleAmount.currency)"
                    : fits ? "\(Money(minorUnits: left, currency: r.saleAmount.currency)) refundable"
                    : "exceeds the refundable \(Money(minorUnits: left, currency: r.saleAmount.currency)) by "
                        + "\(Money(minorUnits: r.requested.minorUnits - left, currency: r.saleAmount.currency))"))
            let countOK = r.refundTicketsSoFar < refundsPerSaleMax
            results.append(ConditionResult(condition: .refundCount, holds: countOK,
                                           detail: "\(r.refundTicketsSoFar) of \(refundsPerSaleMax) refunds used"))
        }
        return Evaluation(results: results)
    }
}
