// What the control API costs in resident memory: VmRSS (and its anonymous and file
// parts) before the API server exists, and again once it has served a mix of requests
// (HTTP parsing, routing, JSON in and out, faults) and gone idle. An event-loop thread
// runs and ends first, as swiftvmm's console has one anyway. Built by run.sh as a
// static executable from KVMKit and the API sources only, so the delta is the API's.
import Glibc
import KVMKit

func status() -> [String: Int] {
    var out: [String: Int] = [:]
    guard let f = fopen("/proc/self/status", "r") else { return out }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), f) != nil {
        let text = String(cString: line)
        for key in ["VmRSS", "RssAnon", "RssFile"] where text.hasPrefix(key + ":") {
            out[key] = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
    }
    return out
}

func request(_ path: String, _ text: String) -> Int {
    guard let c = try? UnixSocketAddress.connect(path), c.fd >= 0 else { return -1 }
    defer { close(c.fd) }
    _ = text.utf8CString.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count - 1, 0) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let n = read(c.fd, &buffer, buffer.count)
    guard n > 12 else { return -1 }
    return Int(String(decoding: buffer[9..<12], as: UTF8.self)) ?? -1
}

/// What swiftvmm runs anyway before any API exists (the console's event-loop thread,
/// eventfds, string formatting): done first, so the delta is the API's own.
func warmUp() {
    guard let loop = try? EventLoop(), let wake = try? EventFD() else { return }
    try? loop.register(fd: wake.fd, events: .readable) { _ in wake.drain() }
    try? loop.start(name: "warm-up \(getpid())")
    wake.signal()
    usleep(50_000)
    loop.stop()
    loop.join()
}

warmUp()
let before = status()
let path = "/tmp/swiftvmm-api-memory-\(getpid()).sock"
let server = APIServer(path: path) { request in
    switch FirecrackerAPI.route(request) {
    case .failure(let e): return e.response
    case .success(.getInstanceInfo): return .json(FirecrackerAPI.instanceInfo(id: "m", state: .running, vmmVersion: "0"))
    case .success(.getVMConfig): return .json(FirecrackerConfig().json)
    case .success: return .noContent
    }
}
do { try server.start() } catch { print("api-memory: \(error)"); exit(1) }
usleep(200_000)
let started = status()
let body = #"{"drive_id": "rootfs", "path_on_host": "/img", "is_root_device": true, "rate_limiter": {"ops": {"size": 1, "refill_time": 2}}}"#
let requests = [
    "GET / HTTP/1.1\r\n\r\n",
    "GET /vm/config HTTP/1.1\r\n\r\n",
    "PUT /machine-config HTTP/1.1\r\nContent-Length: 37\r\n\r\n{\"vcpu_count\": 2, \"mem_size_mib\": 64}",
    "PUT /drives/rootfs HTTP/1.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)",
    "PATCH /vm HTTP/1.1\r\nContent-Length: 19\r\n\r\n{\"state\": \"Paused\"}",
    "PUT /boot-source HTTP/1.1\r\nContent-Length: 3\r\n\r\n{,}",
    "DELETE / HTTP/1.1\r\n\r\n",
]
var statuses: [Int] = []
for _ in 0..<20 { for r in requests { statuses.append(request(path, r)) } }
usleep(200_000)
let after = status()
print("api-memory: statuses \(Set(statuses).sorted())")
for key in ["VmRSS", "RssAnon", "RssFile"] {
    let b = before[key] ?? 0, s = started[key] ?? 0, a = after[key] ?? 0
    print("api-memory: \(key) \(b) KiB before; +\(s - b) KiB with the server started; +\(a - b) KiB idle after \(statuses.count) requests")
}
server.stop()
server.join()
