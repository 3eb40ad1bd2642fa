import PosLedger
import PosWire

/// Copies one central's storage into another's over the storage contract
/// (sync-protocol.md, "Moving central to PostgreSQL"): what `possync central
/// migrate` runs from a file central to PostgreSQL. The source is only read.
///
/// What the target holds is where a run resumes: the identities, flags,
/// revocations, loss records and the reservation are copied idempotently (what
/// the target already holds is compared, never written twice), then the
/// journal's events from the target's head on, in central position order, a
/// batch per `append` (one transaction on PostgreSQL): a run killed anywhere
/// leaves the target at a batch boundary and the next run continues from
/// there, never a duplicate or a gap. Positions are preserved: the target
/// assigns head + 1, …, and every batch checks it got the source's positions.
public enum CentralStorageMigration {
    /// Events per batch (one append) by default.
    public static let batchEventsDefault = 1_024
    /// Events per batch at most (what one transaction carries; every column binds as one array parameter).
    public static let batchEventsMax = 16_384
    /// Records compared per page when `verify` reads both journals, at most, in records.
    public static let verifyPageRecordsMax = 4_096

    /// What a run copied (zero for what the target already held).
    public struct Report: Sendable, Equatable, Codable {
        /// The target's head when the run began (0: a fresh target; else a resumed migration).
        public var resumedAfter: UInt64 = 0
        public var enrollments = 0
        public var merchantKeys = 0
        public var flags = 0
        public var revocations = 0
        public var clockReadings = 0
        public var losses = 0
        public var events = 0
        public var batches = 0
        /// The source's head: positions 1...head are in the target after the run.
        public var head: UInt64 = 0
        public init() {}
    }

    /// Copies what `target` lacks of `source`. `source` and `target` name the two in errors (a directory, a URL).
    /// `afterBatch` is called after each durable batch with how many batches this run appended
    /// (tests stop the run there by throwing); `progress` counts events.
    public static func copy(from source: any CentralStorage, _ sourceName: String,
                            to target: any CentralStorage, _ targetName: String,
                            batchEvents: Int = batchEventsDefault,
                            afterBatch: ((Int) throws(SyncError) -> Void)? = nil,
                            progress: ((_ done: UInt64, _ total: UInt64) -> Void)? = nil) throws(SyncError) -> Report {
        precondition(batchEvents >= 1 && batchEvents <= batchEventsMax, "batchEvents \(batchEvents) outside 1...\(batchEventsMax)")
        guard source.centralID == target.centralID else {
            throw SyncError(.wrongCentral, "\(targetName) holds central \(target.centralID.hex), not \(source.centralID.hex) of \(sourceName): nothing was written",
                            location: targetName)
        }
        try target.beginRequest()
        var report = Report()
        report.resumedAfter = target.head
        report.head = source.head
        try copyIdentities(source, sourceName, target, targetName, &report)
        try copyLosses(source, sourceName, target, targetName, &report)
        if target.reservedThrough < source.reservedThrough { try target.reserve(through: source.reservedThrough) }
        try copyEvents(source, sourceName, target, targetName, batchEvents: batchEvents, afterBatch: afterBatch, progress: progress, &report)
        return report
    }

    // MARK: - Identities

    private static func copyIdentities(_ source: any CentralStorage, _ sourceName: String,
                                       _ target: any CentralStorage, _ targetName: String, _ report: inout Report) throws(SyncError) {
        let enrollments = try source.enrollments()
        var held: [ReplicaId: Enrollment] = [:]
        for e in try target.enrollments() { held[e.terminal] = e }
        // Merchant keys first: an enrollment carries a copy of its merchant's key.
        for merchant in Set(enrollments.map(\.merchant)).sorted() {
            guard let key = try source.merchantKey(merchant) else {
                throw SyncError(.malformed, "merchant \(merchant) has enrolled terminals but no duplicate-detection key", location: sourceName)
            }
            if let there = try target.merchantKey(merchant) {
                guard there == key else {
                    throw SyncError(.wrongCentral, "merchant \(merchant)'s duplicate-detection key in \(targetName) differs from the one in \(sourceName): the target holds another central's data; nothing more was written",
                                    location: targetName)
                }
                continue
            }
            try target.saveMerchantKey(key, for: merchant)
            report.merchantKeys += 1
        }
        for e in enrollments {
            if let there = held[e.terminal] {
                guard there.encoded() == e.encoded() else {
                    throw SyncError(.wrongCentral, "terminal \(e.terminal.rawValue)'s enrollment in \(targetName) differs from the one in \(sourceName) (merchant \(there.merchant) there, \(e.merchant) here): the target holds another central's data",
                                    location: targetName)
                }
                continue
            }
            try target.saveEnrollment(e)
            report.enrollments += 1
        }
        let flaggedThere = target.flaggedTerminals()
        _ = try target.enrollments()  // a failed read above throws here (the contract keeps it for the next call that can)
        for (terminal, note) in source.flaggedTerminals().sorted(by: { $0.key < $1.key }) where flaggedThere[terminal] != note {
            try target.flag(terminal, note: note)
            report.flags += 1
        }
        let revokedThere = target.revokedTerminals()
        _ = try target.enrollments()
        for (terminal, note) in source.revokedTerminals().sorted(by: { $0.key < $1.key }) where revokedThere[terminal] == nil {
            try target.revoke(terminal, note: note)
            report.revocations += 1
        }
        // Kept by a target that keeps them (the default of the contract keeps none).
        let clocksThere = target.clockReadings()
        for (terminal, reading) in source.clockReadings().sorted(by: { $0.key < $1.key }) where clocksThere[terminal] != reading {
            try target.saveClockReading(reading, of: terminal)
            report.clockReadings += 1
        }
    }

