import KVMKit
import VirtioDevices

/// The `--vsock` device: options checked before anything starts (bad input exits 2 with
/// nothing running), attached before boot, its socket created just before the VM runs.
struct VsockDevice {
    let device: VirtioVsock?

    init(spec: String?) throws {
        guard let spec else { device = nil; return }
        device = try VirtioVsock(options: try VsockOptions(parsing: spec))
    }

    func attach(to machine: Machine, loop: EventLoop) throws {
        guard let device else { return }
        try VirtioMachineAttachment.attach(device, name: "virtio-vsock (cid \(device.guestCID))", to: machine, loop: loop)
    }

    /// After boot: create the socket and watch it.
    func start(loop: EventLoop) throws { try device?.register(with: loop) }

    /// At exit: the socket file goes away with the VM.
    func shutdown() { device?.removeSocketFile() }
}
