#!/usr/bin/env python3
"""The code's shape, as a reviewer reads it (README "chargerd contract" states the rule):

- no Swift line over WIDTH characters, unless what passes the width is one string literal (a message a
  user greps for stays whole on its line, as swift-format leaves it too) or the line is the text of a
  multi-line literal;
- no function, initialiser or closure-free body over LONG lines unless a comment right above its
  declaration says why, starting `// Long:` (a state machine's one switch, a table).

Usage: code-shape.py [ROOT] [--list]. Exit 1 with each offence as FILE:LINE: what.
"""
import os, re, sys

WIDTH = 150
LONG = 80
DIRS = ("Sources", "Tests", "HIL")

args = [a for a in sys.argv[1:] if not a.startswith("--")]
root = args[0] if args else "."
listing = "--list" in sys.argv

DECL = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|private|fileprivate|internal|static|class|final|override|"
                  r"mutating|nonmutating|nonisolated|convenience|required|@inlinable|@inline\(__always\)|@discardableResult)\s+)*"
                  r"(func\s+[^\s(<]+|init[?!]?|deinit|subscript)\s*[(<{]?")


def code_of(line, state):
    """The line with string literals and comments blanked (state carries a multi-line string or block
    comment across lines). Returns (code, state)."""
    out, i, n = [], 0, len(line)
    while i < n:
        if state == "block":
            j = line.find("*/", i)
            if j < 0:
                return "".join(out), state
            i, state = j + 2, None
            continue
        if state == "multi":
            j = line.find('"""', i)
            if j < 0:
                return "".join(out), state
            out.append('""')
            i, state = j + 3, None
            continue
        c = line[i]
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            state = "block"
            i += 2
            continue
        if line.startswith('#"', i) and not line.startswith('#"""', i):
            # A raw literal: its quotes are text up to '"#'.
            j = line.find('"#', i + 2)
            out.append('""')
            i = n if j < 0 else j + 2
            continue
        if line.startswith('"""', i) or line.startswith('#"""', i):
            i += line.startswith('#', i)
            state = "multi"
            i += 3
            continue
        if c == '"':
            # A one-line literal, with interpolations \( ... ) that may hold literals of their own.
            j, depth = i + 1, 0
            while j < n:
                if line[j] == "\\" and j + 1 < n and line[j + 1] == "(":
                    depth += 1
                    j += 2
                    continue
                if line[j] == "\\":
                    j += 2
                    continue
                if depth and line[j] == "(":
                    depth += 1
                elif depth and line[j] == ")":
                    depth -= 1
                elif line[j] == '"' and depth == 0:
                    break
                j += 1
            out.append('""')
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out), state


def literal_excess(line):
    """True when the part of the line past WIDTH lies inside one string literal that begins before it."""
    starts = [m.start() for m in re.finditer(r'(?<!\\)"', line)]
    if not starts:
        return False
    first = starts[0]
    code, _ = code_of(line, None)
    # Blank the literal: what is left must fit.
    return first < WIDTH and len(code) <= WIDTH


def check(path, rel, offences):
    lines = open(path, encoding="utf-8").read().split("\n")
    state = None
    codes = []
    for i, line in enumerate(lines):
        inside = state == "multi"   # the line begins inside a multi-line literal: text, as a message is
        code, state = code_of(line, state)
        codes.append(code)
        if len(line) > WIDTH and not inside and not literal_excess(line):
            offences.append(f"{rel}:{i + 1}: {len(line)} characters (at most {WIDTH}, a string literal aside)")
    # Bodies: from a declaration's opening brace to its closing one.
    for i, line in enumerate(lines):
        m = DECL.match(codes[i])
        if not m:
            continue
        # Find the opening brace (the signature may span lines).
        j, depth, opened = i, 0, None
        while j < len(lines) and j < i + 20:
            if "{" in codes[j]:
                opened = j
                break
            if j > i and DECL.match(codes[j]):
                break
            j += 1
        if opened is None:
            continue   # a protocol requirement
        depth, k = 0, opened
        while k < len(lines):
            depth += codes[k].count("{") - codes[k].count("}")
            if depth <= 0:
                break
            k += 1
        length = k - i + 1
        if length <= LONG:
            continue
        above = i - 1
        while above >= 0 and (lines[above].strip().startswith("///") or lines[above].strip().startswith("@")):
            above -= 1
        said = any(lines[a].strip().startswith("// Long:") for a in range(max(0, above - 6), i))
        if not said:
            offences.append(f"{rel}:{i + 1}: {m.group(1)} is {length} lines (at most {LONG} without a '// Long:' comment saying why)")


offences = []
for d in DIRS:
    for dirpath, _, files in os.walk(os.path.join(root, d)):
        if "/.build" in dirpath:
            continue
        for f in sorted(files):
            if f.endswith(".swift"):
                p = os.path.join(dirpath, f)
                check(p, os.path.relpath(p, root), offences)
if offences:
    if listing:
        for o in offences:
            print(o)
    print(f"FAIL {len(offences)} offence(s) against the code's shape (lines ≤ {WIDTH}, bodies ≤ {LONG} lines or a '// Long:' reason)"
          + ("" if listing else "; --list names them"))
    sys.exit(1)
print(f"ok   every Swift line ≤ {WIDTH} characters (a string literal aside), every body ≤ {LONG} lines or says why")
