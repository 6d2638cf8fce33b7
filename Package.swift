// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swiftvmm",
    products: [
        .library(name: "KVMKit", targets: ["KVMKit"]),
        .library(name: "VirtioDevices", targets: ["VirtioDevices"]),
        .library(name: "VMMCore", targets: ["VMMCore"]),
        .executable(name: "swiftvmm", targets: ["swiftvmm"]),
    ],
    targets: [
        // C only: one typed function per KVM ioctl, request numbers, variadic libc calls.
        .target(name: "CKVM", linkerSettings: [.linkedLibrary("z")]),  // zlib: qcow2 compressed clusters
        // Swift 6 language mode where the compiler accepts it (data-race checks); the other
        // targets are still in Swift 5 mode, on their way.
        .target(name: "KVMKit", dependencies: ["CKVM"], swiftSettings: [.swiftLanguageMode(.v6)]),
        .target(name: "VirtioDevices", dependencies: ["KVMKit", "CKVM"]),
        // The managed microVM (lifecycle, device registry, metrics) and its control API.
        .target(name: "VMMCore", dependencies: ["KVMKit", "VirtioDevices", "CKVM"]),
        .executableTarget(
            name: "swiftvmm",
            dependencies: ["KVMKit", "VirtioDevices", "VMMCore"]),
        // Shared by the test targets: how a test reacts to a missing prerequisite.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "KVMKitTests", dependencies: ["KVMKit", "CKVM", "TestSupport"]),
        .testTarget(name: "VirtioDevicesTests", dependencies: ["VirtioDevices", "KVMKit", "TestSupport"]),
        .testTarget(name: "VMMCoreTests", dependencies: ["VMMCore", "KVMKit", "VirtioDevices", "TestSupport"]),
        .testTarget(name: "swiftvmmTests", dependencies: ["swiftvmm", "KVMKit", "CKVM", "VMMCore", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
