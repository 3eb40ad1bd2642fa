import PosBytes
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PosTestSupport
import Testing
@testable import PosCentral
@testable import PosJournal
@testable import PosLedger
@testable import PosServer
@testable import PosTerminal
@testable import PosWire

/// Every endpoint and every status of the server, through Hummingbird's router test client.
@Suite("server routes")
struct ServerRouterTests {
    @Test("a nonce for an enrolled terminal; 401 for an unknown one; 400 for a path without a terminal")
    func nonces() async throws {
        let world = try ServerWorld(terminals: 1)
        try await world.application().test(.router) { client in
            let n = try await client.nonce(world.enrollments[0].terminal)
            #expect(n.utf8.count == HTTPSync.nonceBytes * 2 && Hex.decode(n) != nil)
            let unknown = try await client.execute(uri: "/v1/terminals/99/nonce", method: .post)
            #expect(unknown.status == .unauthorized)
            #expect(unknown.refusal?.code == "notEnrolled")
            for bad in ["0", "abc", "4294967296", "-1"] {
                let r = try await client.execute(uri: "/v1/terminals/\(bad)/nonce", method: .post)
                #expect(r.status == .badRequest, "terminal \(bad): \(r.status)")
            }
        }
    }

    @Test("an authenticated hello is answered 200 with a welcome and the next nonce; that nonce serves the next request")
    func helloRoundTrip() async throws {
        let world = try ServerWorld(terminals: 1)
        try await world.application().test(.router) { client in
            let n1 = try await client.nonce(world.enrollments[0].terminal)
            let r1 = try await client.send(SignedRequest(world: world, terminal: 0, nonce: n1, message: world.hello(0)))
            #expect(r1.status == .ok)
            guard case .welcome(let w)? = r1.message else { Issue.record("not a welcome: \(String(describing: r1.message))"); return }
            #expect(w.acknowledged == 0)
            #expect(r1.headers[.contentType] == HTTPSync.contentType)
            let n2 = try #require(r1.headers[HTTPField.Name(HTTPSync.nonceHeader)!])
            #expect(n2 != n1)
            let r2 = try await client.send(SignedRequest(world: world, terminal: 0, nonce: n2, message: world.hello(0)))
            #expect(r2.status == .ok)
        }
    }

    @Test("a push over the router is stored once; the same push again (new nonce) adds nothing")
    func pushIdempotent() async throws {
        let world = try ServerWorld(terminals: 1)
        var rng = SplitMix64(seed: 7)
        for _ in 0..<5 { try world.capture(0, 1500, rng: &rng) }
        let frames = try pushFrames(world, 0)
        try await world.application().test(.router) { client in
            let t = world.enrollments[0].terminal
            for round in 0..<2 {
                let n = try await client.nonce(t)
                let r = try await client.send(SignedRequest(world: world, terminal: 0, nonce: n, message: .push(frames)))
                #expect(r.status == .ok)
                guard case .ack(let a)? = r.message else { Issue.record("not an ack"); return }
                #expect(a.acknowledged == 5)
                #expect(a.accepted == (round == 0 ? 5 : 0))
                #expect(a.duplicates == (round == 0 ? 0 : 5))
            }
        }
        #expect(world.central.head == 5)
    }

    @Test("401: no header, another scheme, wrong key, replayed nonce, altered body, altered path, header naming another terminal; nothing applied")
    func authenticationFailures() async throws {
        let world = try ServerWorld(terminals: 2)
        var rng = SplitMix64(seed: 11)
        for _ in 0..<3 { try world.capture(0, 1000, rng: &rng) }
        let push = SyncMessage.push(try pushFrames(world, 0))
        try await world.application().test(.router) { client in
            let t = world.enrollments[0].terminal
            func expect401(_ r: TestResponse, _ what: String, _ fragment: String) {
                #expect(r.status == .unauthorized, "\(what): \(r.status)")
                #expect(r.headers[HTTPField.Name(HTTPSync.nonceHeader)!] == nil, "\(what): a request that did not authenticate gets no nonce")
                #expect(r.refusal?.message.contains(fragment) == true, "\(what): \(String(describing: r.refusal))")
            }
            var plain = SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t), message: push)
            plain.headers[.authorization] = nil
            expect401(try await client.send(plain), "no header", "no Authorization header")

