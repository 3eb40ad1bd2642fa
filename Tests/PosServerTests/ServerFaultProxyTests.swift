import Foundation
import HummingbirdTesting
import PosCentral
import PosHTTPClient
import PosJournal
import PosLedger
import PosLoad
import PosTerminal
import PosWire
import Testing

/// Terminals sync with a live server through a proxy that cuts connections at
/// random byte offsets of requests and replies, delays and splits what it
/// forwards and replays answered requests byte for byte, and through a
/// transport that sends messages twice or replays old ones (each with a fresh
/// nonce). Whatever happens, after a clean sync every replica holds central's
/// state, central holds every terminal event exactly once, and nothing was
/// acknowledged that central did not hold.
@Suite("server through a fault-injecting proxy")
struct ServerFaultProxyTests {
    /// Seeds per run: POSSYNC_PROXY_SEEDS raises it; POSSYNC_SEED picks the first (to replay one).
    static let seeds = ProcessInfo.processInfo.environment["POSSYNC_PROXY_SEEDS"].flatMap(Int.init).map { max(1, $0) } ?? 200
    static let firstSeed = ProcessInfo.processInfo.environment["POSSYNC_SEED"].flatMap(UInt64.init) ?? 16_000
    /// Runs at once, each with its own server, proxy and stores: they wait on fsync more than on the CPU.
    static let runsAtOnce = 4

    @Test("seeded runs: connections cut mid-request and mid-reply, delays, requests duplicated and replayed; every replica converges, no event lost or duplicated",
          .timeLimit(.minutes(15)))  // about 31 s here; ThreadSanitizer runs it several times slower
    func seededRuns() async throws {
        var total = ProxyScenario.Totals()
        let started = Date()
        var seeds = (Self.firstSeed..<(Self.firstSeed + UInt64(Self.seeds))).makeIterator()
        try await withThrowingTaskGroup(of: (UInt64, [String], ProxyScenario.Totals).self) { group in
            func start(_ seed: UInt64?) {
                guard let seed else { return }
                group.addTask {
                    let scenario = try ProxyScenario(seed: seed)
                    try await scenario.run()
                    return (seed, scenario.failures, scenario.totals)
                }
            }
            for _ in 0..<Self.runsAtOnce { start(seeds.next()) }
            while let (seed, failures, totals) = try await group.next() {
                for failure in failures { Issue.record("seed \(seed) (replay: POSSYNC_SEED=\(seed) POSSYNC_PROXY_SEEDS=1): \(failure)") }
                total.add(totals)
                start(seeds.next())
            }
        }
        print("proxy runs: \(Self.seeds) seeds from \(Self.firstSeed) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s: \(total)")
        // The faults happened (else the runs above prove nothing).
        #expect(total.requestCuts >= Self.seeds / 2 && total.responseCuts >= Self.seeds / 2, "\(total)")
        #expect(total.duplicates >= Self.seeds && total.replays >= Self.seeds / 2, "\(total)")
        #expect(total.proxyReplays >= Self.seeds / 2, "\(total)")
        #expect(total.failedSessions >= Self.seeds / 4, "\(total)")
    }

    @Test("the checks fail when a transport drops a push and reports it acknowledged", .timeLimit(.minutes(10)))  // seconds here; minutes under ThreadSanitizer
    func checksCatchAFakeAck() async throws {
        for seed in Self.firstSeed..<(Self.firstSeed + 3) {
            let scenario = try ProxyScenario(seed: seed, fakeAckFirstPush: true)
            try await scenario.run()
            #expect(scenario.totals.fakeAcks == 1, "seed \(seed)")
            #expect(scenario.failures.contains { $0.contains("acknowledged") && $0.contains("lost") }, "seed \(seed): \(scenario.failures)")
        }
    }
}

/// One seeded run: a fresh world of 2 to 4 terminals and a live server, two
/// rounds of trading and syncing through faults with central's decisions in
/// between, a clean sync, then the checks. `failures` says what went wrong.
final class ProxyScenario: @unchecked Sendable {
    struct Totals: Sendable, CustomStringConvertible {
        var connections = 0, requestCuts = 0, responseCuts = 0, delayedPieces = 0
        var duplicates = 0, replays = 0, fakeAcks = 0, proxyReplays = 0
        var sessions = 0, failedSessions = 0, events = 0

