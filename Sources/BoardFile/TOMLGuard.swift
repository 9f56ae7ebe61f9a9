// A guard in front of toml++ (through TOMLKit): its parser asserts, rather than reporting an error, where
// a table header's first key does not begin with a key character (`[\u{FFFD}]`, "[`x]", "[\n") and where
// a '}' stands in an array (`x = [ } ]`): each aborted chargerd with SIGABRT (found by the board-file and
// site-file fuzz targets, reproducers kept under Fuzz/corpus/*/repro-*). Such text is refused here, its
// place named, before toml++ sees it.
// Keys in this project's files are ASCII, so any character outside ASCII outside a string or a comment
// is refused too.

public enum TOMLGuard {
    public struct Refusal: Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var column: Int
        public var why: String
        public var description: String { "line \(line), column \(column): \(why)" }
    }

    /// The first place toml++ must not be given, or nil.
    public static func check(_ text: String) -> Refusal? {
        enum Mode { case code, comment, basic, literal, multiBasic, multiLiteral }
        var mode = Mode.code
        var line = 1, column = 0
        let s = Array(text.unicodeScalars)
        var i = 0
        // Brackets and braces open in a value (an array or inline table over several lines), innermost
        // last; whether the line is a table header, has had its '=' (a value follows), or anything but
        // blanks came before on it.
        var open: [Unicode.Scalar] = [], inHeader = false, inValue = false, lineStarted = false
        func at(_ k: Int, _ c: Unicode.Scalar) -> Bool { k < s.count && s[k] == c }
        func isKeyStart(_ c: Unicode.Scalar) -> Bool {
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "-" || c == "_" || c == "\"" || c == "'" || c == "]")
        }
        while i < s.count {
            let c = s[i]
            if c == "\n" { line += 1; column = 0 } else { column += 1 }
            switch mode {
            case .code:
                if !c.isASCII { return Refusal(line: line, column: column, why: "a character outside ASCII outside a string or comment (keys are ASCII)") }
                if c == "\n" {
                    if open.isEmpty { inValue = false }
                    inHeader = false
                    lineStarted = false
                    break
                }
                let blank = c == " " || c == "\t" || c == "\r"
                if c == "[" && open.isEmpty && !inValue && !lineStarted {
                    // A table header: after '[' (or '[['), blanks, the first key must begin here.
                    var k = i + 1
                    if at(k, "[") { k += 1 }
                    while at(k, " ") || at(k, "\t") { k += 1 }
                    guard k < s.count, isKeyStart(s[k]) else {
                        return Refusal(line: line, column: column + (k - i), why: "a table header whose key does not begin with a letter, digit, '-', '_' or a quote")
                    }
                    lineStarted = true
                    inHeader = true    // the header's own brackets are not a value's: nothing is counted on this line
                    break
                }
                if !blank { lineStarted = true }
                if c == "#" { mode = .comment }
                else if inHeader { if c == "\"" { mode = .basic } else if c == "'" { mode = .literal } }
                else if c == "=" && open.isEmpty { inValue = true }
                else if ("0"..."9").contains(c), i == 0 || " \t\n\u{0B}\u{0C}\r=[{,".unicodeScalars.contains(s[i - 1]), dateThenDigit(s, from: i) {
                    return Refusal(line: line, column: column, why: "a date followed by a space and one digit (a date-time needs hh:mm:ss)")
                }
                else if c == "[" || c == "{" { open.append(c) }
                else if c == "]" || c == "}" {
                    if c == "}" && open.last == "[" {
                        return Refusal(line: line, column: column, why: "a '}' inside an array")
                    }
                    if !open.isEmpty { open.removeLast() }
                }
                else if c == "\"" {
                    if at(i + 1, "\"") && at(i + 2, "\"") { mode = .multiBasic; i += 2; column += 2 } else { mode = .basic }
                } else if c == "'" {
                    if at(i + 1, "'") && at(i + 2, "'") { mode = .multiLiteral; i += 2; column += 2 } else { mode = .literal }
                }
            case .comment:
                if c == "\n" { mode = .code; lineStarted = false; inHeader = false; if open.isEmpty { inValue = false } }
            case .basic:
                if c == "\\" { i += 1; column += 1 } else if c == "\"" { mode = .code } else if c == "\n" { mode = .code; lineStarted = false }
            case .literal:
                if c == "'" { mode = .code } else if c == "\n" { mode = .code; lineStarted = false }
            case .multiBasic:
                if c == "\\" { i += 1; column += 1 } else if c == "\"" && at(i + 1, "\"") && at(i + 2, "\"") { mode = .code; i += 2; column += 2 }
            case .multiLiteral:
                if c == "'" && at(i + 1, "'") && at(i + 2, "'") { mode = .code; i += 2; column += 2 }
            }
            i += 1
        }
        return nil
    }

    /// toml++ asserts (`!is_value_terminator(*cp)`) on a value of ten characters, underscores not
    /// counted, with '-' as its fifth and eighth (a date, or what could be one), then one space, one
    /// digit and a terminator: it reads on for a date-time's time and finds the value already ended
    /// (`x = [8--------b 8 ]`, `d = 2024-01-01 1`; site-file fuzz target, Fuzz/corpus/site-file/repro-*).
    static func dateThenDigit(_ s: [Unicode.Scalar], from start: Int) -> Bool {
        // toml++'s value terminators: its whitespace (space, tab, and \n through \r: \v and \f too;
        // whitespace outside ASCII is refused before this), ']', '}', ',' and '#'.
        func terminates(_ c: Unicode.Scalar) -> Bool { " \t\n\u{0B}\u{0C}\r],}#".unicodeScalars.contains(c) }
        var k = start, chars: [Unicode.Scalar] = []
        while k < s.count, !terminates(s[k]), chars.count <= 10 {
            if s[k] != "_" { chars.append(s[k]) }
            k += 1
        }
        guard chars.count == 10, chars[4] == "-", chars[7] == "-" else { return false }
        guard k + 2 < s.count, s[k] == " ", ("0"..."9").contains(s[k + 1]) else { return false }
        return terminates(s[k + 2])
    }
}
