#!/usr/bin/env python3
"""The documents' links and the code's citations of them resolve.

1. Every relative link in README.md, BENCHMARKS.md, HIL/README.md and docs/*.md names a file that exists,
   and a `#fragment` on a link to a Markdown file names one of its headings (GitHub's anchors).
2. Every citation of a page by title, `README "Title"`, `docs/grid.md "Title"` or `docs/realtime.md:
   "Title"` (and, inside docs/, `grid.md "Title"`), in Sources, Tests, HIL, Boards, the Makefile and the
   documents, names a heading of that page or one of its bold run-in titles (`**Title**`).
   docs/standards.md's citations are the Swift test CitationsResolve's (rows and bullets count there).

Usage: doc-links.py ROOT
"""
import os, re, sys

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
errors = []


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def outside_fences(text):
    out, fence = [], False
    for line in text.split("\n"):
        if line.startswith("```"):
            fence = not fence
            continue
        out.append("" if fence else line)
    return out


def headings(path):
    return [re.sub(r"^#+\s+", "", l).strip() for l in outside_fences(read(path)) if re.match(r"#{1,6} ", l)]


def anchor(title):
    t = re.sub(r"[^\w\- ]", "", title.lower().replace("`", ""))
    return t.replace(" ", "-")


pages = ["README.md", "BENCHMARKS.md", "HIL/README.md"] + sorted("docs/" + f for f in os.listdir(f"{root}/docs") if f.endswith(".md"))
links = 0
for page in pages:
    base = os.path.dirname(f"{root}/{page}")
    for n, line in enumerate(outside_fences(read(f"{root}/{page}")), 1):
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if re.match(r"[a-z]+:", target):
                continue
            links += 1
            path, _, frag = target.partition("#")
            full = os.path.normpath(os.path.join(base, path)) if path else f"{root}/{page}"
            if not os.path.exists(full):
                errors.append(f"{page}:{n}: link to {target}: no such file")
            elif frag and full.endswith(".md") and frag not in {anchor(h) for h in headings(full)}:
                errors.append(f"{page}:{n}: link to {target}: {os.path.relpath(full, root)} has no heading #{frag}")

cite = re.compile(r'((?:[A-Za-z]+/)*(?:[a-z][a-z0-9-]*\.md|README(?:\.md)?)):?\s+\\?"([^"\\\n]{3,80})\\?"')
cited = 0
files = ["README.md", "Makefile", "BENCHMARKS.md"]
for top in ["Sources", "Tests", "HIL", "Boards", "docs"]:
    for d, _, names in os.walk(f"{root}/{top}"):
        files += [os.path.relpath(os.path.join(d, n), root) for n in names if re.search(r"\.(swift|py|sh|toml|md|h|c)$", n)]
for rel in sorted(files):
    if rel == "Tests/cli/doc-links.py":
        continue   # its own examples
    try:
        text = read(f"{root}/{rel}")
    except (UnicodeDecodeError, OSError):
        continue
    for m in cite.finditer(text):
        doc, title = m.group(1), m.group(2)
        if doc.endswith("standards.md"):
            continue
        if doc in ("README", "README.md"):
            target = "README.md"
        elif "/" in doc:
            target = doc
        elif rel.startswith("docs/"):
            target = "docs/" + doc
        else:
            errors.append(f"{rel}: cites {doc} \"{title}\": say which page (its path from the repository's root)")
            continue
        if not os.path.exists(f"{root}/{target}"):
            errors.append(f"{rel}: cites {doc} \"{title}\": no such page")
            continue
        cited += 1
        heads = headings(f"{root}/{target}")
        bold = re.findall(r"\*\*([^*]+)\*\*", read(f"{root}/{target}"))
        if not any(title in h for h in heads) and not any(b.startswith(title) for b in bold):
            errors.append(f"{rel}: cites {target} \"{title}\": no heading or bold title says it")

if errors:
    print("FAIL documents' links or citations that do not resolve:")
    for e in errors:
        print("  " + e)
    sys.exit(1)
print(f"ok   {links} links in {len(pages)} documents and {cited} citations of them by title resolve")
