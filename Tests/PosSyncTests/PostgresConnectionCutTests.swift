import Foundation
import PosTestSupport
import Testing
import PosCentral
import PosCentralFiles
import PosCentralPostgres
import PosLedger
import PosTerminal
import PosWire

/// Central on PostgreSQL whose database connection is cut at random points
/// while terminals push (sync-protocol.md, "Central on PostgreSQL": a
/// connection killed mid-transaction leaves no partial batch).
@Suite("central on PostgreSQL: a connection cut mid-push", .serialized)
struct PostgresConnectionCutTests {
    /// Rounds of recording and syncing, sync attempts per terminal per round at most, and the byte window cuts fall in.
    static let rounds = 8
    static let triesPerRoundMax = 6
    static let cutWithinBytes = 40_000
    /// A push batch this small (in record bytes) makes a push several batches: some may be durable before a cut.
    static let pushBatchBytes = 400

    /// Each terminal's events are 1...mark exactly (no hole, nothing past the mark: every batch is all there or absent), and head counts them all.
    static func checkNoPartialBatch(_ central: CentralHandler, _ terminals: [ReplicaId], _ context: String) throws {
        try central.withStorage { (s) throws(SyncError) in
            try s.beginRequest()
            var seqs: [ReplicaId: [UInt64]] = [:]
            var count: UInt64 = 0
            let decoding = s.recordContext
            try s.scan(after: 0) { (position, record) throws(SyncError) -> Bool in
                let e: Event
                do throws(LedgerError) { e = try RecordCodec.decode(record, context: decoding) } catch { throw SyncError(error, location: "position \(position)") }
                seqs[e.dot.replica, default: []].append(e.dot.seq)
                count += 1
                return true
            }
            #expect(count == s.head, "\(context): head \(s.head), \(count) events")
            for t in terminals {
                let mark = s.mark(of: t)
                let held = seqs[t, default: []]
                #expect(held == (mark == 0 ? [] : Array(1...mark)),
                        "\(context): terminal \(t.rawValue)'s mark is \(mark) but it holds seqs \(held.first ?? 0)...\(held.last ?? 0) (\(held.count) events)")
            }
        }
    }

    @Test("the database connection cut at seeded points during pushes: no partial batch ever, the terminals' retries converge, the state equals a file central's fed the same pushes")
    func connectionCutMidPush() throws {
        guard let server = PostgresTestDatabase.server(for: "a connection cut mid-push") else { return }
        let seeded = TestSeed("connection cut mid-push", replays: "the cuts")  // printed first: a crash or a hang still leaves it in the log
        let seed = seeded.value, replay = seeded.replay
        let url = try PostgresTestDatabase.fresh(on: server, label: "cut")
        let dir = TempDir("pg-cut")
        let clock = FixedClock()
        // One identity for both centrals (the secret names the central and keys the enrollments): a terminal's bundle imports into either.
        let secret = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let environment = CentralEnvironment(wallMillis: clock.reading, secret: { secret })
        let direct = try PostgresCentralStore.create(url: url, environment: environment)
        let fileCentral = try FileCentralStore.create(directory: dir.path + "/central", environment: environment)
        defer { try? direct.close(); try? fileCentral.close() }
        var terminals: [TerminalReplica] = []
        for i in 1...4 {
            let id = try ReplicaId.terminal(UInt32(i))
            let e = try direct.enroll(terminal: id, merchant: i <= 2 ? "north" : "south")
            #expect(try fileCentral.enroll(terminal: id, merchant: i <= 2 ? "north" : "south") == e)
            terminals.append(try TerminalReplica.initialize(directory: "\(dir.path)/t\(i)", enrollment: e))
        }
        defer { for t in terminals { try? t.close() } }
        let ids = terminals.map(\.enrollment.terminal)

        let proxy = try CuttingProxy(to: url.port, seed: seed)
        defer { proxy.stop() }
        var proxied = url
        proxied.host = "127.0.0.1"
        proxied.port = proxy.port
        let central = try PostgresCentralStore.open(url: proxied, environment: environment)
        defer { try? central.close() }
        proxy.arm(cutWithinBytes: Self.cutWithinBytes)

        var bundles: [String] = []
        var failedSyncs = 0
        for round in 0..<Self.rounds {
            for (i, t) in terminals.enumerated() {
                for s in 0..<4 {
                    // Codes repeat across a merchant's terminals: the duplicate rule decides across pushes.
                    let code = try PaymentCode("13456789012340" + String(1000 + (round * 4 + s) % 7))
                    _ = try t.record(.saleCaptured(try SaleCapture(amount: Money(minorUnits: Int64(100 + s), currency: .CNY), paymentCode: code,
                                                                   merchantKey: t.enrollment.ledgerMerchantKey)), wallMillis: clock.advance(by: 1_000))
                }
                // What this terminal is about to push, as a bundle for the file central.
                let bundle = "\(dir.path)/b-\(round)-\(i + 1).bundle"
                _ = try t.exportBundle(to: bundle)
                bundles.append(bundle)
                for attempt in 1...Self.triesPerRoundMax {
                    do {
                        _ = try t.sync(via: InProcessTransport(central: central), wallMillis: clock.advance(by: 10), pushBatchBytes: Self.pushBatchBytes)
                        try Self.checkNoPartialBatch(direct, ids, "\(replay), round \(round), terminal \(i + 1), attempt \(attempt) (synced)")
                        break
                    } catch let error as SyncError {
                        failedSyncs += 1
                        #expect(error.code == .io || error.code == .locked, "\(replay): a cut connection fails as io or busy: \(error)")
                        try Self.checkNoPartialBatch(direct, ids, "\(replay), round \(round), terminal \(i + 1), attempt \(attempt) (failed: \(error.message.prefix(120)))")
                    }
                }
            }
        }
        print("connection cut mid-push: \(replay): \(proxy.connections) connections, \(proxy.cuts) cut, \(failedSyncs) syncs failed and were retried")
        #expect(proxy.cuts >= 3 && failedSyncs >= 1, "\(replay): the proxy cut \(proxy.cuts) connections, \(failedSyncs) syncs failed: the test exercised nothing")

        // The cuts stop: every terminal's next sync completes and central holds each event once.
        proxy.disarm()
        for _ in 0..<2 { for t in terminals { _ = try t.sync(via: InProcessTransport(central: central), wallMillis: clock.advance(by: 10)) } }
        try Self.checkNoPartialBatch(direct, ids, "\(replay), converged")
        let total = terminals.reduce(UInt64(0)) { $0 + $1.lastSequence }
        #expect(direct.head == total, "\(replay): every event once: head \(direct.head), written \(total)")
        for t in terminals { #expect(direct.acknowledged(t.enrollment.terminal) == t.lastSequence, "\(replay): terminal \(t.enrollment.terminal.rawValue)'s mark") }

        // A file central fed the same pushes (as bundles) holds the same state.
        for b in bundles { _ = try fileCentral.importBundle(path: b) }
        #expect(fileCentral.head == total, "\(replay): the file central holds every event once")
        #expect(try direct.state.canonicalText == fileCentral.state.canonicalText, "\(replay): PostgreSQL central's state equals the file central's")
    }
}
