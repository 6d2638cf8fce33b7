// libFuzzer target: the snapshot state file and every state value in it. An input that
// starts with the file magic goes through SnapshotFile(decoding:) (header, checksum,
// sections); anything else skips the checksum: its first byte picks a state type and the
// rest is decoded as that type, and a decoded device state is used to build the device,
// as restore does. Every input must end in a value or a typed error: a crash, hang,
// sanitizer report or huge allocation is a finding. Seeds: fuzz/seeds/SnapshotFuzz/.
import Glibc
@testable import KVMKit
@testable import VirtioDevices

let memorySize = 64 * 1024
let guestBuffer = UnsafeMutableRawPointer.allocate(byteCount: memorySize, alignment: 4096)
let memory = GuestMemory(borrowing: [MemoryRegion(guestAddress: 0, size: UInt64(memorySize), host: guestBuffer)])

final class NullLine: InterruptLine {
    func setLevel(_ high: Bool) {}
}

final class NullOutput: SerialOutput {
    func write(_ byte: UInt8) {}
}

final class NullNetBackend: NetBackend {
    var pollFD: Int32 { -1 }
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(NetBackendError) -> Int? { nil }
    func send(_ pieces: UnsafeBufferPointer<UnsafeRawBufferPointer>) throws(NetBackendError) -> Bool { true }
    func setOffloads(_ flags: UInt32) throws(NetBackendError) {}
}

/// Decode `bytes` as the state type `selector` names and build the device from it.
func exercise(_ selector: UInt8, _ bytes: [UInt8]) {
    do {
        switch selector % 12 {
        case 0: _ = try VCPUState(decoding: bytes, context: "fuzz")
        case 1: _ = try VirtualMachineState(decoding: bytes, context: "fuzz")
        case 2: _ = try Serial16550(state: Serial16550.State(decoding: bytes, context: "fuzz"), interrupt: NullLine(), output: NullOutput())
        case 3: _ = try CMOS(state: CMOS.State(decoding: bytes, context: "fuzz"))
        case 4: _ = try I8042(state: I8042.State(decoding: bytes, context: "fuzz"), onReset: {})
        case 5: _ = ACPISleepRegisters(state: try ACPISleepRegisters.State(decoding: bytes, context: "fuzz"), onPoweroff: {})
        case 6:
            let s = try VirtioTransportState(decoding: bytes, context: "fuzz")
            _ = try VirtioMMIOTransport(state: s, device: VirtioRng(), memory: memory, interrupt: NullLine(), notify: .inline)
        case 7:
            let s = try VirtioTransportState(decoding: bytes, context: "fuzz")
            let console = try VirtioConsole(state: VirtioConsoleState(pendingInput: [1], pendingTransmitHead: 0, pendingTransmitOffset: 3))
            let t = try VirtioMMIOTransport(state: s, device: console, memory: memory, interrupt: NullLine(), notify: .inline)
            t.handleNotify(queue: 1)
        case 8: _ = try VirtioConsole(state: VirtioConsoleState(decoding: bytes, context: "fuzz"))
        case 10:
            let net = VirtioNet(state: try VirtioNetState(decoding: bytes, context: "fuzz"), backend: NullNetBackend())
            var config = [UInt8](repeating: 0, count: 12)
            config.withUnsafeMutableBytes { net.readConfig(offset: 0, into: $0) }
        case 11:
            // The device itself checks its socket path on the host; the value is what is fuzzed.
            let s = try VirtioVsockState(decoding: bytes, context: "fuzz")
            _ = try? VsockOptions(cid: s.guestCID, udsPath: s.udsPath)
        default: _ = try CPUFeatures(decoding: bytes, context: "fuzz")
        }
    } catch is StateDecodingError {
    } catch is VirtioStateError {
    } catch {
        // Device-level refusals (Serial16550.StateError …) are typed errors too.
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guestBuffer.initializeMemory(as: UInt8.self, repeating: 0, count: memorySize)
    if input.starts(with: SnapshotFile.magic) {
        guard let file = try? SnapshotFile(decoding: input) else { return 0 }
        for (i, section) in file.sections.enumerated() { exercise(UInt8(truncatingIfNeeded: i), section.bytes) }
        _ = CPUFeatures(vendor: "GenuineIntel", words: []).cannotRun(file.cpu)
        return 0
    }
    guard let selector = input.first else { return 0 }
    exercise(selector, Array(input.dropFirst()))
    return 0
}
