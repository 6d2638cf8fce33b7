import KVMKit

/// Bodies of the live-migration endpoints. Firecracker has none, so these are Cloud
/// Hypervisor's (`PUT /vm.send-migration`, `PUT /vm.receive-migration`), with its field
/// names, so tools written for it fit.
extension FirecrackerAPI {
    /// PUT /vm.send-migration: move this running VM to a destination that receives.
    public struct SendMigration: Sendable, Equatable {
        public var destination: MigrationAddress
        /// Cloud Hypervisor's `downtime_ms`: the pause the pre-copy aims for.
        public var downtimeMillis: UInt64?

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["destination_url", "downtime_ms", "local"])
            destination = try f.required("destination_url", migrationAddress)
            downtimeMillis = try f.optional("downtime_ms", JSONDecode.unsigned(in: 1...60_000))
            // Cloud Hypervisor's `local` hands guest memory over as file descriptors.
            if try f.optional("local", JSONDecode.bool) == true {
                throw APIDecodeError(path: JSONFields.join(path, "local"),
                                     problem: "local migration (memory handed over by file descriptor) is not supported; omit it or use false")
            }
        }
    }

    /// PUT /vm.receive-migration: a VM that was never started listens for one source.
    public struct ReceiveMigration: Sendable, Equatable {
        public var receiver: MigrationAddress

        public init(json: JSONValue, at path: String = "") throws {
            let f = try JSONFields(json, at: path, known: ["receiver_url"])
            receiver = try f.required("receiver_url", migrationAddress)
        }
    }

    static func migrationAddress(_ v: JSONValue, _ path: String) throws -> MigrationAddress {
        let s = try JSONDecode.nonEmptyString(v, path)
        do { return try MigrationAddress(parsing: s) } catch {
            throw APIDecodeError(path: path, problem: "\(JSONDecode.quoted(s)): use unix:PATH (at most 107 bytes) or tcp:HOST:PORT")
        }
    }
}

extension MigrationReport {
    /// The answer to PUT /vm.send-migration (Cloud Hypervisor answers 204 with no body;
    /// swiftvmm says what the move cost).
    public var json: JSONValue {
        ["rounds": JSONValue(rounds), "bytes_sent": JSONValue(bytesSent), "pages_in_final_round": JSONValue(pagesInFinalRound),
         "total_ms": .number(.double(totalMilliseconds)), "downtime_ms": .number(.double(downtimeMilliseconds))]
    }
}
