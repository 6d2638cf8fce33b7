import KVMKit

/// Bodies of the snapshot endpoints, with Firecracker's field names.
extension FirecrackerAPI {
    public enum SnapshotType: String, Sendable, Equatable, CaseIterable {
        case full = "Full"
        case diff = "Diff"
    }

    /// PUT /snapshot/create.
    public struct SnapshotCreate: Sendable, Equatable {
        public var snapshotType: SnapshotType
        public var snapshotPath: String
        public var memFilePath: String

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["snapshot_type", "snapshot_path", "mem_file_path"])
            snapshotType = try f.optional("snapshot_type") { try JSONDecode.choice($0, $1) } ?? .full
            snapshotPath = try f.required("snapshot_path", JSONDecode.nonEmptyString)
            memFilePath = try f.required("mem_file_path", JSONDecode.nonEmptyString)
        }
    }

    public enum MemoryBackendType: String, Sendable, Equatable, CaseIterable {
        case file = "File"
        case uffd = "Uffd"
    }

    /// Where a snapshot's guest memory comes from.
    public struct MemoryBackend: Sendable, Equatable {
        public var backendType: MemoryBackendType
        public var backendPath: String

        public init(json: JSONValue, at path: String) throws {
            let f = try JSONFields(json, at: path, known: ["backend_type", "backend_path"])
            backendType = try f.required("backend_type") { try JSONDecode.choice($0, $1) }
            backendPath = try f.required("backend_path", JSONDecode.nonEmptyString)
        }
    }

    /// PUT /snapshot/load. Exactly one of `mem_backend` and the deprecated `mem_file_path`
    /// (which means a File backend).
    public struct SnapshotLoad: Sendable, Equatable {
        public var snapshotPath: String
        public var memBackend: MemoryBackend
        public var trackDirtyPages: Bool
        public var resumeVM: Bool

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["snapshot_path", "mem_backend", "mem_file_path",
                                                           "enable_diff_snapshots", "track_dirty_pages", "resume_vm"])
            snapshotPath = try f.required("snapshot_path", JSONDecode.nonEmptyString)
            let backend = try f.optional("mem_backend") { try MemoryBackend(json: $0, at: $1) }
            let file = try f.optional("mem_file_path", JSONDecode.nonEmptyString)
            switch (backend, file) {
            case (let b?, nil): memBackend = b
            case (nil, let p?): memBackend = try MemoryBackend(json: ["backend_type": "File", "backend_path": .string(p)], at: path)
            case (nil, nil):
                throw APIDecodeError(path: JSONFields.join(path, "mem_backend"), problem: "missing required field (or the deprecated mem_file_path)")
            case (_?, _?):
                throw APIDecodeError(path: JSONFields.join(path, "mem_file_path"), problem: "not allowed together with mem_backend")
            }
            let diff = try f.optional("enable_diff_snapshots", JSONDecode.bool)
            let track = try f.optional("track_dirty_pages", JSONDecode.bool)
            trackDirtyPages = (track ?? false) || (diff ?? false)
            resumeVM = try f.optional("resume_vm", JSONDecode.bool) ?? false
        }
    }
}
