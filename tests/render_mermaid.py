#!/usr/bin/env python3
"""--mermaid charts through a real renderer: Mermaid (npm `mermaid`, in
tests/render/) parses and draws each one in headless Chromium; a chart it
cannot parse or draw fails.

Cases (`--list`; CTest runs each as render:CASE):
  chapters  every chapter's main run, chapter 4's six endings, chapter 5's
            `mix` over 8 connections and over 12 (lanes past 8 are left out),
            and chapter 1 against a refused port: each run with --mermaid,
            then all rendered in one browser; a request path full of
            Mermaid's markup (<b>, ;, #, &amp;) is drawn as it was sent
  docs      every chart the docs show (docs/diagrams/*.mmd) renders, and its
            picture (the .svg beside it) is there

`render_mermaid.py --write-docs` runs the docs' charts again and writes
docs/diagrams/NAME.mmd and NAME.svg (the SVG as Mermaid drew it).

Needs chromium and `npm ci --prefix tests/render`: without them it skips (exit
77), and under CI=true that is a failure (.ci/run installs both).
"""
import argparse
import glob
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MERMAID = os.path.join("tests", "render", "node_modules", "mermaid", "dist", "mermaid.min.js")

# The docs' charts: name -> (program, arguments). Each is drawn by a README.
DOCS = {
    "chapter1-hello": ("chapter1", []),
    "chapter2-timeout": ("chapter2", []),
    "chapter3-select": ("chapter3", []),
    "chapter4-none": ("chapter4", ["--close", "none"]),
    "chapter4-half": ("chapter4", ["--close", "half", "--scenario", "echo"]),
    "chapter4-rd": ("chapter4", ["--close", "rd", "--scenario", "echo"]),
    "chapter4-rdwr": ("chapter4", ["--close", "rdwr", "--scenario", "echo"]),
    "chapter4-linger0": ("chapter4", ["--close", "linger0", "--scenario", "echo"]),
    "chapter4-unread": ("chapter4", ["--close", "unread", "--scenario", "echo"]),
    "chapter5-mix": ("chapter5", ["--connections", "8", "--scenario", "mix", "--timeout", "1"]),
    "chapter6-edge": ("chapter6", ["--connections", "4", "--scenario", "mix:hello,big:1,silent,reset",
                                   "--timeout", "1", "--edge"]),
}
# A request path of the characters Mermaid would read as markup or syntax:
# the picture must show it as sent.
MARKUP_PATH = "/<b>x</b>;#y&amp;%%z"
RUNS = dict(DOCS)
RUNS.update({
    "chapter5-twelve": ("chapter5", ["--connections", "12", "--scenario", "mix", "--timeout", "1"]),
    "chapter1-reset": ("chapter1", ["--scenario", "reset"]),
    "chapter1-silent": ("chapter1", ["--scenario", "silent", "--timeout", "0.3"]),
    "chapter1-markup": ("chapter1", ["--path", MARKUP_PATH]),
})

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>render</title>
<script src="%s"></script></head><body><pre id="results">pending</pre><div id="work"></div>
<script>
const charts = %s;
(async () => {
  mermaid.initialize({startOnLoad: false, securityLevel: "strict"});
  const results = [];
  for (let i = 0; i < charts.length; i++) {
    try {
      await mermaid.parse(charts[i]);
      const drawn = await mermaid.render("chart" + i, charts[i], document.getElementById("work"));
      results.push({ok: true, svg: drawn.svg});
    } catch (e) {
      results.push({ok: false, error: String(e && e.message || e)});
    }
  }
  document.getElementById("results").textContent = JSON.stringify(results);
})();
</script></body></html>
"""


class Skip(Exception):
    pass


def browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise Skip("chromium is not installed (apt-get install chromium)")


def render(charts):
    """Each chart's SVG, or raises AssertionError naming the charts Mermaid refused."""
    script = os.path.join(ROOT, MERMAID)
    if not os.path.exists(script):
        raise Skip("Mermaid is not installed (npm ci --prefix tests/render)")
    chromium = browser()
    with tempfile.TemporaryDirectory(prefix="render-") as tmp:
        page = os.path.join(tmp, "page.html")
        with open(page, "w") as f:
            f.write(PAGE % ("file://" + script, json.dumps([text for _, text in charts]).replace("</", "<\\/")))
        done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               "--user-data-dir=" + os.path.join(tmp, "profile"), "--allow-file-access-from-files",
                               "--virtual-time-budget=60000", "--dump-dom", "file://" + page],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
    dom = done.stdout.decode(errors="replace")
    start = dom.find('<pre id="results">')
    end = dom.find("</pre>", start)
    if start < 0 or end < 0:
        raise AssertionError("the browser gave no page (exit %d): %s" % (done.returncode, done.stderr.decode()[-500:]))
    text = html.unescape(dom[start + len('<pre id="results">'):end])
    if text == "pending":
        raise AssertionError("Mermaid did not finish within the page's time")
    results = json.loads(text)
    failed = ["%s: %s" % (name, r.get("error")) for (name, _), r in zip(charts, results) if not r["ok"]]
    if failed:
        raise AssertionError("Mermaid could not draw %d of %d charts:\n  %s" % (len(failed), len(charts),
                                                                             "\n  ".join(failed)))
    for (name, _), r in zip(charts, results):
        if "<svg" not in r["svg"]:
            raise AssertionError("%s: Mermaid returned no SVG" % name)
    return [r["svg"] for r in results]


