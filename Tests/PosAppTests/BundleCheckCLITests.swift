import Foundation
import PosJournal
import PosLedger
import PosCentral
import PosCentralFiles
import PosTerminal
import PosWire
import Testing

/// `central import` checks a bundle's frames against its header before
/// applying anything: first and last sequence numbers, repeats and gaps.
@Suite("possync: a bundle's frames must match its header", .serialized)
struct BundleCheckCLITests {
    /// A shop whose terminal exported seq 4...6 (one frame each), and the parts of that bundle.
    final class Exported {
        let shop: BadInputCLITests.Shop
        let path: String
        let header: BundleHeader
        let frames: [[UInt8]]

        init() throws {
            shop = try BadInputCLITests.Shop()
            for (i, code) in ["134567890123456783", "134567890123456784", "134567890123456785"].enumerated() {
                _ = try CLI.json(["terminal", "scan", "--dir", shop.t1, "--amount", "\(i + 1).00", "--payment-code", code], now: "2026-03-02T12:00:00Z")
            }
            path = shop.tmp.path + "/t1.bundle"
            _ = try CLI.json(["terminal", "export", "--dir", shop.t1, "--out", path])
            let reader = try BundleReader(path: path)
            defer { reader.close() }
            header = reader.header
            // Export repacks seq 4...6 into one batch frame; the checks below need several frames,
            // so take the terminal's stored one-event frames of the same records (what a bundle
            // written before repacking holds: import takes either).
            let stored = try JournalReader(directory: shop.t1 + "/outbound", dictionaries: [ledgerDictionary],
                                           key: Enrollment.read(from: shop.t1 + "/enrollment.json").journalKey, from: header.firstSequence)
            defer { stored.close() }
            var frames: [[UInt8]] = []
            while let f = try stored.nextFrame() { if f.frame.header.lastSequence >= header.firstSequence { frames.append(f.frame.bytes) } }
            self.frames = frames
            #expect(header.firstSequence == 4 && header.lastSequence == 6 && frames.count == 3)
        }

        /// A bundle with these frames and this header (checksum recomputed: only the contents are wrong).
        func bundle(_ name: String, frames: [[UInt8]], edit: (inout BundleHeader) -> Void = { _ in }) throws -> String {
            var h = header
            h.frameCount = UInt32(frames.count)
            edit(&h)
            let out = shop.tmp.path + "/" + name
            let w = try BundleWriter(path: out, header: h)
            for f in frames { try w.write(f) }
            try w.finish()
            return out
        }
    }

    @Test("first and last sequence numbers of the header are checked against the frames, naming the field and both values")
    func headerRange() throws {
        let e = try Exported()
        let first = try e.bundle("first.bundle", frames: e.frames) { $0.firstSequence = 3 }
        try e.shop.refuses(["central", "import", "--dir", e.shop.c, first], status: 1,
                           message: "\(first) offset 38: malformed: header field firstSequence is 3, the frames start at seq 4")
        let last = try e.bundle("last.bundle", frames: e.frames) { $0.lastSequence = 9 }
        try e.shop.refuses(["central", "import", "--dir", e.shop.c, last], status: 1,
                           message: "\(last) offset 46: malformed: header field lastSequence is 9, the frames end at seq 6")
        // Checked before anything is applied, even when a good bundle comes first.
        try e.shop.refuses(["central", "import", "--dir", e.shop.c, e.path, last], status: 1, message: "header field lastSequence is 9")
        let empty = try e.bundle("empty.bundle", frames: []) { $0.lastSequence = 6 }
        try e.shop.refuses(["central", "import", "--dir", e.shop.c, empty], status: 1,
                           message: "header field firstSequence is 4, expected 0: the bundle holds no frame")
    }

    @Test("a repeated frame is reported as a repeat, naming the frame that carried it first; a gap as a gap")
    func repeatsAndGaps() throws {
        let e = try Exported()
        let repeated = try e.bundle("repeat.bundle", frames: [e.frames[0], e.frames[1], e.frames[1], e.frames[2]])
        try e.shop.refuses(["central", "import", "--dir", e.shop.c, repeated], status: 1,
                           message: "frame 2 repeats seq 5...5 already carried by frame 1")
        let back = try e.bundle("back.bundle", frames: [e.frames[0], e.frames[1], e.frames[2], e.frames[0]])
        try e.shop.refuses(["central", "import", "--dir", e.shop.c, back], status: 1,
                           message: "frame 3 repeats seq 4...4 already carried by frame 0")
        let gap = try e.bundle("gap.bundle", frames: [e.frames[0], e.frames[2]])
        try e.shop.refuses(["central", "import", "--dir", e.shop.c, gap], status: 1,
                           message: "frame 1 starts at seq 6: seq 5...5 are missing after frame 0")
        // The bundle as exported still imports.
        let ok = try CLI.run(["central", "import", "--dir", e.shop.c, e.path, "--json"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("\"new\" : 3"))
    }
}
