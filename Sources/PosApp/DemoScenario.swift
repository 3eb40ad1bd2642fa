import Foundation
import PosLedger
import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire

/// `possync demo`: a central store and N terminals of one merchant on the
/// embedded store, days of offline trading with every awkward case the
/// return flow meets, syncs in a seeded shuffled order, forwarding to the
/// simulated acquirer, and the reconciled ledger with every conflict and
/// its rule. Everything runs on a simulated clock, so the output depends on
/// the seed and the sizes only.
public struct DemoConfig: Sendable {
    public static let terminalsRange = 3...20
    public static let daysRange = 3...30
    public static let salesPerTerminalDayMax = 5
    /// Day 0 of the simulated clock.
    public static let startISO = "2026-03-02T00:00:00Z"

    public var seed: UInt64
    public var terminals: Int
    public var days: Int
    public var directory: String

    public init(seed: UInt64 = 1, terminals: Int = 3, days: Int = 4, directory: String) throws(AppError) {
        guard Self.terminalsRange.contains(terminals) else {
            throw AppError(.refused, "--terminals must be \(Self.terminalsRange.lowerBound)...\(Self.terminalsRange.upperBound): two shops and a remote one at least")
        }
        guard Self.daysRange.contains(days) else {
            throw AppError(.refused, "--days must be \(Self.daysRange.lowerBound)...\(Self.daysRange.upperBound): a day to sell, a day to return, a day to decide")
        }
        self.seed = seed
        self.terminals = terminals
        self.days = days
        self.directory = directory
    }
}

public struct DemoResult: Sendable {
    public let report: LedgerReport
    /// Terminals whose ledger equals central's, and those whose does not.
    public let agreeing: [UInt32]
    public let differing: [UInt32]
}

public final class DemoScenario {
    let config: DemoConfig
    let log: (String) -> Void
    let progress: any ProgressSink
    var rng: DemoRandom
    let clock: SimulatedClock
    let start: Int64
    var central: CentralDesk!
    var terminals: [TerminalDesk] = []
    var remoteOnline = false
    var notificationsDelivered = 0
    let merchant = "demo-shop"

    public init(config: DemoConfig, log: @escaping (String) -> Void, progress: any ProgressSink = SilentProgress()) {
        self.config = config
        self.log = log
        self.progress = progress
        rng = DemoRandom(seed: config.seed)
        start = try! WallClock.parse(DemoConfig.startISO)
        clock = SimulatedClock(start)
    }

    var remote: Int { config.terminals }  // the last terminal is the remote shop
    func t(_ i: Int) -> TerminalDesk { terminals[i - 1] }
    var online: [Int] { (1...config.terminals).filter { $0 != remote || remoteOnline } }

    @discardableResult
    func at(_ day: Int, _ hour: Int, _ minute: Int) -> Int64 {
        clock.millis = start + Int64(day) * WallClock.dayMillis + Int64(hour) * WallClock.hourMillis + Int64(minute) * WallClock.minuteMillis
        return clock.millis
    }

    func stamp() -> String {
        let m = clock.millis - start
        let d = m / WallClock.dayMillis, h = m % WallClock.dayMillis / WallClock.hourMillis, mi = m % WallClock.hourMillis / WallClock.minuteMillis
        return "day \(d) \(h < 10 ? "0" : "")\(h):\(mi < 10 ? "0" : "")\(mi)"
    }

    func say(_ who: String, _ what: String) { log("\(stamp())  \(who.padding(toLength: 7, withPad: " ", startingAt: 0)) \(what)") }

    public func run() throws(AppError) -> DemoResult {
        progress.begin("demo", total: config.days + 2, unit: "steps")
        try setUp()
        progress.advance(by: 1)
        var keySale: ScanOutcome? = nil
        var exchangeSale: ScanOutcome? = nil
        var ticketA: TicketId? = nil, ticketB: TicketId? = nil, ticketC: TicketId? = nil
        for day in 0..<config.days {
            log("")
            log("== day \(day)")
            let sales = try trade(day: day)
            if day == 0 {
                keySale = sales.first { $0.terminal == 1 && $0.key }
                exchangeSale = sales.first { $0.terminal == 1 && !$0.key }
                try duplicateScans(sales)
            }
            if day == 1 {
                (ticketA, ticketB, ticketC) = try returns(keySale!, exchangeSale!)
                try crash(terminal: 1)
            }
            if day == 2 { try decisions(ticketA!, ticketC!, ticketB!) }
            if day == config.days - 1 { try courier() }
            try endOfDay(day)
            if day == config.days - 1 { try backOffice(ticketA!) }
            progress.advance(by: 1)
        }
        log("")
        log("== the remote shop is back online; everyone syncs")
        remoteOnline = true
        at(config.days, 9, 0)
        try syncRound(rounds: 2)
        try deliverNotifications()
        progress.advance(by: 1)
        progress.end()
        let result = try finish()
        try nightly()
        return result
    }

