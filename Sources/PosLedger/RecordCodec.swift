// The binary record codec: one event <-> one record. Hand-written
// tag-length-value, specified byte by byte in sync-protocol.md ("Records").
//
//   version u8 (1 or 2) | type u8 | replica varint | seq varint | hlc u64 LE |
//   context (version vector) | fieldsLength varint | fields (fieldsLength bytes)
//
// fieldsLength makes every truncation (and every trailing byte) detectable
// by the codec itself, even where the journal's frame checks are absent.
//
// A field is key varint (fieldNumber << 3 | wireType) then its payload:
// wire type 0 = varint, 1 = 8 bytes LE, 2 = varint length + bytes. A reader
// skips fields it does not know (forward compatible) and returns a record of
// an unknown type as `.unknown(type:fields:)` with the header decoded.
// Encoding is canonical: fields in increasing number, each at most once.

import Foundation
import PosBytes

public enum RecordCodec {
    /// Identifies `dictionaryBytes` in journal frames that use it.
    public static let dictionaryID: UInt32 = 1

    enum Wire: UInt64 {
        case varint = 0, fixed64 = 1, bytes = 2
    }

    /// The field numbers of each record type (sync-protocol.md, "Records"):
    /// the encoder writes and the decoder reads fields by these names only.
    /// A case's name is the field's name in errors.
    enum Field {
        /// Fields 1 and 2 of every event that names a sale or ticket: that entity's dot.
        enum Reference: Int, RecordField { case refReplica = 1, refSeq = 2 }
        /// A capture: the wallet is omitted when the payment code (which implies it) is present.
        enum SaleCaptured: Int, RecordField { case currency = 1, wallet = 2, paymentCode = 3, amount = 4, duplicateKey = 5 }
        /// A refund request, after the sale's reference.
        enum RefundRequested: Int, RecordField {
            case amount = 3, currency = 4, reason = 5, reasonText = 6, resolution = 7, contactChannel = 8, contact = 9
        }
        /// An approval, after the ticket's reference.
        enum RefundApproved: Int, RecordField { case route = 3, account = 4 }
        /// A note, after the ticket's reference.
        enum NoteAdded: Int, RecordField { case note = 3 }
    }

    // MARK: - Encode

