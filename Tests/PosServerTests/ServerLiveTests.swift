import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOPosix
import PosTestSupport
import Testing
@testable import PosCentral
@testable import PosHTTPClient
@testable import PosJournal
@testable import PosLedger
@testable import PosServer
@testable import PosTerminal
@testable import PosWire

/// The whole protocol over loopback: a live server, terminals syncing through the HTTP client.
@Suite("server over loopback")
struct ServerLiveTests {
    @Test("three terminals sync over HTTP: pushes, pulls, refunds and central's decisions; every replica ends with central's state")
    func wholeProtocol() async throws {
        let world = try ServerWorld(terminals: 3)
        var rng = SplitMix64(seed: 31)
        var sales: [(Int, SaleId)] = []
        for i in 0..<3 { for _ in 0..<4 { sales.append((i, try world.capture(i, 2500, rng: &rng))) } }
        let ticket = try world.requestRefund(0, sale: sales[0].1, saleMinor: 2500, 1000)
        let confirmed = sales[1].1
        try await world.application().test(.live) { client in
            let server = "http://127.0.0.1:\(client.port!)"
            func syncAll() async throws {
                for i in 0..<3 {
                    let w = world
                    _ = try await blocking {
                        let transport = try HTTPSyncTransport(server: server, enrollment: w.enrollments[i])
                        defer { transport.close() }
                        return try w.terminals[i].sync(via: transport, wallMillis: w.tick(), pushBatchBytes: transport.settings.pushBatchBytes).pushed
                    }
                }
            }
            try await syncAll()
            try world.central.record(.refundApproved(ticket, .originalPayment), wallMillis: world.tick())
            try world.central.record(.saleConfirmed(confirmed), wallMillis: world.tick())
            try await syncAll()
            try await syncAll()
        }
        let central = try world.central.state
        #expect(central.sales.count == 12)
        #expect(central.tickets[ticket]?.status == .approved)
        for (i, t) in world.terminals.enumerated() {
            #expect(t.state.canonicalText == central.canonicalText, "terminal \(i + 1) differs from central")
        }
    }

    @Test("a backlog larger than a batch moves in many small requests; pulled the same as in-process")
    func smallBatches() async throws {
        let world = try ServerWorld(terminals: 2)
        var rng = SplitMix64(seed: 37)
        for _ in 0..<300 { try world.capture(0, 100, rng: &rng) }
        try await world.application().test(.live) { client in
            let server = "http://127.0.0.1:\(client.port!)"
            let w = world
            let report = try await blocking {
                let transport = try HTTPSyncTransport(server: server, enrollment: w.enrollments[0])
                defer { transport.close() }
                return try w.terminals[0].sync(via: transport, wallMillis: w.tick(), pushBatchBytes: 1536)
            }
            #expect(report.pushed == 300)
            #expect(report.pushBatches > 5, "\(report)")
            let pulled = try await blocking {
                let transport = try HTTPSyncTransport(server: server, enrollment: w.enrollments[1])
                defer { transport.close() }
                return try w.terminals[1].sync(via: transport, wallMillis: w.tick()).pulled
            }
            #expect(pulled == 300)
        }
        #expect(world.terminals[1].state.canonicalText == world.terminals[0].state.canonicalText)
    }

    @Test("a revoked terminal's sync fails with `revoked`; nothing it queued is taken")
    func revokedClient() async throws {
        let world = try ServerWorld(terminals: 1)
        var rng = SplitMix64(seed: 41)
        try world.capture(0, 100, rng: &rng)
        try world.central.revoke(terminal: world.enrollments[0].terminal, note: "revoked in a test")
        try await world.application().test(.live) { client in
            let server = "http://127.0.0.1:\(client.port!)"
            let w = world
            let outcome = try await blocking { () -> String in
                let transport = try HTTPSyncTransport(server: server, enrollment: w.enrollments[0])
                defer { transport.close() }
                do { _ = try w.terminals[0].sync(via: transport, wallMillis: w.tick()); return "synced" } catch let error as SyncError { return "\(error.code): \(error.message)" }
            }
            #expect(outcome.hasPrefix("revoked:"), "\(outcome)")
        }
        #expect(world.central.head == 0)
    }

    @Test("no server listening: the client tries attemptsMax times with backoff, then fails with io naming the server")
    func serverDown() async throws {
        let world = try ServerWorld(terminals: 1)
        // A port nothing listens on: bind one, note it, close it.
        let port = try await freePort()
        var settings = HTTPClientSettings()
        settings.attemptsMax = 3
        settings.connectTimeoutMillis = 300  // the client's pool keeps trying to connect until then
        settings.backoffBaseMillis = 20
        settings.backoffMaxMillis = 50
        let s = settings
        let w = world
        let started = Date()
        let outcome = try await blocking { () -> String in
            let transport = try HTTPSyncTransport(server: "http://127.0.0.1:\(port)", enrollment: w.enrollments[0], settings: s)
            defer { transport.close() }
            do { _ = try w.terminals[0].sync(via: transport, wallMillis: w.tick()); return "synced" } catch let error as SyncError {
                return "\(error.code) \(error.location ?? "") \(error.message) requests=\(transport.requestsSent)"
            }
        }
        #expect(outcome.hasPrefix("io http://127.0.0.1:\(port)"), "\(outcome)")
        #expect(outcome.contains("no reply after 3 tries"), "\(outcome)")
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test("a connection that sends nothing, or one byte at a time, is closed after requestArrivalMillisMax; others are served meanwhile")
    func slowClients() async throws {
        var s = SyncServerSettings()
        s.requestArrivalMillisMax = 500
        let world = try ServerWorld(terminals: 1, settings: s)
        try await world.application().test(.live) { client in
            let port = client.port!
            let closedAfter = try await blocking { () -> [Double] in
                let idle = try LoopbackSocket(port: port)
                let slow = try LoopbackSocket(port: port)
                let started = Date()
                var closed: [Int: Double] = [:]
                let request = Array("POST /v1/terminals/1/nonce HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".utf8)
                var sent = 0
                while closed.count < 2, Date().timeIntervalSince(started) < 5 {
                    if sent < request.count, slow.send([request[sent]]) { sent += 1 }
                    for (i, sock) in [idle, slow].enumerated() where closed[i] == nil && sock.isClosedByPeer(waitMillis: 100) {
                        closed[i] = Date().timeIntervalSince(started)
                    }
                }
                return [closed[0] ?? -1, closed[1] ?? -1]
            }
            #expect(closedAfter[0] >= 0.4 && closedAfter[0] < 2.5, "idle connection closed after \(closedAfter[0]) s")
            #expect(closedAfter[1] >= 0.4 && closedAfter[1] < 2.5, "slow connection closed after \(closedAfter[1]) s")
            // The test client's own connection idled past the limit too: a new connection is served.
            let health = try await blocking { () -> String in
                try LoopbackSocket(port: port).exchange("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", waitMillis: 2000)
            }
            #expect(health.hasPrefix("HTTP/1.1 200"), "\(health)")
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
func freePort() async throws -> Int {
    let channel = try await ServerBootstrapHelper.bindEphemeral()
    let port = channel.localAddress!.port!
    try await channel.close()
    return port
}

enum ServerBootstrapHelper {
    static func bindEphemeral() async throws -> any Channel {
        try await NIOPosix.ServerBootstrap(group: NIOPosix.MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
    }
}
