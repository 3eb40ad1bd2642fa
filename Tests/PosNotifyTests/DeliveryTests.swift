import Foundation
import PosTestSupport
import Testing
@_spi(Testing) @testable import PosCentral
@testable import PosLedger
@testable import PosNotify
@testable import PosWire

@Suite("notifications derived from central's journal, delivered at most once")
struct DeliveryTests {
    @Test("each kind is derived from the events at central: created, approved, rejected, refund completed; a ticket without contact gives none")
    func eachKind() throws {
        let w = try NotifyWorld()
        let sale = try w.confirmedSale(0, 12_000)
        let withContact = try w.ticket(1, sale: sale, saleMinor: 12_000, 5_000, contact: sms())
        let silent = try w.ticket(1, sale: sale, saleMinor: 12_000, 2_000, contact: nil)
        let app = try w.ticket(1, sale: sale, saleMinor: 12_000, 1_000, contact: try CustomerContact(channel: .app, address: "alice-88"))
        let notifier = RecordingNotifier()
        let d = try w.dispatcher(notifier)
        // Nothing at central yet: the tickets are on the terminal only.
        #expect(try d.pass().queued.isEmpty)
        #expect(notifier.deliveries.isEmpty)
        try w.sync(1)
        try w.record(.refundApproved(withContact, .originalPayment))
        try w.record(.refundRejected(silent))
        try w.record(.refundRejected(app))
        try w.record(.refundCompleted(withContact))
        let r = try d.pass()
        let kinds = notifier.deliveries.map { "\($0.notification.kind) \($0.notification.ticket) \($0.notification.channel):\($0.notification.to)" }
        #expect(kinds == [
            "ticket-created \(withContact.ticketNumber) sms:\(customerPhone)",
            "ticket-created \(app.ticketNumber) app:alice-88",
            "ticket-approved \(withContact.ticketNumber) sms:\(customerPhone)",
            "ticket-rejected \(app.ticketNumber) app:alice-88",
            "refund-completed \(withContact.ticketNumber) sms:\(customerPhone)",
        ])
        #expect(r.queued.count == 5 && r.attempts.allSatisfy { $0.state == "delivered" } && r.pending == 0)
        #expect(!notifier.deliveries.contains { $0.notification.ticket == silent.ticketNumber.text })
        let completed = notifier.deliveries.last!.notification
        #expect(completed.message == "Return ticket \(withContact.ticketNumber): refund of 50.00 CNY paid out.")
        #expect(completed.id == "\(w.central.centralID.hex)-0-\(completed.event.split(separator: ":")[1])")
        #expect(completed.central == w.central.centralID.hex && completed.format == CustomerNotification.formatName)
        // A second pass finds nothing new and sends nothing again.
        let again = try d.pass()
        #expect(again.queued.isEmpty && again.attempts.isEmpty)
        #expect(notifier.deliveries.count == 5)
    }

    @Test("the two decisions of a dispute are not notified, whether or not it was resolved before the pass; the resolving decision is", arguments: [false, true])
    func dispute(resolvedBeforePass: Bool) throws {
        let (w, tickets) = try NotifyWorld.withTickets(minor: 12_000)
        let t = tickets[0]
        // The shop approves offline while the back office rejects.
        let approval = try w.terminals[1].record(.refundApproved(t, .originalPayment), wallMillis: w.tick())
        let rejection = try w.record(.refundRejected(t))
        try w.sync(1)
        let notifier = RecordingNotifier()
        let d = try w.dispatcher(notifier)
        // The back office resolves it, having seen both.
        if resolvedBeforePass { try w.record(.refundApproved(t, .originalPayment)) }
        let r = try d.pass()
        #expect(Set(r.skipped.map(\.event)) == ["\(approval.dot)", "\(rejection.dot)"])
        #expect(r.skipped.allSatisfy { $0.reason.hasPrefix("held(dispute) with event ") }, "\(r.skipped)")
        if !resolvedBeforePass {
            #expect(notifier.deliveries.map(\.notification.kind) == ["ticket-created"])
            try w.record(.refundApproved(t, .originalPayment))
            _ = try d.pass()
        }
        #expect(notifier.deliveries.map(\.notification.kind) == ["ticket-created", "ticket-approved"])
        #expect(notifier.deliveries.last?.notification.event.hasPrefix("0:") == true, "the back office's resolving approval")
    }

    @Test("a decision central holds before its ticket's request waits for it, and is judged on the fold when the request arrives")
    func decisionBeforeRequest() throws {
        let w = try NotifyWorld()
        let sale = try w.confirmedSale(0, 12_000)
        let t = try w.ticket(1, sale: sale, saleMinor: 12_000, 3_000, contact: sms())
        // A decision central holds before the request (loose: as a forged push could leave it).
        let decision = try w.central.record(.refundRejected(t), wallMillis: w.tick(), checkingAdmission: false)
        let notifier = RecordingNotifier()
        let d = try w.dispatcher(notifier)
        let first = try d.pass()
        #expect(first.queued.isEmpty && first.skipped.isEmpty)
        #expect(try DeliveryLog(directory: w.logDirectory).cursor.orphans.map(\.event) == ["\(decision.dot)"])
        try w.sync(1)
        let second = try d.pass()
        // Its causal past lacks the request, so the fold ignores it: the customer hears of the ticket only.
        #expect(notifier.deliveries.map(\.notification.kind) == ["ticket-created"])
        #expect(second.skipped.map(\.event) == ["\(decision.dot)"])
        #expect(second.skipped.first?.reason.hasPrefix("invalid-transition") == true, "\(second.skipped)")
        #expect(try DeliveryLog(directory: w.logDirectory).cursor.orphans.isEmpty)
        _ = try d.pass()
        #expect(notifier.deliveries.count == 1)
    }

    @Test("at most once: a crash between recording the attempt and recording its outcome never sends it again")
    func crashBetweenAttemptAndOutcome() throws {
        let (w, tickets) = try NotifyWorld.withTickets([sms(), sms("+8613911112222")])
        let (first, second) = (tickets[0], tickets[1])
        let crashCopy = w.dir.path + "/log-at-crash"
        let logDirectory = w.logDirectory
        let crashing = RecordingNotifier()
        // While the first notification is being delivered, the log is what a crash would leave on disk.
        crashing.during = { n in if n.ticket == first.ticketNumber.text { try! copyTree(logDirectory, to: crashCopy) } }
        _ = try w.dispatcher(crashing).pass()
        #expect(crashing.deliveries.count == 2)
        // The process died there: the outcome lines were never written. Restart on the log as it was.
        try w.reopenCentral()
        try copyTree(crashCopy, to: logDirectory)
        let after = RecordingNotifier()
        let d = try w.dispatcher(after)
        let r = try d.pass()
        let firstID = crashing.deliveries[0].notification.id
        #expect(r.interrupted == [firstID])
        #expect(!after.ids.contains(firstID), "a notification whose attempt has no recorded outcome was sent again")
        #expect(after.deliveries.map(\.notification.ticket) == [second.ticketNumber.text])
        let listing = try DeliveryLog(directory: logDirectory).listing(limit: 10)
        #expect(listing.deadLetter.map(\.notification.id) == [firstID])
        #expect(listing.deadLetter.first?.reason == .outcomeUnknown)
        #expect(listing.deliveredCount == 1 && listing.pendingCount == 0)
        // And never after another restart.
        try w.reopenCentral()
        _ = try w.dispatcher(after).pass()
        #expect(after.deliveries.count == 1)
    }

    @Test("a restart resumes from the cursor: nothing is sent twice, only what arrived since")
    func restartResumes() throws {
        let (w, tickets) = try NotifyWorld.withTickets()
        let t = tickets[0]
        let notifier = RecordingNotifier()
        _ = try w.dispatcher(notifier).pass()
        #expect(notifier.deliveries.count == 1)
        try w.reopenCentral()
        try w.record(.refundApproved(t, .originalPayment))
        try w.reopenCentral()
        let d = try w.dispatcher(notifier)
        let before = try DeliveryLog(directory: w.logDirectory).cursor.cursor
        let r = try d.pass()
        #expect(r.queued.count == 1 && before < r.derivedThrough)
        #expect(notifier.deliveries.map(\.notification.kind) == ["ticket-created", "ticket-approved"])
    }

    @Test("definite failures are retried with backoff up to the bound, then dead-lettered; the attempts carry one id")
    func retriesThenDeadLetter() throws {
        let (w, _) = try NotifyWorld.withTickets()
        var settings = NotificationSettings()
        settings.attemptsMax = 3
        settings.backoffBaseMillis = 10_000
        settings.backoffMaxMillis = 15_000
        let failing = RecordingNotifier { _, _ in .failedRetryable(detail: "HTTP 503", retryAfterMillis: nil) }
        let outcomes = OutcomeCounter()
        let d = try w.dispatcher(failing, settings: settings, onOutcome: outcomes.add)
        let first = try d.pass()
        #expect(first.attempts.map(\.state) == ["retrying"])
        #expect(first.attempts[0].notBeforeMillis == w.clock.millis + 10_000)
        // Not due yet: nothing is tried.
        w.clock.advance(by: 9_000)
        #expect(try d.pass().attempts.isEmpty)
        w.clock.advance(by: 1_000)
        let second = try d.pass()
        #expect(second.attempts.map(\.state) == ["retrying"])
        #expect(second.attempts[0].notBeforeMillis == w.clock.millis + 15_000, "the second wait doubles, capped at backoffMaxMillis")
        w.clock.advance(by: 15_000)
        let third = try d.pass()
        #expect(third.attempts.map(\.state) == ["dead-letter"] && third.attempts[0].reason == "retries-exhausted")
        w.clock.advance(by: 3_600_000)
        #expect(try d.pass().attempts.isEmpty)
        #expect(failing.deliveries.map(\.attempt) == [1, 2, 3])
        #expect(Set(failing.ids).count == 1)
        #expect(outcomes.values == ["failed", "failed", "dead-letter"])
    }

    @Test("a permanent refusal dead-letters at once; an unknown outcome too, and the pass stops there")
    func permanentAndUnknown() throws {
        let (w, tickets) = try NotifyWorld.withTickets([sms("+8613900000001"), sms("+8613900000002"), sms("+8613900000003")])
        let refused = tickets[0]
        let notifier = RecordingNotifier { n, _ in
            n.to.hasSuffix("1") ? .failedPermanent(detail: "HTTP 422") : .outcomeUnknown(detail: "timed out after the request was sent")
        }
        let d = try w.dispatcher(notifier)
        let r = try d.pass()
        #expect(r.attempts.map(\.reason) == ["permanent", "outcome-unknown"])
        #expect(r.stoppedEarly != nil && r.pending == 1)
        #expect(notifier.deliveries.first?.notification.ticket == refused.ticketNumber.text)
        w.clock.advance(by: 3_600_000)
        notifier.answer = { _, _ in .delivered(detail: "HTTP 200") }
        let later = try d.pass()
        #expect(later.attempts.map(\.state) == ["delivered"])
        #expect(notifier.deliveries.count == 3, "a dead-lettered notification was tried again")
    }

    @Test("deriving stops at pendingMax unfinished notifications and resumes as they finish")
    func pendingBound() throws {
        let (w, _) = try NotifyWorld.withTickets((0..<5).map { sms("+86139000000\(10 + $0)") }, minor: 100)
        var settings = NotificationSettings()
        settings.pendingMax = 2
        let notifier = RecordingNotifier { _, _ in .failedRetryable(detail: "down", retryAfterMillis: nil) }
        let d = try w.dispatcher(notifier, settings: settings)
        let r = try d.pass()
        #expect(r.queued.count == 2 && r.derivedThrough < r.head)
        notifier.answer = { _, _ in .delivered(detail: "ok") }
        for _ in 0..<6 { w.clock.advance(by: 3_600_000); _ = try d.pass() }
        #expect(Set(notifier.ids).count == 5)
        #expect(notifier.deliveries.filter { $0.attempt == 1 }.count == 5)
    }

    @Test("finished records move to done.jsonl; the lists and counts stay whole, even after an interrupted archive")
    func archive() throws {
        let (w, _) = try NotifyWorld.withTickets((0..<4).map { sms("+86139000000\(10 + $0)") }, minor: 100)
        let notifier = RecordingNotifier()
        _ = try w.dispatcher(notifier).pass()
        let outbox = w.logDirectory + "/outbox.jsonl"
        let beforeArchive = try Data(contentsOf: URL(fileURLWithPath: outbox))
        var settings = NotificationSettings()
        settings.archiveFinishedMin = 3
        _ = try w.dispatcher(notifier, settings: settings).pass()
        let log = try DeliveryLog(directory: w.logDirectory)
        #expect(log.records.isEmpty)
        #expect(try jsonLines(w.logDirectory + "/done.jsonl").count == 4)
        let listing = try log.listing(limit: 2)
        #expect(listing.deliveredCount == 4 && listing.delivered.count == 2)
        #expect(listing.delivered.map(\.notification.id) == Array(notifier.ids.suffix(2)))
        // A crash after done.jsonl was appended, before the outbox was rewritten: every record is in both files.
        try beforeArchive.write(to: URL(fileURLWithPath: outbox))
        #expect(try DeliveryLog(directory: w.logDirectory).listing(limit: 10).deliveredCount == 4)
        let r = try w.dispatcher(notifier, settings: settings).pass()
        #expect(r.attempts.isEmpty)
        #expect(try jsonLines(w.logDirectory + "/done.jsonl").count == 8)
        #expect(try DeliveryLog(directory: w.logDirectory).listing(limit: 10).deliveredCount == 4)
        #expect(notifier.deliveries.count == 4)
    }

    @Test("the file sender appends each body as one line, fsynced, mode 0600; a torn last line is written over")
    func fileSender() throws {
        let (w, tickets) = try NotifyWorld.withTickets()
        let t = tickets[0]
        let out = w.dir.path + "/out.jsonl"
        let r = try w.dispatcher(try FileNotifier(path: out)).pass()
        #expect(r.attempts.map(\.detail) == ["appended to \(out)"])
        var mode = stat()
        #expect(stat(out, &mode) == 0 && mode.st_mode & 0o777 == 0o600, "it holds phone numbers")
        // A crash mid-append left half a line; the next delivery writes over it.
        let handle = try #require(FileHandle(forWritingAtPath: out))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"torn":"#.utf8))
        handle.closeFile()
        try w.record(.refundApproved(t, .originalPayment))
        _ = try w.dispatcher(try FileNotifier(path: out)).pass()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        let log = try DeliveryLog(directory: w.logDirectory).listing(limit: 5)
        #expect(Array(bytes) == log.delivered.flatMap { $0.notification.body + [0x0A] })
        let lines = try jsonLines(out)
        #expect(lines.map { $0["kind"] as? String } == ["ticket-created", "ticket-approved"])
        #expect(Set(lines[0].keys) == ["format", "id", "kind", "channel", "to", "ticket", "event", "eventMillis", "central", "message"])
        #expect(lines[0]["to"] as? String == customerPhone)
        #expect(throws: SyncError.self) { try FileNotifier(path: w.dir.path + "/no-such-dir/out.jsonl") }
    }
}

final class OutcomeCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    var values: [String] { lock.withLock { list } }
    var add: @Sendable (String) -> Void { { [self] v in lock.withLock { list.append(v) } } }
}