    // MARK: - Steps

    func setUp() throws(AppError) {
        at(0, 7, 0)
        central = try CentralDesk.create(directory: config.directory + "/central", clockMillis: { [clock] in clock.millis })
        log("== set-up: central store and \(config.terminals) terminals of merchant \(merchant), seed \(config.seed), \(config.days) days")
        for i in 1...config.terminals {
            let file = config.directory + "/enroll-t\(i).json"
            _ = try central.enroll(terminal: UInt32(i), merchant: merchant, out: file)
            let settings = try TerminalSettings(initializedMillis: clock.millis)
            terminals.append(try TerminalDesk.initialize(directory: config.directory + "/t\(i)", enrollmentFile: file, settings: settings))
            try? FileManager.default.removeItem(atPath: file)
        }
        say("central", "enrolled t1...t\(config.terminals); t\(remote) is a remote shop whose uplink is down after today")
    }

    struct ScanOutcome {
        let terminal: Int
        let result: TerminalDesk.ScanResult
        let code: String
        let key: Bool
    }

    func amountMinor() -> Int64 { Int64(10 + rng.below(590)) * 50 }  // 5.00 ... 299.50

    func trade(day: Int) throws(AppError) -> [ScanOutcome] {
        var out: [ScanOutcome] = []
        for i in 1...config.terminals {
            if i == remote && day > 0 {
                at(day, 8, 0)
                _ = try scan(i, 2_000, code: rng.wechatCode())  // refused: offline too long
                continue
            }
            let count = 2 + rng.below(DemoConfig.salesPerTerminalDayMax - 1)
            for j in 0..<count {
                at(day, 8 + j * 2, rng.below(60))
                let key = day == 0 && i == 1 && j == 0
                // The sale returned later: 120.00, paid (its code does not end in 0).
                let code = rng.wechatCode(lastDigit: key || (day == 0 && i == 1) ? 7 : nil)
                if let r = try scan(i, key ? 12_000 : amountMinor(), code: code) {
                    out.append(ScanOutcome(terminal: i, result: r, code: code, key: key))
                }
            }
        }
        if day == 0 {
            at(day, 17, 30)
            _ = try scan(2, 65_000, code: rng.wechatCode())  // refused: over the per-payment limit
        }
        return out
    }

    func scan(_ i: Int, _ minor: Int64, code: String) throws(AppError) -> TerminalDesk.ScanResult? {
        let amount = Money(minorUnits: minor, currency: t(i).currency)
        let paymentCode = try ledger { () throws(LedgerError) in try PaymentCode(code) }
        do {
            let r = try t(i).scan(amount: amount, paymentCode: paymentCode, nowMillis: clock.millis)
            say("t\(i)", "sale \(r.sale)  \(r.amount) \(r.currency)  \(r.wallet) \(r.paymentCode)  return code \(r.returnCode)")
            return r
        } catch where error.kind == .refused {
            say("t\(i)", "capture of \(AmountFormat.display(amount)) REFUSED: \(error.message)")
            return nil
        }
    }

    func duplicateScans(_ sales: [ScanOutcome]) throws(AppError) {
        guard let victim = sales.first(where: { $0.terminal == 1 && !$0.key }) else { return }
        at(0, 18, 0)
        say("t1", "scans the code of sale \(victim.result.sale) again (customer's phone showed an old code):")
        _ = try scan(1, 1_000, code: victim.code)
        say("t2", "scans the same code (the customer went next door with it):")
        _ = try scan(2, 1_000, code: victim.code)
    }

    func crash(terminal i: Int) throws(AppError) {
        at(1, 18, 30)
        let before = t(i).replica.lastSequence
        let unsynced = try t(i).unsyncedCaptures().events
        let dir = t(i).directory
        try t(i).close()
        // The power fails in the middle of a write: the journal's tail is torn.
        let outbound = dir + "/outbound"
        let last = ((try? FileManager.default.contentsOfDirectory(atPath: outbound)) ?? []).filter { $0.hasSuffix(".seg") }.sorted().last
        if let last, let h = FileHandle(forWritingAtPath: outbound + "/" + last) {
            h.seekToEndOfFile()
            h.write(Data(repeating: 0, count: 64))
            h.closeFile()
        }
        terminals[i - 1] = try TerminalDesk.open(directory: dir)
        let after = t(i).replica.lastSequence
        let unsyncedAfter = try t(i).unsyncedCaptures().events
        say("t\(i)", "CRASH: power cut mid-write (64 torn bytes at the journal's tail); reopened: \(after) of \(before) events intact, \(unsyncedAfter) of \(unsynced) still queued for sync")
    }

