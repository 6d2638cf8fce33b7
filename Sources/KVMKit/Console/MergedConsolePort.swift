import Glibc

/// One host console over two guest devices: input goes to `primary` (e.g. virtio-console,
/// the guest's interactive console), output comes from both (COM1 still carries early
/// boot messages). Both devices' notify fds are forwarded into one eventfd on `loop`.
public final class MergedConsolePort: ConsoleGuestPort {
    let primary: ConsoleGuestPort
    let secondary: ConsoleGuestPort
    let notify: EventFD

    public init(primary: ConsoleGuestPort, alsoOutputFrom secondary: ConsoleGuestPort, loop: EventLoop) throws {
        self.primary = primary
        self.secondary = secondary
        notify = try EventFD()
        let n = notify
        // Forwarders do not drain the source fds: the backend drains output whenever the
        // merged fd fires, so a level-triggered source would spin; drain here instead.
        for fd in [primary.notifyFD, secondary.notifyFD] {
            try loop.register(fd: fd, events: .readable) { _ in
                var v: UInt64 = 0
                _ = read(fd, &v, 8)
                n.signal()
            }
        }
    }

    public var notifyFD: Int32 { notify.fd }

    public func enqueueInput(_ bytes: UnsafeRawBufferPointer) -> Int { primary.enqueueInput(bytes) }

    public func drainOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = secondary.drainOutput(into: buffer)
        if n > 0 { return n }
        return primary.drainOutput(into: buffer)
    }
}
