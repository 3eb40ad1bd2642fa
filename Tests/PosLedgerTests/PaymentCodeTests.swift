import Foundation
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

    @Test("the merchant key's HMAC, keyed once, gives RFC 4231's HMAC-SHA256 values (a key of a block, shorter, longer)")
    func keyedOnceHMAC() {
        func mac(_ key: [UInt8], _ message: String) -> String {
            let digest = Array(message.utf8).withUnsafeBytes { MerchantKey(bytes: key).box.authenticationCode(for: $0) }
            return digest.map { String(format: "%02x", $0) }.joined()
        }
        // RFC 4231 test cases 1 and 6; a key of exactly one block (64 bytes) from Python's hmac module.
        #expect(mac([UInt8](repeating: 0x0b, count: 20), "Hi There") == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(mac([UInt8](repeating: 0xaa, count: 131), "Test Using Larger Than Block-Size Key - Hash Key First")
            == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        #expect(mac([UInt8](repeating: 0x01, count: 64), "123") == "db6a41243817924a0e88d30f5b14cf1e1dccaea1ddeb920f0db49f056873222a")
        // The same key used twice gives the same code (the keyed states are copied, never consumed).
        let key = MerchantKey(bytes: Array(0..<32))
        let once = Sample.wechatCode.duplicateKey(merchantKey: key)
        #expect(Sample.wechatCode.duplicateKey(merchantKey: key) == once)
    }
}
