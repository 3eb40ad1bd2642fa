import ArgumentParser
import PosApp

/// Usage errors as one line on standard error, like every other failure:
/// `possync: error: MESSAGE (see 'possync terminal status --help')`, exit 2.
enum Usage {
    /// The subcommands named at the start of `arguments` ("possync terminal status"),
    /// the command they lead to, and the first argument after them.
    static func path(_ arguments: [String]) -> (names: [String], command: ParsableCommand.Type, next: String?) {
        var names = [Possync._commandName]
        var command: ParsableCommand.Type = Possync.self
        for (i, argument) in arguments.enumerated() {
            guard let sub = command.configuration.subcommands.first(where: { $0._commandName == argument }) else {
                return (names, command, arguments[i])
            }
            names.append(argument)
            command = sub
        }
        return (names, command, nil)
    }

    /// The usage error for ArgumentParser's message (only its first line: the
    /// rest is usage text), naming an unknown subcommand as such.
    static func error(_ fullMessage: String, arguments: [String]) -> AppError {
        let (names, command, next) = path(arguments)
        let help = "(see '\(names.joined(separator: " ")) --help')"
        let subcommands = command.configuration.subcommands.map { $0._commandName }
        if !subcommands.isEmpty, let next, !next.hasPrefix("-") {
            return AppError(.usage, "unknown subcommand '\(next)' of '\(names.joined(separator: " "))': expected one of "
                + subcommands.joined(separator: ", ") + " " + help)
        }
        var message = fullMessage.split(whereSeparator: \.isNewline).first.map(String.init) ?? "cannot parse the command line"
        if message.hasPrefix("Error: ") { message.removeFirst(7) }
        return AppError(.usage, message + " " + help)
    }

    /// The usage error when the command line names a group of commands but none of them ("possync terminal").
    static func missingSubcommand(_ command: ParsableCommand, arguments: [String]) -> AppError? {
        let subcommands = type(of: command).configuration.subcommands.map { $0._commandName }
        guard !subcommands.isEmpty else { return nil }
        let names = path(arguments).names.joined(separator: " ")
        return AppError(.usage, "'\(names)' needs a subcommand: one of \(subcommands.joined(separator: ", ")) (see '\(names) --help')")
    }
}
