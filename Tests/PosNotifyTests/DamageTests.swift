import Foundation
import PosTestSupport
import Testing
@testable import PosCentral
@testable import PosLedger
@testable import PosNotify
@testable import PosWire

/// A damaged delivery log or cursor refuses the open, naming the file, the line and its byte offset, and
/// what is wrong; the files stay as they were and nothing is sent until someone repairs them.
@Suite("damaged notification files")
struct DamageTests {
    /// A world whose one notification was delivered and a second is queued (derived, never tried).
    func world() throws -> (NotifyWorld, RecordingNotifier) {
        let (w, tickets) = try NotifyWorld.withTickets()
        let t = tickets[0]
        let notifier = RecordingNotifier()
        _ = try w.dispatcher(notifier).pass()
        try w.record(.refundApproved(t, .originalPayment))
        return (w, notifier)
    }

    /// Expects the log not to open, and a dispatcher not to start, with an error at `path` whose message holds `fragments`;
    /// the log's files stay byte for byte, and nothing is sent.
    func expectRefused(_ w: NotifyWorld, _ notifier: RecordingNotifier, at path: String, _ fragments: [String],
                       sourceLocation: SourceLocation = #_sourceLocation) {
        let before = treeBytes(w.logDirectory)
        let sent = notifier.deliveries.count
        for attempt in ["DeliveryLog", "NotificationDispatcher"] {
            do throws(SyncError) {
                if attempt == "DeliveryLog" { _ = try DeliveryLog(directory: w.logDirectory) } else { _ = try w.dispatcher(notifier).pass() }
                Issue.record("\(attempt) opened a damaged log", sourceLocation: sourceLocation)
            } catch {
                #expect(error.location == path, "\(error)", sourceLocation: sourceLocation)
                for f in fragments { #expect(error.message.contains(f), "\(error.message) lacks \(f)", sourceLocation: sourceLocation) }
            }
        }
        #expect(treeBytes(w.logDirectory) == before, "a refused open changed the log", sourceLocation: sourceLocation)
        #expect(notifier.deliveries.count == sent, "a damaged log sent", sourceLocation: sourceLocation)
    }

    @Test("outbox.jsonl: a torn last line is ignored; a broken transition, an unknown field or bad JSON in a whole line is refused at its line and offset")
    func damagedOutbox() throws {
        let (w, notifier) = try world()
        let outbox = w.logDirectory + "/outbox.jsonl"
        let good = try String(contentsOfFile: outbox, encoding: .utf8)
        let lines = good.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "queued, attempting, delivered")
        // A crash mid-append: the torn tail does not count, and the next pass writes over it.
        try (good + #"{"id":"x","sta"#).write(toFile: outbox, atomically: false, encoding: .utf8)
        #expect(try DeliveryLog(directory: w.logDirectory).records.count == 1)
        let offset2 = lines[0].utf8.count + 1
        let cases: [(String, [String])] = [
            (lines[1].replacingOccurrences(of: "\"attempting\"", with: "\"delivered\""), ["line 2 (byte offset \(offset2))", "delivered may not follow queued"]),
            (lines[1].replacingOccurrences(of: "\"attempt\":", with: "\"attemqt\":"), ["line 2 (byte offset \(offset2))", "unknown field \"attemqt\""]),
            (lines[1].replacingOccurrences(of: "{", with: "["), ["line 2 (byte offset \(offset2))", "not a JSON object"]),
        ]
        for (damaged, fragments) in cases {
            var copy = lines
            copy[1] = damaged
            try (copy.joined(separator: "\n") + "\n").write(toFile: outbox, atomically: false, encoding: .utf8)
            expectRefused(w, notifier, at: outbox, fragments)
        }
        // Repaired, the log opens and the queued notification goes out.
        try good.write(toFile: outbox, atomically: false, encoding: .utf8)
        _ = try w.dispatcher(notifier).pass()
        #expect(notifier.deliveries.map(\.notification.kind) == ["ticket-created", "ticket-approved"])
    }

    @Test("state.json: bad JSON, a wrong field, an unknown field or a second line is refused naming the file, line and offset; missing beside an outbox, too")
    func damagedCursor() throws {
        let (w, notifier) = try world()
        let state = w.logDirectory + "/state.json"
        let good = try String(contentsOfFile: state, encoding: .utf8)
        #expect(good.hasPrefix(#"{"cursor":"#) && good.hasSuffix("}\n"), "\(good)")
        let cases: [(String, [String])] = [
            (String(good.prefix(good.utf8.count / 2)), ["line 1 (byte offset 0)", "no line end"]),
            (good.replacingOccurrences(of: #""cursor":"#, with: #""cursor":"x","c":"#), ["line 1 (byte offset 0)", "unknown field \"c\""]),
            (good.replacingOccurrences(of: #""epoch":0"#, with: #""epoch":"zero""#), ["line 1 (byte offset 0)", "field epoch"]),
            (good.replacingOccurrences(of: "possync-notify-state-v1", with: "possync-notify-state-v9"), ["line 1 (byte offset 0)", "field format"]),
            (good + good, ["line 2 (byte offset \(good.utf8.count))", "more than one line"]),
        ]
        for (damaged, fragments) in cases {
            try damaged.write(toFile: state, atomically: false, encoding: .utf8)
            expectRefused(w, notifier, at: state, fragments)
        }
        try FileManager.default.removeItem(atPath: state)
        expectRefused(w, notifier, at: state, ["missing while outbox.jsonl holds notifications"])
        try good.write(toFile: state, atomically: false, encoding: .utf8)
        _ = try w.dispatcher(notifier).pass()
        #expect(notifier.deliveries.map(\.notification.kind) == ["ticket-created", "ticket-approved"], "each sent once, once repaired")
    }

    @Test("done.jsonl: a damaged archived record stops the listing at its line and offset")
    func damagedArchive() throws {
        let (w, notifier) = try world()
        var settings = NotificationSettings()
        settings.archiveFinishedMin = 1
        _ = try w.dispatcher(notifier, settings: settings).pass()
        let done = w.logDirectory + "/done.jsonl"
        let good = try String(contentsOfFile: done, encoding: .utf8)
        let lines = good.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        try (lines[0] + "\n" + lines[1].replacingOccurrences(of: "\"delivered\"", with: "\"queued\"") + "\n").write(toFile: done, atomically: false, encoding: .utf8)
        do {
            _ = try DeliveryLog(directory: w.logDirectory).listing(limit: 5)
            Issue.record("a damaged done.jsonl was listed")
        } catch {
            #expect(error.location == done)
            #expect(error.message.contains("line 2 (byte offset \(lines[0].utf8.count + 1))") && error.message.contains("may not be queued"), "\(error.message)")
        }
    }
}

/// Every file under `root` and its bytes.
func treeBytes(_ root: String) -> [String: Data] {
    var out: [String: Data] = [:]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
        out[name] = FileManager.default.contents(atPath: root + "/" + name)
    }
    return out
}
