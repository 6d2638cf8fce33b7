/// `--seccomp-filter FILE`: compiled BPF programs per thread kind, in the format
/// Firecracker's `seccompiler-bin` writes (so its JSON filters can be compiled with its
/// tool and used here): bincode with fixed-width little-endian integers of a map
/// `String → [u64]` — u64 entry count, then per entry a u64 length and the UTF-8 name, a
/// u64 instruction count and the instructions, each one `struct sock_filter` read as a u64.
///
/// Names are Firecracker's thread categories `vmm`, `api`, `vcpu`, all three required, and
/// optionally `main`, `control` and `block` (Firecracker has no separate main thread, its
/// VMM thread executes the API's requests, and it has no disk I/O threads; without them
/// those threads get the `vmm` program).
public enum SeccompFilterFile {
    /// Firecracker's limit on the file, against allocation attacks through huge counts.
    public static let maxBytes = 100_000

    public static func parse(_ bytes: [UInt8], path: String) throws(SeccompError) -> [ThreadKind: [BPFInstruction]] {
        func bad(_ problem: String) -> SeccompError { .badFilterFile(path: path, problem: problem) }
        guard bytes.count <= maxBytes else { throw bad("\(bytes.count) bytes, more than \(maxBytes)") }
        var at = 0
        func u64(_ what: String) throws(SeccompError) -> UInt64 {
            guard bytes.count - at >= 8 else { throw bad("ends inside \(what) at byte \(at)") }
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
            at += 8
            return v
        }
        var programs: [ThreadKind: [BPFInstruction]] = [:]
        let entries = try u64("the entry count")
        guard entries <= 8 else { throw bad("\(entries) thread categories") }
        for _ in 0..<entries {
            let nameLength = try u64("a name length")
            guard nameLength <= 16, bytes.count - at >= Int(nameLength) else { throw bad("bad name length \(nameLength) at byte \(at - 8)") }
            let name = String(decoding: bytes[at..<at + Int(nameLength)], as: UTF8.self)
            at += Int(nameLength)
            guard let kind = ThreadKind(rawValue: name) else { throw bad("unknown thread category \"\(name)\" (use vmm, api, vcpu, main, control, block)") }
            guard programs[kind] == nil else { throw bad("thread category \(name) appears twice") }
            let count = try u64("the \(name) instruction count")
            guard count >= 1, count <= UInt64(SeccompProgram.maxInstructions) else {
                throw bad("the \(name) program has \(count) instructions (1...\(SeccompProgram.maxInstructions))")
            }
            var program: [BPFInstruction] = []
            program.reserveCapacity(Int(count))
            for _ in 0..<count {
                let raw = try u64("the \(name) program")
                program.append(BPFInstruction(code: UInt16(truncatingIfNeeded: raw), jt: UInt8(truncatingIfNeeded: raw >> 16),
                                              jf: UInt8(truncatingIfNeeded: raw >> 24), k: UInt32(truncatingIfNeeded: raw >> 32)))
            }
            programs[kind] = program
        }
        guard at == bytes.count else { throw bad("\(bytes.count - at) bytes after the last program") }
        for kind in [ThreadKind.vmm, .api, .vcpu] where programs[kind] == nil {
            throw bad("no program for thread category \(kind.rawValue)")
        }
        for kind in [ThreadKind.main, .control, .block] where programs[kind] == nil { programs[kind] = programs[.vmm] }
        return programs
    }

    /// The file for these programs (kinds in a fixed order, so output is reproducible).
    public static func serialize(_ programs: [ThreadKind: [BPFInstruction]]) -> [UInt8] {
        var out: [UInt8] = []
        func u64(_ v: UInt64) { for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
        let kinds = ThreadKind.allCases.filter { programs[$0] != nil }
        u64(UInt64(kinds.count))
        for kind in kinds {
            let program = programs[kind] ?? []
            u64(UInt64(kind.rawValue.utf8.count))
            out += Array(kind.rawValue.utf8)
            u64(UInt64(program.count))
            for i in program {
                u64(UInt64(i.code) | UInt64(i.jt) << 16 | UInt64(i.jf) << 24 | UInt64(i.k) << 32)
            }
        }
        return out
    }
}