    func returns(_ sale: ScanOutcome, _ other: ScanOutcome) throws(AppError) -> (TicketId, TicketId, TicketId) {
        let code = sale.result.returnCodeDigits
        at(1, 17, 5)
        say("t2", "customer returns sale \(sale.result.sale) (sold at t1) with return code \(sale.result.returnCode):")
        let a = try returnRequest(2, .init(returnCode: code, reason: .wrongSize, resolution: .refund, unused: true, packagingIntact: true,
                                           contact: try ledger { () throws(LedgerError) in try CustomerContact(channel: .sms, address: "+8613800138000") }))
        at(1, 17, 20)
        say("t1", "back at t1, someone asks to refund 130.00 on the same receipt:")
        do {
            _ = try t(1).requestReturn(.init(returnCode: code, reason: .changedMind, resolution: .refund, amountText: "130.00", unused: true, packagingIntact: true), nowMillis: clock.millis)
        } catch where error.kind == .refused {
            say("t1", "REFUSED: \(error.message)")
        }
        at(1, 17, 40)
        say("t1", "then 80.00 on it; offline, t1 has not seen t2's ticket (over-refund in the making):")
        let b = try returnRequest(1, .init(returnCode: code, reason: .changedMind, resolution: .refund, amountText: "80.00", unused: true, packagingIntact: false))
        at(1, 18, 0)
        say("t1", "customer wants to exchange sale \(other.result.sale):")
        let c = try returnRequest(1, .init(returnCode: other.result.returnCodeDigits, reason: .quality, resolution: .exchange, unused: true, packagingIntact: true,
                                           note: try ledger { () throws(LedgerError) in try NoteText("seam split on first wash") }))
        return (a, b, c)
    }

    func returnRequest(_ i: Int, _ input: TerminalDesk.ReturnInput) throws(AppError) -> TicketId {
        let r = try t(i).requestReturn(input, nowMillis: clock.millis)
        let conditions = r.conditions.map { "\($0.condition) \($0.holds ? "ok" : "FAILS")" }.joined(separator: ", ")
        say("t\(i)", "ticket \(r.ticket): \(r.resolution) \(r.amount) \(r.currency), \(TextOutput.reason(r.reason)); policy: \(conditions)")
        if let n = r.notification { say("t\(i)", "notification queued: \(TextOutput.plain(n))") }
        return try EntityParsing.ticket(r.ticketId)
    }

    func decisions(_ a: TicketId, _ c: TicketId, _ b: TicketId) throws(AppError) {
        at(2, 17, 30)
        let approved = try t(2).decide(.approve, ticket: a, nowMillis: clock.millis)
        say("t2", "manager approves ticket \(approved.ticket) (offline) -> \(Self.status(approved))")
        at(2, 17, 45)
        let rejected = try central.decide(.reject, ticket: a, note: try ledger { () throws(LedgerError) in try NoteText("receipt photo unreadable") }, nowMillis: clock.millis)
        say("central", "back office rejects ticket \(rejected.ticket) at the same time -> \(Self.status(rejected))")
        at(2, 18, 0)
        let cancelled = try t(1).decide(.cancel, ticket: c, nowMillis: clock.millis)
        say("t1", "customer cancels ticket \(cancelled.ticket) before a decision -> \(Self.status(cancelled))")
        at(2, 18, 15)
        let noted = try t(1).decide(.note, ticket: b, note: try ledger { () throws(LedgerError) in try NoteText("box missing") }, nowMillis: clock.millis)
        say("t1", "adds a note to ticket \(noted.ticket)")
    }

    func courier() throws(AppError) {
        let day = config.days - 1
        at(day, 18, 30)
        let path = config.directory + "/t\(remote)-courier.bundle"
        let exported = try store { () throws(SyncError) in try t(remote).replica.exportBundle(to: path) }
        say("t\(remote)", "exports \(exported.events) unsynced events to a bundle; a courier carries it to the depot")
        let imported = try central.importBundles([path])
        say("central", "imports the bundle: \(imported[0].new) new events, \(imported[0].alreadyHeld) already held")
    }

    func endOfDay(_ day: Int) throws(AppError) {
        at(day, 20, 0)
        try syncRound(rounds: 1)
        at(day, 21, 0)
        let acquirer = try SimulatedAcquirer()
        let f = try central.forward(to: acquirer, nowMillis: clock.millis)
        for s in f.forwarded { say("central", "forwards sale \(s.sale) \(s.amount) \(s.currency): \(s.outcome) (\(s.reason))") }
        for d in f.skippedDuplicates { say("central", "does not forward sale \(d): void-duplicate") }
        at(day, 21, 30)
        try syncRound(rounds: 1)
        at(day, 21, 45)
        try deliverNotifications()
    }

