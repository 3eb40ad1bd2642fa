import Testing
import PosApp
import PosLedger

@Suite("Simulated acquirer rules")
struct AcquirerTests {
    let capture: Int64 = 1_772_409_600_000
    let sale = SaleId(try! Dot(replica: try! ReplicaId.terminal(1), seq: 1))

    func request(code: String, after millis: Int64) throws -> ForwardRequest {
        let pc = try PaymentCode(code)
        return ForwardRequest(sale: sale, amount: Money(minorUnits: 1250, currency: .CNY), wallet: pc.wallet, paymentCode: pc,
                              capturedMillis: capture, forwardedMillis: capture + millis)
    }

    @Test("confirmed within the window when the code does not end in 0")
    func confirmed() throws {
        let a = try SimulatedAcquirer()
        #expect(try a.forward(request(code: "134567890123456787", after: WallClock.hourMillis)).outcome == .confirmed)
        #expect(try a.forward(request(code: "134567890123456781", after: 72 * WallClock.hourMillis)).outcome == .confirmed)  // exactly 72 h: still in
    }

    @Test("declined when the code's last digit is 0")
    func declined() throws {
        let d = try SimulatedAcquirer().forward(request(code: "134567890123456780", after: 0))
        #expect(d.outcome == .declined)
        #expect(!d.reason.contains("134567890123456780"))  // never the code in clear
    }

    @Test("expired when forwarded later than the window, whatever the code")
    func expired() throws {
        let a = try SimulatedAcquirer()
        #expect(try a.forward(request(code: "134567890123456787", after: 72 * WallClock.hourMillis + 1)).outcome == .expired)
        #expect(try a.forward(request(code: "134567890123456780", after: 100 * WallClock.hourMillis)).outcome == .expired)
        let short = try SimulatedAcquirer(expiryHours: 1)
        #expect(try short.forward(request(code: "134567890123456787", after: WallClock.hourMillis + 1)).outcome == .expired)
    }

    @Test("the window is bounded")
    func bounds() {
        #expect(throws: AppError.self) { try SimulatedAcquirer(expiryHours: 0) }
        #expect(throws: AppError.self) { try SimulatedAcquirer(expiryHours: SimulatedAcquirer.expiryHoursMax + 1) }
    }
}
