import Glibc
import KVMKit

/// Where `swiftvmm run` finds the probe kernel when no --kernel is given.
enum DefaultGuest {
    static func probeKernelPath() throws -> String {
        var candidates: [String] = []
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 {
            let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let slash = exe.lastIndex(of: "/") {
                let dir = String(exe[..<slash])
                candidates.append(dir + "/probe.bzImage")
                // .build/<config>/swiftvmm in a checkout → guests/out
                candidates.append(dir + "/../../guests/out/probe.bzImage")
                candidates.append(dir + "/../../../guests/out/probe.bzImage")
            }
        }
        candidates.append("guests/out/probe.bzImage")
        for c in candidates where access(c, R_OK) == 0 { return c }
        throw ConfigurationError.file(path: "probe.bzImage",
                                      problem: "no --kernel given and the probe kernel was not found (build it: make -C guests probe)")
    }
}
