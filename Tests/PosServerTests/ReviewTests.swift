import Foundation
import PosBytes
import HTTPTypes
import Hummingbird
import HummingbirdTesting
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

/// Review of the HTTP sync server and client (sync-protocol.md, "HTTP"): each test states what the
/// spec (or the issue) asks for and fails while the build does otherwise.
@Suite("review: HTTP server and client")
struct ServerReviewTests {
    static let nonceField = HTTPField.Name(HTTPSync.nonceHeader)!

    // MARK: - Connections

    @Test("a request whose body arrives after its answer leaves no connection idle past requestArrivalMillisMax")
    func deadlineAfterEarlyAnswer() async throws {
        var s = SyncServerSettings()
        s.requestArrivalMillisMax = 500
        let world = try ServerWorld(terminals: 1, settings: s)
        try await world.application().test(.live) { client in
            let port = client.port!
            let (answer, closed) = try await blocking { () -> (String, Bool) in
                let sock = try LoopbackSocket(port: port)
                // The nonce endpoint ignores its body, so it answers before the body's byte arrives;
                // the body's end then arrives after the answer (the deadline's clock was just started).
                _ = sock.send(Array("POST /v1/terminals/1/nonce HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n".utf8))
                let answer = sock.receive(waitMillis: 2000)
                _ = sock.send(Array("x".utf8))
                // Idle from here on: the server must close it within requestArrivalMillisMax (0.5 s).
                return (answer, sock.isClosedByPeer(waitMillis: 3000))
            }
            #expect(answer.hasPrefix("HTTP/1.1 204"), "\(answer)")
            #expect(closed, "an idle keep-alive connection outlived requestArrivalMillisMax (0.5 s) by 3 s: RequestDeadlineHandler disarmed its clock when the earlier request's end arrived after the answer")
        }
    }

    @Test("413 answered with Connection: close closes the connection (it does not go on reading the body it refused)")
    func tooLargeCloses() async throws {
        let world = try ServerWorld(terminals: 1)
        try await world.application().test(.live) { client in
            let port = client.port!
            let (answer, closed) = try await blocking { () -> (String, Bool) in
                let sock = try LoopbackSocket(port: port)
                _ = sock.send(Array("POST /v1/terminals/1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-possync\r\nContent-Length: 9000000\r\n\r\n".utf8))
                let answer = sock.receive(waitMillis: 2000)
                return (answer, sock.isClosedByPeer(waitMillis: 2000))
            }
            #expect(answer.hasPrefix("HTTP/1.1 413") && answer.lowercased().contains("connection: close"), "\(answer)")
            #expect(closed, "the server said Connection: close on its 413 and kept the connection open 2 s later, waiting to drain the 9 MB body it refused")
        }
    }

    // MARK: - Central's lock seen from the async side

