import KVMKit
import Synchronization

/// The API thread's line to the thread that owns the VM (Firecracker's API → VMM channel).
/// The API thread only parses and routes HTTP; the VMM thread executes every request —
/// builds the machine on InstanceStart, loads snapshots, opens drives — so the API
/// thread's seccomp list holds no file, KVM or thread call. One request is in flight at a
/// time: the API thread waits for its answer (as Firecracker's does).
public final class APIRequestChannel: Sendable {
    private struct State {
        var request: APICall?
        var taken = false
        var response: HTTPResponse?
        var closed = false
    }

    private let state = Mutex(State())
    private let requestReady: EventFD
    private let responseReady: EventFD

    public init() throws {
        requestReady = try EventFD()
        responseReady = try EventFD()
    }

    /// What a request gets once the VMM thread serves no more (the VM stopped).
    static let stoppedResponse = HTTPResponse.fault(.badRequest, "The microVM has stopped; no request can be served.")

    // MARK: API thread

    /// Hand `request` to the VMM thread and wait for its answer.
    public func call(_ request: APICall) -> HTTPResponse {
        let accepted = state.withLock { s -> Bool in
            guard !s.closed else { return false }
            s.request = request
            s.taken = false
            s.response = nil
            return true
        }
        guard accepted else { return Self.stoppedResponse }
        requestReady.signal()
        while true {
            if let r = state.withLock({ s -> HTTPResponse? in
                let r = s.response
                s.response = nil
                return r
            }) { return r }
            _ = responseReady.wait()
        }
    }

    // MARK: VMM thread

    /// What waiting for a request gave.
    public enum Wait {
        case request(APICall)
        case timedOut
        case closed
    }

    /// Wait for the next request until `deadline` (monotonic nanoseconds; nil: for ever).
    public func next(deadline: UInt64?) -> Wait {
        while true {
            let step = state.withLock { s -> (request: APICall?, closed: Bool) in
                if s.closed { return (nil, true) }
                guard let r = s.request, !s.taken else { return (nil, false) }
                s.taken = true
                return (r, false)
            }
            if let r = step.request { return .request(r) }
            if step.closed { return .closed }
            var timeout: Int32 = -1
            if let deadline {
                let now = UInt64(monotonicNanoseconds())
                if now >= deadline { return .timedOut }
                timeout = Int32(clamping: (deadline - now + 999_999) / 1_000_000)
            }
            _ = requestReady.wait(timeoutMillis: timeout)
        }
    }

    /// Answer the request `next()` returned.
    public func answer(_ response: HTTPResponse) {
        state.withLock { s in
            s.request = nil
            s.taken = false
            s.response = response
        }
        responseReady.signal()
    }

    /// Serve no more requests (any thread, e.g. the VM's stop handler on a vCPU thread).
    /// A request not yet taken is answered at once; one being executed gets its answer.
    public func close() {
        state.withLock { s in
            s.closed = true
            if s.request != nil, !s.taken {
                s.request = nil
                s.response = Self.stoppedResponse
            }
        }
        requestReady.signal()
        responseReady.signal()
    }
}
