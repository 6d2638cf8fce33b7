import KVMKit

/// The parts of a `VMConfiguration` a restored VM must be rebuilt with: the machine
/// size, the devices in order (their ids key the saved device states) and the disks'
/// paths. The kernel is not needed (RAM holds it) and the host console stays the
/// restoring process's own.
struct SavedConfiguration: StateCodable {
    var configuration: VMConfiguration

    func encode(to w: inout StateWriter) {
        let c = configuration
        w.write(UInt32(c.machine.vcpuCount))
        w.write(c.machine.memSizeMiB)
        w.write(c.machine.hugePages == .twoMiB)
        w.write(c.machine.trackDirtyPages)
        w.write(UInt32(c.drives.count))
        for d in c.drives {
            w.write(d.id); w.write(d.path); w.write(d.readOnly); w.write(d.isRootDevice)
            w.write(d.cacheType == .writeback)
        }
        w.write(c.entropy)
        w.write(c.console.device == .hvc)
        w.write(c.console.serialMMIOAddress != nil)
        w.write(c.console.serialMMIOAddress ?? 0)
    }

    init(from r: inout StateReader) throws {
        var c = VMConfiguration()
        c.machine.vcpuCount = Int(try r.read(UInt32.self, "vCPU count"))
        c.machine.memSizeMiB = try r.read(UInt64.self, "memory size")
        c.machine.hugePages = try r.readBool("huge pages") ? .twoMiB : .none
        c.machine.trackDirtyPages = try r.readBool("dirty page tracking")
        let drives = try r.read(UInt32.self, "drive count")
        guard drives <= 64 else { throw StateDecodingError.invalid(context: "configuration", detail: "\(drives) drives") }
        for _ in 0..<drives {
            let id = try r.readString("drive id"), path = try r.readString("drive path")
            let readOnly = try r.readBool("drive read-only"), root = try r.readBool("drive is root")
            let writeback = try r.readBool("drive cache")
            c.drives.append(VMConfiguration.Drive(id: id, path: path, readOnly: readOnly, isRootDevice: root,
                                                  cacheType: writeback ? .writeback : .unsafe))
        }
        c.entropy = try r.readBool("entropy device")
        c.console.device = try r.readBool("console device") ? .hvc : .serial
        let hasMMIO = try r.readBool("MMIO UART")
        let address = try r.read(UInt64.self, "MMIO UART address")
        c.console.serialMMIOAddress = hasMMIO ? address : nil
        configuration = c
    }

    init(_ c: VMConfiguration) { configuration = c }
}