    @Test("GET /health answers while central's handler works on a long request")
    func healthWhileCentralBusy() async throws {
        let world = try ServerWorld(terminals: 1)
        try await world.application().test(.live) { client in
            let port = client.port!
            let (answer, seconds) = try await blocking { () -> (String, Double) in
                let held = HoldLock(world.central.lock, seconds: 3)
                defer { held.join() }
                let sock = try LoopbackSocket(port: port)
                let started = Date()
                _ = sock.send(Array("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
                let answer = sock.receive(waitMillis: 1500)
                return (answer, Date().timeIntervalSince(started))
            }
            #expect(answer.hasPrefix("HTTP/1.1 200"), "no answer to /health within \(seconds) s while central's lock was held (healthRoute reads handler.head under it; the watch daemon's probe then sees the server as down): \(answer)")
        }
    }

    @Test("requests waiting for central do not block the server's threads: /metrics answers meanwhile")
    func metricsWhileRequestsWait() async throws {
        let count = 2 * ProcessInfo.processInfo.activeProcessorCount + 2
        let world = try ServerWorld(terminals: count)
        try await world.application().test(.live) { client in
            let port = client.port!
            var requests: [[UInt8]] = []
            for i in 0..<count {
                let n = try await client.nonce(world.enrollments[i].terminal)
                requests.append(SignedRequest(world: world, terminal: i, nonce: n, message: world.hello(i)).raw)
            }
            let batch = requests
            let (answer, seconds) = try await blocking { () -> (String, Double) in
                let held = HoldLock(world.central.lock, seconds: 3)
                defer { held.join() }
                // Authenticated hellos: each reaches the revocation check (handler.revocation takes central's lock).
                let socks = try batch.map { r -> LoopbackSocket in
                    let s = try LoopbackSocket(port: port)
                    _ = s.send(r)
                    return s
                }
                Thread.sleep(forTimeInterval: 0.3)
                let sock = try LoopbackSocket(port: port)
                let started = Date()
                _ = sock.send(Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
                let answer = sock.receive(waitMillis: 1500)
                let seconds = Date().timeIntervalSince(started)
                withExtendedLifetime(socks) {}
                return (answer, seconds)
            }
            #expect(answer.hasPrefix("HTTP/1.1 200"), "/metrics (which needs no lock) got no answer within \(seconds) s while \(count) authenticated requests waited for central's lock on the server's own threads (authenticate → handler.revocation, NSLock on the async side): \(answer.prefix(200))")
        }
    }

    // MARK: - Nonces

    @Test("a nonce handed to a terminal is not forgotten because someone else asked the open nonce endpoint eight times")
    func nonceFloodByAnyone() async throws {
        let world = try ServerWorld(terminals: 1)
        try await world.application().test(.router) { client in
            let t = world.enrollments[0].terminal
            let mine = try await client.nonce(t)
            // Anyone on the network, without any key: the nonce endpoint needs no authentication.
            for _ in 0..<8 { _ = try await client.nonce(t) }
            let r = try await client.send(SignedRequest(world: world, terminal: 0, nonce: mine, message: world.hello(0)))
            #expect(r.status == .ok, "an unauthenticated caller evicted the terminal's nonce (noncesPerTerminalMax, oldest forgotten): \(r.status) \(String(describing: r.refusal)); after a second 401 the client gives up with notAuthorized and the watch daemon stops for good")
        }
    }

    @Test("a nonce is used up by the first request whose MAC verifies, whatever its outcome after that (403, 422); a request refused before (415, 413, a wrong MAC) leaves it good")
    func nonceUseFollowsAuthentication() async throws {
        var s = SyncServerSettings()
        s.requestBytesMax = 4096
        let world = try ServerWorld(terminals: 2, settings: s)
        try await world.application().test(.router) { client in
            let t = world.enrollments[0].terminal
            for (what, alter) in [("415 (another content type)", { (r: inout SignedRequest) in r.headers[.contentType] = "application/json" }),
                                  ("413 (a body over requestBytesMax)", { (r: inout SignedRequest) in
                                      r.body = [UInt8](repeating: 0, count: 5000)
                                      r.headers[.contentLength] = "5000"
                                  }),
                                  ("401 (the body altered after signing)", { (r: inout SignedRequest) in r.body[r.body.count - 1] ^= 1 })] {
                let n = try await client.nonce(t)
                let good = SignedRequest(world: world, terminal: 0, nonce: n, message: world.hello(0))
                var refused = good
                alter(&refused)
                let first = try await client.send(refused)
                #expect([.unsupportedMediaType, .contentTooLarge, .unauthorized].contains(first.status), "\(what): \(first.status)")
                #expect(first.headers[Self.nonceField] == nil, "\(what): a request that did not authenticate gets no nonce")
                let again = try await client.send(good)
                #expect(again.status == .ok, "\(what): its nonce, never used by an authenticated request, serves the signed request: \(again.status)")
                let replay = try await client.send(good)
                #expect(replay.status == .unauthorized && replay.refusal?.message.contains("used already") == true, "\(what): the replay: \(replay.status) \(String(describing: replay.refusal))")
            }
            // Authenticated, then refused (403: the message names another terminal): the nonce is used up all the same.
            let n = try await client.nonce(t)
            let foreign = try await client.send(SignedRequest(world: world, terminal: 0, nonce: n, message: world.hello(1)))
            #expect(foreign.status == .forbidden)
            let reuse = try await client.send(SignedRequest(world: world, terminal: 0, nonce: n, message: world.hello(0)))
            #expect(reuse.status == .unauthorized, "a nonce named by an authenticated request that was refused: \(reuse.status)")
        }
        #expect(world.central.head == 0)
    }

    @Test("401 answers carry no nonce; an answer to an authenticated request does, 403 included (a message naming another terminal)")
    func nonceOnlyAfterAuthentication() async throws {
        let world = try ServerWorld(terminals: 2)
        try await world.application().test(.router) { client in
            let t = world.enrollments[0].terminal
            let r = try await client.send(SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t), message: world.hello(1)))
            #expect(r.status == .forbidden)
            let next = try #require(r.headers[Self.nonceField], "a 403 to an authenticated request carries the next nonce")
            let ok = try await client.send(SignedRequest(world: world, terminal: 0, nonce: next, message: world.hello(0)))
            #expect(ok.status == .ok, "the nonce a 403 carried serves the next request: \(ok.status)")
            var wrong = SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t), message: world.hello(0))
            wrong.body[0] ^= 1
            let unauthorized = try await client.send(wrong)
            #expect(unauthorized.status == .unauthorized && unauthorized.headers[Self.nonceField] == nil, "\(unauthorized.status)")
        }
    }

    @Test("order of checks: a push naming another terminal is 403 (step 10) before its event count is weighed (step 11)")
    func namedTerminalBeforeEventCount() async throws {
        var s = SyncServerSettings()
        s.eventsPerRequestMax = 1
        let world = try ServerWorld(terminals: 2, settings: s)
        var rng = SplitMix64(seed: 31)
        for _ in 0..<3 { try world.capture(1, 900, rng: &rng) }
        let othersPush = SyncMessage.push(try pushFrames(world, 1))
        try await world.application().test(.router) { client in
            let t = world.enrollments[0].terminal
            let r = try await client.send(SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t), message: othersPush))
            #expect(r.status == .forbidden, "terminal 1 sent terminal 2's push of 3 events: \(r.status) \(String(describing: r.refusal)); sync-protocol.md: step 10 (names another terminal: 403) comes before step 11 (more than eventsPerRequestMax: 413)")
        }
        #expect(world.central.head == 0)
    }

    // MARK: - Authorization header

    @Test("Authorization: exactly the three fields, T in decimal, M in lowercase hex; anything else 401")
    func authorizationStrict() async throws {
        let world = try ServerWorld(terminals: 1)
        try await world.application().test(.router) { client in
            let t = world.enrollments[0].terminal
            let variants: [(String, (String, String) -> String)] = [
                ("a field given twice", { nonce, mac in "PosSync-HMAC-SHA256 terminal=1, nonce=\(nonce), mac=\(mac), mac=\(mac)" }),
                ("terminal=+1", { nonce, mac in "PosSync-HMAC-SHA256 terminal=+1, nonce=\(nonce), mac=\(mac)" }),
                ("the MAC in uppercase hex", { nonce, mac in "PosSync-HMAC-SHA256 terminal=1, nonce=\(nonce), mac=\(mac.uppercased())" }),
            ]
            for (what, header) in variants {
                let n = try await client.nonce(t)
                var r = SignedRequest(world: world, terminal: 0, nonce: n, message: world.hello(0))
                let mac = Hex.encode(HTTPSync.mac(key: world.authKey(0), method: "POST", path: r.path, body: r.body, nonce: n))
                r.headers[.authorization] = header(n, mac)
                let answer = try await client.send(r)
                #expect(answer.status == .unauthorized, "\(what): \(answer.status); sync-protocol.md: exactly these three fields, T in decimal, M 64 lowercase hex digits")
            }
        }
    }

    // MARK: - Client

    @Test("a terminal the server never enrolled: the client stops at the nonce endpoint's 401 (notEnrolled), not after every try as unreachable")
    func clientNotEnrolled() async throws {
        let world = try ServerWorld(terminals: 1)
        let other = try FileCentralStore.create(directory: world.dir.path + "/other-central")
        let stranger = try other.enroll(terminal: try ReplicaId.terminal(7), merchant: "shop")
        var s = HTTPClientSettings()
        s.backoffBaseMillis = 20
        s.backoffMaxMillis = 100
        let settings = s
        try await world.application().test(.live) { client in
            let url = "http://127.0.0.1:\(client.port!)"
            let (code, message, sent) = try await blocking { () -> (SyncError.Code?, String, Int) in
                let transport = try HTTPSyncTransport(server: url, enrollment: stranger, settings: settings)
                defer { transport.close() }
                let hello = SyncMessage.hello(.init(central: stranger.central, terminal: stranger.terminal, knowledge: VersionVector(), pullCursor: 0,
                                                    wallMillis: baseMillis, acknowledged: 0, epoch: 0, cursorDigest: 0))
                do throws(SyncError) {
                    let reply = try transport.exchange(hello)
                    if case .refusal(let r) = reply { return (SyncError.Code(refusal: r.code), r.message, transport.requestsSent) }
                    return (nil, "answered \(reply)", transport.requestsSent)
                } catch {
                    return (error.code, error.description, transport.requestsSent)
                }
            }
            #expect(code == .notEnrolled || code == .notAuthorized, "\(String(describing: code)): \(message)")
            #expect(sent <= 2, "\(sent) requests for a terminal the server answered 401 notEnrolled: \(message)")
        }
    }
}

