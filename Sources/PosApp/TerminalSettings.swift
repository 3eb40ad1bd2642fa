import Foundation
import PosLedger
import PosTerminal

/// A terminal's own settings, chosen at `terminal init` and kept beside its
/// journals as settings.json: the currency it trades in, its offline risk
/// limits and the merchant's return policy, and when it was set up (the
/// offline-time limit counts from there until the first sync).
public struct TerminalSettings: Codable, Sendable, Equatable {
    public static let fileName = "settings.json"
    public static let formatName = "possync-terminal-settings-v1"

    public var format = TerminalSettings.formatName
    public var currency: String
    public var perPaymentMinorMax: Int64
    public var unsyncedTotalMinorMax: Int64
    public var offlineHoursMax: Int64
    public var returnWindowDays: Int
    public var requiresUnused: Bool
    public var requiresPackagingIntact: Bool
    public var refundsPerSaleMax: Int
    public var initializedMillis: Int64

    public init(currency: Currency = .CNY,
                perPaymentMinorMax: Int64 = OfflineRiskLimits.perPaymentMinorMaxDefault,
                unsyncedTotalMinorMax: Int64 = OfflineRiskLimits.unsyncedTotalMinorMaxDefault,
                offlineHoursMax: Int64 = OfflineRiskLimits.offlineHoursMaxDefault,
                returnWindowDays: Int = 7, requiresUnused: Bool = true, requiresPackagingIntact: Bool = true,
                refundsPerSaleMax: Int = 3, initializedMillis: Int64) throws(AppError) {
        self.currency = currency.code
        self.perPaymentMinorMax = perPaymentMinorMax
        self.unsyncedTotalMinorMax = unsyncedTotalMinorMax
        self.offlineHoursMax = offlineHoursMax
        self.returnWindowDays = returnWindowDays
        self.requiresUnused = requiresUnused
        self.requiresPackagingIntact = requiresPackagingIntact
        self.refundsPerSaleMax = refundsPerSaleMax
        self.initializedMillis = initializedMillis
        _ = try validated()
    }

    /// The typed values, checked by PosLedger's own constructors.
    public func validated() throws(AppError) -> (currency: Currency, limits: OfflineRiskLimits, policy: ReturnPolicy) {
        try ledger { () throws(LedgerError) in
            let c = try Currency(currency)
            let limits = try OfflineRiskLimits(currency: c, perPaymentMinorMax: perPaymentMinorMax,
                                               unsyncedTotalMinorMax: unsyncedTotalMinorMax, offlineHoursMax: offlineHoursMax)
            let policy = try ReturnPolicy(windowDays: returnWindowDays, requiresUnused: requiresUnused,
                                          requiresPackagingIntact: requiresPackagingIntact, refundsPerSaleMax: refundsPerSaleMax)
            return (c, limits, policy)
        }
    }

    public static func read(directory: String) throws(AppError) -> TerminalSettings {
        let path = directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AppError(.store, "\(path): cannot read the terminal's settings")
        }
        let s: TerminalSettings
        do { s = try JSONDecoder().decode(TerminalSettings.self, from: data) } catch {
            throw AppError(.store, "\(path): not a terminal settings file (\(error))")
        }
        guard s.format == formatName else {
            throw AppError(.store, "\(path): format \"\(s.format)\", expected \"\(formatName)\"")
        }
        do { _ = try s.validated() } catch { throw AppError(.store, "\(path): \(error.message)") }
        return s
    }

    public func write(directory: String) throws(AppError) {
        let path = directory + "/" + TerminalSettings.fileName
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try (try encoder.encode(self) + Data([0x0A])).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw AppError(.store, "\(path): cannot write the terminal's settings: \(error)")
        }
    }
}
