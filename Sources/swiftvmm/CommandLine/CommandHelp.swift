/// `--help` text generated from a command's table.
extension CommandSpec {
    func help() -> String {
        var usage = ["swiftvmm", name]
        for o in options {
            let v = o.valueName.map { " " + $0 } ?? ""
            usage.append("[--\(o.name)\(v)]" + (o.repeatable ? "..." : ""))
        }
        usage += arguments.map { $0.variadic ? "[\($0.name)...]" : $0.name }
        var rows: [(String, String)] = arguments.map { ($0.name, $0.help) }
        for o in options {
            let short = o.short.map { "-\($0), " } ?? ""
            rows.append((short + "--" + o.name + (o.valueName.map { " " + $0 } ?? ""), o.help))
        }
        rows.append(("-h, --help", "Show this help."))
        var text = "OVERVIEW: \(abstract)\n\nUSAGE: " + wrapped(usage, indent: 7, width: helpWidth) + "\n\n"
        text += (arguments.isEmpty ? "OPTIONS:\n" : "ARGUMENTS AND OPTIONS:\n") + helpColumns(rows)
        // Each line of the discussion is a paragraph; lines starting with spaces are examples, kept as they are.
        for line in discussion.split(separator: "\n") {
            text += "\n" + (line.hasPrefix(" ") ? String(line) : wrapped(line.split(separator: " ").map(String.init), indent: 0, width: helpWidth))
        }
        return text
    }
}

let helpWidth = 80

/// Rows of "  name   text", the text wrapped and aligned after the widest name (up to 26).
func helpColumns(_ rows: [(String, String)]) -> String {
    let column = min(26, rows.map { $0.0.count }.max() ?? 0) + 4
    var text = ""
    for (left, right) in rows {
        var line = "  " + left
        if line.count + 2 > column {
            text += line + "\n"
            line = ""
        }
        line += String(repeating: " ", count: column - line.count)
        text += line + wrapped(right.split(separator: " ").map(String.init), indent: column, width: helpWidth) + "\n"
    }
    return text
}

/// Words joined by spaces into lines of at most `width` columns, continuation lines
/// indented by `indent` (the first line's own start is the caller's).
func wrapped(_ words: [String], indent: Int, width: Int) -> String {
    var text = ""
    var column = indent
    for w in words {
        if column > indent, column + 1 + w.count > width {
            text += "\n" + String(repeating: " ", count: indent)
            column = indent
        } else if column > indent {
            text += " "
            column += 1
        }
        text += w
        column += w.count
    }
    return text
}
