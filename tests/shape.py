#!/usr/bin/env python3
"""The shape of the code a student reads, measured and held (issue 19).

    python3 tests/shape.py --root .            check every rule below; exit 1 on a breach
    python3 tests/shape.py --root . --table    one line per chapter: lines, main, longest function, casts

The rules:
  - a chapter's main() is at most 40 lines, and no function in a chapter (its
    chapterN.cpp and the headers beside it) over 60;
  - no static_cast whose only use is to feed printf (a cast inside the arguments
    of narrate/printf/fprintf/snprintf);
  - chapter 3 has no mutex, condition variable or atomic;
  - every #if on a platform (_WIN32, __linux__, __APPLE__, ...) is in common/platform.*;
  - the includes among common/ form layers: no file includes, directly or not, itself;
  - no source file in common/ has more than 600 lines.
Lines count from a function's signature to its closing brace, comments included.
"""
import argparse
import glob
import os
import re
import sys

PLATFORM_MACROS = re.compile(r"\b(_WIN32|_WIN64|__linux__|__APPLE__|__MINGW32__|__FreeBSD__|_MSC_VER)\b")
PRINTF_CALLS = re.compile(r"\b(narrate|printf|fprintf|snprintf|vsnprintf|std::printf|std::fprintf|std::snprintf)\s*\(")
NOT_FUNCTIONS = {"if", "for", "while", "switch", "catch", "return", "sizeof", "do"}