        mutating func add(_ o: Totals) {
            connections += o.connections; requestCuts += o.requestCuts; responseCuts += o.responseCuts; delayedPieces += o.delayedPieces
            duplicates += o.duplicates; replays += o.replays; fakeAcks += o.fakeAcks; proxyReplays += o.proxyReplays
            sessions += o.sessions; failedSessions += o.failedSessions; events += o.events
        }

        var description: String {
            "\(events) events; \(sessions) sessions through faults (\(failedSessions) failed and were run again); \(connections) connections: "
                + "\(requestCuts) cut mid-request, \(responseCuts) mid-reply, \(delayedPieces) delayed pieces, \(proxyReplays) answered requests replayed byte for byte (all refused 401); "
                + "\(duplicates) messages sent twice, \(replays) replayed late"
        }
    }

    /// Rounds of trading, syncing through the faults and central's decisions.
    static let rounds = 2
    /// Sessions one terminal may need to get through the faults, at most.
    static let sessionsMax = 40
    let seed: UInt64
    let world: ServerWorld
    let fakeAckFirstPush: Bool
    private(set) var failures: [String] = []
    private(set) var totals = Totals()
    private var rng: SplitMix64

    init(seed: UInt64, fakeAckFirstPush: Bool = false) throws {
        self.seed = seed
        self.fakeAckFirstPush = fakeAckFirstPush
        rng = SplitMix64(seed: seed)
        world = try ServerWorld(terminals: rng.int(2...4), inMemory: true)
    }

    func run() async throws {
        if fakeAckFirstPush { try world.capture(0, 100, rng: &rng) }  // so terminal 1 has a push to fake
        try await world.application().test(.live) { client in
            let port = client.port!
            try await blocking { try self.scenario(serverPort: port) }
        }
        failures += try ReplicaCheck.problems(central: world.central, terminals: world.terminals)
        totals.events = world.terminals.reduce(0) { $0 + Int($1.lastSequence) }
    }

    /// Small, fast client bounds: a cut is seen at once on loopback; waits are milliseconds
    /// (and a server gone, as when the test is cancelled, fails a session in moments, not minutes).
    static let fastClient: HTTPClientSettings = {
        var s = HTTPClientSettings()
        s.connectTimeoutMillis = 1_000
        s.requestTimeoutMillis = 5_000
        s.attemptsMax = 3
        s.backoffBaseMillis = 1
        s.backoffMaxMillis = 4
        return s
    }()

    /// The fast bounds, with batch sizes of this seed's (small: many batches per session).
    private func clientSettings() -> HTTPClientSettings {
        var s = Self.fastClient
        s.pushBatchBytes = rng.int(300...4096)
        s.pullBatchBytes = rng.int(300...4096)
        return s
    }

    private func scenario(serverPort: Int) throws {
        let proxy = try FaultProxy(upstreamPort: serverPort, seed: seed)
        let transports = try world.enrollments.map { e in
            try FaultyTransport(inner: HTTPSyncTransport(server: "http://127.0.0.1:\(proxy.port)", enrollment: e, settings: clientSettings()),
                                seed: rng.next(), fakeAckFirstPush: fakeAckFirstPush && e.terminal.rawValue == 1)
        }
        defer { for t in transports { (t.inner as? HTTPSyncTransport)?.close() } }
        for _ in 0..<Self.rounds {
            trade()
            for i in (0..<world.terminals.count).shuffled(using: &rng) { syncThroughFaults(i, transports[i]) }
            try decide()
        }
        if !proxy.stop() { failures.append("the proxy's threads did not end") }
        let c = proxy.counts
        totals.connections = c.connections
        totals.requestCuts = c.requestCuts
        totals.responseCuts = c.responseCuts
        totals.delayedPieces = c.delayedPieces
        totals.proxyReplays = c.replays
        failures += c.replayProblems
        for t in transports {
            totals.duplicates += t.duplicates
            totals.replays += t.replays
            totals.fakeAcks += t.fakeAcks
            failures += t.problems
        }
        try cleanSync(serverPort: serverPort)
    }

    /// Each terminal takes a few payments, and sometimes a return of a sale it knows.
    private func trade() {
        for i in 0..<world.terminals.count {
            for _ in 0..<rng.int(0...4) {
                do { try world.capture(i, Int64(rng.int(100...90_000)), rng: &rng) } catch { failures.append("t\(i + 1) capture: \(error)") }
            }
            let sales = world.terminals[i].state.sales.values.filter { $0.amount != nil }.sorted { $0.id < $1.id }
            if !sales.isEmpty, rng.chance(40) {
                let sale = rng.pick(sales)
                let amount = sale.amount!.minorUnits
                _ = try? world.requestRefund(i, sale: sale.id, saleMinor: amount, Int64(rng.int(1...Int(amount))))
            }
        }
    }

