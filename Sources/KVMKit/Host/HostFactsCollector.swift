import CKVM
import Glibc

/// Reads the real host into `HostFacts`: /proc/cpuinfo, /sys/module, the device node,
/// and a trial VM. Thin on purpose; the verdict lives in `HostCheck`.
public enum HostFactsCollector {
    public static func collect(devicePath: String = KVM.defaultDevicePath) -> HostFacts {
        var f = HostFacts(devicePath: devicePath)
        f.userName = currentUserName()
        if let text = readSmallFile("/proc/cpuinfo", limit: 1 << 16) {
            f.cpuFlags = HostFacts.cpuFlags(fromCPUInfo: text)
        }
        for m in ["kvm", "kvm_intel", "kvm_amd", "kvm_pvm"] where access("/sys/module/\(m)", F_OK) == 0 {
            f.modules.insert(m)
        }
        f.nested = readSmallFile("/sys/module/kvm_intel/parameters/nested", limit: 64)
            ?? readSmallFile("/sys/module/kvm_amd/parameters/nested", limit: 64)

        var st = stat()
        if stat(devicePath, &st) != 0 {
            f.device = errno == EACCES ? .permissionDenied : .missing
            return f
        }
        if (st.st_mode & S_IFMT) != S_IFCHR {
            f.device = .notCharacterDevice
            return f
        }
        let kvm: KVM
        do {
            kvm = try KVM(path: devicePath)
        } catch let e as KVMError {
            f.device = (e.errno == EACCES || e.errno == EPERM) ? .permissionDenied : .openFailed(errno: e.errno)
            return f
        } catch {
            f.device = .openFailed(errno: EIO)
            return f
        }
        f.device = .opened
        f.apiVersion = kvm.apiVersion
        for e in HostCheck.extensions { f.extensions[e.name] = kvm.checkExtension(e.capability) }
        f.maxVCPUs = kvm.maxVCPUs
        f.recommendedVCPUs = kvm.recommendedVCPUs
        do {
            let vm = try kvm.createVM()
            f.vmCreateError = ""
            do {
                _ = try vm.createVCPU(id: 0)
                f.vcpuCreateError = ""
            } catch {
                f.vcpuCreateError = "\(error)"
            }
        } catch {
            f.vmCreateError = "\(error)"
        }
        return f
    }

    static func currentUserName() -> String {
        if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return "uid \(geteuid())"
    }
}

/// Read a small text file whole, or nil.
func readSmallFile(_ path: String, limit: Int) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while bytes.count < limit {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}