            var basic = SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t), message: push)
            basic.headers[.authorization] = "Basic dTpw"
            expect401(try await client.send(basic), "Basic", "is not PosSync-HMAC-SHA256")

            let wrongKey = SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t), message: push, key: world.authKey(1))
            expect401(try await client.send(wrongKey), "wrong key", "MAC does not match")

            let n = try await client.nonce(t)
            let good = SignedRequest(world: world, terminal: 0, nonce: n, message: world.hello(0))
            #expect(try await client.send(good).status == .ok)
            expect401(try await client.send(good), "replayed", "was used already")
            var replayedPush = SignedRequest(world: world, terminal: 0, nonce: n, message: push)
            replayedPush.headers[.authorization] = good.headers[.authorization]
            expect401(try await client.send(replayedPush), "replayed nonce on another body", "was used already")

            let altered = SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t), message: push, signedBody: world.hello(0).encoded())
            expect401(try await client.send(altered), "altered body", "MAC does not match")

            let otherPath = SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t), message: push, signedPath: HTTPSync.noncePath(terminal: t))
            expect401(try await client.send(otherPath), "altered path", "MAC does not match")

            let n2 = try await client.nonce(world.enrollments[1].terminal)
            let headerOther = SignedRequest(world: world, terminal: 0, nonce: n2, message: push, headerTerminal: 2)
            expect401(try await client.send(headerOther), "header names terminal 2 on terminal 1's path", "names terminal 2")

            let unissued = SignedRequest(world: world, terminal: 0, nonce: String(repeating: "ab", count: HTTPSync.nonceBytes), message: push)
            expect401(try await client.send(unissued), "nonce never issued", "was not issued")
        }
        #expect(world.central.head == 0, "nothing applied")
    }

    @Test("403: a message naming another terminal; a revoked terminal (and the in-process protocol refuses it too)")
    func forbidden() async throws {
        let world = try ServerWorld(terminals: 2)
        var rng = SplitMix64(seed: 13)
        try world.capture(1, 700, rng: &rng)
        let othersPush = SyncMessage.push(try pushFrames(world, 1))
        try await world.application().test(.router) { client in
            let t = world.enrollments[0].terminal
            let r = try await client.send(SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t), message: othersPush))
            #expect(r.status == .forbidden)
            #expect(r.refusal?.message.contains("authenticated as terminal 1 and its message names terminal 2") == true, "\(String(describing: r.refusal))")
            let hello = SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t), message: world.hello(1))
            #expect(try await client.send(hello).status == .forbidden)

            try world.central.revoke(terminal: t, note: "stolen 2026-11-30")
            let revoked = try await client.send(SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t), message: world.hello(0)))
            #expect(revoked.status == .forbidden)
            #expect(revoked.refusal?.code == "revoked")
            #expect(revoked.refusal?.message.contains("stolen 2026-11-30") == true)
        }
        #expect(world.central.head == 0)
        guard case .refusal(let inProcess) = world.central.handle(world.hello(0)) else { Issue.record("revoked hello answered"); return }
        #expect(inProcess.code == "revoked")
    }

    @Test("400 garbage, a truncated body, an unknown protocol version and a reply type; 415 another content type; nothing applied")
    func badBodies() async throws {
        let world = try ServerWorld(terminals: 1)
        var rng = SplitMix64(seed: 17)
        for _ in 0..<3 { try world.capture(0, 1000, rng: &rng) }
        let push = SyncMessage.push(try pushFrames(world, 0)).encoded()
        var versionBytes = world.hello(0).encoded()
        versionBytes[2] = 99
        let version = versionBytes
        try await world.application().test(.router) { client in
            let t = world.enrollments[0].terminal
            func raw(_ body: [UInt8], contentType: String = HTTPSync.contentType) async throws -> TestResponse {
                let nonce = try await client.nonce(t)
                var h = HTTPFields()
                h[.contentType] = contentType
                h[.authorization] = HTTPSync.authorization(terminal: t, nonce: nonce,
                                                           mac: HTTPSync.mac(key: world.authKey(0), method: "POST", path: HTTPSync.messagePath(terminal: t), body: body, nonce: nonce))
                return try await client.execute(uri: HTTPSync.messagePath(terminal: t), method: .post, headers: h, body: ByteBuffer(bytes: body))
            }
            var garbageRng = SplitMix64(seed: 5)
            let garbage = (0..<512).map { _ in UInt8.random(in: 0...255, using: &garbageRng) }
            let g = try await raw(garbage)
            #expect(g.status == .badRequest && g.refusal?.code == "malformed", "garbage: \(g.status) \(String(describing: g.refusal))")
            let cut = try await raw(Array(push.prefix(push.count / 2)))
            #expect(cut.status == .badRequest, "truncated: \(cut.status) \(String(describing: cut.refusal))")
            let v = try await raw(version)
            #expect(v.status == .badRequest && v.refusal?.code == "versionUnsupported", "version: \(v.status) \(String(describing: v.refusal))")
            let reply = try await raw(SyncMessage.ack(.init(acknowledged: 1, accepted: 1, duplicates: 0)).encoded())
            #expect(reply.status == .badRequest, "a reply type: \(reply.status)")
            let json = try await raw(push, contentType: "application/json")
            #expect(json.status == .unsupportedMediaType)
        }
        #expect(world.central.head == 0)
    }

    @Test("413: a body over the limit (by Content-Length), a push with too many events, a bomb frame whose records inflate past the push bound")
    func tooLarge() async throws {
        var s = SyncServerSettings()
        s.requestBytesMax = 32 << 10
        s.eventsPerRequestMax = 19
        let settings = s
        let world = try ServerWorld(terminals: 1, settings: settings)
        var rng = SplitMix64(seed: 19)
        for _ in 0..<20 { try world.capture(0, 1000, rng: &rng) }
        let push = SyncMessage.push(try pushFrames(world, 0))
        // Six frames of three records of 1 MiB of zeros each (18 events): about 18 KiB on the wire, 18 MiB inflated,
        // over pushRecordBytesMax (16 MiB) once the frame headers are added up, before anything is inflated.
        let t = world.terminals[0]
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: t.enrollment.journalKey)
        let zeros = Array(repeating: [UInt8](repeating: 0, count: JournalLimits.recordBytesMax), count: 3)
        var bombFrames: [[UInt8]] = []
        for f in 0..<6 { bombFrames.append(try sealer.seal(zeros, firstSequence: 1 + UInt64(3 * f)).bytes) }
        let bombPush = SyncMessage.push(.init(terminal: t.terminal, dictionaryID: ledgerDictionary.id, keyID: t.enrollment.journalKey.id, frames: bombFrames))
        #expect(bombPush.encoded().count < 32 << 10, "the bomb is \(bombPush.encoded().count) bytes on the wire")
        try await world.application().test(.router) { client in
            let tid = world.enrollments[0].terminal
            var big = SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(tid), message: .push(.init(terminal: tid, dictionaryID: 0, keyID: 0, frames: [[UInt8](repeating: 1, count: 40 << 10)])))
            big.headers[.contentLength] = "\(big.body.count)"
            let r = try await client.send(big)
            #expect(r.status == .contentTooLarge, "\(r.status)")
            let many = try await client.send(SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(tid), message: push))
            #expect(many.status == .contentTooLarge && many.refusal?.message.contains("20 events") == true, "\(many.status) \(String(describing: many.refusal))")
            let b = try await client.send(SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(tid), message: bombPush))
            #expect(b.status == .contentTooLarge && b.refusal?.code == "tooLarge", "\(b.status) \(String(describing: b.refusal))")
        }
        #expect(world.central.head == 0)
    }

    @Test("409 while the terminal has a request in flight, 429 at the server-wide bound; each with Retry-After")
    func busy() async throws {
        var s = SyncServerSettings()
        s.requestsInFlightMax = 1
        let settings = s
        let world = try ServerWorld(terminals: 2, settings: settings)
        try await world.application().test(.router) { client in
            let t1 = world.enrollments[0].terminal, t2 = world.enrollments[1].terminal
            #expect(world.service.gate.enter(t1) == nil)
            let same = try await client.send(SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t1), message: world.hello(0)))
            #expect(same.status == .conflict)
            #expect(same.headers[.retryAfter] == "\(settings.retryAfterBusyTerminalSeconds)")
            let next = try #require(same.headers[HTTPField.Name(HTTPSync.nonceHeader)!], "an authenticated request refused as busy carries the next nonce")
            world.service.gate.leave(t1)
            #expect(try await client.send(SignedRequest(world: world, terminal: 0, nonce: next, message: world.hello(0))).status == .ok)
            #expect(world.service.gate.enter(t1) == nil)
            let other = try await client.send(SignedRequest(world: world, terminal: 1, nonce: try await client.nonce(t2), message: world.hello(1)))
            #expect(other.status == .tooManyRequests)
            #expect(other.headers[.retryAfter] == "\(settings.retryAfterServerBusySeconds)")
            world.service.gate.leave(t1)
            let after = try await client.send(SignedRequest(world: world, terminal: 1, nonce: try await client.nonce(t2), message: world.hello(1)))
            #expect(after.status == .ok)
        }
    }

    @Test("422 for a protocol refusal (a sequence gap), with the refusal's code and message")
    func protocolRefusal() async throws {
        let world = try ServerWorld(terminals: 1)
        var rng = SplitMix64(seed: 23)
        for _ in 0..<4 { try world.capture(0, 1000, rng: &rng) }
        let t = world.terminals[0]
        let sealer = FrameSealer(dictionary: ledgerDictionary, key: t.enrollment.journalKey)
        // seq 3 and 4 without 1 and 2: records taken from the journal, sealed again from seq 3.
        let all = try pushFrames(world, 0)
        let decoder = FrameDecoder(dictionaries: [ledgerDictionary], key: t.enrollment.journalKey)
        var records: [[UInt8]] = []
        for f in all.frames { records += try Frames.records(f, dictionaryID: all.dictionaryID, keyID: all.keyID, decoder: decoder).records }
        let gap = try sealer.seal(Array(records[2...]), firstSequence: 3)
        let m = SyncMessage.push(.init(terminal: t.terminal, dictionaryID: ledgerDictionary.id, keyID: t.enrollment.journalKey.id, frames: [gap.bytes]))
        try await world.application().test(.router) { client in
            let r = try await client.send(SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t.terminal), message: m))
            #expect(r.status == .unprocessableContent, "\(r.status)")
            #expect(r.refusal?.code == "sequenceGap", "\(String(describing: r.refusal))")
        }
        #expect(world.central.head == 0)
    }

    @Test("/health answers JSON; /metrics counts requests by route and status, accepted events and bytes")
    func healthAndMetrics() async throws {
        let world = try ServerWorld(terminals: 1)
        var rng = SplitMix64(seed: 29)
        for _ in 0..<3 { try world.capture(0, 1000, rng: &rng) }
        let push = SyncMessage.push(try pushFrames(world, 0))
        try await world.application().test(.router) { client in
            let h = try await client.execute(uri: "/health", method: .get)
            #expect(h.status == .ok)
            let json = String(buffer: h.body)
            #expect(json.contains("\"status\":\"ok\"") && json.contains("\"head\":0"), "\(json)")
            let t = world.enrollments[0].terminal
            #expect(try await client.send(SignedRequest(world: world, terminal: 0, nonce: try await client.nonce(t), message: push)).status == .ok)
            _ = try await client.execute(uri: "/v1/terminals/99/nonce", method: .post)
            let m = try await client.execute(uri: "/metrics", method: .get)
            #expect(m.status == .ok)
            let text = String(buffer: m.body)
            for line in ["possync_http_requests_total{route=\"messages\",status=\"200\"} 1",
                         "possync_http_requests_total{route=\"nonce\",status=\"204\"} 1",
                         "possync_http_requests_total{route=\"nonce\",status=\"401\"} 1",
                         "possync_events_accepted_total 3"] {
                #expect(text.contains(line), "missing \(line) in:\n\(text)")
            }
            #expect(text.contains("possync_http_received_bytes_total{route=\"messages\"} \(push.encoded().count)"), "\(text)")
            let h2 = try await client.execute(uri: "/health", method: .get)
            #expect(String(buffer: h2.body).contains("\"head\":3"))
        }
    }

    @Test("a method or path the server does not serve is not 200")
    func unknownRoutes() async throws {
        let world = try ServerWorld(terminals: 1)
        try await world.application().test(.router) { client in
            let get = try await client.execute(uri: "/v1/terminals/1/messages", method: .get)
            #expect(get.status != .ok)
            let unknown = try await client.execute(uri: "/v2/anything", method: .post)
            #expect(unknown.status == .notFound)
        }
    }
}

/// The push the terminal's next sync would send (its first batch): caught on its way, nothing applied.
func pushFrames(_ world: ServerWorld, _ i: Int) throws -> SyncMessage.Push {
    final class Catcher: SyncTransport {
        let central: CentralHandler
        var push: SyncMessage.Push?
        init(central: CentralHandler) { self.central = central }
        func exchange(_ request: SyncMessage) throws(SyncError) -> SyncMessage {
            if case .push(let p) = request { push = p; throw SyncError(.io, "caught") }
            return try InProcessTransport(central: central).exchange(request)
        }
    }
    let catcher = Catcher(central: world.central)
    _ = try? world.terminals[i].sync(via: catcher, wallMillis: world.tick())
    return try #require(catcher.push)
}
