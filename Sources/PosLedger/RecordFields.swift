// Reading the fields of a record: one pass, bounds-checked, each known field
// at most once, unknown ones skipped (see RecordCodec.swift and
// sync-protocol.md "Records").

import PosBytes

/// A field of a record type: its number (`RecordCodec.Field`) and the name errors give it.
protocol RecordField {
    var number: Int { get }
    var name: String { get }
}

extension RecordField where Self: RawRepresentable, RawValue == Int {
    var number: Int { rawValue }
    var name: String { String(describing: self) }
}

/// The known fields of one record (numbers 1...fieldNumberMax), read in one pass.
struct Fields {
    static let fieldNumberMax = 15

    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(Range<Int>)
    }

    /// A known field read, at its number: the value and the offset of its key.
    struct Slot {
        var value: Value?
        var offset: Int
    }

    /// Indexed by field number (0 unused): one allocation per record.
    var slots: [Slot]
    let endOffset: Int

    static func read(_ r: inout ByteReader<LedgerError>) throws(LedgerError) -> Fields {
        var f = Fields(slots: Array(repeating: Slot(value: nil, offset: 0), count: fieldNumberMax + 1), endOffset: r.end)
        while !r.isAtEnd {
            let at = r.offset
            let key = try r.readVarint(field: "fieldKey")
            let number = key >> 3
            let value: Value
            switch key & 7 {
            case 0: value = .varint(try r.readVarint(field: "field \(number)"))
            case 1: value = .fixed64(try r.readLE(UInt64.self, field: "field \(number)"))
            case 2:
                let length = try r.readVarint(field: "field \(number)")
                guard length <= UInt64(r.remaining) else {
                    throw LedgerError(.truncated, "field \(number) declares \(length) bytes, \(r.remaining) remain",
                                      field: "field \(number)", byteOffset: at)
                }
                let start = r.offset
                _ = try r.readBytes(Int(length), field: "field \(number)")
                value = .bytes(start..<(start + Int(length)))
            default:
                throw LedgerError(.malformed, "wire type \(key & 7) unknown: cannot skip", field: "field \(number)",
                                  byteOffset: at)
            }
            guard number >= 1 else {
                throw LedgerError(.malformed, "field number 0 is reserved", field: "fieldKey", byteOffset: at)
            }
            guard number <= UInt64(fieldNumberMax) else { continue }  // unknown: skipped
            guard f.slots[Int(number)].value == nil else {
                throw LedgerError(.fieldDuplicated, "field \(number) appears twice", field: "field \(number)",
                                  byteOffset: at)
            }
            f.slots[Int(number)] = Slot(value: value, offset: at)
        }
        return f
    }

    func has(_ f: some RecordField) -> Bool { slots[f.number].value != nil }

    func error(_ code: LedgerError.Code, _ message: String, _ f: some RecordField) -> LedgerError {
        LedgerError(code, message, field: f.name, byteOffset: slots[f.number].value == nil ? endOffset : slots[f.number].offset)
    }

    func at<T>(_ f: some RecordField, _ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        try RecordCodec.at(slots[f.number].offset, body)
    }

    func varint(_ f: some RecordField) throws(LedgerError) -> UInt64 {
        switch slots[f.number].value {
        case .varint(let v)?: return v
        case nil: throw error(.fieldMissing, "required field \(f.number) (\(f.name)) missing", f)
        default: throw error(.malformed, "field \(f.number) (\(f.name)) must be a varint", f)
        }
    }

    func bytes(_ f: some RecordField, _ buffer: [UInt8]) throws(LedgerError) -> ArraySlice<UInt8> {
        switch slots[f.number].value {
        case .bytes(let range)?: return buffer[range]
        case nil: throw error(.fieldMissing, "required field \(f.number) (\(f.name)) missing", f)
        default: throw error(.malformed, "field \(f.number) (\(f.name)) must be length-delimited", f)
        }
    }

    func string(_ f: some RecordField, _ buffer: [UInt8]) throws(LedgerError) -> String {
        let slice = try bytes(f, buffer)
        guard let text = String(validating: slice, as: UTF8.self) else {
            throw error(.invalidText, "field \(f.number) (\(f.name)) is not valid UTF-8", f)
        }
        return text
    }

    /// Fields 1 and 2: the referenced entity's dot.
    func dot() throws(LedgerError) -> Dot {
        typealias F = RecordCodec.Field.Reference
        let replica = try varint(F.refReplica)
        guard replica <= UInt64(Limits.terminalIdMax) else {
            throw error(.valueOutOfRange, "replica id \(replica) exceeds \(Limits.terminalIdMax)", F.refReplica)
        }
        let seq = try varint(F.refSeq)
        return try at(F.refSeq) { () throws(LedgerError) in
            try Dot(replica: ReplicaId(unchecked: UInt32(replica)), seq: seq)
        }
    }

    func money(amount amountField: some RecordField, currency currencyField: some RecordField) throws(LedgerError) -> Money {
        let minor = try varint(amountField)
        let packed = try varint(currencyField)
        guard packed <= UInt64(Currency.packedMax) else {
            throw error(.invalidCurrency, "currency \(packed) out of range", currencyField)
        }
        guard minor <= UInt64(Limits.amountMinorMax) else {
            throw error(.invalidAmount, "amount \(minor) exceeds \(Limits.amountMinorMax)", amountField)
        }
        let currency = try Currency(packed: UInt16(packed))
        return try at(amountField) { () throws(LedgerError) in try Money.positive(Int64(minor), currency) }
    }
}
