// The binary record codec: one event <-> one record. Hand-written
// tag-length-value, specified byte by byte in sync-protocol.md ("Records").
//
//   version u8 (= 1) | type u8 | replica varint | seq varint | hlc u64 LE |
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

import PosBytes

public enum RecordCodec {
    /// Identifies `dictionaryBytes` in journal frames that use it.
    public static let dictionaryID: UInt32 = 1

    enum Wire: UInt64 {
        case varint = 0, fixed64 = 1, bytes = 2
    }

    // MARK: - Encode

    public static func encode(_ event: Event) -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        encode(event, into: &w)
        return w.bytes
    }

    public static func encode(_ event: Event, into w: inout ByteWriter) {
        let start = w.bytes.count
        w.writeByte(Limits.recordVersion)
        w.writeByte(event.body.typeByte)
        w.writeVarint(UInt64(event.dot.replica.rawValue))
        w.writeVarint(event.dot.seq)
        w.writeLE(event.hlc.rawValue)
        event.context.encode(into: &w)
        var f = ByteWriter(capacity: 48)
        encodeFields(event.body, into: &f)
        w.writeVarint(UInt64(f.bytes.count))
        w.writeBytes(f.bytes)
        precondition(w.bytes.count - start <= Limits.recordBytesMax, "record exceeds recordBytesMax")
    }

    static func encodeFields(_ body: EventBody, into w: inout ByteWriter) {
        switch body {
        case .saleCaptured(let c):
            // Constant-ish fields first so the dictionary matches them in one
            // run; the wallet is implied by the code's shape when it is present.
            varint(&w, 1, UInt64(c.amount.currency.packed))
            if let code = c.paymentCode {
                bytes(&w, 3, packDigits(code.digits))
            } else {
                varint(&w, 2, UInt64(c.wallet.rawValue))
            }
            varint(&w, 4, UInt64(c.amount.minorUnits))
            bytes(&w, 5, c.duplicateKey.bytes)
        case .saleConfirmed(let s), .saleDeclined(let s), .saleExpired(let s):
            dot(&w, s.dot)
        case .refundRequested(let r):
            dot(&w, r.sale.dot)
            varint(&w, 3, UInt64(r.amount.minorUnits))
            varint(&w, 4, UInt64(r.amount.currency.packed))
            varint(&w, 5, UInt64(r.reason.code))
            if case .other(let text) = r.reason { bytes(&w, 6, Array(text.text.utf8)) }
            varint(&w, 7, UInt64(r.resolution.rawValue))
            if let contact = r.contact {
                varint(&w, 8, UInt64(contact.channel.rawValue))
                bytes(&w, 9, Array(contact.address.utf8))
            }
        case .refundApproved(let t, let route):
            dot(&w, t.dot)
            varint(&w, 3, UInt64(route.code))
            if case .designatedAccount(let account) = route { bytes(&w, 4, Array(account.text.utf8)) }
        case .refundRejected(let t), .refundCancelled(let t), .refundCompleted(let t), .refundEscalated(let t):
            dot(&w, t.dot)
        case .noteAdded(let t, let note):
            dot(&w, t.dot)
            bytes(&w, 3, Array(note.text.utf8))
        case .sequenceVoid:
            break
        case .unknown(_, let fields):
            w.writeBytes(fields)
        }
    }

    private static func key(_ w: inout ByteWriter, _ number: UInt64, _ wire: Wire) {
        w.writeVarint(number << 3 | wire.rawValue)
    }
    private static func varint(_ w: inout ByteWriter, _ number: UInt64, _ value: UInt64) {
        key(&w, number, .varint); w.writeVarint(value)
    }
    private static func bytes(_ w: inout ByteWriter, _ number: UInt64, _ value: [UInt8]) {
        key(&w, number, .bytes); w.writeVarint(UInt64(value.count)); w.writeBytes(value)
    }
    /// A referenced entity's dot: field 1 = replica, field 2 = seq.
    private static func dot(_ w: inout ByteWriter, _ d: Dot) {
        varint(&w, 1, UInt64(d.replica.rawValue)); varint(&w, 2, d.seq)
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

    public static func decode(_ bytes: [UInt8]) throws(LedgerError) -> Event {
        try decode(bytes, from: 0, to: bytes.count)
    }

    public static func decode(_ slice: ArraySlice<UInt8>) throws(LedgerError) -> Event {
        try decode(Array(slice))
    }

    static func decode(_ bytes: [UInt8], from: Int, to: Int) throws(LedgerError) -> Event {
        guard to - from <= Limits.recordBytesMax else {
            throw LedgerError(.valueOutOfRange, "record is \(to - from) bytes, max \(Limits.recordBytesMax)",
                              field: "record", byteOffset: from)
        }
        var r = ByteReader<LedgerError>(bytes, from: from, to: to)
        let version = try r.readByte(field: "version")
        guard version == Limits.recordVersion else {
            throw LedgerError(.unsupportedVersion, "record version \(version), this reader knows 1",
                              field: "version", byteOffset: from)
        }
        let type = try r.readByte(field: "type")
        let replicaAt = r.offset
        let replicaRaw = try r.readVarint(field: "replica")
        guard replicaRaw <= UInt64(Limits.terminalIdMax) else {
            throw LedgerError(.valueOutOfRange, "replica id \(replicaRaw) exceeds \(Limits.terminalIdMax)",
                              field: "replica", byteOffset: replicaAt)
        }
        let seqAt = r.offset
        let seq = try r.readVarint(field: "seq")
        let dot = try at(seqAt) { () throws(LedgerError) in
            try Dot(replica: ReplicaId(unchecked: UInt32(replicaRaw)), seq: seq)
        }
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
        let body = try decodeBody(kind, &f, bytes)
        return Event(dot: dot, hlc: hlc, context: context, body: body)
    }

    private static func decodeBody(_ kind: EventKind, _ f: inout Fields, _ bytes: [UInt8])
        throws(LedgerError) -> EventBody
    {
        switch kind {
        case .saleCaptured:
            let amount = try f.money(4, 1)
            var code: PaymentCode?
            if f.has(3) {
                let packed = try f.bytes(3, "paymentCode", bytes)
                code = try f.at(3) { () throws(LedgerError) in try PaymentCode(digits: unpackDigits(packed)) }
            }
            let wallet: Wallet
            if let code {
                guard !f.has(2) else {
                    throw f.error(.malformed, "wallet must be omitted when the payment code is present", 2, "wallet")
                }
                wallet = code.wallet
            } else {
                let walletRaw = try f.varint(2, "wallet")
                guard walletRaw <= 255, let w = Wallet(rawValue: UInt8(walletRaw)) else {
                    throw f.error(.unknownWallet, "wallet \(walletRaw) unknown", 2, "wallet")
                }
                wallet = w
            }
            let keyBytes = try f.bytes(5, "duplicateKey", bytes)
            guard let key = DuplicateKey(bytes: Array(keyBytes)) else {
                throw f.error(.malformed, "duplicate key must be \(Limits.duplicateKeyBytes) bytes", 5,
                              "duplicateKey")
            }
            return .saleCaptured(try f.at(4) { () throws(LedgerError) in
                try SaleCapture(amount: amount, wallet: wallet, duplicateKey: key, paymentCode: code)
            })
        case .saleConfirmed: return .saleConfirmed(SaleId(try f.dot()))
        case .saleDeclined: return .saleDeclined(SaleId(try f.dot()))
        case .saleExpired: return .saleExpired(SaleId(try f.dot()))
        case .refundRequested:
            let sale = SaleId(try f.dot())
            let amount = try f.money(3, 4)
            let reasonCode = try f.varint(5, "reason")
            let reason: ReturnReason
            switch reasonCode {
            case 1: reason = .quality
            case 2: reason = .wrongSize
            case 3: reason = .notAsDescribed
            case 4: reason = .changedMind
            case 5:
                let text = try f.string(6, "reasonText", bytes)
                reason = .other(try f.at(6) { () throws(LedgerError) in try ReasonText(text) })
            default: throw f.error(.invalidReason, "reason code \(reasonCode) unknown", 5, "reason")
            }
            let resolutionRaw = try f.varint(7, "resolution")
            guard resolutionRaw <= 255, let resolution = Resolution(rawValue: UInt8(resolutionRaw)) else {
                throw f.error(.malformed, "resolution \(resolutionRaw) unknown", 7, "resolution")
            }
            var contact: CustomerContact?
            if f.has(8) {
                let channelRaw = try f.varint(8, "contactChannel")
                guard channelRaw <= 255, let channel = CustomerContact.Channel(rawValue: UInt8(channelRaw)) else {
                    throw f.error(.malformed, "contact channel \(channelRaw) unknown", 8, "contactChannel")
                }
                let address = try f.string(9, "contact", bytes)
                contact = try f.at(9) { () throws(LedgerError) in
                    try CustomerContact(channel: channel, address: address)
                }
            }
            return .refundRequested(try f.at(3) { () throws(LedgerError) in
                try RefundRequest(sale: sale, amount: amount, reason: reason, resolution: resolution,
                                  contact: contact)
            })
        case .refundApproved:
            let ticket = TicketId(try f.dot())
            let routeCode = try f.varint(3, "route")
            let route: RefundRoute
            switch routeCode {
            case 1: route = .originalPayment
            case 2:
                let text = try f.string(4, "account", bytes)
                route = .designatedAccount(try f.at(4) { () throws(LedgerError) in try AccountReference(text) })
            case 3: route = .reship
            default: throw f.error(.malformed, "route \(routeCode) unknown", 3, "route")
            }
            return .refundApproved(ticket, route)
        case .refundRejected: return .refundRejected(TicketId(try f.dot()))
        case .refundCancelled: return .refundCancelled(TicketId(try f.dot()))
        case .refundCompleted: return .refundCompleted(TicketId(try f.dot()))
        case .refundEscalated: return .refundEscalated(TicketId(try f.dot()))
        case .noteAdded:
            let ticket = TicketId(try f.dot())
            let text = try f.string(3, "note", bytes)
            return .noteAdded(ticket, try f.at(3) { () throws(LedgerError) in try NoteText(text) })
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
