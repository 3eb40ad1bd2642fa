import ArgumentParser
import PosApp
import PosLedger

/// Runs one decision on a ticket at a terminal or at central and prints it.
enum TicketCommandRunner {
    static func terminal(_ action: TicketAction, store: TerminalDirOption, ticket: TicketOptions, route: RouteArgument? = nil,
                         clock: ClockOptions, output: OutputOptions, console: Console) throws {
        let now = try clock.millis(console.environment)
        let (id, routeValue, note) = try parse(ticket, route: route)
        let desk = try TerminalDesk.open(directory: store.dir, lockWaitMillis: try store.lock.millis(console.environment), focus: .ticket(id))
        defer { try? desk.close() }
        let r = try desk.decide(action, ticket: id, route: routeValue, note: note, nowMillis: now)
        console.show(r, json: output.json) { r.text }
    }

    static func central(_ action: TicketAction, store: CentralDirOption, ticket: TicketOptions, route: RouteArgument? = nil,
                        clock: ClockOptions, output: OutputOptions, console: Console) throws {
        let now = try clock.millis(console.environment)
        let (id, routeValue, note) = try parse(ticket, route: route)
        let desk = try CentralDesk.open(at: store.location, clockMillis: { now }, lockWaitMillis: try store.lock.millis(console.environment))
        defer { try? desk.close() }
        let r = try desk.decide(action, ticket: id, route: routeValue, note: note, nowMillis: now)
        console.show(r, json: output.json) { r.text }
    }

    static func parse(_ t: TicketOptions, route: RouteArgument?) throws(AppError) -> (TicketId, RefundRoute?, NoteText?) {
        let id = try EntityParsing.ticket(t.ticket)
        let r = try route.map { argument throws(AppError) in try argument.value() }
        let note = try t.note.map { text throws(AppError) in try ledger { () throws(LedgerError) in try NoteText(text) } }
        return (id, r, note)
    }
}

extension TerminalCommand {
    struct Cancel: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "The customer withdraws a return request before it is decided.",
            discussion: "Example:\n  possync terminal cancel --dir shop2 --ticket 2-1-7 --note \"customer kept the goods\"")
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var ticket: TicketOptions
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run(_ console: Console) throws { try TicketCommandRunner.terminal(.cancel, store: store, ticket: ticket, clock: clock, output: output, console: console) }
    }

    struct Approve: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "The shop manager approves a return ticket.",
            discussion: "Example:\n  possync terminal approve --dir shop2 --ticket 2-1-7 --route original")
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var ticket: TicketOptions
        @Option(help: ArgumentHelp("original, account:REF or reship (default: original for a refund, reship for an exchange).", valueName: "route"))
        var route: RouteArgument?
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func validate() throws { _ = try TicketCommandRunner.parse(ticket, route: route) }
        func run(_ console: Console) throws { try TicketCommandRunner.terminal(.approve, store: store, ticket: ticket, route: route, clock: clock, output: output, console: console) }
    }

    struct Reject: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "The shop manager rejects a return ticket.",
            discussion: "Example:\n  possync terminal reject --dir shop2 --ticket 2-1-7 --note \"goods were worn\"")
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var ticket: TicketOptions
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run(_ console: Console) throws { try TicketCommandRunner.terminal(.reject, store: store, ticket: ticket, clock: clock, output: output, console: console) }
    }

    struct Escalate: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "The customer escalates a rejected ticket to customer service.",
            discussion: "Example:\n  possync terminal escalate --dir shop2 --ticket 2-1-7")
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var ticket: TicketOptions
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func run(_ console: Console) throws { try TicketCommandRunner.terminal(.escalate, store: store, ticket: ticket, clock: clock, output: output, console: console) }
    }

    struct Note: ConsoleCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a note to a ticket (any time).",
            discussion: "Example:\n  possync terminal note --dir shop2 --ticket 2-1-7 --note \"customer called back\"")
        @OptionGroup var store: TerminalDirOption
        @OptionGroup var ticket: TicketOptions
        @OptionGroup var clock: ClockOptions
        @OptionGroup var output: OutputOptions
        func validate() throws { if ticket.note == nil { throw ValidationError("give the note's text with --note") } }
        func run(_ console: Console) throws { try TicketCommandRunner.terminal(.note, store: store, ticket: ticket, clock: clock, output: output, console: console) }
    }
}
