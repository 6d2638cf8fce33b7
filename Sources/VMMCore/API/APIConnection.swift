import KVMKit

/// One client of the API server: bytes received and not yet parsed, the parser's state,
/// responses not yet written, and the deadline of the phase it is in. Only the server's
/// loop thread touches it.
final class APIConnection {
    enum Phase: Equatable {
        /// Nothing received of the next request, nothing to write.
        case idle
        /// Part of a request head received.
        case head
        /// The head is complete, part of the body received.
        case body
        /// Responses waiting for the client to read them.
        case writing
    }

    let fd: Int32
    var input: [UInt8] = []
    var parser: HTTPRequestParser
    var output: [UInt8] = []
    var outputOffset = 0
    /// Close once `output` is written (Connection: close, a parse error, a timeout, EOF).
    var closeAfterWrite = false
    var sentContinue = false
    var phase = Phase.idle
    /// Monotonic milliseconds when the current phase times out; nil while idle.
    var deadline: Int64?
    var lastActive: Int64
    /// The events it is registered for; nil when not registered.
    var watched: EventLoop.Events?

    init(fd: Int32, limits: HTTPRequestParser.Limits, now: Int64) {
        self.fd = fd
        self.parser = HTTPRequestParser(limits: limits)
        self.lastActive = now
    }

    var pendingOutput: Int { output.count - outputOffset }
    var isIdle: Bool { input.isEmpty && pendingOutput == 0 && !closeAfterWrite }

    func queue(_ bytes: [UInt8]) {
        if outputOffset == output.count {
            output.removeAll(keepingCapacity: true)
            outputOffset = 0
        } else if outputOffset >= 16 * 1024 {
            output.removeFirst(outputOffset)  // a client that is always behind: drop what it has read
            outputOffset = 0
        }
        output += bytes
    }

    /// Move to the phase the buffers say; a new phase gets a new deadline, so a client
    /// dribbling one byte at a time still runs out of time.
    func updatePhase(now: Int64, timeouts: APIServer.Timeouts) {
        let next: Phase
        if pendingOutput > 0 { next = .writing }
        else if parser.isInsideBody { next = .body }
        else if !input.isEmpty { next = .head }
        else { next = .idle }
        guard next != phase else { return }
        phase = next
        switch next {
        case .idle: deadline = nil
        case .head: deadline = now &+ timeouts.headerMillis
        case .body: deadline = now &+ timeouts.bodyMillis
        case .writing: deadline = now &+ timeouts.writeMillis
        }
    }
}
