import Foundation
@testable import PosDump
import PosJournal
import PosLedger
import PosWire
import Testing
import PosTestSupport

/// The dump tool reads record versions 1 and 2 (sync-protocol.md, "Record versions").
@Suite("dump: record versions 1 and 2")
struct RecordVersionDumpTests {
    @Test("a journal holding captures in both versions: with the enrollment both decode to the same events; without the merchant key a version-2 capture is shown raw naming duplicateKey")
    func bothVersions() throws {
        let t = TemporaryDirectory("versions")
        let e = Ledger.enrollment(terminal: 7)
        try e.write(to: t.sub("e.json"))
        let events = Ledger.terminalEvents(7)
        // Seq 1 in version 1, seq 2 in version 2 (both captures holding their code), the rest as written.
        let records = events.enumerated().map { i, event in RecordCodec.encode(event, version: i == 0 ? 1 : RecordCodec.writtenVersion(of: event.body)) }
        #expect(records[0][0] == 1 && records[1][0] == 2)
        try Ledger.writeJournal(t.sub("j"), records: records, key: e.journalKey)

        var withEnrollment = DumpOptions(path: t.sub("j"), displayPath: "outbound")
        try withEnrollment.keys.load(file: t.sub("e.json"), keyID: nil)
        let read = try collect(withEnrollment)
        #expect(read.records.prefix(2).compactMap(\.event) == Array(events.prefix(2)), "both versions decode to the events written")
        let (text, summary) = try dumpText(withEnrollment)
        #expect(summary.status == .clean)
        let captures = text.split(separator: "\n").filter { $0.contains("sale-captured dot=7:1 ") || $0.contains("sale-captured dot=7:2 ") }
        #expect(captures.count == 2)
        for (line, event) in zip(captures, events.prefix(2)) {
            guard case .saleCaptured(let c) = event.body else { continue }
            #expect(line.contains("dup=\(c.duplicateKey.hex)"), "\(line)")
            #expect(!line.contains(Ledger.wechatDigits) && !line.contains(Ledger.alipayDigits), "codes stay masked")
        }

        // The journal key alone (a raw key, no enrollment): no merchant key.
        var journalKeyOnly = DumpOptions(path: t.sub("j"), displayPath: "outbound")
        journalKeyOnly.keys.add(e.journalKey, source: "test")
        let bare = try collect(journalKeyOnly)
        #expect(bare.records[0].event == events[0], "a version-1 capture needs no merchant key")
        #expect(bare.records[1].event == nil)
        guard case .raw(let reason) = bare.records[1].content else { Issue.record("version-2 capture not shown raw"); return }
        #expect(reason.contains("merchantKeyMissing (field duplicateKey)"), "\(reason)")
    }
}
