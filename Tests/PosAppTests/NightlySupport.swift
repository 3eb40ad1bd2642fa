import Foundation
import PosLedger
import PosTestSupport
import PosWire
import Testing

/// A small chain for the nightly tests: central `hq`, terminals 1 and 2 of
/// merchant acme syncing online, terminal 3 of merchant bazaar trading offline
/// and sending its sales by courier bundle, over 2026-03-02 and 2026-03-03
/// (the night's date). Everything through the command line.
final class NightlyWorld {
    static let date = "2026-03-03"
    static let evening = "2026-03-03T21:00:00Z"
    let tmp = TempDir("nightly")
    var central: String { tmp.path + "/hq" }
    func shop(_ i: Int) -> String { tmp.path + "/shop\(i)" }
    var inbox: String { tmp.path + "/inbox" }
    var reports: String { tmp.path + "/reports" }
    /// Tickets by role: the two refunds completed in the evening; shop 1's and shop 2's refunds of sale 2:1.
    var completedTickets: [String] = []
    var shop1Refund = ""
    var shop2Refund = ""

    init() throws {
        _ = try CLI.json(["central", "init", "--dir", central])
        for (i, merchant) in [(1, "acme"), (2, "acme"), (3, "bazaar")] {
            _ = try CLI.json(["central", "enroll", "--dir", central, "--terminal", "\(i)", "--merchant", merchant, "--out", tmp.path + "/t\(i).json"])
            _ = try CLI.json(["terminal", "init", "--dir", shop(i), "--enrollment", tmp.path + "/t\(i).json", "--offline-hours", "168"],
                             now: "2026-02-28T08:00:00Z")
        }
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
    }

    /// A capture; returns its return code.
    @discardableResult
    func scan(_ i: Int, _ amount: String, code: String, at now: String) throws -> String {
        try CLI.json(["terminal", "scan", "--dir", shop(i), "--amount", amount, "--payment-code", code], now: now)["returnCodeDigits"] as! String
    }

    func sync(_ i: Int, at now: String) throws {
        _ = try CLI.json(["terminal", "sync", "--dir", shop(i), "--central", central], now: now)
    }

    /// Terminal `i`'s unsynced events as a bundle in the inbox, named `name`.
    @discardableResult
    func export(_ i: Int, as name: String) throws -> String {
        let path = inbox + "/" + name
        _ = try CLI.json(["terminal", "export", "--dir", shop(i), "--out", path])
        return path
    }

    /// The day: sales at every shop (one declined code, one sale old enough to
    /// expire at the acquirer); two returns at shop 2 of a shop 1 sale, approved;
    /// shops 1 and 2 both refund sale 2:1 in full, each before seeing the other's
    /// ticket (one ends held: over-refund). Shops 1 and 2 sync at 18:00; then shop 1
    /// refunds and sells offline, and couriers its bundle; shop 3 never syncs and
    /// couriers its bundle. Both bundles wait in the inbox.
    func trade() throws {
        try scan(1, "120.00", code: "134567890123456787", at: "2026-03-02T09:00:00Z")
        let second = try scan(1, "203.00", code: "134567890123456781", at: "2026-03-03T10:00:00Z")
        try scan(1, "50.00", code: "134567890123456790", at: "2026-03-03T11:00:00Z")  // ends in 0: declined
        let shop2Sale = try scan(2, "63.50", code: "134567890123456782", at: "2026-03-03T09:30:00Z")
        try scan(3, "74.00", code: "134567890123456783", at: "2026-02-28T12:00:00Z")  // forwarded > 72 h later: expired
        try scan(3, "99.00", code: "134567890123456784", at: "2026-03-03T12:00:00Z")
        try sync(2, at: "2026-03-03T17:55:00Z")
        try sync(1, at: "2026-03-03T18:00:00Z")
        try sync(2, at: "2026-03-03T18:05:00Z")
        for (amount, minute) in [("50.00", 10), ("20.00", 11)] {
            let t = try CLI.json(["terminal", "refund", "--dir", shop(2), "--return-code", second, "--reason", "quality",
                                  "--resolution", "refund", "--amount", amount], now: "2026-03-03T18:\(minute):00Z")["ticket"] as! String
            _ = try CLI.json(["terminal", "approve", "--dir", shop(2), "--ticket", t], now: "2026-03-03T18:12:00Z")
            completedTickets.append(t)
        }
        shop1Refund = try refund(1, shop2Sale, "63.50", at: "2026-03-03T18:20:00Z")
        shop2Refund = try refund(2, shop2Sale, "63.50", at: "2026-03-03T18:25:00Z")
        try sync(2, at: "2026-03-03T18:30:00Z")
        try scan(1, "15.00", code: "134567890123456785", at: "2026-03-03T18:35:00Z")
        try export(1, as: "shop1.bundle")
        try export(3, as: "shop3.bundle")
    }