    // MARK: - Loss records

    /// The target's loss log must be a prefix of the source's (ids 1, 2, …); the rest is appended in order.
    private static func copyLosses(_ source: any CentralStorage, _ sourceName: String,
                                   _ target: any CentralStorage, _ targetName: String, _ report: inout Report) throws(SyncError) {
        let wanted = source.losses, held = target.losses
        guard held.count <= wanted.count else {
            throw SyncError(.wrongCentral, "\(targetName) holds \(held.count) loss records, \(sourceName) only \(wanted.count): the target holds records this central never wrote",
                            location: targetName)
        }
        for (i, r) in held.enumerated() where r != wanted[i] {
            throw SyncError(.wrongCentral, "loss record \(i + 1) in \(targetName) differs from the one in \(sourceName) (\(r.kind.rawValue) there, \(wanted[i].kind.rawValue) here)",
                            location: targetName)
        }
        for r in wanted[held.count...] {
            let written = try target.appendLoss(r)
            guard written == r else {
                throw SyncError(.malformed, "loss record \(r.id) was written as id \(written.id) in \(targetName): another process added a loss record meanwhile; run the migration again",
                                location: targetName)
            }
            report.losses += 1
        }
    }

    // MARK: - Events

    /// A batch being gathered: its events, and the one terminal gap it crosses (its events then all from that terminal or central).
    private struct Batch {
        var events: [AcceptedEvent] = []
        var gap: (terminal: ReplicaId, range: ClosedRange<UInt64>)?
        var firstPosition: UInt64 = 0
        /// The merchant every event of the batch is about ("" for an event of no enrolled terminal's).
        var merchant = ""
    }

