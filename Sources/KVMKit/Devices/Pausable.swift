/// A device that can be quiesced while the VM is paused (or its state saved).
public protocol Pausable: AnyObject {
    /// After this returns the device touches no guest memory, raises no interrupt and
    /// starts no new I/O until `resume()`. Work that arrives meanwhile (a queue notify,
    /// host input) is remembered, not lost.
    func pause()
    /// Carry on, including whatever arrived while paused.
    func resume()
}
