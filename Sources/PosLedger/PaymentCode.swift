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
    public func duplicateKey(merchantKey: MerchantKey) -> DuplicateKey {
        let ascii = digits.map { $0 + 48 }
        let mac = ascii.withUnsafeBytes { merchantKey.box.authenticationCode(for: $0) }
        return DuplicateKey(bytes: Array(mac.prefix(Limits.duplicateKeyBytes)))!
    }
}

/// The merchant-wide key issued at enrollment that keys duplicate detection.
public struct MerchantKey: Sendable, CustomStringConvertible {
    let keyBytes: [UInt8]
    /// Built once: every version-2 capture decoded derives its duplicate key with it.
    let box: KeyBox
    var key: SymmetricKey { box.key }
    public init(bytes: [UInt8]) {
        keyBytes = bytes
        box = KeyBox(key: SymmetricKey(data: bytes))
    }

    /// The key, and HMAC-SHA256 (RFC 2104) keyed with it once: the hash states after
    /// the inner and outer padded key blocks, copied for each code. Keying (two
    /// SHA-256 blocks) was half of what deriving a duplicate key cost, and every
    /// version-2 capture decoded derives one. SymmetricKey and the hash states are
    /// immutable here once built but not marked Sendable.
    final class KeyBox: @unchecked Sendable {
        let key: SymmetricKey
        private let inner: SHA256
        private let outer: SHA256
        init(key: SymmetricKey) {
            self.key = key
            let blockBytes = SHA256.blockByteCount
            var k = key.withUnsafeBytes { Array($0) }
            if k.count > blockBytes { k = Array(SHA256.hash(data: k)) }
            k += [UInt8](repeating: 0, count: blockBytes - k.count)
            var i = SHA256(), o = SHA256()
            k.map { $0 ^ 0x36 }.withUnsafeBytes { i.update(bufferPointer: $0) }
            k.map { $0 ^ 0x5c }.withUnsafeBytes { o.update(bufferPointer: $0) }
            inner = i
            outer = o
        }

        /// HMAC-SHA256 of `message` under the key (the same bytes as `HMAC<SHA256>.authenticationCode`).
        func authenticationCode(for message: UnsafeRawBufferPointer) -> [UInt8] {
            var i = inner
            i.update(bufferPointer: message)
            var o = outer
            i.finalize().withUnsafeBytes { o.update(bufferPointer: $0) }
            return o.finalize().withUnsafeBytes { Array($0) }
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

    public init?(bytes: [UInt8]) {
        guard bytes.count == Limits.duplicateKeyBytes else { return nil }
        guard let high = ByteReader<ByteReadError>(bytes).getBE(UInt64.self, at: 0),
              let low = ByteReader<ByteReadError>(bytes).getBE(UInt64.self, at: 8) else { return nil }
        self.high = high
        self.low = low
    }

    public var bytes: [UInt8] { ByteWriter.be(high) + ByteWriter.be(low) }

    public var hex: String { Hex.encode(bytes) }

    public var description: String { hex }
    public static func < (l: DuplicateKey, r: DuplicateKey) -> Bool { (l.high, l.low) < (r.high, r.low) }
}