    func syncRound(rounds: Int) throws(AppError) {
        for _ in 0..<rounds {
            let order = rng.shuffled(online)
            var lines: [String] = []
            for i in order {
                clock.millis += WallClock.minuteMillis
                let r = try t(i).sync(with: central, nowMillis: clock.millis)
                lines.append("t\(i) (pushed \(r.pushed), pulled \(r.pulled))")
            }
            say("sync", lines.joined(separator: ", "))
        }
    }

    func backOffice(_ a: TicketId) throws(AppError) {
        let day = config.days - 1
        at(day, 22, 0)
        let state = try PosApp.store { () throws(SyncError) in try central.store.state }
        let view = state.tickets[a]!
        for c in state.conflicts where c.kind == .concurrentDecision {
            say("central", "conflict \(c.kind.rawValue) rule \(c.rule) events \(c.events.map(\.description).joined(separator: ",")) -> \(c.outcome)")
        }
        say("central", "ticket \(a.ticketNumber) is \(view.status): back office reviews the dispute and approves")
        let approved = try central.decide(.approve, ticket: a, nowMillis: clock.millis)
        say("central", "ticket \(approved.ticket) -> \(Self.status(approved))")
        at(day, 22, 10)
        let completed = try central.decide(.complete, ticket: a, nowMillis: clock.millis)
        say("central", "refund of ticket \(completed.ticket) paid out -> \(Self.status(completed))")
        at(day, 22, 15)
        try deliverNotifications()
    }

    static func status(_ r: DecisionResult) -> String { r.status + (r.heldReason.map { "(\($0))" } ?? "") }

    func finish() throws(AppError) -> DemoResult {
        let report = try LedgerReport(PosApp.store { () throws(SyncError) in try central.store.state })
        var agreeing: [UInt32] = [], differing: [UInt32] = []
        for desk in terminals {
            let mine = try desk.report()
            (mine == report ? { agreeing.append(desk.terminal) } : { differing.append(desk.terminal) })()
        }
        for desk in terminals { try desk.close() }
        try central.close()
        log("")
        log("== reconciled ledger (central)")
        log(report.text)
        log("")
        log("== totals")
        log(Self.totals(report))
        log("")
        log("== replicas")
        log("agree with central: " + (agreeing.isEmpty ? "none" : agreeing.map { "t\($0)" }.joined(separator: " ")))
        if !differing.isEmpty { log("DIFFER from central: " + differing.map { "t\($0)" }.joined(separator: " ")) }
        log("")
        notificationsSummary()
        return DemoResult(report: report, agreeing: agreeing, differing: differing)
    }

    /// Count and amount per sale status, refunds by ticket status, conflicts by kind.
    static func totals(_ r: LedgerReport) -> String {
        var sales: [String: (Int, Int64)] = [:]
        for s in r.sales { let v = sales[s.status] ?? (0, 0); sales[s.status] = (v.0 + 1, v.1 + (s.amountMinor ?? 0)) }
        var tickets: [String: (Int, Int64)] = [:]
        for t in r.tickets { let k = t.status + (t.heldReason.map { "(\($0))" } ?? ""); let v = tickets[k] ?? (0, 0); tickets[k] = (v.0 + 1, v.1 + t.amountMinor) }
        var conflicts: [String: Int] = [:]
        for c in r.conflicts { conflicts[c.kind, default: 0] += 1 }
        let currency = r.sales.first?.currency.flatMap { try? Currency($0) } ?? .CNY
        func money(_ m: Int64) -> String { AmountFormat.format(minorUnits: m, currency: currency) }
        let confirmed = sales["confirmed"]?.1 ?? 0
        let refunded = r.tickets.filter { $0.status == "completed" && $0.resolution == "refund" }.reduce(Int64(0)) { $0 + $1.amountMinor }
        return [
            "sales:     " + sales.keys.sorted().map { "\($0) \(sales[$0]!.0) (\(money(sales[$0]!.1)))" }.joined(separator: ", "),
            "tickets:   " + tickets.keys.sorted().map { "\($0) \(tickets[$0]!.0) (\(money(tickets[$0]!.1)))" }.joined(separator: ", "),
            "conflicts: " + (conflicts.isEmpty ? "none" : conflicts.keys.sorted().map { "\($0) \(conflicts[$0]!)" }.joined(separator: ", ")),
            "net:       confirmed \(money(confirmed)) - refunds paid \(money(refunded)) = \(money(confirmed - refunded)) \(currency)",
        ].joined(separator: "\n")
    }
}
