import Foundation
import PosTestSupport
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
import PosCentralPostgres
@testable import PosTerminal
@testable import PosWire

/// Wall clock for tests: 2026-07-25, advanced by hand.
let baseMillis: Int64 = 1_785_000_000_000

/// The tests' seeded generator (PosLedger's SplitMix64).
typealias Rng = SplitMix64
extension SplitMix64 {
    init(state: UInt64) { self.init(seed: state) }
}

func wechatCode(_ rng: inout Rng) -> PaymentCode {
    try! PaymentCode("13" + (0..<16).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined())
}

func cny(_ minor: Int64) -> Money { Money(minorUnits: minor, currency: .CNY) }

/// A push of `records` (the terminal's, numbered from `firstSequence`) sealed as the terminal seals them, in
/// frames of at most 100 records, each chained to the one before (`chain`: the checksum of the last frame
/// the terminal sealed, updated).
func pushMessage(_ e: Enrollment, _ records: [[UInt8]], firstSequence: UInt64, chain: inout UInt32) throws -> SyncMessage {
    let sealer = FrameSealer(dictionary: ledgerDictionary, key: e.journalKey)
    var frames: [[UInt8]] = []
    for start in stride(from: 0, to: records.count, by: 100) {
        let sealed = try sealer.seal(Array(records[start..<min(start + 100, records.count)]), firstSequence: firstSequence + UInt64(start), previousChecksum: chain)
        frames.append(sealed.bytes)
        chain = sealed.header.checksum
    }
    return .push(.init(terminal: e.terminal, dictionaryID: ledgerDictionary.id, keyID: e.journalKey.id, frames: frames))
}

/// Captures of `terminals` terminals of one merchant, `perTerminal` each, pushed in 100-event frames; one code
/// in `sharedCodeOneIn` is an earlier capture's (of any terminal), so duplicates cross batches, pushes and runs.
/// Returns the merchant's key and the terminals.
func pushCaptures(_ central: CentralHandler, terminals: Int, perTerminal: Int, sharedCodeOneIn: Int, _ rng: inout Rng) throws -> (MerchantKey, [ReplicaId]) {
    var codes: [PaymentCode] = []
    var merchantKey: MerchantKey?
    var ids: [ReplicaId] = []
    for t in 1...terminals {
        let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(t)), merchant: "m")
        merchantKey = e.ledgerMerchantKey
        ids.append(e.terminal)
        var records: [[UInt8]] = []
        for s in 1...UInt64(perTerminal) {
            let code = !codes.isEmpty && Int.random(in: 0..<sharedCodeOneIn, using: &rng) == 0 ? codes[Int.random(in: 0..<codes.count, using: &rng)] : wechatCode(&rng)
            codes.append(code)
            let capture = try SaleCapture(amount: cny(Int64.random(in: 100...99_999, using: &rng)), paymentCode: code, merchantKey: e.ledgerMerchantKey)
            records.append(RecordCodec.encode(Event(dot: try Dot(replica: e.terminal, seq: s), hlc: HLCTimestamp(millis: UInt64(baseMillis) + s * 1000, logical: 0),
                                                    context: VersionVector(), body: .saleCaptured(capture))))
        }
        var chain: UInt32 = 0
        let reply = central.handle(try pushMessage(e, records, firstSequence: 1, chain: &chain))
        guard case .ack = reply else { throw SyncError(.malformed, "push of terminal \(t) refused: \(reply)") }
    }
    return (merchantKey!, ids)
}

/// Makes a file central merge its snapshot runs at the flush, on the calling thread, as before merges ran on a
/// second thread (same schedule, same runs): for tests that count the file system's operations or fail the next
/// one, which a merge under way would take. Returns the storage.
@discardableResult
func mergeAtTheFlush(_ central: CentralHandler) throws -> FileCentralStorage {
    try central.withStorage { (storage) throws(SyncError) -> FileCentralStorage in
        let files = storage as! FileCentralStorage
        files.mergesInBackground = false
        _ = files.snapshotStatistics  // and merges under way end
        return files
    }
}

/// Which storage central runs on in a test.
enum CentralKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case files, postgres
    var testDescription: String { rawValue }

    /// The PostgreSQL server to test on, or nil (a skip, printed, for `.postgres` without POSSYNC_TEST_POSTGRES).
    func available(for test: String) -> Bool {
        self == .files || PostgresTestDatabase.server(for: test) != nil
    }
}

