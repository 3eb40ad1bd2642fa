import PosJournal
import PosLedger
import PosWire

// Pull selection and redaction (sync-protocol.md, "A session" step 4), and the
// recovery fetch ("Losses and recovery").

extension CentralHandler {
    func pull(_ m: SyncMessage.Pull) throws(SyncError) -> SyncMessage.Events {
        let t = try entry(m.terminal)
        let merchantID = t.enrollment.merchant
        // Only what is durable is relayed: a torn tail cut at the next open was never seen by anyone.
        let head = storage.head
        guard m.cursor < head else { return .init(frames: [], cursor: m.cursor, more: false) }
        var envelopes: [[UInt8]] = []
        var bytes = 0
        var cursor = m.cursor
        var cursorDigest: UInt64 = 0
        let batchBytes = m.batchBytes == 0 ? pullBatchBytesValue : min(pullBatchBytesValue, Int(m.batchBytes))
        let scanEnd = m.cursor + SyncLimits.pullScanPositionsMax
        let context = storage.recordContext  // a version-2 capture derives its key with its writer's merchant key
        var scope = PullScope(floorMillis: m.scopeFloorMillis, terminal: m.terminal)
        var last: [UInt8] = []
        try storage.scan(after: m.cursor) { (position, record) throws(SyncError) -> Bool in
            guard bytes < batchBytes, envelopes.count < JournalLimits.frameRecordsMax, position <= scanEnd else { return false }
            // Skipped from the header alone: the body (and a version-2 capture's HMAC) is decoded only for what may be relayed.
            let header: RecordCodec.Header
            do throws(LedgerError) { header = try RecordCodec.header(record) } catch { throw SyncError(error, location: "central journal position \(position)") }
            let dot = header.dot
            func decoded() throws(SyncError) -> Event {
                do throws(LedgerError) { return try RecordCodec.decode(record, context: context) } catch { throw SyncError(error, location: "central journal position \(position)") }
            }
            var relayed: [Event] = []
            if dot.replica == m.terminal {
                // Its own capture in scope needs the key group too (the terminal holds the capture itself).
                if m.scopeFloorMillis > 0, header.type == EventKind.saleCaptured.rawValue { relayed = try scope.partners(ofOwn: try decoded(), storage: storage) }
            } else if !m.knowledge.covers(dot),
                      // A terminal's event is of its own merchant's entity (push refuses foreignMerchant); central's needs its body.
                      dot.replica.isCentral || terminals[dot.replica]?.enrollment.merchant == merchantID {
                let event = try decoded()
                if try merchant(of: event) == merchantID { relayed = try scope.selection(of: event, storage: storage) }
            }
            relayed.removeAll { scope.sent.contains($0.dot) }
            if let drop = faults.dropFromPull { relayed.removeAll { $0.dot == dot && drop($0) } }
            // A key group (partners and the capture) goes in one batch: stop before it when it does not fit the frame.
            guard relayed.count <= 1 || envelopes.isEmpty || envelopes.count + relayed.count <= JournalLimits.frameRecordsMax else { return false }
            cursor = position
            last = record
            for e in relayed {
                // Key-group partners carry position 0 (sync-protocol.md, "Relay scope"): not where the scan is.
                let envelope = (e.dot == dot ? InboundRecord.pulled(position: position, event: try Self.relayedRecord(e, record, position: position))
                                             : InboundRecord.pulled(position: 0, event: try Self.relayedRecord(e, nil, position: position))).encoded()
                bytes += envelope.count
                envelopes.append(envelope)
                scope.relayed(e.dot)
            }
            return true
        }
        if !last.isEmpty { cursorDigest = eventDigest(last) }
        if scope.partnersLeftOut > 0 {
            logger.warning("key-group partners left out of a pull", metadata: [
                "sync.terminal": "\(m.terminal)", "sync.partners_left_out": "\(scope.partnersLeftOut)", "sync.partners_max": "\(PullScope.partnersMax)",
            ])
        }
        // Learning the merchant of tickets central opened, and the sales of what was scanned, may have loaded sales: they count toward the store's bound.
        storage.didRead()
        var frames: [[UInt8]] = []
        if !envelopes.isEmpty {
            let sealed = try journal { () throws(JournalError) in try t.sealer.seal(envelopes, firstSequence: 1) }
            frames.append(sealed.bytes)
        }
        return .init(frames: frames, cursor: cursor, more: cursor < head, cursorDigest: cursorDigest)
    }