/// Holds `lock` on its own thread for `seconds` (central busy with a long request).
final class HoldLock: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    init(_ lock: NSLock, seconds: Double) {
        let taken = DispatchSemaphore(value: 0)
        let done = self.done
        let thread = Thread {
            lock.lock()
            taken.signal()
            Thread.sleep(forTimeInterval: seconds)
            lock.unlock()
            done.signal()
        }
        thread.start()
        taken.wait()
    }
    func join() { done.wait() }
}

extension SignedRequest {
    /// The request as HTTP/1.1 bytes, for a raw socket.
    var raw: [UInt8] {
        var head = "POST \(path) HTTP/1.1\r\nHost: x\r\n"
        for f in headers { head += "\(f.name.rawName): \(f.value)\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }
}

/// `central revoke` beside a running server: it writes without the store's lock, so two of them may run at once.
@Suite("review: revoke without the lock")
struct RevokeReviewTests {
    @Test("two `central revoke` of one terminal at once: neither fails, and the server reads the note one of them kept")
    func concurrentRevokes() throws {
        let world = try ServerWorld(terminals: 0)
        let directory = world.dir.path + "/central"
        var failures: [String] = []
        var notes: [String] = []
        for id in UInt32(1)...UInt32(60) {
            let t = try ReplicaId.terminal(id)
            _ = try world.central.enroll(terminal: t, merchant: "shop")
            let start = DispatchSemaphore(value: 0)
            let group = DispatchGroup()
            let box = Outcomes()
            for who in ["operator A", "operator B"] {
                group.enter()
                Thread {
                    start.wait()
                    do {
                        let r = try FileCentralStore.revoke(directory: directory, terminal: t, note: "revoked by \(who)")
                        box.add("ok \(r.note)")
                    } catch {
                        box.add("failed: \(error)")
                    }
                    group.leave()
                }.start()
            }
            start.signal()
            start.signal()
            group.wait()
            failures += box.all.filter { $0.hasPrefix("failed") }.map { "terminal \(id): \($0)" }
            let seen = world.central.revocation(of: t) ?? "not revoked"
            if !seen.hasPrefix("revoked by operator") { notes.append("terminal \(id): the server reads \"\(seen)\"") }
        }
        #expect(failures.count == 0, "\(failures.count) of 60 pairs: one revoke failed (both write terminals/T.revoked.tmp, the fixed name writeAtomically uses; one removes or renames the other's): \(failures.first ?? "")")
        #expect(notes.count == 0, "\(notes.count) of 60: \(notes.first ?? "")")
    }
}

final class Outcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.withLock { items.append(s) } }
    var all: [String] { lock.withLock { items } }
}
