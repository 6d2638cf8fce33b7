/// The verdict of `swiftvmm check`: kvm-ok's question, answered for VT-x, AMD-V and PVM.
public struct HostReport: Sendable {
    public enum Status: String, Sendable { case ok = "OK", warn = "WARN", fail = "FAIL" }

    public struct Item: Sendable {
        public let status: Status
        public let label: String
        public let detail: String
    }

    public let items: [Item]
    public let usable: Bool
    /// "vmx", "svm" or "none".
    public let cpuVirtualization: String
    /// "intel", "amd", "pvm" or "none".
    public let backend: String
    public let facts: HostFacts

    public var warnings: [String] { items.filter { $0.status == .warn }.map { "\($0.label): \($0.detail)" } }
    public var failures: [String] { items.filter { $0.status == .fail }.map { "\($0.label): \($0.detail)" } }

    /// kvm-ok's last line.
    public var verdict: String {
        if usable { return "KVM acceleration can be used" }
        let reason = items.first { $0.status == .fail }.map { "\($0.label): \($0.detail)" } ?? "unknown reason"
        return "KVM acceleration can NOT be used (\(reason))"
    }
}

public enum HostCheck {
    /// What swiftvmm needs from KVM, and what it can live without.
    public static let extensions: [KVMExtension] = [
        KVMExtension(name: "user_memory", capability: 3, required: true),            // KVM_CAP_USER_MEMORY
        KVMExtension(name: "irqchip", capability: 0, required: true),                // KVM_CAP_IRQCHIP
        KVMExtension(name: "pit2", capability: 33, required: true),                  // KVM_CAP_PIT2
        KVMExtension(name: "ioeventfd", capability: 36, required: true),             // KVM_CAP_IOEVENTFD
        KVMExtension(name: "irqfd", capability: 32, required: true),                 // KVM_CAP_IRQFD
        KVMExtension(name: "immediate_exit", capability: 136, required: true),       // KVM_CAP_IMMEDIATE_EXIT
        KVMExtension(name: "ext_cpuid", capability: 7, required: true),              // KVM_CAP_EXT_CPUID
        KVMExtension(name: "mp_state", capability: 14, required: true),              // KVM_CAP_MP_STATE
        KVMExtension(name: "set_identity_map_addr", capability: 37, required: true), // KVM_CAP_SET_IDENTITY_MAP_ADDR
        KVMExtension(name: "irq_routing", capability: 25, required: false),          // KVM_CAP_IRQ_ROUTING
        KVMExtension(name: "tsc_deadline_timer", capability: 72, required: false),   // KVM_CAP_TSC_DEADLINE_TIMER
        KVMExtension(name: "split_irqchip", capability: 121, required: false),       // KVM_CAP_SPLIT_IRQCHIP
    ]

