/// A device holding a host resource only one process can have (a tap, a listening
/// socket path): a live migration on one host hands it to the destination, and takes it
/// back if the migration fails. Called with the device paused.
public protocol HostHandOver: AnyObject {
    func handOver() throws
    func takeBack() throws
}
