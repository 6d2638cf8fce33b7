import Glibc
import KVMKit
import VirtioDevices

/// The `--net` devices of one VM: options parsed and validated, taps opened (all before
/// anything starts, so bad input exits 2 with nothing running), then attached.
struct NetworkDevices {
    let devices: [(id: String, tap: String, device: VirtioNet)]

    init(specs: [String]) throws {
        let options = try specs.map { s throws(NetOptionsError) in try NetOptions(parsing: s) }
        let ids = try NetOptions.validate(options)
        var devices: [(id: String, tap: String, device: VirtioNet)] = []
        for (i, (o, id)) in zip(options, ids).enumerated() {
            let backend = try TapBackend(name: o.tap)
            let mac = o.mac ?? MACAddress.local(seed: UInt64(getpid()) << 8 | UInt64(i))
            let net = VirtioNet(backend: backend, mac: mac, rxLimit: o.rxLimit, txLimit: o.txLimit,
                                report: { warn("net \(id): \($0)") })
            devices.append((id, o.tap, net))
        }
        self.devices = devices
    }

    func attach(to machine: Machine, loop: EventLoop) throws {
        for d in devices {
            try VirtioMachineAttachment.attach(d.device, name: "virtio-net \(d.id) (tap \(d.tap))", to: machine, loop: loop)
            try d.device.register(with: loop)
        }
    }
}
