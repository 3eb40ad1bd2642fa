import Foundation
import PosLedger
import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire

/// What a terminal's cashier and manager do, over its store: each operation
/// checks everything first and writes only when every check passed.
public final class TerminalDesk {
    let replica: TerminalReplica
    public let settings: TerminalSettings
    public let currency: Currency
    public let limits: OfflineRiskLimits
    public let policy: ReturnPolicy

    public var directory: String { replica.directory }
    /// This terminal's id (1...999,999).
    public var terminal: UInt32 { replica.terminal.rawValue }
    /// The merchant it was enrolled for.
    public var merchant: String { replica.enrollment.merchant }

    /// The folded state this terminal sees, as `terminal show` prints it.
    public func report(_ filter: LedgerReport.Filter = .all) throws(AppError) -> LedgerReport {
        precondition(replica.focusLoaded == nil, "a report needs the whole state: open the terminal without a focus")
        return try LedgerReport(replica.state, filter: filter)
    }

    /// Creates a terminal store from an enrollment file central issued.
    public static func initialize(directory: String, enrollmentFile: String, settings: TerminalSettings,
                                  lockWaitMillis: Int64 = SyncLimits.storeLockWaitMillisDefault) throws(AppError) -> TerminalDesk {
        _ = try settings.validated()
        try CommandPaths.checkInput(enrollmentFile, what: "enrollment file")
        let enrollment: Enrollment
        do { enrollment = try Enrollment.read(from: enrollmentFile) } catch {
            throw AppError(.refused, "enrollment file: \(error.description)")
        }
        try StoreKind.terminal.checkCreating(in: directory)
        let replica = try store { () throws(SyncError) in
            try TerminalReplica.initialize(directory: directory, enrollment: enrollment, options: try options(settings, lockWaitMillis: lockWaitMillis))
        }
        try settings.write(directory: directory)
        return try TerminalDesk(replica: replica, settings: settings)
    }

    /// What one command works on, for a focused open (sync-protocol.md "Terminal checkpoint and
    /// compaction", Focused open): a scan's payment code, a return's sale, a ticket; `status`, the sales the
    /// journal tail touches and the checkpoint's status counts; `nothing` when the command's input did not
    /// parse (it is refused before anything is read).
    public enum Focus: Sendable {
        case paymentCode(PaymentCode)
        case sale(SaleId)
        case ticket(TicketId)
        case status
        case nothing
    }

    /// Opens the terminal's store; with `focus`, reads only what that command needs of its checkpoint
    /// (and the journal tail): the desk then serves only `scan`, `requestReturn` and `decide` on that focus,
    /// or, opened with `.status`, only `status`.
    public static func open(directory: String, lockWaitMillis: Int64 = SyncLimits.storeLockWaitMillisDefault,
                            focus: Focus? = nil) throws(AppError) -> TerminalDesk {
        try StoreKind.terminal.checkOpening(directory)
        let settings = try TerminalSettings.read(directory: directory)
        let replica: TerminalReplica
        do {
            replica = try TerminalReplica.open(directory: directory, options: try options(settings, lockWaitMillis: lockWaitMillis),
                                               focus: focus.map { openFocus($0, directory: directory) })
        } catch {
            throw AppError.opening(error, what: "terminal store")
        }
        return try TerminalDesk(replica: replica, settings: settings)
    }

    /// The replica's focus: a payment code's duplicate key is derived with the enrollment's merchant key
    /// (an enrollment that does not read leaves the key out: the open then fails on it as a full open would).
    static func openFocus(_ focus: Focus, directory: String) -> OpenFocus {
        switch focus {
        case .paymentCode(let code):
            guard let enrollment = try? Enrollment.read(from: directory + "/enrollment.json") else { return OpenFocus() }
            return OpenFocus(keys: [code.duplicateKey(merchantKey: enrollment.ledgerMerchantKey)])
        case .sale(let sale): return OpenFocus(sales: [sale])
        case .ticket(let ticket): return OpenFocus(tickets: [ticket])
        case .status: return .status
        case .nothing: return OpenFocus()
        }
    }

    /// How this command's open went (checkpoint used, focused, frames and records read).
    public var openReport: TerminalReplica.OpenReport { replica.openReport }

