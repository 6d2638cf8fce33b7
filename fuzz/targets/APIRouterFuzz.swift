// libFuzzer target: the Firecracker API router and the config-file parser. The first
// byte picks a route from the router's table (and a method), the rest is the body; the
// same bytes are also parsed as a config file. Checks: no crash or hang, every refusal is
// a 400 with a one-line fault message, and accepted config files survive export and
// re-import (GET /vm/config's document is itself a config file).
import KVMKit
import VMMCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 1 else { return 0 }
    let routes = FirecrackerAPI.routes
    let route = routes[Int(data[0]) % routes.count]
    let methods: [HTTPMethod] = [route.method, .get, .put, .patch]
    let method = methods[Int(data[0] >> 6) % methods.count]
    let path = route.pattern.replacing("{drive_id}", with: "d0").replacing("{iface_id}", with: "d0")
    let body = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if case .failure(let e) = FirecrackerAPI.route(method: method, path: path, body: body) {
        guard e.status == .badRequest, !e.message.contains("\n"), !e.message.isEmpty else { fatalError("bad refusal: \(e.status) \(e.message)") }
        _ = e.response.serialized(keepAlive: true)
    }
    if case .success(let config) = FirecrackerAPI.parseConfigFile(body) {
        let exported = config.json.encodedBytes()
        guard case .success(let again) = FirecrackerAPI.parseConfigFile(exported), again == config else {
            fatalError("config export does not re-import: \(String(decoding: exported, as: UTF8.self))")
        }
    }
    return 0
}
