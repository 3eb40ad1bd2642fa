import Foundation
import PosCentralFiles
import PosJournal

/// One run of journal-dump, as the executable and the tests call it: picks
/// the sinks for the mode and format, reads, and returns the summary whose
/// status gives the exit code.
public enum DumpRun {
    public struct Mode: Sendable {
        public var json = false
        /// Summary only (no per-item lines).
        public var verify = false
        /// Statistics (after the summary with `verify`, alone otherwise).
        public var stats = false
        public init(json: Bool = false, verify: Bool = false, stats: Bool = false) {
            self.json = json
            self.verify = verify
            self.stats = stats
        }
    }

    /// Exit code for usage errors and I/O failures.
    public static let usageOrIOExitCode: Int32 = 2

    public static func sink(mode: Mode, options: DumpOptions, out: any LineOutput) -> any DumpSink {
        var sinks: [any DumpSink] = []
        let items = !mode.verify && !mode.stats
        let summary = mode.verify || !mode.stats
        if items || summary {
            sinks.append(mode.json ? JSONFormat(out: out, options: options, items: items, summary: summary)
                                   : TextFormat(out: out, options: options, items: items, summary: summary))
        }
        if mode.stats { sinks.append(StatsSink(out: out, json: mode.json)) }
        return sinks.count == 1 ? sinks[0] : FanOutSink(sinks)
    }

    /// Dumps PATH: a journal directory, segment or bundle (DumpScanner), a
    /// snapshot run or central's `state/` directory (RunDump), or a whole
    /// terminal or central store directory (StoreDump).
    @discardableResult
    public static func run(options: DumpOptions, mode: Mode, out: any LineOutput, follow: DumpScanner.Follow? = nil) throws(DumpError) -> DumpSummary {
        if let store = StoreDump.kind(of: options.path) {
            guard follow == nil else { throw DumpError("--follow reads one growing journal: give its directory (outbound, inbound or journal)", file: options.displayPath) }
            return try StoreDump.run(store, options: options, mode: mode, out: out)
        }
        if let runs = try runFiles(options) {
            guard follow == nil else { throw DumpError("--follow reads a growing journal; a snapshot run is written whole", file: options.displayPath) }
            return try RunDump(options: options, mode: mode, out: out).run(runs)
        }
        return try runJournal(options: options, mode: mode, out: out, follow: follow)
    }

    /// A journal directory, one segment or a bundle.
    static func runJournal(options: DumpOptions, mode: Mode, out: any LineOutput, follow: DumpScanner.Follow?) throws(DumpError) -> DumpSummary {
        let scanner = DumpScanner(options: options, sink: sink(mode: mode, options: options, out: out))
        return try scanner.run(follow: follow)
    }

    /// The run files PATH names: itself when it is one (magic PSSNAPSH), or the
    /// `run-A-B.pss` files of a directory that holds runs and no segment; nil otherwise.
    static func runFiles(_ options: DumpOptions) throws(DumpError) -> [(path: String, display: String)]? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: options.path, isDirectory: &isDirectory) else { return nil }
        let display = { (name: String) in options.displayPath.hasSuffix("/") ? options.displayPath + name : options.displayPath + "/" + name }
        if isDirectory.boolValue {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: options.path)) ?? []).sorted()
            guard !names.contains(where: { SegmentName.base(of: $0) != nil }) else { return nil }
            let runs = names.compactMap { n in StoreDump.runGenerations(n).map { (g: $0, name: n) } }.sorted { $0.g.lowerBound < $1.g.lowerBound }
            return runs.isEmpty ? nil : runs.map { (options.path + "/" + $0.name, display($0.name)) }
        }
        guard let handle = FileHandle(forReadingAtPath: options.path) else { return nil }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 8)).map { Array($0) } ?? []
        return head == SnapshotRunReader.magic ? [(options.path, options.displayPath)] : nil
    }
}
