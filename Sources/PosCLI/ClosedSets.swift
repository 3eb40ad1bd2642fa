import ArgumentParser
import PosApp
import PosLedger

// The options whose values are a closed set: --reason, --resolution, --route.
// Each is read into its enum as typed; a value outside the set is kept as
// `.outside` and refused by the command's validate() with exit 1 and the
// message docs/cli.md shows (a wrong value is wrong input, as a mistyped
// return code is, not a command line that cannot be parsed), before any store
// is opened.

/// --reason: quality, wrong-size, not-as-described, changed-mind or other:TEXT.
enum ReasonArgument: ExpressibleByArgument, Equatable {
    case quality, wrongSize, notAsDescribed, changedMind
    /// other:TEXT; the text is checked with the value (ReasonText's rules).
    case other(String)
    case outside(String)

    static let otherPrefix = "other:"

    init(argument: String) {
        switch argument {
        case "quality": self = .quality
        case "wrong-size": self = .wrongSize
        case "not-as-described": self = .notAsDescribed
        case "changed-mind": self = .changedMind
        default: self = argument.hasPrefix(Self.otherPrefix) ? .other(String(argument.dropFirst(Self.otherPrefix.count))) : .outside(argument)
        }
    }

    func value() throws(AppError) -> ReturnReason {
        switch self {
        case .quality: return .quality
        case .wrongSize: return .wrongSize
        case .notAsDescribed: return .notAsDescribed
        case .changedMind: return .changedMind
        case .other(let text): return .other(try ledger { () throws(LedgerError) in try ReasonText(text) })
        case .outside(let text):
            throw AppError(.refused, "reason \(PrintableText.escaped(String(text.prefix(40)))): expected quality, wrong-size, not-as-described, changed-mind or other:TEXT")
        }
    }
}

/// --resolution: refund or exchange.
enum ResolutionArgument: ExpressibleByArgument, Equatable {
    case refund, exchange
    case outside(String)

    init(argument: String) {
        switch argument {
        case "refund": self = .refund
        case "exchange": self = .exchange
        default: self = .outside(argument)
        }
    }

    func value() throws(AppError) -> Resolution {
        switch self {
        case .refund: return .refund
        case .exchange: return .exchange
        case .outside(let text): throw AppError(.refused, "resolution \(PrintableText.escaped(String(text.prefix(20)))): expected refund or exchange")
        }
    }
}

/// --route: original, account:REF or reship.
enum RouteArgument: ExpressibleByArgument, Equatable {
    case original, reship
    /// account:REF; the reference is checked with the value (AccountReference's rules).
    case account(String)
    case outside(String)

    static let accountPrefix = "account:"

    init(argument: String) {
        switch argument {
        case "original": self = .original
        case "reship": self = .reship
        default: self = argument.hasPrefix(Self.accountPrefix) ? .account(String(argument.dropFirst(Self.accountPrefix.count))) : .outside(argument)
        }
    }

    func value() throws(AppError) -> RefundRoute {
        switch self {
        case .original: return .originalPayment
        case .reship: return .reship
        case .account(let reference): return .designatedAccount(try ledger { () throws(LedgerError) in try AccountReference(reference) })
        case .outside(let text):
            throw AppError(.refused, "route \(PrintableText.escaped(String(text.prefix(40)))): expected original, account:REF or reship")
        }
    }
}
