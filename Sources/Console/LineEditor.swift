// Line editing for a dumb terminal at 115200 8N1 (picocom, minicom, screen, PuTTY): printable ASCII at
// the end of the line, backspace (DEL or BS), Ctrl-U erases the line, Ctrl-C cancels it, Enter (CR, LF or
// CR LF) submits, arrow up/down walk the history where the terminal sends ANSI/VT100 sequences (ESC [ A,
// ESC O A), Tab completes. Everything else (other control bytes, binary, UTF-8) is dropped and counted.
// Pure: bytes in, bytes to echo out, events; the console decides what a line means.

public struct LineEditor: Sendable {
    /// Longest line accepted; more is refused with a bell (a bounded console, docs/console.md).
    public static let maxLine = 160
    /// Lines kept for the arrow keys.
    public static let historyLimit = 32

    public enum Event: Equatable, Sendable {
        /// A line was submitted (without its end-of-line).
        case line(String)
        /// Ctrl-C: the line was cancelled.
        case cancel
        /// Enter on a line typed longer than `maxLine`: refused whole, never run cut (issue 36: a
        /// 207-character line was cut at 160 and run). `typed` counts every printable byte typed.
        case tooLong(typed: Int)
    }

    public var prompt: String = "> "
    /// False while a password is typed: nothing is echoed, nothing goes into the history.
    public var echo = true
    public private(set) var line: [UInt8] = []
    public private(set) var history: [String] = []
    /// Bytes dropped (control, binary, over-long lines).
    public private(set) var dropped: UInt64 = 0
    private var historyIndex: Int? = nil
    /// Printable bytes typed past `maxLine` on this line (the line is refused at Enter).
    private var overflow = 0
    private var escape = 0          // 0 none, 1 after ESC, 2 inside a CSI/SS3 sequence
    private var escapeLength = 0
    private var lastWasCR = false
    /// Candidates for completing a line (set by the console).
    public var complete: @Sendable (String) -> [String] = { _ in [] }

    public init() {}

    /// Feeds one byte; appends what the terminal should show to `out`; returns an event when one happens.
    public mutating func feed(_ b: UInt8, out: inout [UInt8]) -> Event? {
        let wasCR = lastWasCR
        lastWasCR = false
        if escape > 0 { return feedEscape(b, out: &out) }
        switch b {
        case 0x0D, 0x0A:
            if b == 0x0A && wasCR { return nil }   // CR LF is one Enter
            lastWasCR = b == 0x0D
            out += Array("\r\n".utf8)
            let text = String(decoding: line, as: UTF8.self)
            line.removeAll(keepingCapacity: true)
            historyIndex = nil
            if overflow > 0 {
                let typed = text.utf8.count + overflow
                overflow = 0
                return .tooLong(typed: typed)
            }
            if echo && !text.trimmingSpaces.isEmpty && history.last != text {
                history.append(text)
                if history.count > Self.historyLimit { history.removeFirst() }
            }
            return .line(text)
        case 0x03:
            out += Array("^C\r\n".utf8)
            line.removeAll(keepingCapacity: true)
            historyIndex = nil
            overflow = 0
            return .cancel
        case 0x15:
            erase(&out)
        case 0x08, 0x7F:
            // The bytes typed past the limit (never shown, each answered with a bell) go first.
            if overflow > 0 { overflow -= 1 } else if !line.isEmpty {
                line.removeLast()
                if echo { out += [0x08, 0x20, 0x08] }
            }
        case 0x09:
            if echo { completeLine(&out) }
        case 0x1B:
            escape = 1; escapeLength = 0
        case 0x20...0x7E:
            if line.count >= Self.maxLine { out.append(0x07); dropped += 1; overflow += 1; return nil }
            line.append(b)
            if echo { out.append(b) }
        default:
            dropped += 1
        }
        return nil
    }

    /// Replaces the line with `text`, showing the change.
    public mutating func replace(with text: String, out: inout [UInt8]) {
        erase(&out)
        line = Array(text.utf8.prefix(Self.maxLine))
        if echo { out += line }
    }

    private mutating func erase(_ out: inout [UInt8]) {
        if echo { for _ in line { out += [0x08, 0x20, 0x08] } }
        line.removeAll(keepingCapacity: true)
        overflow = 0
    }

    private mutating func feedEscape(_ b: UInt8, out: inout [UInt8]) -> Event? {
        escapeLength += 1
        if escape == 1 {
            if b == UInt8(ascii: "[") || b == UInt8(ascii: "O") { escape = 2 } else { escape = 0; dropped += 1 }
            return nil
        }
        // Parameters (digits, ';') until a final byte, at most 8 bytes (a garbled sequence ends there).
        if (0x30...0x3F).contains(b) && escapeLength < 8 { return nil }
        escape = 0
        guard echo, !history.isEmpty else { return nil }
        switch b {
        case UInt8(ascii: "A"):
            let i = max(0, (historyIndex ?? history.count) - 1)
            historyIndex = i
            replace(with: history[i], out: &out)
        case UInt8(ascii: "B"):
            guard let h = historyIndex else { return nil }
            if h + 1 < history.count { historyIndex = h + 1; replace(with: history[h + 1], out: &out) }
            else { historyIndex = nil; replace(with: "", out: &out) }
        default: break   // left/right/home/end and others: the line is edited at its end only
        }
        return nil
    }

    private mutating func completeLine(_ out: inout [UInt8]) {
        let text = String(decoding: line, as: UTF8.self)
        let options = complete(text)
        if options.count == 1 {
            let full = options[0] + " "
            if full.hasPrefix(text) {
                let add = Array(full.utf8.dropFirst(line.count))
                if line.count + add.count <= Self.maxLine { line += add; out += add }
            }
        } else if options.count > 1 {
            // Extend to the longest common prefix; list the options when there is nothing to add.
            var common = options[0]
            for o in options.dropFirst() { while !o.hasPrefix(common) { common.removeLast() } }
            if common.count > text.count && common.hasPrefix(text) {
                let add = Array(common.utf8.dropFirst(line.count))
                line += add; out += add
            } else {
                out += Array(("\r\n" + options.joined(separator: "  ") + "\r\n" + prompt + text).utf8)
            }
        } else {
            out.append(0x07)
        }
    }
}

extension String {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
