import Glibc

/// One guest RAM region of a saved machine.
public struct MemoryRegionLayout: Equatable, Sendable, StateCodable {
    public var guestAddress: UInt64
    public var size: UInt64

    public init(guestAddress: UInt64, size: UInt64) { self.guestAddress = guestAddress; self.size = size }
    public func encode(to w: inout StateWriter) { w.write(guestAddress); w.write(size) }
    public init(from r: inout StateReader) throws {
        guestAddress = try r.read(UInt64.self, "region address")
        size = try r.read(UInt64.self, "region size")
    }
}

/// A machine's whole state except guest RAM and virtio devices: the in-kernel devices,
/// every vCPU, the memory layout and the legacy platform devices.
public struct MachineState: Sendable, StateCodable {
    public var memory: [MemoryRegionLayout]
    public var vm: VirtualMachineState
    public var vcpus: [VCPUState]
    public var com1: Serial16550.State
    public var serialMMIO: Serial16550.State?
    public var cmos: CMOS.State
    public var i8042: I8042.State
    public var acpi: ACPISleepRegisters.State

    public func encode(to w: inout StateWriter) {
        w.write(memory)
        w.write(vm)
        w.write(vcpus)
        w.write(com1)
        w.write(serialMMIO != nil)
        if let s = serialMMIO { w.write(s) }
        w.write(cmos)
        w.write(i8042)
        w.write(acpi)
    }

    public init(from r: inout StateReader) throws {
        memory = try r.readArray(MemoryRegionLayout.self, "memory regions", limit: 16)
        vm = try r.read(VirtualMachineState.self)
        vcpus = try r.readArray(VCPUState.self, "vCPUs", limit: 256)
        com1 = try r.read(Serial16550.State.self)
        serialMMIO = try r.readBool("MMIO UART present") ? try r.read(Serial16550.State.self) : nil
        cmos = try r.read(CMOS.State.self)
        i8042 = try r.read(I8042.State.self)
        acpi = try r.read(ACPISleepRegisters.State.self)
    }

    public init(memory: [MemoryRegionLayout], vm: VirtualMachineState, vcpus: [VCPUState], com1: Serial16550.State,
                serialMMIO: Serial16550.State?, cmos: CMOS.State, i8042: I8042.State, acpi: ACPISleepRegisters.State) {
        self.memory = memory; self.vm = vm; self.vcpus = vcpus; self.com1 = com1; self.serialMMIO = serialMMIO
        self.cmos = cmos; self.i8042 = i8042; self.acpi = acpi
    }
}

/// What `Machine(configuration:kvm:control:restoring:)` rebuilds a saved machine from:
/// guest RAM (typically a private mapping of the memory file) and the saved state.
public struct MachineRestore {
    public var memory: GuestMemory
    public var state: MachineState

    public init(memory: GuestMemory, state: MachineState) {
        self.memory = memory
        self.state = state
    }

    var com1: Serial16550.State { state.com1 }
    var serialMMIO: Serial16550.State? { state.serialMMIO }
    var cmos: CMOS.State { state.cmos }
    var i8042: I8042.State { state.i8042 }
    var acpi: ACPISleepRegisters.State { state.acpi }

    /// The saved memory must be laid out as the configured machine's.
    func checkLayout(_ layout: GuestRAMLayout) throws {
        let want = layout.regions.map { MemoryRegionLayout(guestAddress: $0.guestAddress, size: $0.size) }
        let have = memory.regions.map { MemoryRegionLayout(guestAddress: $0.guestAddress, size: $0.size) }
        guard want == have, want == state.memory else {
            throw SnapshotFileError.incompatibleHost("the saved memory layout does not match a \(layout.regions.reduce(0) { $0 + $1.size } >> 20) MiB machine")
        }
    }
}

extension Machine {
    /// Capture everything but RAM and virtio devices. The machine must be paused (every
    /// vCPU parked) and its devices quiescent.
    public func captureState() throws -> MachineState {
        let msrs = try kvm.msrIndexList()
        let cpus = try (0..<vcpuCount).map { i -> VCPUState in
            guard let v = vcpu(i) else { throw KVMError("capture: no vCPU \(i)", errno: EINVAL) }
            return try v.captureState(msrIndices: msrs)
        }
        return MachineState(memory: memory.regions.map { MemoryRegionLayout(guestAddress: $0.guestAddress, size: $0.size) },
                            vm: try vm.captureState(), vcpus: cpus, com1: serial.captureState(),
                            serialMMIO: serialMMIO?.captureState(), cmos: cmos.captureState(), i8042: i8042.captureState(),
                            acpi: acpiSleep.captureState())
    }

    /// Instead of `boot`: put the saved in-kernel devices and vCPUs back, before `start`.
    public func restoreProcessorState(_ s: MachineState) throws {
        guard s.vcpus.count == vcpuCount else {
            throw SnapshotFileError.incompatibleHost("the state has \(s.vcpus.count) vCPUs, the machine \(vcpuCount)")
        }
        try vm.restoreState(s.vm)
        for (i, v) in s.vcpus.enumerated() {
            guard let cpu = vcpu(i), v.id == UInt32(i) else {
                throw SnapshotFileError.incompatibleHost("vCPU \(i) of the state is numbered \(v.id)")
            }
            try cpu.restoreState(v)
        }
    }
}
