import ArgumentParser
import Foundation
import PosDump
import PosJournal
import PosLedger

struct JournalDumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal-dump",
        abstract: "Shows what is in a PosSync journal, segment, bundle, snapshot run or store directory, and where it is damaged.",
        discussion: """
            PATH is a journal directory, one segment file (*.seg), a bundle, a central snapshot \
            run (state/run-A-B.pss) or central's state/ directory, or a whole terminal or central \
            store directory (its journals, and central's runs, with the keys found in its \
            enrollment.json or central.json: no --key-file needed). By default every segment or \
            run header, frame, record, damaged range and note is printed, then a summary. \
            Nothing is ever written to PATH.

            Exit codes: 0 clean; 1 damaged (a damaged range or missing records); \
            2 usage or I/O error; 3 clean except a torn tail at the end of the last segment \
            (what opening the journal would cut). A frame that cannot be decoded for want of \
            a key or dictionary is reported on its line and is not damage.

            JSON field names and examples: docs/journal-dump.md.
            """)

    @Argument(help: "A journal directory, a segment file, a bundle, a snapshot run or state/ directory, or a terminal or central store directory.")
    var path: String

    @Flag(help: "One JSON object per line (kind: segment, bundle, frame, record, damage, notice, summary, stats).")
    var json = false

    @Flag(help: "Read everything and print only the summary; exit code says clean (0), damaged (1) or torn tail (3).")
    var verify = false

    @Flag(help: "Counts and amounts by event type, compression ratio, HLC range, sequence ranges per replica.")
    var stats = false

    @Option(name: .customLong("from-seq"), help: "Only records with journal sequence numbers >= this.")
    var fromSeq: UInt64?

    @Option(name: .customLong("to-seq"), help: "Only records with journal sequence numbers <= this.")
    var toSeq: UInt64?

    @Option(name: .customLong("type"), parsing: .singleValue,
            help: "Only records of this type (repeatable or comma-separated): an event name such as sale-captured, a type number, unknown, raw, or an inbound record type (inbound-ack, inbound-synced, inbound-cursor, inbound-central-behind, inbound-epoch, inbound-recovered, inbound-reserved).")
    var types: [String] = []

    @Option(help: "Only the events of one sale or ticket, in order: a dot (3:17), a ticket number (3-17-5) or a return code.")
    var entity: String?

    @Flag(help: "Keep reading as the journal grows (Ctrl-C to stop).")
    var follow = false

    @Option(name: .customLong("poll-ms"), help: "With --follow: how often to look for growth, in milliseconds.")
    var pollMilliseconds = 500

    @Option(name: .customLong("stop-after-idle-ms"), help: "With --follow: stop after this many milliseconds without growth (for scripts).")
    var stopAfterIdleMilliseconds: Int?

    @Option(name: .customLong("key-file"), parsing: .singleValue,
            help: "An enrollment file (the terminal's key), central.json (central's journal and snapshot keys and its terminals'), or 64 hex digits. Repeatable; not needed on a store directory.")
    var keyFiles: [String] = []

    @Option(name: .customLong("key-id"), help: "Key id of a raw hex key file (default: whatever id each segment names).")
    var keyID: UInt32?

    @Option(name: .customLong("dictionary"), parsing: .singleValue,
            help: "ID=FILE: a compression dictionary other than the ledger's (id 1, built in). Repeatable.")
    var dictionaries: [String] = []

    @Option(name: .customLong("records"), help: "How to read records: events, inbound or opaque (default: inbound for a directory named inbound, else events).")
    var recordFormat: String?

    @Flag(help: "Frame bytes and record bytes in hex (also damaged ranges).")
    var raw = false

    @Option(name: .customLong("raw-bytes-max"), help: "With --raw: most bytes shown per item.")
    var rawBytesMax = 65_536

    @Flag(name: .customLong("memory-report"), help: "At exit, print this process's peak resident memory (VmHWM) to standard error.")
    var memoryReport = false

    func validate() throws {
        if verify && (fromSeq != nil || toSeq != nil || !types.isEmpty || entity != nil) {
            throw ValidationError("--verify reads everything; --from-seq, --to-seq, --type and --entity apply to the dump and --stats")
        }
        if follow && (verify || stats) {
            throw ValidationError("--follow prints records as they come; it does not combine with --verify or --stats")
        }
        if let f = fromSeq, let t = toSeq, f > t { throw ValidationError("--from-seq \(f) is above --to-seq \(t)") }
        if pollMilliseconds < 1 { throw ValidationError("--poll-ms must be at least 1") }
        if rawBytesMax < 1 { throw ValidationError("--raw-bytes-max must be at least 1") }
        if let recordFormat, RecordFormat(rawValue: recordFormat) == nil {
            throw ValidationError("--records must be events, inbound or opaque")
        }
        if let entity, parseEntity(entity) == nil {
            throw ValidationError("--entity \(entity): expected a dot (3:17), a ticket number (3-17-5) or a return code")
        }
        let known = Set(EventKind.allCases.map(\.description) + ["unknown", "raw"] + inboundRecordTypeNames)
        for t in typeNames where !known.contains(t) && !(UInt8(t).map { $0 >= 1 } ?? false) {
            throw ValidationError("--type \(t): not an event type (\(EventKind.allCases.map(\.description).joined(separator: ", ")), a type number, unknown, raw, or \(inboundRecordTypeNames.joined(separator: ", ")))")
        }
    }

    var typeNames: [String] {
        types.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
    }

    func makeOptions() throws -> DumpOptions {
        var o = DumpOptions(path: path, displayPath: path)
        for file in keyFiles { try o.keys.load(file: file, keyID: keyID) }
        for spec in dictionaries {
            let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let id = UInt32(parts[0]), id != 0 else {
                throw ValidationError("--dictionary \(spec): expected ID=FILE with ID 1...4294967295")
            }
            guard let data = FileManager.default.contents(atPath: parts[1]) else {
                throw DumpError("cannot read dictionary file", file: parts[1])
            }
            guard data.count <= CompressionDictionary.bytesMax else {
                throw DumpError("dictionary is \(data.count) bytes; zlib dictionaries are at most \(CompressionDictionary.bytesMax)", file: parts[1])
            }
            o.dictionaries.append(CompressionDictionary(id: id, bytes: Array(data)))
        }
        o.recordFormat = recordFormat.flatMap(RecordFormat.init(rawValue:))
        o.fromSequence = fromSeq
        o.toSequence = toSeq
        o.types = Set(typeNames)
        o.entity = entity.flatMap(parseEntity)
        o.raw = raw
        o.rawBytesMax = rawBytesMax
        return o
    }

    func run() throws {
        let options: DumpOptions
        do { options = try makeOptions() } catch let error as DumpError {
            FileHandle.standardError.write(Data("journal-dump: \(error)\n".utf8))
            throw ExitCode(DumpRun.usageOrIOExitCode)
        }
        let out = FileOutput(fd: 1)
        out.lineBuffered = follow
        var followPolicy: DumpScanner.Follow? = nil
        if follow {
            followPolicy = DumpScanner.Follow(pollMilliseconds: pollMilliseconds, stopAfterIdleMilliseconds: stopAfterIdleMilliseconds)
        }
        let summary: DumpSummary
        do {
            summary = try DumpRun.run(options: options, mode: .init(json: json, verify: verify, stats: stats), out: out, follow: followPolicy)
        } catch {
            out.flush()
            FileHandle.standardError.write(Data("journal-dump: \(error)\n".utf8))
            throw ExitCode(DumpRun.usageOrIOExitCode)
        }
        out.flush()
        if memoryReport {
            FileHandle.standardError.write(Data("journal-dump: peak RSS \(peakResidentKiB().map(String.init) ?? "unknown") KiB\n".utf8))
        }
        if out.failed {
            FileHandle.standardError.write(Data("journal-dump: writing the output failed\n".utf8))
            throw ExitCode(DumpRun.usageOrIOExitCode)
        }
        throw ExitCode(summary.status.exitCode)
    }
}

/// This process's peak resident set (VmHWM in /proc/self/status), in KiB.
func peakResidentKiB() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
    }
    return nil
}
