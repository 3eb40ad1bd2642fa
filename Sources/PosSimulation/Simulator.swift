import PosJournal
import PosLedger
@_spi(Testing) import PosCentral
import PosCentralFiles
import PosCentralPostgres
@_spi(Testing) import PosTerminal
import PosWire
import PosTestSupport

/// Deterministic simulation of N terminals and central in one process, with a
/// simulated disk per machine, a simulated network per terminal and
/// simulated wall clocks; any run replays exactly from its seed.
public struct SimulationConfig: Sendable {
    public var seed: UInt64
    public var terminals: Int
    public var steps: Int
    /// Break the relay on purpose (central leaves central's own decisions out of pulls): the checks must catch it.
    public var breakRelay: Bool
    /// Break durability on purpose (terminals acknowledge events before they are fsynced): the checks must catch it.
    public var breakDurability = false
    /// Events central folds between snapshots; nil: 3...32, chosen by the seed, so
    /// snapshots are written (and cut by power failures) many times per run.
    public var centralSnapshotEvents: Int? = nil
    var snapshotEvents: Int { centralSnapshotEvents ?? Int(3 + seed % 30) }
    /// The terminals' return window, days: they pull within its relay scope (sync-protocol.md,
    /// "Relay scope"), and simulated days pass (4 % of steps) so sales leave it. nil: unscoped, no days pass.
    public var returnWindowDays: Int?
    /// Central on this PostgreSQL database (empty, made for the run) instead of the file store on a simulated
    /// disk. The database is durable at every commit: central's power cuts become restarts (the handler
    /// dropped and the database opened again), with every other fault as on the file store.
    public var postgres: PostgresURL? = nil

    public init(seed: UInt64, terminals: Int = 3, steps: Int = 120, breakRelay: Bool = false, returnWindowDays: Int? = 1) {
        self.seed = seed
        self.terminals = terminals
        self.steps = steps
        self.breakRelay = breakRelay
        self.returnWindowDays = returnWindowDays
    }
}

public struct SimulationResult: Sendable {
    public var seed: UInt64
    public var steps = 0
    public var events = 0
    public var faults: [String: Int] = [:]
    /// Conflict records central ended with, by kind (what the run exercised).
    public var conflictKinds: [String: Int] = [:]
    /// Snapshots central wrote (each one a chance for a power failure to cut it).
    public var centralSnapshots = 0
    /// With relay scope: in-scope sales compared between a terminal and central, over all terminals.
    public var scopedSalesCompared = 0
    /// Check failures; empty when the run passed.
    public var failures: [String] = []
    /// What happened, step by step.
    public var trace: [String] = []
    public var passed: Bool { failures.isEmpty }

    /// The run's last steps, for a failure message.
    public func traceTail(_ n: Int = 40) -> String { trace.suffix(n).joined(separator: "\n") }
}

public final class Simulator {
    let config: SimulationConfig
    private var rng: SplitMix64
    private let root = "/sim"
    private var centralDisk: SimulatedFileSystem
    private var central: CentralHandler!
    private var terminalDisks: [SimulatedFileSystem] = []
    private var terminals: [TerminalReplica?] = []
    private var links: [SimulatedLink] = []
    private var clockOffsetMillis: [Int64] = []
    private var result: SimulationResult
    /// Events whose write returned (acknowledged by the replica that wrote them): dot -> digest of the bytes.
    private var acknowledged: [Dot: UInt64] = [:]
    /// Payment codes scanned, per terminal index, for duplicate scans.
    private var scannedCodes: [(Int, PaymentCode)] = []
    private var courierBag: [(terminal: Int, bytes: [UInt8])] = []
    /// Per terminal index, the highest scope floor any of its pulls sent (what it must hold from).
    private var floorsMax: [UInt64] = []

    public init(_ config: SimulationConfig) {
        self.config = config
        rng = SplitMix64(seed: config.seed)
        world = World(seed: config.seed ^ 0x5EC2_E75E_C2E7_5EC2)
        centralDisk = SimulatedFileSystem(seed: config.seed &+ 1)
        result = SimulationResult(seed: config.seed)
    }

