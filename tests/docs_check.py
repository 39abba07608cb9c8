#!/usr/bin/env python3
"""The docs' commands, run: what README.md, chapters/*/README.md, the lab
sheets (chapters/*/lab/*.md, docs/labs/*.md) and docs/*.md show a student
must be what the student sees.

Three kinds of shown output are checked, from a fresh build:

1. A ```text block whose lines start with "$ command": the command runs, and
   its output (stdout and stderr, as a terminal shows them) must match the
   lines shown, in order. A line "..." stands for any number of lines; within
   a line, "..." stands for any text (a count that varies from run to run:
   "stdout differs: ... bytes"). A line is first compared as it is, so a
   line with a real "..." in it ("check 3 of 11: ... ok") still matches
   itself exactly.
2. In a ```sh block, a line "# => text" right after a command: the command's
   output must contain that text.
3. A table with an "exit" column: each row whose first cell is a command
   runs, and must end with that exit status; in the row's other cells, any
   `chapterN: ...` error line must be the command's last line on stderr.

What varies from run to run is normalised on both sides before comparing:
ports, times in seconds ("0.003 s"), and descriptor numbers in --trace
lines. A wait's timeout in a --trace line ("poll(4, POLLIN, 500 ms)") is
the time left until a deadline the program set a moment before; a busy
machine can pause the program in between, so a printed timeout up to 10 ms
below the shown one matches it (never one above it). Commands that cannot
run offline or alone are not run: those naming PORT, HOST or a real host,
needing a second terminal, or watching `top`.

With --slack S, a command that runs the grader (tests/labcheck.py) runs it
with --slack S: its time bounds get S seconds more, the extra time a
sanitizer build's slower programs get in the e2e and lab tests
(tests/CMakeLists.txt). What it prints is the same.

CTest runs one case per file (docs:README.md, ...). `--list` lists them.
Exit: 0 pass, 1 fail, 77 skip.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = None
NOT_RUN = re.compile(r"\bPORT\b|\bHOST\b|example\.org|\btop\b|another terminal|ss -tan|nstat|strace|"
                     r"/usr/bin/time|\bwhile\b|\bapt-get\b|make test|cmake|\bctest\b|tests/bench|"
                     r"WINE|wine|x86_64-w64|\bgit\b|\$\(")


def doc_files():
    files = ["README.md"] + sorted(glob.glob(os.path.join(ROOT, "chapters", "*", "README.md")))
    files += sorted(glob.glob(os.path.join(ROOT, "chapters", "*", "lab", "*.md")))
    files += sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    files += sorted(glob.glob(os.path.join(ROOT, "docs", "labs", "*.md")))
    return [os.path.relpath(os.path.join(ROOT, f), ROOT) if not os.path.isabs(f) else os.path.relpath(f, ROOT)
            for f in files]


def normalise(text):
    text = re.sub(r"(127\.0\.0\.1|\[::1\]|localhost):\d+", r"\1:PORT", text)
    text = re.sub(r"\bport \d+", "port PORT", text)
    text = re.sub(r'"\d{4,5}"', '"PORT"', text)
    text = re.sub(r"\b\d+\.\d+ s\b", "T s", text)
    # A descriptor number in a --trace line: "recv(4, ...", "socket(...) = 4".
    text = re.sub(r"^(\s*\w+)\(\d+(,|\))", r"\1(FD\2", text, flags=re.M)
    text = re.sub(r"^(\s*socket\(.*\) = )\d+$", r"\1FD", text, flags=re.M)
    return text


def runnable(command):
    return not NOT_RUN.search(command)


SLACK = 0.0  # --slack: seconds more on the grader's time bounds


def prepare(command):
    """Strip the build step ("make chapter1 && "): the programs are built.
    A run of the grader alone gets --slack (see the top of this file)."""
    command = re.sub(r"^make [\w ]+&&\s*", "", command.strip())
    if SLACK and re.fullmatch(r"python3 tests/labcheck\.py [^|;&<>]*", command):
        command += " --slack %g" % SLACK
    return command


class Workspace:
    """A folder that looks like the repository root after `make all`:
    the built programs, and the source folders the commands read."""

    def __init__(self, bin_dir):
        self.dir = tempfile.mkdtemp(prefix="docs-check-")
        # The chapters, the lab starters, and the typical mistakes the
        # teacher's guide grades (tests/labcheck.py, MISTAKES).
        programs = [p for pattern in ("chapter*", "lab[0-9]*", "mistake-*")
                    for p in glob.glob(os.path.join(bin_dir, pattern))]
        for program in programs + [os.path.join(bin_dir, "labserver")]:
            if os.path.isfile(program) and os.access(program, os.X_OK):
                os.symlink(os.path.abspath(program), os.path.join(self.dir, os.path.basename(program)))
        for folder in ("chapters", "common", "tests", "docs"):
            os.symlink(os.path.join(ROOT, folder), os.path.join(self.dir, folder))

    def run(self, command, timeout=30):
        env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        try:
            done = subprocess.run(["bash", "-o", "pipefail", "-c", prepare(command)], cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return done

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def blocks(text):
    """(language, first line number, lines) for each fenced block."""
    found, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        match = re.match(r"^\s*```(\w*)\s*$", lines[i])
        if match:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            found.append((match.group(1), start + 1, body))
        i += 1
    return found


def check_text_block(ws, line_number, body, problems):
    if not body or not body[0].lstrip().startswith("$ "):
        return 0
    indent = len(body[0]) - len(body[0].lstrip())
    body = [l[indent:] if l[:indent].strip() == "" else l for l in body]
    commands, current = [], None
    for line in body:
        if line.startswith("$ "):
            current = (line[2:], [])
            commands.append(current)
        elif current:
            current[1].append(line)
    ran = 0
    for command, shown in commands:
        if not runnable(command):
            continue
        done = ws.run(command)
        ran += 1
        if done is None:
            problems.append("line %d: `%s` still running after 30 s" % (line_number, command))
            continue
        seen = normalise((done.stdout + done.stderr).decode(errors="replace")).splitlines()
        seen = [l.replace("\r", "") for l in seen]
        if not matches([normalise(l) for l in shown], seen):
            problems.append("line %d: `%s` shows:\n    %s\n  but printed:\n    %s" % (
                line_number, command, "\n    ".join(shown), "\n    ".join(seen[:60])))
    return ran


WAIT_TIMEOUT = re.compile(r"\b(\d+) ms\)")  # the last argument of poll(...) or select(...)


def same_line(shown, seen):
    """Does one printed line match one shown line (both normalised)? As it
    is; or with "..." inside the shown line standing for any text; or with
    each wait's timeout ("500 ms)") at most 10 ms below the shown one."""
    shown, seen = shown.strip(), seen.strip()
    if shown == seen:
        return True
    if "..." in shown:
        pattern = ".*".join(re.escape(part) for part in shown.split("..."))
        if re.fullmatch(pattern, seen):
            return True
    shown_waits = [int(ms) for ms in WAIT_TIMEOUT.findall(shown)]
    seen_waits = [int(ms) for ms in WAIT_TIMEOUT.findall(seen)]
    return (bool(shown_waits) and len(shown_waits) == len(seen_waits)
            and WAIT_TIMEOUT.sub("MS)", shown) == WAIT_TIMEOUT.sub("MS)", seen)
            and all(0 <= a - b <= 10 for a, b in zip(shown_waits, seen_waits)))