    private static func copyEvents(_ source: any CentralStorage, _ sourceName: String,
                                   _ target: any CentralStorage, _ targetName: String,
                                   batchEvents: Int, afterBatch: ((Int) throws(SyncError) -> Void)?,
                                   progress: ((UInt64, UInt64) -> Void)?, _ report: inout Report) throws(SyncError) {
        let start = target.head, end = source.head
        guard start <= end else {
            throw SyncError(.wrongCentral, "\(targetName) holds positions 1...\(start), \(sourceName) only 1...\(end): the target went on without this source (was it served?); nothing was written",
                            location: targetName)
        }
        if start > 0 {
            // Resuming: the target's last position must hold the source's record there (verify compares every one at the end).
            guard let there = try target.record(at: start), let here = try source.record(at: start), there == here else {
                throw SyncError(.wrongCentral, "position \(start) in \(targetName) does not hold the record at position \(start) of \(sourceName): the target holds another history; nothing was written",
                                location: targetName)
            }
        }
        guard start < end else { return }
        var marks: [ReplicaId: UInt64] = [:]
        var merchants: [ReplicaId: String] = [:]
        for e in try source.enrollments() { merchants[e.terminal] = e.merchant }
        var batch = Batch()
        var batches = 0
        let context = source.recordContext

        func flush() throws(SyncError) {
            guard !batch.events.isEmpty else { return }
            try target.prepare(batch.events.map(\.event))
            let positions = try target.append(batch.events, skipping: batch.gap?.range)
            let expected = batch.firstPosition...(batch.firstPosition + UInt64(batch.events.count) - 1)
            guard positions == expected else {
                throw SyncError(.malformed, "\(targetName) took the events of positions \(expected) at positions \(positions): another process wrote to it during the migration; stop it and run the migration again",
                                location: targetName)
            }
            batches += 1
            report.batches += 1
            report.events += batch.events.count
            batch = Batch()
            progress?(positions.upperBound - start, end - start)
            try afterBatch?(batches)
        }

        try source.scan(after: start) { (position, record) throws(SyncError) -> Bool in
            let event: Event
            do throws(LedgerError) { event = try RecordCodec.decode(record, context: context) } catch {
                throw SyncError(error, location: "\(sourceName) journal position \(position)")
            }
            let origin = event.dot.replica
            var gap: ClosedRange<UInt64>? = nil
            if !origin.isCentral {
                let mark: UInt64
                if let m = marks[origin] { mark = m } else {
                    mark = target.mark(of: origin)
                    _ = try target.enrollments()  // a failed read of the mark throws here, not as a wrong gap
                    marks[origin] = mark
                }
                guard event.dot.seq > mark else {
                    throw SyncError(.sequenceGap, "journal position \(position) holds \(event.dot), which \(targetName) already holds (its mark for terminal \(origin.rawValue) is \(mark))",
                                    location: sourceName)
                }
                if event.dot.seq > mark + 1 { gap = (mark + 1)...(event.dot.seq - 1) }
                // The mark as the target will have it once this event is appended (a failed append ends the run;
                // the next one reads the marks again). Set here only: the event may open the next batch.
                marks[origin] = event.dot.seq
            }
            // A gap opens a batch of its own; a batch that crosses one takes no other terminal's events.
            let otherTerminal = batch.gap.map { !origin.isCentral && origin != $0.terminal } ?? false
            // One merchant a batch, as a sync is (its checks and locks are the merchant's sales and payment codes).
            let c = EventComponent(event)
            let merchant = merchants[origin] ?? c.sale.flatMap { merchants[$0.dot.replica] } ?? c.ticket.flatMap { merchants[$0.dot.replica] } ?? ""
            if gap != nil || otherTerminal || merchant != batch.merchant || batch.events.count >= batchEvents { try flush() }
            if batch.events.isEmpty { batch.firstPosition = position; batch.merchant = merchant }
            if let gap { batch.gap = (origin, gap) }
            batch.events.append(AcceptedEvent(event: event, record: record))
            return true
        }
        try flush()
    }

    // MARK: - Verification

    /// What `verify` compared.
    public struct Verification: Sendable, Equatable, Codable {
        public var positions: UInt64 = 0
        public var terminals = 0
        public var losses = 0
        /// Sequence numbers held with no event (central's skipped numbers, every `unrecoverable` range) whose digests were compared.
        public var placeholders: UInt64 = 0
        /// Sales with a capture and no outcome (what `central forward` works through), equal in both.
        public var salesAwaitingOutcome = 0
        public init() {}
    }

    /// Sequence numbers held with no event that `verify` compares, at most (a larger count fails the check rather than run unbounded).
    public static let verifyPlaceholdersMax: UInt64 = 10_000_000

