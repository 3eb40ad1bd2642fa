import Foundation
import PosApp

/// Where one run of the command line reads its environment and writes its
/// output: the process's (`Console.standard()`, what `possync` runs with), or
/// any other, such as a test's, which runs commands in-process and reads back
/// what they printed. Nothing of a run is kept outside its console, so runs
/// with different consoles do not see each other, even at once.
public final class Console: @unchecked Sendable {
    /// The environment the run reads: POSSYNC_NOW, POSSYNC_LOCK_TIMEOUT.
    public let environment: [String: String]
    /// Standard error is a terminal: progress is drawn as a bar rather than logged.
    public let stderrIsTerminal: Bool
    private let writeStdout: (String) -> Void
    private let writeStderr: (String) -> Void
    /// Serializes writes: a server logs from many threads at once.
    private let lock = NSLock()
    /// A progress bar is drawn and its line not finished: an error message must start on a new line.
    var progressLineOpen = false

    /// A console that hands every piece of standard output and standard error to `stdout` and `stderr`.
    public init(environment: [String: String], stderrIsTerminal: Bool = false,
                stdout: @escaping (String) -> Void, stderr: @escaping (String) -> Void) {
        self.environment = environment
        self.stderrIsTerminal = stderrIsTerminal
        writeStdout = stdout
        writeStderr = stderr
    }

    /// The process's own: its environment, standard output and standard error.
    public static func standard() -> Console {
        Console(environment: ProcessInfo.processInfo.environment, stderrIsTerminal: isatty(2) == 1,
                stdout: { FileHandle.standardOutput.write(Data($0.utf8)) },
                stderr: { FileHandle.standardError.write(Data($0.utf8)) })
    }

    func line(_ text: String) { lock.withLock { writeStdout(text + "\n") } }

    func json<T: Encodable>(_ value: T) { line(LedgerReport.json(value)) }

    /// Text or JSON, as asked.
    func show<T: Encodable>(_ value: T, json: Bool, text: () -> String) {
        if json { self.json(value) } else { line(text()) }
    }

    func log(_ text: String) { lock.withLock { writeStderr(text + "\n") } }

    /// Standard error as it is: a progress bar redraws its line.
    func stderr(_ text: String) { lock.withLock { writeStderr(text) } }

    /// The one line a failed command prints.
    func error(_ message: String) {
        if progressLineOpen { log("") }
        log("possync: error: " + TextOutput.plain(message))
    }
}
