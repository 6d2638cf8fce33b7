import KVMKit
import VirtioDevices

/// A virtio device's saved state: its transport's, and the device's own (encoded by the
/// device type the registry's kind names).
struct VirtioDeviceSnapshot: StateCodable {
    var transport: VirtioTransportState
    var device: [UInt8]

    func encode(to w: inout StateWriter) { w.write(transport); w.write(bytes: device) }
    init(from r: inout StateReader) throws {
        transport = try r.read(VirtioTransportState.self)
        device = try r.readBytes("device state", limit: 1 << 20)
    }
    init(transport: VirtioTransportState, device: [UInt8]) { self.transport = transport; self.device = device }

    func decode<T: StateCodable>(_ type: T.Type, device id: String) throws -> T {
        do { return try T(decoding: device, context: "device \(id)") } catch let e as StateDecodingError {
            throw SnapshotFileError.malformed(e)
        }
    }

    /// The state of a registry entry that is a virtio transport; nil for other devices.
    static func capture(_ entry: DeviceRegistry.Entry) throws -> VirtioDeviceSnapshot? {
        guard let t = entry.device as? VirtioMMIOTransport else { return nil }
        let device: [UInt8]
        switch t.device {
        case let d as VirtioBlock: device = try d.encodedState()
        case let d as VirtioRng: device = try d.encodedState()
        case let d as VirtioConsole: device = try d.encodedState()
        case let d as VirtioNet: device = try d.encodedState()
        case let d as VirtioVsock: device = try d.encodedState()
        default: throw VMError.invalidConfiguration("device \(entry.id) (\(entry.kind.rawValue)) cannot be snapshotted")
        }
        return VirtioDeviceSnapshot(transport: t.captureState(), device: device)
    }
}

/// What `VMRuntime` rebuilds a saved VM from.
struct RuntimeRestore {
    let machine: MachineRestore
    let file: SnapshotFile

    /// The saved state of virtio device `id`; a device the configuration has and the
    /// snapshot lacks is an error (the file does not match).
    func virtio(_ id: String) throws -> VirtioDeviceSnapshot {
        try file.decode(VirtioDeviceSnapshot.self, section: SnapshotSections.device(id))
    }
}

/// Section names of a VM snapshot.
enum SnapshotSections {
    static let configuration = "configuration"
    static let machine = "machine"
    static let memory = "memory"
    static func device(_ id: String) -> String { "device:\(id)" }
}
