import Foundation
import PosApp
import PosCentralFiles
import PosCentralPostgres
import PosLedger
import PosTestSupport
import PosWire
import Testing

/// `possync central migrate --from-dir C --postgres URL` (sync-protocol.md, "Moving central to PostgreSQL").
@Suite("CLI: moving a file central to PostgreSQL", .serialized)
struct MigrateCLITests {
    static let day0 = "2026-03-02T08:00:00Z"

    /// A file central with two merchants, three trading terminals (one flagged) and a revoked one, sales, returns,
    /// decisions, forwarding and a completion (central's own events), and a real loss: the journal's last frame
    /// torn, cut at the next open and recorded (epoch 1), after which central's own numbers skip past its reservation.
    static func busyCentral(_ tmp: TempDir) throws -> (central: String, shops: [String]) {
        let c = tmp.path + "/hq"
        _ = try CLI.json(["central", "init", "--dir", c], now: day0)
        var shops: [String] = []
        for (i, merchant) in [(1, "acme"), (2, "acme"), (3, "bolt"), (4, "bolt")] {
            _ = try CLI.json(["central", "enroll", "--dir", c, "--terminal", "\(i)", "--merchant", merchant, "--out", tmp.path + "/t\(i).json"], now: day0)
            let dir = tmp.path + "/shop\(i)"
            _ = try CLI.json(["terminal", "init", "--dir", dir, "--enrollment", tmp.path + "/t\(i).json"], now: day0)
            shops.append(dir)
        }
        var returnCodes: [String] = []
        for round in 0..<3 {
            for i in 0..<3 {
                let code = "1345678901234" + String(format: "%05d", 10_000 + round * 10 + i * 3 + 1)  // none ends in 0: every one is confirmed
                let sale = try CLI.json(["terminal", "scan", "--dir", shops[i], "--amount", "\(20 + round * 5 + i).00", "--payment-code", code,
                                         "--item", "TEE-M:1:\(20 + round * 5 + i).00"], now: String(format: "2026-03-02T%02d:%02d:00Z", 9 + round, i))
                returnCodes.append(try #require(sale["returnCode"] as? String))
            }
            for s in shops.prefix(3) { _ = try CLI.json(["terminal", "sync", "--dir", s, "--central", c], now: String(format: "2026-03-02T%02d:00:00Z", 12 + round)) }
        }
        _ = try CLI.json(["central", "forward", "--dir", c], now: "2026-03-02T18:00:00Z")
        // Returns: one approved and completed at central, one rejected at central, one left open.
        var tickets: [String] = []
        for (shop, code) in [(1, returnCodes[0]), (0, returnCodes[3]), (2, returnCodes[2])] {
            let r = try CLI.json(["terminal", "refund", "--dir", shops[shop], "--return-code", code, "--reason", "wrong-size", "--resolution", "refund",
                                  "--amount", "5.00", "--unused", "--packaging-intact"], now: "2026-03-03T10:00:00Z")
            tickets.append(try #require(r["ticket"] as? String))
            _ = try CLI.json(["terminal", "sync", "--dir", shops[shop], "--central", c], now: "2026-03-03T11:00:00Z")
        }
        _ = try CLI.json(["central", "approve", "--dir", c, "--ticket", tickets[0]], now: "2026-03-03T12:00:00Z")
        _ = try CLI.json(["central", "complete", "--dir", c, "--ticket", tickets[0]], now: "2026-03-03T12:30:00Z")
        _ = try CLI.json(["central", "reject", "--dir", c, "--ticket", tickets[1], "--note", "outside the window"], now: "2026-03-03T12:40:00Z")
        let revoked = try CLI.run(["central", "revoke", "--dir", c, "--terminal", "4", "--note", "lost in transit"], now: "2026-03-03T13:00:00Z")
        #expect(revoked.status == 0, "\(revoked.stderr)")
        // A flag as central records one when a terminal re-sends an accepted event changed (written here through the storage).
        let storage = try FileCentralStore.openStorage(directory: c)
        try storage.flag(try ReplicaId.terminal(2), note: "2026-03-03T13:30:00Z: re-sent seq 1 with another digest")
        try storage.close()
        for s in shops.prefix(3) { _ = try CLI.json(["terminal", "sync", "--dir", s, "--central", c], now: "2026-03-03T20:00:00Z") }
        // A torn tail on central's journal: its last frame (the rejection, central's own event) loses its last bytes.
        // The next open cuts it and records the cut (a loss record, epoch 1); central's next own event is numbered
        // above its reservation (the numbers between are skipped), and the terminals sync again after the cut.
        let journal = c + "/journal"
        let last = try #require(try FileManager.default.contentsOfDirectory(atPath: journal).filter { !$0.hasPrefix(".") && $0 != "LOCK" }.sorted().last)
        let segment = journal + "/" + last
        let size = try #require(try FileManager.default.attributesOfItem(atPath: segment)[.size] as? Int)
        #expect(truncate(segment, off_t(size - 3)) == 0, "truncate \(segment)")
        let settled = try CLI.run(["central", "show", "--dir", c, "--json"])
        #expect(settled.status == 0, "\(settled.stderr)")
        #expect(settled.stdout.contains("\"losses\""), "the torn tail was cut and recorded: \(settled.stdout.suffix(400))")
        _ = try CLI.json(["central", "approve", "--dir", c, "--ticket", tickets[2]], now: "2026-03-04T09:00:00Z")
        for s in shops.prefix(3) { _ = try CLI.json(["terminal", "sync", "--dir", s, "--central", c], now: "2026-03-04T20:00:00Z") }
        return (c, shops)
    }

    /// A file central with one terminal (merchant acme) whose `sales` sales (none declined) were pushed in one sync.
    static func oneShopCentral(_ tmp: TempDir, sales: Int) throws -> (central: String, shops: [String]) {
        let (c, shops) = try setUpShops(tmp, count: 1, now: day0)
        for n in 0..<sales {
            _ = try CLI.json(["terminal", "scan", "--dir", shops[0], "--amount", "\(10 + n).00", "--payment-code", "13456789012345\(6000 + n)"],
                             now: String(format: "2026-03-02T09:%02d:00Z", n))
        }
        _ = try CLI.json(["terminal", "sync", "--dir", shops[0], "--central", c], now: "2026-03-02T12:00:00Z")
        return (c, shops)
    }

    @Test("migrate a busy file central: `central show --json` identical; stopped after 2 batches and rerun, the same result; the source unchanged; another central's database refused; a terminal then syncs against PostgreSQL with nothing re-sent or lost")
    func migrateBusyCentral() throws {
        guard let server = PostgresTestDatabase.server(for: "central migrate") else { return }
        let tmp = TempDir("migrate")
        let (c, shops) = try Self.busyCentral(tmp)
        let fileShow = try CLI.run(["central", "show", "--dir", c, "--json"])
        let fileStatus = try CLI.run(["central", "status", "--dir", c, "--json"])
        let fileStatusJSON = try #require(try JSONSerialization.jsonObject(with: Data(fileStatus.stdout.utf8)) as? [String: Any])
        let head = try #require(fileStatusJSON["journalPositions"] as? Int)
        #expect(fileStatus.stdout.contains("\"rewroteHistory\" : true"), "terminal 2 is flagged: \(fileStatus.stdout)")
        #expect(fileStatusJSON["epoch"] as? Int == 1, "the cut made epoch 1: \(fileStatus.stdout)")
        let before = treeHashes(c)

        // One run, interrupted after two batches of 3 events (as a kill between transactions would), then resumed from the CLI.
        let url = try PostgresTestDatabase.fresh(on: server, label: "migrate").redacted
        let stop = SyncError(.io, "injected stop after 2 batches")
        #expect(throws: AppError.self) {
            _ = try CentralDesk.migrate(fromDirectory: c, postgres: url, clockMillis: { 0 }, batchEvents: 3,
                                        afterBatch: { (n: Int) throws(SyncError) in if n == 2 { throw stop } })
        }
        // Stopped at a batch boundary: some positions are in the database, not all (read past the `migrating` marker).
        let watched = try PostgresCentralStore.openStorage(url: try PostgresURL(parsing: url), whileMigrating: true)
        let partial = Int(watched.head)
        try watched.close()
        #expect(partial >= 2 && partial <= 6 && partial < head, "two batches of at most 3 events each: \(partial) of \(head)")
        let resumed = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", url, "--batch-events", "3", "--json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let r = try #require(try JSONSerialization.jsonObject(with: Data(resumed.stdout.utf8)) as? [String: Any])
        let copied = try #require(r["copied"] as? [String: Any])
        #expect(copied["resumedAfter"] as? Int == partial, "the rerun continued after the two batches: \(copied)")
        #expect(copied["enrollments"] as? Int == 0 && copied["losses"] as? Int == 0, "identities were copied once, by the first run: \(copied)")
        #expect(copied["events"] as? Int == head - partial, "every position once: \(copied)")

        // In one go into a second database: the same.
        let url2 = try PostgresTestDatabase.fresh(on: server, label: "migrate2").redacted
        let once = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", url2])
        #expect(once.status == 0 && once.stdout.contains("identical in both"), "\(once.stdout) \(once.stderr)")
        // A third run finds everything there: nothing copied, still verified.
        let again = try CLI.json(["central", "migrate", "--from-dir", c, "--postgres", url2])
        #expect((again["copied"] as? [String: Any])?["events"] as? Int == 0, "\(again)")

        for target in [url, url2] {
            let shown = try CLI.run(["central", "show", "--postgres", target, "--json"])
            #expect(shown.status == 0, "\(shown.stderr)")
            #expect(shown.stdout == fileShow.stdout, "central show --json of \(target) equals the file central's")
            // The same central id, positions, epoch, terminals (marks, flags) and loss records.
            let status = try CLI.run(["central", "status", "--postgres", target, "--json"])
            #expect(status.stdout == fileStatus.stdout, "central status --json of \(target) equals the file central's")
        }
        var after = treeHashes(c)
        #expect(after.removeValue(forKey: CentralMovedMarker.fileName) != nil, "the move is marked in \(c)")
        #expect(after == before, "the source directory was only read, MOVED apart")

        // A database holding another central is refused, naming it.
        let other = try PostgresTestDatabase.fresh(on: server, label: "migrateother").redacted
        let made = try CLI.json(["central", "init", "--postgres", other])
        let refused = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", other])
        #expect(refused.status == 1 && refused.stderr.contains("holds central \(made["central"] as? String ?? "?")"), "\(refused.stderr)")

        // A terminal syncs against the PostgreSQL central: its one new sale is pushed, nothing else, and it pulls nothing it holds.
        _ = try CLI.json(["terminal", "scan", "--dir", shops[0], "--amount", "9.00", "--payment-code", "134567890123499991"], now: "2026-03-04T09:00:00Z")
        let terminal = try TerminalDesk.open(directory: shops[0])
        defer { try? terminal.close() }
        let central = try CentralDesk.open(at: .postgres(url), clockMillis: { 1_772_600_000_000 })
        defer { try? central.close() }
        let synced = try terminal.sync(with: central, nowMillis: 1_772_600_000_000)
        #expect(synced.pushed == 1 && synced.alreadyAtCentral == 0 && synced.centralLostFrom == nil, "\(synced)")
        #expect(synced.pulled == 0, "the terminal held everything already: \(synced)")
        let status = try CLI.json(["central", "status", "--postgres", url])
        #expect(status["journalPositions"] as? Int == head + 1, "one new position: \(status)")
    }

    @Test("a moved central grows past one server: `central init --postgres A,B` adds a shard, the moved merchants stay in A with their positions, a new merchant lands on B, both sync, and `central migrate` names that way when given a list")
    func movedCentralAddsAShard() throws {
        guard let (one, two) = PostgresTestDatabase.servers(for: "a moved central adds a shard") else { return }
        let tmp = TempDir("migrate-grow")
        let (c, shops) = try Self.oneShopCentral(tmp, sales: 3)
        let a = try PostgresTestDatabase.fresh(on: one, label: "grow0").redacted
        let b = try PostgresTestDatabase.fresh(on: two, label: "grow1").redacted
        let list = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", "\(a),\(b)"])
        #expect(list.status != 0 && list.stderr.contains("central init --postgres"), "a list is refused, naming the way to add shards: \(list.stderr)")
        let moved = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", a])
        #expect(moved.status == 0, "\(moved.stderr)")
        let headBefore = try #require(try CLI.json(["central", "status", "--postgres", a])["journalPositions"] as? Int)

        let grown = try CLI.run(["central", "init", "--postgres", "\(a),\(b)"])
        #expect(grown.status == 0, "\(grown.stderr)")
        _ = try CLI.json(["central", "enroll", "--postgres", "\(a),\(b)", "--terminal", "2", "--merchant", "bolt", "--out", tmp.path + "/t2.json"], now: Self.day0)
        let newShop = tmp.path + "/shop-bolt"
        _ = try CLI.json(["terminal", "init", "--dir", newShop, "--enrollment", tmp.path + "/t2.json"], now: Self.day0)
        _ = try CLI.json(["terminal", "scan", "--dir", newShop, "--amount", "7.00", "--payment-code", "134567890123477771"], now: "2026-03-02T13:00:00Z")
        _ = try CLI.json(["terminal", "scan", "--dir", shops[0], "--amount", "8.00", "--payment-code", "134567890123477781"], now: "2026-03-02T13:01:00Z")
        let central = try CentralDesk.open(at: .postgres("\(a),\(b)"), clockMillis: { 1_772_460_000_000 })
        defer { try? central.close() }
        for (dir, label) in [(shops[0], "the moved terminal"), (newShop, "the new merchant's terminal")] {
            let terminal = try TerminalDesk.open(directory: dir)
            defer { try? terminal.close() }
            let synced = try terminal.sync(with: central, nowMillis: 1_772_460_000_000)
            #expect(synced.pushed == 1 && synced.alreadyAtCentral == 0 && synced.centralLostFrom == nil, "\(label): \(synced)")
        }
        // The moved merchant's history stays in A, in its positions (one more); the new merchant is B's alone.
        let storage = try PostgresCentralStore.openStorage(urls: [try PostgresURL(parsing: a), try PostgresURL(parsing: b)])
        try storage.beginRequest(about: .terminal(try ReplicaId.terminal(1)))
        #expect(storage.head == UInt64(headBefore + 1), "shard 0 held \(headBefore) positions and took one")
        storage.endRequest()
        try storage.beginRequest(about: .terminal(try ReplicaId.terminal(2)))
        #expect(storage.head == 1, "the new merchant's shard holds its one event")
        storage.endRequest()
        try storage.close()
        let shown = try CLI.run(["central", "show", "--postgres", "\(a),\(b)", "--json"])
        #expect(shown.status == 0 && shown.stdout.contains("7.00") && shown.stdout.contains("8.00"), "\(shown.stdout.suffix(600)) \(shown.stderr)")
    }

    @Test("a half-moved database is served by nothing (it says `migrating` until the check passes); once moved, the directory is refused to every command that serves or changes it, naming MOVED and the database; show and status still read it")
    func halfMovedAndMovedAreNotServed() throws {
        guard let server = PostgresTestDatabase.server(for: "central migrate: the migrating and moved markers") else { return }
        let tmp = TempDir("migrate-markers")
        let (c, shops) = try Self.oneShopCentral(tmp, sales: 3)
        let url = try PostgresTestDatabase.fresh(on: server, label: "migratemarkers").redacted
        let stop = SyncError(.io, "injected stop after 1 batch")
        #expect(throws: AppError.self) {
            _ = try CentralDesk.migrate(fromDirectory: c, postgres: url, clockMillis: { 0 }, batchEvents: 1,
                                        afterBatch: { (n: Int) throws(SyncError) in if n == 1 { throw stop } })
        }
        #expect(CentralMovedMarker.read(c) == nil, "not moved yet: the directory is still central")
        let half: [[String]] = [
            ["central", "show", "--postgres", url], ["central", "status", "--postgres", url], ["central", "forward", "--postgres", url],
            ["central", "import", "--postgres", url, tmp.path + "/none.bundle"], ["central", "serve", "--postgres", url, "--port", "0"],
            ["central", "revoke", "--postgres", url, "--terminal", "1"],
        ]
        for args in half {
            let r = try CLI.run(args, now: "2026-03-02T13:00:00Z")
            #expect(r.status == 3 && r.stderr.contains("possync_migration") && r.stderr.contains("state migrating") && r.stderr.contains(url),
                    "\(args[1]) on a half-moved database: \(r.status) \(r.stderr)")
        }
        let moved = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", url])
        #expect(moved.status == 0 && moved.stdout.contains("MOVED"), "\(moved.stdout) \(moved.stderr)")
        let marker = try #require(CentralMovedMarker.read(c))
        #expect(marker.postgres == url, "\(marker)")
        #expect(try CLI.run(["central", "show", "--postgres", url]).status == 0, "the checked database is central now")
        let refused: [[String]] = [
            ["central", "serve", "--dir", c, "--port", "0"], ["central", "import", "--dir", c, tmp.path + "/none.bundle"],
            ["central", "forward", "--dir", c], ["central", "revoke", "--dir", c, "--terminal", "1"],
            ["central", "approve", "--dir", c, "--ticket", "1:1"], ["central", "recover", "--dir", c],
            ["nightly", "--central", c, "--inbox", tmp.path, "--report", tmp.path + "/report", "--date", "2026-03-02"],
            ["terminal", "sync", "--dir", shops[0], "--central", c],
        ]
        for args in refused {
            let r = try CLI.run(args, now: "2026-03-02T13:00:00Z")
            #expect(r.status == 1 && r.stderr.contains(c + "/MOVED") && r.stderr.contains(url), "\(args.prefix(2)) on a moved directory: \(r.status) \(r.stderr)")
        }
        for args in [["central", "show", "--dir", c], ["central", "status", "--dir", c]] {
            let r = try CLI.run(args)
            #expect(r.status == 0, "\(args[1]) still reads a moved directory: \(r.stderr)")
        }
    }

    @Test("customer notifications queued or retrying in the directory's delivery log refuse the move (exit 1, naming the outbox) unless --drop-notifications, which moves and says how many were left")
    func undeliveredNotificationsRefuseTheMove() throws {
        guard let server = PostgresTestDatabase.server(for: "central migrate with undelivered notifications") else { return }
        let tmp = TempDir("migrate-notify")
        let (c, _, _) = try NotificationCLITests().world(tmp)
        let secret = tmp.path + "/webhook.secret"
        try "0123456789abcdef0123456789abcdef\n".write(toFile: secret, atomically: true, encoding: .utf8)
        // Nothing listens on port 1: both notifications are tried once and wait to be retried.
        let tried = try CLI.run(["central", "notify", "--dir", c, "--webhook", "http://127.0.0.1:1/hook", "--secret-file", secret], now: "2026-03-03T21:00:00Z")
        #expect(tried.stdout.contains("retrying"), "\(tried.stdout) \(tried.stderr)")
        let url = try PostgresTestDatabase.fresh(on: server, label: "migratenotify").redacted
        let refused = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", url])
        #expect(refused.status == 1 && refused.stderr.contains(c + "/notifications/outbox.jsonl: 2 customer notifications not delivered yet")
                && refused.stderr.contains("--drop-notifications"), "\(refused.stderr)")
        #expect(try PostgresCentralStore.migrationState(url: try PostgresURL(parsing: url)) == nil, "nothing was written to the database")
        #expect(CentralMovedMarker.read(c) == nil)
        let dropped = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", url, "--drop-notifications", "--json"])
        #expect(dropped.status == 0 && dropped.stdout.contains("\"notificationsLeft\" : 2"), "\(dropped.stdout) \(dropped.stderr)")
    }

    @Test("a migration whose database connection is cut at seeded points, run again until it completes: the same result as one run; a target changed behind its back fails the check, naming what differs")
    func migrateThroughCuts() throws {
        guard let server = PostgresTestDatabase.server(for: "central migrate through connection cuts") else { return }
        let seeded = TestSeed("migrate through cuts", replays: "the cuts")  // printed first: a crash or a hang still leaves it in the log
        let seed = seeded.value, replay = seeded.replay
        let tmp = TempDir("migrate-cuts")
        let (c, _) = try Self.busyCentral(tmp)
        let fileShow = try CLI.run(["central", "show", "--dir", c, "--json"])
        let target = try PostgresTestDatabase.fresh(on: server, label: "migratecut")
        let proxy = try CuttingProxy(to: target.port, seed: seed)
        defer { proxy.stop() }
        var proxied = target
        proxied.host = "127.0.0.1"
        proxied.port = proxy.port
        proxy.arm(cutWithinBytes: 20_000)
        var failed = 0, runs = 0
        // Bounded: each run moves what it can before its connection is cut; after `runsArmedMax` runs the cuts stop.
        let runsArmedMax = 40
        while runs < runsArmedMax {
            runs += 1
            let r = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", proxied.redacted, "--batch-events", "2"])
            if r.status == 0 { break }
            failed += 1
            #expect(r.stderr.contains(proxied.redacted), "\(replay): the error names the database: \(r.stderr)")
            #expect(!r.stderr.contains("migration check failed"), "\(replay): a cut is not a difference: \(r.stderr)")
        }
        proxy.disarm()
        let last = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", proxied.redacted, "--json"])
        #expect(last.status == 0, "\(replay): \(last.stderr)")
        print("migrate through cuts: \(replay): \(runs) runs with cuts, \(failed) cut short, \(proxy.cuts) connections cut")
        #expect(failed >= 1 && proxy.cuts >= 1, "\(replay): no run was cut: the test exercised nothing")
        let shown = try CLI.run(["central", "show", "--postgres", target.redacted, "--json"])
        #expect(shown.stdout == fileShow.stdout, "\(replay): central show --json equals the file central's")

        // Behind the migration's back: a mark raised, then a record's byte flipped; each rerun fails naming it.
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/psql") else {
            print("migrate through cuts: skipped the changes behind the migration's back: /usr/bin/psql is not installed")
            return
        }
        func psql(_ sql: String) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
            p.arguments = [target.redacted, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "psql \(sql)")
        }
        try psql("UPDATE terminals SET mark = mark + 1 WHERE terminal = 1")
        let marked = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", target.redacted])
        #expect(marked.status == 3 && marked.stderr.contains("migration check failed: terminal 1's high-water mark"), "\(marked.stderr)")
        try psql("UPDATE terminals SET mark = mark - 1 WHERE terminal = 1")
        try psql("UPDATE events SET record = set_byte(record, 0, get_byte(record, 0) # 1) WHERE position = 3")
        let flipped = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", target.redacted])
        #expect(flipped.status == 3 && flipped.stderr.contains("migration check failed: the record at position 3"), "\(flipped.stderr)")
    }

    @Test("one terminal's long push moved in batches smaller than it (a batch ends inside the terminal's run of events): no gap is invented, the move completes")
    func batchEndsInsideOneTerminalsRun() throws {
        guard let server = PostgresTestDatabase.server(for: "central migrate of a long push") else { return }
        let tmp = TempDir("migrate-long")
        let (c, _) = try Self.oneShopCentral(tmp, sales: 7)
        let url = try PostgresTestDatabase.fresh(on: server, label: "migratelong").redacted
        let moved = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", url, "--batch-events", "3", "--json"])
        #expect(moved.status == 0, "\(moved.stderr)")
        #expect(moved.stdout.contains("\"batches\" : 3"), "7 events in batches of 3: \(moved.stdout)")
        #expect(try CLI.run(["central", "show", "--postgres", url, "--json"]).stdout == CLI.run(["central", "show", "--dir", c, "--json"]).stdout)
    }

    @Test("a migrate process killed by SIGKILL midway (the built binary, one event a transaction), then run again: central show --json identical, every position once")
    func killedProcessResumes() throws {
        guard let server = PostgresTestDatabase.server(for: "central migrate killed midway") else { return }
        let tmp = TempDir("migrate-kill")
        let (c, _) = try Self.busyCentral(tmp)
        let fileShow = try CLI.run(["central", "show", "--dir", c, "--json"])
        let head = try #require(try CLI.json(["central", "status", "--dir", c])["journalPositions"] as? Int)
        // Bounded: up to 3 tries to land the kill between the first and the last position (a fast machine may finish first).
        var killedAt: UInt64? = nil
        var url = server
        for attempt in 1...3 {
            url = try PostgresTestDatabase.fresh(on: server, label: "migratekill")
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = ["central", "migrate", "--from-dir", c, "--postgres", url.redacted, "--batch-events", "1"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Watch the database's head (a connection of this test's own) and kill as soon as a few positions are in.
            let deadline = Date(timeIntervalSinceNow: 30)
            var seen: UInt64 = 0
            while p.isRunning && Date() < deadline {
                if let s = try? PostgresCentralStore.openStorage(url: url, whileMigrating: true) { seen = s.head; try? s.close() }
                if seen >= 3 { kill(p.processIdentifier, SIGKILL); break }
                Thread.sleep(forTimeInterval: 0.005)
            }
            p.waitUntilExit()
            if p.terminationReason == .uncaughtSignal {
                let s = try PostgresCentralStore.openStorage(url: url, whileMigrating: true)
                let at = s.head
                try s.close()
                if at < UInt64(head) { killedAt = at; break }
            }
            print("migrate kill: attempt \(attempt) finished before the kill (head \(seen) of \(head)); trying again")
        }
        let at = try #require(killedAt, "the migrate process was never killed midway in 3 tries")
        let again = try CLI.run(["central", "migrate", "--from-dir", c, "--postgres", url.redacted, "--json"])
        #expect(again.status == 0, "\(again.stderr)")
        let r = try #require(try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])
        let copied = try #require(r["copied"] as? [String: Any])
        #expect(copied["resumedAfter"] as? Int == Int(at) && copied["events"] as? Int == head - Int(at), "continued after the kill at position \(at): \(copied)")
        print("migrate kill: killed with positions 1...\(at) of \(head) in the database; the rerun moved \(copied["events"] ?? "?")")
        #expect(try CLI.run(["central", "show", "--postgres", url.redacted, "--json"]).stdout == fileShow.stdout)
    }
}