/// A central store and terminals of one merchant, each in its own directory
/// (central in a database of its own on PostgreSQL).
final class World {
    let dir = TempDir("world")
    var central: CentralHandler
    var terminals: [TerminalReplica] = []
    /// The tests' wall clock (`now`); central reads it too when the world was made with `centralOnWorldClock`.
    let clock = FixedClock(baseMillis)
    var now: Int64 {
        get { clock.millis }
        set { clock.advance(by: newValue - clock.millis) }
    }
    let snapshotEvents: Int
    /// Central's database (nil: the file store under `dir`).
    let postgres: PostgresURL?
    let environment: CentralEnvironment

    /// `centralOnWorldClock`: central's wall clock is `now` (days pass for central too), else the real clock.
    init(terminals count: Int, merchant: String = "shop", snapshotEvents: Int = SyncLimits.centralSnapshotEventsDefault,
         store: CentralKind = .files, centralOnWorldClock: Bool = false) throws {
        self.snapshotEvents = snapshotEvents
        environment = centralOnWorldClock ? CentralEnvironment(wallMillis: clock.reading) : CentralEnvironment()
        if store == .postgres, let server = PostgresTestDatabase.server(for: "a PostgreSQL world") {
            let url = try PostgresTestDatabase.fresh(on: server, label: "world")
            postgres = url
            central = try PostgresCentralStore.create(url: url, environment: environment)
        } else {
            precondition(store == .files, "a PostgreSQL world without POSSYNC_TEST_POSTGRES: check `available(for:)` first")
            postgres = nil
            central = try FileCentralStore.create(directory: dir.path + "/central", environment: environment, snapshotEvents: snapshotEvents)
        }
        for i in 1...count {
            let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(i)), merchant: merchant)
            terminals.append(try TerminalReplica.initialize(directory: dir.path + "/t\(i)", enrollment: e))
        }
    }

    func tick(_ millis: Int64 = 1000) -> Int64 { now += millis; return now }

    func reopenCentral() throws {
        try central.close()
        if let postgres {
            central = try PostgresCentralStore.open(url: postgres, environment: environment)
        } else {
            central = try FileCentralStore.open(directory: dir.path + "/central", environment: environment, snapshotEvents: snapshotEvents)
        }
    }

    func reopenTerminal(_ i: Int) throws {
        try terminals[i].close()
        terminals[i] = try TerminalReplica.open(directory: dir.path + "/t\(i + 1)")
    }

    @discardableResult
    func sync(_ i: Int, transport: (any SyncTransport)? = nil) throws -> TerminalReplica.SyncReport {
        try terminals[i].sync(via: transport ?? InProcessTransport(central: central), wallMillis: tick(10))
    }

    func capture(_ i: Int, _ minor: Int64, code: PaymentCode) throws -> SaleId {
        let t = terminals[i]
        let e = try t.record(.saleCaptured(try SaleCapture(amount: cny(minor), paymentCode: code, merchantKey: t.enrollment.ledgerMerchantKey)), wallMillis: tick())
        return SaleId(e.dot)
    }

    func requestRefund(_ i: Int, sale: SaleId, saleMinor: Int64, _ minor: Int64) throws -> TicketId {
        let request = try RefundRequest(sale: sale, saleAmount: cny(saleMinor), amount: cny(minor), reason: .wrongSize, resolution: .refund, contact: nil)
        return TicketId(try terminals[i].record(.refundRequested(request), wallMillis: tick()).dot)
    }

    /// Syncs every terminal until no sync moves anything (two quiet rounds).
    func syncAll() throws {
        for _ in 0..<3 { for i in terminals.indices { try sync(i) } }
    }
}

/// Fails one exchange: before central sees the request, or after central
/// handled it (the reply is lost).
final class FaultyTransport: SyncTransport {
    enum Fault { case dropRequest, dropReply }
    let inner: InProcessTransport
    let failAt: Int
    let fault: Fault
    private(set) var exchanges = 0
    init(central: any SyncEndpoint, failAt: Int, fault: Fault) {
        inner = InProcessTransport(central: central)
        self.failAt = failAt
        self.fault = fault
    }
    func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
        exchanges += 1
        if exchanges == failAt && fault == .dropRequest { throw SyncError(.io, "link down before exchange \(exchanges)") }
        let reply = try inner.exchange(request)
        if exchanges == failAt && fault == .dropReply { throw SyncError(.io, "link down after exchange \(exchanges)") }
        return reply
    }
}
