import Crypto
import PosTestSupport
import Testing
@testable import PosLedger

@Suite("Payment codes")
struct PaymentCodeTests {
    @Test("wallet is recognised from the code's shape")
    func walletRecognition() throws {
        #expect(try PaymentCode("101234567890123456").wallet == .wechatPay)
        #expect(try PaymentCode("151234567890123456").wallet == .wechatPay)
        #expect(try PaymentCode("2512345678901234").wallet == .alipay)
        #expect(try PaymentCode("301234567890123456789012").wallet == .alipay)
    }

    @Test("other shapes are rejected with a clear error")
    func walletRejection() {
        for text in ["161234567890123456",  // 18 digits, prefix 16
                     "10123456789012345",  // 17 digits, WeChat prefix
                     "251234567890123",  // 15 digits
                     "3112345678901234",  // prefix 31
                     "2512345678901234567890123",  // 25 digits
                     "12-4567890123456789", ""] {
            do {
                _ = try PaymentCode(text)
                Issue.record("accepted \(text.count) chars")
            } catch {
                #expect(error.code == .unknownWallet || error.code == .invalidPaymentCode)
                #expect(error.field == "paymentCode")
                #expect(!error.message.isEmpty)
            }
        }
    }

    @Test("a payment code never appears in clear in descriptions, dumps or error messages")
    func neverInClear() throws {
        let clear = "134567890123456789"
        let code = try PaymentCode(clear)
        let capture = try SaleCapture(amount: Sample.money(100), paymentCode: code, merchantKey: Sample.merchantKey)
        let event = Event(dot: Sample.dot(Sample.t1, 1), hlc: Sample.hlc(0), context: VersionVector(),
                          body: .saleCaptured(capture))
        var dumped = ""
        dump(event, to: &dumped)
        var dumpedCode = ""
        dump(code, to: &dumpedCode)
        var outputs = ["\(code)", String(describing: code), String(reflecting: code), code.description,
                       code.debugDescription, "\(capture)", String(reflecting: capture), "\(event)",
                       String(reflecting: event), String(describing: event.body), String(reflecting: event.body), dumped, dumpedCode, "\([code])", "\(Optional(code) as Any)"]
        // Errors about codes: a wrong wallet for a code, an unknown shape of the same digits.
        do {
            _ = try SaleCapture(amount: Sample.money(100), wallet: .alipay, duplicateKey: capture.duplicateKey,
                                paymentCode: code)
        } catch { outputs += [error.message, error.description, "\(error)"] }
        let unknownShape = "99" + clear.dropFirst(2)
        do { _ = try PaymentCode(unknownShape) } catch { outputs += [error.message, "\(error)"] }
        for text in outputs {
            #expect(!text.contains(clear), "clear code leaked: \(text.count) chars")
            #expect(!text.contains(unknownShape), "clear code leaked in an error")
            #expect(!text.contains("4567890123"), "middle digits leaked")
        }
        #expect(code.masked == "13************6789")
        #expect(code.revealedDigits() == clear)
    }

    @Test("duplicate key: same code and merchant key give the same 16 bytes; another key differs")
    func duplicateKey() throws {
        let a = Sample.wechatCode.duplicateKey(merchantKey: Sample.merchantKey)
        let b = try PaymentCode("134567890123456789").duplicateKey(merchantKey: MerchantKey(bytes: Array(0..<32)))
        #expect(a == b)
        #expect(a.bytes.count == 16)
        #expect(a != Sample.wechatCode.duplicateKey(merchantKey: MerchantKey(bytes: Array(1..<33))))
        #expect(a != Sample.alipayCode.duplicateKey(merchantKey: Sample.merchantKey))
        #expect(DuplicateKey(bytes: a.bytes) == a)
        // HMAC-SHA256(key 00..1f, "134567890123456789") truncated to 16 bytes, pinned (Python's hmac module).
        #expect(a.hex == "713578b9995a9772ac199d9f86d5a438")
    }

    @Test("duplicate key is swift-crypto's HMAC-SHA256 for random codes and keys of every length class")
    func duplicateKeyIsHMAC() throws {
        let seed = TestSeed("duplicateKeyIsHMAC", replays: "the codes and keys")
        var rng = SplitMix64(seed: seed.value)
        // Key lengths below, at and above SHA-256's 64-byte block (a longer key is hashed first).
        for keyBytes in [1, 16, 32, 63, 64, 65, 200] {
            for _ in 0..<20 {
                let key = (0..<keyBytes).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                let merchantKey = MerchantKey(bytes: key)
                let wechat = Bool.random(using: &rng)
                let length = wechat ? 18 : Int.random(in: 16...24, using: &rng)
                let prefix = wechat ? Int.random(in: 10...15, using: &rng) : Int.random(in: 25...30, using: &rng)
                let digits = String(prefix) + String((2..<length).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) })
                let code = try PaymentCode(digits)
                let expected = Array(HMAC<SHA256>.authenticationCode(for: Array(digits.utf8), using: SymmetricKey(data: key)).prefix(16))
                // Twice with the same key: deriving one must not change the key's state.
                #expect(code.duplicateKey(merchantKey: merchantKey).bytes == expected, "\(seed.replay): key of \(keyBytes) bytes")
                #expect(code.duplicateKey(merchantKey: merchantKey).bytes == expected, "\(seed.replay): key of \(keyBytes) bytes, second use")
            }
        }
    }
}
