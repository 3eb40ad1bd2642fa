import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PosTestSupport
import Testing

/// `central notify`, `central notifications` and `central serve --notify-…`: in-process for the
/// output, real processes where one is killed mid-delivery or serves while delivering.
@Suite("customer notifications on the command line", .serialized)
struct NotificationCLITests {
    static let phone = "+8613800138000"

    /// Central `hq` and two shops: a sale at shop 1, its return at shop 2 with a phone contact, approved
    /// there. With `synced`, shop 2 has pushed both to central (journal positions 2 and 3); else only the sale is there.
    func world(_ tmp: TempDir, synced: Bool = true) throws -> (central: String, shops: [String], ticket: String) {
        let (central, shops) = try setUpShops(tmp, count: 2)
        let sale = try CLI.json(["terminal", "scan", "--dir", shops[0], "--amount", "120.00", "--payment-code", "134567890123456787"], now: "2026-03-02T09:15:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", shops[0], "--central", central], now: "2026-03-02T20:00:00Z")
        _ = try CLI.json(["terminal", "sync", "--dir", shops[1], "--central", central], now: "2026-03-02T20:05:00Z")
        let ret = try CLI.json(["terminal", "refund", "--dir", shops[1], "--return-code", try #require(sale["returnCode"] as? String), "--reason", "wrong-size",
                                "--resolution", "refund", "--amount", "50.00", "--contact", Self.phone], now: "2026-03-03T10:30:00Z")
        let ticket = try #require(ret["ticket"] as? String)
        _ = try CLI.json(["terminal", "approve", "--dir", shops[1], "--ticket", ticket], now: "2026-03-03T10:35:00Z")
        if synced { _ = try CLI.json(["terminal", "sync", "--dir", shops[1], "--central", central], now: "2026-03-03T20:00:00Z") }
        return (central, shops, ticket)
    }

    @Test("central notify --file delivers each notification once, as one JSON line; central notifications lists them (text and JSON)")
    func fileDelivery() throws {
        let tmp = TempDir("notify-file")
        let (central, _, ticket) = try world(tmp)
        let out = tmp.path + "/sent.jsonl"
        let now = "2026-03-03T21:00:00Z"
        let id = try centralID(central)
        let before = try CLI.run(["central", "notifications", "--dir", central], now: now)
        #expect(before.status == 0 && before.stdout == """
            notifications of central \(id): journal derived through position 0 of 3 (run `possync central notify` to derive the rest)
            pending 0, delivered 0, dead-letter 0

            """, "\(before.stdout)")
        let first = try CLI.run(["central", "notify", "--dir", central, "--file", out], now: now)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout == """
            notify: file \(out); central's journal derived through position 3 of 3
            queued 2 new
            delivered   ticket-created \(ticket) -> sms:\(Self.phone) (attempt 1): appended to \(out)
            delivered   ticket-approved \(ticket) -> sms:\(Self.phone) (attempt 1): appended to \(out)
            pending: 0

            """, "\(first.stdout)")
        let again = try CLI.run(["central", "notify", "--dir", central, "--file", out], now: now)
        #expect(again.stdout.contains("queued 0 new") && !again.stdout.contains("delivered"), "\(again.stdout)")
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        let bodies = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(bodies.map { $0["kind"] as? String } == ["ticket-created", "ticket-approved"])
        #expect(bodies.allSatisfy { $0["ticket"] as? String == ticket && $0["to"] as? String == Self.phone })
        let listed = try CLI.run(["central", "notifications", "--dir", central], now: now)
        #expect(listed.stdout == """
            notifications of central \(id): journal derived through position 3 of 3
            pending 0, delivered 2, dead-letter 0
            delivered:
              ticket-created \(ticket) -> sms:\(Self.phone)  delivered, 1 attempt, 2026-03-03T21:00:00Z: appended to \(out)
              ticket-approved \(ticket) -> sms:\(Self.phone)  delivered, 1 attempt, 2026-03-03T21:00:00Z: appended to \(out)

            """, "\(listed.stdout)")
        let json = try CLI.json(["central", "notifications", "--dir", central, "--limit", "1"], now: now)
        #expect((json["counts"] as? [String: Int]) == ["pending": 0, "delivered": 2, "deadLetter": 0])
        let shown = try #require(json["delivered"] as? [[String: Any]])
        #expect(shown.map { $0["kind"] as? String } == ["ticket-approved"], "--limit 1 shows the latest")
        #expect(shown.first?["id"] as? String == bodies[1]["id"] as? String)
    }

    @Test("killed while the webhook request is in flight: the next run dead-letters it (outcome-unknown) and never sends it again")
    func killedMidSend() throws {
        let tmp = TempDir("notify-kill")
        let (central, _, ticket) = try world(tmp)
        let secret = tmp.path + "/webhook.secret"
        try "0123456789abcdef0123456789abcdef\n".write(toFile: secret, atomically: true, encoding: .utf8)
        // The first request is read and never answered; every later one is answered 200.
        let gateway = try LoopbackGateway([.hold], then: .answer(status: 200, body: "ok"))
        defer { gateway.stop() }
        let args = ["central", "notify", "--dir", central, "--webhook", gateway.url(), "--secret-file", secret]
        let first = try Background.start(args, in: tmp, name: "notify1", environment: ["POSSYNC_NOW": "2026-03-03T21:00:00Z"])
        defer { first.kill() }
        #expect(gateway.waitForRequests(1, seconds: 20), "no request reached the gateway: \(first.stderr())")
        first.kill()  // SIGKILL: the attempt is recorded, its outcome never will be
        let second = try CLI.spawn(args, now: "2026-03-03T21:05:00Z")
        #expect(second.status == 0, "\(second.stderr)")
        let firstID = try #require(gateway.requests.first?.header("X-PosSync-Notification-Id"))
        #expect(second.stdout.contains("dead-letter \(firstID): its last attempt has no recorded outcome (outcome-unknown): not sent again"), "\(second.stdout)")
        #expect(second.stdout.contains("delivered   ticket-approved \(ticket)"), "\(second.stdout)")
        let third = try CLI.spawn(args, now: "2026-03-03T23:00:00Z")
        #expect(third.status == 0 && !third.stdout.contains("delivered"), "\(third.stdout)")
        // Two notifications, two requests: the killed one was not sent again.
        #expect(gateway.requests.count == 2)
        #expect(Set(gateway.requests.compactMap { $0.header("X-PosSync-Notification-Id") }).count == 2)
        for r in gateway.requests {
            let mac = HMAC<SHA256>.authenticationCode(for: r.body, using: SymmetricKey(data: Array("0123456789abcdef0123456789abcdef".utf8)))
            #expect(r.header("X-PosSync-Signature") == "sha256=" + mac.map { String(format: "%02x", $0) }.joined(), "signed with the secret file's bytes, newline dropped")
        }
        let listed = try CLI.run(["central", "notifications", "--dir", central], now: "2026-03-03T23:00:00Z")
        #expect(listed.stdout.contains("pending 0, delivered 1, dead-letter 1"), "\(listed.stdout)")
        #expect(listed.stdout.contains("ticket-created \(ticket) -> sms:\(Self.phone)  dead-letter (outcome-unknown), 1 attempt"), "\(listed.stdout)")
    }

    @Test("central serve --notify-file delivers as tickets arrive over HTTP, counts it in /metrics, and stops on SIGTERM")
    func serveDelivers() throws {
        let tmp = TempDir("notify-serve")
        let (central, shops, ticket) = try world(tmp, synced: false)
        let out = tmp.path + "/served.jsonl"
        let server = try Background.start(["central", "serve", "--dir", central, "--port", "0", "--now", "2026-03-03T20:00:00Z", "--notify-file", out],
                                          in: tmp, name: "serve")
        defer { server.kill() }
        let url = try server.url()
        let sync = try CLI.run(["terminal", "sync", "--dir", shops[1], "--server", url], now: "2026-03-03T20:00:00Z")
        #expect(sync.status == 0, "\(sync.stderr)")
        let deadline = Date(timeIntervalSinceNow: 20)
        func lines() -> [Substring] { ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n") }
        while lines().count < 2, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(lines().count == 2, "the server did not deliver: \(server.stderr())")
        let metrics = String(decoding: try Data(contentsOf: try #require(URL(string: url + "/metrics"))), as: UTF8.self)
        #expect(metrics.contains(#"possync_notification_deliveries_total{outcome="delivered"} 2"#), "\(metrics)")
        #expect(metrics.contains(#"possync_notification_deliveries_total{outcome="dead-letter"} 0"#), "\(metrics)")
        #expect(try server.terminate() == 0)
        #expect(server.stderr().contains("notifications delivered to file \(out)") && server.stderr().contains("notification pass"), "\(server.stderr())")
        let listed = try CLI.run(["central", "notifications", "--dir", central], now: "2026-03-03T21:00:00Z")
        #expect(listed.stdout.contains("pending 0, delivered 2, dead-letter 0") && listed.stdout.contains("ticket-approved \(ticket)"), "\(listed.stdout)")
    }

    @Test("usage: one destination; the webhook needs its secret file; a bad secret or directory is refused naming it")
    func usage() throws {
        let tmp = TempDir("notify-usage")
        let central = tmp.path + "/hq"
        _ = try CLI.json(["central", "init", "--dir", central])
        let short = tmp.path + "/short.secret"
        try "short\n".write(toFile: short, atomically: true, encoding: .utf8)
        let cases: [([String], Int32, String)] = [
            (["central", "notify", "--dir", central], 2, "give --webhook URL --secret-file FILE, or --file FILE"),
            (["central", "notify", "--dir", central, "--webhook", "http://127.0.0.1:9/x", "--file", "x"], 2, "give --webhook or --file, not both"),
            (["central", "notify", "--dir", central, "--webhook", "http://127.0.0.1:9/x"], 2, "--webhook needs --secret-file FILE"),
            (["central", "notify", "--dir", central, "--file", "x", "--secret-file", short], 2, "--secret-file goes with --webhook"),
            (["central", "serve", "--dir", central, "--notify-secret-file", short], 2, "--notify-secret-file goes with --notify-webhook"),
            (["central", "notifications", "--dir", central, "--limit=-1"], 2, "--limit must be 0 or more"),
            (["central", "notify", "--dir", central, "--webhook", "http://127.0.0.1:9/x", "--secret-file", short], 1, "the webhook secret is 5 bytes"),
            (["central", "notify", "--dir", central, "--file", tmp.path + "/none/out.jsonl"], 1, "the notifications file's directory \(tmp.path)/none does not exist"),
        ]
        for (args, status, fragment) in cases {
            let r = try CLI.run(args, now: "2026-03-03T21:00:00Z")
            #expect(r.status == status && r.stderr.contains(fragment), "\(args.joined(separator: " ")): \(r.status) \(r.stderr)")
            if fragment.contains("secret is") { #expect(r.stderr.contains(short), "the secret file is named: \(r.stderr)") }
        }
    }

    func centralID(_ central: String) throws -> String {
        try #require(try CLI.json(["central", "status", "--dir", central])["central"] as? String)
    }
}
