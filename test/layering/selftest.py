#!/usr/bin/env python3
"""The layering check must fail on an upward include and on an include without a folder, and pass on a tree that
keeps the rule: proved on small trees made here, so the real check cannot pass by checking nothing."""
import os
import subprocess
import sys
import tempfile

check = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'check.py')


def run(files):
    with tempfile.TemporaryDirectory() as root:
        for path, text in files.items():
            os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(root, path), 'w') as f:
                f.write(text)
        p = subprocess.run([sys.executable, check, root], capture_output=True, text=True)
        return p.returncode, p.stdout


failures = 0
rc, out = run({'util/a.h': '#include "util/b.h"\n', 'engine/e.c': '#include "util/a.h"\n#include "sh_config.h"\n'})
if rc != 0:
    print(f'a downward include was refused:\n{out}')
    failures += 1
rc, out = run({'util/a.c': '#include <stdio.h>\n\n#include "engine/engine.h"\n'})
if rc != 1 or 'util/a.c:3' not in out or 'engine/' not in out:
    print(f'an upward include was not refused with its file:line (rc {rc}):\n{out}')
    failures += 1
rc, out = run({'value/v.c': '#include "value.h"\n'})
if rc != 1 or 'names no folder' not in out:
    print(f'an include without its folder was not refused (rc {rc}):\n{out}')
    failures += 1
rc, out = run({'gadgets/g.c': '\n'})
if rc != 1 or 'not in the layering' not in out:
    print(f'a folder outside the levels was not refused (rc {rc}):\n{out}')
    failures += 1
sys.exit(1 if failures else 0)
