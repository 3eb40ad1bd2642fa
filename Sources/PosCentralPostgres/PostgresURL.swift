import Foundation
import PosWire

/// Where a PostgreSQL central lives: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`
/// (`postgresql://` too). The password never appears in what is printed: errors
/// and logs name the database by `redacted`.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String

    /// The default PostgreSQL port.
    public static let portDefault = 5432

    public init(host: String, port: Int = PostgresURL.portDefault, user: String, password: String? = nil, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// Parses `text`; the error names what is wrong and shows the URL without its password.
    public init(parsing text: String) throws(SyncError) {
        let shown = PostgresURL.redacting(text)
        guard let c = URLComponents(string: text), let scheme = c.scheme, scheme == "postgres" || scheme == "postgresql" else {
            throw SyncError(.invalidArgument, "\(shown): a PostgreSQL URL is postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        guard let host = c.host, !host.isEmpty else { throw SyncError(.invalidArgument, "\(shown): the URL names no host") }
        guard let user = c.user, !user.isEmpty else { throw SyncError(.invalidArgument, "\(shown): the URL names no user (postgres://USER@HOST/DATABASE)") }
        let database = String(c.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw SyncError(.invalidArgument, "\(shown): the URL names no database (…/DATABASE)") }
        let port = c.port ?? PostgresURL.portDefault
        guard (1...65_535).contains(port) else { throw SyncError(.invalidArgument, "\(shown): port \(port) outside 1...65535") }
        self.init(host: host, port: port, user: user.removingPercentEncoding ?? user,
                  password: c.password.map { $0.removingPercentEncoding ?? $0 }, database: database.removingPercentEncoding ?? database)
    }

    /// `URL1,URL2,...`: the shards of one central, in the order they were added (one URL: a central in one
    /// database). A comma inside a password is written %2C.
    public static func list(parsing text: String) throws(SyncError) -> [PostgresURL] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var urls: [PostgresURL] = []
        for (i, part) in parts.enumerated() {
            guard !part.isEmpty else { throw SyncError(.invalidArgument, "URL \(i + 1) of \(parts.count) is empty (URL1,URL2,...: no empty entry)") }
            urls.append(try PostgresURL(parsing: part))
        }
        return urls
    }

    /// The URL as printed everywhere: the password replaced by `***`.
    public var redacted: String { "postgres://\(user)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)" }
    public var description: String { redacted }

    /// The same server, another database (tests make one database per store).
    public func with(database: String) -> PostgresURL {
        var u = self
        u.database = database
        return u
    }

    /// `text` with any password between `://USER:` and `@` replaced by `***` (for errors about a URL that did not parse).
    static func redacting(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].lastIndex(of: "@") else { return text }
        let userinfo = text[scheme.upperBound..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }
}
