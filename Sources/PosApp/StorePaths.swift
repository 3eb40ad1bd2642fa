import Foundation
import PosLedger

// The paths a command is given, checked before anything is written, so the
// same failure gets the same exit code in every command (docs/cli.md, "Exit
// codes"):
// - a store directory that is missing, or holds no store of the kind the
//   command needs (nothing, or the other kind): exit 3, the store is missing;
// - `init` on a directory that already holds a store of either kind, an input
//   file that is missing or not a readable file, an output file that exists or
//   whose directory does not exist or cannot be written: exit 1, wrong input;
// - a disk operation that fails once those checks passed: exit 3.

/// What a directory holds.
public enum StoreKind: String, Sendable {
    case terminal, central

    /// The kind of store in `directory`, or nil when it holds neither.
    public static func of(_ directory: String) -> StoreKind? {
        let fm = FileManager.default
        if fm.fileExists(atPath: directory + "/central.json") { return .central }
        if fm.fileExists(atPath: directory + "/enrollment.json") || fm.fileExists(atPath: directory + "/" + TerminalSettings.fileName) {
            return .terminal
        }
        return nil
    }

    /// Refuses (exit 1) to create a store of this kind in `directory` when it already holds a store or is not a directory.
    func checkCreating(in directory: String) throws(AppError) {
        let shown = TextOutput.plain(directory)
        try CommandPaths.checkCreatable(directory)
        if let found = Self.of(directory) {
            throw AppError(.refused, found == self ? "\(shown): a \(self) store already exists here"
                : "\(shown): a \(found) store is here; a \(self) store needs a directory of its own")
        }
    }

    /// Refuses (exit 3) to open a store of this kind in `directory` when it holds none.
    func checkOpening(_ directory: String) throws(AppError) {
        let shown = TextOutput.plain(directory)
        guard FileManager.default.fileExists(atPath: directory) else {
            throw AppError(.store, "\(shown): no such directory (no \(self) store here)")
        }
        guard let found = Self.of(directory) else { throw AppError(.store, "\(shown): no \(self) store here") }
        guard found == self else { throw AppError(.store, "\(shown): this is a \(found) store, not a \(self) store") }
    }
}

public enum CommandPaths {
    /// Refuses (exit 1) an input file that is missing, not a regular file, or not readable.
    public static func checkInput(_ path: String, what: String) throws(AppError) {
        let shown = TextOutput.plain(path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw AppError(.refused, "\(shown): no such \(what)")
        }
        guard !isDirectory.boolValue else { throw AppError(.refused, "\(shown): is a directory; expected the \(what)") }
        guard access(path, R_OK) == 0 else { throw AppError(.refused, "\(shown): the \(what) cannot be read (permission denied)") }
    }

    /// Refuses (exit 1) a directory to create (with its missing parents) when it,
    /// or the nearest of its parents that exists, is not a directory.
    public static func checkCreatable(_ directory: String) throws(AppError) {
        var existing = directory
        while !existing.isEmpty, !FileManager.default.fileExists(atPath: existing) { existing = (existing as NSString).deletingLastPathComponent }
        var isDirectory: ObjCBool = false
        if !existing.isEmpty, FileManager.default.fileExists(atPath: existing, isDirectory: &isDirectory), !isDirectory.boolValue {
            let shown = TextOutput.plain(directory)
            throw AppError(.refused, existing == directory ? "\(shown): not a directory" : "\(shown): \(TextOutput.plain(existing)) is not a directory")
        }
    }

    /// Refuses (exit 1) an output file that exists, or whose directory is missing, not a directory or not writable.
    public static func checkOutput(_ path: String, what: String) throws(AppError) {
        let shown = TextOutput.plain(path)
        if FileManager.default.fileExists(atPath: path) {
            throw AppError(.refused, "\(shown): already exists; a \(what) is never overwritten")
        }
        let parent = (path as NSString).deletingLastPathComponent
        let dir = parent.isEmpty ? "." : parent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) else {
            throw AppError(.refused, "\(shown): directory \(TextOutput.plain(dir)) does not exist")
        }
        guard isDirectory.boolValue else { throw AppError(.refused, "\(shown): \(TextOutput.plain(dir)) is not a directory") }
        guard access(dir, W_OK) == 0 else { throw AppError(.refused, "\(shown): directory \(TextOutput.plain(dir)) is not writable") }
    }
}
