import Foundation
import PosCLI
import PosTestSupport
import Testing

/// `central serve`, `terminal sync --server [--watch]`, `terminal recover --server`, `central revoke`:
/// real processes for the server and the daemon (they are stopped by signals), the terminal's one-off
/// commands in-process.
@Suite("server on the command line", .serialized)
struct ServerCLITests {
    static let now = "2026-03-02T08:00:00Z"

    @Test("serve, sync two shops over HTTP, stop on SIGTERM with exit 0; every request logged one line")
    func serveAndSync() throws {
        let tmp = TempDir("serve")
        let (central, shops) = try setUpShops(tmp, count: 2)
        let scan = try CLI.run(["terminal", "scan", "--dir", shops[0], "--amount", "12.50", "--payment-code", "134567890123456787"], now: Self.now)
        #expect(scan.status == 0, "\(scan.stderr)")
        // The server's clock starts at --now and runs on: the terminals' clocks agree with it.
        let server = try Background.start(["central", "serve", "--dir", central, "--port", "0", "--now", Self.now], in: tmp, name: "serve")
        defer { server.kill() }
        let url = try server.url()
        let r1 = try CLI.run(["terminal", "sync", "--dir", shops[0], "--server", url, "--json"], now: Self.now)
        #expect(r1.status == 0, "\(r1.stderr)")
        let j1 = try #require(try JSONSerialization.jsonObject(with: Data(r1.stdout.utf8)) as? [String: Any])
        #expect(j1["pushed"] as? Int == 1 && j1["clockSkewed"] as? Bool == false && j1["complete"] as? Bool == true, "\(j1)")
        #expect(r1.stderr.contains("requests (0 retried)"), "\(r1.stderr)")
        let r2 = try CLI.run(["terminal", "sync", "--dir", shops[1], "--server", url], now: Self.now)
        #expect(r2.status == 0 && r2.stdout.contains("pulled 1 events"), "\(r2.stdout) \(r2.stderr)")
        let shown = try CLI.run(["terminal", "show", "--dir", shops[1]], now: Self.now)
        #expect(shown.stdout.contains("sale 1:1"), "\(shown.stdout)")
        // While it serves, the store is the server's: another command is refused as busy, naming it.
        let busy = try CLI.run(["central", "show", "--dir", central, "--lock-timeout", "0.2"], now: Self.now)
        #expect(busy.status == 4, "\(busy.status) \(busy.stderr)")
        let status = try server.terminate()
        #expect(status == 0)
        let log = server.stderr()
        #expect(log.contains("stopped"), "\(log)")
        #expect(log.contains("message=push") && log.contains("terminal=1") && log.contains("seq=1...1") && log.contains("status=200"), "\(log)")
        #expect(try CLI.run(["central", "show", "--dir", central], now: Self.now).stdout.contains("sale 1:1"))
    }

    @Test("--watch: the server goes down and comes back; the daemon backs off, then catches up; SIGTERM stops it with exit 0")
    func watchDownAndUp() throws {
        let tmp = TempDir("watch")
        let (central, shops) = try setUpShops(tmp, count: 2)
        // Central on the test's clock: on the machine's, the sale (dated Self.now) would be months old to the
        // watching terminal, whose clock follows central's, and outside its relay scope (7 days + 72 h).
        var server = try Background.start(["central", "serve", "--dir", central, "--port", "0", "--now", Self.now], in: tmp, name: "serve1")
        let url = try server.url()
        let port = String(url.split(separator: ":").last!)
        let watch = try Background.start(["terminal", "sync", "--dir", shops[1], "--server", url, "--watch", "--interval", "1s", "--connect-timeout", "1"],
                                         in: tmp, name: "watch", environment: ["POSSYNC_NOW": Self.now])
        defer { watch.kill(); server.kill() }
        try watch.waitForStderr("synced:", seconds: 20)
        #expect(try server.terminate() == 0)
        // While central is away, shop 1 sells (offline) and the daemon keeps trying.
        #expect(try CLI.run(["terminal", "scan", "--dir", shops[0], "--amount", "7.00", "--payment-code", "134567890123456795"], now: Self.now).status == 0)
        try watch.waitForStderr("unreachable", seconds: 20)
        server = try Background.start(["central", "serve", "--dir", central, "--port", port, "--now", Self.now], in: tmp, name: "serve2")
        _ = try server.url()
        let push = try CLI.run(["terminal", "sync", "--dir", shops[0], "--server", url], now: Self.now)
        #expect(push.status == 0, "\(push.stderr)")
        try watch.waitForStderr("pulled 1", seconds: 20)
        let shown = try CLI.run(["terminal", "show", "--dir", shops[1]], now: Self.now)
        #expect(shown.stdout.contains("sale 1:1") && shown.stdout.contains("7.00 CNY"), "\(shown.stdout)")
        #expect(try watch.terminate() == 0)
        #expect(watch.stderr().contains("stopped"), "\(watch.stderr())")
    }

