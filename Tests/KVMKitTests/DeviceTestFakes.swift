import Foundation
@testable import KVMKit

/// Records every level an interrupt line was driven to.
final class DeviceTestInterruptLine: InterruptLine, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [Bool] = []

    func setLevel(_ high: Bool) {
        lock.lock(); recorded.append(high); lock.unlock()
    }

    var levels: [Bool] { lock.lock(); defer { lock.unlock() }; return recorded }
    var isHigh: Bool { levels.last ?? false }
    func reset() { lock.lock(); recorded.removeAll(); lock.unlock() }
}

/// Collects transmitted bytes.
final class DeviceTestOutput: SerialOutput, @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [UInt8] = []

    func write(_ byte: UInt8) { lock.lock(); collected.append(byte); lock.unlock() }
    var bytes: [UInt8] { lock.lock(); defer { lock.unlock() }; return collected }
}
