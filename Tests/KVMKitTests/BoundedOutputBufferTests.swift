import Foundation
import XCTest
@testable import KVMKit

final class BoundedOutputBufferTests: XCTestCase {
    func testDropOldestKeepsNewestAndCounts() {
        let buffer = BoundedOutputBuffer(capacity: 8, overflow: .dropOldest) {}
        buffer.write(contentsOf: (0..<10).map { UInt8($0) })
        XCTAssertEqual(buffer.count, 8)
        XCTAssertEqual(buffer.droppedBytes, 2)
        XCTAssertEqual(buffer.readAll(), (2..<10).map { UInt8($0) })
        XCTAssertEqual(buffer.count, 0)
    }

    func testDropNewestKeepsOldestAndCounts() {
        let buffer = BoundedOutputBuffer(capacity: 8, overflow: .dropNewest) {}
        buffer.write(contentsOf: (0..<10).map { UInt8($0) })
        XCTAssertEqual(buffer.droppedBytes, 2)
        XCTAssertEqual(buffer.readAll(), (0..<8).map { UInt8($0) })
    }

    func testWraparoundPreservesOrder() {
        let buffer = BoundedOutputBuffer(capacity: 8) {}
        var got: [UInt8] = []
        var next: UInt8 = 0
        var chunk = [UInt8](repeating: 0, count: 3)
        for _ in 0..<50 {
            for _ in 0..<5 { buffer.write(next); next &+= 1 }
            let n = chunk.withUnsafeMutableBytes { buffer.read(into: $0) }
            got += chunk[0..<n]
            got += buffer.readAll().prefix(2)  // leave a little behind sometimes
        }
        got += buffer.readAll()
        XCTAssertEqual(buffer.droppedBytes, 0)
        XCTAssertEqual(got.count, 250)
        XCTAssertEqual(got, (0..<250).map { UInt8(truncatingIfNeeded: $0) })
    }

    func testWrapAroundWithOverwriteAcrossTheEnd() {
        let buffer = BoundedOutputBuffer(capacity: 5, overflow: .dropOldest) {}
        buffer.write(contentsOf: [1, 2, 3])
        XCTAssertEqual(buffer.readAll(), [1, 2, 3])
        buffer.write(contentsOf: [4, 5, 6, 7, 8, 9, 10])  // wraps and overwrites 4, 5
        XCTAssertEqual(buffer.droppedBytes, 2)
        XCTAssertEqual(buffer.readAll(), [6, 7, 8, 9, 10])
    }

    func testWakeupOnlyWhenBecomingNonEmpty() {
        var wakeups = 0
        let buffer = BoundedOutputBuffer(capacity: 4) { wakeups += 1 }
        buffer.write(contentsOf: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(wakeups, 1)
        _ = buffer.readAll()
        buffer.write(7)
        XCTAssertEqual(wakeups, 2)
        var one = [UInt8](repeating: 0, count: 0)
        XCTAssertEqual(one.withUnsafeMutableBytes { buffer.read(into: $0) }, 0)
        one = [0]
        XCTAssertEqual(one.withUnsafeMutableBytes { buffer.read(into: $0) }, 1)
        XCTAssertEqual(one, [7])
    }

    func testFileDescriptorWakeup() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        let buffer = BoundedOutputBuffer(capacity: 16, wakeupFileDescriptor: fds[1])
        buffer.write(contentsOf: Array("ab".utf8))
        var counter: UInt64 = 0
        XCTAssertEqual(read(fds[0], &counter, 8), 8)
        XCTAssertEqual(counter, 1)
        XCTAssertEqual(buffer.readAll(), Array("ab".utf8))
    }

    func testConcurrentProducersAndConsumerLoseNothingWhenLargeEnough() {
        let buffer = BoundedOutputBuffer(capacity: 1 << 16) {}
        let group = DispatchGroup()
        for t in 0..<4 {
            group.enter()
            Thread {
                for _ in 0..<5_000 { buffer.write(UInt8(t)) }
                group.leave()
            }.start()
        }
        var total = 0
        var scratch = [UInt8](repeating: 0, count: 512)
        while group.wait(timeout: .now()) == .timedOut {
            total += scratch.withUnsafeMutableBytes { buffer.read(into: $0) }
        }
        total += buffer.readAll().count
        XCTAssertEqual(total, 20_000)
        XCTAssertEqual(buffer.droppedBytes, 0)
    }
}
