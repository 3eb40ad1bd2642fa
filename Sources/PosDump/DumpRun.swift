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

    @discardableResult
    public static func run(options: DumpOptions, mode: Mode, out: any LineOutput, follow: DumpScanner.Follow? = nil) throws(DumpError) -> DumpSummary {
        let scanner = DumpScanner(options: options, sink: sink(mode: mode, options: options, out: out))
        return try scanner.run(follow: follow)
    }
}