    /// Central decides on some tickets and sales it holds (refused decisions are skipped: the rules allow only some).
    private func decide() throws {
        let state = try world.central.state
        for ticket in state.tickets.keys.sorted() where rng.chance(50) {
            let body: EventBody = rng.pick([.refundApproved(ticket, .originalPayment), .refundRejected(ticket), .refundCompleted(ticket)])
            _ = try? world.central.record(body, wallMillis: world.tick())
        }
        for sale in state.sales.keys.sorted() where rng.chance(30) {
            _ = try? world.central.record(rng.pick([EventBody.saleConfirmed(sale), .saleDeclined(sale)]), wallMillis: world.tick())
        }
    }

    /// Sessions through the faults until one completes (each resumes where the last stopped).
    private func syncThroughFaults(_ i: Int, _ transport: FaultyTransport) {
        let settings = (transport.inner as! HTTPSyncTransport).settings
        for session in 1...Self.sessionsMax {
            totals.sessions += 1
            do {
                let report = try world.terminals[i].sync(via: transport, wallMillis: world.tick(),
                                                         pushBatchBytes: settings.pushBatchBytes, pullBatchBytes: settings.pullBatchBytes)
                if let lost = report.centralLost {
                    failures.append("t\(i + 1) session \(session): central had lost seq \(lost) it acknowledged")
                }
                return
            } catch where error.code == .io {
                totals.failedSessions += 1  // the faults won this time: run the session again
            } catch {
                totals.failedSessions += 1
                failures.append("t\(i + 1) session \(session) failed with something other than a transport problem: \(error)")
            }
        }
        failures.append("t\(i + 1): no session got through the faults in \(Self.sessionsMax) tries")
    }

    /// Direct to the server, no faults, until a round moves nothing.
    private func cleanSync(serverPort: Int) throws {
        let transports = try world.enrollments.map { try HTTPSyncTransport(server: "http://127.0.0.1:\(serverPort)", enrollment: $0, settings: Self.fastClient) }
        defer { for t in transports { t.close() } }
        failures += SyncLoad.converge(terminals: world.terminals, transports: transports, wallMillis: { world.tick() })
    }
}

/// Duplicates at the message level, on top of the proxy's cuts: some requests
/// are sent twice (the first reply lost), and some sessions replay an earlier
/// request first (its reply thrown away). A duplicate must be harmless: a
/// refusal of one is a problem. With `fakeAckFirstPush` (to prove the checks
/// can fail), the first push is never sent and an acknowledgement is made up.
final class FaultyTransport: SyncTransport, @unchecked Sendable {
    let inner: any SyncTransport
    private var rng: SplitMix64
    private var fakeAckPending: Bool
    private var earlier: [SyncMessage] = []
    private(set) var duplicates = 0, replays = 0, fakeAcks = 0
    private(set) var problems: [String] = []

    init(inner: any SyncTransport, seed: UInt64, fakeAckFirstPush: Bool = false) {
        self.inner = inner
        rng = SplitMix64(seed: seed)
        fakeAckPending = fakeAckFirstPush
    }

    func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
        if fakeAckPending, case .push(let p) = request, let last = p.frames.last.flatMap({ try? Frames.header($0) })?.lastSequence {
            fakeAckPending = false
            fakeAcks += 1
            return .ack(.init(acknowledged: last, accepted: 0, duplicates: 0))
        }
        if !earlier.isEmpty, rng.chance(10) {
            replays += 1
            harmless(rng.pick(earlier), "an earlier request replayed")
        }
        if rng.chance(15) {
            duplicates += 1
            harmless(request, "a request sent twice")
        }
        if earlier.count == 16 { earlier.removeFirst() }
        earlier.append(request)
        return try inner.exchange(request)
    }

    /// Sends a copy whose reply is thrown away; a refusal of it is noted (a transport problem is not: the proxy is at work).
    private func harmless(_ request: SyncMessage, _ what: String) {
        if case .refusal(let r)? = try? inner.exchange(request) {
            problems.append("\(what) was refused: \(r.code): \(r.message)")
        }
    }
}
