// Offline capture risk limits of one terminal, like Square's and Clover's
// offline modes: a per-payment limit, a limit on the total captured amount
// not yet synced, and a maximum time offline. Beyond any of them the
// terminal refuses the capture, saying which limit and by how much.

public struct OfflineRiskLimits: Hashable, Sendable {
    public static let perPaymentMinorMaxDefault: Int64 = 50_000  // 500.00
    public static let unsyncedTotalMinorMaxDefault: Int64 = 500_000  // 5,000.00
    public static let offlineHoursMaxDefault: Int64 = 24
    public static let offlineHoursMaxCeiling: Int64 = 7 * 24  // Clover's 7 days

    public let currency: Currency
    public let perPaymentMinorMax: Int64
    public let unsyncedTotalMinorMax: Int64
    public let offlineHoursMax: Int64

    public var offlineMillisMax: Int64 { offlineHoursMax * Millis.perHour }

    public init(currency: Currency,
                perPaymentMinorMax: Int64 = perPaymentMinorMaxDefault,
                unsyncedTotalMinorMax: Int64 = unsyncedTotalMinorMaxDefault,
                offlineHoursMax: Int64 = offlineHoursMaxDefault) throws(LedgerError) {
        guard perPaymentMinorMax > 0, perPaymentMinorMax <= Limits.amountMinorMax else {
            throw LedgerError(.valueOutOfRange, "per-payment limit must be 1...\(Limits.amountMinorMax)",
                              field: "perPaymentMinorMax")
        }
        guard unsyncedTotalMinorMax >= perPaymentMinorMax, unsyncedTotalMinorMax <= Limits.amountMinorMax else {
            throw LedgerError(.valueOutOfRange, "unsynced total limit must be >= the per-payment limit",
                              field: "unsyncedTotalMinorMax")
        }
        guard (1...OfflineRiskLimits.offlineHoursMaxCeiling).contains(offlineHoursMax) else {
            throw LedgerError(.valueOutOfRange, "offline hours must be 1...\(OfflineRiskLimits.offlineHoursMaxCeiling)",
                              field: "offlineHoursMax")
        }
        self.currency = currency
        self.perPaymentMinorMax = perPaymentMinorMax
        self.unsyncedTotalMinorMax = unsyncedTotalMinorMax
        self.offlineHoursMax = offlineHoursMax
    }

    /// Throws `.limitExceeded` naming the limit and the excess when an offline
    /// capture of `amount` must be refused. `unsyncedCaptured` is the total of
    /// captures not yet acknowledged by central; `lastSyncMillis` the wall time
    /// of the last successful sync (or of enrollment).
    public func checkCapture(amount: Money, unsyncedCaptured: Money,
                             lastSyncMillis: Int64, nowMillis: Int64) throws(LedgerError) {
        guard amount.currency == currency, unsyncedCaptured.currency == currency else {
            throw LedgerError(.currencyMismatch, "offline limits are in \(currency), capture in \(amount.currency)",
                              field: "currency")
        }
        _ = try Money.positive(amount.minorUnits, amount.currency)
        if amount.minorUnits > perPaymentMinorMax {
            let excess = Money(minorUnits: amount.minorUnits - perPaymentMinorMax, currency: currency)
            throw LedgerError(.limitExceeded,
                              "offline per-payment limit \(Money(minorUnits: perPaymentMinorMax, currency: currency)) "
                                  + "exceeded by \(excess)",
                              field: "perPaymentMinorMax")
        }
        let total = unsyncedCaptured.minorUnits + amount.minorUnits  // both <= 10^15: no overflow
        if total > unsyncedTotalMinorMax {
            let excess = Money(minorUnits: total - unsyncedTotalMinorMax, currency: currency)
            throw LedgerError(.limitExceeded,
                              "offline unsynced total limit "
                                  + "\(Money(minorUnits: unsyncedTotalMinorMax, currency: currency)) exceeded by \(excess)",
                              field: "unsyncedTotalMinorMax")
        }
        let offlineMillis = nowMillis - lastSyncMillis
        if offlineMillis > offlineMillisMax {
            throw LedgerError(.limitExceeded,
                              "offline for \(offlineMillis) ms, limit \(offlineHoursMax) h exceeded by "
                                  + "\(offlineMillis - offlineMillisMax) ms: sync before capturing",
                              field: "offlineHoursMax")
        }
    }

    /// Milliseconds of offline capture left before the time limit (0 when over).
    public func offlineMillisLeft(lastSyncMillis: Int64, nowMillis: Int64) -> Int64 {
        max(0, offlineMillisMax - (nowMillis - lastSyncMillis))
    }
}
