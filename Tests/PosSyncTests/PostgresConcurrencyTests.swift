import Foundation
import PosTestSupport
import Testing
import PosCentral
@testable import PosCentralPostgres
import PosJournal
import PosLedger
import PosTerminal
import PosWire

/// Central on PostgreSQL with two protocol handlers on one database (what two
/// `central serve` processes are: each handler has its own connection and its
/// own lock), terminals pushing through both at once (sync-protocol.md,
/// "Central on PostgreSQL").
@Suite("central on PostgreSQL: concurrency")
struct PostgresConcurrencyTests {
    @Test("two handlers on one database, eight terminals pushing at once through both: no event lost or duplicated, the state is the fold of every pushed event")
    func twoHandlers() throws {
        guard let server = PostgresTestDatabase.server(for: "two handlers on one database") else { return }
        let url = try PostgresTestDatabase.fresh(on: server, label: "concurrency")
        let clock = FixedClock()
        let environment = CentralEnvironment(wallMillis: clock.reading)
        let first = try PostgresCentralStore.create(url: url, environment: environment)
        let second = try PostgresCentralStore.open(url: url, environment: environment)
        defer { try? first.close(); try? second.close() }
        let handlers = [first, second]
        let dir = TempDir("pg-concurrency")
        let terminalCount = 8, rounds = 6, salesPerRound = 5
        var terminals: [TerminalReplica] = []
        for i in 1...terminalCount {
            // Enrolled through the first handler: the second learns of each at its first request.
            let e = try first.enroll(terminal: try ReplicaId.terminal(UInt32(i)), merchant: i <= 4 ? "north" : "south")
            terminals.append(try TerminalReplica.initialize(directory: "\(dir.path)/t\(i)", enrollment: e))
        }
        let failures = Failures()
        let replicas = terminals
        DispatchQueue.concurrentPerform(iterations: terminalCount) { i in
            let t = replicas[i]
            for round in 0..<rounds {
                do {
                    for s in 0..<salesPerRound {
                        // Codes 0...9 repeat across terminals of a merchant: the duplicate rule decides across pushes.
                        let code = try PaymentCode("13456789012340" + String(1000 + (round * salesPerRound + s) % 10))
                        _ = try t.record(.saleCaptured(try SaleCapture(amount: Money(minorUnits: Int64(100 + s), currency: .CNY), paymentCode: code,
                                                                       merchantKey: t.enrollment.ledgerMerchantKey)), wallMillis: clock.millis + Int64(round * 1000 + s))
                    }
                    _ = try t.sync(via: InProcessTransport(central: handlers[(i + round) % 2]), wallMillis: clock.millis + Int64(round * 1000 + 999))
                } catch {
                    failures.add("terminal \(i + 1) round \(round): \(error)")
                }
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all.joined(separator: "\n"))")
        // Quiet rounds: every terminal pulls what the others pushed.
        for _ in 0..<2 { for (i, t) in terminals.enumerated() { _ = try t.sync(via: InProcessTransport(central: handlers[i % 2]), wallMillis: clock.millis + 100_000) } }

        let total = terminals.reduce(0) { $0 + Int($1.lastSequence) }
        #expect(total == terminalCount * rounds * salesPerRound)
        for h in handlers {
            #expect(h.head == UInt64(total), "every event once: head \(h.head), pushed \(total)")
            for (i, t) in terminals.enumerated() { #expect(h.acknowledged(t.enrollment.terminal) == t.lastSequence, "terminal \(i + 1)'s mark") }
        }
        // Each dot at exactly one position.
        var dots: [Dot: UInt64] = [:]
        var every: [Event] = []
        try first.withStorage { (s) throws(SyncError) in
            let context = s.recordContext
            try s.scan(after: 0) { (position, record) throws(SyncError) -> Bool in
                let e: Event
                do throws(LedgerError) { e = try RecordCodec.decode(record, context: context) } catch { throw SyncError(error, location: "position \(position)") }
                if let before = dots[e.dot] { throw SyncError(.malformed, "\(e.dot) at positions \(before) and \(position)") }
                dots[e.dot] = position
                every.append(e)
                return true
            }
        }
        // Every event each terminal wrote (its outbound journal), and nothing else.
        var pushed: [Event] = []
        for (i, t) in terminals.enumerated() {
            let reader = try JournalReader(directory: "\(dir.path)/t\(i + 1)/outbound", dictionaries: [ledgerDictionary], key: t.enrollment.journalKey)
            defer { reader.close() }
            while let (_, record) = try reader.next() { pushed.append(try RecordCodec.decode(record, context: t.enrollment.recordContext)) }
        }
        #expect(Set(pushed.map(\.dot)) == Set(dots.keys), "central holds exactly the pushed events")
        // The state is the fold of every pushed event (what a file central fed the same pushes holds), on both handlers and every terminal.
        let truth = LedgerState.fold(pushed).canonicalText
        #expect(try first.state.canonicalText == truth)
        #expect(try second.state.canonicalText == truth)
        // A terminal holds its own merchant's events.
        for (i, t) in terminals.enumerated() {
            let mine = LedgerState.fold(pushed.filter { (($0.dot.replica.rawValue <= 4) == (i < 4)) }).canonicalText
            #expect(t.state.canonicalText == mine, "terminal \(i + 1) converged with its merchant's events")
        }
    }
}

/// Failures collected from concurrent work.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.withLock { list.append(s) } }
    var all: [String] { lock.withLock { list } }
}

@Suite("central on PostgreSQL: locks and schema")
struct PostgresLockTests {
    static func capture(_ terminal: ReplicaId, _ seq: UInt64, key: MerchantKey) -> AcceptedEvent {
        let code = try! PaymentCode("1345678901234" + String(20000 + seq))
        let e = Event(dot: try! Dot(replica: terminal, seq: seq), hlc: HLCTimestamp(millis: seq, logical: 0), context: VersionVector(),
                      body: .saleCaptured(try! SaleCapture(amount: Money(minorUnits: 100, currency: .CNY), paymentCode: code, merchantKey: key)))
        return AcceptedEvent(event: e, record: RecordCodec.encode(e))
    }

