// Line editing for a dumb terminal at 115200 8N1 (picocom, minicom, screen, PuTTY): printable ASCII at
// the cursor, backspace (DEL or BS) before it, arrows left/right, Home/End and Ctrl-A/Ctrl-E move it,
// Ctrl-W erases the word before it, Ctrl-U erases the line, Ctrl-C cancels it, Enter (CR, LF or CR LF)
// submits, arrow up/down walk the history where the terminal sends ANSI/VT100 sequences (ESC [ A,
// ESC O A), Tab completes at the end of the line. The terminal is only ever sent printable bytes, BS
// (cursor left) and spaces, which every terminal follows. Everything else (other control bytes, binary,
// UTF-8) is dropped and counted.
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
    /// Where the next byte goes: 0...line.count.
    public private(set) var cursor = 0
    public private(set) var history: [String] = []
    /// Bytes dropped (control, binary, over-long lines).
    public private(set) var dropped: UInt64 = 0
    private var historyIndex: Int? = nil
    /// Printable bytes typed past `maxLine` on this line (the line is refused at Enter).
    private var overflow = 0
    private var escape = 0          // 0 none, 1 after ESC, 2 inside a CSI/SS3 sequence
    private var escapeLength = 0
    private var escapeParameter = 0
    private var lastWasCR = false
    /// Candidates for completing a line (set by the console).
    public var complete: @Sendable (String) -> [String] = { _ in [] }

    public init() {}

    /// Set for a read that is not a person typing (a flood, a paste of many lines): edits are not echoed
    /// byte by byte (an edit in the middle redraws the rest of the line, so a flood could come out 100
    /// times larger and crowd a command's answer out of the bounded output queue); `redraw` shows the
    /// line once at the end of the read, and before a line is submitted or cancelled.
    public var quiet = false
    private var dirty = false
    /// The longest the line has been on the screen since it was last drawn whole (blanked by a redraw).
    private var shownLength = 0

    /// Feeds one byte; appends what the terminal should show to `out`; returns an event when one happens.
    public mutating func feed(_ b: UInt8, out: inout [UInt8]) -> Event? {
        // Enter and Ctrl-C end a line even inside an escape sequence: a control byte is acted on where it
        // comes (as VT100 terminals do), so Esc then Ctrl-C cancels (the console fuzz target found an Esc
        // that swallowed the Ctrl-C after it, and the Enter that followed ran the half-typed line).
        if escape > 0 && (b == 0x0D || b == 0x0A || b == 0x03) { escape = 0; dropped += 1 }
        let ends = b == 0x0D || b == 0x0A || b == 0x03
        guard quiet && !ends else {
            if ends { redraw(&out) }
            let e = feedByte(b, out: &out)
            shownLength = e == nil ? max(shownLength, line.count) : 0
            return e
        }
        var scratch: [UInt8] = []
        let e = feedByte(b, out: &scratch)
        if !scratch.isEmpty { dirty = true }
        return e
    }

    /// Shows the line as it is, once, if quiet edits changed it: back to the line's start, the prompt,
    /// the line, blanks over what was longer, and back to the cursor.
    public mutating func redraw(_ out: inout [UInt8]) {
        guard dirty else { return }
        dirty = false
        guard echo else { return }
        let pad = max(0, shownLength - line.count)
        out.append(0x0D)
        out += Array(prompt.utf8)
        out += line
        out += [UInt8](repeating: 0x20, count: pad)
        out += [UInt8](repeating: 0x08, count: pad + line.count - cursor)
        shownLength = line.count
    }

    private mutating func feedByte(_ b: UInt8, out: inout [UInt8]) -> Event? {
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
            cursor = 0
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
            cursor = 0
            historyIndex = nil
            overflow = 0
            return .cancel
        case 0x15:
            erase(&out)
        case 0x08, 0x7F:
            // The bytes typed past the limit (never shown, each answered with a bell) go first.
            if overflow > 0 { overflow -= 1 } else if cursor > 0 { delete(before: 1, &out) }
        case 0x01:
            if echo { moveTo(0, &out) }
        case 0x05:
            if echo { moveTo(line.count, &out) }
        case 0x17:
            // Ctrl-W: the spaces before the cursor, then the word before them.
            var n = 0
            while cursor - n > 0 && line[cursor - n - 1] == 0x20 { n += 1 }
            while cursor - n > 0 && line[cursor - n - 1] != 0x20 { n += 1 }
            if n > 0 { overflow = 0; delete(before: n, &out) }
        case 0x09:
            if echo { if cursor == line.count { completeLine(&out) } else { out.append(0x07) } }
        case 0x1B:
            escape = 1; escapeLength = 0; escapeParameter = 0
        case 0x20...0x7E:
            if line.count >= Self.maxLine { out.append(0x07); dropped += 1; overflow += 1; return nil }
            line.insert(b, at: cursor)
            cursor += 1
            if echo {
                // The byte, the rest of the line after it, and back to the cursor.
                out.append(b)
                out += line[cursor...]
                out += [UInt8](repeating: 0x08, count: line.count - cursor)
            }
        default:
            dropped += 1
        }
        return nil
    }

    /// Replaces the line with `text`, showing the change.
    public mutating func replace(with text: String, out: inout [UInt8]) {
        erase(&out)
        line = Array(text.utf8.prefix(Self.maxLine))
        cursor = line.count
        if echo { out += line }
    }

    private mutating func erase(_ out: inout [UInt8]) {
        if echo {
            out += line[cursor...]   // to the end first, then rub out every byte
            for _ in line { out += [0x08, 0x20, 0x08] }
        }
        line.removeAll(keepingCapacity: true)
        cursor = 0
        overflow = 0
    }

    /// Moves the cursor to `i` (0...line.count): BS to go left, the line's own bytes to go right.
    private mutating func moveTo(_ i: Int, _ out: inout [UInt8]) {
        let to = min(max(i, 0), line.count)
        if to < cursor { out += [UInt8](repeating: 0x08, count: cursor - to) } else if to > cursor { out += line[cursor..<to] }
        cursor = to
    }

    /// Removes the `n` bytes before the cursor and redraws the rest of the line over them.
    private mutating func delete(before n: Int, _ out: inout [UInt8]) {
        let n = min(n, cursor)
        guard n > 0 else { return }
        line.removeSubrange((cursor - n)..<cursor)
        cursor -= n
        guard echo else { return }
        out += [UInt8](repeating: 0x08, count: n)
        out += line[cursor...]
        out += [UInt8](repeating: 0x20, count: n)
        out += [UInt8](repeating: 0x08, count: line.count - cursor + n)
    }

    private mutating func feedEscape(_ b: UInt8, out: inout [UInt8]) -> Event? {
        escapeLength += 1
        if escape == 1 {
            if b == UInt8(ascii: "[") || b == UInt8(ascii: "O") { escape = 2 } else { escape = 0; dropped += 1 }
            return nil
        }
        // Parameters (digits, ';') until a final byte, at most 8 bytes (a garbled sequence ends there).
        if (0x30...0x3F).contains(b) && escapeLength < 8 {
            if (0x30...0x39).contains(b) { escapeParameter = min(escapeParameter * 10 + Int(b - 0x30), 999) }
            return nil
        }
        escape = 0
        guard echo else { return nil }
        switch b {
        case UInt8(ascii: "D"): moveTo(cursor - 1, &out)   // left
        case UInt8(ascii: "C"): moveTo(cursor + 1, &out)   // right
        case UInt8(ascii: "H"): moveTo(0, &out)             // Home (ESC [ H, ESC O H)
        case UInt8(ascii: "F"): moveTo(line.count, &out)    // End
        case UInt8(ascii: "~"):                              // ESC [ 1 ~ / 7 ~ Home, ESC [ 4 ~ / 8 ~ End, ESC [ 3 ~ Delete
            switch escapeParameter {
            case 1, 7: moveTo(0, &out)
            case 4, 8: moveTo(line.count, &out)
            case 3: if cursor < line.count { moveTo(cursor + 1, &out); delete(before: 1, &out) }
            default: break
            }
        case UInt8(ascii: "A"):
            guard !history.isEmpty else { return nil }
            let i = max(0, (historyIndex ?? history.count) - 1)
            historyIndex = i
            replace(with: history[i], out: &out)
        case UInt8(ascii: "B"):
            guard !history.isEmpty, let h = historyIndex else { return nil }
            if h + 1 < history.count { historyIndex = h + 1; replace(with: history[h + 1], out: &out) }
            else { historyIndex = nil; replace(with: "", out: &out) }
        default: break
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
                if line.count + add.count <= Self.maxLine { line += add; out += add; cursor = line.count }
            }
        } else if options.count > 1 {
            // Extend to the longest common prefix; list the options when there is nothing to add.
            var common = options[0]
            for o in options.dropFirst() { while !o.hasPrefix(common) { common.removeLast() } }
            if common.count > text.count && common.hasPrefix(text) {
                let add = Array(common.utf8.dropFirst(line.count))
                if line.count + add.count <= Self.maxLine { line += add; out += add; cursor = line.count }
            } else {
                // The choices for the word being typed (the words before it are the same in each).
                let before = text.lastIndex(of: " ").map { text.distance(from: text.startIndex, to: $0) + 1 } ?? 0
                let shown = options.map { String($0.dropFirst(min(before, $0.count))) }
                out += Array(("\r\n" + shown.joined(separator: "  ") + "\r\n" + prompt + text).utf8)
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