    private func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }
    private func pick(_ n: Int) -> Int { Int.random(in: 0..<n, using: &rng) }
    private func note(_ line: String) { result.trace.append("[\(result.steps)] \(line)") }
    private func count(_ fault: String) { result.faults[fault, default: 0] += 1 }

    /// Central's clock and secret source: simulated and seeded, so the run replays exactly.
    final class World: @unchecked Sendable {
        var nowMillis: Int64 = 1_785_000_000_000
        var secrets: SplitMix64
        init(seed: UInt64) { secrets = SplitMix64(seed: seed) }
    }
    private let world: World
    private var nowMillis: Int64 {
        get { world.nowMillis }
        set { world.nowMillis = newValue }
    }

    private var environment: CentralEnvironment {
        let world = world
        return CentralEnvironment(wallMillis: { world.nowMillis },
                                  secret: { (0..<32).map { _ in UInt8.random(in: 0...255, using: &world.secrets) } })
    }

    // MARK: - Setup and restarts

    private func wall(_ i: Int) -> Int64 { nowMillis + clockOffsetMillis[i] }

    private var terminalOptions: TerminalOptions {
        var o = TerminalOptions()
        o.testOnlyUnsyncedOutbound = config.breakDurability
        o.scope = config.returnWindowDays.map { try! RelayScope(returnWindowDays: $0) }
        return o
    }

    private func openCentral() throws {
        if let url = config.postgres {
            // Bundles are read from the simulated disk, as the file store's central reads them.
            central = try CentralHandler(storage: try PostgresCentralStore.openStorage(url: url), environment: environment, bundleFileSystem: centralDisk)
        } else {
            central = try FileCentralStore.open(directory: root + "/central", fileSystem: centralDisk, environment: environment,
                                                snapshotEvents: config.snapshotEvents)
        }
        if config.breakRelay {
            central.testOnlyFaults = .init(dropFromPull: { event in
                if case .refundRejected = event.body { return event.dot.replica.isCentral }
                return false
            })
        }
    }

    private func setUp() throws {
        if let url = config.postgres {
            central = try CentralHandler(storage: try PostgresCentralStore.createStorage(url: url, environment: environment), environment: environment,
                                         bundleFileSystem: centralDisk)
        } else {
            central = try FileCentralStore.create(directory: root + "/central", fileSystem: centralDisk, environment: environment,
                                                  snapshotEvents: config.snapshotEvents)
        }
        for i in 0..<config.terminals {
            let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(i + 1)), merchant: "shop")
            let disk = SimulatedFileSystem(seed: config.seed &+ UInt64(100 + i))
            terminalDisks.append(disk)
            terminals.append(try TerminalReplica.initialize(directory: "\(root)/t\(i + 1)", enrollment: e, fileSystem: disk, options: terminalOptions))
            links.append(SimulatedLink(seed: config.seed &+ UInt64(200 + i), faults: .init(), central: { [unowned self] in self.central }))
            clockOffsetMillis.append(Int64.random(in: -3 * Millis.perHour...3 * Millis.perHour, using: &rng))
            floorsMax.append(0)
        }
        // Identity files are written once at setup; make them durable before any crash.
        for d in terminalDisks { _ = d.crash() }
        result.centralSnapshots += central?.snapshotStatistics.written ?? 0
        _ = centralDisk.crash()
        try openCentral()
        for i in terminals.indices { terminals[i] = try TerminalReplica.open(directory: "\(root)/t\(i + 1)", fileSystem: terminalDisks[i], options: terminalOptions) }
    }

    /// Power loss on a terminal: unsynced writes dropped, torn or reordered; reopen recovers.
    private func crashTerminal(_ i: Int) throws {
        // No close(): a power loss gives no chance to flush anything.
        terminals[i] = nil
        let summary = terminalDisks[i].crash()
        terminals[i] = try TerminalReplica.open(directory: "\(root)/t\(i + 1)", fileSystem: terminalDisks[i], options: terminalOptions)
        count("terminal crash")
        note("crash t\(i + 1): \(summary)")
    }

    private func crashCentral() throws {
        result.centralSnapshots += central.snapshotStatistics.written
        // On PostgreSQL every call has committed or rolled back: a restart closes the connection (what the
        // server does for a process that died) and opens the database again.
        if config.postgres != nil { try? central.close() }
        central = nil
        let summary = centralDisk.crash()
        try openCentral()
        count("central crash")
        note("crash central: \(summary)")
    }

    // MARK: - Workload

    private func terminalWrite(_ i: Int, _ body: EventBody, _ what: String) throws {
        guard let t = terminals[i] else { return }
        do {
            let e = try t.record(body, wallMillis: wall(i))
            acknowledged[e.dot] = eventDigest(RecordCodec.encode(e))
            result.events += 1
            note("t\(i + 1) \(what) -> \(e.dot)")
        } catch {
            note("t\(i + 1) \(what) failed: \(error)")
            if terminalDisks[i].isPowerOff { try crashTerminal(i) }
        }
    }

    private func centralWrite(_ body: EventBody, _ what: String) throws {
        do {
            let e = try central.record(body, wallMillis: nowMillis)
            acknowledged[e.dot] = eventDigest(RecordCodec.encode(e))
            result.events += 1
            note("central \(what) -> \(e.dot)")
        } catch {
            note("central \(what) failed: \(error)")
            if centralDisk.isPowerOff { try crashCentral() }
        }
    }

    /// Central's whole state, read from its snapshot; a power cut striking during the read reboots central (nil).
    private func centralState() throws -> LedgerState? {
        do { return try central.state } catch {
            note("central state read failed: \(error)")
            guard centralDisk.isPowerOff else { throw error }
            try crashCentral()
            return nil
        }
    }

    private func randomCode() -> PaymentCode {
        try! PaymentCode("13" + (0..<16).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined())
    }

    /// One sync of terminal `i` through `transport`; the floor its pulls sent is kept (also when interrupted).
    private func sync(_ i: Int, via transport: any SyncTransport, pushBatchBytes: Int = SyncLimits.pushBatchBytesMax) throws -> TerminalReplica.SyncReport {
        defer { if let f = terminals[i]?.lastPullFloorMillis { floorsMax[i] = max(floorsMax[i], f) } }
        return try terminals[i]!.sync(via: transport, wallMillis: wall(i), pushBatchBytes: pushBatchBytes)
    }

    private func step() throws {
        nowMillis += Int64.random(in: 1_000...600_000, using: &rng)
        if config.returnWindowDays != nil, chance(4) {
            nowMillis += Millis.perDay
            note("a day passes")
            count("day passes")
        }
        let i = pick(terminals.count)
        let roll = pick(100)
        switch roll {
        case 0..<22:  // a sale, sometimes the same code scanned again at another shop
            let code: PaymentCode
            if !scannedCodes.isEmpty && chance(8) {
                code = scannedCodes[pick(scannedCodes.count)].1
                count("duplicate scan")
            } else {
                code = randomCode()
            }
            scannedCodes.append((i, code))
            guard let t = terminals[i] else { return }
            let amount = Money(minorUnits: Int64.random(in: 100...50_000, using: &rng), currency: .CNY)
            if let capture = try? SaleCapture(amount: amount, paymentCode: code, merchantKey: t.enrollment.ledgerMerchantKey) {
                try terminalWrite(i, .saleCaptured(capture), "scan \(amount)")
            }
        case 22..<36:  // a return at this shop of any sale it knows (often sold elsewhere)
            guard let t = terminals[i] else { return }
            let sales = t.state.sales.values.filter { $0.amount != nil }.sorted { $0.id < $1.id }
            guard !sales.isEmpty else { return }
            let sale = sales[pick(sales.count)]
            let amount = sale.amount!
            let part = chance(60) ? Int64.random(in: 1...amount.minorUnits, using: &rng) : amount.minorUnits
            let resolution: Resolution = chance(85) ? .refund : .exchange
            if let request = try? RefundRequest(sale: sale.id, saleAmount: amount, amount: Money(minorUnits: part, currency: amount.currency),
                                                reason: [.quality, .wrongSize, .changedMind, .notAsDescribed][pick(4)], resolution: resolution, contact: nil) {
                try terminalWrite(i, .refundRequested(request), "return \(part) of \(sale.id)")
            }
        case 36..<50:  // a decision at a terminal, valid on what it sees
            guard let t = terminals[i] else { return }
            let tickets = t.state.tickets.values.sorted { $0.id < $1.id }
            guard !tickets.isEmpty else { return }
            let ticket = tickets[pick(tickets.count)]
            let options: [(EventKind, EventBody)] = [
                (.refundApproved, .refundApproved(ticket.id, .originalPayment)), (.refundRejected, .refundRejected(ticket.id)),
                (.refundCancelled, .refundCancelled(ticket.id)), (.refundEscalated, .refundEscalated(ticket.id)),
            ].filter { TicketStatus.after($0.0, from: ticket.ownStatus) != nil }
            if chance(15), let note = try? NoteText("checked box \(result.steps)") {
                try terminalWrite(i, .noteAdded(ticket.id, note), "note on \(ticket.id)")
            } else if !options.isEmpty {
                let (kind, body) = options[pick(options.count)]
                try terminalWrite(i, body, "\(kind) \(ticket.id)")
            }
        case 50..<60:  // a decision or a completion at central
            guard let state = try centralState() else { return }
            let tickets = state.tickets.values.sorted { $0.id < $1.id }
            guard !tickets.isEmpty else { return }
            let ticket = tickets[pick(tickets.count)]
            if ticket.status == .approved, state.sales[ticket.sale]?.status == .confirmed {
                try centralWrite(.refundCompleted(ticket.id), "complete \(ticket.id)")
            } else if TicketStatus.after(.refundApproved, from: ticket.ownStatus) != nil {
                try centralWrite(chance(50) ? .refundApproved(ticket.id, .originalPayment) : .refundRejected(ticket.id), "decide \(ticket.id)")
            }
        case 60..<68:  // central forwards captured sales to the acquirer
            guard let state = try centralState() else { return }
            for sale in state.sales.values.sorted(by: { $0.id < $1.id }) where sale.status == .captured {
                let r = pick(100)
                let body: EventBody = r < 75 ? .saleConfirmed(sale.id) : (r < 88 ? .saleDeclined(sale.id) : .saleExpired(sale.id))
                try centralWrite(body, "forward \(sale.id)")
            }
        case 68..<84:  // a sync
            guard terminals[i] != nil else { return }
            do {
                let report = try sync(i, via: links[i], pushBatchBytes: 2048)
                note("t\(i + 1) sync: \(report)")
            } catch {
                note("t\(i + 1) sync interrupted: \(error)")
                count("sync interrupted")
                if terminalDisks[i].isPowerOff { try crashTerminal(i) }
            }
        case 84..<88:  // a courier carries a bundle
            guard let t = terminals[i] else { return }
            let path = "\(root)/t\(i + 1)/courier.bundle"
            do {
                _ = try t.exportBundle(to: path)
                if let bytes = terminalDisks[i].contents(of: path) {
                    courierBag.append((i, bytes))
                    note("t\(i + 1) exported a bundle (\(bytes.count) bytes)")
                }
            } catch { note("t\(i + 1) export failed: \(error)") }
            if !courierBag.isEmpty && chance(70) {
                let parcel = courierBag.remove(at: pick(courierBag.count))
                let path = "\(root)/central/incoming-\(result.steps).bundle"
                centralDisk.install(path, contents: parcel.bytes)
                do { note("central import: \(try central.importBundle(path: path))") } catch { note("central import refused: \(error)") }
                count("courier bundle")
            }
        case 88..<92:
            links[i].partitioned.toggle()
            note("t\(i + 1) link \(links[i].partitioned ? "partitioned" : "healed")")
            count("partition")
        case 92..<95:
            let jump = Int64.random(in: -2 * Millis.perHour...Millis.perHour, using: &rng)
            clockOffsetMillis[i] += jump
            note("t\(i + 1) wall clock jumps \(jump) ms")
            count("clock jump")
        case 95..<98:
            // Power fails in the middle of the terminal's next operations.
            terminalDisks[i].cutPower(afterOperations: Int.random(in: 1...12, using: &rng))
            note("t\(i + 1) power will fail")
            if chance(50) { try crashTerminal(i) }
        default:
            if chance(50) || config.postgres != nil { try crashCentral() } else {
                centralDisk.cutPower(afterOperations: Int.random(in: 1...12, using: &rng))
                note("central power will fail")
            }
        }
    }

    // MARK: - Checks

    private func checkInvariants(_ label: String) throws {
        if centralDisk.isPowerOff { try crashCentral() }  // a cut that struck earlier: the machine is down
        let centralNow = try centralState() ?? central.state  // after a reboot no cut is scheduled
        var states: [(String, LedgerState)] = [("central", centralNow)]
        for (i, t) in terminals.enumerated() { if let t { states.append(("t\(i + 1)", t.state)) } }
        for (name, state) in states {
            for problem in state.moneyInvariantViolations() {
                result.failures.append("\(label): \(name): \(problem)")
            }
        }
    }

    private func heal() throws {
        // Every machine restarts (a scheduled power cut that has not struck yet is cleared by it).
        for i in terminals.indices {
            links[i].partitioned = false
            try crashTerminal(i)
        }
        try crashCentral()
        for parcel in courierBag {
            let path = "\(root)/central/incoming-final-\(parcel.terminal).bundle"
            centralDisk.install(path, contents: parcel.bytes)
            do { _ = try central.importBundle(path: path) } catch {
                result.failures.append("healing: t\(parcel.terminal + 1)'s courier bundle refused: \(error)")
            }
        }
        courierBag.removeAll()
        // Sync rounds until a whole round moves nothing.
        for round in 0..<20 {
            var moved = 0
            for i in terminals.indices {
                let report = try sync(i, via: InProcessTransport(central: central))
                moved += report.pushed + report.pulled
            }
            note("heal round \(round): \(moved) events moved")
            if moved == 0 { return }
        }
        result.failures.append("no quiescence after 20 healing rounds")
    }

    private func checkConvergence() throws {
        guard config.returnWindowDays == nil else { return try checkScopedConvergence() }
        let reference = try central.state.canonicalText
        for (i, t) in terminals.enumerated() {
            let text = t!.state.canonicalText
            if text != reference {
                let a = Set(reference.split(separator: "\n")), b = Set(text.split(separator: "\n"))
                let onlyCentral = a.subtracting(b).sorted().prefix(5).joined(separator: " | ")
                let onlyTerminal = b.subtracting(a).sorted().prefix(5).joined(separator: " | ")
                result.failures.append("t\(i + 1) state differs from central: central only [\(onlyCentral)]; t\(i + 1) only [\(onlyTerminal)]")
            }
            if try t!.state.conflicts != central.state.conflicts {
                result.failures.append("t\(i + 1) conflict records differ from central's")
            }
        }
        try checkAcknowledged(knownEverywhere: true)
        // Same number of distinct events everywhere (a gap under a covered dot would show here).
        let centralEvents = try central.state.eventCount
        for (i, t) in terminals.enumerated() where t!.state.eventCount != centralEvents {
            result.failures.append("t\(i + 1) holds \(t!.state.eventCount) events, central \(centralEvents)")
        }
        checkNoForeignCodes()
    }

    /// With relay scope: every terminal decides every sale in its scope as central does
    /// (sync-protocol.md, "Relay scope"), holding exactly the same events of it.
    private func checkScopedConvergence() throws {
        let reference = try central.state
        for (i, t) in terminals.enumerated() {
            let held = t!.state
            let comparison = ScopeComparison(central: reference, terminal: held, floorMillis: floorsMax[i])
            result.scopedSalesCompared += comparison.compared
            for difference in comparison.differences.prefix(5) { result.failures.append("t\(i + 1) differs from central: \(difference)") }
        }
        try checkAcknowledged(knownEverywhere: false)
        checkNoForeignCodes()
    }

    /// Jepsen set check: every acknowledged event, with the very bytes acknowledged, is at
    /// central, still at the terminal that wrote it, and (unscoped) known at every terminal.
    private func checkAcknowledged(knownEverywhere: Bool) throws {
        for (dot, digest) in acknowledged.sorted(by: { $0.key < $1.key }) {
            switch try central.digest(of: dot) {
            case nil: result.failures.append("acknowledged event \(dot) lost: central does not hold it")
            case let held? where held != digest: result.failures.append("acknowledged event \(dot) lost: central holds different bytes under its dot")
            default: break
            }
            if !dot.replica.isCentral, let writer = terminals[Int(dot.replica.rawValue) - 1] {
                let own = (try? writer.ownRecord(seq: dot.seq)).flatMap { $0 }.map(eventDigest)
                if own != digest { result.failures.append("acknowledged event \(dot) lost at its own terminal (now \(own.map { String($0, radix: 16) } ?? "absent"))") }
            }
            for (i, t) in terminals.enumerated() where knownEverywhere && !t!.knowledge.covers(dot) {
                result.failures.append("acknowledged event \(dot) missing at t\(i + 1)")
            }
        }
    }

    private func checkNoForeignCodes() {
        // No terminal holds another terminal's payment code.
        for (i, t) in terminals.enumerated() {
            for event in (try? t!.heldForeignCaptures()) ?? [] {
                result.failures.append("t\(i + 1) holds \(event)'s payment code")
            }
        }
    }

    /// Runs the whole simulation: steps with faults, then healing and the final checks.
    public func run() -> SimulationResult {
        do {
            try setUp()
            for s in 0..<config.steps {
                result.steps = s + 1
                try step()
                try checkInvariants("after step \(s + 1)")
                if !result.failures.isEmpty { return result }
            }
            try heal()
            try checkInvariants("after healing")
            try checkConvergence()
            for c in try central.state.conflicts { result.conflictKinds["\(c.kind)", default: 0] += 1 }
            result.centralSnapshots += central.snapshotStatistics.written
        } catch {
            result.failures.append("simulation error at step \(result.steps): \(error)")
        }
        for (i, l) in links.enumerated() {
            result.faults["message lost", default: 0] += l.counts.lost
            result.faults["message duplicated", default: 0] += l.counts.duplicated
            result.faults["message replayed late", default: 0] += l.counts.replayed
            _ = i
        }
        return result
    }
}