    @Test("central revoke works beside a running server (no lock wait): the terminal's next request is refused (exit 1, revoked); its bundle imports only with --allow-revoked")
    func revoked() throws {
        let tmp = TempDir("revoke")
        let (central, shops) = try setUpShops(tmp, count: 1)
        let server = try Background.start(["central", "serve", "--dir", central, "--port", "0"], in: tmp, name: "serve")
        defer { server.kill() }
        #expect(try CLI.run(["terminal", "scan", "--dir", shops[0], "--amount", "5.00", "--payment-code", "134567890123456787"], now: Self.now).status == 0)
        let first = try CLI.run(["terminal", "sync", "--dir", shops[0], "--server", try server.url()], now: Self.now)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try CLI.run(["terminal", "scan", "--dir", shops[0], "--amount", "6.00", "--payment-code", "134567890123456795"], now: Self.now).status == 0)
        let revoke = try CLI.run(["central", "revoke", "--dir", central, "--terminal", "1", "--note", "stolen", "--lock-timeout", "0"], now: Self.now)
        #expect(revoke.status == 0 && revoke.stdout.contains("terminal 1 (merchant acme) revoked: revoked 2026-03-02T08:00:00Z: stolen"), "\(revoke.stdout) \(revoke.stderr)")
        let again = try CLI.run(["central", "revoke", "--dir", central, "--terminal", "1", "--lock-timeout", "0"], now: Self.now)
        #expect(again.status == 0 && again.stdout.contains("was already revoked: revoked 2026-03-02T08:00:00Z: stolen"), "\(again.stdout)")
        let unknown = try CLI.run(["central", "revoke", "--dir", central, "--terminal", "9"], now: Self.now)
        #expect(unknown.status == 1 && unknown.stderr.contains("never enrolled"), "\(unknown.stderr)")
        let notCentral = try CLI.run(["central", "revoke", "--dir", shops[0], "--terminal", "1"], now: Self.now)
        #expect(notCentral.status == 3, "revoke on a terminal's directory: \(notCentral.status) \(notCentral.stderr)")
        let sync = try CLI.run(["terminal", "sync", "--dir", shops[0], "--server", try server.url()], now: Self.now)
        #expect(sync.status == 1 && sync.stderr.contains("revoked"), "\(sync.status) \(sync.stderr)")
        #expect(try server.terminate() == 0)
        let local = try CLI.run(["terminal", "sync", "--dir", shops[0], "--central", central], now: Self.now)
        #expect(local.status == 1 && local.stderr.contains("revoked"), "\(local.status) \(local.stderr)")
        let bundle = tmp.path + "/shop1.bundle"
        #expect(try CLI.run(["terminal", "export", "--dir", shops[0], "--out", bundle], now: Self.now).status == 0)
        let refused = try CLI.run(["central", "import", "--dir", central, bundle], now: Self.now)
        #expect(refused.status == 1 && refused.stderr.contains("--allow-revoked"), "\(refused.stderr)")
        let taken = try CLI.run(["central", "import", "--dir", central, "--allow-revoked", bundle], now: Self.now)
        #expect(taken.status == 0 && taken.stdout.contains("1 new"), "\(taken.stdout) \(taken.stderr)")
    }

    @Test("terminal recover --server rebuilds a journal cut below what central acknowledged")
    func recoverOverHTTP() throws {
        let tmp = TempDir("recover")
        let (central, shops) = try setUpShops(tmp, count: 1)
        for code in ["134567890123456787", "134567890123456795"] {
            #expect(try CLI.run(["terminal", "scan", "--dir", shops[0], "--amount", "5.00", "--payment-code", code], now: Self.now).status == 0)
        }
        let server = try Background.start(["central", "serve", "--dir", central, "--port", "0"], in: tmp, name: "serve")
        defer { server.kill() }
        let url = try server.url()
        #expect(try CLI.run(["terminal", "sync", "--dir", shops[0], "--server", url], now: Self.now).status == 0)
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: shops[0] + "/outbound").first { $0.hasSuffix(".seg") })
        try Data().write(to: URL(fileURLWithPath: shops[0] + "/outbound/" + segment))
        let refused = try CLI.run(["terminal", "scan", "--dir", shops[0], "--amount", "1.00", "--payment-code", "134567890123456803"], now: Self.now)
        #expect(refused.status == 3, "\(refused.status) \(refused.stderr)")
        let recovered = try CLI.run(["terminal", "recover", "--dir", shops[0], "--server", url, "--json"], now: Self.now)
        #expect(recovered.status == 0, "\(recovered.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(recovered.stdout.utf8)) as? [String: Any])
        #expect(report["fromCentral"] as? String == "1...2" && report["outboundRebuilt"] as? Bool == true, "\(report)")
        #expect(try CLI.run(["terminal", "scan", "--dir", shops[0], "--amount", "1.00", "--payment-code", "134567890123456803"], now: Self.now).status == 0)
    }

    @Test("no server at the address: exit 5 (unreachable), in bounded time, the store untouched")
    func unreachable() throws {
        let tmp = TempDir("down")
        let (_, shops) = try setUpShops(tmp, count: 1)
        let before = treeHashes(shops[0])
        let started = Date()
        let r = try CLI.run(["terminal", "sync", "--dir", shops[0], "--server", "http://127.0.0.1:9", "--connect-timeout", "1", "--attempts", "2"], now: Self.now)
        #expect(r.status == 5, "\(r.status) \(r.stderr)")
        #expect(r.stderr.contains("http://127.0.0.1:9") && r.stderr.contains("no reply after 2 tries"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(started) < 20)
        var after = treeHashes(shops[0])
        after["LOCK"] = before["LOCK"]
        #expect(after == before)
    }

    @Test("usage: one of --central and --server; --watch, --interval and the HTTP options go with --server; bounds are named")
    func usage() throws {
        let tmp = TempDir("usage")
        let (central, shops) = try setUpShops(tmp, count: 1)
        let cases: [([String], String)] = [
            (["terminal", "sync", "--dir", shops[0]], "--central DIR or --server URL"),
            (["terminal", "sync", "--dir", shops[0], "--central", central, "--server", "http://x:1"], "give one"),
            (["terminal", "sync", "--dir", shops[0], "--central", central, "--watch"], "--watch needs --server"),
            (["terminal", "sync", "--dir", shops[0], "--server", "http://x:1", "--interval", "5m"], "--interval goes with --watch"),
            (["terminal", "sync", "--dir", shops[0], "--server", "http://x:1", "--watch", "--interval", "5"], "expected a duration"),
            (["terminal", "sync", "--dir", shops[0], "--server", "http://x:1", "--watch", "--interval", "2d"], "expected a duration"),
            (["terminal", "sync", "--dir", shops[0], "--server", "http://x:1", "--batch-bytes", "100"], "--batch-bytes 100: expected 1024...1048576"),
            (["terminal", "sync", "--dir", shops[0], "--central", central, "--batch-bytes", "4096"], "go with --server"),
            (["terminal", "sync", "--dir", shops[0], "--server", "http://x:1", "--connect-timeout", "0"], "--connect-timeout 0"),
            (["terminal", "sync", "--dir", shops[0], "--server", "http://x:1", "--attempts", "0"], "--attempts 0: expected 1...100"),
            (["central", "serve", "--dir", central, "--port", "70000"], "--port 70000"),
            (["central", "serve", "--dir", central, "--host", "a b"], "--host"),
        ]
        for (args, fragment) in cases {
            let r = try CLI.run(args, now: Self.now)
            #expect(r.status == 2 && r.stderr.contains(fragment), "\(args.joined(separator: " ")): \(r.status) \(r.stderr)")
        }
        let scheme = try CLI.run(["terminal", "sync", "--dir", shops[0], "--server", "ftp://x"], now: Self.now)
        #expect(scheme.status == 1 && scheme.stderr.contains("expected http://HOST:PORT"), "\(scheme.stderr)")
    }
}

