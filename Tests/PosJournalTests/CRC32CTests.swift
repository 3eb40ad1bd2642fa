import Foundation
import Testing
@testable import PosJournal

/// The two implementations of CRC32C (the CPU's instruction and the portable
/// slicing-by-8) are one function: same value on every length, alignment and
/// split, and the standard check value on both.
@Suite("CRC32C implementations")
struct CRC32CTests {
    /// Where this CPU has the instruction, `update` must be using it (else the fallback is all that runs).
    @Test("the hardware path is chosen where the CPU has it, and both paths give the check value")
    func checkValueOnBothPaths() {
        let check = Array("123456789".utf8)
        #expect(check.withUnsafeBytes { CRC32C.softwareUpdate(0, $0) } == 0xE306_9283)
        #expect(CRC32C.checksum(check) == 0xE306_9283)
        #if arch(x86_64) && os(Linux)
        // The shim's cpuid check must agree with what the kernel reports (an emulated CPU may lack SSE4.2).
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) {
            let sse42 = flags.split(separator: " ").contains("sse4_2")
            #expect(CRC32C.usesHardware == sse42, "cpuid check says \(CRC32C.usesHardware), /proc/cpuinfo says sse4_2 \(sse42)")
        }
        #endif
        if CRC32C.usesHardware {
            #expect(check.withUnsafeBytes { CRC32C.hardwareUpdate(0, $0) } == 0xE306_9283)
        }
    }

    @Test("hardware and software agree on random buffers of every length 0...1024 at every alignment 0...15, whole and split")
    func pathsAgree() {
        guard CRC32C.usesHardware else { return }  // nothing to compare against on this CPU
        let seed = testSeed(32)
        var rng = SeededRandom(seed: seed)
        let alignmentsMax = 16
        let lengthMax = 1024
        var storage = [UInt8](repeating: 0, count: lengthMax + alignmentsMax)
        for i in storage.indices { storage[i] = UInt8.random(in: 0...255, using: &rng) }
        var failures = 0
        storage.withUnsafeBytes { all in
            for length in 0...lengthMax {
                let alignment = Int.random(in: 0..<alignmentsMax, using: &rng)
                let bytes = UnsafeRawBufferPointer(rebasing: all[alignment..<(alignment + length)])
                let initial = UInt32.random(in: 0...UInt32.max, using: &rng)
                let soft = CRC32C.softwareUpdate(initial, bytes)
                let hard = CRC32C.hardwareUpdate(initial, bytes)
                // Continuing across a random split gives the same value on either path.
                let split = Int.random(in: 0...length, using: &rng)
                let first = UnsafeRawBufferPointer(rebasing: bytes[..<split]), second = UnsafeRawBufferPointer(rebasing: bytes[split...])
                let mixed = CRC32C.softwareUpdate(CRC32C.hardwareUpdate(initial, first), second)
                if soft != hard || soft != mixed, failures < 5 {
                    failures += 1
                    Issue.record("length \(length), alignment \(alignment), initial \(initial), split \(split): software \(soft), hardware \(hard), mixed \(mixed) (seed \(seed))")
                }
            }
        }
        #expect(failures == 0, "seed \(seed)")
    }

    @Test("every alignment of the same bytes gives the same checksum on both paths")
    func everyAlignment() {
        let seed = testSeed(33)
        var rng = SeededRandom(seed: seed)
        let payload = (0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let expected = payload.withUnsafeBytes { CRC32C.softwareUpdate(0, $0) }
        for alignment in 0..<16 {
            let shifted = [UInt8](repeating: 0xAA, count: alignment) + payload
            shifted.withUnsafeBytes { p in
                let bytes = UnsafeRawBufferPointer(rebasing: p[alignment...])
                #expect(CRC32C.softwareUpdate(0, bytes) == expected, "alignment \(alignment) (seed \(seed))")
                #expect(CRC32C.checksum(bytes) == expected, "alignment \(alignment) (seed \(seed))")
                if CRC32C.usesHardware {
                    #expect(CRC32C.hardwareUpdate(0, bytes) == expected, "alignment \(alignment) (seed \(seed))")
                }
            }
        }
    }
}
