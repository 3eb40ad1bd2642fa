import Crypto
import Foundation
import PosTestSupport
import Testing
@testable import PosCentral
@testable import PosLedger
@testable import PosNotify
@testable import PosWire

let webhookSecret = Array("test-secret-0123456789abcdef".utf8)

/// What `X-PosSync-Signature` must be for `body` under `secret`, computed here independently of the sender.
func expectedSignature(_ body: [UInt8], secret: [UInt8]) -> String {
    "sha256=" + HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret)).map { String(format: "%02x", $0) }.joined()
}

/// Webhook delivery against a loopback receiver (PosTestSupport's LoopbackGateway): each test starts
/// its own on a free port, makes at most a handful of requests, and bounds every wait.
@Suite("webhook delivery to a loopback gateway", .serialized)
struct WebhookTests {
    /// A world whose terminal 2 opened one ticket with a contact, synced.
    func world() throws -> NotifyWorld { try NotifyWorld.withTickets().0 }

    /// Runs `passes` passes with a webhook sender to `url`, moving the clock on `stepMillis` after each; the reports.
    func passes(_ w: NotifyWorld, url: String, count: Int, stepMillis: Int64 = 3_600_000, settings: NotificationSettings = NotificationSettings(),
                webhook: WebhookSettings = WebhookSettings(), outcomes: OutcomeCounter? = nil) async throws -> [NotificationPass] {
        try await onThread {
            let n = try WebhookNotifier(url: url, secret: webhookSecret, settings: webhook)
            defer { n.close() }
            let d = try w.dispatcher(n, settings: settings, onOutcome: outcomes?.add)
            var reports: [NotificationPass] = []
            for _ in 0..<count {
                reports.append(try d.pass())
                w.clock.advance(by: stepMillis)
            }
            return reports
        }
    }

    @Test("the body is posted as JSON, signed with HMAC-SHA256 under the secret, with the id in a header; 2xx is delivered")
    func signedDelivery() async throws {
        let w = try world()
        let gateway = try LoopbackGateway([.answer(status: 200, body: "queued")])
        defer { gateway.stop() }
        let r = try await passes(w, url: gateway.url(), count: 1)[0]
        #expect(r.attempts.map(\.state) == ["delivered"])
        #expect(r.attempts.first?.detail == "HTTP 200: queued")
        #expect(gateway.requests.count == 1)
        let seen = try #require(gateway.requests.first)
        #expect(seen.method == "POST" && seen.path == "/hook")
        #expect(seen.header("X-PosSync-Signature") == expectedSignature(seen.body, secret: webhookSecret))
        #expect(seen.header("X-PosSync-Signature") != expectedSignature(seen.body, secret: Array("another-secret-0123456789".utf8)))
        #expect(seen.header("Content-Type") == "application/json")
        #expect(seen.header("X-PosSync-Attempt") == "1")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(seen.body)) as? [String: Any])
        #expect(seen.header("X-PosSync-Notification-Id") == json["id"] as? String)
        #expect(json["kind"] as? String == "ticket-created" && json["to"] as? String == customerPhone && json["channel"] as? String == "sms")
        #expect(json["format"] as? String == "possync-notification-v1" && json["central"] as? String == w.central.centralID.hex)
        let delivered = try DeliveryLog(directory: w.logDirectory).listing(limit: 5).delivered
        #expect(delivered.first?.notification.body == seen.body)
    }