/// A possync process left running (a server, a watch daemon), its output in files; stopped by a signal.
final class Background {
    let process = Process()
    let outPath: String
    let errPath: String

    static func start(_ args: [String], in tmp: TempDir, name: String, environment: [String: String] = [:]) throws -> Background {
        let b = Background(out: tmp.path + "/\(name).out", err: tmp.path + "/\(name).err")
        FileManager.default.createFile(atPath: b.outPath, contents: nil)
        FileManager.default.createFile(atPath: b.errPath, contents: nil)
        b.process.executableURL = URL(fileURLWithPath: CLI.binary)
        b.process.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["POSSYNC_NOW"] = nil
        b.process.environment = env.merging(environment) { _, new in new }
        b.process.standardOutput = FileHandle(forWritingAtPath: b.outPath)
        b.process.standardError = FileHandle(forWritingAtPath: b.errPath)
        try b.process.run()
        return b
    }

    private init(out: String, err: String) { outPath = out; errPath = err }

    func stdout() -> String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    func stderr() -> String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    /// The server's address, from its "listening on URL" line.
    func url(seconds: Double = 20) throws -> String {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if let line = stdout().split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }),
               let url = line.split(separator: " ").dropFirst(2).first { return String(url) }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw BackgroundError("no \"listening on\" line: stdout \(stdout()) stderr \(stderr())")
    }

    func waitForStderr(_ text: String, seconds: Double) throws {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if stderr().contains(text) { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw BackgroundError("no \"\(text)\" on standard error within \(seconds) s: \(stderr())")
    }

    /// SIGTERM, then its exit status (SIGKILL after 20 s).
    func terminate() throws -> Int32 {
        process.terminate()
        let deadline = Date(timeIntervalSinceNow: 20)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL); throw BackgroundError("did not stop on SIGTERM within 20 s: \(stderr())") }
        return process.terminationStatus
    }

    func kill() { if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
}

struct BackgroundError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
