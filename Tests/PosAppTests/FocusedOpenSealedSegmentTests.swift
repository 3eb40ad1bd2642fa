import Foundation
import Testing
@testable import PosApp
@testable import PosLedger
@testable import PosTerminal
@testable import PosJournal
@testable import PosWire
@_spi(Testing) @testable import PosCentral
import PosTestSupport

/// A focused open checks a sealed journal segment only where it reads it (sync-protocol.md "Terminal
/// checkpoint and compaction", Focused open): damage it does not read leaves its answer unchanged and is
/// refused by the next full open, naming the file and offset; damage it reads fails it the same way.
@Suite("focused open and damaged sealed journal segments")
struct FocusedOpenSealedSegmentTests {
    /// `"FILE at offset N"` of a JournalError's description, for a flip at `flip`: the error names the file and an offset at or before the flip.
    func names(_ error: SyncError, file: String, atOrBefore flip: Int) -> Bool {
        let text = "\(error)"
        guard let range = text.range(of: file + " at offset ") else { return false }
        let digits = text[range.upperBound...].prefix { $0.isNumber }
        guard let offset = Int(digits) else { return false }
        return offset <= flip
    }

    @Test("a byte flipped in a sealed inbound or outbound segment: a focused open either answers as on the intact copy or fails naming file and offset; a full open refuses naming them")
    func sealedSegmentDamage() throws {
        let seed: UInt64 = 4_242
        let w = try FocusWorld(seed: seed)
        // Enough trade for several 4 KiB inbound segments within the scope, and own events for several outbound ones.
        try w.run { w in for t in w.others { for _ in 0..<25 { try w.capture(t) } } }
        let subject = try w.openSubject()
        for _ in 0..<60 { try w.capture(subject) }
        _ = try subject.sync(via: InProcessTransport(central: w.central), wallMillis: w.tick())
        try w.capture(subject)  // a tail after the checkpoint
        try subject.close()
        let key = w.pool[0].duplicateKey(merchantKey: w.subjectEnrollment.ledgerMerchantKey)
        let focus = OpenFocus(keys: [key])
        let intact = try w.open(focus: focus, copy: 1)
        #expect(intact.openReport.focused && intact.openReport.usedCheckpoint, "seed \(seed): \(intact.openReport)")
        let intactState = intact.state
        try intact.close()
        var unnoticed = 0
        var noticed = 0
        for journal in ["inbound", "outbound"] {
            let segments = w.disk.fileNames(in: "/t1/" + journal).filter { $0.hasSuffix(".seg") }.sorted()
            #expect(segments.count >= 2, "seed \(seed): \(journal) has \(segments.count) segments")
            for name in segments.dropLast() {
                let path = "/t1/\(journal)/\(name)"
                let size = try #require(w.disk.contents(of: path)).count
                for flip in stride(from: JournalLimits.segmentHeaderBytes + 3, to: size, by: max(1, size / 9)) + [size - 1] {
                    let disk = w.disk.copy(seed: UInt64(flip))
                    disk.mutate(path) { $0[flip] ^= 0x10 }
                    switch Result(catching: { () throws(SyncError) in try TerminalReplica.open(directory: "/t1", fileSystem: disk, options: w.options, focus: focus) }) {
                    case .success(let t):
                        let difference = focusDifference(focus, full: intactState, focused: t.state)
                        try t.close()
                        #expect(difference == nil, "seed \(seed): \(path) byte \(flip): \(difference ?? "")")
                        unnoticed += 1
                    case .failure(let error):
                        #expect(names(error, file: path, atOrBefore: flip), "seed \(seed): \(path) byte \(flip): \(error)")
                        noticed += 1
                    }
                    switch Result(catching: { () throws(SyncError) in try TerminalReplica.open(directory: "/t1", fileSystem: disk, options: w.options) }) {
                    case .success(let full):
                        try? full.close()
                        Issue.record("seed \(seed): a full open accepted \(path) with byte \(flip) flipped")
                    case .failure(let error):
                        #expect(names(error, file: path, atOrBefore: flip), "seed \(seed): \(path) byte \(flip): \(error)")
                    }
                }
            }
        }
        // The point of the lazy open: most sealed segments are not read by a focused open.
        #expect(unnoticed > 0, "seed \(seed): every flip failed the focused open (\(noticed))")
    }

    @Test("a focused open that reads a sealed segment (no checkpoint: it folds the journals) fails naming the damaged file and offset")
    func focusedOpenReadingADamagedSegment() throws {
        let seed: UInt64 = 4_243
        let w = try FocusWorld(seed: seed)
        try w.run()
        let focus = OpenFocus(keys: [w.pool[0].duplicateKey(merchantKey: w.subjectEnrollment.ledgerMerchantKey)])
        for journal in ["inbound", "outbound"] {
            let name = try #require(w.disk.fileNames(in: "/t1/" + journal).filter { $0.hasSuffix(".seg") }.sorted().first)
            let path = "/t1/\(journal)/\(name)"
            let flip = JournalLimits.segmentHeaderBytes + JournalLimits.frameHeaderBytes + 1
            let disk = w.disk.copy(seed: 9)
            try disk.removeFile("/t1/checkpoint.psc")
            disk.mutate(path) { $0[flip] ^= 0x10 }
            switch Result(catching: { () throws(SyncError) in try TerminalReplica.open(directory: "/t1", fileSystem: disk, options: w.options, focus: focus) }) {
            case .success(let t):
                try? t.close()
                Issue.record("seed \(seed): a focused open folding the journals read past \(path) byte \(flip)")
            case .failure(let error):
                #expect(names(error, file: path, atOrBefore: flip), "seed \(seed): \(error)")
            }
        }
    }
}
