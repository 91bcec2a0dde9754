#!/usr/bin/env python3
"""Copy the golden vectors into the conformance harness's package.

    python3 vectors/tools/copy_suite.py

`vectors/` (top level) is the one source of truth, written by
build_vectors.py, build_scenarios.py and build_parent.py. The harness embeds
its suite at build time, and `cargo package` only carries files inside the
package, so `conformance/harness/vectors/{codec,framing,scenarios,parent}/*.json`
is an exact copy made by this script (stale files removed). CI runs it after the generators and
fails if the committed copy differs; the testkit test `suite_copy` checks the
same on every `cargo test`. Never edit the copy.
"""

import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.join(ROOT, "vectors")
COPY = os.path.join(ROOT, "conformance", "harness", "vectors")
SUBDIRS = ("codec", "framing", "scenarios", "parent")


def main():
    for sub in SUBDIRS:
        src = os.path.join(SOURCE, sub)
        dst = os.path.join(COPY, sub)
        os.makedirs(dst, exist_ok=True)
        wanted = sorted(n for n in os.listdir(src) if n.endswith(".json"))
        for name in os.listdir(dst):
            if name not in wanted:
                os.remove(os.path.join(dst, name))
                print("removed stale conformance/harness/vectors/%s/%s" % (sub, name))
        for name in wanted:
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
        print("copied %d file(s) to conformance/harness/vectors/%s" % (len(wanted), sub))


if __name__ == "__main__":
    main()
