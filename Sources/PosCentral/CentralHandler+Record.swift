import PosLedger
import PosWire

// Central's own events (decisions, sale outcomes, completions) and enrollment.

extension CentralHandler {
    /// Enrolls a terminal: issues its secret (and the merchant's duplicate-detection key, the first time) and returns its enrollment.
    public func enroll(terminal: ReplicaId, merchant: String) throws(SyncError) -> Enrollment {
        try enroll(terminal: terminal, merchant: merchant, merchantTerminalsMax: Limits.merchantTerminalsMax)
    }

    /// `merchantTerminalsMax` other than `Limits.merchantTerminalsMax` only in tests (the bound's refusal
    /// without enrolling 65,535 terminals first).
    @_spi(Testing) public func enroll(terminal: ReplicaId, merchant: String, merchantTerminalsMax: Int) throws(SyncError) -> Enrollment {
        lock.lock()
        defer { lock.unlock() }
        guard !terminal.isCentral else { throw SyncError(.invalidArgument, "replica 0 is central; a terminal needs a non-zero id") }
        guard terminals[terminal] == nil else {
            throw SyncError(.invalidArgument, "terminal \(terminal.rawValue) is already enrolled")
        }
        guard Enrollment.isValidMerchant(merchant) else {
            throw SyncError(.invalidArgument, "merchant id \(PrintableText.escaped(String(merchant.prefix(80)))): 1 to 64 of A-Z a-z 0-9 - _")
        }
        let enrolled = try storage.enrollments().lazy.filter { $0.merchant == merchant }.count
        guard enrolled < merchantTerminalsMax else {
            throw SyncError(.invalidArgument, "merchant \(merchant) has \(enrolled) terminals enrolled, the most one merchant may have (\(merchantTerminalsMax): a terminal's knowledge vector names each of them and central)")
        }
        var key = try storage.merchantKey(merchant)
        if key == nil {
            let fresh = environment.secret()
            try storage.saveMerchantKey(fresh, for: merchant)
            key = fresh
        }
        let e = Enrollment(central: centralID, terminal: terminal, merchant: merchant, secret: environment.secret(), merchantKey: key!)
        try storage.saveEnrollment(e)
        register(e)
        return e
    }

    /// Records an event central writes (decisions, sale outcomes, completions).
    @discardableResult
    public func record(_ body: EventBody, wallMillis: Int64) throws(SyncError) -> Event {
        try record(body, wallMillis: wallMillis, checkingAdmission: true)
    }

    /// `checkingAdmission: false` only in tests: an event the fold will not take yet
    /// (a decision on a ticket whose request central does not hold, as a pushed
    /// forged event could be) is what makes loose events.
    @_spi(Testing) public func record(_ body: EventBody, wallMillis: Int64, checkingAdmission: Bool) throws(SyncError) -> Event {
        lock.lock()
        defer { lock.unlock() }
        try storage.beginRequest(about: .of(body))
        defer { endRequest() }
        guard let kind = body.kind, kind.mayBeWritten(by: .central) else {
            throw SyncError(.notAuthorized, "central may not write \(body.kind.map { "\($0)" } ?? "an unknown event")")
        }
        // Above every number a lost event may have used (the loss log's floors), so no dot is reused.
        let dot = try! Dot(replica: .central, seq: max(storage.centralSequence, storage.losses.centralSequenceFloor) + 1)
        try storage.prepare(Event(dot: dot, hlc: .zero, context: VersionVector(), body: body))
        try checkMoneyMoves(body)
        let stamp: HLCTimestamp
        do { stamp = try hlc.now(wallMillis: wallMillis) } catch { throw SyncError(error) }
        let resident = storage.resident
        let event = Event(dot: dot, hlc: stamp, context: resident.writerContext(for: body, dot: dot), body: body)
        // A writer never records what its own fold would ignore (the entity is resident: prepared above).
        if checkingAdmission {
            do { try resident.checkAdmission(event) } catch { throw SyncError(error) }
        }
        if dot.seq > storage.reservedThrough {
            // Reserve numbers before using them: after a journal cut, central numbers its events above the reservation.
            try storage.reserve(through: dot.seq + SyncLimits.centralSequenceReservation - 1)
        }
        guard let record = RecordCodec.encodeIfFits(event) else {
            throw SyncError(.tooLarge, "event \(dot) would exceed recordBytesMax (\(Limits.recordBytesMax) bytes): its context holds \(event.context.entries.count) writers")
        }
        try append([AcceptedEvent(event: event, record: record)], skipping: nil)
        return event
    }

    /// Money moves only on firm ground, checked on the state under the same lock
    /// as the write: a refund is completed only when its ticket is approved and
    /// its sale confirmed; a void-duplicate capture is never sent to the acquirer.
    private func checkMoneyMoves(_ body: EventBody) throws(SyncError) {
        let resident = storage.resident
        switch body {
        case .refundCompleted(let ticket):
            guard let t = resident.tickets[ticket] else {
                throw SyncError(.invalidArgument, "cannot complete \(ticket): central does not hold its request")
            }
            guard t.status == .approved else {
                throw SyncError(.invalidArgument, "cannot complete \(ticket): it is \(t.status), not approved")
            }
            let sale = resident.sales[t.sale]?.status
            guard sale == .confirmed else {
                throw SyncError(.invalidArgument, "cannot complete \(ticket): its sale \(t.sale) is \(sale.map { "\($0)" } ?? "unknown"), not confirmed")
            }
        case .saleConfirmed(let sale), .saleDeclined(let sale), .saleExpired(let sale):
            let status = resident.sales[sale]?.status
            guard status == .captured else {
                throw SyncError(.invalidArgument, "cannot record the acquirer's outcome for \(sale): it is \(status.map { "\($0)" } ?? "unknown") (only a captured sale is forwarded; a void-duplicate never is)")
            }
        default:
            break
        }
    }
}
