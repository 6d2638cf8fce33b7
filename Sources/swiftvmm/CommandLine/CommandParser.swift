extension CommandSpec {
    /// Parse a subcommand's arguments (after its name) into `defaults`.
    /// `--name VALUE`, `--name=VALUE`, `-s` for flags with a short name, positionals in
    /// order, `--` ends options. A value that starts with `-` must use the `=` form, so a
    /// forgotten value is reported instead of swallowing the next option.
    func parse(_ args: [String], into defaults: Options) throws -> Options {
        var o = defaults
        var seen: [String] = []
        var positionals: [String] = []
        var optionsEnded = false
        var i = 0
        while i < args.count {
            let word = args[i]
            i += 1
            if optionsEnded || !word.hasPrefix("-") || word == "-" {
                positionals.append(word)
                continue
            }
            if word == "--" { optionsEnded = true; continue }
            if word == "--help" || word == "-h" { throw HelpRequest(text: help()) }
            var name: Substring
            var inline: String? = nil
            let option: CommandOption<Options>
            if word.hasPrefix("--") {
                name = word.dropFirst(2)
                if let eq = name.firstIndex(of: "=") {
                    inline = String(name[name.index(after: eq)...])
                    name = name[..<eq]
                }
                guard let found = options.first(where: { $0.name == name }) else {
                    throw ValidationError("\(self.name): unknown option '--\(name)' (swiftvmm \(self.name) --help)")
                }
                option = found
            } else {
                guard word.count == 2, let found = options.first(where: { $0.short != nil && $0.short == word.last }) else {
                    throw ValidationError("\(self.name): unknown option '\(word)' (swiftvmm \(self.name) --help)")
                }
                option = found
            }
            if !option.repeatable {
                guard !seen.contains(option.name) else { throw ValidationError("--\(option.name) given more than once") }
                seen.append(option.name)
            }
            guard let valueName = option.valueName else {
                guard inline == nil else { throw ValidationError("--\(option.name) takes no value") }
                try option.apply(&o, "")
                continue
            }
            let value: String
            if let v = inline {
                value = v
            } else {
                guard i < args.count, !args[i].hasPrefix("-") else {
                    throw ValidationError("--\(option.name) needs a value \(valueName) (a value starting with '-': --\(option.name)=VALUE)")
                }
                value = args[i]
                i += 1
            }
            try option.apply(&o, value)
        }
        let required = arguments.filter { !$0.variadic }
        guard positionals.count <= required.count || arguments.last?.variadic == true else {
            throw ValidationError("\(name): unexpected argument '\(positionals[arguments.count])' (swiftvmm \(name) --help)")
        }
        guard positionals.count >= required.count else {
            throw ValidationError("\(name): missing \(required[positionals.count].name) (swiftvmm \(name) --help)")
        }
        for (i, v) in positionals.enumerated() { try arguments[min(i, arguments.count - 1)].apply(&o, v) }
        return o
    }
}