    /// The replica's options: its store lock wait, and the relay scope of the return policy's window
    /// (the terminal pulls the merchant's sales of that window plus the margin: sync-protocol.md, "Relay scope").
    static func options(_ settings: TerminalSettings, lockWaitMillis: Int64) throws(SyncError) -> TerminalOptions {
        let policy: ReturnPolicy
        do { policy = try settings.validated().policy } catch { throw SyncError(.invalidArgument, error.message, location: TerminalSettings.fileName) }
        return TerminalOptions(lockWaitMillis: lockWaitMillis, scope: RelayScope(policy: policy))
    }

    init(replica: TerminalReplica, settings: TerminalSettings) throws(AppError) {
        self.replica = replica
        self.settings = settings
        (currency, limits, policy) = try settings.validated()
    }

    public func close() throws(AppError) { try store { () throws(SyncError) in try replica.close() } }

    /// Wall time the offline limit counts from: the last sync, or set-up.
    public var lastSyncOrSetupMillis: Int64 { replica.lastSyncMillis ?? settings.initializedMillis }

    /// The latest wall time this terminal has seen: its set-up, its last sync and
    /// its newest own event's HLC time. Time offline counts to the later of this
    /// and the clock, so a clock set back (`--now` before the last sync) never
    /// gives more offline time, and time offline is never negative.
    public func latestWallMillisSeen() throws(AppError) -> Int64 {
        var latest = max(settings.initializedMillis, replica.lastSyncMillis ?? settings.initializedMillis)
        let seq = replica.lastSequence
        // The newest own event has the newest own HLC: the terminal's clock never goes back.
        if seq > 0, let record = try store({ () throws(SyncError) in try replica.ownRecord(seq: seq) }) {
            do { latest = max(latest, Int64(try RecordCodec.decode(record, context: replica.enrollment.recordContext).hlc.millis)) } catch {
                throw AppError(.store, "\(TextOutput.plain(directory))/outbound seq \(seq): \(error.message)")
            }
        }
        return latest
    }

    /// The time offline counts to at `nowMillis`: the later of it and the latest time seen.
    public func offlineClockMillis(_ nowMillis: Int64) throws(AppError) -> Int64 { max(nowMillis, try latestWallMillisSeen()) }

    /// Captures central has not acknowledged: count and total.
    public func unsyncedCaptures() throws(AppError) -> (events: Int, captures: [Event], total: Money) {
        let events = try store { () throws(SyncError) in try replica.unacknowledgedEvents() }
        var total: Int64 = 0
        var captures: [Event] = []
        for e in events {
            if case .saleCaptured(let c) = e.body { total += c.amount.minorUnits; captures.append(e) }
        }
        return (events.count, captures, Money(minorUnits: total, currency: currency))
    }

    // MARK: - Scan

    public struct ScanResult: Codable, Sendable, Equatable {
        public var sale: String
        public var returnCode: String
        public var returnCodeDigits: String
        public var amount: String
        public var currency: String
        public var wallet: String
        public var paymentCode: String
        public var items: [String]
    }

    /// Captures a payment offline: checks the offline limits and that this code
    /// was not already captured here (a code is single-use), then writes it.
    public func scan(amount: Money, paymentCode: PaymentCode, items: [SaleItem] = [], nowMillis: Int64) throws(AppError) -> ScanResult {
        guard amount.currency == currency else {
            throw AppError(.refused, "this terminal trades in \(currency), not \(amount.currency)")
        }
        if !items.isEmpty {
            let sum = try SaleItem.total(items, currency: currency)
            guard sum == amount.minorUnits else {
                throw AppError(.refused, "items add up to \(AmountFormat.format(minorUnits: sum, currency: currency)) \(currency), the amount is \(AmountFormat.display(amount))")
            }
        }
        let capture = try ledger { () throws(LedgerError) in
            try SaleCapture(amount: amount, paymentCode: paymentCode, merchantKey: replica.enrollment.ledgerMerchantKey)
        }
        let state = replica.state
        if let earlier = state.sales.values.filter({ $0.duplicateKey == capture.duplicateKey }).map(\.id).min() {
            throw AppError(.refused, "payment code \(paymentCode.masked) was already captured as sale \(earlier.dot): a code is single-use, ask for a new one")
        }
        let unsynced = try unsyncedCaptures().total
        let countedTo = try offlineClockMillis(nowMillis)
        do {
            try limits.checkCapture(amount: amount, unsyncedCaptured: unsynced, lastSyncMillis: lastSyncOrSetupMillis, nowMillis: countedTo)
        } catch {
            let behind = countedTo > nowMillis && error.field == "offlineHoursMax"
            throw AppError(.refused, AppError.from(error).message + (behind
                ? " (counted to \(WallClock.format(countedTo)), the latest time this terminal has seen; its clock says \(WallClock.format(nowMillis)))" : ""))
        }
        let event = try store { () throws(SyncError) in try replica.record(.saleCaptured(capture), wallMillis: nowMillis) }
        let id = SaleId(event.dot)
        return ScanResult(sale: "\(id.dot)", returnCode: id.returnCode.description, returnCodeDigits: id.returnCode.digits,
                          amount: AmountFormat.format(amount), currency: currency.code, wallet: capture.wallet.description,
                          paymentCode: paymentCode.masked, items: items.map(\.description))
    }

