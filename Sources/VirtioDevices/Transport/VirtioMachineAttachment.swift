import KVMKit

/// Puts a virtio device on a `Machine`: the next virtio-mmio window and GSI, an irqfd
/// for its interrupt, one ioeventfd per queue on QueueNotify (datamatch = queue index,
/// so a notify never exits to userspace), and the handlers that process the queues (on
/// the event loop, or on the device's own threads if it serves its notifications). Call before `machine.boot()` so the DSDT and `virtioCommandLine` include it.
public enum VirtioMachineAttachment {
    @discardableResult
    /// `state`: a saved transport to rebuild (snapshot restore), which starts paused.
    public static func attach(_ device: VirtioDevice, name: String, to machine: Machine, loop: EventLoop,
                              state: VirtioTransportState? = nil) throws -> VirtioMMIOTransport {
        let window = try machine.allocateVirtioWindow(name: name)
        let line = try machine.makeIRQFD(gsi: window.gsi)
        let transport = try state.map {
            try VirtioMMIOTransport(state: $0, device: device, memory: machine.memory, interrupt: line, notify: .eventFD)
        } ?? VirtioMMIOTransport(device: device, memory: machine.memory, interrupt: line, notify: .eventFD)
        try machine.mmio.attach(transport, base: window.base, size: window.size, name: name)
        for (queue, fd) in transport.notifyEventFDs.enumerated() {
            try machine.vm.registerIOEventFD(eventFD: fd, address: window.base + VirtioMMIORegister.queueNotify,
                                             length: 4, dataMatch: UInt64(queue))
            let served = try device.serveNotifications(queue: queue, eventFD: fd) { [weak transport] in
                transport?.handleNotify(queue: queue)
            }
            if !served { try loop.register(fd: fd, events: .readable) { _ in transport.handleNotify(queue: queue) } }
        }
        return transport
    }
}
