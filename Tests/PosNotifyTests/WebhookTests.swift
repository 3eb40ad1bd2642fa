import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import PosTestSupport
import Testing
@testable import PosCentral
@testable import PosLedger
@testable import PosNotify
@testable import PosWire

/// A gateway on loopback: records every request and answers as told.
final class Gateway: @unchecked Sendable {
    struct Seen {
        var headers: [String: String]
        var body: [UInt8]
    }
    private let lock = NSLock()
    private var seen: [Seen] = []
    private var statusValue: HTTPResponse.Status = .ok
    private var retryAfter: String?
    /// How long the gateway takes to answer, in milliseconds.
    let delayMillis: Int

    init(status: HTTPResponse.Status = .ok, retryAfter: String? = nil, delayMillis: Int = 0) {
        statusValue = status
        self.retryAfter = retryAfter
        self.delayMillis = delayMillis
    }

    var requests: [Seen] { lock.withLock { seen } }
    var status: HTTPResponse.Status {
        get { lock.withLock { statusValue } }
        set { lock.withLock { statusValue = newValue } }
    }

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.post("/hook") { [self] request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 16)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            lock.withLock { seen.append(Seen(headers: headers, body: Array(body.readableBytesView))) }
            if delayMillis > 0 { try await Task.sleep(for: .milliseconds(delayMillis)) }
            var fields = HTTPFields()
            if let retryAfter { fields[.retryAfter] = retryAfter }
            return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: "gateway says \(status.code)")))
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }
}

let webhookSecret = Array("test-secret-0123456789abcdef".utf8)

@Suite("webhook delivery to a loopback gateway", .serialized)
struct WebhookTests {
    /// A world whose terminal 2 opened one ticket with a contact, synced.
    func world() throws -> NotifyWorld {
        let w = try NotifyWorld()
        let sale = try w.confirmedSale(0, 12_000)
        _ = try w.ticket(1, sale: sale, saleMinor: 12_000, 5_000, contact: sms())
        try w.sync(1)
        return w
    }

    @Test("the body is posted as JSON, signed with HMAC-SHA256 under the secret, with the id in a header; 2xx is delivered")
    func signedDelivery() async throws {
        let w = try world()
        let gateway = Gateway()
        try await gateway.application().test(.live) { client in
            let url = "http://127.0.0.1:\(client.port!)/hook"
            let r = try await onThread {
                let n = try WebhookNotifier(url: url, secret: webhookSecret)
                defer { n.close() }
                return try w.dispatcher(n).pass()
            }
            #expect(r.attempts.map(\.state) == ["delivered"])
            #expect(r.attempts.first?.detail == "HTTP 200: gateway says 200")
        }
        let seen = try #require(gateway.requests.first)
        #expect(gateway.requests.count == 1)
        let mac = HMAC<SHA256>.authenticationCode(for: seen.body, using: SymmetricKey(data: webhookSecret))
        #expect(seen.headers["X-PosSync-Signature"] == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
        let other = HMAC<SHA256>.authenticationCode(for: seen.body, using: SymmetricKey(data: Array("another-secret-0123456789".utf8)))
        #expect(seen.headers["X-PosSync-Signature"] != "sha256=" + other.map { String(format: "%02x", $0) }.joined())
        #expect(seen.headers["Content-Type"] == "application/json")
        #expect(seen.headers["X-PosSync-Attempt"] == "1")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(seen.body)) as? [String: Any])
        #expect(seen.headers["X-PosSync-Notification-Id"] == json["id"] as? String)
        #expect(json["kind"] as? String == "ticket-created" && json["to"] as? String == customerPhone && json["channel"] as? String == "sms")
        let delivered = try DeliveryLog(directory: w.logDirectory).listing(limit: 5).delivered
        #expect(delivered.first?.notification.body == seen.body)
    }