def matches(shown, seen):
    """Every shown line in order, each matching a printed line; "..." skips any
    number. The lab server's "[server]" lines come from its own thread, so
    where they fall among the client's lines varies: they must be there, in
    any position."""
    server = lambda line: line.strip().startswith("[server]")
    unmatched = [l for l in seen if server(l)]
    for line in (l for l in shown if server(l)):
        found = [s for s in unmatched if same_line(line, s)]
        if not found:
            return False
        unmatched.remove(found[0])
    if unmatched and not any(l.strip() == "..." for l in shown):
        return False  # a server line printed that is not shown, and nothing is left out
    shown = [l for l in shown if not server(l)]
    seen = [l for l in seen if not server(l)]
    at = 0
    skipping = False
    for line in shown:
        if line.strip() == "...":
            skipping = True
            continue
        if skipping:
            while at < len(seen) and not same_line(line, seen[at]):
                at += 1
        if at >= len(seen) or not same_line(line, seen[at]):
            return False
        at += 1
        skipping = False
    return True


def check_sh_block(ws, line_number, body, problems):
    """A "# => text" line: the command above it (back to the previous comment
    line or the start of the block; it may span lines) must print `text`."""
    indent = min((len(l) - len(l.lstrip()) for l in body if l.strip()), default=0)
    body = [l[indent:] for l in body]
    ran, start = 0, 0
    for i, line in enumerate(body):
        if line.startswith("#"):
            if line.startswith("# => ") and i > start:
                command = "\n".join(body[start:i]).strip()
                if runnable(command):
                    ran += 1
                    expected = normalise(line[len("# => "):].strip())
                    done = ws.run(command)
                    output = normalise((done.stdout + done.stderr).decode(errors="replace")) if done else ""
                    if done is None or expected not in output:
                        problems.append("line %d: `%s` should print `%s`, printed:\n    %s" % (
                            line_number + i, command, expected, output.strip()[-800:].replace("\n", "\n    ")))
            start = i + 1
    return ran