    /// An event as relayed: a capture without its payment code (other terminals never receive one),
    /// anything else as held (`record`, or encoded again when only the event is at hand). Push refuses a
    /// capture whose relayed form exceeds recordBytesMax; one accepted before that check is an error, not a trap.
    private static func relayedRecord(_ event: Event, _ record: [UInt8]?, position: UInt64) throws(SyncError) -> [UInt8] {
        let withoutCode = RecordCodec.relayedWithoutCode(event)
        if withoutCode == nil, let record { return record }
        guard let bytes = RecordCodec.encodeIfFits(withoutCode ?? event) else {
            throw SyncError(.ledger, "event \(event.dot) relayed without its payment code exceeds recordBytesMax (\(Limits.recordBytesMax) bytes)",
                            location: "central journal position \(position)")
        }
        return bytes
    }

    /// The merchant owning an event's entity.
    private func merchant(of event: Event) throws(SyncError) -> String? {
        guard let key = EntityKey.of(event) else { return event.dot.replica.isCentral ? nil : terminals[event.dot.replica]?.enrollment.merchant }
        var creator = key.creator
        if creator.isCentral, case .ticket(let ticket) = key {
            // A ticket central opened belongs to its sale's merchant; its request may be only on disk.
            var request = event.body
            if case .refundRequested = request {} else {
                try storage.prepare(.ticket(ticket))
                guard let held = storage.resident.request(of: ticket)?.body else { return nil }
                request = held
            }
            if case .refundRequested(let r) = request { creator = r.sale.dot.replica }
        }
        return terminals[creator]?.enrollment.merchant
    }

    /// A terminal's own accepted events from `m.from`, exactly as accepted, for
    /// `terminal recover`: central's journal is scanned after `m.cursor` (its
    /// events are there in sequence order), in batches of at most
    /// `pullBatchBytes` of records.
    func fetch(_ m: SyncMessage.Fetch) throws(SyncError) -> SyncMessage.Fetched {
        let t = try entry(m.terminal)
        let head = storage.head
        let mark = storage.mark(of: m.terminal)
        guard m.from >= 1, m.from <= mark, m.cursor < head else { return .init(cursor: m.cursor, more: false, frames: []) }
        var records: [[UInt8]] = []
        var bytes = 0
        var cursor = m.cursor
        var last: UInt64 = 0
        var first: UInt64 = 0
        try storage.scan(after: m.cursor) { (position, record) throws(SyncError) -> Bool in
            guard bytes < pullBatchBytesValue, records.count < JournalLimits.frameRecordsMax, last < mark else { return false }
            cursor = position
            let dot: Dot
            do throws(LedgerError) { dot = try RecordCodec.header(record).dot } catch { throw SyncError(error, location: "central journal position \(position)") }  // relayed byte for byte: no body decoded
            guard dot.replica == m.terminal, dot.seq >= m.from else { return true }
            if records.isEmpty { first = dot.seq }
            records.append(record)
            bytes += record.count
            last = dot.seq
            return true
        }
        var frames: [[UInt8]] = []
        if !records.isEmpty {
            let sealed = try journal { () throws(JournalError) in try t.sealer.seal(records, firstSequence: first) }
            frames.append(sealed.bytes)
        }
        return .init(cursor: cursor, more: last < mark && cursor < head, frames: frames)
    }
}
