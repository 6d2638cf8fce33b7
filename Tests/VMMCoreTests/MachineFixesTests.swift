import Foundation
@testable import KVMKit
import XCTest

/// The four threading and error-handling faults the core issue found by reading the code;
/// each test failed (or, for the data race, was reported by the thread sanitizer) before.
final class MachineFixesTests: XCTestCase {
    private func probeMachine(cpus: Int = 1, commandLine: String = "console=ttyS0 probe.count=0:5") throws -> Machine {
        let kernel = try probeKernel()
        return try Machine(configuration: MachineConfiguration(kernelPath: kernel, commandLine: commandLine, memoryMiB: 64, cpus: cpus),
                           kvm: try KVM())
    }

    /// Bus tables are read without locks by the vCPUs: once they run, attaching throws.
    func testBusesAreSealedOnceTheVCPUsRun() throws {
        let machine = try probeMachine()
        try machine.portIO.attach(DiscardDevice(), base: 0x510, count: 1, name: "before start")
        try machine.boot()
        try machine.start()
        defer { machine.shutdown() }
        XCTAssertThrowsError(try machine.portIO.attach(DiscardDevice(), base: 0x520, count: 1, name: "late port")) {
            XCTAssertEqual($0 as? BusError, .sealed(name: "late port"))
        }
        XCTAssertThrowsError(try machine.mmio.attach(Serial16550(interrupt: NullLine(), output: BoundedOutputBuffer(wakeupFileDescriptor: -1)),
                                                     base: 0xD200_0000, size: 0x1000, name: "late mmio")) {
            XCTAssertEqual($0 as? BusError, .sealed(name: "late mmio"))
        }
    }

    /// An event loop whose epoll fails tells its owner instead of ending silently (the VM
    /// would run on without any device). The epoll fd is replaced by a non-epoll fd, so
    /// epoll_wait fails with EINVAL.
    func testEventLoopFailureIsReported() throws {
        let loop = try EventLoop()
        let devNull = open("/dev/null", O_RDONLY)
        XCTAssertGreaterThanOrEqual(devNull, 0)
        XCTAssertEqual(dup2(devNull, loop.epollFD), loop.epollFD)
        close(devNull)
        let reported = expectation(description: "failure reported")
        let box = ErrorBox()
        try loop.start(name: "test-loop") { error in
            box.set(error)
            reported.fulfill()
        }
        wait(for: [reported], timeout: 5)
        loop.join()
        guard case .systemCall("epoll_wait", EINVAL, _)? = box.get() else { return XCTFail("reported \(String(describing: box.get()))") }
    }

    /// The stop path (kick every vCPU, from whichever thread stops the machine) and the
    /// owner's join touch the same thread handle from two threads; run under the thread
    /// sanitizer in `make test`.
    func testStopFromAnotherThreadWhileTheOwnerJoins() throws {
        for _ in 0..<20 {
            let machine = try probeMachine(cpus: 2)
            try machine.boot()
            try machine.start()
            let stopper = Thread { machine.requestStop(.hostRequest("racing stop")) }
            stopper.start()
            machine.shutdown()
            XCTAssertNotNil(machine.control.stopReason)
        }
    }

    /// A machine whose stop signal cannot be created (no fds left) is an error, not a
    /// control that never wakes its waiter.
    func testStopSignalWithoutFileDescriptorsIsAnError() throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let saved = limit
        var fds: [Int32] = []
        limit.rlim_cur = rlim_t(openFileDescriptorCount() + 4)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        defer {
            for fd in fds { close(fd) }
            var restore = saved
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &restore)
        }
        while true {
            let fd = open("/dev/null", O_RDONLY)
            if fd < 0 { break }
            fds.append(fd)
        }
        XCTAssertThrowsError(try MachineControl()) { XCTAssertTrue("\($0)".contains("eventfd"), "\($0)") }
    }
}

private final class NullLine: InterruptLine {
    func setLevel(_ high: Bool) {}
}

private final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: EventLoopError?
    func set(_ e: EventLoopError) { lock.lock(); error = e; lock.unlock() }
    func get() -> EventLoopError? { lock.lock(); defer { lock.unlock() }; return error }
}
