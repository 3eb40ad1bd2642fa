/// A Bloom filter over the lookup keys of the components, tickets and
/// duplicate-keys sections: a lookup for a key the snapshot does not hold
/// reads no frame (0.07 % false positives at 16 bits per key, `SnapshotLimits.filterBitsPerKey`).
struct KeyFilter: Sendable {
    var words: [UInt64]

    init(expectedKeys: Int) {
        let bits = max(64, expectedKeys * SnapshotLimits.filterBitsPerKey)
        words = [UInt64](repeating: 0, count: (bits + 63) / 64)
    }

    init(words: [UInt64]) { self.words = words.isEmpty ? [0] : words }

    private func probes(_ section: SnapshotSection, _ key: ArraySlice<UInt8>) -> (UInt64, UInt64) {
        // FNV-1a over section and key, finished with splitmix64; double hashing.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        h = (h ^ UInt64(section.rawValue)) &* 0x100_0000_01b3
        for b in key { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        func mix(_ x: UInt64) -> UInt64 {
            var z = x &+ 0x9e37_79b9_7f4a_7c15
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        return (mix(h), mix(h ^ 0x5bd1_e995) | 1)
    }

    mutating func insert(_ section: SnapshotSection, _ key: ArraySlice<UInt8>) {
        let (h1, h2) = probes(section, key)
        let bits = UInt64(words.count * 64)
        for i in 0..<UInt64(SnapshotLimits.filterProbes) {
            let bit = (h1 &+ i &* h2) % bits
            words[Int(bit / 64)] |= 1 << (bit % 64)
        }
    }

    func mayContain(_ section: SnapshotSection, _ key: ArraySlice<UInt8>) -> Bool {
        let (h1, h2) = probes(section, key)
        let bits = UInt64(words.count * 64)
        for i in 0..<UInt64(SnapshotLimits.filterProbes) {
            let bit = (h1 &+ i &* h2) % bits
            if words[Int(bit / 64)] & (1 << (bit % 64)) == 0 { return false }
        }
        return true
    }
}