    public static func encode(_ event: Event) -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        encode(event, into: &w)
        return w.bytes
    }

    /// The version this code writes for `body`: 2 for a capture holding its payment code (its
    /// duplicate key left out), 1 for every other record.
    public static func writtenVersion(of body: EventBody) -> UInt8 {
        if case .saleCaptured(let c) = body, c.paymentCode != nil { return Limits.recordVersionDerived }
        return Limits.recordVersion
    }

    /// Encodes `event` in record format `version` (1 or 2; default the one this code writes).
    /// Version 1 of a capture holding its code is how records were written before version 2: old
    /// journals and bundles hold them, and readers still take them.
    public static func encode(_ event: Event, into w: inout ByteWriter, version: UInt8? = nil) {
        let start = w.bytes.count
        encodeUnchecked(event, into: &w, version: version)
        precondition(w.bytes.count - start <= Limits.recordBytesMax, "record exceeds recordBytesMax")
    }

    /// The record of `event`, or nil when it would exceed `recordBytesMax` (where `encode` traps):
    /// for events whose size input decides (a capture relayed without its code, central's own).
    public static func encodeIfFits(_ event: Event, version: UInt8? = nil) -> [UInt8]? {
        var w = ByteWriter(capacity: 64)
        encodeUnchecked(event, into: &w, version: version)
        return w.bytes.count <= Limits.recordBytesMax ? w.bytes : nil
    }

    /// How many bytes `event` encodes to in `version` (default the written one), even past `recordBytesMax`.
    public static func encodedSize(_ event: Event, version: UInt8? = nil) -> Int {
        var w = ByteWriter(capacity: 64)
        encodeUnchecked(event, into: &w, version: version)
        return w.bytes.count
    }

    /// The capture central relays to other terminals for `event` (a capture holding its code):
    /// the same event without the code, in version 1 (wallet and duplicate key written).
    public static func relayedWithoutCode(_ event: Event) -> Event? {
        guard case .saleCaptured(let capture) = event.body, capture.paymentCode != nil else { return nil }
        return Event(dot: event.dot, hlc: event.hlc, context: event.context, body: .saleCaptured(capture.withoutPaymentCode()))
    }

    private static func encodeUnchecked(_ event: Event, into w: inout ByteWriter, version: UInt8?) {
        let version = version ?? writtenVersion(of: event.body)
        precondition(version == Limits.recordVersion || version == Limits.recordVersionDerived, "record version \(version)")
        w.writeByte(version)
        w.writeByte(event.body.typeByte)
        w.writeVarint(UInt64(event.dot.replica.rawValue))
        w.writeVarint(event.dot.seq)
        w.writeLE(event.hlc.rawValue)
        event.context.encode(into: &w)
        var f = ByteWriter(capacity: 48)
        encodeFields(event.body, version: version, into: &f)
        w.writeVarint(UInt64(f.bytes.count))
        w.writeBytes(f.bytes)
    }

    /// `version`: 1 or 2 (`encode(_:into:version:)`).
    public static func encode(_ event: Event, version: UInt8) -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        encode(event, into: &w, version: version)
        return w.bytes
    }

    static func encodeFields(_ body: EventBody, version: UInt8, into w: inout ByteWriter) {
        switch body {
        case .saleCaptured(let c):
            typealias F = Field.SaleCaptured
            // Constant-ish fields first so the dictionary matches them in one
            // run; the wallet is implied by the code's shape when it is present.
            varint(&w, F.currency, UInt64(c.amount.currency.packed))
            if let code = c.paymentCode {
                bytes(&w, F.paymentCode, packDigits(code.digits))
            } else {
                varint(&w, F.wallet, UInt64(c.wallet.rawValue))
            }
            varint(&w, F.amount, UInt64(c.amount.minorUnits))
            // Version 2: whoever holds the code recomputes the key with the merchant key.
            if c.paymentCode == nil || version < Limits.recordVersionDerived { bytes(&w, F.duplicateKey, c.duplicateKey.bytes) }
        case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s):
            dot(&w, s.dot)
        case .refundRequested(let r):
            typealias F = Field.RefundRequested
            dot(&w, r.sale.dot)
            varint(&w, F.amount, UInt64(r.amount.minorUnits))
            varint(&w, F.currency, UInt64(r.amount.currency.packed))
            varint(&w, F.reason, UInt64(r.reason.code.rawValue))
            if case .other(let text) = r.reason { bytes(&w, F.reasonText, Array(text.text.utf8)) }
            varint(&w, F.resolution, UInt64(r.resolution.rawValue))
            if let contact = r.contact {
                varint(&w, F.contactChannel, UInt64(contact.channel.rawValue))
                bytes(&w, F.contact, Array(contact.address.utf8))
            }
        case .refundApproved(let t, let route):
            typealias F = Field.RefundApproved
            dot(&w, t.dot)
            varint(&w, F.route, UInt64(route.code.rawValue))
            if case .designatedAccount(let account) = route { bytes(&w, F.account, Array(account.text.utf8)) }
        case .refundRejected(let t), .refundCancelled(let t), .refundCompleted(let t), .refundEscalated(let t):
            dot(&w, t.dot)
        case .noteAdded(let t, let note):
            dot(&w, t.dot)
            bytes(&w, Field.NoteAdded.note, Array(note.text.utf8))
        case .sequenceVoid:
            break
        case .unknown(_, let fields):
            w.writeBytes(fields)
        }
    }

    private static func key(_ w: inout ByteWriter, _ field: some RecordField, _ wire: Wire) {
        w.writeVarint(UInt64(field.number) << 3 | wire.rawValue)
    }
    private static func varint(_ w: inout ByteWriter, _ field: some RecordField, _ value: UInt64) {
        key(&w, field, .varint); w.writeVarint(value)
    }
    private static func bytes(_ w: inout ByteWriter, _ field: some RecordField, _ value: [UInt8]) {
        key(&w, field, .bytes); w.writeVarint(UInt64(value.count)); w.writeBytes(value)
    }
    /// A referenced entity's dot: `Field.Reference`.
    private static func dot(_ w: inout ByteWriter, _ d: Dot) {
        varint(&w, Field.Reference.refReplica, UInt64(d.replica.rawValue)); varint(&w, Field.Reference.refSeq, d.seq)
    }

    /// Packed BCD, high nibble first; an odd count ends with a 0xF nibble.
    static func packDigits(_ digits: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((digits.count + 1) / 2)
        var i = 0
        while i < digits.count {
            let high = digits[i], low: UInt8 = i + 1 < digits.count ? digits[i + 1] : 0xF
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }

    // MARK: - Decode

    /// What a record's first bytes say: version, type and dot, read without its context or fields
    /// (so without a merchant key and without deriving anything). `decode` checks the rest.
    public struct Header: Sendable, Equatable {
        public let version: UInt8
        public let type: UInt8
        public let dot: Dot
    }

    /// The header of a record: version, type, replica and seq checked as `decode` checks them.
    public static func header(_ bytes: [UInt8]) throws(LedgerError) -> Header {
        guard bytes.count <= Limits.recordBytesMax else {
            throw LedgerError(.valueOutOfRange, "record is \(bytes.count) bytes, max \(Limits.recordBytesMax)", field: "record", byteOffset: 0)
        }
        var r = ByteReader<LedgerError>(bytes, from: 0, to: bytes.count)
        return try readHeader(&r, from: 0)
    }

    /// Version, type, replica and seq at `from`, each checked.
    private static func readHeader(_ r: inout ByteReader<LedgerError>, from: Int) throws(LedgerError) -> Header {
        let version = try r.readByte(field: "version")
        guard version == Limits.recordVersion || version == Limits.recordVersionDerived else {
            throw LedgerError(.unsupportedVersion, "record version \(version), this reader knows 1 and 2", field: "version", byteOffset: from)
        }
        let type = try r.readByte(field: "type")
        let replicaAt = r.offset
        let replicaRaw = try r.readVarint(field: "replica")
        guard replicaRaw <= UInt64(Limits.terminalIdMax) else {
            throw LedgerError(.valueOutOfRange, "replica id \(replicaRaw) exceeds \(Limits.terminalIdMax)", field: "replica", byteOffset: replicaAt)
        }
        let seqAt = r.offset
        let seq = try r.readVarint(field: "seq")
        let dot = try at(seqAt) { () throws(LedgerError) in try Dot(replica: ReplicaId(unchecked: UInt32(replicaRaw)), seq: seq) }
        return Header(version: version, type: type, dot: dot)
    }

    /// Decodes a record whose writer's merchant key the caller has (`context`): a version-2
    /// capture holding its payment code needs it to derive its duplicate key.
    public static func decode(_ bytes: [UInt8], context: RecordDecodeContext) throws(LedgerError) -> Event {
        try decode(bytes, from: 0, to: bytes.count, context: context)
    }

    /// Decodes without a merchant key: a version-2 capture holding its payment code is refused
    /// (`merchantKeyMissing`, field duplicateKey). For records that cannot hold a code (relayed,
    /// central's own) and for tests.
    public static func decode(_ bytes: [UInt8]) throws(LedgerError) -> Event {
        try decode(bytes, from: 0, to: bytes.count, context: .withoutMerchantKey)
    }

    public static func decode(_ slice: ArraySlice<UInt8>) throws(LedgerError) -> Event {
        try decode(Array(slice))
    }

    /// Counts full decodes in a task that sets it (tests: what a scan decodes beyond headers).
    @TaskLocal static var decodeCounter: DecodeCounter?

    final class DecodeCounter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        var count: Int { lock.withLock { n } }
        func increment() { lock.withLock { n += 1 } }
    }

    static func decode(_ bytes: [UInt8], from: Int, to: Int, context decodeContext: RecordDecodeContext) throws(LedgerError) -> Event {
        decodeCounter?.increment()
        guard to - from <= Limits.recordBytesMax else {
            throw LedgerError(.valueOutOfRange, "record is \(to - from) bytes, max \(Limits.recordBytesMax)",
                              field: "record", byteOffset: from)
        }
        var r = ByteReader<LedgerError>(bytes, from: from, to: to)
        let header = try readHeader(&r, from: from)
        let (version, type, dot) = (header.version, header.type, header.dot)
        let hlc = HLCTimestamp(rawValue: try r.readLE(UInt64.self, field: "hlc"))
        let context = try VersionVector.decode(from: &r)
        let lengthAt = r.offset
        let fieldsLength = try r.readVarint(field: "fieldsLength")
        let fieldsStart = r.offset
        guard fieldsLength == UInt64(r.remaining) else {
            throw LedgerError(fieldsLength > UInt64(r.remaining) ? .truncated : .malformed,
                              "fields declare \(fieldsLength) bytes, \(r.remaining) follow",
                              field: "fieldsLength", byteOffset: lengthAt)
        }

        guard let kind = EventKind(rawValue: type) else {
            let fields = Array(bytes[fieldsStart..<to])
            return Event(dot: dot, hlc: hlc, context: context, body: .unknown(type: type, fields: fields))
        }
        var f = try Fields.read(&r)
        let body = try decodeBody(kind, &f, bytes, derived: version == Limits.recordVersionDerived ? (dot.replica, decodeContext, from) : nil)
        return Event(dot: dot, hlc: hlc, context: context, body: body)
    }

    /// `derived`: for a version-2 record, its writer, what gives that writer's merchant key, and
    /// the record's offset.
    private static func decodeBody(_ kind: EventKind, _ f: inout Fields, _ bytes: [UInt8],
                                   derived: (writer: ReplicaId, context: RecordDecodeContext, offset: Int)?)
        throws(LedgerError) -> EventBody
    {
        switch kind {
        case .saleCaptured:
            typealias F = Field.SaleCaptured
            let amount = try f.money(amount: F.amount, currency: F.currency)
            var code: PaymentCode?
            if f.has(F.paymentCode) {
                let packed = try f.bytes(F.paymentCode, bytes)
                code = try f.at(F.paymentCode) { () throws(LedgerError) in try PaymentCode(digits: unpackDigits(packed)) }
            }
            let wallet: Wallet
            if let code {
                guard !f.has(F.wallet) else {
                    throw f.error(.malformed, "wallet must be omitted when the payment code is present", F.wallet)
                }
                wallet = code.wallet
            } else {
                let walletRaw = try f.varint(F.wallet)
                guard walletRaw <= 255, let w = Wallet(rawValue: UInt8(walletRaw)) else {
                    throw f.error(.unknownWallet, "wallet \(walletRaw) unknown", F.wallet)
                }
                wallet = w
            }
            let key: DuplicateKey
            if let derived, let code {
                // Version 2: the key is HMAC-SHA256 of the code under the merchant key, never stored.
                guard !f.has(F.duplicateKey) else {
                    throw f.error(.malformed, "a version-2 capture holding its payment code must omit its duplicate key (derived from the code)", F.duplicateKey)
                }
                guard let merchantKey = derived.context.merchantKey(of: derived.writer) else {
                    let source = derived.context.keySource(of: derived.writer).map { " (read from \($0): missing or unreadable)" } ?? ""
                    throw LedgerError(.merchantKeyMissing, "a version-2 capture of replica \(derived.writer.rawValue) leaves out its duplicate key, derived from the payment code with the merchant key, and this reader was not given that key\(source)",
                                      field: F.duplicateKey.name, byteOffset: derived.offset)
                }
                key = code.duplicateKey(merchantKey: merchantKey)
            } else {
                let keyBytes = try f.bytes(F.duplicateKey, bytes)
                guard let stored = DuplicateKey(bytes: Array(keyBytes)) else {
                    throw f.error(.malformed, "duplicate key must be \(Limits.duplicateKeyBytes) bytes", F.duplicateKey)
                }
                key = stored
            }
            return .saleCaptured(try f.at(F.amount) { () throws(LedgerError) in
                try SaleCapture(amount: amount, wallet: wallet, duplicateKey: key, paymentCode: code)
            })
        case .saleConfirmed: return .saleConfirmed(SaleId(try f.dot()))
        case .saleDeclined: return .saleDeclined(SaleId(try f.dot()))
        case .saleExpired: return .saleExpired(SaleId(try f.dot()))
        case .refundRequested:
            typealias F = Field.RefundRequested
            let sale = SaleId(try f.dot())
            let amount = try f.money(amount: F.amount, currency: F.currency)
            let reasonCode = try f.varint(F.reason)
            guard reasonCode <= 255, let code = ReturnReason.Code(rawValue: UInt8(reasonCode)) else {
                throw f.error(.invalidReason, "reason code \(reasonCode) unknown", F.reason)
            }
            let reason = try ReturnReason(code: code) { () throws(LedgerError) in
                let text = try f.string(F.reasonText, bytes)
                return try f.at(F.reasonText) { () throws(LedgerError) in try ReasonText(text) }
            }
            let resolutionRaw = try f.varint(F.resolution)
            guard resolutionRaw <= 255, let resolution = Resolution(rawValue: UInt8(resolutionRaw)) else {
                throw f.error(.malformed, "resolution \(resolutionRaw) unknown", F.resolution)
            }
            var contact: CustomerContact?
            if f.has(F.contactChannel) {
                let channelRaw = try f.varint(F.contactChannel)
                guard channelRaw <= 255, let channel = CustomerContact.Channel(rawValue: UInt8(channelRaw)) else {
                    throw f.error(.malformed, "contact channel \(channelRaw) unknown", F.contactChannel)
                }
                let address = try f.string(F.contact, bytes)
                contact = try f.at(F.contact) { () throws(LedgerError) in
                    try CustomerContact(channel: channel, address: address)
                }
            }
            return .refundRequested(try f.at(F.amount) { () throws(LedgerError) in
                try RefundRequest(sale: sale, amount: amount, reason: reason, resolution: resolution,
                                  contact: contact)
            })
        case .refundApproved:
            typealias F = Field.RefundApproved
            let ticket = TicketId(try f.dot())
            let routeCode = try f.varint(F.route)
            guard routeCode <= 255, let code = RefundRoute.Code(rawValue: UInt8(routeCode)) else {
                throw f.error(.malformed, "route \(routeCode) unknown", F.route)
            }
            let route = try RefundRoute(code: code) { () throws(LedgerError) in
                let text = try f.string(F.account, bytes)
                return try f.at(F.account) { () throws(LedgerError) in try AccountReference(text) }
            }
            return .refundApproved(ticket, route)
        case .refundRejected: return .refundRejected(TicketId(try f.dot()))
        case .refundCancelled: return .refundCancelled(TicketId(try f.dot()))
        case .refundCompleted: return .refundCompleted(TicketId(try f.dot()))
        case .refundEscalated: return .refundEscalated(TicketId(try f.dot()))
        case .noteAdded:
            let ticket = TicketId(try f.dot())
            let text = try f.string(Field.NoteAdded.note, bytes)
            return .noteAdded(ticket, try f.at(Field.NoteAdded.note) { () throws(LedgerError) in try NoteText(text) })
        case .sequenceVoid:
            return .sequenceVoid
        }
    }

    static func unpackDigits(_ packed: ArraySlice<UInt8>) throws(LedgerError) -> [UInt8] {
        var digits: [UInt8] = []
        digits.reserveCapacity(packed.count * 2)
        for (i, byte) in packed.enumerated() {
            let high = byte >> 4, low = byte & 0xF
            guard high <= 9 else {
                throw LedgerError(.invalidPaymentCode, "payment code nibble is not a digit", field: "paymentCode")
            }
            digits.append(high)
            if low == 0xF && i == packed.count - 1 { break }
            guard low <= 9 else {
                throw LedgerError(.invalidPaymentCode, "payment code nibble is not a digit", field: "paymentCode")
            }
            digits.append(low)
        }
        return digits
    }

    /// Re-throws a validation error with the byte offset where the value was read.
    static func at<T>(_ offset: Int, _ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        do { return try body() } catch {
            throw LedgerError(error.code, error.message, field: error.field, byteOffset: error.byteOffset ?? offset)
        }
    }
}

