import Glibc

/// Why a kernel, an initrd or a command line cannot be booted. Shown to the user as one
/// line ("PATH: what is wrong"); the CLI exits 2 on these before anything is started.
public struct BootError: Error, Equatable, CustomStringConvertible {
    /// The file the problem is about (kernel or initrd path; "" when there is none).
    public var path: String
    public var problem: Problem

    public init(path: String, _ problem: Problem) {
        self.path = path
        self.problem = problem
    }

    public enum Problem: Equatable, CustomStringConvertible, Sendable {
        case cannotRead(errno: Int32)
        case shortRead(expected: UInt64, got: UInt64)
        case notAKernel
        case truncatedBzImage(fileSize: UInt64, needed: UInt64, what: String)
        case protocolTooOld(version: UInt16)
        case no64BitEntry
        case badHeader(String)
        case badELF(String)
        case segmentOutsideFile(index: Int)
        case segmentOutsideRAM(index: Int, address: UInt64, size: UInt64)
        case entryNotInSegment(entry: UInt64)
        case memoryTooSmall(needed: UInt64, available: UInt64)
        case commandLineTooLong(length: Int, allowed: Int)
        case commandLineHasNUL
        case initrdDoesNotFit(size: UInt64, below: UInt64)
        case guestMemory(GuestMemoryError)

        public var description: String {
            switch self {
            case .cannotRead(let e): return "cannot read: \(errnoText(e))"
            case .shortRead(let want, let got): return "short read: expected \(want) bytes, got \(got)"
            case .notAKernel: return "not a Linux kernel (no HdrS magic)"
            case .truncatedBzImage(let size, let needed, let what):
                return "truncated bzImage: file is \(size) bytes but \(what) needs \(needed)"
            case .protocolTooOld(let v): return "boot protocol \(versionText(v)) is older than 2.06"
            case .no64BitEntry: return "kernel has no 64-bit entry (XLF_KERNEL_64 not set)"
            case .badHeader(let s): return "bad setup header: \(s)"
            case .badELF(let s): return "not a usable x86-64 ELF kernel: \(s)"
            case .segmentOutsideFile(let i): return "ELF segment \(i) extends past the end of the file"
            case .segmentOutsideRAM(let i, let a, let s):
                return "ELF segment \(i) at \(hex(a))+\(hex(s)) is outside guest RAM"
            case .entryNotInSegment(let e): return "ELF entry point \(hex(e)) is in no loadable segment"
            case .memoryTooSmall(let needed, let available):
                return "memory too small for the kernel: needs \(mib(needed)) MiB of low RAM, have \(mib(available)) MiB"
            case .commandLineTooLong(let n, let m): return "command line is \(n) bytes, kernel allows \(m)"
            case .commandLineHasNUL: return "command line contains a NUL byte"
            case .initrdDoesNotFit(let size, let below):
                return "initrd does not fit: \(size) bytes needed below \(hex(below)) above the kernel"
            case .guestMemory(let e): return e.description
            }
        }
    }

    public var description: String { path.isEmpty ? problem.description : "\(path): \(problem)" }
}

func versionText(_ v: UInt16) -> String {
    let minor = v & 0xff
    return "\(v >> 8).\(minor < 10 ? "0" : "")\(minor)"
}

/// Rounded up, so "needs 17 MiB" is never an understatement.
func mib(_ bytes: UInt64) -> UInt64 { (bytes + (1 << 20) - 1) >> 20 }
