import Foundation
import PosBytes
import Testing
@testable import PosJournal
@testable import PosLedger
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire
import PosTestSupport

// A sweep over every byte of a small real terminal store and a small central
// store: truncate there, flip a bit there, zero 512 bytes from there. Each case
// must end as the same state, a clean cut of unacknowledged events only, or a
// refusal naming file and offset with every file unchanged; at central a cut
// must be a recorded loss that the terminals' re-push repairs. Refusals are
// then recovered explicitly (`terminal recover`, `central recover`) and the
// replicas must converge.
//
// Default: every byte of every journal segment and snapshot run, the sequence
// reservation and one enrollment at central, every damage kind; the recovery
// path on a sample of the refusals (every 7th offset, the damage kinds in turn).
// POSSYNC_SWEEP_FULL=1: the recovery path on every refusal, and every identity
// file (enrollment.json, central.json, terminals/*.json, merchants/*.json).
// A failure prints the case (store, file, offset, damage) so it can be replayed
// with POSSYNC_SWEEP_CASE="FILE:OFFSET:DAMAGE" (e.g. "outbound/00000000000000000001.seg:212:flip");
// POSSYNC_SWEEP_FILES=PREFIX sweeps only those files, POSSYNC_SWEEP_TRACE=1 prints each case first.
// Design gaps the sweep finds are recorded as known issues, once per kind, with a count.

enum Damage: String, CaseIterable, Sendable {
    case truncate, flip, zero512

    /// The file's bytes after this damage at `offset`; nil when it would change nothing.
    func apply(to bytes: [UInt8], at offset: Int) -> [UInt8]? {
        switch self {
        case .truncate:
            return offset < bytes.count ? Array(bytes[..<offset]) : nil
        case .flip:
            var b = bytes
            b[offset] ^= UInt8(1) << UInt8(offset % 8)
            return b
        case .zero512:
            var b = bytes
            let end = min(bytes.count, offset + 512)
            guard b[offset..<end].contains(where: { $0 != 0 }) else { return nil }
            for i in offset..<end { b[i] = 0 }
            return b
        }
    }
}

struct SweepCase: CustomStringConvertible {
    let store: String
    let file: String
    let offset: Int
    let damage: Damage
    var description: String { "\(store) \(file) offset \(offset) \(damage.rawValue) (replay: POSSYNC_SWEEP_CASE=\"\(file):\(offset):\(damage.rawValue)\")" }
}

/// Cases by outcome class, per store, file group and damage kind.
final class SweepTally {
    private var counts: [String: [String: Int]] = [:]
    private var seconds: [String: Double] = [:]
    private var order: [String] = []
    private var last = Date()
    func add(_ c: SweepCase, _ outcome: String) {
        let group = c.file.split(separator: "/").first.map(String.init) ?? c.file
        let key = "\(c.store) \(group.hasSuffix(".json") || group.hasSuffix(".jsonl") ? group : group + "/") \(c.damage.rawValue)"
        if counts[key] == nil { order.append(key) }
        counts[key, default: [:]][outcome, default: 0] += 1
        seconds[key, default: 0] += Date().timeIntervalSince(last)
        last = Date()
    }
    func count(_ outcome: String) -> Int { counts.values.reduce(0) { $0 + ($1[outcome] ?? 0) } }
    var total: Int { counts.values.reduce(0) { $0 + $1.values.reduce(0, +) } }
    func print(_ title: String) {
        Swift.print("sweep cases by outcome class — \(title)")
        for key in order {
            let line = counts[key]!.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            Swift.print("  \(key) (\(String(format: "%.1f", seconds[key] ?? 0)) s): \(line)")
        }
    }
}

enum SweepMode {
    static let full = ProcessInfo.processInfo.environment["POSSYNC_SWEEP_FULL"] == "1"
    /// "FILE:OFFSET:DAMAGE": run only that case (printed by a failure).
    static let only: (file: String, offset: Int, damage: Damage)? = {
        guard let spec = ProcessInfo.processInfo.environment["POSSYNC_SWEEP_CASE"] else { return nil }
        let parts = spec.split(separator: ":").map(String.init)
        guard parts.count == 3, let offset = Int(parts[1]), let damage = Damage(rawValue: parts[2]) else { return nil }
        return (parts[0], offset, damage)
    }()
    static let trace = ProcessInfo.processInfo.environment["POSSYNC_SWEEP_TRACE"] == "1"
    /// Only the files whose path (in the store) starts with this.
    static let filesPrefix = ProcessInfo.processInfo.environment["POSSYNC_SWEEP_FILES"]
    /// Recovery is exercised on every refusal in full mode; otherwise on every 7th offset, one damage kind in turn.
    static func recoverySample(_ offset: Int, _ damage: Damage) -> Bool {
        full || only != nil || (offset % 7 == 0 && Damage.allCases[(offset / 7) % Damage.allCases.count] == damage)
    }
}

