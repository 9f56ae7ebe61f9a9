#!/usr/bin/env python3
"""The README's module graph is Package.swift's, and it reads top-down with no upward edge.

The README block (after "### Module graph") has one line per Swift target, `Name → dep, dep` (or `→ -`),
highest layer first; a last line `C: ...` lists the C targets and system libraries, and `external: ...` the
products of other packages. Checked: every target of Package.swift (tests aside) has exactly one line,
its dependencies are the same set as Package.swift's, and every dependency is drawn below its dependent.
And the production path never links the simulator: no target but the simulator's own (SIMULATOR below)
reaches SimPlant, directly or through another (issue 34: the production loop sat in the simulator's module).
"""
import json, re, subprocess, sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
pkg = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=root, check=True,
                                capture_output=True, text=True).stdout)
deps = {}
for t in pkg["targets"]:
    if t["type"] == "test":
        continue
    ds = set()
    for x in t.get("dependencies", []):
        for k in ("byName", "target", "product"):
            if k in x:
                ds.add(x[k][0])
    deps[t["name"]] = ds

text = open(f"{root}/README.md", encoding="utf-8").read()
block = re.split(r"(?m)^#+ Module graph$", text, maxsplit=1)[1].split("```", 2)[1]
order, drawn, leaves = [], {}, set()
for line in block.strip("\n").splitlines():
    line = line.strip()
    if line.startswith("C:") or line.startswith("external:"):
        leaves |= {w.strip() for w in line.split(":", 1)[1].split(",") if w.strip()}
        continue
    name, _, rest = line.partition("→")
    name = name.strip()
    order.append(name)
    drawn[name] = set() if rest.strip() == "-" else {w.strip() for w in rest.split(",")}

errors = []
for n in sorted(set(deps) - set(drawn) - leaves):
    errors.append(f"{n}: a target of Package.swift missing from the README's module graph")
for n in sorted(set(drawn) - set(deps)):
    errors.append(f"{n}: drawn in the README but not a target of Package.swift")
for i, n in enumerate(order):
    if n not in deps:
        continue
    if drawn[n] != deps[n]:
        errors.append(f"{n}: README says → {', '.join(sorted(drawn[n])) or '-'}; Package.swift says → {', '.join(sorted(deps[n])) or '-'}")
    below = set(order[i + 1:]) | leaves
    for d in sorted(deps[n] - below):
        errors.append(f"{n} → {d}: an upward edge ({d} is drawn above {n}, or nowhere)")
# The targets that may link the simulated plant: the plant itself, the simulated board's runtime, the HIL
# runner and the executables that run simulated boards. Everything else is the production path.
SIMULATOR = {"SimPlant", "ChargerRuntime", "SimulatedStation", "HILRunner", "chargerd", "charger-plant", "charger-hil", "charger-bench"}
def reaches(n, goal, seen=None):
    seen = set() if seen is None else seen
    for d in deps.get(n, ()):
        if d == goal:
            return [n, d]
        if d not in seen:
            seen.add(d)
            p = reaches(d, goal, seen)
            if p:
                return [n] + p
    return None
for n in sorted(set(deps) - SIMULATOR):
    p = reaches(n, "SimPlant")
    if p:
        errors.append(f"{n} links the simulator: {' → '.join(p)} (the production path must not reach SimPlant)")
if errors:
    print("FAIL the README's module graph disagrees with Package.swift:")
    for e in errors:
        print("  " + e)
    sys.exit(1)
print(f"ok   README module graph = Package.swift ({len(order)} Swift targets, no upward edge; "
      f"{len(set(order) - SIMULATOR)} Swift targets of the production path, none reaches SimPlant)")
