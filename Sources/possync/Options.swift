import ArgumentParser
import PosApp

/// --json: machine-readable output.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
    var json = false
}

/// --now: the wall clock override.
struct ClockOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Use this time instead of the wall clock (ISO 8601, e.g. 2026-03-02T08:00:00Z); default: $POSSYNC_NOW, else the system clock.", valueName: "time"))
    var now: String?

    func millis() throws(AppError) -> Int64 { try WallClock.resolve(option: now) }
}

struct TerminalDirOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The terminal's store directory.", valueName: "dir"))
    var dir: String
}

struct CentralDirOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The central store directory.", valueName: "dir"))
    var dir: String
}

/// --ticket and --note, shared by every decision on a ticket.
struct TicketOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The ticket number (42-1078-5) or id (42:1078).", valueName: "no"))
    var ticket: String

    @Option(name: .long, help: ArgumentHelp("A note to add to the ticket with the decision.", valueName: "text"))
    var note: String?
}
