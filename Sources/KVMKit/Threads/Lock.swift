import Glibc

/// A plain non-recursive pthread mutex, for a class whose several fields one lock guards
/// (device models touched by vCPUs and the console thread, the event loop's registry);
/// `Mutex` from Synchronization where the guarded state is one value. Held only for
/// short work: never across I/O that can wait. Sendable because the mutex makes it so.
final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        // A default mutex cannot fail to initialise with a nil attribute on Linux.
        _ = pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
