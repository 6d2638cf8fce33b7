import KVMKit
import VirtioDevices

/// The parts of a `VMConfiguration` a restored VM must be rebuilt with: the machine
/// size, the devices in order (their ids key the saved device states) and the disks'
/// paths and rate limits, the taps (re-opened by name) and the vsock device. The kernel is not needed (RAM holds it) and the host console stays the
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
        // Appended after the first format: a file that ends here has no net or vsock.
        w.write(UInt32(c.networkInterfaces.count))
        for n in c.networkInterfaces {
            w.write(n.tap); w.write(n.id != nil); w.write(n.id ?? ""); w.write(n.mac != nil); w.write(bytes: n.mac?.bytes ?? [])
            w.write(SavedRateLimit(n.rxLimit)); w.write(SavedRateLimit(n.txLimit))
        }
        w.write(c.vsock != nil); w.write(c.vsock?.cid ?? 0); w.write(c.vsock?.udsPath ?? "")
        // Appended after that: each drive's rate limit, in drive order.
        for d in c.drives { w.write(SavedRateLimit(d.rateLimit)) }
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
        if r.remaining > 0 { try Self.readNetAndVsock(&r, into: &c) }
        if r.remaining > 0 {
            for i in c.drives.indices { c.drives[i].rateLimit = try r.read(SavedRateLimit.self).config }
        }
        configuration = c
    }

    init(_ c: VMConfiguration) { configuration = c }
}

extension SavedConfiguration {
    private static func readNetAndVsock(_ r: inout StateReader, into c: inout VMConfiguration) throws {
        let nets = try r.read(UInt32.self, "network interface count")
        guard nets <= 64 else { throw StateDecodingError.invalid(context: "configuration", detail: "\(nets) network interfaces") }
        for _ in 0..<nets {
            let tap = try r.readString("tap name")
            let hasID = try r.readBool("interface has id"), id = try r.readString("interface id")
            let hasMAC = try r.readBool("interface has MAC"), mac = try r.readBytes("interface MAC", limit: 6)
            guard !hasMAC || mac.count == 6 else { throw StateDecodingError.invalid(context: "configuration", detail: "MAC of \(mac.count) bytes") }
            var n = NetOptions(tap: tap, mac: hasMAC ? MACAddress(bytes: mac) : nil, id: hasID ? id : nil)
            n.rxLimit = try r.read(SavedRateLimit.self).config
            n.txLimit = try r.read(SavedRateLimit.self).config
            c.networkInterfaces.append(n)
        }
        let hasVsock = try r.readBool("vsock device")
        let cid = try r.read(UInt64.self, "vsock CID"), path = try r.readString("vsock socket path")
        if hasVsock {
            do { c.vsock = try VsockOptions(cid: cid, udsPath: path) } catch {
                throw StateDecodingError.invalid(context: "configuration", detail: "\(error)")
            }
        }
    }
}

/// A rate limiter's configuration (its two optional buckets).
struct SavedRateLimit: StateCodable {
    var config: RateLimiterConfig

    init(_ c: RateLimiterConfig) { config = c }
    func encode(to w: inout StateWriter) {
        for b in [config.bandwidth, config.ops] {
            w.write(b != nil); w.write(b?.size ?? 0); w.write(b?.oneTimeBurst ?? 0); w.write(b?.refillTimeMs ?? 0)
        }
    }
    init(from r: inout StateReader) throws {
        func bucket() throws -> RateLimiterConfig.Bucket? {
            let has = try r.readBool("rate limit bucket")
            let size = try r.read(UInt64.self, "bucket size"), burst = try r.read(UInt64.self, "bucket burst")
            let refill = try r.read(UInt64.self, "bucket refill time")
            return has ? RateLimiterConfig.Bucket(size: size, oneTimeBurst: burst, refillTimeMs: refill) : nil
        }
        config = RateLimiterConfig(bandwidth: try bucket(), ops: try bucket())
        do { try config.validate("saved") } catch { throw StateDecodingError.invalid(context: "configuration", detail: "\(error)") }
    }
}
