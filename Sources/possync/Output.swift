import Foundation
import PosApp

enum Output {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func json<T: Encodable>(_ value: T) { line(LedgerReport.json(value)) }

    /// Text or JSON, as asked.
    static func show<T: Encodable>(_ value: T, json: Bool, text: () -> String) {
        if json { self.json(value) } else { line(text()) }
    }

    static func log(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func error(_ message: String) {
        if ProgressBar.lineOpen { log("") }
        log("possync: error: " + TextOutput.plain(message))
    }

    static func fail(_ e: AppError) -> Never {
        error(e.message)
        exit(e.exitCode)
    }

    static var stderrIsTerminal: Bool { isatty(2) == 1 }
}