def strip(text):
    """The source with comments, strings and character literals blanked, line breaks kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"' or c == "'":
            if c == '"' and i > 0 and text[i - 1] == "R":  # R"(...)"
                m = re.match(r'"([^(]*)\(', text[i:])
                end = text.find(")" + m.group(1) + '"', i) + len(m.group(1)) + 2
                out.append(c + re.sub(r"[^\n]", " ", text[i + 1:end - 1]) + c)
                i = end
                continue
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    """(name, first line, line count) of every function body in a file, at any
    depth of namespaces and classes; a lambda counts as part of its function."""
    code = strip(open(path, encoding="utf-8").read())
    found, stack = [], []  # per open brace: (name, first line) for a function, else None
    line = 1
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c == "{":
            if any(stack):  # inside a function: a block or a lambda
                stack.append(None)
                continue
            head = re.split(r"[;{}]", code[max(0, i - 600):i])[-1]  # since the last statement
            m = re.search(r"(~?[A-Za-z_][\w:]*|operator\s*[^\s(]+)\s*\(", head)
            shaped = re.match(r"^[^(]*\(.*\)\s*(const\s*)?(noexcept\s*)?(override\s*)?"
                              r"(->\s*[\w:<>&*\s]+)?(:\s*[\w:]+\s*[({].*)?\s*$", head, re.S)
            if (m and shaped and m.group(1).split("::")[-1] not in NOT_FUNCTIONS
                    and "=" not in head.split("(")[0]):
                lead = head[:len(head) - len(head.lstrip())]
                stack.append((m.group(1), line - head.count("\n") + lead.count("\n")))
            else:
                stack.append(None)
        elif c == "}" and stack:
            top = stack.pop()
            if top:
                found.append((top[0], top[1], line - top[1] + 1))
    return found


def printf_casts(path):
    """Lines with a static_cast inside the arguments of a printf-style call."""
    code = strip(open(path, encoding="utf-8").read())
    hits = []
    for m in PRINTF_CALLS.finditer(code):
        depth, j = 0, m.end() - 1
        while j < len(code):
            if code[j] == "(":
                depth += 1
            elif code[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        args = code[m.end():j]
        for _ in re.finditer(r"static_cast\s*<", args):
            hits.append(code.count("\n", 0, m.start()) + 1)
    return hits


def chapter_files(root):
    """Each chapter's program and the headers beside it (chapter 1's connect.h)."""
    return sorted(glob.glob(os.path.join(root, "chapters", "*", "chapter*.cpp")) +
                  glob.glob(os.path.join(root, "chapters", "*", "*.h")))


def table(root):
    rows = []
    for path in chapter_files(root):
        fns = functions(path)
        main = [f for f in fns if f[0] == "main"]
        others = [f for f in fns if f[0] != "main"]
        longest = max(others, key=lambda f: f[2]) if others else ("-", 0, 0)
        code = strip(open(path, encoding="utf-8").read())
        rows.append((os.path.basename(path), len(open(path, encoding="utf-8").read().splitlines()),
                     main[0][2] if main else 0, "%s %d" % (longest[0], longest[2]),
                     len(re.findall(r"static_cast\s*<", code)), len(printf_casts(path))))
    return rows


def includes(path):
    return re.findall(r'^#include "([^"]+)"', open(path, encoding="utf-8").read(), re.M)


def check(root):
    problems = []
    for path in chapter_files(root):
        rel = os.path.relpath(path, root)
        for name, start, count in functions(path):
            limit = 40 if name == "main" else 60
            if count > limit:
                problems.append("%s:%d: %s() is %d lines (at most %d)" % (rel, start, name, count, limit))
        for line in printf_casts(path):
            problems.append("%s:%d: a static_cast that feeds printf" % (rel, line))
    for path in glob.glob(os.path.join(root, "chapters", "03_*", "chapter3.cpp")):
        code = strip(open(path, encoding="utf-8").read())
        for word in ("std::mutex", "condition_variable", "std::atomic", "<mutex>", "<atomic>",
                     "<condition_variable>"):
            if word in code:
                problems.append("%s: uses %s" % (os.path.relpath(path, root), word))
        for m in re.finditer(r"^#include <(mutex|atomic|condition_variable)>", open(path).read(), re.M):
            problems.append("%s: includes <%s>" % (os.path.relpath(path, root), m.group(1)))
    sources = [p for p in glob.glob(os.path.join(root, "common", "*.*")) +
               glob.glob(os.path.join(root, "chapters", "*", "*.cpp")) +
               glob.glob(os.path.join(root, "chapters", "*", "lab", "*.cpp"))
               if p.endswith((".cpp", ".h"))]
    for path in sorted(sources):
        base = os.path.basename(path)
        if base.startswith("platform."):
            continue
        for number, text in enumerate(open(path, encoding="utf-8"), 1):
            if re.match(r"\s*#\s*(if|ifdef|ifndef|elif)\b", text) and PLATFORM_MACROS.search(text):
                problems.append("%s:%d: a platform #if outside platform.*: %s"
                                % (os.path.relpath(path, root), number, text.strip()))
    common = {os.path.basename(p): p for p in glob.glob(os.path.join(root, "common", "*.*"))
              if p.endswith((".cpp", ".h"))}
    graph = {name: [i for i in includes(path) if i in common] for name, path in common.items()}
    # A loop among headers, or a .cpp whose includes lead back to a header
    # that includes... itself. Modules: foo.h and foo.cpp are one node.
    def module(name):
        return os.path.splitext(name)[0]
    mgraph = {}
    for name, deps in graph.items():
        mgraph.setdefault(module(name), set()).update(module(d) for d in deps if module(d) != module(name))
    def reach(start):
        seen, todo = set(), list(mgraph.get(start, ()))
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo.extend(mgraph.get(m, ()))
        return seen
    for m in sorted(mgraph):
        if m in reach(m):
            problems.append("common/%s.*: its includes lead back to itself" % m)
    for name, path in sorted(common.items()):
        count = len(open(path, encoding="utf-8").read().splitlines())
        if count > 600:
            problems.append("common/%s: %d lines (at most 600)" % (name, count))
    return problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--list", action="store_true")
    args, _ = parser.parse_known_args()
    if args.table:
        print("| chapter | lines | main | longest function | static_cast | for printf |")
        print("|---|---|---|---|---|---|")
        for row in table(args.root):
            print("| %s | %d | %d | %s | %d | %d |" % row)
        return 0
    problems = check(args.root)
    for p in problems:
        print(p)
    print("shape: %d problem(s)" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