    // MARK: - Returns

    public struct ReturnInput: Sendable {
        public var returnCode: String
        public var reason: ReturnReason
        public var resolution: Resolution
        /// nil: what is still refundable (a refund) or the sale amount (an exchange).
        public var amountText: String?
        public var unused: Bool
        public var packagingIntact: Bool
        public var contact: CustomerContact?
        public var note: NoteText?

        public init(returnCode: String, reason: ReturnReason, resolution: Resolution, amountText: String? = nil,
                    unused: Bool = false, packagingIntact: Bool = false, contact: CustomerContact? = nil, note: NoteText? = nil) {
            self.returnCode = returnCode
            self.reason = reason
            self.resolution = resolution
            self.amountText = amountText
            self.unused = unused
            self.packagingIntact = packagingIntact
            self.contact = contact
            self.note = note
        }
    }

    public struct ReturnResult: Codable, Sendable, Equatable {
        public struct Condition: Codable, Sendable, Equatable {
            public var condition: String
            public var holds: Bool
            public var detail: String
        }
        public var ticket: String
        public var ticketId: String
        public var sale: String
        public var resolution: String
        public var amount: String
        public var currency: String
        public var reason: String
        public var policyHolds: Bool
        public var conditions: [Condition]
        public var notification: String?
    }

