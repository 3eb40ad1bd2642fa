import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import PosBytes
import PosLedger
import PosWire

/// How the webhook sender waits, each bound with its unit.
public struct WebhookSettings: Sendable {
    /// Giving up on opening the connection after this, in milliseconds (nothing was sent: a retryable failure).
    public var connectTimeoutMillis: Int64 = 5_000
    /// Giving up on the whole request (connect, send, reply) after this, in milliseconds.
    public var requestTimeoutMillis: Int64 = 15_000
    public init() {}
}

/// The headers of a webhook request (sync-protocol.md, "Notifications", "The webhook").
public enum WebhookHeader {
    /// The notification's id: a gateway that already took this id answers 2xx and sends nothing.
    public static let notificationID = "X-PosSync-Notification-Id"
    /// `sha256=` and the lowercase hex HMAC-SHA256 of the body, keyed by the configured secret.
    public static let signature = "X-PosSync-Signature"
    /// Which attempt this is, from 1 (a retry follows only a definite failure).
    public static let attempt = "X-PosSync-Attempt"
}

/// Posts each notification's JSON body to a URL, signed with HMAC-SHA256 under
/// a shared secret, with its id in a header so a gateway deduplicates. A real
/// SMS gateway plugs in behind it. One request per connection (`Connection:
/// close`), so a connection the gateway dropped while idle is never mistaken
/// for a request it may have taken.
public final class WebhookNotifier: Notifier, @unchecked Sendable {
    public let url: String
    public let settings: WebhookSettings
    private let key: SymmetricKey
    private let client: HTTPClient

    /// `url`: `http://` or `https://` with a host. `secret`: `NotificationLimits.secretBytesRange` bytes.
    public init(url: String, secret: [UInt8], settings: WebhookSettings = WebhookSettings()) throws(SyncError) {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = parsed.host, !host.isEmpty else {
            throw SyncError(.invalidArgument, "webhook URL \(PrintableText.escaped(String(url.prefix(200)), quoted: true)): expected http://HOST[:PORT]/PATH or https://…", location: "--webhook")
        }
        guard NotificationLimits.secretBytesRange.contains(secret.count) else {
            throw SyncError(.invalidArgument, "webhook secret of \(secret.count) bytes: \(NotificationLimits.secretBytesRange.lowerBound)...\(NotificationLimits.secretBytesRange.upperBound) bytes expected", location: "--secret-file")
        }
        precondition(settings.connectTimeoutMillis > 0 && settings.requestTimeoutMillis >= settings.connectTimeoutMillis)
        self.url = url
        self.settings = settings
        key = SymmetricKey(data: secret)
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .milliseconds(settings.connectTimeoutMillis),
                                                                    read: .milliseconds(settings.requestTimeoutMillis)))
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit { try? client.syncShutdown() }

    public var destination: String { "webhook \(url)" }

    public func close() { try? client.syncShutdown() }

    /// The secret in `path`: its bytes, without one trailing `\n` (or `\r\n`). Refused, naming
    /// the file: a file that does not read, or a secret outside `NotificationLimits.secretBytesRange`.
    public static func readSecret(file path: String) throws(SyncError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SyncError(.invalidArgument, "cannot read the webhook secret file", location: path)
        }
        var bytes = Array(data)
        if bytes.last == 0x0A { bytes.removeLast(); if bytes.last == 0x0D { bytes.removeLast() } }
        guard NotificationLimits.secretBytesRange.contains(bytes.count) else {
            throw SyncError(.invalidArgument, "the webhook secret is \(bytes.count) bytes; \(NotificationLimits.secretBytesRange.lowerBound)...\(NotificationLimits.secretBytesRange.upperBound) expected (e.g. `head -c 32 /dev/urandom | base64 > FILE`)", location: path)
        }
        return bytes
    }

    /// The `X-PosSync-Signature` value of `body` under `secret`: `sha256=` and 64 lowercase hex digits.
    public static func signature(body: [UInt8], secret: [UInt8]) -> String { signature(body: body, key: SymmetricKey(data: secret)) }

    static func signature(body: [UInt8], key: SymmetricKey) -> String {
        "sha256=" + Hex.encode(Array(HMAC<SHA256>.authenticationCode(for: body, using: key)))
    }

    public func deliver(_ notification: CustomerNotification, body: [UInt8], attempt: Int) -> DeliveryOutcome {
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: url, method: .POST, headers: HTTPHeaders([
                ("Content-Type", "application/json"),
                ("Connection", "close"),
                (WebhookHeader.notificationID, notification.id),
                (WebhookHeader.signature, Self.signature(body: body, key: key)),
                (WebhookHeader.attempt, "\(attempt)"),
            ]), body: .bytes(body))
        } catch {
            return .failedPermanent(detail: "webhook URL \(url): \(error)")
        }
        let delegate = ReplyCollector()
        let deadline = NIODeadline.now() + .milliseconds(settings.requestTimeoutMillis)
        let reply: ReplyCollector.Reply
        do {
            reply = try client.execute(request: request, delegate: delegate, deadline: deadline).wait()
        } catch {
            if let status = delegate.statusReceived, (200..<300).contains(status) {
                // The gateway said it took it; only the rest of its reply was lost.
                return .delivered(detail: "HTTP \(status) (the reply's body was cut: \(error))")
            }
            if delegate.requestHeadSent {
                return .outcomeUnknown(detail: "\(error) after the request was sent")
            }
            return .failedRetryable(detail: "\(error) before the request was sent", retryAfterMillis: nil)
        }
        let excerpt = reply.excerpt.isEmpty ? "" : ": " + PrintableText.escaped(String(decoding: reply.excerpt, as: UTF8.self), quoted: false)
        let detail = "HTTP \(reply.status)\(excerpt)"
        switch reply.status {
        case 200..<300:
            return .delivered(detail: detail)
        case 408, 429, 500..<600:
            // The gateway answered that it did not take it (408: it did not get the whole request).
            let after = reply.retryAfter.flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }.map { max(0, min($0, Int64(Int32.max))) * 1000 }
            return .failedRetryable(detail: detail, retryAfterMillis: after)
        default:
            return .failedPermanent(detail: detail)
        }
    }
}

/// Collects a webhook's reply (status, `Retry-After`, the start of the body) and notes
/// whether the request head was handed to the connection: until it was, nothing of
/// the request can have reached the gateway.
private final class ReplyCollector: HTTPClientResponseDelegate, @unchecked Sendable {
    struct Reply: Sendable {
        var status: Int
        var retryAfter: String?
        var excerpt: [UInt8]
    }

    private let lock = NSLock()
    private var headSent = false
    private var status = 0
    private var retryAfter: String?
    private var excerpt: [UInt8] = []

    var requestHeadSent: Bool { lock.withLock { headSent } }
    /// The reply's status, once its head arrived.
    var statusReceived: Int? { lock.withLock { status == 0 ? nil : status } }

    func didSendRequestHead(task: HTTPClient.Task<Reply>, _ head: HTTPRequestHead) {
        lock.withLock { headSent = true }
    }

    func didReceiveHead(task: HTTPClient.Task<Reply>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        lock.withLock {
            status = Int(head.status.code)
            retryAfter = head.headers.first(name: "Retry-After")
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Reply>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        lock.withLock {
            let room = NotificationLimits.replyExcerptBytesMax - excerpt.count
            if room > 0 { excerpt += buffer.readableBytesView.prefix(room) }
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Reply>) throws -> Reply {
        lock.withLock { Reply(status: status, retryAfter: retryAfter, excerpt: excerpt) }
    }
}
