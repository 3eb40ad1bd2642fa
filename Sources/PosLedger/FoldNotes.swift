// A ticket's notes: one per dot, sorted by the dot of the event that added
// them. Within a batch the fold appends each note to `pending` (the ends of a
// few thousand tickets' lists stay in cache, where a hash table per ticket
// missed the cache on most notes of a large batch) and merges the pending
// notes once, at the end of the batch's ingest.

struct NoteEntry: Hashable, Sendable {
    /// The note's dot as `Dot.hashWord` (ordered as dots are): 24 bytes an entry
    /// instead of 32, and one comparison, for the sort and merge of every batch.
    let word: UInt64
    let note: NoteText

    init(dot: Dot, note: NoteText) {
        word = dot.hashWord
        self.note = note
        assert(self.dot == dot, "a dot outside the bounds Dot.hashWord packs: \(dot)")
    }

    /// Every dot that exists is within `Limits` (its initialisers and the decoders check), so
    /// the word gives it back: the replica above 40 bits of sequence.
    var dot: Dot { Dot(unchecked: ReplicaId(unchecked: UInt32(word >> 40)), word & (1 << 40 - 1)) }
}

struct TicketNotes: Hashable, Sendable {
    /// Sorted by dot, one note per dot.
    private(set) var entries: [NoteEntry] = []
    /// Added in the current batch, not yet merged: empty outside `LedgerState.apply`.
    private var pending: [NoteEntry] = []

    /// Notes held (outside a batch).
    var count: Int { entries.count }

    /// The dots of the notes, sorted.
    var dots: [Dot] { entries.map(\.dot) }

    /// The note added by the event `dot`, if any (outside a batch).
    subscript(dot: Dot) -> NoteText? {
        let i = lowerBound(dot.hashWord)
        return i < entries.count && entries[i].word == dot.hashWord ? entries[i].note : nil
    }

    mutating func add(_ dot: Dot, _ note: NoteText) { pending.append(NoteEntry(dot: dot, note: note)) }

    /// Merges the pending notes. Two different notes with one dot keep the one with
    /// the smaller text (UTF-8 order), as if added one by one in any order; returns
    /// the dots where that happened (a dot may repeat).
    mutating func merge() -> [Dot] {
        guard !pending.isEmpty else { return [] }
        var reused: [Dot] = []
        // A few notes into a long list: insert each (a move of the tail, no copies of the notes).
        if pending.count * Self.insertRatioMax < entries.count {
            for x in pending {
                let i = lowerBound(x.word)
                if i < entries.count && entries[i].word == x.word {
                    if let kept = Self.resolve(entries[i], x, &reused) { entries[i] = kept }
                } else {
                    entries.insert(x, at: i)
                }
            }
            pending.removeAll()
            return reused
        }
        // (Sorting (word, position) pairs and gathering measured slower: 512 against 372 Ir a note.)
        pending.sort { $0.word < $1.word }
        var out: [NoteEntry] = []
        out.reserveCapacity(entries.count + pending.count)
        var i = 0, j = 0
        while i < entries.count || j < pending.count {
            let x: NoteEntry
            if j == pending.count || (i < entries.count && pending[j].word >= entries[i].word) {
                x = entries[i]; i += 1
            } else {
                x = pending[j]; j += 1
            }
            if let last = out.last, last.word == x.word {
                if let kept = Self.resolve(last, x, &reused) { out[out.count - 1] = kept }
            } else {
                out.append(x)
            }
        }
        entries = out
        pending = []
        return reused
    }

    /// `held` and `x` share a dot: nil when they are the same note; otherwise the one
    /// with the smaller text, the dot noted as reused (once).
    private static func resolve(_ held: NoteEntry, _ x: NoteEntry, _ reused: inout [Dot]) -> NoteEntry? {
        guard !held.note.text.utf8.elementsEqual(x.note.text.utf8) else { return nil }  // bytes, not String ==
        if reused.last != x.dot { reused.append(x.dot) }
        return x.note.text.utf8.lexicographicallyPrecedes(held.note.text.utf8) ? x : held
    }

    /// Pending notes per held note below which they are inserted one by one instead of merged.
    private static let insertRatioMax = 8

    private func lowerBound(_ word: UInt64) -> Int {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].word < word { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
