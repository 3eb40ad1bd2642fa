import Foundation
import PosCentralFiles
import PosJournal
import PosWire

/// journal-dump on a whole store directory: a terminal's (`enrollment.json`:
/// `outbound/`, `inbound/`) or central's (`central.json`: `journal/`, then the
/// snapshot runs in `state/`), each dumped as if named alone, with the keys
/// found in the directory (the enrollment; central.json with its snapshot key
/// and `terminals/*.json`), so no `--key-file` is needed on a store one holds.
/// What recovery set aside (`*.damaged`, runs `.ahead`, `.diverged`,
/// `.superseded`) is listed, not read: dump it by its path. A final `store`
/// line (object) gives each part's status; the exit code is the worst.
enum StoreDump {
    enum Kind: String { case terminal, central }

    /// The store kind of a directory, from its identity file.
    static func kind(of path: String) -> Kind? {
        let fm = FileManager.default
        if fm.fileExists(atPath: path + "/central.json") { return .central }
        if fm.fileExists(atPath: path + "/enrollment.json") { return .terminal }
        return nil
    }

    static func run(_ kind: Kind, options given: DumpOptions, mode: DumpRun.Mode, out: any LineOutput) throws(DumpError) -> DumpSummary {
        var options = given
        let display = { (name: String) in given.displayPath.hasSuffix("/") ? given.displayPath + name : given.displayPath + "/" + name }
        let identity = kind == .central ? "central.json" : "enrollment.json"
        var notices: [NoticeItem] = []
        do {
            try options.keys.load(file: given.path + "/" + identity, keyID: nil)
            notices.append(NoticeItem(file: display(identity), offset: nil, code: "keys",
                                      message: kind == .central ? "central's journal and snapshot keys, and the journal key of every terminal in terminals/, are used"
                                                                : "the terminal's journal key is used"))
        } catch {
            notices.append(NoticeItem(file: display(identity), offset: nil, code: "unreadable",
                                      message: "no key from it (\(error.message)): frames are checked, not decoded"))
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: given.path)) ?? []).sorted()
        let journals = kind == .central ? ["journal"] : ["outbound", "inbound"]
        for name in names where journals.contains(where: { name.hasPrefix($0 + ".") }) {
            notices.append(NoticeItem(file: display(name), offset: nil, code: "setAside",
                                      message: "kept by recovery for inspection, not read here: dump it by its path"))
        }
        if kind == .terminal, names.contains(CheckpointHeader.fileName) {
            notices.append(NoticeItem(file: display(CheckpointHeader.fileName), offset: nil, code: "checkpoint",
                                      message: CheckpointNotice.describe(given.path + "/" + CheckpointHeader.fileName)))
        }
        var runs: [(path: String, display: String)] = []
        if kind == .central {
            let state = given.path + "/state"
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []).sorted()
            for name in files {
                if runGenerations(name) != nil {
                    runs.append((state + "/" + name, display("state/" + name)))
                } else if name.hasPrefix("run-") {
                    notices.append(NoticeItem(file: display("state/" + name), offset: nil, code: "setAside",
                                              message: "a run set aside or unfinished, not read here: dump it by its path"))
                }
            }
            runs.sort { (runGenerations($0.path) ?? 0...0).lowerBound < (runGenerations($1.path) ?? 0...0).lowerBound }
        }

        var parts: [(String, DumpSummary)] = []
        var total = DumpSummary()
        total.path = given.displayPath
        let sink = DumpRun.sink(mode: mode, options: options, out: out)
        if !mode.verify && !mode.stats { for n in notices { sink.notice(n) } }
        total.notices += notices.count
        for name in journals {
            var o = options
            o.path = given.path + "/" + name
            o.displayPath = display(name)
            guard FileManager.default.fileExists(atPath: o.path) else {
                let n = NoticeItem(file: o.displayPath, offset: nil, code: "missing", message: "no such journal directory in this \(kind.rawValue) store")
                if !mode.verify && !mode.stats { sink.notice(n) }
                total.notices += 1
                continue
            }
            let s = try DumpRun.runJournal(options: o, mode: mode, out: out, follow: nil)
            parts.append((o.displayPath, s))
            add(s, to: &total)
        }
        if !runs.isEmpty {
            var o = options
            o.path = given.path + "/state"
            o.displayPath = display("state")
            if o.fromSequence != nil || o.toSequence != nil {
                let n = NoticeItem(file: o.displayPath, offset: nil, code: "skipped", message: "snapshot runs have no journal sequence numbers: not dumped with --from-seq/--to-seq")
                if !mode.verify && !mode.stats { sink.notice(n) }
                total.notices += 1
            } else {
                let s = try RunDump(options: o, mode: mode, out: out).run(runs)
                parts.append((o.displayPath, s))
                add(s, to: &total)
            }
        }
        if mode.json {
            var j = JSONObject()
            j.add("kind", "store")
            j.add("path", given.displayPath)
            j.add("store", kind.rawValue)
            j.add("parts", array: parts.map { p in
                var o = JSONObject()
                o.add("path", p.0)
                o.add("status", p.1.status.rawValue)
                o.add("exitCode", Int(p.1.status.exitCode))
                return o
            })
            j.add("status", total.status.rawValue)
            j.add("exitCode", Int(total.status.exitCode))
            out.line(j.string)
        } else {
            out.line("store \(given.displayPath) \(kind.rawValue): " + parts.map { "\($0.0) \($0.1.status.rawValue)" }.joined(separator: ", "))
            out.line("  status=\(total.status.rawValue) exit=\(total.status.exitCode)")
        }
        out.flush()
        return total
    }

    /// Generations A...B of a run file named `run-A-B.pss` (its last path component).
    static func runGenerations(_ path: String) -> ClosedRange<UInt32>? {
        let name = (path as NSString).lastPathComponent
        guard name.hasPrefix("run-"), name.hasSuffix(".pss"), name.count == 25,
              let a = UInt32(name.dropFirst(4).prefix(8), radix: 16), let b = UInt32(name.dropFirst(13).prefix(8), radix: 16), a <= b else { return nil }
        return a...b
    }

    /// Adds a part's counts to the store's (its status is the worst of its parts').
    static func add(_ s: DumpSummary, to t: inout DumpSummary) {
        t.segments += s.segments
        t.bundles += s.bundles
        t.runs += s.runs
        t.frames += s.frames
        t.records += s.records
        t.decodedRecords += s.decodedRecords
        t.rawRecords += s.rawRecords
        t.unknownTypeRecords += s.unknownTypeRecords
        t.bytes += s.bytes
        t.storedBytes += s.storedBytes
        t.blockBytes += s.blockBytes
        for (k, v) in s.undecodedFrames { t.undecodedFrames[k, default: 0] += v }
        t.damagedRanges += s.damagedRanges
        t.damagedBytes += s.damagedBytes
        t.missingRecords += s.missingRecords
        if t.tornTail == nil { t.tornTail = s.tornTail }
        t.damage += s.damage
        t.damageListTruncated = t.damageListTruncated || s.damageListTruncated
        t.notices += s.notices
    }
}