    @Test("two sessions of one terminal append the same numbers: one applies, the other is refused as busy and writes nothing")
    func twoSessionsOfOneTerminal() throws {
        guard let server = PostgresTestDatabase.server(for: "two sessions of one terminal") else { return }
        let url = try PostgresTestDatabase.fresh(on: server, label: "sessions")
        let a = try PostgresCentralStore.createStorage(url: url)
        let b = try PostgresCentralStore.openStorage(url: url)
        defer { try? a.close(); try? b.close() }
        let t1 = try ReplicaId.terminal(1)
        let keyBytes = Array(repeating: UInt8(7), count: 32)
        try a.saveEnrollment(Enrollment(central: a.centralID, terminal: t1, merchant: "shop", secret: Array(repeating: 1, count: 32), merchantKey: keyBytes))
        let batch = (1...3).map { Self.capture(t1, UInt64($0), key: MerchantKey(bytes: keyBytes)) }
        for e in batch { try a.prepare(e.event); try b.prepare(e.event) }
        #expect(b.mark(of: t1) == 0 && a.mark(of: t1) == 0)
        #expect(try a.append(batch, skipping: nil) == 1...3)
        // b read the mark before a's append: its append finds the mark moved under the terminal's row lock.
        do {
            try b.append(batch, skipping: nil)
            Issue.record("the second session's append was taken")
        } catch {
            #expect(error.code == .locked && error.message.contains("the mark is 3"), "\(error)")
        }
        try b.beginRequest()
        #expect(b.head == 3 && b.mark(of: t1) == 3, "nothing of the refused append was written: head \(b.head)")
    }

    @Test("a database whose schema is newer than this build is refused, naming both versions")
    func newerSchemaRefused() throws {
        guard let server = PostgresTestDatabase.server(for: "a newer schema") else { return }
        let url = try PostgresTestDatabase.fresh(on: server, label: "schema")
        try PostgresCentralStore.createStorage(url: url).close()
        let raw = try PostgresCentralStore.openStorage(url: url)
        try raw.session.query("UPDATE possync_schema SET version = 99", "test")
        try raw.close()
        do {
            _ = try PostgresCentralStore.openStorage(url: url)
            Issue.record("a schema of version 99 was opened")
        } catch {
            #expect(error.code == .versionUnsupported && error.message.contains("version 99") && error.message.contains("version \(PostgresSchema.version)"), "\(error)")
            #expect(error.location == url.redacted)
        }
    }
}
