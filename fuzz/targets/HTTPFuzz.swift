// libFuzzer target: the API's HTTP/1.1 request parser. The input is fed to the parser
// in pieces (split points from the first byte), as a socket would deliver it, and every
// complete request is removed before parsing on (pipelining). Checks: no crash or hang,
// the parser consumes what it reports and never more than it was given, a request fed in
// one piece parses to the same result, and nothing over the limits gets through.
import KVMKit
import VMMCore

func parseAll(_ input: [UInt8], chunk: Int) -> [String] {
    var parser = HTTPRequestParser()
    var buffer: [UInt8] = []
    var outcome: [String] = []
    var offset = 0
    while true {
        let next = min(input.count, offset + chunk)
        buffer += input[offset..<next]
        offset = next
        parsing: while true {
            switch parser.parse(buffer) {
            case .needMore:
                break parsing
            case .request(let r, let used):
                guard used > 0, used <= buffer.count else { fatalError("consumed \(used) of \(buffer.count)") }
                guard used <= 51200 + 8192 else { fatalError("request of \(used) bytes passed the limits") }
                guard r.body.count <= 51200, r.path.first == "/" else { fatalError("bad request accepted: \(r.path)") }
                outcome.append("\(r.method.rawValue) \(r.path) \(r.query ?? "-") \(r.body.count) \(r.keepAlive)")
                buffer.removeFirst(used)
            case .error(let e):
                guard [400, 413, 414, 417, 431, 501, 505].contains(e.status.code) else { fatalError("status \(e.status)") }
                outcome.append("error \(e.status.code)")
                return outcome
            }
        }
        if offset == input.count { return outcome }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 1 else { return 0 }
    let chunk = Int(data[0] % 16) + 1
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let split = parseAll(input, chunk: chunk)
    let whole = parseAll(input, chunk: max(input.count, 1))
    guard split == whole else { fatalError("split parse \(split) != whole parse \(whole)") }
    // A response round trip: what the server writes for a fault always serialises.
    if let e = split.last, e.hasPrefix("error") {
        _ = HTTPResponse.fault(.badRequest, e).serialized(keepAlive: false)
    }
    return 0
}
