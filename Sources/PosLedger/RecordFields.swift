// Reading the fields of a record: one pass, bounds-checked, each known field
// at most once, unknown ones skipped (see RecordCodec.swift and
// sync-protocol.md "Records").

import PosBytes

/// The known fields of one record (numbers 1...fieldNumberMax), read in one pass.
struct Fields {
    static let fieldNumberMax = 15

    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(Range<Int>)
    }

    var values: [Value?]
    var offsets: [Int]
    let endOffset: Int

    static func read(_ r: inout ByteReader<LedgerError>) throws(LedgerError) -> Fields {
        var f = Fields(values: Array(repeating: nil, count: fieldNumberMax + 1),
                       offsets: Array(repeating: 0, count: fieldNumberMax + 1), endOffset: r.end)
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
            guard f.values[Int(number)] == nil else {
                throw LedgerError(.fieldDuplicated, "field \(number) appears twice", field: "field \(number)",
                                  byteOffset: at)
            }
            f.values[Int(number)] = value
            f.offsets[Int(number)] = at
        }
        return f
    }

    func has(_ n: Int) -> Bool { values[n] != nil }

    func error(_ code: LedgerError.Code, _ message: String, _ n: Int, _ name: String) -> LedgerError {
        LedgerError(code, message, field: name, byteOffset: values[n] == nil ? endOffset : offsets[n])
    }

    func at<T>(_ n: Int, _ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        try RecordCodec.at(offsets[n], body)
    }

    func varint(_ n: Int, _ name: String) throws(LedgerError) -> UInt64 {
        switch values[n] {
        case .varint(let v)?: return v
        case nil: throw error(.fieldMissing, "required field \(n) (\(name)) missing", n, name)
        default: throw error(.malformed, "field \(n) (\(name)) must be a varint", n, name)
        }
    }

    func bytes(_ n: Int, _ name: String, _ buffer: [UInt8]) throws(LedgerError) -> ArraySlice<UInt8> {
        switch values[n] {
        case .bytes(let range)?: return buffer[range]
        case nil: throw error(.fieldMissing, "required field \(n) (\(name)) missing", n, name)
        default: throw error(.malformed, "field \(n) (\(name)) must be length-delimited", n, name)
        }
    }

    func string(_ n: Int, _ name: String, _ buffer: [UInt8]) throws(LedgerError) -> String {
        let slice = try bytes(n, name, buffer)
        guard let text = String(validating: slice, as: UTF8.self) else {
            throw error(.invalidText, "field \(n) (\(name)) is not valid UTF-8", n, name)
        }
        return text
    }

    /// Fields 1 and 2: the referenced entity's dot.
    func dot() throws(LedgerError) -> Dot {
        let replica = try varint(1, "refReplica")
        guard replica <= UInt64(Limits.terminalIdMax) else {
            throw error(.valueOutOfRange, "replica id \(replica) exceeds \(Limits.terminalIdMax)", 1, "refReplica")
        }
        let seq = try varint(2, "refSeq")
        return try at(2) { () throws(LedgerError) in
            try Dot(replica: ReplicaId(unchecked: UInt32(replica)), seq: seq)
        }
    }

    func money(_ amountField: Int, _ currencyField: Int) throws(LedgerError) -> Money {
        let minor = try varint(amountField, "amount")
        let packed = try varint(currencyField, "currency")
        guard packed <= UInt64(Currency.packedMax) else {
            throw error(.invalidCurrency, "currency \(packed) out of range", currencyField, "currency")
        }
        guard minor <= UInt64(Limits.amountMinorMax) else {
            throw error(.invalidAmount, "amount \(minor) exceeds \(Limits.amountMinorMax)", amountField, "amount")
        }
        let currency = try Currency(packed: UInt16(packed))
        return try at(amountField) { () throws(LedgerError) in try Money.positive(Int64(minor), currency) }
    }
}
