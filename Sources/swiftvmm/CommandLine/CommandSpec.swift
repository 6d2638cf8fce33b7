/// A subcommand's command line as a table: its options (one entry each, with the help
/// text and how the value is stored) and positional arguments. The parser and the help
/// text are generated from it. swiftvmm parses by hand instead of with
/// swift-argument-parser because that package (and the FoundationEssentials it links)
/// kept ~3 MiB of the static binary resident in every VM (BENCHMARKS.md, "Memory").
struct CommandSpec<Options> {
    let name: String
    let abstract: String
    /// Printed after the options in `--help` (exit status, keys).
    var discussion: String = ""
    var options: [CommandOption<Options>] = []
    var arguments: [CommandArgument<Options>] = []
}

/// One `--name [VALUE]` option.
struct CommandOption<Options> {
    let name: String
    var short: Character? = nil
    /// What the value is called in help (`PATH`, `MIB`); nil for a flag, which takes none.
    let valueName: String?
    /// May be given more than once (each value is passed to `apply`); others only once.
    var repeatable = false
    let help: String
    /// Stores the value (a flag gets ""); throws `ValidationError` for a bad value.
    let apply: (inout Options, String) throws -> Void

    /// `--name VALUE`, at most once.
    static func value(_ name: String, _ valueName: String, _ help: String,
                      _ apply: @escaping (inout Options, String) throws -> Void) -> Self {
        Self(name: name, valueName: valueName, help: help, apply: apply)
    }

    /// `--name VALUE`, any number of times.
    static func repeated(_ name: String, _ valueName: String, _ help: String,
                         _ apply: @escaping (inout Options, String) throws -> Void) -> Self {
        Self(name: name, valueName: valueName, repeatable: true, help: help, apply: apply)
    }

    /// `--name` (and `-c` when `short` is given), no value.
    static func flag(_ name: String, short: Character? = nil, _ help: String,
                     _ apply: @escaping (inout Options) -> Void) -> Self {
        Self(name: name, short: short, valueName: nil, help: help, apply: { o, _ in apply(&o) })
    }
}

/// One positional argument: required, or (the last one only) variadic, taking every
/// remaining word, none included.
struct CommandArgument<Options> {
    let name: String
    let help: String
    var variadic = false
    let apply: (inout Options, String) throws -> Void

    init(name: String, help: String, variadic: Bool = false, _ apply: @escaping (inout Options, String) throws -> Void) {
        self.name = name
        self.help = help
        self.variadic = variadic
        self.apply = apply
    }
}

/// A command line that cannot be used (an unknown option, a missing or malformed value),
/// or bad input found after parsing (a config file, a socket path): exit 2 with this one line.
struct ValidationError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// `--help`, `-h` or `help`: print this text on stdout and exit 0.
struct HelpRequest: Error {
    let text: String
}

/// An exit with this status after the message (if any) was already printed.
struct ExitCode: Error {
    let rawValue: Int32
    init(_ code: Int32) { rawValue = code }
}

/// A decimal option value as an integer of type T, or a ValidationError naming the option.
func integerValue<T: FixedWidthInteger>(_ s: String, option: String) throws -> T {
    guard let v = T(s) else { throw ValidationError("--\(option) \(s): not a number") }
    return v
}