    func refund(_ i: Int, _ returnCode: String, _ amount: String, at now: String) throws -> String {
        try CLI.json(["terminal", "refund", "--dir", shop(i), "--return-code", returnCode, "--reason", "changed-mind", "--resolution", "refund",
                      "--amount", amount], now: now)["ticket"] as! String
    }

    /// What central does during the evening, before the nightly job: forward at
    /// 21:00, complete the two approved refunds at 21:30; with `importing`, the
    /// inbox's bundles are imported by hand first.
    func settleByHand(importing: Bool = true) throws {
        if importing {
            let imported = try CLI.run(["central", "import", "--dir", central, inbox + "/shop1.bundle", inbox + "/shop3.bundle"], now: Self.evening)
            #expect(imported.status == 0, "\(imported.stderr)")
        }
        _ = try CLI.json(["central", "forward", "--dir", central], now: Self.evening)
        for t in completedTickets { _ = try CLI.json(["central", "complete", "--dir", central, "--ticket", t], now: "2026-03-03T21:30:00Z") }
    }

    /// Writes the simulated statement for the night; returns its path.
    func statement(_ name: String = "statement.csv", inject: [String] = []) throws -> String {
        let path = tmp.path + "/" + name
        _ = try CLI.json(["central", "statement", "--dir", central, "--date", Self.date, "--out", path] + inject.flatMap { ["--inject", $0] })
        return path
    }

    func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }
}

// MARK: - Bad bundles and the job

extension NightlyWorld {
    static let night = "2026-03-04T00:30:00Z"

    /// A copy of inbox bundle `source` as `name`, with `edit` applied to its bytes.
    @discardableResult
    func copy(_ source: String, as name: String, _ edit: (inout [UInt8]) -> Void = { _ in }) throws -> String {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: inbox + "/" + source)))
        edit(&bytes)
        let path = inbox + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Inbox bundle `source` rewritten for terminal `terminal` (checksum recomputed: a well-formed bundle of a terminal central never enrolled).
    func retarget(_ source: String, terminal: UInt32, as name: String) throws {
        let reader = try BundleReader(path: inbox + "/" + source)
        defer { reader.close() }
        var header = reader.header
        header.terminal = try ReplicaId.terminal(terminal)
        let w = try BundleWriter(path: inbox + "/" + name, header: header)
        while let f = try reader.nextFrame() { try w.write(f.bytes) }
        try w.finish()
    }

    /// A bundle exported by a terminal of another central store, into the inbox as `name`.
    func foreignBundle(as name: String) throws {
        let other = tmp.path + "/other-hq"
        _ = try CLI.json(["central", "init", "--dir", other])
        _ = try CLI.json(["central", "enroll", "--dir", other, "--terminal", "1", "--merchant", "acme", "--out", tmp.path + "/other-t1.json"])
        _ = try CLI.json(["terminal", "init", "--dir", tmp.path + "/other-shop", "--enrollment", tmp.path + "/other-t1.json"], now: "2026-03-03T08:00:00Z")
        _ = try CLI.json(["terminal", "scan", "--dir", tmp.path + "/other-shop", "--amount", "9.00", "--payment-code", "134567890123456786"],
                         now: "2026-03-03T09:00:00Z")
        _ = try CLI.json(["terminal", "export", "--dir", tmp.path + "/other-shop", "--out", inbox + "/" + name])
    }

    /// The night's bad bundles beside the two good ones: the same bytes twice, a flipped byte, a cut file,
    /// an unknown terminal, another central.
    func badBundles() throws {
        try copy("shop3.bundle", as: "shop3.resent.bundle")
        try copy("shop1.bundle", as: "shop1-corrupted.bundle") { $0[$0.count / 2] ^= 0x40 }
        try copy("shop3.bundle", as: "shop3-truncated.bundle") { $0.removeLast(60) }
        try retarget("shop3.bundle", terminal: 9, as: "shop9.bundle")
        try foreignBundle(as: "elsewhere.bundle")
    }

    /// `possync nightly` for the night with `extra` options.
    func nightly(_ extra: [String] = [], now: String = NightlyWorld.night, spawn: Bool = false) throws -> CLI.Result {
        let args = ["nightly", "--central", central, "--inbox", inbox, "--report", reports, "--date", Self.date] + extra
        return spawn ? try CLI.spawn(args, now: now) : try CLI.run(args, now: now)
    }

    /// The report's JSON object.
    func report() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: reports + "/report.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Names in a directory, sorted (none when it is missing).
    func names(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }
}
