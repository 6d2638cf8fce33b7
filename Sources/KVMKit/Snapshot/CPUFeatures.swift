/// The CPU a saved state depends on: the vendor (a state from an Intel host does not run
/// on AMD) and the CPUID feature words KVM offered the guest, which the restoring host's
/// KVM must offer too (a guest that saw AVX-512 cannot continue where it is missing).
public struct CPUFeatures: Equatable, Sendable, StateCodable {
    /// "GenuineIntel", "AuthenticAMD", …
    public var vendor: String
    /// Feature words keyed by name ("1.ecx", "7.ebx" …), masked of the bits swiftvmm
    /// itself sets per VM (hypervisor, HTT, CmpLegacy).
    public var words: [Word]

    public struct Word: Equatable, Sendable, StateCodable {
        public var name: String
        public var bits: UInt32

        public init(name: String, bits: UInt32) { self.name = name; self.bits = bits }
        public func encode(to w: inout StateWriter) { w.write(name); w.write(bits) }
        public init(from r: inout StateReader) throws {
            name = try r.readString("feature word name")
            bits = try r.read(UInt32.self, "feature word bits")
        }
    }

    public init(vendor: String, words: [Word]) {
        self.vendor = vendor
        self.words = words
    }

    /// The words read from a CPUID table (a vCPU's, or KVM's supported set).
    public init(cpuid: [CPUIDEntry]) {
        func leaf(_ f: UInt32, _ i: UInt32 = 0) -> CPUIDEntry? { cpuid.first { $0.function == f && $0.index == i } }
        let l0 = leaf(0)
        var vendor: [UInt8] = []
        for reg in [l0?.ebx ?? 0, l0?.edx ?? 0, l0?.ecx ?? 0] { withUnsafeBytes(of: reg.littleEndian) { vendor += $0 } }
        self.vendor = String(decoding: vendor.prefix { $0 != 0 }, as: UTF8.self)
        let l1 = leaf(1), l7 = leaf(7), xs = leaf(0xD), ext = leaf(0x8000_0001)
        words = [
            Word(name: "1.ecx", bits: (l1?.ecx ?? 0) & ~(1 << 31)),
            Word(name: "1.edx", bits: (l1?.edx ?? 0) & ~(1 << 28)),
            Word(name: "7.ebx", bits: l7?.ebx ?? 0),
            Word(name: "7.ecx", bits: l7?.ecx ?? 0),
            Word(name: "7.edx", bits: l7?.edx ?? 0),
            Word(name: "d.eax", bits: xs?.eax ?? 0),
            Word(name: "80000001.ecx", bits: (ext?.ecx ?? 0) & ~(1 << 1)),
            Word(name: "80000001.edx", bits: ext?.edx ?? 0),
        ]
    }

    /// Why a host that offers `self` cannot run a state that needs `needed`; nil if it can.
    public func cannotRun(_ needed: CPUFeatures) -> String? {
        if needed.vendor != vendor { return "state is from a \(needed.vendor) CPU, this host is \(vendor)" }
        for w in needed.words {
            let have = words.first { $0.name == w.name }?.bits ?? 0
            let missing = w.bits & ~have
            if missing != 0 { return "this host lacks CPUID \(w.name) feature bits \(hex(missing)) the state needs" }
        }
        return nil
    }

    public func encode(to w: inout StateWriter) { w.write(vendor); w.write(words) }
    public init(from r: inout StateReader) throws {
        vendor = try r.readString("CPU vendor")
        words = try r.readArray(Word.self, "CPU feature words", limit: 64)
    }
}
