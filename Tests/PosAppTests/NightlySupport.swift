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
    /// Tickets by role: the refund completed on the night, one left approved.
    var completedTicket = ""
    var approvedTicket = ""

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

    /// The usual day: sales at every shop (one declined code, one sale old
    /// enough to expire), a return approved and completed, one approved only.
    /// Shops 1 and 2 sync; shop 3's sales are in a bundle in the inbox.
    func trade() throws {
        try scan(1, "120.00", code: "134567890123456787", at: "2026-03-02T09:00:00Z")
        let second = try scan(1, "203.00", code: "134567890123456781", at: "2026-03-03T10:00:00Z")
        try scan(1, "50.00", code: "134567890123456790", at: "2026-03-03T11:00:00Z")  // ends in 0: declined
        try scan(2, "63.50", code: "134567890123456782", at: "2026-03-03T09:30:00Z")
        try scan(3, "74.00", code: "134567890123456783", at: "2026-02-28T12:00:00Z")  // forwarded > 72 h later: expired
        try scan(3, "99.00", code: "134567890123456784", at: "2026-03-03T12:00:00Z")
        try sync(1, at: "2026-03-03T18:00:00Z")
        try sync(2, at: "2026-03-03T18:05:00Z")
        completedTicket = try CLI.json(["terminal", "refund", "--dir", shop(2), "--return-code", second, "--reason", "quality",
                                        "--resolution", "refund", "--amount", "50.00"], now: "2026-03-03T18:10:00Z")["ticket"] as! String
        approvedTicket = try CLI.json(["terminal", "refund", "--dir", shop(2), "--return-code", second, "--reason", "wrong-size",
                                       "--resolution", "refund", "--amount", "20.00"], now: "2026-03-03T18:11:00Z")["ticket"] as! String
        _ = try CLI.json(["terminal", "approve", "--dir", shop(2), "--ticket", completedTicket], now: "2026-03-03T18:12:00Z")
        try sync(2, at: "2026-03-03T18:15:00Z")
        try export(3, as: "shop3.bundle")
    }

    /// What the night's central does before the nightly job on its own: import,
    /// forward at 21:00, complete the approved refund at 21:30.
    func settleByHand() throws {
        let imported = try CLI.run(["central", "import", "--dir", central, inbox + "/shop3.bundle"], now: Self.evening)
        #expect(imported.status == 0, "\(imported.stderr)")
        _ = try CLI.json(["central", "forward", "--dir", central], now: Self.evening)
        _ = try CLI.json(["central", "complete", "--dir", central, "--ticket", completedTicket], now: "2026-03-03T21:30:00Z")
    }

    /// Writes the simulated statement for the night; returns its path.
    func statement(_ name: String = "statement.csv", inject: [String] = []) throws -> String {
        let path = tmp.path + "/" + name
        _ = try CLI.json(["central", "statement", "--dir", central, "--date", Self.date, "--out", path] + inject.flatMap { ["--inject", $0] })
        return path
    }

    func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }
}
