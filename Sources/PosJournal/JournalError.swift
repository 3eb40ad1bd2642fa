/// Every failure of the journal, as a value: a code to match on, a message
/// for people, and where it happened (file, byte offset, sequence number).
///
/// `Code` wraps a private enum so that adding a code later does not break
/// callers that switch over codes.
public struct JournalError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case io, diskFull, recordTooLarge, invalidArgument, closed, failed
            case badMagic, unsupportedVersion, headerChecksum, payloadChecksum
            case badFrameHeader, chainBroken, sequenceGap, truncated, missingSegment
            case journalMismatch, unknownDictionary, missingKey, wrongKey
            case authenticationFailed, decompression, lengthMismatch, notFound, locked, behindEvidence
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        public var description: String { base.rawValue }

        /// An operating-system I/O call failed (the message carries errno).
        public static let io = Code(.io)
        /// A write failed because the device is full (ENOSPC).
        public static let diskFull = Code(.diskFull)
        /// A record exceeds `JournalLimits.recordBytesMax`.
        public static let recordTooLarge = Code(.recordTooLarge)
        public static let invalidArgument = Code(.invalidArgument)
        /// The journal was closed.
        public static let closed = Code(.closed)
        /// An earlier write or fsync failed; the journal must be reopened (which recovers).
        public static let failed = Code(.failed)
        public static let badMagic = Code(.badMagic)
        /// The segment was written by a newer format version than this reader knows.
        public static let unsupportedVersion = Code(.unsupportedVersion)
        public static let headerChecksum = Code(.headerChecksum)
        public static let payloadChecksum = Code(.payloadChecksum)
        /// A frame header whose checksum is right but whose fields are impossible.
        public static let badFrameHeader = Code(.badFrameHeader)
        /// A frame's previous-checksum field does not match the frame before it.
        public static let chainBroken = Code(.chainBroken)
        public static let sequenceGap = Code(.sequenceGap)
        public static let truncated = Code(.truncated)
        public static let missingSegment = Code(.missingSegment)
        /// Segments of different journals (journal id differs) in one directory.
        public static let journalMismatch = Code(.journalMismatch)
        public static let unknownDictionary = Code(.unknownDictionary)
        /// The journal is encrypted and no key was supplied.
        public static let missingKey = Code(.missingKey)
        /// The supplied key's id differs from the one the segment was written with.
        public static let wrongKey = Code(.wrongKey)
        /// AES-GCM refused the frame: tampered, or a different key under the same id.
        public static let authenticationFailed = Code(.authenticationFailed)
        public static let decompression = Code(.decompression)
        /// Inflated bytes differ from the length the frame header states.
        public static let lengthMismatch = Code(.lengthMismatch)
        public static let notFound = Code(.notFound)
        /// Another process holds the store's lock and did not release it within the wait.
        public static let locked = Code(.locked)
        /// The journal ends below a sequence number that evidence kept outside it shows was durable.
        public static let behindEvidence = Code(.behindEvidence)
    }

    public var code: Code
    public var message: String
    /// The file the error is about, when there is one.
    public var file: String?
    /// Byte offset in `file` of the structure that failed (segment header or frame start).
    public var offset: UInt64?
    /// First sequence number of the frame concerned, when known.
    public var sequence: UInt64?

    public init(_ code: Code, _ message: String, file: String? = nil, offset: UInt64? = nil, sequence: UInt64? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.offset = offset
        self.sequence = sequence
    }

    public var description: String {
        var location = ""
        if let file { location += file }
        if let offset { location += location.isEmpty ? "offset \(offset)" : " at offset \(offset)" }
        if let sequence { location += location.isEmpty ? "seq \(sequence)" : " (seq \(sequence))" }
        return location.isEmpty ? "\(code): \(message)" : "\(location): \(code): \(message)"
    }

    func located(file: String? = nil, offset: UInt64? = nil, sequence: UInt64? = nil) -> JournalError {
        var copy = self
        if copy.file == nil { copy.file = file }
        if copy.offset == nil { copy.offset = offset }
        if copy.sequence == nil { copy.sequence = sequence }
        return copy
    }
}