def check_tables(ws, text, problems):
    ran = 0
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or "exit" not in [c.lower() for c in cells]:
            continue
        exit_column = [c.lower() for c in cells].index("exit")
        for row in lines[i + 2:]:
            if not row.startswith("|"):
                break
            row_cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]
            if len(row_cells) <= exit_column:
                continue
            command = re.match(r"^`([^`]+)`", row_cells[0])
            status = row_cells[exit_column]
            if not command or not status.isdigit() or not runnable(command.group(1)):
                continue
            command = command.group(1).replace("\\|", "|")
            if not re.match(r"^(\./|python3 )", command):
                continue
            done = ws.run(command)
            ran += 1
            if done is None:
                problems.append("`%s` still running after 30 s" % command)
                continue
            stderr = done.stderr.decode(errors="replace").replace("\r", "")
            if done.returncode != int(status):
                problems.append("`%s` exited %d; the table says %s\n    %s" % (
                    command, done.returncode, status, stderr.strip()[-600:].replace("\n", "\n    ")))
                continue
            last = [l for l in stderr.splitlines() if l.strip()]
            last = normalise(last[-1]) if last else ""
            for shown in re.findall(r"`(chapter\d: [^`]+)`", " ".join(row_cells[1:])):
                shown = normalise(shown)
                if shown.endswith("...") and last.startswith(shown[:-3]):
                    continue
                if shown != last:
                    problems.append("`%s`: the table shows `%s`; the last line on stderr is `%s`" % (command, shown, last))
    return ran


def check_file(ws, path):
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    problems, ran = [], 0
    for language, line_number, body in blocks(text):
        if language == "text":
            ran += check_text_block(ws, line_number, body, problems)
        elif language in ("sh", "bash", ""):
            ran += check_sh_block(ws, line_number, body, problems)
    ran += check_tables(ws, text, problems)
    return ran, problems


def main():
    global ROOT, SLACK
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--bin-dir", default=".")
    parser.add_argument("--suffix", default="")  # the programs' file suffix (".exe")
    parser.add_argument("--emulator", default="")
    parser.add_argument("--slack", type=float, default=0.0)  # see the top of this file
    parser.add_argument("--list", action="store_true")
    parser.add_argument("file", nargs="?")
    options = parser.parse_args()
    ROOT = os.path.abspath(options.root)
    SLACK = options.slack
    if options.list:
        print("\n".join(doc_files()))
        return 0
    if options.emulator:
        print("SKIP docs:%s: the docs show the Linux build's output" % options.file)
        return 77
    ws = Workspace(options.bin_dir)
    try:
        ran, problems = check_file(ws, options.file)
    finally:
        ws.close()
    if problems:
        print("FAIL docs:%s: %d of the shown outputs differ from what the programs print:\n%s"
              % (options.file, len(problems), "\n".join("- " + p for p in problems)))
        return 1
    print("PASS docs:%s: %d commands run, their shown output matches" % (options.file, ran))
    return 0


if __name__ == "__main__":
    sys.exit(main())