def charts_of_runs(runs, bin_dir, suffix, emulator, tmp):
    charts = []
    for name, (program, args) in runs.items():
        path = os.path.join(tmp, name + ".mmd")
        subprocess.run(emulator + [os.path.join(bin_dir, program + suffix)] + args + ["--quiet", "--mermaid", path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        if not os.path.exists(path):
            raise AssertionError("%s %s wrote no chart" % (program, " ".join(args)))
        text = open(path).read()
        if not text.startswith("sequenceDiagram\n") or "->>" not in text:
            raise AssertionError("%s: not a chart with arrows:\n%s" % (name, text))
        charts.append((name, text))
    return charts


def refused_port():
    """A loopback port nothing listens on: bound, never listened, kept bound."""
    import socket
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    return holder, holder.getsockname()[1]


def case_chapters(bin_dir, suffix, emulator):
    with tempfile.TemporaryDirectory(prefix="charts-") as tmp:
        holder, port = refused_port()
        runs = dict(RUNS)
        runs["chapter1-refused"] = ("chapter1", ["127.0.0.1", str(port), "--timeout", "1"])
        try:
            charts = charts_of_runs(runs, bin_dir, suffix, emulator, tmp)
        finally:
            holder.close()
    twelve = dict(charts)["chapter5-twelve"]
    if "participant C9" in twelve or "participant C8" not in twelve:
        raise AssertionError("chapter 5 over 12 connections should draw lanes 1 to 8:\n" + twelve)
    svgs = dict(zip((name for name, _ in charts), render(charts)))
    drawn = html.unescape(re.sub(r"<[^>]+>", "", svgs["chapter1-markup"]))
    if 'request "GET %s HTTP/1.1"' % MARKUP_PATH not in drawn:
        raise AssertionError("chapter 1 with --path %s: the picture does not show the request as sent; its text:\n%s"
                             % (MARKUP_PATH, drawn[:2000]))
    print("rendered %d charts: %s" % (len(charts), ", ".join(name for name, _ in charts)))


def case_docs():
    charts = []
    for path in sorted(glob.glob(os.path.join(ROOT, "docs", "diagrams", "*.mmd"))):
        name = os.path.basename(path)[:-4]
        if not os.path.exists(path[:-4] + ".svg"):
            raise AssertionError("docs/diagrams/%s.mmd has no picture beside it (render_mermaid.py --write-docs)" % name)
        charts.append((name, open(path).read()))
    missing = sorted(set(DOCS) - {name for name, _ in charts})
    if missing:
        raise AssertionError("docs/diagrams/ lacks %s (render_mermaid.py --write-docs)" % ", ".join(missing))
    render(charts)
    print("rendered the docs' %d charts" % len(charts))


def write_docs(bin_dir):
    with tempfile.TemporaryDirectory(prefix="charts-") as tmp:
        charts = charts_of_runs(DOCS, bin_dir, "", [], tmp)
    svgs = render(charts)
    out = os.path.join(ROOT, "docs", "diagrams")
    os.makedirs(out, exist_ok=True)
    for (name, text), svg in zip(charts, svgs):
        with open(os.path.join(out, name + ".mmd"), "w") as f:
            f.write(text)
        with open(os.path.join(out, name + ".svg"), "w") as f:
            f.write(svg + "\n")
    print("wrote %d charts and pictures in docs/diagrams/" % len(charts))


def main():
    global ROOT
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--root", default=ROOT)
    parser.add_argument("--bin-dir", default=".")
    parser.add_argument("--suffix", default="")
    parser.add_argument("--emulator", default="")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("case", nargs="?")
    options = parser.parse_args()
    ROOT = os.path.abspath(options.root)
    if options.list:
        print("chapters\ndocs")
        return 0
    emulator = [part for part in options.emulator.split(",") if part]
    try:
        if options.write_docs:
            write_docs(options.bin_dir)
        elif options.case == "chapters":
            case_chapters(options.bin_dir, options.suffix, emulator)
        elif options.case == "docs":
            case_docs()
        else:
            parser.error("unknown case %r" % options.case)
    except Skip as why:
        if os.environ.get("CI") == "true":
            print("FAIL render:%s: %s; under CI=true that is a failure" % (options.case, why))
            return 1
        print("skipped: %s" % why)
        return 77
    except AssertionError as failure:
        print("FAIL render:%s: %s" % (options.case, failure))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
