import Foundation
import Testing
@testable import PosJournal
@testable import PosCentral
@testable import PosCentralFiles
@testable import PosTerminal
@testable import PosWire

// Helpers for tests that damage stores on the real file system and check what opening and recovery make of them.

/// A store directory's files and directories, by path relative to the store (LOCK left out).
struct FileTree: Hashable {
    var files: [String: [UInt8]] = [:]
    var directories: Set<String> = []

    static func read(_ root: String) -> FileTree {
        var tree = FileTree()
        let fm = FileManager.default
        guard let walk = fm.enumerator(atPath: root) else { return tree }
        while let relative = walk.nextObject() as? String {
            if relative == StoreLockLimits.fileName { continue }
            var isDirectory: ObjCBool = false
            _ = fm.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory)
            if isDirectory.boolValue {
                tree.directories.insert(relative)
            } else {
                tree.files[relative] = [UInt8](fm.contents(atPath: root + "/" + relative) ?? Data())
            }
        }
        return tree
    }

    /// Makes `root`, which now holds `current`, hold this tree again, touching only what differs.
    func restore(_ root: String, from current: FileTree) {
        let fm = FileManager.default
        for path in current.files.keys where files[path] == nil { try? fm.removeItem(atPath: root + "/" + path) }
        for dir in current.directories.subtracting(directories).sorted(by: { $0.count > $1.count }) { try? fm.removeItem(atPath: root + "/" + dir) }
        for dir in directories.subtracting(current.directories).sorted(by: { $0.count < $1.count }) {
            try? fm.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
        }
        for (path, bytes) in files where current.files[path] != bytes {
            fm.createFile(atPath: root + "/" + path, contents: Data(bytes))
        }
    }

    /// Paths whose bytes differ from `other`'s (or exist in one only).
    func differences(from other: FileTree) -> [String] {
        let paths = Set(files.keys).union(other.files.keys).union(directories).union(other.directories)
        return paths.filter { files[$0] != other.files[$0] || directories.contains($0) != other.directories.contains($0) }.sorted()
    }
}

/// Where each frame of a segment file starts, with the sequence numbers it holds.
func frameLayout(_ path: String) throws -> [(offset: UInt64, first: UInt64, last: UInt64)] {
    let cursor = try SegmentCursor(file: PosixFileSystem().openFile(path, mode: .readOnly), path: path)
    defer { cursor.close() }
    var offset = UInt64(JournalLimits.segmentHeaderBytes)
    var out: [(offset: UInt64, first: UInt64, last: UInt64)] = []
    while case .frame(let f) = try cursor.next() {
        out.append((offset, f.header.firstSequence, f.header.lastSequence))
        offset += UInt64(f.bytes.count)
    }
    return out
}

/// The only segment file of a journal directory.
func onlySegment(_ directory: String) throws -> String {
    let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".seg") }.sorted()
    try #require(names.count == 1, "one segment in \(directory): \(names)")
    return directory + "/" + names[0]
}

func truncateFile(_ path: String, to size: UInt64) throws {
    let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    try h.truncate(atOffset: size)
    try h.close()
}

/// Every file of a store, for "nothing was changed" (LOCK left out).
func storeBytes(_ directory: String) -> FileTree { FileTree.read(directory) }

extension TerminalReplica {
    /// The oldest own sequence number the outbound journal still holds (after retirement).
    var outboundFirstSequence: UInt64 {
        (try? Journal.oldestSegmentBase(directory: directory + "/outbound")).flatMap { $0 } ?? 1
    }
}