    @Test("a gateway answering 503 is retried after its Retry-After, up to the bound, then dead-lettered; never more requests")
    func serviceUnavailable() async throws {
        let w = try world()
        let gateway = Gateway(status: .serviceUnavailable, retryAfter: "20")
        var settings = NotificationSettings()
        settings.attemptsMax = 3
        settings.backoffBaseMillis = 1_000
        let outcomes = OutcomeCounter()
        try await gateway.application().test(.live) { client in
            let url = "http://127.0.0.1:\(client.port!)/hook"
            let states = try await onThread { () -> [String] in
                let n = try WebhookNotifier(url: url, secret: webhookSecret)
                defer { n.close() }
                let d = try w.dispatcher(n, settings: settings, onOutcome: outcomes.add)
                var states: [String] = []
                for _ in 0..<5 {
                    let r = try d.pass()
                    states += r.attempts.map { "\($0.state)\($0.reason.map { "(\($0))" } ?? "")" }
                    if let next = r.attempts.first?.notBeforeMillis { #expect(next == w.clock.millis + 20_000, "Retry-After: 20 s") }
                    w.clock.advance(by: 20_000)
                }
                return states
            }
            #expect(states == ["retrying", "retrying", "dead-letter(retries-exhausted)"])
        }
        #expect(gateway.requests.map { $0.headers["X-PosSync-Attempt"] } == ["1", "2", "3"])
        #expect(Set(gateway.requests.map { $0.headers["X-PosSync-Notification-Id"] ?? "" }).count == 1)
        #expect(Set(gateway.requests.map(\.body)).count == 1)
        #expect(outcomes.values == ["failed", "failed", "dead-letter"])
        let listing = try DeliveryLog(directory: w.logDirectory).listing(limit: 5)
        #expect(listing.deadLetter.first?.detail == "HTTP 503: gateway says 503")
    }

    @Test("a gateway that does not answer in time after the request was sent: outcome unknown, dead-lettered, never sent again")
    func noAnswer() async throws {
        let w = try world()
        let gateway = Gateway(delayMillis: 3_000)
        var quick = WebhookSettings()
        quick.connectTimeoutMillis = 500
        quick.requestTimeoutMillis = 800
        try await gateway.application().test(.live) { client in
            let url = "http://127.0.0.1:\(client.port!)/hook"
            let (first, second) = try await onThread {
                let n = try WebhookNotifier(url: url, secret: webhookSecret, settings: quick)
                defer { n.close() }
                let d = try w.dispatcher(n)
                let first = try d.pass()
                w.clock.advance(by: 3_600_000)
                return (first, try d.pass())
            }
            #expect(first.attempts.map(\.reason) == ["outcome-unknown"])
            #expect(first.attempts.first?.detail.hasSuffix("after the request was sent") == true)
            #expect(second.attempts.isEmpty)
        }
        #expect(gateway.requests.count == 1)
    }

    @Test("connection refused (nothing was sent) is a definite failure: retried later")
    func connectionRefused() async throws {
        let w = try world()
        // Bound and closed again: nothing listens on the port.
        let port = try await Gateway().application().test(.live) { client in client.port! }
        let r = try await onThread {
            let n = try WebhookNotifier(url: "http://127.0.0.1:\(port)/hook", secret: webhookSecret)
            defer { n.close() }
            return try w.dispatcher(n).pass()
        }
        #expect(r.attempts.map(\.state) == ["retrying"])
        #expect(r.attempts.first?.detail.hasSuffix("before the request was sent") == true)
        #expect(r.pending == 1)
    }

    @Test("4xx from the gateway is permanent: dead-lettered at once")
    func permanentRefusal() async throws {
        let w = try world()
        let gateway = Gateway(status: .unprocessableContent)
        try await gateway.application().test(.live) { client in
            let url = "http://127.0.0.1:\(client.port!)/hook"
            let r = try await onThread {
                let n = try WebhookNotifier(url: url, secret: webhookSecret)
                defer { n.close() }
                let d = try w.dispatcher(n)
                let r = try d.pass()
                w.clock.advance(by: 3_600_000)
                _ = try d.pass()
                return r
            }
            #expect(r.attempts.map(\.reason) == ["permanent"])
        }
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