    /// Opens a return ticket: identifies the sale from its return code, checks
    /// the amount (never above the sale), evaluates the return policy (shown,
    /// not enforced: the merchant decides), writes the request (and the note).
    public func requestReturn(_ input: ReturnInput, nowMillis: Int64) throws(AppError) -> ReturnResult {
        let code = try EntityParsing.returnCode(input.returnCode)
        let saleID = code.sale
        let state = replica.state
        guard let captureEvent = state.capture(of: saleID), case .saleCaptured(let capture) = captureEvent.body,
              let sale = state.sales[saleID] else {
            throw AppError(.refused, Self.saleNotHeld(code: "\(code)", sale: saleID, policy: policy))
        }
        // Held but captured before the scope (the terminal's own sale, a key-group partner, or one not
        // compacted yet): its later tickets and decisions are no longer relayed here, so the
        // refundable amount shown could be stale. Refused like a sale not held (sync-protocol.md "Relay scope").
        let floor = replica.scopeFloorMillis(wallMillis: nowMillis)
        if floor > 0, captureEvent.hlc.millis < floor {
            throw AppError(.refused, Self.saleBeforeScope(code: "\(code)", sale: saleID, captureMillis: captureEvent.hlc.millis, policy: policy))
        }
        switch sale.status {
        case .declined, .expired, .voidDuplicate:
            throw AppError(.refused, "sale \(saleID.dot) is \(sale.status): it was never paid, there is nothing to return")
        default: break
        }
        // Live refund tickets already on the sale (not cancelled or rejected).
        let live = sale.tickets.compactMap { state.tickets[$0] }.filter {
            $0.resolution == .refund && $0.status != .cancelled && $0.status != .rejected
        }
        let already = live.reduce(Int64(0)) { $0 + $1.amount.minorUnits }
        let amount: Money
        if let text = input.amountText {
            amount = try AmountFormat.parse(text, capture.amount.currency)
        } else if input.resolution == .refund, already < capture.amount.minorUnits {
            amount = Money(minorUnits: capture.amount.minorUnits - already, currency: capture.amount.currency)
        } else {
            amount = capture.amount
        }
        guard amount.minorUnits <= capture.amount.minorUnits else {
            let excess = Money(minorUnits: amount.minorUnits - capture.amount.minorUnits, currency: amount.currency)
            throw AppError(.refused, "refund \(AmountFormat.display(amount)) is above the sale \(saleID.dot) amount \(AmountFormat.display(capture.amount)) by \(AmountFormat.display(excess))")
        }
        // What this terminal already sees claimed counts too (an over-refund across
        // two shops offline can still happen, and is then held by the ledger's rule).
        if input.resolution == .refund, amount.minorUnits > capture.amount.minorUnits - already {
            let left = Money(minorUnits: max(0, capture.amount.minorUnits - already), currency: amount.currency)
            throw AppError(.refused, "refund \(AmountFormat.display(amount)) is above what is left to refund on sale \(saleID.dot): \(AmountFormat.display(left)) of \(AmountFormat.display(capture.amount)) (\(live.count) refund ticket(s) already open)")
        }
        let request = try ledger { () throws(LedgerError) in
            try RefundRequest(sale: saleID, saleAmount: capture.amount, amount: amount, reason: input.reason,
                              resolution: input.resolution, contact: input.contact)
        }
        let evaluation = policy.evaluate(.init(
            saleMillis: Int64(captureEvent.hlc.millis), nowMillis: nowMillis, goodsUnused: input.unused,
            packagingIntact: input.packagingIntact, saleAmount: capture.amount,
            alreadyRefunded: Money(minorUnits: already, currency: capture.amount.currency),
            refundTicketsSoFar: live.count, requested: amount, resolution: input.resolution))
        let event = try store { () throws(SyncError) in try replica.record(.refundRequested(request), wallMillis: nowMillis) }
        let ticket = TicketId(event.dot)
        if let note = input.note {
            _ = try store { () throws(SyncError) in try replica.record(.noteAdded(ticket, note), wallMillis: nowMillis) }
        }
        return ReturnResult(
            ticket: ticket.ticketNumber.text, ticketId: "\(ticket.dot)", sale: "\(saleID.dot)",
            resolution: input.resolution.description, amount: AmountFormat.format(amount), currency: amount.currency.code,
            reason: input.reason.description, policyHolds: evaluation.allHold,
            conditions: evaluation.results.map { .init(condition: $0.condition.rawValue, holds: $0.holds, detail: $0.detail) },
            notification: NotificationOutbox.entry(for: event, request: request)?.description)
    }

    /// Why a return on a sale this terminal does not hold is refused here (sync-protocol.md, "Relay scope").
    static func saleBeforeScope(code: String, sale: SaleId, captureMillis: UInt64, policy: ReturnPolicy) -> String {
        "return code \(code): sale \(sale.dot) was captured at \(WallClock.format(Int64(captureMillis))), before this terminal's return scope "
            + "(\(RelayScope(policy: policy).description)): its later tickets and decisions are no longer relayed here; "
            + "request the return online at central (the back office)"
    }

    static func saleNotHeld(code: String, sale: SaleId, policy: ReturnPolicy) -> String {
        "return code \(code): sale \(sale.dot) is not held at this terminal: it is outside this terminal's return scope "
            + "(\(RelayScope(policy: policy).description)), or was sold elsewhere since the last sync; "
            + "sync and try again, or request the return online at central (the back office)"
    }

    // MARK: - Decisions

    public func decide(_ action: TicketAction, ticket: TicketId, route: RefundRoute? = nil, note: NoteText? = nil,
                       nowMillis: Int64) throws(AppError) -> DecisionResult {
        guard action != .complete else {
            throw AppError(.refused, "only central completes a refund (once money moved)")
        }
        let bodies = try TicketDecisions.plan(action, ticket: ticket, state: replica.state, route: route, note: note)
        var events: [Event] = []
        for body in bodies {
            events.append(try store { () throws(SyncError) in try replica.record(body, wallMillis: nowMillis) })
        }
        return DecisionResult(ticket: ticket, action: action, events: events, state: replica.state)
    }

    // MARK: - Sync

