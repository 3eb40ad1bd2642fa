import Foundation
import PosLedger
import PosWire

/// One message to one customer about their return ticket: the JSON body a
/// sender delivers (sync-protocol.md, "Notifications", "The notification").
/// Derived from one event of central's journal, so its id — central's id and
/// the event's dot — is the same however often it is derived.
public struct CustomerNotification: Codable, Sendable, Equatable {
    public static let formatName = "possync-notification-v1"
    /// What a reader of the body checks first.
    public var format: String
    /// `<central id>-<replica>-<seq>`: central's id (32 hex digits) and the dot of the event it is about.
    public var id: String
    /// `ticket-created`, `ticket-approved`, `ticket-rejected` or `refund-completed`.
    public var kind: String
    /// `sms` (then `to` is `+` and 6-15 digits) or `app` (then `to` is the wallet app's handle).
    public var channel: String
    public var to: String
    /// The ticket number the customer quotes (`2-1-6`).
    public var ticket: String
    /// The dot of the event (`2:3`).
    public var event: String
    /// The event's time by its writer's clock (its HLC's physical part), Unix milliseconds.
    public var eventMillis: Int64
    /// Central's id, 32 hex digits.
    public var central: String
    /// The text to send, at most `NotificationLimits.messageBytesMax` bytes.
    public var message: String

    /// The kinds, in the order DOMAIN.md's flow meets them.
    public static let kinds = OutboxEntry.Kind.allKinds.map(\.rawValue)
    public static let channels = ["sms", "app"]

    public init(central: CentralID, event: Event, entry: OutboxEntry) {
        format = Self.formatName
        id = Self.id(central: central, event: event.dot)
        kind = entry.kind.rawValue
        channel = entry.contact.channel == .sms ? "sms" : "app"
        to = entry.contact.address
        ticket = entry.ticketNumber.text
        self.event = "\(event.dot)"
        eventMillis = Int64(clamping: event.hlc.millis)
        self.central = central.hex
        message = entry.message
    }

    /// The notification id of the event `dot` at central `central`.
    public static func id(central: CentralID, event dot: Dot) -> String { "\(central.hex)-\(dot.replica.rawValue)-\(dot.seq)" }

    /// The body exactly as sent and signed: UTF-8 JSON, keys sorted, no whitespace, `/` unescaped.
    public var body: [UInt8] { NotifyJSON.encode(self) }

    /// The body's fields, all required: a reader refuses others.
    static let fieldNames: Set<String> = ["format", "id", "kind", "channel", "to", "ticket", "event", "eventMillis", "central", "message"]

    /// Checks a notification read back (from the delivery log): every field in its form; the first wrong one named.
    func validate() throws(SyncError) {
        func bad(_ field: String, _ why: String) -> SyncError { SyncError(.malformed, "notification field \(field): \(why)") }
        guard format == Self.formatName else { throw bad("format", "\(PrintableText.escaped(String(format.prefix(40)), quoted: true)), expected \(Self.formatName)") }
        guard Self.isID(id) else { throw bad("id", "\(PrintableText.escaped(String(id.prefix(80)), quoted: true)) is not <32 hex digits>-<replica>-<seq>") }
        guard Self.kinds.contains(kind) else { throw bad("kind", "\(PrintableText.escaped(String(kind.prefix(40)), quoted: true)) is not one of \(Self.kinds.joined(separator: ", "))") }
        guard Self.channels.contains(channel) else { throw bad("channel", "\(PrintableText.escaped(String(channel.prefix(40)), quoted: true)) is not sms or app") }
        do { _ = try CustomerContact(channel: channel == "sms" ? .sms : .app, address: to) } catch { throw bad("to", error.message) }
        guard (try? TicketNumber(parsing: ticket)) != nil else { throw bad("ticket", "\(PrintableText.escaped(String(ticket.prefix(40)), quoted: true)) is not a ticket number") }
        guard message.utf8.count <= NotificationLimits.messageBytesMax else { throw bad("message", "\(message.utf8.count) bytes, at most \(NotificationLimits.messageBytesMax)") }
        guard eventMillis >= 0 else { throw bad("eventMillis", "\(eventMillis) is negative") }
        guard central.count == 2 * SyncLimits.centralIDBytes, id.hasPrefix(central + "-") else { throw bad("central", "does not match the id's central") }
    }

    static func isID(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 2 * SyncLimits.centralIDBytes, parts[0].allSatisfy({ $0.isHexDigit && !$0.isUppercase }),
              let replica = UInt32(parts[1]), replica <= Limits.terminalIdMax, String(replica) == parts[1],
              let seq = UInt64(parts[2]), seq > 0, String(seq) == parts[2] else { return false }
        return true
    }
}

extension OutboxEntry.Kind {
    static let allKinds: [OutboxEntry.Kind] = [.ticketCreated, .ticketApproved, .ticketRejected, .refundCompleted]
}

/// The bounds of notification delivery, each with its unit (sync-protocol.md, "Notifications").
public enum NotificationLimits {
    /// A notification's message, at most, in bytes (the longest the outbox writes is about 110).
    public static let messageBytesMax = 512
    /// One line of the delivery log, at most, in bytes: a longer one is refused as damaged.
    public static let logLineBytesMax = 4096
    /// A webhook secret, in bytes after its trailing newline is dropped.
    public static let secretBytesRange = 16...1024
    /// `state.json`, at most, in bytes (its `guard` list grows only when central's history is cut).
    public static let stateBytesMax = 16 << 20
    /// The start of a gateway's reply kept for the log (`detail`), in bytes.
    public static let replyExcerptBytesMax = 200
}
