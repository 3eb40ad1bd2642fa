import Foundation
import PosJournal
import PosLedger
import PosWire

// What the nightly job makes of a bundle before importing it, and the names
// of the reasons it rejects one for (docs/nightly.md, "Rejected bundles").

extension NightlyInbox {
    /// Why a bundle is rejected: the first word of its reason file and of its report line.
    enum Rejection {
        /// The SHA-256 it carries does not match its bytes (or a frame fails its checks): damaged.
        static let corrupted = "corrupted"
        /// It ends before its frames or its checksum do.
        static let truncated = "truncated"
        /// Not a bundle, or a bundle whose header and frames do not agree.
        static let malformed = "malformed"
        static let unsupportedVersion = "unsupported-version"
        /// Its bytes were imported before (tonight or on an earlier night).
        static let duplicate = "duplicate"
        /// Exported for another central store.
        static let otherCentral = "other-central"
        /// From a terminal this central never enrolled.
        static let unknownTerminal = "unknown-terminal"
        /// From a terminal whose enrollment was revoked.
        static let revokedTerminal = "revoked-terminal"
        /// Its events break a rule of the protocol (authority, another merchant's entity, a rewrite, a gap): none applied.
        static let refused = "refused"
    }

    /// The reason kind and detail for a bundle `BundleReader` or the import refused.
    static func rejection(_ e: SyncError, path: String) -> (kind: String, detail: String) {
        let detail = e.description
        switch e.code {
        case .checksum: return (truncation(path) == nil ? Rejection.corrupted : Rejection.truncated, (truncation(path).map { $0 + "; " } ?? "") + detail)
        case .wrongCentral: return (Rejection.otherCentral, detail)
        case .notEnrolled: return (Rejection.unknownTerminal, detail)
        case .versionUnsupported: return (Rejection.unsupportedVersion, detail)
        case .journal: return (Rejection.corrupted, detail)
        case .malformed where e.message.hasSuffix("truncated"): return (Rejection.truncated, detail)
        case .malformed: return (Rejection.malformed, detail)
        default: return ("\(e.code)" == "revoked" ? Rejection.revokedTerminal : Rejection.refused, detail)
        }
    }

    /// Where a bundle whose checksum failed ends too soon for what its header and
    /// frames announce (nil: its frames fit, so its bytes are damaged, not cut).
    static func truncation(_ path: String) -> String? {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        guard let size = try? h.seekToEnd(), (try? h.seek(toOffset: 0)) != nil,
              let head = try? h.read(upToCount: BundleHeader.bytes), let stored = BundleHeader.Stored(Array(head)) else { return nil }
        var at = UInt64(BundleHeader.bytes)
        for index in 0..<stored.frameCount {
            guard at + UInt64(JournalLimits.frameHeaderBytes) <= size else {
                return "the file is \(size) bytes and ends inside frame \(index) of \(stored.frameCount)'s header (offset \(at))"
            }
            guard (try? h.seek(toOffset: at)) != nil, let bytes = try? h.read(upToCount: JournalLimits.frameHeaderBytes),
                  let frame = try? FrameHeader.inspect(Array(bytes), file: path, offset: at).get() else { return nil }
            at += UInt64(frame.frameBytes)
            if at > size { return "the file is \(size) bytes and ends inside frame \(index) of \(stored.frameCount) (it needs \(at))" }
        }
        if at + UInt64(BundleHeader.checksumBytes) > size {
            return "the file is \(size) bytes and ends before its checksum (it needs \(at + UInt64(BundleHeader.checksumBytes)))"
        }
        return nil
    }
}
