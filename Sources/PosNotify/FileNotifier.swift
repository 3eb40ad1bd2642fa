import Foundation
import PosJournal
import PosWire

/// Appends each notification's body as one line to a file, fsynced before it
/// counts as delivered: the demo's default and a stand-in for a gateway
/// (sync-protocol.md, "Notifications", "The file sender"). A reader takes
/// whole lines only; a torn last line (a crash mid-append) is written over by
/// the next append.
public final class FileNotifier: Notifier, @unchecked Sendable {
    public let path: String
    private let lock = NSLock()
    private let file: LineFile

    /// `path`'s directory must exist; the file is created (mode 0600: it holds phone numbers) at the first delivery.
    public init(path: String, fileSystem: any JournalFileSystem = PosixFileSystem()) throws(SyncError) {
        guard !path.isEmpty, !path.hasSuffix("/") else {
            throw SyncError(.invalidArgument, "the notifications file must be a file path", location: path.isEmpty ? "--file" : path)
        }
        let parent = FilePath.parent(of: path)
        guard fileSystem.fileExists(parent) else {
            throw SyncError(.invalidArgument, "the notifications file's directory \(parent) does not exist", location: path)
        }
        self.path = path
        file = try LineFile(path: path, fs: fileSystem)
    }

    public var destination: String { "file \(path)" }

    public func deliver(_ notification: CustomerNotification, body: [UInt8], attempt: Int) -> DeliveryOutcome {
        lock.lock()
        defer { lock.unlock() }
        do {
            try file.append([body])
        } catch {
            // The line is in the file, perhaps not durably, and a reader may have taken it: never written again.
            if file.keepIfLanded(bytes: body.count + 1) { return .outcomeUnknown(detail: "\(error.description) after the line was written") }
            // Nothing past the last whole line counts: the next append writes over what this one left.
            return .failedRetryable(detail: error.description, retryAfterMillis: nil)
        }
        return .delivered(detail: "appended to \(path)")
    }

    public func close() {}
}
