import Testing
@testable import PosLedger

@Suite("Version vectors and hybrid logical clocks")
struct ClockTests {
    func vv(_ r: inout SeededRandom) -> VersionVector {
        var v = VersionVector()
        for _ in 0..<r.int(0...5) { v.raise(try! ReplicaId(UInt32(r.int(0...6))), to: UInt64(r.int(1...5))) }
        return v
    }

    @Test("version vector laws: merge commutative, associative, idempotent; compare consistent with merge")
    func laws() throws {
        let seed = Property.seed(30)
        var r = SeededRandom(seed: seed)
        for i in 0..<Property.cases(default: 10_000) {
            let a = vv(&r), b = vv(&r), c = vv(&r)
            #expect(a.merged(with: b) == b.merged(with: a), "seed \(seed) case \(i): not commutative")
            #expect(a.merged(with: b).merged(with: c) == a.merged(with: b.merged(with: c)),
                    "seed \(seed) case \(i): not associative")
            #expect(a.merged(with: a) == a, "seed \(seed) case \(i): not idempotent")
            let m = a.merged(with: b)
            let order = a.compare(b)
            #expect((order == .before || order == .equal) == (m == b), "seed \(seed) case \(i): compare vs merge")
            #expect((order == .after || order == .equal) == (m == a), "seed \(seed) case \(i): compare vs merge")
            #expect(b.compare(a) == mirror(order), "seed \(seed) case \(i): compare not antisymmetric")
            #expect(a.compare(m) != .after && a.compare(m) != .concurrent, "seed \(seed) case \(i)")
            #expect((try? VersionVector.decode(a.encoded())) == a, "seed \(seed) case \(i): codec")
        }
    }

    func mirror(_ o: VersionVector.Ordering) -> VersionVector.Ordering {
        switch o {
        case .before: .after
        case .after: .before
        default: o
        }
    }

    @Test("increment returns the next dot and compare sees the new event as after")
    func increment() {
        var v = VersionVector([(Sample.t1, 3)])
        let before = v
        let dot = v.increment(Sample.t1)
        #expect(dot == Sample.dot(Sample.t1, 4))
        #expect(before.compare(v) == .before)
        #expect(v.covers(dot) && !before.covers(dot))
        var w = before
        _ = w.increment(Sample.t2)
        #expect(v.compare(w) == .concurrent)
    }

    @Test("HLC is monotonic when the wall clock jumps backwards")
    func backwardJump() throws {
        var clock = HybridLogicalClock()
        let a = try clock.now(wallMillis: 1_785_000_000_000)
        let b = try clock.now(wallMillis: 1_700_000_000_000)  // clock set back a day and more
        let c = try clock.now(wallMillis: 1_700_000_000_001)
        #expect(a < b && b < c)
        #expect(b.millis == a.millis && b.logical == 1)
    }

    @Test("HLC keeps causality when a terminal's wall clock is hours behind")
    func skewedTerminal() throws {
        var central = HybridLogicalClock()
        var terminal = HybridLogicalClock()
        let sent = try central.now(wallMillis: 1_785_000_000_000)
        let received = try terminal.receive(sent, wallMillis: 1_785_000_000_000 - 5 * 3_600_000)
        #expect(received > sent)
        let local = try terminal.now(wallMillis: 1_785_000_000_000 - 5 * 3_600_000 + 1)
        #expect(local > received)
        #expect(HybridLogicalClock.isSkewed(terminalWallMillis: 0, centralWallMillis: 5 * 3_600_000,
                                            boundMillis: 3_600_000))
        #expect(!HybridLogicalClock.isSkewed(terminalWallMillis: 0, centralWallMillis: 3_600_000,
                                             boundMillis: 3_600_000))
    }

    @Test("HLC refuses a remote timestamp past the bound ahead, accepts one at the bound")
    func aheadBound() throws {
        var clock = HybridLogicalClock(remoteAheadMillisMax: 60_000)
        let now: Int64 = 1_785_000_000_000
        let atBound = HLCTimestamp(millis: UInt64(now) + 60_000, logical: 7)
        #expect(try clock.receive(atBound, wallMillis: now) > atBound)
        var fresh = HybridLogicalClock(remoteAheadMillisMax: 60_000)
        let past = HLCTimestamp(millis: UInt64(now) + 60_001, logical: 0)
        do {
            _ = try fresh.receive(past, wallMillis: now)
            Issue.record("accepted a timestamp past the bound")
        } catch {
            #expect(error.code == .clockAheadTooFar)
            #expect(error.message.contains("60001 ms ahead"))
        }
        #expect(fresh.last == .zero, "a refused timestamp leaves the clock unchanged")
    }

    @Test("HLC receive follows the Kulkarni rules and the logical counter carries into milliseconds")
    func receiveRules() throws {
        var clock = HybridLogicalClock(last: HLCTimestamp(millis: 1000, logical: 5))
        #expect(try clock.receive(HLCTimestamp(millis: 1000, logical: 9), wallMillis: 900)
            == HLCTimestamp(millis: 1000, logical: 10))
        #expect(try clock.receive(HLCTimestamp(millis: 1200, logical: 3), wallMillis: 1100)
            == HLCTimestamp(millis: 1200, logical: 4))
        #expect(try clock.receive(HLCTimestamp(millis: 10, logical: 3), wallMillis: 5000)
            == HLCTimestamp(millis: 5000, logical: 0))
        var full = HybridLogicalClock(last: HLCTimestamp(millis: 7, logical: .max))
        #expect(try full.now(wallMillis: 0) == HLCTimestamp(millis: 8, logical: 0))
        let seed = Property.seed(31)
        var r = SeededRandom(seed: seed)
        var c = HybridLogicalClock()
        var last = HLCTimestamp.zero
        for i in 0..<Property.cases(default: 10_000) {
            let wall = Int64(1_785_000_000_000 + r.int(-100_000...100_000))
            let t = r.chance(50) ? try c.now(wallMillis: wall)
                : try c.receive(HLCTimestamp(millis: UInt64(wall + Int64(r.int(-50_000...50_000))), logical: 0),
                                wallMillis: wall)
            #expect(t > last, "seed \(seed) case \(i): clock went backwards")
            last = t
        }
    }
}
