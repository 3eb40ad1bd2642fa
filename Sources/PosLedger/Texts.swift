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

// MARK: - Printing free text

/// Free text (a note, a reason's text, a contact, an account, a merchant id, a
/// path, anything typed by a user or read from the wire) made safe to print in
/// one line of text output: it can never start a new line, move the cursor,
/// recolour the terminal or reorder what follows it. JSON output does not use
/// it (JSONEncoder escapes for JSON, and a JSON reader gets the exact text).
public enum PrintableText {
    /// The text with every character that is not safe on a terminal line escaped:
    /// C0 controls (`\n`, `\r`, `\t` by name, the rest as `\u{1b}`), DEL, C1
    /// controls (U+0080...U+009F, NEL among them), the line and paragraph
    /// separators U+2028 and U+2029, and the bidirectional controls (U+061C,
    /// U+200E, U+200F, U+202A...U+202E, U+2066...U+2069), each as `\u{HEX}`.
    ///
    /// `quoted` (for a value inside a line: notes, reasons, input quoted in an
    /// error) wraps it in double quotes and escapes `"` and `\` too, so the exact
    /// text reads back unambiguously. Unquoted (for a whole message, a path or
    /// an id that is normally plain) only the unsafe characters are escaped:
    /// plain text prints unchanged, and applying it twice changes nothing.
    public static func escaped(_ text: String, quoted: Bool = true) -> String {
        var out = quoted ? "\"" : ""
        for u in text.unicodeScalars {
            switch u {
            case "\"" where quoted: out += "\\\""
            case "\\" where quoted: out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if isUnsafe(u) { out += "\\u{" + String(u.value, radix: 16) + "}" } else { out.unicodeScalars.append(u) }
            }
        }
        return quoted ? out + "\"" : out
    }

    /// Whether printing `u` as it is could break the line or control the terminal.
    public static func isUnsafe(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x00...0x1F, 0x7F...0x9F: true                     // C0, DEL, C1
        case 0x2028, 0x2029: true                               // line and paragraph separators
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional controls
        default: false
        }
    }
}
