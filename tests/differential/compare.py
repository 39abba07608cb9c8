#!/usr/bin/env python3
"""The differential check: our response reader against two reference parsers.

1. generate.py writes a few thousand raw responses (CATEGORY--NNN files).
2. Four judges say what each one is (complete, truncated, malformed, ...):
     ours            response_verdict (common/response.h), fed whole and
                     byte by byte (--bytewise: the verdicts must match)
     llhttp          Node.js's HTTP client, strict, as Node runs by default
     llhttp-lenient  the same with insecureHTTPParser: true
     cpython         CPython's http.client
   And one judge that must agree with ours on every response:
     twin            the Python twin of chapter 3's reader (ResponseReader in
                     chapters/03_select/select_client.py), fed whole and in
                     pieces of 1 to 13 bytes (--split: the verdicts must match)
   It must give the same verdict, the same body length and the same words
   (the reader's message, or how the response ended); no table excuses it.
3. Every response where a reference judge says something else than ours is a
   disagreement. Its category must have a row in the table of
   docs/http-framing.md, whose cell for that judge says what the judge does
   instead; a cell that starts with "same" says the judge agrees with us on
   the whole category. And the table must stay true: a cell that describes a
   difference no response shows any more, or a row for a category that is
   not generated, fails the check too.

Exit: 0 pass, 1 fail, 77 skip (no Node.js, once the twin has agreed; with
CI=true a missing Node.js is a failure).
Standard library only; runs under `python -S`.
"""
import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join("docs", "http-framing.md")

# The reference judges, and the column of the table that speaks for each.
REFERENCES = [
    ("llhttp", "llhttp strict"),
    ("llhttp-lenient", "llhttp lenient"),
    ("cpython", "CPython"),
]
EXAMPLES = 3  # shown for each undocumented disagreement


class Failed(Exception):
    pass


def category_of(name):
    return name.rsplit("--", 1)[0]


def escaped(data, limit=240):
    """The bytes as a Python bytes literal shows them, shortened in the middle."""
    if len(data) > limit:
        return escaped(data[:limit - 60], limit) + " ... " + escaped(data[-60:], limit) + (
            " (%d bytes)" % len(data))
    return repr(bytes(data))[2:-1]


# --- running the judges ------------------------------------------------------

def run_judges(commands, work):
    """Run every judge at once (two cores, and most of the time is Node's),
    each writing to JUDGE.txt in `work`, where a reader can look at them."""
    running = {}
    for judge, (command, cwd) in commands.items():
        out = open(os.path.join(work, judge + ".txt"), "w")
        err = open(os.path.join(work, judge + ".err"), "w")
        running[judge] = (subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err), out, err)
    for judge, (process, out, err) in running.items():
        process.wait()
        out.close()
        err.close()
        if process.returncode != 0:
            with open(err.name) as f:
                raise Failed("%s exited with %d:\n%s" % (judge, process.returncode, f.read().strip()))


def verdicts(judge, work, names):
    """{name: (verdict, body length, detail)} from a judge's output lines:
    NAME VERDICT BODYLEN [DETAIL], where ours puts " | why" as its detail."""
    found = {}
    with open(os.path.join(work, judge + ".txt")) as f:
        for line in f.read().splitlines():
            line, _, why = line.partition(" | ")
            fields = line.split()
            if len(fields) < 3:
                raise Failed("%s printed a line that is not NAME VERDICT BODYLEN: %r" % (judge, line))
            detail = why or (fields[3] if len(fields) > 3 else "-")
            found[fields[0]] = (fields[1], fields[2], detail)
    missing = sorted(set(names) - set(found))
    if missing:
        raise Failed("%s said nothing of %d responses, e.g. %s" % (judge, len(missing), missing[0]))
    return found


def same(ours, theirs):
    """A verdict agrees when it is the same word and, for complete, the same
    body length."""
    return ours[0] == theirs[0] and (ours[0] != "complete" or ours[1] == theirs[1])


def shown(verdict):
    text = verdict[0] + (" " + verdict[1] if verdict[0] == "complete" else "")
    return text + (" (%s)" % verdict[2] if verdict[2] != "-" else "")


# --- the table in docs/http-framing.md ---------------------------------------

def cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def documented(root):
    """{category: {judge: cell}} from every table whose header has a
    "category" column (the doc groups them by subject)."""
    path = os.path.join(root, DOC)
    if not os.path.exists(path):
        raise Failed("%s is missing: it explains each deliberate disagreement" % DOC)
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    rows = {}
    column = None  # the current table's column numbers, by lower-case title
    for number, line in enumerate(lines, 1):
        if not line.startswith("|"):
            column = None
            continue
        row = cells(line)
        if column is None:  # a table's header line
            titles = [cell.lower() for cell in row]
            if "category" not in titles:
                column = {}  # some other table: skip it
                continue
            column = {title: index for index, title in enumerate(titles)}
            for _, title in REFERENCES:
                if title.lower() not in column:
                    raise Failed("%s:%d: the table has no '%s' column" % (DOC, number, title))
            continue
        if not column or set(line) <= set("|-: "):
            continue  # another table's row, or the |---| line
        if len(row) != len(column):
            raise Failed("%s:%d: %d cells, the header has %d" % (DOC, number, len(row), len(column)))
        name = row[column["category"]].strip("`")
        if name in rows:
            raise Failed("%s:%d: category %s has a row already" % (DOC, number, name))
        rows[name] = {judge: row[column[title.lower()]] for judge, title in REFERENCES}
    if not rows:
        raise Failed("%s has no table with a 'category' column" % DOC)
    return rows


def says_same(cell):
    return cell.lower().startswith("same")


# --- the check -----------------------------------------------------------------

def node_command():
    node = shutil.which("node") or shutil.which("nodejs")
    if node:
        return node
    if os.environ.get("CI") == "true":
        raise Failed("node (Node.js) is not installed, and under CI=true that is a failure")
    return None  # the check is skipped, after the twin's part (check())


def versions(node):
    script = "console.log('Node.js ' + process.version + ' (llhttp ' + process.versions.llhttp + ')')"
    node_version = subprocess.run([node, "-e", script], stdout=subprocess.PIPE,
                                  universal_newlines=True).stdout.strip()
    return "%s, CPython %s" % (node_version, platform.python_version())


def generate(work):
    """The responses, written by generate.py: {file name: bytes}."""
    responses = os.path.join(work, "responses")
    os.makedirs(responses, exist_ok=True)
    subprocess.run([sys.executable, "-S", os.path.join(HERE, "generate.py"), responses], check=True)
    data = {}
    for name in sorted(os.listdir(responses)):
        with open(os.path.join(responses, name), "rb") as f:
            data[name] = f.read()
    return responses, data


def judge_commands(args, node, responses):
    """judge -> (command, folder to run it in)."""
    emulator = [part for part in args.emulator.split(",") if part]
    llhttp = os.path.join(HERE, "llhttp_verdict.js")
    return {
        # In the folder, so that a reader under Wine is given a relative path.
        "ours": (emulator + [os.path.abspath(args.reader), "--bytewise", "--why", "."], responses),
        "llhttp": ([node, llhttp, responses], None),
        "llhttp-lenient": ([node, llhttp, "--lenient", responses], None),
        "cpython": ([sys.executable, "-S", os.path.join(HERE, "cpython_verdict.py"), responses], None),
        "twin": ([sys.executable, "-S", os.path.join(HERE, "twin_verdict.py"), "--split", responses], None),
    }


def disagreements(names, said):
    """{(category, judge): [names]}: where a reference judge and ours differ."""
    found = {}
    for name in names:
        for judge, _ in REFERENCES:
            if not same(said["ours"][name], said[judge][name]):
                found.setdefault((category_of(name), judge), []).append(name)
    return found


def twin_differences(names, said, data):
    """A problem for each response where the Python twin's reader says
    another verdict, body length or message than ours: it has no table."""
    differ = [name for name in names if said["twin"][name] != said["ours"][name]]
    problems = []
    for name in differ[:EXAMPLES * 3]:
        problems.append("%s: the Python twin (select_client.py) and ours disagree\n    bytes: %s\n"
                        "    ours: %s\n    twin: %s"
                        % (name, escaped(data[name]), shown(said["ours"][name]), shown(said["twin"][name])))
    if len(differ) > EXAMPLES * 3:
        problems.append("... and %d more responses where the twin and ours disagree" % (len(differ) - EXAMPLES * 3))
    return problems


def undocumented(disagree, table, names, said, data):
    """A problem for each (category, judge) that disagrees where the table
    does not say so, with a few examples: the bytes and both verdicts."""
    problems = []
    for (category, judge), where in sorted(disagree.items()):
        row = table.get(category)
        if row is not None and not says_same(row[judge]):
            continue
        count = sum(category_of(name) == category for name in names)
        lines = ["%s: %d of %d responses: ours and %s disagree, and %s does not say so%s"
                 % (category, len(where), count, judge, DOC,
                    "" if row else " (no row for this category)")]
        for name in where[:EXAMPLES]:
            lines.append("  %s\n    bytes: %s\n    ours: %s\n    %s: %s"
                         % (name, escaped(data[name]), shown(said["ours"][name]), judge,
                            shown(said[judge][name])))
        problems.append("\n".join(lines))
    return problems