    @Test("500 then 200: retried after the backoff with the same id and body, delivered once, never sent a third time")
    func errorThenSuccess() async throws {
        let w = try world()
        let gateway = try LoopbackGateway([.answer(status: 500, body: "try later"), .answer(status: 200, body: "ok")])
        defer { gateway.stop() }
        let outcomes = OutcomeCounter()
        let reports = try await passes(w, url: gateway.url(), count: 4, outcomes: outcomes)
        #expect(reports.map { $0.attempts.map(\.state) } == [["retrying"], ["delivered"], [], []])
        #expect(reports[0].attempts.first?.detail == "HTTP 500: try later")
        #expect(gateway.requests.count == 2)
        #expect(gateway.requests.map { $0.header("X-PosSync-Attempt") } == ["1", "2"])
        #expect(Set(gateway.requests.compactMap { $0.header("X-PosSync-Notification-Id") }).count == 1)
        #expect(gateway.requests[0].body == gateway.requests[1].body)
        #expect(outcomes.values == ["failed", "delivered"])
        let listing = try DeliveryLog(directory: w.logDirectory).listing(limit: 5)
        #expect(listing.deliveredCount == 1 && listing.pendingCount == 0 && listing.deadLetterCount == 0)
        #expect(listing.delivered.first?.attempts == 2)
    }

    @Test("a gateway answering 503 is retried after its Retry-After, up to the bound, then dead-lettered; never more requests")
    func serviceUnavailable() async throws {
        let w = try world()
        let gateway = try LoopbackGateway(then: .answer(status: 503, body: "busy", retryAfter: "20"))
        defer { gateway.stop() }
        var settings = NotificationSettings()
        settings.attemptsMax = 3
        settings.backoffBaseMillis = 1_000
        let outcomes = OutcomeCounter()
        let reports = try await passes(w, url: gateway.url(), count: 5, stepMillis: 20_000, settings: settings, outcomes: outcomes)
        #expect(reports.flatMap(\.attempts).map { "\($0.state)\($0.reason.map { "(\($0))" } ?? "")" } == ["retrying", "retrying", "dead-letter(retries-exhausted)"])
        // Retry-After (20 s) is longer than the backoff (1 s, 2 s): it decides the wait.
        let waits = reports.flatMap(\.attempts).compactMap(\.notBeforeMillis)
        #expect(waits.count == 2 && waits[1] - waits[0] == 20_000)
        #expect(gateway.requests.map { $0.header("X-PosSync-Attempt") } == ["1", "2", "3"])
        #expect(Set(gateway.requests.map { $0.header("X-PosSync-Notification-Id") ?? "" }).count == 1)
        #expect(outcomes.values == ["failed", "failed", "dead-letter"])
        let listing = try DeliveryLog(directory: w.logDirectory).listing(limit: 5)
        #expect(listing.deadLetter.first?.detail == "HTTP 503: busy")
    }

    @Test("the gateway reads the request and closes without answering: outcome unknown, dead-lettered, never sent again, not after a restart either")
    func answerLost() async throws {
        let w = try world()
        let gateway = try LoopbackGateway([.closeAfterReading])
        defer { gateway.stop() }
        let first = try await passes(w, url: gateway.url(), count: 1)[0]
        #expect(first.attempts.map(\.reason) == ["outcome-unknown"])
        #expect(first.attempts.first?.detail.hasSuffix("after the request was sent") == true)
        #expect(first.pending == 0)
        // Restart: central and the log are opened again from disk; the gateway now answers 200.
        try w.reopenCentral()
        let later = try await passes(w, url: gateway.url(), count: 2)
        #expect(later.allSatisfy { $0.attempts.isEmpty && $0.interrupted.isEmpty })
        #expect(gateway.requests.count == 1)
        let listing = try DeliveryLog(directory: w.logDirectory).listing(limit: 5)
        #expect(listing.deadLetter.map(\.reason) == [.outcomeUnknown] && listing.deliveredCount == 0)
    }

    @Test("a gateway that does not answer in time after the request was sent: outcome unknown, dead-lettered, never sent again")
    func noAnswer() async throws {
        let w = try world()
        let gateway = try LoopbackGateway(then: .hold)
        defer { gateway.stop() }
        var quick = WebhookSettings()
        quick.connectTimeoutMillis = 500
        quick.requestTimeoutMillis = 800
        let started = ContinuousClock.now
        let reports = try await passes(w, url: gateway.url(), count: 2, webhook: quick)
        #expect(ContinuousClock.now - started < .seconds(10), "the request timeout bounds the attempt")
        #expect(reports[0].attempts.map(\.reason) == ["outcome-unknown"])
        #expect(reports[0].attempts.first?.detail.hasSuffix("after the request was sent") == true)
        #expect(reports[1].attempts.isEmpty)
        #expect(gateway.requests.count == 1)
    }

