
/// swiftvmm's documented exit codes (README "Exit codes").
enum VMMExit {
    /// Guest powered off or reset; `check`: KVM usable.
    static let success: Int32 = 0
    /// Runtime failure: guest crash, KVM error; `check`: KVM not usable.
    static let failure: Int32 = 1
    /// Bad input: options, files, sizes — nothing was started.
    static let badInput: Int32 = 2
}
