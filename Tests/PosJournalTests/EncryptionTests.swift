import Foundation
import PosBytes
import Testing
@testable import PosJournal
import PosTestSupport

@Suite("encryption")
struct EncryptionTests {
    func writeEncrypted(_ dir: String, count: Int = 3) throws {
        let j = try Journal.open(directory: dir, configuration: JournalConfiguration(dictionary: testDictionary, key: testKey))
        for i in 0..<count { try j.append(Array("payment code 134567890123456789 sale \(i)".utf8)) }
        try j.close()
    }

    @Test("nothing of a record is in clear on disk")
    func noClearText() throws {
        let dir = TemporaryDirectory()
        try writeEncrypted(dir.path)
        let bytes = fileBytes(dir.sub(segmentFiles(dir.path)[0]))
        let needle = Array("134567890123456789".utf8)
        let found = (0...(bytes.count - needle.count)).contains { Array(bytes[$0..<($0 + needle.count)]) == needle }
        #expect(!found)
    }

    @Test("a wrong key fails with a clear error naming the frame")
    func wrongKey() throws {
        let dir = TemporaryDirectory()
        try writeEncrypted(dir.path)
        // Same key id, different key bytes: AES-GCM authentication fails.
        let reader = try JournalReader(directory: dir.path, dictionaries: [testDictionary], key: otherKey)
        do {
            _ = try reader.next()
            Issue.record("read with the wrong key succeeded")
        } catch {
            #expect(error.code == .authenticationFailed)
            #expect(error.file?.hasSuffix(".seg") == true)
            #expect(error.offset == 64)
            #expect(error.sequence == 1)
            #expect(error.description.contains("seq 1...1"))
        }
        // Different key id: refused before trying to decrypt.
        let other = JournalKey(id: 8, bytes: Array(repeating: 1, count: 32))
        do {
            _ = try JournalReader(directory: dir.path, dictionaries: [testDictionary], key: other).next()
            Issue.record("read with another key id succeeded")
        } catch {
            #expect(error.code == .wrongKey)
            #expect(error.message.contains("key id 7"))
        }
        // No key at all.
        do {
            _ = try JournalReader(directory: dir.path, dictionaries: [testDictionary], key: nil).next()
            Issue.record("read with no key succeeded")
        } catch {
            #expect(error.code == .missingKey)
        }
        #expect(throws: JournalError.self) {
            _ = try Journal.open(directory: dir.path, configuration: JournalConfiguration(dictionary: testDictionary, key: JournalKey(id: 8, bytes: Array(repeating: 1, count: 32))))
        }
    }

    @Test("a flipped ciphertext bit fails authentication even when the checksums are recomputed")
    func flippedBit() throws {
        let dir = TemporaryDirectory()
        try writeEncrypted(dir.path, count: 1)
        let path = dir.sub(segmentFiles(dir.path)[0])
        var bytes = fileBytes(path)
        let frame = JournalLimits.segmentHeaderBytes
        let payloadStart = frame + JournalLimits.frameHeaderBytes
        // Plain damage: caught by the payload checksum, without the key.
        var damaged = bytes
        damaged[payloadStart + 20] ^= 0x04
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        do { _ = try JournalReader(directory: dir.path, dictionaries: [testDictionary], key: testKey).next(); Issue.record("damage not detected") } catch {
            #expect(error.code == .payloadChecksum)
        }
        // Deliberate tampering: flip a ciphertext bit and fix both checksums.
        bytes[payloadStart + 20] ^= 0x04
        let payload = Array(bytes[payloadStart...])
        bytes.replaceSubrange((frame + 32)..<(frame + 36), with: le32(CRC32C.checksum(payload)))
        bytes.replaceSubrange((frame + 36)..<(frame + 40), with: le32(CRC32C.checksum(Array(bytes[frame..<(frame + 36)]))))
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do { _ = try JournalReader(directory: dir.path, dictionaries: [testDictionary], key: testKey).next(); Issue.record("tampering not detected") } catch {
            #expect(error.code == .authenticationFailed)
            #expect(error.offset == UInt64(frame))
        }
    }

    @Test("no two frames share a nonce across 100,000 appends with truncate-and-rewrite in between")
    func nonceUniqueness() throws {
        let total = testCount("POSSYNC_NONCE_APPENDS", default: 100_000)
        let dir = TemporaryDirectory()
        let fs = RecordingFileSystem()
        fs.keepWrites = true
        let config = JournalConfiguration(durability: .none(bufferBytes: 0), segmentBytesMax: 1 << 20, dictionary: testDictionary, key: testKey)
        var journal = try Journal.open(directory: dir.path, configuration: config, fileSystem: fs)
        var appended = 0
        var rewrites = 0
        var nonces = Set<[UInt8]>()
        var frames = 0
        func collect() {
            for w in fs.writes where !(w.bytes.count >= 8 && Array(w.bytes[0..<8]) == Array("PSJOURNL".utf8)) {
                var at = 0
                while at + JournalLimits.frameHeaderBytes + JournalLimits.nonceBytes <= w.bytes.count {
                    let stored = Int(ByteReader<ByteReadError>(w.bytes).getLE(UInt32.self, at: at + 24)!)
                    nonces.insert(Array(w.bytes[(at + 40)..<(at + 52)]))
                    frames += 1
                    at += JournalLimits.frameHeaderBytes + stored
                }
            }
        }
        while appended < total {
            for _ in 0..<1000 where appended < total {
                try journal.append([UInt8(appended & 0xFF), 1, 2, 3])
                appended += 1
            }
            try journal.close()
            // Cut into the last frame: reopening truncates the torn tail, and the
            // same sequence numbers are written again under fresh nonces.
            let last = dir.sub(segmentFiles(dir.path).last!)
            let size = fileBytes(last).count
            if size > 200 {
                let handle = try PosixFileSystem().openFile(last, mode: .readWrite)
                try handle.truncate(to: UInt64(size - 30))
                try handle.close()
                rewrites += 1
            }
            journal = try Journal.open(directory: dir.path, configuration: config, fileSystem: fs)
        }
        try journal.close()
        collect()
        #expect(frames >= total)
        #expect(rewrites > 50)
        #expect(nonces.count == frames, "\(frames - nonces.count) nonces repeated")
    }
}

func le32(_ v: UInt32) -> [UInt8] { ByteWriter.le(v) }