def stale(disagree, table, names):
    """A problem for each row or cell of the table that is no longer true."""
    problems = []
    categories = set(category_of(name) for name in names)
    for category, row in sorted(table.items()):
        if category not in categories:
            problems.append("%s lists category %s, which generate.py does not make" % (DOC, category))
            continue
        for judge, title in REFERENCES:
            if not says_same(row[judge]) and (category, judge) not in disagree:
                problems.append("%s: %s's '%s' cell describes a disagreement, but %s now agrees "
                                "with ours on every response: the cell should say 'same'"
                                % (DOC, category, title, judge))
        if all(says_same(row[judge]) for judge, _ in REFERENCES):
            problems.append("%s: the row for %s says every judge agrees: it is no disagreement"
                            % (DOC, category))
    return problems


def check_twin_only(args, work, responses, data, names):
    """Without Node.js: the Python twin against ours still, then skip."""
    commands = judge_commands(args, "node", responses)
    run_judges({judge: commands[judge] for judge in ("ours", "twin")}, work)
    said = {judge: verdicts(judge, work, names) for judge in ("ours", "twin")}
    problems = twin_differences(names, said, data)
    for problem in problems:
        print("FAIL " + problem)
    if problems:
        return 1
    print("SKIP: node (Node.js) is not installed: no llhttp to compare with "
          "(the Python twin agrees with ours on all %d responses)" % len(names))
    return 77


def check(args):
    node = node_command()
    work = args.work_dir or tempfile.mkdtemp(prefix="differential-")
    os.makedirs(work, exist_ok=True)
    responses, data = generate(work)
    names = sorted(data)
    if node is None:
        return check_twin_only(args, work, responses, data, names)
    run_judges(judge_commands(args, node, responses), work)
    said = {judge: verdicts(judge, work, names) for judge in ["ours", "twin"] + [j for j, _ in REFERENCES]}
    table = documented(args.root)

    problems = []
    # Verdicts our reader must never give, whatever the others say.
    for name in names:
        if said["ours"][name][0] not in ("complete", "truncated", "malformed", "too-long", "empty"):
            problems.append("%s: our reader said %s\n    bytes: %s"
                            % (name, shown(said["ours"][name]), escaped(data[name])))
    problems += twin_differences(names, said, data)
    disagree = disagreements(names, said)
    problems += undocumented(disagree, table, names, said, data)
    problems += stale(disagree, table, names)

    # A response is a documented disagreement when a judge differs from ours
    # on it and the table explains every judge that does.
    def agrees(name, judge):
        return same(said["ours"][name], said[judge][name])

    def explained(name, judge):
        row = table.get(category_of(name))
        return agrees(name, judge) or (row is not None and not says_same(row[judge]))

    documented_names = [name for name in names
                        if not all(agrees(name, judge) for judge, _ in REFERENCES)
                        and all(explained(name, judge) for judge, _ in REFERENCES)]
    agreeing = {judge: sum(agrees(name, judge) for name in names) for judge, _ in REFERENCES}
    print("judges: %s" % versions(node))
    print("verdicts in %s; lenient llhttp (insecureHTTPParser) agrees on %d"
          % (work, agreeing["llhttp-lenient"]))
    for problem in problems:
        print("FAIL " + problem)
    print("differential: %d responses, %d agree with llhttp, %d with CPython, "
          "%d documented disagreements in %d categories; the Python twin agrees on %d"
          % (len(names), agreeing["llhttp"], agreeing["cpython"], len(documented_names),
             len(set(category_of(name) for name in documented_names)),
             sum(said["twin"][name] == said["ours"][name] for name in names)))
    return 1 if problems else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(HERE)),
                        help="the repository (for %s)" % DOC)
    parser.add_argument("--reader", required=True, help="the response_verdict program")
    parser.add_argument("--emulator", default="", help="runs the reader (Wine), comma-separated")
    parser.add_argument("--work-dir", help="where the responses go (default: a new temp folder)")
    args = parser.parse_args()
    try:
        return check(args)
    except Failed as failure:
        print("FAIL %s" % failure)
        return 1


if __name__ == "__main__":
    sys.exit(main())
