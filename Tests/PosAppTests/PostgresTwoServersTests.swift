import Foundation
import PosApp
import PosCentral
import PosCentralPostgres
import PosHTTPClient
import PosLedger
import PosTerminal
import PosTestSupport
import PosWire
import Testing

/// Two `possync central serve --postgres URL` processes on one database, 50 terminals syncing
/// through either (sync-protocol.md, "Central on PostgreSQL": several processes may serve one database).
@Suite("two server processes on one PostgreSQL database", .serialized)
struct PostgresTwoServersTests {
    static let now = "2026-03-02T08:00:00Z"
    static let nowMillis: Int64 = 1_772_438_400_000
    static let terminalCount = 50
    static let rounds = 3
    /// Sync attempts per round at most (a sync refused as busy — another session of the database held a lock — is tried again).
    static let attemptsMax = 5
    /// Threads driving the terminals at once (each drives every `threads`-th terminal).
    static let threads = 10

    @Test("two servers, 50 terminals (two merchants) scanning, returning and syncing through both: every dot once, marks match, central show --json equals a file central's fed the same pushes")
    func twoServersFiftyTerminals() throws {
        guard let server = PostgresTestDatabase.server(for: "two server processes on one database") else { return }
        let started = Date()
        let tmp = TempDir("pg-two-servers")
        let hq = tmp.path + "/hq"
        // A file central with every enrollment, moved to PostgreSQL before any event: the two share the identity,
        // so the terminals' bundles (what each pushed) import into the file central.
        _ = try CLI.json(["central", "init", "--dir", hq], now: Self.now)
        let desk = try CentralDesk.open(directory: hq, clockMillis: { Self.nowMillis })
        let shops = (1...Self.terminalCount).map { tmp.path + "/shop\($0)" }
        for i in 1...Self.terminalCount {
            _ = try desk.enroll(terminal: UInt32(i), merchant: i % 2 == 0 ? "north" : "south", out: tmp.path + "/t\(i).json")
        }
        try desk.close()
        for i in 1...Self.terminalCount {
            let r = try CLI.run(["terminal", "init", "--dir", shops[i - 1], "--enrollment", tmp.path + "/t\(i).json"], now: Self.now)
            #expect(r.status == 0, "\(r.stderr)")
        }
        // The twin the bundles are imported into: a copy taken before the move (the moved directory is only read from then on).
        let twin = tmp.path + "/hq-twin"
        try FileManager.default.copyItem(atPath: hq, toPath: twin)
        let url = try PostgresTestDatabase.fresh(on: server, label: "twoservers").redacted
        let moved = try CLI.run(["central", "migrate", "--from-dir", hq, "--postgres", url])
        #expect(moved.status == 0, "\(moved.stderr)")

        let servers = try (1...2).map { n in try Background.start(["central", "serve", "--postgres", url, "--port", "0", "--now", Self.now], in: tmp, name: "serve\(n)") }
        defer { for s in servers { s.kill() } }
        let urls = try servers.map { try $0.url() }

        // Every terminal at once (in threads): each round two sales (codes repeat within a merchant: the duplicate rule
        // decides across servers) and, from the second round, a return of its first sale with a code of its own; a bundle of what it is
        // about to push; then a sync, through server (terminal + round) % 2, so every terminal uses both.
        let failures = Failures()
        let busy = Counter()
        let workers = DispatchGroup()
        for w in 0..<Self.threads {
            workers.enter()
            Thread.detachNewThread {
                defer { workers.leave() }
                for i in stride(from: w, to: Self.terminalCount, by: Self.threads) { Self.run(terminal: i, shops[i], tmp.path, urls, busy, failures) }
            }
        }
        workers.wait()
        #expect(failures.all.isEmpty, "\(failures.all.joined(separator: "\n"))")
        // A quiet round: every terminal pulls what the others pushed, through the other server.
        for i in 0..<Self.terminalCount {
            let t = try TerminalDesk.open(directory: shops[i])
            try Self.sync(t, urls[(i + 1) % 2], Self.nowMillis + 600_000, busy, "terminal \(i + 1) quiet round")
            try t.close()
        }

        // Every dot once, each terminal's 1...mark, nothing else.
        let storage = try PostgresCentralStore.openStorage(url: try PostgresURL(parsing: url))
        var dots: [Dot: UInt64] = [:]
        var duplicates: [String] = []
        let context = storage.recordContext
        try storage.scan(after: 0) { (position, record) throws(SyncError) -> Bool in
            let e: Event
            do throws(LedgerError) { e = try RecordCodec.decode(record, context: context) } catch { throw SyncError(error, location: "position \(position)") }
            if let before = dots[e.dot] { duplicates.append("\(e.dot) at positions \(before) and \(position)") }
            dots[e.dot] = position
            return true
        }
        #expect(duplicates.isEmpty, "\(duplicates.prefix(5))")
        #expect(UInt64(dots.count) == storage.head, "head \(storage.head), \(dots.count) distinct dots")
        var perTerminal: [ReplicaId: Int] = [:]
        for d in dots.keys { perTerminal[d.replica, default: 0] += 1 }
        for i in 1...Self.terminalCount {
            let id = try ReplicaId.terminal(UInt32(i))
            let mark = storage.mark(of: id)
            // Exactly the terminal's last sequence: every event it recorded is held, none it did not.
            let replica = try TerminalReplica.open(directory: shops[i - 1])
            let last = replica.lastSequence
            try replica.close()
            #expect(mark == last && perTerminal[id] == Int(mark), "terminal \(i): mark \(mark), its last sequence \(last), \(perTerminal[id] ?? 0) events held")
        }
        try storage.close()

        // The file central fed the same pushes (the bundles, in each terminal's order) holds the same.
        var bundles: [String] = []
        for i in 1...Self.terminalCount { for round in 0..<Self.rounds { bundles.append("\(tmp.path)/b-\(i)-\(round).bundle") } }
        let imported = try CLI.run(["central", "import", "--dir", twin] + bundles)
        #expect(imported.status == 0, "\(imported.stderr)")
        let fileShow = try CLI.run(["central", "show", "--dir", twin, "--json"])
        let pgShow = try CLI.run(["central", "show", "--postgres", url, "--json"])
        #expect(pgShow.status == 0 && fileShow.status == 0, "\(pgShow.stderr) \(fileShow.stderr)")
        #expect(pgShow.stdout == fileShow.stdout, "central show --json: PostgreSQL central equals the file central fed the same pushes")
        // The same number of positions, every terminal's mark (and the same central id, no loss record).
        let fileStatus = try CLI.run(["central", "status", "--dir", twin, "--json"]), pgStatus = try CLI.run(["central", "status", "--postgres", url, "--json"])
        #expect(pgStatus.stdout == fileStatus.stdout, "central status --json: PostgreSQL central equals the file central")

        for (n, s) in servers.enumerated() {
            #expect(try s.terminate() == 0, "\(s.stderr().suffix(500))")
            // Both served pushes: each logs one line per request.
            let pushes = s.stderr().components(separatedBy: "\n").filter { $0.contains("message=push") && $0.contains("status=200") }.count
            #expect(pushes >= Self.terminalCount, "server \(n + 1) answered \(pushes) pushes")
        }
        let seconds = Date().timeIntervalSince(started)
        print("two servers on one database: \(Self.terminalCount) terminals, \(dots.count) events, \(busy.value) syncs refused as busy and retried, \(String(format: "%.1f", seconds)) s")
    }