    @Test("connection refused (nothing was sent) is a definite failure: retried later")
    func connectionRefused() async throws {
        let w = try world()
        // Bound and closed again: nothing listens on the port.
        let closed = try LoopbackGateway()
        closed.stop()
        var quick = WebhookSettings()
        quick.connectTimeoutMillis = 1_000
        quick.requestTimeoutMillis = 2_000
        let r = try await passes(w, url: closed.url(), count: 1, webhook: quick)[0]
        #expect(r.attempts.map(\.state) == ["retrying"])
        #expect(r.attempts.first?.detail.hasSuffix("before the request was sent") == true)
        #expect(r.pending == 1)
    }

    @Test("4xx from the gateway is permanent: dead-lettered at once")
    func permanentRefusal() async throws {
        let w = try world()
        let gateway = try LoopbackGateway(then: .answer(status: 422, body: "bad number"))
        defer { gateway.stop() }
        let reports = try await passes(w, url: gateway.url(), count: 2)
        #expect(reports[0].attempts.map(\.reason) == ["permanent"])
        #expect(reports[0].attempts.first?.detail == "HTTP 422: bad number")
        #expect(reports[1].attempts.isEmpty)
        #expect(gateway.requests.count == 1)
    }

    @Test("bad configuration is refused naming what and where")
    func badConfiguration() throws {
        let tmp = TempDir("secret")
        #expect(throws: SyncError.self) { try WebhookNotifier(url: "ftp://example.com/x", secret: webhookSecret) }
        #expect(throws: SyncError.self) { try WebhookNotifier(url: "http://127.0.0.1/x", secret: Array("short".utf8)) }
        let short = tmp.path + "/short.secret"
        try "short\n".write(toFile: short, atomically: true, encoding: .utf8)
        do {
            _ = try WebhookNotifier.readSecret(file: short)
            Issue.record("a 5-byte secret was taken")
        } catch {
            #expect(error.location == short && error.message.contains("5 bytes"))
        }
        let good = tmp.path + "/good.secret"
        try (String(decoding: webhookSecret, as: UTF8.self) + "\n").write(toFile: good, atomically: true, encoding: .utf8)
        #expect(try WebhookNotifier.readSecret(file: good) == webhookSecret)
        #expect(throws: SyncError.self) { try WebhookNotifier.readSecret(file: tmp.path + "/missing") }
    }
}

@Suite("the delivery service")
struct ServiceTests {
    @Test("a pass runs when central appends a ticket event (not only on the timer), the observer before it is kept, and cancellation stops it")
    func wakesOnAppend() async throws {
        let w = try NotifyWorld()
        let sale = try w.confirmedSale(0, 12_000)
        let out = w.dir.path + "/out.jsonl"
        let service = NotificationService(dispatcher: try w.dispatcher(try FileNotifier(path: out)), intervalMillis: 600_000)
        let earlier = OutcomeCounter()
        w.central.appendObserver = { events, _ in earlier.add("\(events.count)") }
        service.observeAppends()
        let task = Task { try await service.run() }
        func lines() -> Int { ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").count }
        func waitFor(_ n: Int) async throws {
            let deadline = ContinuousClock.now + .seconds(20)
            while lines() < n, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        }
        let t = try w.ticket(1, sale: sale, saleMinor: 12_000, 5_000, contact: sms())
        try w.sync(1)
        try await waitFor(1)
        #expect(lines() == 1)
        try w.record(.refundApproved(t, .originalPayment))
        try await waitFor(2)
        #expect(lines() == 2)
        task.cancel()
        try await task.value
        #expect(!earlier.values.isEmpty, "the observer installed before the service's was dropped")
        try w.record(.refundCompleted(t))
        try await Task.sleep(for: .milliseconds(200))
        #expect(lines() == 2, "a stopped service delivered")
    }
}