    public struct SyncResult: Codable, Sendable, Equatable {
        public var pushed: Int
        public var alreadyAtCentral: Int
        public var pulled: Int
        public var acknowledgedThrough: UInt64
        public var clockSkewed: Bool
        /// Events central had acknowledged and no longer held: re-pushed in this sync as far as this terminal still held them.
        public var centralLostFrom: UInt64?
        public var centralLostThrough: UInt64?
        /// False when the session stopped early to give the store back (`terminal sync --watch`); the next one goes on.
        public var complete: Bool
    }

    /// One sync session with central; `progress` hears of every batch (events pushed, central positions scanned).
    public func sync(with central: CentralDesk, nowMillis: Int64, progress: ProgressSink = SilentProgress()) throws(AppError) -> SyncResult {
        try sync(via: InProcessTransport(central: central.store), nowMillis: nowMillis, progress: progress)
    }

    /// One sync session through `transport`, in batches of at most the given bytes; `yield` may end it early
    /// between batches (what was done is kept).
    func sync(via transport: any SyncTransport, nowMillis: Int64, pushBatchBytes: Int = SyncLimits.pushBatchBytesMax,
              pullBatchBytes: Int = SyncLimits.pullBatchBytesMax, yield: (() -> Bool)? = nil,
              progress: ProgressSink = SilentProgress()) throws(AppError) -> SyncResult {
        var begun = false
        var reported = 0
        let r = try store { () throws(SyncError) in
            try replica.sync(via: transport, wallMillis: nowMillis, pushBatchBytes: pushBatchBytes, pullBatchBytes: pullBatchBytes, yield: yield) { status in
                if !begun {
                    progress.begin("sync", total: status.toPush + status.toScan, unit: "events")
                    begun = true
                }
                let done = status.pushed + status.scanned
                if done > reported { progress.advance(by: done - reported); reported = done }
            }
        }
        if begun { progress.end() }
        return SyncResult(pushed: r.pushed, alreadyAtCentral: r.duplicatesAtCentral, pulled: r.pulled,
                          acknowledgedThrough: r.acknowledged, clockSkewed: r.clockSkewed,
                          centralLostFrom: r.centralLost?.lowerBound, centralLostThrough: r.centralLost?.upperBound, complete: r.complete)
    }
}

/// A line of the receipt: SKU, quantity, unit price (not journaled: the
/// capture event holds the amount; items are checked against it and printed).
public struct SaleItem: Sendable, Equatable, CustomStringConvertible {
    public static let quantityMax = 10_000
    public let sku: String
    public let quantity: Int
    public let unitPrice: Money

    /// "SKU:QTY:PRICE", e.g. "TEE-M:2:6.25".
    public init(parsing text: String, currency: Currency) throws(AppError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        // The quantity is digits only, without a sign or a leading zero (Int() alone would take "+2" and "02").
        guard parts.count == 3, !parts[0].isEmpty, parts[0].utf8.count <= 32, parts[1].utf8.allSatisfy({ (48...57).contains($0) }),
              parts[1].first != "0", let q = Int(parts[1]), (1...Self.quantityMax).contains(q) else {
            throw AppError(.refused, "item \(PrintableText.escaped(String(text.prefix(48)))): expected SKU:QTY:PRICE like TEE-M:2:6.25 (quantity 1...\(Self.quantityMax))")
        }
        sku = String(parts[0])
        quantity = q
        unitPrice = try AmountFormat.parse(String(parts[2]), currency, field: "item \(PrintableText.escaped(String(parts[0]))) price")
    }

    public var description: String { "\(sku) x\(quantity) @ \(AmountFormat.display(unitPrice))" }

    public static func total(_ items: [SaleItem], currency: Currency) throws(AppError) -> Int64 {
        var sum: Int64 = 0
        for i in items {
            let (line, o1) = i.unitPrice.minorUnits.multipliedReportingOverflow(by: Int64(i.quantity))
            let (s, o2) = sum.addingReportingOverflow(line)
            guard !o1, !o2, s <= Limits.amountMinorMax else { throw AppError(.refused, "items add up to more than the largest amount") }
            sum = s
        }
        return sum
    }
}

// MARK: - Recovery