    public static func evaluate(_ f: HostFacts) -> HostReport {
        var items: [HostReport.Item] = []
        func add(_ s: HostReport.Status, _ label: String, _ detail: String) {
            items.append(.init(status: s, label: label, detail: detail))
        }

        let virt = f.cpuFlags.contains("vmx") ? "vmx" : f.cpuFlags.contains("svm") ? "svm" : "none"
        let hyper = f.cpuFlags.contains("hypervisor")
        let backend = f.modules.contains("kvm_pvm") ? "pvm"
            : f.modules.contains("kvm_intel") ? "intel"
            : f.modules.contains("kvm_amd") ? "amd" : "none"
        let deviceOpened = f.device == .opened

        // CPU flags: informative, not decisive — PVM gives a working KVM without them.
        let hyperText = hyper ? "; running under a hypervisor (hypervisor flag)" : ""
        switch virt {
        case "vmx": add(.ok, "cpu", "vmx (Intel VT-x)" + hyperText)
        case "svm": add(.ok, "cpu", "svm (AMD-V)" + hyperText)
        default:
            if backend == "pvm" {
                add(.warn, "cpu", "no vmx/svm flag in /proc/cpuinfo" + hyperText + "; KVM is provided by the PVM software backend")
            } else if deviceOpened {
                add(.warn, "cpu", "no vmx/svm flag in /proc/cpuinfo" + hyperText + "; KVM answers anyway (unknown backend)")
            } else {
                add(.fail, "cpu", "no vmx/svm flag in /proc/cpuinfo" + hyperText + "; enable VT-x/AMD-V in the firmware, or nested virtualization in the host hypervisor")
            }
        }

        // Backend module.
        switch backend {
        case "intel", "amd":
            let module = backend == "intel" ? "kvm_intel" : "kvm_amd"
            var nestedText = ""
            if let n = f.nested?.trimmed() {
                nestedText = (n == "Y" || n == "1") ? "; nested virtualization enabled" : "; nested virtualization disabled"
            }
            add(.ok, "backend", module + nestedText)
        case "pvm":
            add(.ok, "backend", "kvm_pvm (PVM, a software KVM backend)")
        default:
            if f.modules.contains("kvm") {
                add(deviceOpened ? .warn : .fail, "backend", "kvm is loaded but no kvm_intel/kvm_amd/kvm_pvm; load one: modprobe kvm_intel (or kvm_amd)")
            } else {
                add(deviceOpened ? .warn : .fail, "backend", "no KVM module loaded; load it: modprobe kvm_intel (or kvm_amd)")
            }
        }

        // The device node.
        switch f.device {
        case .missing:
            add(.fail, "device", "\(f.devicePath) does not exist; load the KVM module (modprobe kvm_intel or kvm_amd) and enable VT-x/AMD-V in the firmware")
        case .notCharacterDevice:
            add(.fail, "device", "\(f.devicePath) is not a character device; remove it and reload the KVM module so udev recreates it")
        case .permissionDenied:
            add(.fail, "device", "\(f.devicePath): permission denied for user \(f.userName); add the user to the kvm group (sudo usermod -aG kvm \(f.userName), then log in again) or add a udev rule: KERNEL==\"kvm\", GROUP=\"kvm\", MODE=\"0660\"")
        case .openFailed(let e):
            add(.fail, "device", "\(f.devicePath): open failed: \(errnoText(e))")
        case .opened:
            add(.ok, "device", "\(f.devicePath) opened read-write")
        }

        var usable = deviceOpened
        if deviceOpened {
            if let v = f.apiVersion, v == KVM.expectedAPIVersion {
                add(.ok, "api", "KVM API version \(v)")
            } else {
                add(.fail, "api", "KVM API version \(f.apiVersion.map(String.init) ?? "unknown"), expected 12")
                usable = false
            }
            if let m = f.maxVCPUs {
                add(.ok, "vcpus", "max \(m) vCPUs per VM, recommended \(f.recommendedVCPUs ?? m)")
            }
            for e in extensions {
                let present = (f.extensions[e.name] ?? 0) > 0
                if present {
                    add(.ok, "extension", e.name)
                } else if e.required {
                    add(.fail, "extension", "\(e.name) missing (required)")
                    usable = false
                } else {
                    add(.warn, "extension", "\(e.name) missing (optional)")
                }
            }
            if let err = f.vmCreateError {
                if err.isEmpty { add(.ok, "vm", "created a VM") } else { add(.fail, "vm", "cannot create a VM: \(err)"); usable = false }
            }
            if let err = f.vcpuCreateError {
                if err.isEmpty { add(.ok, "vcpu", "created a vCPU") } else { add(.fail, "vcpu", "cannot create a vCPU: \(err)"); usable = false }
            }
        }

        if backend == "pvm" {
            add(.warn, "guests", "PVM backend: guests run natively only if their kernel is built PVM-aware (CONFIG_PVM_GUEST); other kernels run in an instruction emulator (about 1M instructions/s), so a stock distribution kernel will not boot — small guests such as the swiftvmm probe kernel work")
        }

        return HostReport(items: items, usable: usable, cpuVirtualization: virt, backend: backend, facts: f)
    }
}
