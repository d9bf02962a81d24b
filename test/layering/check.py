#!/usr/bin/env python3
"""The layering rule of host/: a folder includes headers only from its own folder and the folders below it.

The levels, bottom first, are LEVELS below; CONTRIBUTING.md explains what each holds. An include that names no
folder ("foo.h") is refused too: it would hide which level it reaches. Run as `check.py HOST_DIR`; exits 1 and
prints every violation as file:line when the rule is broken, so a reviewer sees all of them at once.
"""
import os
import re
import sys

LEVELS = ['util', 'value', 'registry', 'config', 'sandbox', 'plugin', 'builtin', 'worker', 'runtime', 'hooks',
          'engine', 'serve', 'cli']
# Generated into the build directory of host/, and read by every level.
GENERATED = {'sh_config.h'}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def violations(root):
    out = []
    for folder in sorted(os.listdir(root)):
        path = os.path.join(root, folder)
        if not os.path.isdir(path):
            continue
        if folder not in LEVELS:
            out.append(f'{path}: folder is not in the layering (add it to LEVELS in {__file__})')
            continue
        mine = LEVELS.index(folder)
        for name in sorted(os.listdir(path)):
            if not name.endswith(('.c', '.h')):
                continue
            file = os.path.join(path, name)
            with open(file, encoding='utf-8') as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m or m.group(1) in GENERATED:
                        continue
                    target = m.group(1).split('/')
                    if len(target) < 2:
                        out.append(f'{file}:{lineno}: "{m.group(1)}" names no folder: write "{folder}/{m.group(1)}"'
                                   ' or the folder it lives in')
                    elif target[0] not in LEVELS:
                        out.append(f'{file}:{lineno}: "{m.group(1)}" is in no known folder')
                    elif LEVELS.index(target[0]) > mine:
                        out.append(f'{file}:{lineno}: {folder}/ includes "{m.group(1)}" from {target[0]}/, a level '
                                   f'above it ({" < ".join(LEVELS)}): move the shared part down, or the caller up')
    return out


def main():
    if len(sys.argv) != 2:
        print('usage: check.py HOST_DIR', file=sys.stderr)
        return 2
    found = violations(sys.argv[1])
    for v in found:
        print(v)
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