extension TerminalDesk {
    /// What `terminal recover` did.
    public struct RecoverResult: Codable, Sendable, Equatable {
        public var directory: String
        public var nothingToDo: Bool
        public var outboundRebuilt: Bool
        public var inboundRebuilt: Bool
        public var firstSeq: UInt64
        public var lastSeq: UInt64
        public var fromCentral: String?
        public var keptLocal: String?
        /// Numbers whose events are lost (voided: never given to another event).
        public var lost: [String]
        /// Intact events after a lost number, kept at their numbers.
        public var keptAfterLoss: [String]
        /// Numbers reserved above every number known used, voided (an event there, if any, is lost).
        public var voidedUnused: String?
        /// The damaged journal showed damage (not only an early end).
        public var damageFound: Bool
        public var differedFromCentral: [UInt64]
        /// Lost numbers central had acknowledged once (gone at central too).
        public var lostEverywhere: [String]
        public var damagedOutbound: String?
        public var damagedInbound: String?
    }

    /// `terminal recover --central DIR`: rebuild the outbound journal from central's copy of what it
    /// acknowledged and the intact unacknowledged events the damaged journal still holds.
    public static func recover(directory: String, central: String, nowMillis: Int64,
                               lockWaitMillis: Int64 = SyncLimits.storeLockWaitMillisDefault) throws(AppError) -> RecoverResult {
        try StoreKind.terminal.checkOpening(directory)
        try StoreKind.central.checkOpening(central)
        var hq: CentralDesk?
        defer { try? hq?.close() }
        return try recover(directory: directory, nowMillis: nowMillis, lockWaitMillis: lockWaitMillis) { () throws(AppError) -> any SyncTransport in
            hq = try CentralDesk.open(directory: central, clockMillis: { nowMillis }, lockWaitMillis: lockWaitMillis)
            return InProcessTransport(central: hq!.store)
        }
    }

    /// Recovery through whatever transport `connect` opens (called once the terminal's lock is held).
    static func recover(directory: String, nowMillis: Int64, lockWaitMillis: Int64,
                        connect: () throws(AppError) -> any SyncTransport) throws(AppError) -> RecoverResult {
        // Central is opened once the terminal's lock is held, the order `terminal sync` takes them in:
        // the other order let a recover and a sync of one terminal each wait for the other's lock until both timed out.
        var centralError: AppError?
        let r: TerminalRecoveryReport
        do throws(SyncError) {
            r = try TerminalReplica.recover(directory: directory, connect: { () throws(SyncError) -> any SyncTransport in
                do throws(AppError) { return try connect() } catch {
                    centralError = error
                    throw SyncError(.io, error.message)
                }
            }, wallMillis: nowMillis, options: TerminalOptions(lockWaitMillis: lockWaitMillis))
        } catch { throw centralError ?? AppError.from(error) }
        func range(_ r: ClosedRange<UInt64>?) -> String? { r.map { "\($0.lowerBound)...\($0.upperBound)" } }
        return RecoverResult(directory: directory, nothingToDo: r.nothingToDo, outboundRebuilt: r.outboundRebuilt, inboundRebuilt: r.inboundRebuilt,
                             firstSeq: r.firstSequence, lastSeq: r.lastSequence, fromCentral: range(r.fromCentral), keptLocal: range(r.keptLocal),
                             lost: r.lost.compactMap { range($0) }, keptAfterLoss: r.keptAfterLoss.compactMap { range($0) },
                             voidedUnused: range(r.voidedUnused), damageFound: r.damageFound, differedFromCentral: r.differedFromCentral,
                             lostEverywhere: r.lostEverywhere.compactMap { range($0) }, damagedOutbound: r.damagedOutbound, damagedInbound: r.damagedInbound)
    }
}

// MARK: - Bundles

extension TerminalDesk {
    public struct ExportResult: Codable, Sendable, Equatable {
        public var file: String
        public var events: Int
        public var firstSeq: UInt64
        public var lastSeq: UInt64
        public var text: String { "exported \(events) events (seq \(firstSeq)...\(lastSeq)) to \(TextOutput.plain(file))" }
    }

    /// Writes every event central lacks to a bundle file for a courier (encrypted, streamed).
    public func exportBundle(to path: String) throws(AppError) -> ExportResult {
        let r = try store { () throws(SyncError) in try replica.exportBundle(to: path) }
        return ExportResult(file: path, events: r.events, firstSeq: r.first, lastSeq: r.last)
    }
}
