import Foundation
import PosJournal
import PosWire

/// The file `possync central migrate` leaves in a file central's directory once the move to
/// PostgreSQL passed its check (sync-protocol.md, "Moving central to PostgreSQL"): its only write
/// to the source. From then on central lives in the database; a command that would write to the
/// directory's central, or serve it, is refused naming the file and the database, so the two never
/// go on apart. `central show` and `central status` still read the directory.
public struct CentralMovedMarker: Codable, Sendable, Equatable {
    public static let fileName = "MOVED"

    /// The database central lives in now, without its password.
    public var postgres: String
    /// When the move was checked (ISO 8601).
    public var movedAt: String
    /// Central's id, in hex.
    public var central: String

    public static func path(in directory: String) -> String { directory + "/" + fileName }

    /// The marker in `directory` (nil: none). One that does not read still marks the directory moved.
    public static func read(_ directory: String) -> CentralMovedMarker? {
        let path = path(in: directory)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path), let m = try? JSONDecoder().decode(Self.self, from: data) else {
            return CentralMovedMarker(postgres: "(\(fileName) does not read)", movedAt: "?", central: "?")
        }
        return m
    }

    /// Refuses (exit 1) `command` on a directory whose central was moved, naming the file and the database.
    static func refuse(_ directory: String, command: String) throws(AppError) {
        guard let m = read(directory) else { return }
        throw AppError(.refused, "\(TextOutput.plain(path(in: directory))): central \(m.central) was moved to \(m.postgres) at \(m.movedAt); "
                       + "\(command) works there now (--postgres \(m.postgres)); this directory is only read (`central show --dir`, `central status --dir`)")
    }

    /// Writes the marker unless one is there already: MOVED.tmp, fsynced, renamed, the directory fsynced
    /// (a reader finds the whole file or none, and it outlives a crash once this returns).
    static func write(_ marker: CentralMovedMarker, in directory: String) throws(AppError) {
        let path = path(in: directory)
        guard !FileManager.default.fileExists(atPath: path) else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let failed = "the database is checked, but central is not marked moved there: run the migration again"
        let bytes: Data
        do { bytes = try encoder.encode(marker) + Data([0x0A]) } catch {
            throw AppError(.store, "\(TextOutput.plain(path)): cannot encode the moved marker: \(error); \(failed)")
        }
        do { try FileStore(fs: PosixFileSystem()).writeAtomically(Array(bytes), to: path) } catch {
            throw AppError(.store, "\(TextOutput.plain(path)): cannot write the moved marker: \(error.description); \(failed)")
        }
    }
}
