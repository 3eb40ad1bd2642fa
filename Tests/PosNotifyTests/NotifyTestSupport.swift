import Foundation
import PosTestSupport
import Testing
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosLedger
@testable import PosNotify
@testable import PosTerminal
@testable import PosWire

let customerPhone = "+8613800138000"

func cny(_ minor: Int64) -> Money { Money(minorUnits: minor, currency: .CNY) }

/// Central (the embedded store) and terminals of one merchant, on a clock moved by hand.
final class NotifyWorld: @unchecked Sendable {
    let dir = TempDir("notify")
    let clock = FixedClock()
    var central: CentralHandler
    var terminals: [TerminalReplica] = []
    private var codes = SplitMix64(seed: 7)

    var centralDirectory: String { dir.path + "/central" }
    var logDirectory: String { DeliveryLog.directory(ofCentral: centralDirectory) }

    init(terminals count: Int = 2) throws {
        central = try FileCentralStore.create(directory: dir.path + "/central", environment: CentralEnvironment(wallMillis: clock.reading))
        for i in 1...count {
            let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(i)), merchant: "shop")
            terminals.append(try TerminalReplica.initialize(directory: dir.path + "/t\(i)", enrollment: e))
        }
    }

    func tick() -> Int64 { clock.advance(by: 1000) }

    /// A sale captured at terminal `i`, synced and confirmed by central.
    func confirmedSale(_ i: Int, _ minor: Int64) throws -> SaleId {
        let t = terminals[i]
        let code = try PaymentCode("13" + (0..<16).map { _ in String(Int.random(in: 1...9, using: &codes)) }.joined())
        let e = try t.record(.saleCaptured(try SaleCapture(amount: cny(minor), paymentCode: code, merchantKey: t.enrollment.ledgerMerchantKey)), wallMillis: tick())
        try sync(i)
        try central.record(.saleConfirmed(SaleId(e.dot)), wallMillis: tick())
        return SaleId(e.dot)
    }

    /// A refund ticket opened at terminal `i` (not synced).
    func ticket(_ i: Int, sale: SaleId, saleMinor: Int64, _ minor: Int64, contact: CustomerContact?) throws -> TicketId {
        let request = try RefundRequest(sale: sale, saleAmount: cny(saleMinor), amount: cny(minor), reason: .wrongSize, resolution: .refund, contact: contact)
        return TicketId(try terminals[i].record(.refundRequested(request), wallMillis: tick()).dot)
    }

    /// A world with a confirmed sale of 120.00 CNY at terminal 1 and, opened at terminal 2 and synced to
    /// central, one refund ticket of `minor` per contact, in order.
    static func withTickets(_ contacts: [CustomerContact?] = [sms()], minor: Int64 = 1_000) throws -> (NotifyWorld, [TicketId]) {
        let w = try NotifyWorld()
        let sale = try w.confirmedSale(0, 12_000)
        let tickets = try contacts.map { try w.ticket(1, sale: sale, saleMinor: 12_000, minor, contact: $0) }
        try w.sync(1)
        return (w, tickets)
    }

    func sync(_ i: Int) throws { _ = try terminals[i].sync(via: InProcessTransport(central: central), wallMillis: tick()) }

    /// Central's own decision or completion.
    @discardableResult
    func record(_ body: EventBody) throws -> Event { try central.record(body, wallMillis: tick()) }

    func dispatcher(_ notifier: any Notifier, settings: NotificationSettings = NotificationSettings(),
                    onOutcome: (@Sendable (String) -> Void)? = nil) throws(SyncError) -> NotificationDispatcher {
        try NotificationDispatcher(handler: central, directory: logDirectory, notifier: notifier, settings: settings, onOutcome: onOutcome)
    }

    func reopenCentral() throws {
        try central.close()
        central = try FileCentralStore.open(directory: centralDirectory, environment: CentralEnvironment(wallMillis: clock.reading))
    }
}

func sms(_ phone: String = customerPhone) -> CustomerContact { try! CustomerContact(channel: .sms, address: phone) }

/// Records every delivery and answers as told: what a gateway would see, without a network.
final class RecordingNotifier: Notifier, @unchecked Sendable {
    private let lock = NSLock()
    private var sent: [(notification: CustomerNotification, attempt: Int)] = []
    var answer: @Sendable (CustomerNotification, Int) -> DeliveryOutcome
    /// Called during a delivery, before it answers (a crash is simulated here).
    var during: (@Sendable (CustomerNotification) -> Void)?

    init(answer: @escaping @Sendable (CustomerNotification, Int) -> DeliveryOutcome = { _, _ in .delivered(detail: "ok") }) { self.answer = answer }

    var destination: String { "test recorder" }
    var deliveries: [(notification: CustomerNotification, attempt: Int)] { lock.withLock { sent } }
    var ids: [String] { deliveries.map(\.notification.id) }

    func deliver(_ notification: CustomerNotification, body: [UInt8], attempt: Int) -> DeliveryOutcome {
        #expect(body == notification.body)
        lock.withLock { sent.append((notification, attempt)) }
        during?(notification)
        return answer(notification, attempt)
    }

    func close() {}
}

/// Runs blocking work (a pass: HTTP requests, fsyncs) on a thread of its own, off the concurrency pool.
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
        Thread { done.resume(with: Result { try work() }) }.start()
    }
}

/// Copies a directory tree (the log as it stood at a crash).
func copyTree(_ from: String, to: String) throws {
    if FileManager.default.fileExists(atPath: to) { try FileManager.default.removeItem(atPath: to) }
    try FileManager.default.copyItem(atPath: from, toPath: to)
}

/// The JSON lines of a file, decoded.
func jsonLines(_ path: String) throws -> [[String: Any]] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return try text.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
}
