import Crypto
import Foundation
import PosTestSupport
import Testing
@testable import PosNotify
@testable import PosWire

let notificationFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    + "/Fixtures/notifications"

/// Fixtures/notifications (its README): what sync-protocol.md's "Notifications" describes, as real files.
@Suite("notification fixtures")
struct FixtureTests {
    @Test("the fixture body's signature is HMAC-SHA256 under the secret file's bytes (newline dropped), as the spec's worked example says")
    func signature() throws {
        let body = Array(try Data(contentsOf: URL(fileURLWithPath: notificationFixtures + "/ticket-created.body")))
        let secret = try WebhookNotifier.readSecret(file: notificationFixtures + "/webhook.secret")
        #expect(secret == Array("demo-webhook-secret-0123456789".utf8))
        let header = try String(contentsOfFile: notificationFixtures + "/ticket-created.signature", encoding: .utf8)
        #expect(header == "sha256=3cc9a96c1da8c6c579d01898cbbb3df8c20b634650bde52d2b240048830cea60\n")
        #expect(WebhookNotifier.signature(body: body, secret: secret) + "\n" == header)
        let independent = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret)).map { String(format: "%02x", $0) }.joined()
        #expect("sha256=" + independent + "\n" == header)
        // One byte changed: another signature.
        var tampered = body
        tampered[tampered.count - 3] ^= 1
        #expect(WebhookNotifier.signature(body: tampered, secret: secret) + "\n" != header)
    }

    @Test("the fixture body reads strictly, validates, and encodes back to the same bytes (the one JSON form)")
    func body() throws {
        let body = Array(try Data(contentsOf: URL(fileURLWithPath: notificationFixtures + "/ticket-created.body")))
        let n = try NotifyJSON.decode(CustomerNotification.self, from: body[...], fields: CustomerNotification.fieldNames)
        try n.validate()
        #expect(n.body == body)
        #expect(n.id == "a4268eee58d3fe5dab85ca760ba31218-2-1" && n.kind == "ticket-created" && n.ticket == "2-1-6" && n.event == "2:1")
    }

    @Test("the fixture log opens: one delivered, one retrying after two attempts, positions 1...4 derived")
    func log() throws {
        let tmp = TempDir("notify-fixture")
        try FileManager.default.copyItem(atPath: notificationFixtures + "/log", toPath: tmp.path + "/notifications")
        let log = try DeliveryLog(directory: tmp.path + "/notifications")
        #expect(log.cursor.cursor == 4 && log.cursor.epoch == 0 && log.cursor.orphans.isEmpty)
        let records = log.records
        #expect(records.map(\.state) == [.delivered, .retrying])
        #expect(records.map(\.attempts) == [1, 2])
        #expect(records.map(\.position) == [2, 4])
        #expect(records[0].detail == "HTTP 202: accepted")
        #expect(records[1].notBeforeMillis == 1_772_568_180_000)
        let body = Array(try Data(contentsOf: URL(fileURLWithPath: notificationFixtures + "/ticket-created.body")))
        #expect(records[0].notification.body == body)
    }
}
