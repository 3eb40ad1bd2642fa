import Crypto
import PosBytes

// A QR payment code is a single-use bearer token: sensitive. The type that
// holds one never reveals it through description, debugDescription, string
// interpolation, dump/Mirror or an error message: all show it masked (first
// 2 and last 4 digits). Only `revealedDigits()` returns it, for forwarding
// to the acquirer; the journal encrypts every frame that stores it.

public enum Wallet: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case wechatPay = 1
    case alipay = 2

    public var description: String {
        switch self {
        case .wechatPay: "wechat-pay"
        case .alipay: "alipay"
        }
    }
}

public struct PaymentCode: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// Decimal digits 0...9, Limits.paymentCodeDigitsMin...Max of them.
    let digits: [UInt8]
    public let wallet: Wallet

    /// Recognises the wallet from the code's shape:
    /// WeChat Pay — 18 digits starting 10...15; Alipay — 16...24 digits starting 25...30.
    public init(_ text: String) throws(LedgerError) {
        var digits: [UInt8] = []
        for byte in text.utf8 {
            guard byte >= 48, byte <= 57 else {
                throw LedgerError(.invalidPaymentCode, "payment code must be decimal digits only",
                                  field: "paymentCode")
            }
            guard digits.count < Limits.paymentCodeDigitsMax else {
                throw LedgerError(.invalidPaymentCode,
                                  "payment code longer than \(Limits.paymentCodeDigitsMax) digits",
                                  field: "paymentCode")
            }
            digits.append(byte - 48)
        }
        try self.init(digits: digits)
    }

    init(digits: [UInt8]) throws(LedgerError) {
        guard digits.count >= 2, digits.allSatisfy({ $0 <= 9 }) else {
            throw LedgerError(.invalidPaymentCode, "payment code must be at least 2 decimal digits",
                              field: "paymentCode")
        }
        let prefix = Int(digits[0]) * 10 + Int(digits[1])
        switch (digits.count, prefix) {
        case (18, 10...15):
            wallet = .wechatPay
        case (16...24, 25...30):
            wallet = .alipay
        default:
            throw LedgerError(.unknownWallet,
                              "payment code \(PaymentCode.mask(digits)) (\(digits.count) digits) matches no "
                                  + "accepted wallet: WeChat Pay is 18 digits starting 10-15, Alipay is "
                                  + "16-24 digits starting 25-30",
                              field: "paymentCode")
        }
        self.digits = digits
    }

    /// The code in clear. Only for forwarding to the acquirer; never log it.
    public func revealedDigits() -> String {
        String(decoding: digits.map { $0 + 48 }, as: UTF8.self)
    }

    public var masked: String { PaymentCode.mask(digits) }
    public var description: String { masked }
    public var debugDescription: String { "PaymentCode(\(wallet), \(masked))" }
    public var customMirror: Mirror {
        Mirror(self, children: ["wallet": wallet, "masked": masked], displayStyle: .struct)
    }

    /// First 2 and last 4 digits, the rest as '*'.
    static func mask(_ digits: [UInt8]) -> String {
        var out = ""
        for (i, d) in digits.enumerated() {
            if i < 2 || i >= digits.count - 4 {
                out.append(Character(Unicode.Scalar(d + 48)))
            } else {
                out.append("*")
            }
        }
        return out
    }

    /// HMAC-SHA256(code digits as ASCII) under the merchant-wide key, first 16 bytes.
    /// Central derives one for every version-2 capture it decodes: the key's padded
    /// blocks are hashed once (`MerchantKey`), and the code is hashed in place.
    public func duplicateKey(merchantKey: MerchantKey) -> DuplicateKey {
        var inner = merchantKey.box.inner  // copied on write: the key's state is not changed
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: digits.count) { ascii in
            for (i, d) in digits.enumerated() { ascii[i] = d + 48 }
            inner.update(bufferPointer: UnsafeRawBufferPointer(ascii))
        }
        var outer = merchantKey.box.outer
        inner.finalize().withUnsafeBytes { outer.update(bufferPointer: $0) }
        return outer.finalize().withUnsafeBytes { mac in  // 32 bytes; the key is the first 16
            DuplicateKey(high: UInt64(bigEndian: mac.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                         low: UInt64(bigEndian: mac.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }
}

/// The merchant-wide key issued at enrollment that keys duplicate detection.
public struct MerchantKey: Sendable, CustomStringConvertible {
    let keyBytes: [UInt8]
    /// Built once: every version-2 capture decoded derives its duplicate key with it.
    let box: KeyBox
    public init(bytes: [UInt8]) {
        keyBytes = bytes
        box = KeyBox(key: bytes)
    }

    /// HMAC-SHA256's two keyed states (RFC 2104): SHA-256 after the key's block XOR
    /// ipad (0x36) and after it XOR opad (0x5c). Immutable once built (a use copies them).
    final class KeyBox: @unchecked Sendable {
        let inner: SHA256
        let outer: SHA256
        init(key: [UInt8]) {
            // A key longer than SHA-256's 64-byte block is hashed first; the block is zero-padded.
            var block = key.count > SHA256.blockByteCount ? Array(SHA256.hash(data: key)) : key
            block += [UInt8](repeating: 0, count: SHA256.blockByteCount - block.count)
            var inner = SHA256(), outer = SHA256()
            inner.update(data: block.map { $0 ^ 0x36 })
            outer.update(data: block.map { $0 ^ 0x5c })
            self.inner = inner
            self.outer = outer
        }
    }
    public var description: String { "MerchantKey(redacted)" }
}

/// The duplicate-detection key of a payment code: 16 bytes, identical at
/// every terminal of the merchant for the same code.
public struct DuplicateKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Bytes 0...7 and 8...15 as big-endian integers (so ordering is bytewise).
    let high: UInt64
    let low: UInt64

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == Limits.duplicateKeyBytes else { return nil }
        guard let high = ByteReader<ByteReadError>(bytes).getBE(UInt64.self, at: 0),
              let low = ByteReader<ByteReadError>(bytes).getBE(UInt64.self, at: 8) else { return nil }
        self.high = high
        self.low = low
    }

    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: Limits.duplicateKeyBytes)
        w.writeBE(high)
        w.writeBE(low)
        return w.bytes
    }

    public var hex: String { Hex.encode(bytes) }

    public var description: String { hex }
    public static func < (l: DuplicateKey, r: DuplicateKey) -> Bool { (l.high, l.low) < (r.high, r.low) }

    /// The key folded to one word for hashing (`low` times an odd constant, a bijection, so keys
    /// with equal halves still spread): the fold's payment-code groups are keyed by it, and one
    /// seeded SipHash of 8 bytes (`UInt64._rawHashValue(seed:)`) costs less than a streaming
    /// hasher fed two words. A key is an HMAC output, so its halves are uniform: keys sharing a
    /// folded word only share a probe sequence (equality stays field by field), and the many a
    /// table would slow on are beyond reach (k keys on one word take about 2^(64(k-1)/k) tries,
    /// by someone holding the merchant key).
    @inline(__always)
    var hashWord: UInt64 { high ^ (low &* 0x9E37_79B9_7F4A_7C15) }

    public func hash(into hasher: inout Hasher) { hasher.combine(hashWord) }
    // Consistent with `hash(into:)`: UInt64's one-shot hash equals a hasher fed the same word.
    public func _rawHashValue(seed: Int) -> Int { hashWord._rawHashValue(seed: seed) }
}
