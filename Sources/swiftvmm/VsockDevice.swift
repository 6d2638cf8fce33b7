import KVMKit
import VirtioDevices

/// The `--vsock` device: options checked and the socket bound before anything starts
/// (bad input exits 2 with nothing running), then attached.
struct VsockDevice {
    let device: VirtioVsock?

    init(spec: String?) throws {
        guard let spec else { device = nil; return }
        device = try VirtioVsock(options: try VsockOptions(parsing: spec))
    }

    func attach(to machine: Machine, loop: EventLoop) throws {
        guard let device else { return }
        try VirtioMachineAttachment.attach(device, name: "virtio-vsock (cid \(device.guestCID))", to: machine, loop: loop)
        try device.register(with: loop)
    }
}
