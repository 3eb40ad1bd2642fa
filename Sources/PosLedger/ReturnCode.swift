// The return code printed on a receipt encodes the sale's dot with a Damm
// check digit. Damm's quasigroup detects every single-digit substitution and
// every adjacent transposition, so a mistyped code is rejected, not misread.
//
// Layout (decimal digits, no separators):
//   L  R{L}  S{1...12}  C
//   L: number of replica digits (1...6); R: replica id without leading zeros
//   (central is "0"); S: sequence number without leading zeros; C: Damm check
//   digit over everything before it. 4 to 20 digits.
// Displayed in groups of four separated by spaces; the parser ignores spaces
// and dashes.

public struct ReturnCode: Hashable, Sendable, CustomStringConvertible {
    public let sale: SaleId

    public init(sale: SaleId) { self.sale = sale }

    /// The digits of the code, check digit last.
    public var digits: String {
        var payload = ReturnCode.payloadDigits(sale.dot)
        payload.append(Damm.checkDigit(payload))
        return String(decoding: payload.map { $0 + 48 }, as: UTF8.self)
    }

    /// Grouped for printing: "3421 0785".
    public var description: String {
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && i % 4 == 0 { out.append(" ") }
            out.append(ch)
        }
        return out
    }

    static func payloadDigits(_ dot: Dot) -> [UInt8] {
        let replica = decimalDigits(UInt64(dot.replica.rawValue))
        return [UInt8(replica.count)] + replica + decimalDigits(dot.seq)
    }

    static func decimalDigits(_ value: UInt64) -> [UInt8] {
        if value == 0 { return [0] }
        var v = value, out: [UInt8] = []
        while v > 0 { out.append(UInt8(v % 10)); v /= 10 }
        return out.reversed()
    }

    /// Decodes a typed or scanned code. Rejects wrong length, non-digits,
    /// a failed check digit, and non-canonical forms (leading zeros).
    public init(parsing text: String) throws(LedgerError) {
        var digits: [UInt8] = []
        for byte in text.utf8 {
            if byte == 32 || byte == 45 { continue }
            guard byte >= 48, byte <= 57 else {
                throw LedgerError(.invalidReturnCode, "return code may contain only digits", field: "returnCode")
            }
            guard digits.count < Limits.returnCodeDigitsMax else {
                throw LedgerError(.invalidReturnCode,
                                  "return code longer than \(Limits.returnCodeDigitsMax) digits", field: "returnCode")
            }
            digits.append(byte - 48)
        }
        guard digits.count >= 4 else {
            throw LedgerError(.invalidReturnCode, "return code shorter than 4 digits", field: "returnCode")
        }
        guard Damm.checkDigit(digits.dropLast()) == digits.last! else {
            throw LedgerError(.checkDigitMismatch,
                              "return code check digit does not match: mistyped?", field: "returnCode")
        }
        let replicaDigits = Int(digits[0])
        let seqDigits = digits.count - 2 - replicaDigits
        guard (1...6).contains(replicaDigits), (1...12).contains(seqDigits) else {
            throw LedgerError(.invalidReturnCode, "return code has an impossible length", field: "returnCode")
        }
        let r = digits[1..<(1 + replicaDigits)], s = digits[(1 + replicaDigits)..<(digits.count - 1)]
        guard (r.first != 0 || r.count == 1), s.first != 0 else {
            throw LedgerError(.invalidReturnCode, "return code has leading zeros", field: "returnCode")
        }
        let replica = r.reduce(UInt64(0)) { $0 * 10 + UInt64($1) }
        let seq = s.reduce(UInt64(0)) { $0 * 10 + UInt64($1) }
        let dot = try Dot(replica: try ReplicaId(UInt32(replica)), seq: seq)
        sale = SaleId(dot)
    }
}

/// The Damm algorithm (H. Michael Damm, 2004): a weakly totally
/// anti-symmetric quasigroup of order 10.
enum Damm {
    static let table: [[UInt8]] = [
        [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
        [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
        [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
        [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
        [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
        [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
        [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
        [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
        [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
        [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
    ]

    static func checkDigit<C: Collection>(_ digits: C) -> UInt8 where C.Element == UInt8 {
        var interim: UInt8 = 0
        for d in digits { interim = table[Int(interim)][Int(d)] }
        return interim
    }
}
