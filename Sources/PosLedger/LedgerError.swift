import PosBytes

// Errors are values: a stable code, a human message, and context (the field
// that was wrong and, for codec errors, the byte offset inside the record).
// Messages never contain a payment code in clear (see PaymentCode.masked).

public struct LedgerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A stable error code. Wraps a private enum so new codes can be added
    /// without breaking callers that switch over the public constants.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Raw: String, Sendable {
            case truncated, malformed, unsupportedVersion, fieldMissing, fieldDuplicated
            case valueOutOfRange, invalidCurrency, currencyMismatch, invalidAmount
            case invalidPaymentCode, unknownWallet, invalidReturnCode, checkDigitMismatch
            case invalidText, invalidReason, invalidTransition, unauthorizedWriter
            case limitExceeded, policyViolated, clockAheadTooFar, clockOverflow, unknownEntity
            case merchantKeyMissing
        }
        let raw: Raw
        public var description: String { raw.rawValue }

        public static let truncated = Code(raw: .truncated)
        public static let malformed = Code(raw: .malformed)
        public static let unsupportedVersion = Code(raw: .unsupportedVersion)
        public static let fieldMissing = Code(raw: .fieldMissing)
        public static let fieldDuplicated = Code(raw: .fieldDuplicated)
        public static let valueOutOfRange = Code(raw: .valueOutOfRange)
        public static let invalidCurrency = Code(raw: .invalidCurrency)
        public static let currencyMismatch = Code(raw: .currencyMismatch)
        public static let invalidAmount = Code(raw: .invalidAmount)
        public static let invalidPaymentCode = Code(raw: .invalidPaymentCode)
        public static let unknownWallet = Code(raw: .unknownWallet)
        public static let invalidReturnCode = Code(raw: .invalidReturnCode)
        public static let checkDigitMismatch = Code(raw: .checkDigitMismatch)
        public static let invalidText = Code(raw: .invalidText)
        public static let invalidReason = Code(raw: .invalidReason)
        public static let invalidTransition = Code(raw: .invalidTransition)
        public static let unauthorizedWriter = Code(raw: .unauthorizedWriter)
        public static let limitExceeded = Code(raw: .limitExceeded)
        public static let policyViolated = Code(raw: .policyViolated)
        public static let clockAheadTooFar = Code(raw: .clockAheadTooFar)
        public static let clockOverflow = Code(raw: .clockOverflow)
        /// The event names a sale or ticket this state does not hold (writer's admission check).
        public static let unknownEntity = Code(raw: .unknownEntity)
        /// A record leaves out a value derived with the merchant key (a version-2 capture's duplicate
        /// key) and the reader was not given that key.
        public static let merchantKeyMissing = Code(raw: .merchantKeyMissing)
    }

    public let code: Code
    public let message: String
    /// The field (or limit / rule) the error is about, when there is one.
    public let field: String?
    /// Byte offset inside the record being decoded, for codec errors.
    public let byteOffset: Int?

    public init(_ code: Code, _ message: String, field: String? = nil, byteOffset: Int? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.byteOffset = byteOffset
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let field { text += " [field \(field)]" }
        if let byteOffset { text += " [offset \(byteOffset)]" }
        return text
    }
}

/// Records are read with `ByteReader<LedgerError>`: input that runs short is
/// `.truncated`, a malformed varint `.malformed`, each with field and offset.
extension LedgerError: ByteReadFailure {
    public init(byteRead e: ByteReadError) {
        self.init(e.code == .truncated ? .truncated : .malformed, e.message, field: e.field, byteOffset: e.offset)
    }
}
