import Foundation
@testable import KVMKit
import XCTest

final class EventLoopTests: XCTestCase {
    func testEventFDSignalAndDrain() throws {
        let e = try EventFD()
        XCTAssertEqual(e.drain(), 0)
        e.signal(); e.signal(); e.signal()
        XCTAssertEqual(e.drain(), 3)
        XCTAssertEqual(e.drain(), 0)
    }

    func testHandlerRunsOnLoopThreadAndStopEndsThread() throws {
        let loop = try EventLoop()
        let e = try EventFD()
        let lock = NSLock()
        var calls = 0
        var onLoopThread = false
        try loop.register(fd: e.fd, events: .readable) { events in
            XCTAssertTrue(events.contains(.readable))
            e.drain()
            lock.lock(); calls += 1; onLoopThread = loop.isOnLoopThread; lock.unlock()
        }
        try loop.start(name: "test-loop")
        e.signal()
        XCTAssertTrue(waitUntil { lock.lock(); defer { lock.unlock() }; return calls == 1 })
        XCTAssertTrue(onLoopThread)
        XCTAssertFalse(loop.isOnLoopThread)
        loop.stop()
        loop.join()
        XCTAssertNil(loop.threadError)
    }

    func testUnregisterStopsDelivery() throws {
        let loop = try EventLoop()
        let e = try EventFD()
        let lock = NSLock()
        var calls = 0
        try loop.register(fd: e.fd, events: .readable) { _ in e.drain(); lock.lock(); calls += 1; lock.unlock() }
        try loop.start()
        e.signal()
        XCTAssertTrue(waitUntil { lock.lock(); defer { lock.unlock() }; return calls == 1 })
        loop.unregister(fd: e.fd)
        XCTAssertFalse(loop.isRegistered(fd: e.fd))
        e.signal()
        usleep(50_000)
        lock.lock(); XCTAssertEqual(calls, 1); lock.unlock()
        loop.unregister(fd: e.fd)  // a second unregister is a no-op
        loop.stop()
        loop.join()
    }

    func testDoubleRegisterIsAnError() throws {
        let loop = try EventLoop()
        let e = try EventFD()
        try loop.register(fd: e.fd, events: .readable) { _ in }
        XCTAssertThrowsError(try loop.register(fd: e.fd, events: .readable) { _ in }) { error in
            XCTAssertEqual(error as? EventLoopError, .alreadyRegistered(fd: e.fd))
        }
        XCTAssertThrowsError(try loop.modify(fd: 9999, events: .readable))
    }

    func testRegularFileIsRefusedWithEPERM() throws {
        let loop = try EventLoop()
        let fd = open("/proc/self/exe", O_RDONLY)
        defer { close(fd) }
        XCTAssertThrowsError(try loop.register(fd: fd, events: .readable) { _ in }) { error in
            guard case EventLoopError.systemCall("epoll_ctl", EPERM, _)? = error as? EventLoopError else {
                return XCTFail("\(error)")
            }
            XCTAssertTrue("\(error)".contains("epoll_ctl"))
        }
    }

    /// A handler that unregisters another fd whose event is in the same batch: the stale
    /// event must not reach the handler registered later on the same fd number.
    func testStaleEventInSameBatchIsDropped() throws {
        let loop = try EventLoop()
        let a = try EventFD()
        var b: EventFD? = try EventFD()
        let bFD = b!.fd
        var bCalls = 0
        var aCalls = 0
        var replacementCalls = 0
        var replacement: EventFD?
        var setupError: Error?
        try loop.register(fd: b!.fd, events: .readable) { _ in bCalls += 1; b?.drain() }
        try loop.register(fd: a.fd, events: .readable) { _ in
            aCalls += 1
            a.drain()
            if bCalls == 0 {
                // b's event is in this batch (signalled before run, after a).
                loop.unregister(fd: bFD)
                b = nil  // closes the fd
                do {
                    let c = try EventFD()  // the lowest free fd number: b's
                    replacement = c
                    c.signal()  // readable, but its event is not in this batch
                    try loop.register(fd: c.fd, events: .readable) { _ in replacementCalls += 1; c.drain() }
                } catch {
                    setupError = error
                }
            }
            loop.stop()
        }
        a.signal()
        b!.signal()
        try loop.run()
        XCTAssertNil(setupError)
        XCTAssertEqual(aCalls, 1)
        XCTAssertEqual(bCalls, 0, "a's handler ran first and removed b with its event pending")
        XCTAssertEqual(replacement?.fd, bFD, "the replacement reuses b's fd number: the case under test")
        XCTAssertEqual(replacementCalls, 0, "b's stale event did not reach the replacement's handler")
    }

    func testModifyTogglesWritable() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        let loop = try EventLoop()
        var writableCalls = 0
        var modifyError: Error?
        try loop.register(fd: fds[1], events: []) { events in
            if events.contains(.writable) { writableCalls += 1 }
            do { try loop.modify(fd: fds[1], events: []) } catch { modifyError = error }
            loop.stop()
        }
        try loop.modify(fd: fds[1], events: .writable)
        try loop.run()
        XCTAssertNil(modifyError)
        XCTAssertEqual(writableCalls, 1)
    }

    func testStopBeforeRunReturnsImmediately() throws {
        let loop = try EventLoop()
        let e = try EventFD()
        var calls = 0
        try loop.register(fd: e.fd, events: .readable) { _ in calls += 1; e.drain() }
        e.signal()
        loop.stop()
        // On a thread: a run that blocks fails the test instead of hanging it.
        let returned = DispatchSemaphore(value: 0)
        let runError = LockedBox<Error?>(nil)
        Thread {
            do { try loop.run() } catch { runError.set(error) }
            returned.signal()
        }.start()
        XCTAssertEqual(returned.wait(timeout: .now() + 5), .success, "run() returned after an earlier stop()")
        XCTAssertNil(runError.get())
        XCTAssertEqual(calls, 0, "no event was dispatched after the stop")
    }

    /// Per-event cost, for the report (not an assertion on speed).
    func testDispatchThroughput() throws {
        let loop = try EventLoop()
        let e = try EventFD()
        let total = 200_000
        var count = 0
        try loop.register(fd: e.fd, events: .readable) { _ in
            e.drain()
            count += 1
            if count == total { loop.stop() } else { e.signal() }
        }
        e.signal()
        let start = Date()
        try loop.run()
        let perEvent = Date().timeIntervalSince(start) / Double(total) * 1e9
        print("EventLoop: \(total) eventfd round trips, \(Int(perEvent)) ns each (signal + epoll_wait + dispatch + drain)")
        XCTAssertEqual(count, total)
    }
}

/// A value shared between a test and a thread it starts.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
}
