import ArgumentParser
import Foundation
import PosApp

/// Runs `possync` with `arguments` (what follows the program's name) on
/// `console` and returns its exit code (docs/cli.md, "Exit codes"): every
/// failure is one line on the console's standard error and a code, never an
/// exit of the process, so a test can run commands in-process.
public func run(arguments: [String], console: Console = .standard()) -> Int32 {
    RunEnvironment.$values.withValue(console.environment) {
        do {
            let command = try Possync.parseAsRoot(arguments)
            if let missing = Usage.missingSubcommand(command, arguments: arguments) { return fail(missing, console) }
            if let leaf = command as? ConsoleCommand {
                try leaf.run(console)
            } else {
                // ArgumentParser's own ("possync help terminal"): it throws its help request, printed below.
                var builtIn = command
                try builtIn.run()
            }
            return ExitCode.success.rawValue
        } catch let error as AppError {
            return fail(error, console)
        } catch {
            let code = Possync.exitCode(for: error)
            let message = Possync.fullMessage(for: error)
            if code == .success {  // --help, --version: on standard output
                if !message.isEmpty { console.line(message) }
                return code.rawValue
            }
            if error is ExitCode { return code.rawValue }
            if code == .failure {
                // An AppError a validate() threw: ArgumentParser hands it back wrapped, as a
                // failure with the error's description. Every one is a refusal of a value
                // (a closed set's value outside the set, a time that does not parse).
                return fail(AppError(.refused, Possync.message(for: error)), console)
            }
            return fail(Usage.error(message, arguments: arguments), console)
        }
    }
}

private func fail(_ error: AppError, _ console: Console) -> Int32 {
    console.error(error.message)
    return error.exitCode
}

/// A command that runs on the console of its run: what it prints and the
/// environment it reads come from there, never from the process.
protocol ConsoleCommand: ParsableCommand {
    func run(_ console: Console) throws
}

/// The environment of the run being parsed, for the options whose validate()
/// reads it (ArgumentParser's validate() takes no arguments). Bound for the
/// length of one `run(arguments:console:)`; the process's environment outside one.
enum RunEnvironment {
    @TaskLocal static var values: [String: String] = ProcessInfo.processInfo.environment
}

struct Possync: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "possync",
        abstract: "Offline-first sync for point-of-sale terminals: sales, returns, sync, reconciliation.",
        discussion: """
            Example:
              possync demo --seed 1

            Exit codes:
              0  ok
              1  refused: the input or the request is wrong (bad return code, amount above the sale, offline limit, invalid transition)
              2  usage: the command line cannot be parsed
              3  store: a store is missing, damaged, unreadable or shorter than it knows it was (run `recover`), or a disk operation failed
              4  busy: another possync process held the store's lock past --lock-timeout; retry
              5  unreachable: the sync server (--server URL) did not answer after every try; retry later
              6  nightly: done, and the report lists something to look at (docs/nightly.md)
            A failed command prints one line on standard error and changes nothing.

            Locks: one possync process at a time works on a store directory; another waits up to --lock-timeout SECONDS (default 10, or $POSSYNC_LOCK_TIMEOUT).

            Clock: every command uses the wall clock unless --now TIME or the environment variable POSSYNC_NOW gives one (ISO 8601: 2026-03-02T08:00:00Z, 2026-03-02T16:00+08:00, 2026-03-02).
            """,
        version: "0.1.0",
        subcommands: [CentralCommand.self, TerminalCommand.self, NightlyCommand.self, DemoCommand.self]
    )
}
