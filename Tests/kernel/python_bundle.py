#!/usr/bin/env python3
"""Tests/kernel/python_bundle.py OUT.tar: this Python's standard library (less its tests, IDLE, tkinter
and the like) and the distributions python-can and cantools need, in one tar the qemu guest unpacks into
its tmpfs (Tests/kernel/guest.sh). Read over 9p, which caches nothing, `import can, cantools` took 12-13 s
of the emulated CPU in each of the guest's five Python processes; from tmpfs with `python -S` 4.4-7.3 s
(2026-12-07, `-X importtime`: the import system's stat calls over 9p, and site's .pth files)."""
import importlib.metadata as md
import os
import sys
import sysconfig
import tarfile

from packaging.requirements import Requirement

SKIP = {"test", "site-packages", "dist-packages", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
        "pydoc_data", "distutils", "__phello__"}


def distributions(names):
    """The distributions named and what they require (no extras), each once."""
    seen, want, out = set(), list(names), []
    while want:
        d = md.distribution(want.pop())
        key = d.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        out.append(d)
        for r in d.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                want.append(req.name)
    return out


def main():
    out = sys.argv[1]
    std = sysconfig.get_paths()["stdlib"]
    version = os.path.basename(std)
    with tarfile.open(out, "w") as tar:
        def keep(info):
            parts = info.name.split("/")
            if len(parts) > 2 and (parts[2] in SKIP or parts[2].startswith("config-")):
                return None
            if "test" in parts[2:] or info.name.endswith((".opt-1.pyc", ".opt-2.pyc")):
                return None
            return info
        tar.add(std, arcname=f"lib/{version}", filter=keep)
        # (Where a distribution keeps lib-dynload outside the standard library's directory.)
        dynload = os.path.join(sysconfig.get_paths()["platstdlib"], "lib-dynload")
        if not os.path.isdir(os.path.join(std, "lib-dynload")) and os.path.isdir(dynload):
            tar.add(dynload, arcname=f"lib/{version}/lib-dynload")
        for d in distributions(["python-can", "cantools"]):
            for f in d.files or []:
                p = str(f)
                # (Scripts outside site-packages, and bytecode of other interpreters, stay behind.)
                if p.startswith("..") or ("__pycache__" in p and not p.endswith(".cpython-%d%d.pyc" % sys.version_info[:2])):
                    continue
                src = d.locate_file(f)
                if os.path.isfile(src):
                    tar.add(src, arcname=f"site/{p}", recursive=False)
    print(f"{out}: {os.path.getsize(out) / 1e6:.1f} MB, the standard library of {version} and {', '.join(d.metadata['Name'] for d in distributions(['python-can', 'cantools']))}")


if __name__ == "__main__":
    main()
