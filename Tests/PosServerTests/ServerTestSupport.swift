import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PosTestSupport
import Testing
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosHTTPClient
@testable import PosJournal
@testable import PosLedger
@testable import PosServer
@testable import PosTerminal
@testable import PosWire

/// Wall clock for tests: 2026-07-25, advanced by hand.
let baseMillis: Int64 = 1_785_000_000_000

func cny(_ minor: Int64) -> Money { Money(minorUnits: minor, currency: .CNY) }

func paymentCode(_ rng: inout SplitMix64) -> PaymentCode {
    try! PaymentCode("13" + (0..<16).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined())
}

/// A central store behind a sync server, and terminals of one merchant, each in its own directory.
final class ServerWorld: @unchecked Sendable {
    let dir: TempDir
    let central: CentralHandler
    let service: SyncService
    var terminals: [TerminalReplica] = []
    var enrollments: [Enrollment] = []
    private let lock = NSLock()
    private var nowValue = baseMillis

    /// `inMemory`: the stores in /dev/shm where there is one (fsync costs nothing there), for tests
    /// that sync thousands of times and are about the network, not the disk.
    init(terminals count: Int, merchant: String = "shop", settings: SyncServerSettings = SyncServerSettings(), inMemory: Bool = false) throws {
        dir = inMemory && FileManager.default.isWritableFile(atPath: "/dev/shm") ? TempDir("server", base: "/dev/shm") : TempDir("server")
        central = try FileCentralStore.create(directory: dir.path + "/central")
        service = SyncService(handler: central, settings: settings)
        for i in 0..<count {
            let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(i + 1)), merchant: merchant)
            enrollments.append(e)
            terminals.append(try TerminalReplica.initialize(directory: dir.path + "/t\(i + 1)", enrollment: e))
        }
    }

    func tick(_ millis: Int64 = 1000) -> Int64 { lock.withLock { nowValue += millis; return nowValue } }

    func application(host: String = "127.0.0.1", port: Int = 0) -> some ApplicationProtocol {
        buildApplication(service: service, host: host, port: port, logger: Logger(label: "test.server", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    @discardableResult
    func capture(_ i: Int, _ minor: Int64, rng: inout SplitMix64) throws -> SaleId {
        let t = terminals[i]
        let e = try t.record(.saleCaptured(try SaleCapture(amount: cny(minor), paymentCode: paymentCode(&rng), merchantKey: t.enrollment.ledgerMerchantKey)), wallMillis: tick())
        return SaleId(e.dot)
    }

    func requestRefund(_ i: Int, sale: SaleId, saleMinor: Int64, _ minor: Int64) throws -> TicketId {
        let request = try RefundRequest(sale: sale, saleAmount: cny(saleMinor), amount: cny(minor), reason: .wrongSize, resolution: .refund, contact: nil)
        return TicketId(try terminals[i].record(.refundRequested(request), wallMillis: tick()).dot)
    }

    /// The authentication key of terminal index `i`.
    func authKey(_ i: Int) -> SymmetricKey { KeyDerivation.terminalAuthKey(secret: enrollments[i].secret, terminal: enrollments[i].terminal) }

    func hello(_ i: Int) -> SyncMessage {
        let t = terminals[i]
        return .hello(.init(central: central.centralID, terminal: t.terminal, knowledge: t.knowledge, pullCursor: 0, wallMillis: tick(),
                            acknowledged: 0, epoch: 0, cursorDigest: 0))
    }
}

/// The memory bounds of the server tests hold for a normal build. Under ThreadSanitizer
/// (tools/tsan.sh sets POSSYNC_SANITIZER=thread) the same work takes several times the
/// memory for its shadow state (3.4x and 3.7x the growth in this suite's first run),
/// so the bounds are multiplied by this.
let memoryBoundFactor = ProcessInfo.processInfo.environment["POSSYNC_SANITIZER"] == "thread" ? 8 : 1

/// Runs blocking work (a terminal's sync over HTTP) on its own thread, off Swift's cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        let thread = Thread {
            do { c.resume(returning: try body()) } catch { c.resume(throwing: error) }
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// A request to the messages endpoint, signed as terminal index `i` would sign it (the parts can be altered by the caller).
struct SignedRequest {
    var path: String
    var body: [UInt8]
    var headers: HTTPFields

    init(world: ServerWorld, terminal i: Int, nonce: String, message: SyncMessage, key: SymmetricKey? = nil,
         signedPath: String? = nil, signedBody: [UInt8]? = nil, headerTerminal: UInt32? = nil) {
        let t = world.enrollments[i].terminal
        path = HTTPSync.messagePath(terminal: t)
        body = message.encoded()
        let mac = HTTPSync.mac(key: key ?? world.authKey(i), method: "POST", path: signedPath ?? path, body: signedBody ?? body, nonce: nonce)
        var h = HTTPFields()
        h[.contentType] = HTTPSync.contentType
        h[.authorization] = HTTPSync.authorization(terminal: (try? ReplicaId.terminal(headerTerminal ?? t.rawValue)) ?? t, nonce: nonce, mac: mac)
        headers = h
    }
}

extension TestClientProtocol {
    func nonce(_ terminal: ReplicaId) async throws -> String {
        let r = try await execute(uri: HTTPSync.noncePath(terminal: terminal), method: .post)
        guard r.status == .noContent, let n = r.headers[HTTPField.Name(HTTPSync.nonceHeader)!] else {
            throw SyncError(.malformed, "nonce request answered \(r.status)")
        }
        return n
    }

    func send(_ r: SignedRequest) async throws -> TestResponse {
        try await execute(uri: r.path, method: .post, headers: r.headers, body: ByteBuffer(bytes: r.body))
    }
}

extension TestResponse {
    var message: SyncMessage? { try? SyncMessage.decode(Array(body.readableBytesView)) }
    var refusal: SyncMessage.Refusal? { if case .refusal(let r) = message { r } else { nil } }
}