// MARK: - The small world

/// Central and two terminals of one merchant on the real file system, with
/// acknowledged and unacknowledged events, a refund ticket, decisions, central's
/// confirmations echoing the terminals' dots, snapshot runs, and central's own
/// events. Every store is closed; the directories are the pristine copies.
final class DamageWorld {
    /// On a memory file system when there is one: the sweep opens stores thousands of times and each
    /// open that sets something aside fsyncs a directory (what is swept is bytes at rest, not crashes).
    let dir = FileManager.default.isWritableFile(atPath: "/dev/shm") ? TempDir("sweep", base: "/dev/shm") : TempDir("sweep")
    let snapshotEvents = 4
    let checkMillis = baseMillis + 3_600_000
    var environment: CentralEnvironment {
        var rng = Rng(state: 77)
        let secrets = (0..<16).map { _ in (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        let counter = SecretCounter(secrets)
        let now = checkMillis
        return CentralEnvironment(wallMillis: { now }, secret: { counter.next() })
    }
    var centralDir: String { dir.path + "/central" }
    func terminalDir(_ i: Int) -> String { dir.path + "/t\(i)" }
    private(set) var enrollments: [Enrollment] = []

    final class SecretCounter: @unchecked Sendable {
        let secrets: [[UInt8]]; var i = 0; let lock = NSLock()
        init(_ s: [[UInt8]]) { secrets = s }
        func next() -> [UInt8] { lock.withLock { defer { i += 1 }; return secrets[i % secrets.count] } }
    }

    init() throws {
        var rng = Rng(state: 11)
        var now = baseMillis
        func tick() -> Int64 { now += 1000; return now }
        let central = try FileCentralStore.create(directory: centralDir, environment: environment, snapshotEvents: snapshotEvents)
        var terminals: [TerminalReplica] = []
        for i in 1...2 {
            let e = try central.enroll(terminal: try ReplicaId.terminal(UInt32(i)), merchant: "shop")
            enrollments.append(e)
            terminals.append(try TerminalReplica.initialize(directory: terminalDir(i), enrollment: e))
        }
        let (t1, t2) = (terminals[0], terminals[1])
        func capture(_ t: TerminalReplica, _ minor: Int64) throws -> SaleId {
            SaleId(try t.record(.saleCaptured(try SaleCapture(amount: cny(minor), paymentCode: wechatCode(&rng), merchantKey: t.enrollment.ledgerMerchantKey)), wallMillis: tick()).dot)
        }
        func sync(_ t: TerminalReplica) throws { _ = try t.sync(via: InProcessTransport(central: central), wallMillis: tick()) }
        let s1 = try capture(t1, 1000)
        let s2 = try capture(t1, 2500)
        let s3 = try capture(t1, 800)
        let s4 = try capture(t2, 1200)
        try sync(t1); try sync(t2); try sync(t1)
        let request = try RefundRequest(sale: s1, saleAmount: cny(1000), amount: cny(500), reason: .wrongSize, resolution: .refund, contact: nil)
        let ticket = TicketId(try t2.record(.refundRequested(request), wallMillis: tick()).dot)
        try sync(t2)
        for sale in [s1, s2, s4] { try central.record(.saleConfirmed(sale), wallMillis: tick()) }
        try sync(t1)
        try t1.record(.refundApproved(ticket, .originalPayment), wallMillis: tick())
        try sync(t1)
        try central.record(.refundCompleted(ticket), wallMillis: tick())   // its context covers t1's approval: an echo
        try sync(t1); try sync(t2)
        try central.record(.saleDeclined(s3), wallMillis: tick())          // central's own event no terminal pulled
        _ = try capture(t1, 640)                                           // unacknowledged
        _ = try capture(t1, 720)
        _ = try capture(t2, 330)
        try t1.close(); try t2.close(); try central.close()
    }
}

/// What a healthy terminal store holds.
struct TerminalFacts {
    var own: [UInt64: [UInt8]] = [:]
    var last: UInt64 = 0
    var acknowledged: UInt64 = 0
    var pullCursor: UInt64 = 0
    var state = ""

    init(_ t: TerminalReplica) throws {
        last = t.lastSequence
        acknowledged = t.acknowledged
        pullCursor = t.pullCursor
        state = t.state.canonicalText
        var seq = t.outboundFirstSequence
        while seq <= last { own[seq] = try t.ownRecord(seq: seq); seq += 1 }
    }
}

/// What a healthy central store holds.
struct CentralFacts {
    var head: UInt64 = 0
    var acknowledged: [ReplicaId: UInt64] = [:]
    var digests: [Dot: UInt64] = [:]
    var positions: [Dot: UInt64] = [:]
    var state = ""
    var losses = 0

    init(_ c: CentralHandler, terminals: [ReplicaId]) throws {
        head = c.head
        state = try c.state.canonicalText
        losses = c.lossRecords.count
        for t in terminals { acknowledged[t] = c.acknowledged(t) }
        let context = try c.withStorage { $0.recordContext }
        for (position, record) in try centralJournal(try c.withStorage { ($0 as! FileCentralStorage).directory }) {
            let dot = try RecordCodec.decode(record, context: context).dot
            positions[dot] = position
            digests[dot] = eventDigest(record)
        }
    }
}

/// Central's journal records by position, read with its key (the store must be quiescent or open read-only).
func centralJournal(_ directory: String) throws -> [(UInt64, [UInt8])] {
    let identity = try CentralIdentity.decode([UInt8](FileManager.default.contents(atPath: directory + "/central.json")!), path: directory)
    let reader = try JournalReader(directory: directory + "/journal", dictionaries: [ledgerDictionary],
                                   key: KeyDerivation.centralJournalKey(secret: identity.secret), from: 1, through: nil)
    defer { reader.close() }
    var out: [(UInt64, [UInt8])] = []
    while let (seq, record) = try reader.next() { out.append((seq, record)) }
    return out
}

/// Every event a terminal store holds: its own and what it pulled.
func terminalEvents(_ directory: String, enrollment: Enrollment) throws -> [Event] {
    var events: [Event] = []
    for sub in ["outbound", "inbound"] {
        let first = try Journal.oldestSegmentBase(directory: directory + "/" + sub) ?? 1
        let reader = try JournalReader(directory: directory + "/" + sub, dictionaries: [ledgerDictionary], key: enrollment.journalKey,
                                       from: first, through: nil)
        defer { reader.close() }
        while let (seq, record) = try reader.next() {
            if sub == "outbound" {
                events.append(try RecordCodec.decode(record, context: enrollment.recordContext))
            } else if case .pulled(_, let bytes) = try InboundRecord.decode(record, location: "inbound seq \(seq)") {
                events.append(try RecordCodec.decode(bytes, context: enrollment.recordContext))
            }
        }
    }
    return events
}

/// The dots of every event a state holds.
func heldDots(_ s: LedgerState) -> Set<Dot> {
    var dots = Set(s.unknownEvents.keys).union(s.unauthorized.keys)
    for id in s.saleGroups.keys { dots.formUnion(s.eventDots(of: id)) }
    for id in s.ticketGroups.keys { dots.formUnion(s.eventDots(of: id)) }
    return dots
}

/// A refusal must say where: the damaged store's file (or its journal directory) and a byte offset.
func namesFileAndOffset(_ error: any Error, store: String, file: String) -> Bool {
    let text = "\(error)"
    let directory = (file as NSString).deletingLastPathComponent
    let namesFile = text.contains(store + "/" + file) || (!directory.isEmpty && text.contains(store + "/" + directory))
    let isJSON = file.hasSuffix(".json") || file.hasSuffix(".jsonl")
    // An enrollment whose secret changed derives another key: the first frame it cannot open is named.
    let keyRefused = file == "enrollment.json" && text.contains("authenticationFailed") && text.contains(store + "/") && text.contains("offset")
    return (namesFile && (isJSON || text.contains("offset"))) || keyRefused
}

// MARK: - The sweep

@Suite("damage sweep: every byte of a small store, truncated, bit-flipped or zeroed, ends as the same state, a clean cut, a recorded loss or a refusal that changes nothing")
struct DamageSweepTests {
    static func files(in tree: FileTree, groups: [String]) -> [String] {
        tree.files.keys.filter { path in
            groups.contains { g in g.hasSuffix("/") ? path.hasPrefix(g) : path == g || (g.hasPrefix("*") && path.hasSuffix(g.dropFirst())) }
        }.filter { path in SweepMode.only.map { $0.file == path } ?? SweepMode.filesPrefix.map { path.hasPrefix($0) } ?? true }.sorted()
    }

    static func offsets(_ count: Int, file: String) -> [Int] {
        if let only = SweepMode.only { return only.file == file ? [only.offset] : [] }
        return Array(0..<count)
    }

    static func damages() -> [Damage] { SweepMode.only.map { [$0.damage] } ?? Damage.allCases }

    @Test("terminal store: every byte of the outbound and inbound journals")
    func terminalSweep() throws {
        let started = Date()
        let w = try DamageWorld()
        let root = w.terminalDir(1)
        let pristine = FileTree.read(root)
        let centralPristine = FileTree.read(w.centralDir)
        let facts: TerminalFacts
        do {
            let t = try TerminalReplica.open(directory: root)
            facts = try TerminalFacts(t)
            try t.close()
        }
        #expect(FileTree.read(root) == pristine, "opening a healthy store changes nothing")
        #expect(facts.acknowledged >= 3 && facts.last > facts.acknowledged, "the store has acknowledged and unacknowledged events")
        let tally = SweepTally()
        var verified: [FileTree: String] = [:]   // post-open trees already synced and checked
        var known: [String: [SweepCase]] = [:]   // design gaps found (see the report), recorded once each below
        var failures = 0
        var groups = ["outbound/", "inbound/"]
        if SweepMode.full { groups.append("enrollment.json") }

        func fail(_ c: SweepCase, _ why: String) {
            failures += 1
            Issue.record("\(c): \(why)")
        }

        /// Syncs the opened terminal with a pristine central and checks both hold the same events.
        func converges(_ t: TerminalReplica, _ c: SweepCase, label: String) -> Bool {
            defer { centralPristine.restore(w.centralDir, from: FileTree.read(w.centralDir)) }
            do {
                let central = try FileCentralStore.open(directory: w.centralDir, environment: w.environment, snapshotEvents: w.snapshotEvents)
                defer { try? central.close() }
                _ = try t.sync(via: InProcessTransport(central: central), wallMillis: w.checkMillis)
                _ = try t.sync(via: InProcessTransport(central: central), wallMillis: w.checkMillis)
                guard central.acknowledged(t.terminal) == t.lastSequence, t.acknowledged == t.lastSequence else {
                    fail(c, "\(label): after sync central acknowledges \(central.acknowledged(t.terminal)), the terminal holds \(t.lastSequence) (ack \(t.acknowledged))")
                    return false
                }
                var seq: UInt64 = 1
                while seq <= t.lastSequence {
                    let dot = try Dot(replica: t.terminal, seq: seq)
                    let record = try t.ownRecord(seq: seq)
                    guard let record, try central.digest(of: dot) == eventDigest(record) else {
                        fail(c, "\(label): event \(dot) differs between the terminal and central")
                        return false
                    }
                    seq += 1
                }
                let (mine, theirs) = (t.state.canonicalText, try central.state.canonicalText)
                guard mine == theirs else {
                    fail(c, "\(label): states differ after sync\n--- terminal\n\(mine)--- central\n\(theirs)")
                    return false
                }
                return true
            } catch {
                fail(c, "\(label): sync failed: \(error)")
                return false
            }
        }

        /// After a refusal: `terminal recover` from a pristine central, then every acknowledged event is held as central holds it, and a sync converges.
        func recoverTerminal(_ c: SweepCase) -> Bool {
            defer { centralPristine.restore(w.centralDir, from: FileTree.read(w.centralDir)) }
            do {
                let central = try FileCentralStore.open(directory: w.centralDir, environment: w.environment, snapshotEvents: w.snapshotEvents)
                let report = try TerminalReplica.recover(directory: root, via: InProcessTransport(central: central), wallMillis: w.checkMillis)
                let t = try TerminalReplica.open(directory: root)
                defer { try? t.close() }
                for seq in 1...facts.acknowledged {
                    let dot = try Dot(replica: t.terminal, seq: seq)
                    let record = try t.ownRecord(seq: seq)
                    guard let record, record == facts.own[seq], try central.digest(of: dot) == eventDigest(record) else {
                        fail(c, "after recover the acknowledged event \(dot) is not held as central holds it (report \(report))")
                        try? central.close()
                        return false
                    }
                }
                // Never a number given twice: the rebuilt journal reaches every number the terminal had used, and each
                // own event is either held as written or written void and reported (lost, or reserved beyond the last known).
                guard t.lastSequence >= facts.last else {
                    fail(c, "after recover the journal ends at seq \(t.lastSequence), below seq \(facts.last) the terminal had used: numbers would be reused (report \(report))")
                    try? central.close()
                    return false
                }
                var lostAny = false
                for seq in stride(from: facts.acknowledged + 1, through: facts.last, by: 1) {
                    let record = try t.ownRecord(seq: seq)
                    if record == facts.own[seq] { continue }
                    let isVoid = record.flatMap { try? RecordCodec.decode($0, context: t.enrollment.recordContext) }?.body == .sequenceVoid
                    let reported = report.lost.contains { $0.contains(seq) } || report.voidedUnused?.contains(seq) == true
                    if !(isVoid && reported) { fail(c, "after recover own event \(seq) is gone and not written void and reported (report \(report))"); try? central.close(); return false }
                    lostAny = true
                }
                if lostAny {
                    tally.add(SweepCase(store: "t1 recover", file: c.file, offset: c.offset, damage: c.damage),
                              report.keptAfterLoss.isEmpty ? "unacknowledged events lost (reported), numbers voided, none reused"
                                                           : "unacknowledged event lost, intact ones after it kept (reported), numbers voided, none reused")
                }
                try central.close()
                return converges(t, c, label: "after recover")
            } catch {
                fail(c, "terminal recover failed: \(error)")
                return false
            }
        }

        for file in Self.files(in: pristine, groups: groups) {
            let original = pristine.files[file]!
            for offset in Self.offsets(original.count, file: file) {
                for damage in Self.damages() {
                    guard let damaged = damage.apply(to: original, at: offset) else { continue }
                    let c = SweepCase(store: "t1", file: file, offset: offset, damage: damage)
                    if SweepMode.trace { print("case \(c)") }
                    FileManager.default.createFile(atPath: root + "/" + file, contents: Data(damaged))
                    var expected = pristine
                    expected.files[file] = damaged
                    var outcome = "failed"
                    defer {
                        tally.add(c, outcome)
                        pristine.restore(root, from: FileTree.read(root))
                    }
                    let t: TerminalReplica
                    do {
                        t = try TerminalReplica.open(directory: root)
                    } catch {
                        let after = FileTree.read(root)
                        guard after == expected else {
                            fail(c, "refused (\(error)) but changed \(after.differences(from: expected))")
                            continue
                        }
                        guard namesFileAndOffset(error, store: root, file: file) else {
                            fail(c, "refusal does not name the file and an offset: \(error)")
                            continue
                        }
                        outcome = "refused, unchanged"
                        guard SweepMode.recoverySample(offset, damage), file.hasSuffix(".seg") else { continue }
                        outcome = recoverTerminal(c) ? "refused, unchanged; recovered" : "failed"
                        continue
                    }
                    // Opened: nothing acknowledged may be missing, and what is there is what was written.
                    do {
                        defer { try? t.close() }
                        guard t.lastSequence >= facts.acknowledged else {
                            fail(c, "opened holding own events through \(t.lastSequence): acknowledged events \(t.lastSequence + 1)...\(facts.acknowledged) are lost")
                            continue
                        }
                        guard t.lastSequence <= facts.last else { fail(c, "opened holding more own events (\(t.lastSequence)) than written (\(facts.last))"); continue }
                        var seq: UInt64 = 1
                        while seq <= t.lastSequence, try t.ownRecord(seq: seq) == facts.own[seq] { seq += 1 }
                        guard seq > t.lastSequence else { fail(c, "own event \(seq) differs after open"); continue }
                        if t.lastSequence == facts.last && t.state.canonicalText == facts.state && t.acknowledged == facts.acknowledged && t.pullCursor == facts.pullCursor {
                            if t.enrollment != w.enrollments[0] {
                                // No checksum: a merchant key or merchant id that still parses is taken as it reads.
                                known["a terminal's enrollment.json changed is not detected (no checksum): another duplicate-detection key or merchant id is used from then on", default: []].append(c)
                                outcome = "opened, enrollment changed undetected (known issue)"
                                continue
                            }
                            outcome = "same state"
                            continue
                        }
                        outcome = t.lastSequence < facts.last ? "clean cut of unacknowledged events" : "inbound tail cut (pulled again)"
                        let opened = FileTree.read(root)
                        if verified[opened] == nil {
                            verified[opened] = outcome
                            if !converges(t, c, label: outcome) { outcome = "failed" }
                        }
                    } catch {
                        fail(c, "reading the opened store failed: \(error)")
                    }
                }
            }
        }

        for (issue, cases) in known.sorted(by: { $0.key < $1.key }) {
            withKnownIssue(Comment(rawValue: issue)) {
                Issue.record("\(cases.count) cases, e.g. \(cases.prefix(3).map(\.description).joined(separator: "; "))")
            }
        }
        tally.print("terminal store t1 (\(SweepMode.full ? "full" : "default") mode, \(tally.total) cases, \(Int(Date().timeIntervalSince(started))) s)")
        #expect(failures == 0)
    }

    @Test("central store: every byte of the journal, the snapshot runs, the reservation and the enrollments")
    func centralSweep() throws {
        let started = Date()
        let w = try DamageWorld()
        let root = w.centralDir
        let pristine = FileTree.read(root)
        let terminalPristine = [FileTree.read(w.terminalDir(1)), FileTree.read(w.terminalDir(2))]
        let ids = w.enrollments.map(\.terminal)
        let facts: CentralFacts
        do {
            let c = try FileCentralStore.open(directory: root, environment: w.environment, snapshotEvents: w.snapshotEvents)
            facts = try CentralFacts(c, terminals: ids)
            try c.close()
        }
        #expect(FileTree.read(root) == pristine, "opening a healthy store changes nothing")
        if SweepMode.trace { for (f, b) in pristine.files.sorted(by: { $0.key < $1.key }) { print("file \(f) \(b.count) bytes") } }
        #expect(pristine.files.keys.contains { $0.hasPrefix("state/") && $0.hasSuffix(".pss") }, "central has a snapshot run")
        var terminalFacts: [TerminalFacts] = []
        for i in 1...2 {
            let t = try TerminalReplica.open(directory: w.terminalDir(i))
            terminalFacts.append(try TerminalFacts(t))
            try t.close()
        }
        let tally = SweepTally()
        var verified: [FileTree: String] = [:]
        var known: [String: [SweepCase]] = [:]   // design gaps found (see the report), recorded once each below
        var failures = 0
        // The two enrollments have the same layout: the default run sweeps one.
        var groups = ["journal/", "state/", "losses.jsonl", "sequence-reservation.json", SweepMode.full ? "terminals/" : "terminals/1.json"]
        if SweepMode.full { groups += ["central.json", "merchants/"] }

        func fail(_ c: SweepCase, _ why: String) {
            failures += 1
            Issue.record("\(c): \(why)")
        }

        /// The terminals sync (from their pristine stores) until quiet; then central holds every
        /// event any terminal holds, every `terminal-behind` is resolved, and every terminal's events,
        /// less central's own events central no longer holds, fold to central's state. Returns those
        /// lost own events, split by whether a loss record covers them (nil after a failure).
        func repairs(_ central: CentralHandler, _ c: SweepCase, label: String) -> (recorded: Set<Dot>, unrecorded: Set<Dot>, heldByTerminals: Set<Dot>)? {
            defer {
                for i in 1...2 { terminalPristine[i - 1].restore(w.terminalDir(i), from: FileTree.read(w.terminalDir(i))) }
            }
            do {
                let terminals = try (1...2).map { try TerminalReplica.open(directory: w.terminalDir($0)) }
                defer { for t in terminals { try? t.close() } }
                for _ in 0..<2 {
                    for t in terminals { _ = try t.sync(via: InProcessTransport(central: central), wallMillis: w.checkMillis) }
                }
                for (i, t) in terminals.enumerated() {
                    let f = terminalFacts[i]
                    guard t.lastSequence == f.last, central.acknowledged(t.terminal) == f.last else {
                        fail(c, "\(label): terminal \(t.terminal) holds \(t.lastSequence) (was \(f.last)), central acknowledges \(central.acknowledged(t.terminal))")
                        return nil
                    }
                    for seq in stride(from: UInt64(1), through: f.last, by: 1) {
                        let dot = try Dot(replica: t.terminal, seq: seq)
                        guard try central.digest(of: dot) == eventDigest(f.own[seq]!) else {
                            fail(c, "\(label): central does not hold \(dot) as the terminal wrote it")
                            return nil
                        }
                    }
                }
                let losses = central.lossRecords
                for r in losses where r.kind == .terminalBehind {
                    guard losses.contains(where: { $0.refersTo == r.id && $0.kind == .repaired }) else {
                        fail(c, "\(label): terminal-behind record \(r.id) is not resolved by a repair: \(losses)")
                        return nil
                    }
                }
                // Central's own events it no longer holds (terminals cannot push them back): recorded lost, or not.
                var recorded = Set<Dot>(), unrecorded = Set<Dot>()
                for (dot, digest) in facts.digests where dot.replica.isCentral {
                    let held = try central.digest(of: dot)
                    if held == digest { continue }
                    guard held == nil || held == lostDigest else { fail(c, "\(label): central holds another event under \(dot)"); return nil }
                    // A cut found at open or by recovery covers what was at its positions; a history change found
                    // at a hello (a journal-cut with no offset) says only that positions changed, not which events went.
                    let covered = losses.contains { r in
                        (r.kind == .centralBehind && (r.from ?? .max) <= dot.seq && dot.seq <= (r.through ?? 0))
                            || ((r.kind == .recovered || (r.kind == .journalCut && r.offset != nil)) && (r.positionsFrom ?? .max) <= facts.positions[dot]!)
                    }
                    if covered { recorded.insert(dot) } else { unrecorded.insert(dot) }
                }
                let lost = recorded.union(unrecorded)
                var held = Set<Dot>()
                let state = try central.state
                for (i, t) in terminals.enumerated() {
                    let all = try terminalEvents(w.terminalDir(i + 1), enrollment: w.enrollments[i])
                    held.formUnion(all.map(\.dot).filter { lost.contains($0) })
                    let folded = LedgerState.fold(all.filter { !lost.contains($0.dot) })
                    guard folded.canonicalText == state.canonicalText else {
                        fail(c, "\(label): terminal \(t.terminal)'s events (less central's own lost \(lost.sorted())) fold to another state than central's\n--- terminal\n\(folded.canonicalText)--- central\n\(state.canonicalText)")
                        return nil
                    }
                }
                return (recorded, unrecorded, held)
            } catch {
                fail(c, "\(label): re-sync failed: \(error)")
                return nil
            }
        }

        /// The outcome after `repairs`, which must find every loss recorded.
        func repaired(_ central: CentralHandler, _ c: SweepCase, label: String, _ prefix: String) -> String {
            guard let r = repairs(central, c, label: label) else { return "failed" }
            guard r.unrecorded.isEmpty else {
                fail(c, "\(label): central's own events \(r.unrecorded.sorted()) are gone and no loss record covers them: \(central.lossRecords)")
                return "failed"
            }
            return prefix + (r.recorded.isEmpty ? "" : "; central's own events recorded lost")
        }

        let pristineID = w.enrollments[0].central
        let pristineReservation = try SequenceReservation.read(directory: root, files: FileStore(fs: PosixFileSystem()))
        let ownInUse = facts.digests.keys.filter(\.replica.isCentral).map(\.seq).max() ?? 0

        for file in Self.files(in: pristine, groups: groups) {
            let original = pristine.files[file]!
            let snapshotEvents = w.snapshotEvents
            for offset in Self.offsets(original.count, file: file) {
                for damage in Self.damages() {
                    guard let damaged = damage.apply(to: original, at: offset) else { continue }
                    let c = SweepCase(store: "central", file: file, offset: offset, damage: damage)
                    if SweepMode.trace { print("case \(c)") }
                    FileManager.default.createFile(atPath: root + "/" + file, contents: Data(damaged))
                    var expected = pristine
                    expected.files[file] = damaged
                    var outcome = "failed"
                    defer {
                        tally.add(c, outcome)
                        pristine.restore(root, from: FileTree.read(root))
                    }
                    let central: CentralHandler
                    do {
                        central = try FileCentralStore.open(directory: root, environment: w.environment, snapshotEvents: snapshotEvents)
                    } catch {
                        let after = FileTree.read(root)
                        guard after == expected else {
                            fail(c, "refused (\(error)) but changed \(after.differences(from: expected))")
                            continue
                        }
                        guard namesFileAndOffset(error, store: root, file: file) else {
                            fail(c, "refusal does not name the file and an offset: \(error)")
                            continue
                        }
                        outcome = "refused, unchanged"
                        if file.hasPrefix("terminals/") {
                            // Central recover cannot make up a secret: the terminal's copy of its enrollment restores it.
                            let terminal = Int(file.dropFirst("terminals/".count).dropLast(".json".count))!
                            FileManager.default.createFile(atPath: root + "/" + file, contents: terminalPristine[terminal - 1].files["enrollment.json"].map { Data($0) })
                            do {
                                let restored = try FileCentralStore.open(directory: root, environment: w.environment, snapshotEvents: w.snapshotEvents)
                                defer { try? restored.close() }
                                guard try CentralFacts(restored, terminals: ids).state == facts.state else { fail(c, "another state after restoring the enrollment"); outcome = "failed"; continue }
                                outcome = "refused, unchanged; restored from the terminal's enrollment.json"
                            } catch {
                                fail(c, "the terminal's copy of the enrollment did not restore central: \(error)")
                                outcome = "failed"
                            }
                            continue
                        }
                        guard SweepMode.recoverySample(offset, damage), file.hasPrefix("journal/") || file.hasPrefix("state/") || file == SequenceReservation.fileName else { continue }
                        do {
                            let report = try FileCentralStore.recover(directory: root, environment: w.environment, snapshotEvents: w.snapshotEvents)
                            let recovered = try FileCentralStore.open(directory: root, environment: w.environment, snapshotEvents: w.snapshotEvents)
                            defer { try? recovered.close() }
                            if file == SequenceReservation.fileName {
                                let renewed = try SequenceReservation.read(directory: root, files: FileStore(fs: PosixFileSystem()))
                                guard report.sequenceReservationRenewed == renewed, renewed >= pristineReservation else {
                                    fail(c, "central recover renewed the reservation through \(renewed) (report \(report)); it was \(pristineReservation)")
                                    outcome = "failed"
                                    continue
                                }
                            }
                            outcome = repaired(recovered, c, label: "after central recover (\(report))", "refused, unchanged; recovered")
                        } catch {
                            fail(c, "central recover, or the open after it, failed: \(error)")
                            outcome = "failed"
                        }
                        continue
                    }
                    do {
                        defer { try? central.close() }
                        let losses = central.lossRecords
                        let newLosses = losses.dropFirst(facts.losses)
                        var missing: [Dot] = []
                        for (dot, digest) in facts.digests {
                            let held = try central.digest(of: dot)
                            if held == digest { continue }
                            guard held == nil else { fail(c, "opened holding another event under \(dot)"); throw CancellationError() }
                            missing.append(dot)
                        }
                        if missing.isEmpty {
                            guard central.head == facts.head, try central.state.canonicalText == facts.state else {
                                fail(c, "opened with every event but another state or head (\(central.head), was \(facts.head))")
                                continue
                            }
                            if central.centralID != pristineID {
                                known["central.json's central id changed is not detected at open (no checksum): the runs are set aside as another central's and every terminal is then refused as wrongCentral", default: []].append(c)
                                outcome = "opened, central id changed undetected (known issue)"
                                continue
                            }
                            if file.hasPrefix("merchants/"), let key = Hex.decode(String(decoding: FileTree.read(root).files[file] ?? [], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
                               key != Hex.decode(String(decoding: original, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) {
                                known["a merchant key file changed at central is not detected (no checksum): terminals enrolled afterwards get another duplicate-detection key", default: []].append(c)
                                outcome = "opened, merchant key changed undetected (known issue)"
                                continue
                            }
                            if central.enrolledTerminals != w.enrollments.sorted(by: { $0.terminal < $1.terminal }) {
                                // An enrollment file has no checksum: a changed hex digit still parses (see the report).
                                known["an enrollment file changed at central is not detected (no checksum): that terminal's pushes then fail authentication", default: []].append(c)
                                outcome = "opened, enrollment changed undetected (known issue)"
                                continue
                            }
                            if file == SequenceReservation.fileName {
                                let now = try SequenceReservation.read(directory: root, files: FileStore(fs: PosixFileSystem()))
                                guard now >= ownInUse else { fail(c, "opened with a reservation (\(now)) below central's own numbers in use (\(ownInUse))"); continue }
                                if now != pristineReservation { outcome = "opened, reservation changed but above own numbers in use"; continue }
                            }
                            outcome = newLosses.isEmpty ? "same state" : "same state, loss recorded"
                            continue
                        }
                        if let cutFrom = newLosses.filter({ $0.kind == .journalCut }).compactMap(\.positionsFrom).min() {
                            // A cut: every missing event lies at or after the recorded cut's first position.
                            guard missing.allSatisfy({ facts.positions[$0]! >= cutFrom }) else {
                                fail(c, "opened without events before the recorded cut at position \(cutFrom): \(missing.sorted())")
                                continue
                            }
                            let opened = FileTree.read(root)
                            if let known = verified[opened] { outcome = known; continue }
                            outcome = repaired(central, c, label: "after a recorded cut", "journal cut, recorded; repaired by re-push")
                            verified[opened] = outcome
                            continue
                        }
                        // Nothing at open showed the loss (the journal was cut exactly at a frame boundary above
                        // the newest run): the terminals' hellos must show it, and their re-push repair it.
                        let opened = FileTree.read(root)
                        if let known = verified[opened] { outcome = known; continue }
                        defer { verified[opened] = outcome }
                        guard let r = repairs(central, c, label: "after a cut at a frame boundary") else { continue }
                        guard !r.unrecorded.isEmpty else {
                            outcome = "opened short, loss found at hello; repaired by re-push" + (r.recorded.isEmpty ? "" : "; central's own events recorded lost")
                            continue
                        }
                        guard r.heldByTerminals.isDisjoint(with: r.unrecorded), missing.allSatisfy(\.replica.isCentral) else {
                            fail(c, "central's own events \(r.unrecorded.sorted()) are gone, terminals hold them, and no loss record covers them: \(central.lossRecords)")
                            continue
                        }
                        known["central's own events after the newest run that no terminal pulled, cut exactly at a frame boundary, leave no evidence: lost unrecorded", default: []].append(c)
                        outcome = "opened short, central's own unpulled events lost unrecorded (known issue)"
                    } catch is CancellationError {
                        continue
                    } catch {
                        fail(c, "reading the opened store failed: \(error)")
                    }
                }
            }
        }
        for (issue, cases) in known.sorted(by: { $0.key < $1.key }) {
            withKnownIssue(Comment(rawValue: issue)) {
                Issue.record("\(cases.count) cases, e.g. \(cases.prefix(3).map(\.description).joined(separator: "; "))")
            }
        }
        tally.print("central store (\(SweepMode.full ? "full" : "default") mode, \(tally.total) cases, \(Int(Date().timeIntervalSince(started))) s)")
        #expect(failures == 0)
    }
}
