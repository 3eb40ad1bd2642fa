// Validated free-text values: non-empty, valid UTF-8 (Swift strings always
// are), and bounded in bytes. Each kind of text has its own type so a note
// cannot be passed where an account reference is expected.

func validatedText(_ text: String, maxBytes: Int, field: String) throws(LedgerError) -> String {
    let count = text.utf8.count
    guard count >= 1 else {
        throw LedgerError(.invalidText, "\(field) must not be empty", field: field)
    }
    guard count <= maxBytes else {
        throw LedgerError(.invalidText, "\(field) is \(count) bytes, max \(maxBytes)", field: field)
    }
    return text
}

/// Free text of a note on a ticket: 1...Limits.noteBytesMax bytes.
public struct NoteText: Hashable, Sendable, CustomStringConvertible {
    public let text: String
    public init(_ text: String) throws(LedgerError) {
        self.text = try validatedText(text, maxBytes: Limits.noteBytesMax, field: "note")
    }
    public var description: String { text }
}

/// The text required with reason "other": 1...Limits.reasonTextBytesMax bytes.
public struct ReasonText: Hashable, Sendable, CustomStringConvertible {
    public let text: String
    public init(_ text: String) throws(LedgerError) {
        self.text = try validatedText(text, maxBytes: Limits.reasonTextBytesMax, field: "reasonText")
    }
    public var description: String { text }
}

/// A designated account for a refund: 1...Limits.accountBytesMax bytes.
public struct AccountReference: Hashable, Sendable, CustomStringConvertible {
    public let text: String
    public init(_ text: String) throws(LedgerError) {
        self.text = try validatedText(text, maxBytes: Limits.accountBytesMax, field: "account")
    }
    public var description: String { text }
}

/// Where to notify the customer about their ticket.
public struct CustomerContact: Hashable, Sendable, CustomStringConvertible {
    public enum Channel: UInt8, Hashable, Sendable, CaseIterable {
        /// `address` is a phone number: '+' then 6...15 digits.
        case sms = 1
        /// `address` is the wallet app's user handle.
        case app = 2
    }

    public let channel: Channel
    public let address: String

    public init(channel: Channel, address: String) throws(LedgerError) {
        let text = try validatedText(address, maxBytes: Limits.contactBytesMax, field: "contact")
        if channel == .sms {
            let bytes = Array(text.utf8)
            guard bytes.first == 43, (7...16).contains(bytes.count),
                  bytes.dropFirst().allSatisfy({ $0 >= 48 && $0 <= 57 })
            else {
                throw LedgerError(.invalidText, "sms contact must be '+' and 6-15 digits", field: "contact")
            }
        }
        self.channel = channel
        self.address = text
    }

    public var description: String { "\(channel):\(address)" }
}
