import Foundation
import PosTestSupport
import Testing

/// The `possync` executable is PosCLI on the process: what a command prints,
/// where, and its exit code are the same spawned as in-process (where the
/// other CLI suites run them), through every path out of a run: a result,
/// --help and --version, a usage error, a refusal from validate(), a refusal
/// and a store error from run(), and the environment variables.
@Suite("possync: the executable prints and exits as PosCLI.run does in-process", .serialized)
struct EndToEndCLITests {
    @Test("help, version, usage errors, refusals, store errors and results: spawned equals in-process")
    func spawnedEqualsInProcess() throws {
        let tmp = TempDir("e2e")
        let (hq, shops) = try setUpShops(tmp, count: 1)
        let shop = shops[0]
        _ = try CLI.json(["terminal", "scan", "--dir", shop, "--amount", "12.50", "--payment-code", "134567890123456787"], now: "2026-03-02T09:00:00Z")
        let cases: [(args: [String], environment: [String: String], status: Int32)] = [
            (["--help"], [:], 0),
            (["terminal", "refund", "--help"], [:], 0),
            (["--version"], [:], 0),
            ([], [:], 2),
            (["terminal", "frob"], [:], 2),
            (["terminal", "status", "--dir", shop, "--frobnicate"], [:], 2),
            (["terminal", "status", "--dir", shop, "--lock-timeout", "abc"], [:], 2),
            (["terminal", "status", "--dir", shop], ["POSSYNC_LOCK_TIMEOUT": "abc"], 2),
            (["terminal", "refund", "--dir", shop, "--return-code", "1119", "--reason", "bogus", "--resolution", "refund"], [:], 1),
            (["terminal", "approve", "--dir", shop, "--ticket", "1-1-2", "--route", "bogus"], [:], 1),
            (["terminal", "scan", "--dir", shop, "--amount", "600.00", "--payment-code", "134567890123456782"], [:], 1),
            (["terminal", "status", "--dir", shop], ["POSSYNC_NOW": "yesterday"], 1),
            (["terminal", "status", "--dir", tmp.path + "/nowhere"], [:], 3),
            (["central", "show", "--dir", shop], [:], 3),
            (["terminal", "show", "--dir", shop], [:], 0),
            (["terminal", "show", "--dir", shop, "--json"], [:], 0),
            (["central", "show", "--dir", hq], [:], 0),
            (["terminal", "status", "--dir", shop, "--json"], ["POSSYNC_LOCK_TIMEOUT": "0.5"], 0),
        ]
        for c in cases {
            let before = treeHashes(tmp.path)
            let spawned = try CLI.spawn(c.args, now: "2026-03-02T10:00:00Z", environment: c.environment)
            let inProcess = try CLI.run(c.args, now: "2026-03-02T10:00:00Z", environment: c.environment)
            #expect(spawned.status == c.status, "possync \(c.args) \(c.environment): exit \(spawned.status): \(spawned.stderr)")
            #expect(spawned == inProcess, "possync \(c.args) \(c.environment): spawned \(spawned), in-process \(inProcess)")
            #expect(treeHashes(tmp.path).filter { !$0.key.hasSuffix("LOCK") } == before.filter { !$0.key.hasSuffix("LOCK") })
        }
    }

    @Test("a command that writes, spawned: its store opens in-process afterwards and shows what it wrote")
    func spawnedWrites() throws {
        let tmp = TempDir("e2e-write")
        let (hq, shops) = try setUpShops(tmp, count: 1)
        let scan = try CLI.spawn(["terminal", "scan", "--dir", shops[0], "--amount", "7.00", "--payment-code", "134567890123456783", "--json"],
                                 now: "2026-03-02T09:00:00Z")
        #expect(scan.status == 0, "\(scan.stderr)")
        #expect(scan.stdout.contains("\"sale\" : \"1:1\""), "\(scan.stdout)")
        let sync = try CLI.spawn(["terminal", "sync", "--dir", shops[0], "--central", hq], now: "2026-03-02T09:05:00Z")
        #expect(sync.status == 0, "\(sync.stderr)")
        #expect(sync.stderr.hasPrefix("sync: "), "the sync line and progress go to standard error: \(sync.stderr)")
        let sales = try #require(try CLI.json(["central", "show", "--dir", hq])["sales"] as? [[String: Any]])
        #expect(sales.map { $0["id"] as? String } == ["1:1"])
    }
}

/// In-process runs keep nothing between them and share nothing while they run:
/// each reads its own environment and writes to its own console.
@Suite("PosCLI.run: runs in one process do not see each other")
struct InProcessRunTests {
    @Test("16 runs at once, each with its own POSSYNC_NOW and POSSYNC_LOCK_TIMEOUT: each prints its own time, on its own console")
    func parallelRuns() throws {
        let tmp = TempDir("parallel")
        let (_, shops) = try setUpShops(tmp, count: 2)
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var byIndex: [Int: CLI.Result] = [:]
        }
        let results = Results()
        let nows = (0..<16).map { String(format: "2026-03-02T%02d:%02d:00Z", 9 + $0 / 4, $0 % 60) }
        DispatchQueue.concurrentPerform(iterations: nows.count) { i in
            // Every other run has a bad lock timeout in its environment: a usage error for it alone.
            let env = i % 2 == 0 ? [:] : ["POSSYNC_LOCK_TIMEOUT": "x\(i)"]
            let r = try? CLI.run(["terminal", "status", "--dir", shops[i % 2], "--json"], now: nows[i], environment: env)
            results.lock.withLock { results.byIndex[i] = r }
        }
        for (i, now) in nows.enumerated() {
            let r = try #require(results.byIndex[i])
            if i % 2 == 0 {
                #expect(r.status == 0, "run \(i): \(r.stderr)")
                #expect(r.stdout.contains("\"now\" : \"\(now)\""), "run \(i) at \(now): \(r.stdout)")
                #expect(r.stderr.isEmpty, "run \(i): \(r.stderr)")
            } else {
                #expect(r.status == 2, "run \(i): \(r.stderr)")
                #expect(r.stdout.isEmpty)
                #expect(r.stderr == "possync: error: POSSYNC_LOCK_TIMEOUT \"x\(i)\": expected seconds, 0...3600, with at most 3 decimals (e.g. 10 or 0.5) (see 'possync terminal status --help')\n",
                        "run \(i): \(r.stderr)")
            }
        }
    }
}