    /// Compares everything the contract answers: identities, flags, revocations, loss records, the reservation,
    /// central's sequence and newest HLC, every terminal's mark, and the record at every position (byte for byte).
    /// The first difference fails, naming it. (The folded states are compared by the caller, as reports.)
    public static func verify(_ source: any CentralStorage, _ sourceName: String,
                              _ target: any CentralStorage, _ targetName: String) throws(SyncError) -> Verification {
        func differ(_ what: String, _ here: some Any, _ there: some Any) -> SyncError {
            SyncError(.malformed, "migration check failed: \(what) is \(here) in \(sourceName) but \(there) in \(targetName)", location: targetName)
        }
        try target.beginRequest()
        // The contract's reads that cannot throw (flags, revocations, marks) keep a failure for the next call that can:
        // each is followed by one, so a lost connection fails as itself, never as a difference.
        func settled<T>(_ read: () -> T) throws(SyncError) -> T {
            let value = read()
            _ = try target.enrollments()
            return value
        }
        var v = Verification()
        guard source.centralID == target.centralID else { throw differ("the central id", source.centralID.hex, target.centralID.hex) }
        let enrollments = try source.enrollments(), held = try target.enrollments()
        guard enrollments.map(\.terminal) == held.map(\.terminal) else {
            throw differ("the enrolled terminals", enrollments.map(\.terminal.rawValue), held.map(\.terminal.rawValue))
        }
        for (e, h) in zip(enrollments, held) where e.encoded() != h.encoded() { throw differ("terminal \(e.terminal.rawValue)'s enrollment", e.merchant, h.merchant) }
        for m in Set(enrollments.map(\.merchant)).sorted() where try source.merchantKey(m) != target.merchantKey(m) {
            throw differ("merchant \(m)'s duplicate-detection key", "one key", "another")
        }
        let flagged = try settled { target.flaggedTerminals() }, revoked = try settled { target.revokedTerminals() }
        if source.flaggedTerminals() != flagged { throw differ("the flagged terminals", source.flaggedTerminals(), flagged) }
        if source.revokedTerminals() != revoked { throw differ("the revoked terminals", source.revokedTerminals(), revoked) }
        if source.losses != target.losses { throw differ("the loss log", "\(source.losses.count) records", "\(target.losses.count) records (or different ones)") }
        if source.reservedThrough > target.reservedThrough { throw differ("central's sequence reservation", source.reservedThrough, target.reservedThrough) }
        if source.head != target.head { throw differ("the head (last position)", source.head, target.head) }
        if source.centralSequence != target.centralSequence { throw differ("central's own sequence", source.centralSequence, target.centralSequence) }
        if source.newestHLC != target.newestHLC { throw differ("the newest HLC", source.newestHLC.rawValue, target.newestHLC.rawValue) }
        for e in enrollments {
            let mark = try settled { target.mark(of: e.terminal) }
            if source.mark(of: e.terminal) != mark { throw differ("terminal \(e.terminal.rawValue)'s high-water mark", source.mark(of: e.terminal), mark) }
        }
        // Every position, a page at a time from each.
        var after: UInt64 = 0
        while after < source.head {
            var page: [(UInt64, [UInt8])] = []
            try source.scan(after: after) { (p, r) throws(SyncError) -> Bool in page.append((p, r)); return page.count < verifyPageRecordsMax }
            var i = 0
            var mismatch: UInt64? = nil
            try target.scan(after: after) { (p, r) throws(SyncError) -> Bool in
                guard i < page.count else { return false }
                if page[i].0 != p || page[i].1 != r { mismatch = page[i].0; return false }
                i += 1
                return i < page.count
            }
            if let p = mismatch { throw differ("the record at position \(p)", "one record", "another") }
            guard i == page.count, let last = page.last?.0 else { throw differ("the records after position \(after)", page.count, i) }
            after = last
        }
        v.positions = source.head
        v.terminals = enrollments.count
        v.losses = source.losses.count
        v.placeholders = try verifyPlaceholders(source, target, differ)
        let awaiting = try source.salesAwaitingOutcome(), awaitingThere = try target.salesAwaitingOutcome()
        if awaiting != awaitingThere {
            let only = awaiting.first { !awaitingThere.contains($0) }.map { "\($0) in \(sourceName) only" }
                ?? awaitingThere.first { !awaiting.contains($0) }.map { "\($0) in \(targetName) only" } ?? "the order"
            throw differ("the sales awaiting an outcome (\(only))", "\(awaiting.count) sales", "\(awaitingThere.count)")
        }
        v.salesAwaitingOutcome = awaiting.count
        return v
    }

    /// Compares the digest held for every number held with no event: central's own numbers the source holds no event
    /// for (skipped past a reservation), and every range the loss log records `unrecoverable`. The records compared
    /// position by position cover every number that has an event; these have none, so only the digests tell.
    private static func verifyPlaceholders(_ source: any CentralStorage, _ target: any CentralStorage,
                                           _ differ: (String, String, String) -> SyncError) throws(SyncError) -> UInt64 {
        var ranges: [(ReplicaId, ClosedRange<UInt64>)] = []
        if source.centralSequence > 0 { ranges.append((.central, 1...source.centralSequence)) }
        for r in source.losses where r.kind == .unrecoverable {
            guard let t = r.terminal, let from = r.from, let through = r.through, from <= through,
                  let terminal = try? ReplicaId.terminal(t) else {
                throw differ("loss record \(r.id) (unrecoverable)", "without a terminal's range", "(not compared)")
            }
            ranges.append((terminal, from...through))
        }
        var compared: UInt64 = 0
        for (replica, range) in ranges {
            guard compared + UInt64(range.count) <= verifyPlaceholdersMax else {
                throw differ("the numbers held with no event", "more than \(verifyPlaceholdersMax)", "(not compared)")
            }
            for seq in range {
                let dot: Dot
                do throws(LedgerError) { dot = try Dot(replica: replica, seq: seq) } catch { throw SyncError(error, location: "\(replica) seq \(seq)") }
                let here = try source.digest(of: dot)
                // Central's numbers that hold an event were compared with its record; only the placeholders are compared here.
                if replica.isCentral, let here, here != lostDigest { continue }
                let there = try target.digest(of: dot)
                guard here == there else {
                    func shown(_ d: UInt64?) -> String { d.map { $0 == lostDigest ? "the lost placeholder" : "digest \(String($0, radix: 16))" } ?? "nothing" }
                    throw differ("the digest held for \(dot)", shown(here), shown(there))
                }
                compared += 1
            }
        }
        return compared
    }
}