/// What decoding a record needs beyond its bytes: the merchant key of the record's writer, from
/// which a version-2 capture's duplicate key is derived (sync-protocol.md, "Records"). A terminal
/// holds one merchant's key (its own and every record it pulls are that merchant's); central looks
/// the writer's merchant up.
public struct RecordDecodeContext: Sendable {
    private let lookup: @Sendable (ReplicaId) -> MerchantKey?
    private let source: (@Sendable (ReplicaId) -> String?)?

    /// Every writer's records are of the merchant whose key this is.
    public init(merchantKey: MerchantKey) { lookup = { _ in merchantKey }; source = nil }
    /// The merchant key of a writer's merchant; nil when not known (decoding a record that needs it fails).
    /// `source`: where a writer's key is read from (a file), named when it is not known.
    public init(merchantKeyOf lookup: @escaping @Sendable (ReplicaId) -> MerchantKey?, source: (@Sendable (ReplicaId) -> String?)? = nil) {
        self.lookup = lookup
        self.source = source
    }

    func keySource(of writer: ReplicaId) -> String? { source?(writer) }

    /// No merchant key: a record that needs one is refused (`merchantKeyMissing`, field duplicateKey).
    public static let withoutMerchantKey = RecordDecodeContext(merchantKeyOf: { _ in nil })

    func merchantKey(of writer: ReplicaId) -> MerchantKey? { lookup(writer) }
}