    /// One terminal's rounds: sales, a return, a bundle of what it is about to push, a sync.
    static func run(terminal i: Int, _ shop: String, _ tmp: String, _ urls: [String], _ busy: Counter, _ failures: Failures) {
        do {
            let t = try TerminalDesk.open(directory: shop)
            defer { try? t.close() }
            var firstReturnCode: String? = nil
            for round in 0..<Self.rounds {
                let wall = Self.nowMillis + Int64(round * 60_000 + i * 10)
                for s in 0..<2 {
                    // A code is single-use: a terminal refuses one it holds. Round 0's first sales (scanned before any pull)
                    // share a code in fours of a merchant's terminals; every other code is the terminal's own.
                    let owner = round == 0 && s == 0 ? (i / 4) * 4 + i % 2 : i
                    let code = try PaymentCode("134567" + String(format: "%03d%02d%d", owner, round, s) + "123456")
                    let sale = try t.scan(amount: Money(minorUnits: Int64(1_000 + 100 * s + i), currency: .CNY), paymentCode: code, nowMillis: wall + Int64(s))
                    if round == 0 && s == 1 { firstReturnCode = sale.returnCode }  // its own code: never a void-duplicate
                }
                if round >= 1, let code = firstReturnCode {
                    _ = try t.requestReturn(.init(returnCode: code, reason: .wrongSize, resolution: .refund, amountText: "1.00", unused: true, packagingIntact: true),
                                            nowMillis: wall + 5)
                }
                _ = try t.exportBundle(to: "\(tmp)/b-\(i + 1)-\(round).bundle")
                try Self.sync(t, urls[(i + round) % 2], wall + 9, busy, "terminal \(i + 1) round \(round)")
            }
        } catch {
            failures.add("terminal \(i + 1): \(error)")
        }
    }

    /// One sync through `server`, tried again when refused as busy (two servers took the same locks at once).
    static func sync(_ t: TerminalDesk, _ server: String, _ wall: Int64, _ busy: Counter, _ what: String) throws {
        var settings = HTTPClientSettings()
        settings.attemptsMax = 3
        settings.backoffBaseMillis = 50
        for attempt in 1...attemptsMax {
            do {
                _ = try t.sync(server: server, settings: settings, nowMillis: wall)
                return
            } catch {
                guard error.kind == .busy, attempt < attemptsMax else { throw error }
                busy.increment()
                Thread.sleep(forTimeInterval: 0.05 * Double(attempt))
            }
        }
    }
}

/// A count shared by threads.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

/// Failures collected from concurrent work.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.withLock { list.append(s) } }
    var all: [String] { lock.withLock { list } }
}
