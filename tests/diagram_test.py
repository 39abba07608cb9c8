#!/usr/bin/env python3
"""--diagram and --mermaid, run: what the charts draw for the runs the
chapters teach with. Each case runs a chapter offline (or against a lab server
given as HOST) and asserts the arrows and notes of its chart.

`diagram_test.py --list` lists the cases; `diagram_test.py CASE` runs one.
Exit: 0 pass, 1 fail, 77 skip. What reaches the wire is checked against a
capture by tests/capture_check.py; that Mermaid draws the charts, by
tests/render_mermaid.py.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile

ARROW_TEXT = re.compile(r"(<|x)?[-=]+ (SYN-ACK|SYN|ACK|FIN|RST|[\d,]+ B(?: \(\d+ sends\))?) [-=]+(>|x)?")
ARROW_MERMAID = re.compile(r"^\s*(C\d*|S)(->>|-x)(C\d*|S): (SYN-ACK|SYN|ACK|FIN|RST|[\d,]+ B(?: \(\d+ sends\))?)")

CONTEXT = {}


def run(program, args, timeout=30):
    """(exit status, stderr text, Mermaid text) of one run with --diagram --mermaid."""
    with tempfile.TemporaryDirectory(prefix="diagram-") as tmp:
        chart = os.path.join(tmp, "run.mmd")
        command = CONTEXT["emulator"] + [os.path.join(CONTEXT["bin_dir"], program + CONTEXT["suffix"])] + args + [
            "--quiet", "--diagram", "--mermaid", chart]
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=timeout)
        text = open(chart).read() if os.path.exists(chart) else ""
    return done.returncode, done.stderr.decode(errors="replace").replace("\r\n", "\n"), text


def mermaid_arrows(text):
    """[(sender, label)]: sender 'client' or 'server'."""
    out = []
    for line in text.splitlines():
        m = ARROW_MERMAID.match(line)
        if m:
            out.append(("server" if m.group(1) == "S" else "client", m.group(4)))
    return out


def text_arrows(stderr):
    out = []
    for line in stderr.splitlines():
        m = ARROW_TEXT.search(line)
        if m:
            out.append(("server" if m.group(1) else "client", m.group(2)))
    return out


def expect(condition, message, stderr="", chart=""):
    if not condition:
        raise AssertionError(message + ("\n--diagram:\n" + stderr if stderr else "") +
                             ("\n--mermaid:\n" + chart if chart else ""))


def index(arrows, arrow, after=-1):
    for i in range(after + 1, len(arrows)):
        if arrows[i] == arrow:
            return i
    return -1


def case_linger0():
    """./chapter4 --close linger0: the client's RST, and the server's view of it."""
    status, stderr, chart = run("chapter4", ["--close", "linger0"])
    arrows = mermaid_arrows(chart)
    expect(status == 0, "exit %d" % status, stderr)
    expect(("client", "RST") in arrows and ("client", "FIN") not in arrows,
           "expected an RST from the client and no FIN from it: %s" % arrows, stderr, chart)
    expect(re.search(r"C-xS: RST \([\d.]+ s, close, SO_LINGER \{1, 0\}\)", chart), "the RST is not close's", stderr, chart)
    # Wine's closesocket does not abort for SO_LINGER {1, 0}: the server reads a
    # FIN there (the lab's linger-off check is blind under Wine for the same
    # reason), while the chart draws what Winsock documents. Linux only, then.
    if not CONTEXT["emulator"]:
        expect(re.search(r"Note right of S: [\d.]+ s recv = -1 \w*ECONNRESET", chart),
               "the server's recv failing with ECONNRESET is not drawn", stderr, chart)
    expect("no TIME_WAIT on either side" in stderr, "a reset leaves no TIME_WAIT: not said", stderr)
    expect(re.search(r"close, SO_LINGER .*-+ RST -+x", stderr), "the text chart has no client RST arrow", stderr)


def case_half_echo():
    """./chapter4 --close half --scenario echo: our FIN, the echo still arriving, then theirs."""
    status, stderr, chart = run("chapter4", ["--close", "half", "--scenario", "echo"])
    arrows = mermaid_arrows(chart)
    expect(status == 0, "exit %d" % status, stderr)
    ours, echo, theirs = index(arrows, ("client", "FIN")), index(arrows, ("server", "60 B")), index(arrows, ("server", "FIN"))
    expect(ours >= 0 and echo >= 0 and theirs > ours and theirs > echo,
           "expected our FIN, the 60-byte echo, then the server's FIN: %s" % arrows, stderr, chart)
    expect(("client", "RST") not in arrows and ("server", "RST") not in arrows, "no RST here: %s" % arrows, stderr)
    expect("client in TIME_WAIT (its FIN went first)" in stderr, "our FIN went first: TIME_WAIT is ours", stderr)


def case_hello():
    """./chapter1: the handshake, the request, the response, both FINs; TIME_WAIT
    is drawn on the side whose FIN went first.

    Which FIN goes first is a race: the server shuts its side right after its
    send, while chapter 1 closes as soon as Content-Length says the answer is
    whole, without waiting for that FIN. The server usually wins; on a loaded
    machine (a sanitizer build, Wine) the client can, or the two calls overlap."""
    status, stderr, chart = run("chapter1", [])
    arrows = mermaid_arrows(chart)
    expect(status == 0, "exit %d" % status, stderr)
    head = [("client", "SYN"), ("server", "SYN-ACK"), ("client", "ACK"), ("client", "60 B"), ("server", "127 B")]
    expect(arrows[:5] == head and sorted(arrows[5:]) == [("client", "FIN"), ("server", "FIN")],
           "expected SYN, SYN-ACK, ACK, 60 B, 127 B, then a FIN from each side: %s" % arrows, stderr, chart)
    first = arrows[5][0]
    expect("%s in TIME_WAIT (its FIN went first)" % first in stderr or "the FINs crossed" in stderr,
           "the %s's FIN is drawn first: the TIME_WAIT is the %s's" % (first, first), stderr)


def case_big_is_a_few_lines():
    """A 16 MiB download is one arrow of 16 MiB and one recv count, not thousands of lines."""
    status, stderr, chart = run("chapter1", ["--scenario", "big:16"])
    expect(status == 0, "exit %d" % status, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    expect(len(lines) < 25, "%d lines for one download" % len(lines), stderr)
    expect(("server", "16,777,306 B") in [(s, l.split(" (")[0]) for s, l in mermaid_arrows(chart)],
           "no single 16 MiB arrow (16,777,306 bytes with the head)", stderr, chart)
    # Its recvs are counted in a note or two (the server's FIN arrow may fall
    # between them: it comes while bytes still wait to be read).
    notes = [int(n.replace(",", "")) for n in re.findall(r"recv(?: x\d+)?:\s+([\d,]+)\s+B", stderr)]
    expect(sum(notes) == 16777306 and len(notes) <= 3, "the recvs are not summed up: %s" % notes, stderr)


def case_timeout_wait():
    """A wait that ran out is drawn (silent server, --timeout 0.3)."""
    status, stderr, chart = run("chapter1", ["--scenario", "silent", "--timeout", "0.3"])
    expect(status == 1, "exit %d, expected 1" % status, stderr)
    expect(re.search(r"recv = -1\s+(EAGAIN|EWOULDBLOCK|WSAETIMEDOUT)", stderr), "the recv that timed out is not drawn", stderr)
    expect(re.search(r"error: recv: no data for 0\.3 s", stderr), "the error is not drawn", stderr)


def case_fits_80_columns():
    """Every chapter's chart fits 80 columns."""
    runs = [("chapter1", []), ("chapter2", []), ("chapter3", []), ("chapter4", ["--close", "rdwr", "--scenario", "echo"]),
            ("chapter5", ["--connections", "8", "--scenario", "mix", "--timeout", "1"])]
    for program, args in runs:
        _, stderr, _ = run(program, args)
        start = stderr.find("--diagram:")
        expect(start >= 0, "%s drew no chart" % program, stderr)
        wide = [line for line in stderr[start:].splitlines() if len(line) > 80]
        expect(not wide, "%s: %d lines over 80 columns, e.g. %r" % (program, len(wide), wide[:1]), stderr)


def case_text_matches_mermaid():
    """The text chart and the Mermaid file draw the same arrows in the same order."""
    for program, args in [("chapter1", ["--scenario", "reset"]), ("chapter4", ["--close", "unread", "--scenario", "echo"]),
                          ("chapter3", [])]:
        _, stderr, chart = run(program, args)
        expect(text_arrows(stderr) == mermaid_arrows(chart),
               "%s %s: text %s, Mermaid %s" % (program, args, text_arrows(stderr), mermaid_arrows(chart)), stderr, chart)


def case_lanes():
    """Chapter 5: one lane per connection up to 8; beyond that, a line says which are left out."""
    _, stderr, chart = run("chapter5", ["--connections", "12", "--scenario", "mix", "--timeout", "1"])
    expect("participant C8 as connection 8" in chart and "participant C9" not in chart,
           "expected lanes 1 to 8 in the Mermaid file", chart=chart)
    expect(re.search(r"^   time  conn 1 .* conn 8$", stderr, re.M), "no header of 8 lanes", stderr)
    expect("connections 9 to 12 are not drawn" in stderr, "the connections left out are not said", stderr)
    expect(re.search(r"C5-xS|S-xC5", chart), "mix's 5th connection (reset) has no RST", chart=chart)


def case_host_lane():
    """With HOST, the server lane is what the client learned: the response
    (chapter 1 stops at its Content-Length, before any FIN)."""
    labserver = subprocess.Popen(CONTEXT["emulator"] + [os.path.join(CONTEXT["bin_dir"], "labserver" + CONTEXT["suffix"]),
                                                        "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        first = labserver.stdout.readline().decode()
        port = re.search(r"listening on [\d.]+:(\d+)", first).group(1)
        status, stderr, chart = run("chapter1", ["127.0.0.1", port])
    finally:
        labserver.kill()
        labserver.wait()
    expect(status == 0, "exit %d" % status, stderr)
    expect("participant S as server (as the client saw it)" in chart, "the lane is not labelled", chart=chart)
    expect(mermaid_arrows(chart)[4:] == [("server", "127 B"), ("client", "FIN")],
           "expected the response and the FIN the client saw: %s" % mermaid_arrows(chart), stderr, chart)
    expect("accept" not in chart, "a server note the client could not know", chart=chart)


def case_refused():
    """A refused connect: our SYN, the kernel's RST."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))  # bound, never listening: connect is refused
    try:
        status, stderr, chart = run("chapter1", ["127.0.0.1", str(holder.getsockname()[1])])
    finally:
        holder.close()
    expect(status == 1, "exit %d" % status, stderr)
    expect(mermaid_arrows(chart)[:2] == [("client", "SYN"), ("server", "RST")],
           "expected SYN then RST: %s" % mermaid_arrows(chart), stderr, chart)


def case_mermaid_unwritable():
    """--mermaid into a folder that does not exist: exit 2 at once, one line and the usage."""
    done = subprocess.run(CONTEXT["emulator"] + [os.path.join(CONTEXT["bin_dir"], "chapter1" + CONTEXT["suffix"]),
                                                 "--mermaid", os.path.join(tempfile.gettempdir(), "no-such-dir", "x.mmd")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    err = done.stderr.decode(errors="replace")
    expect(done.returncode == 2 and done.stdout == b"", "exit %d, stdout %r" % (done.returncode, done.stdout[:80]))
    expect(err.splitlines()[0].startswith("chapter1: --mermaid") and "usage:" in err, "no error line: %r" % err[:200])


def case_usage_error_writes_no_file():
    """A usage error after --mermaid FILE (an unknown option) leaves no FILE
    behind, and an existing FILE untouched: FILE is written at the end of a
    run, never at parse time."""
    with tempfile.TemporaryDirectory(prefix="diagram-") as tmp:
        fresh, kept = os.path.join(tmp, "fresh.mmd"), os.path.join(tmp, "kept.mmd")
        with open(kept, "w") as f:
            f.write("keep me\n")
        for target in (fresh, kept):
            done = subprocess.run(CONTEXT["emulator"] + [os.path.join(CONTEXT["bin_dir"], "chapter1" + CONTEXT["suffix"]),
                                                         "--mermaid", target, "--no-such-option"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            expect(done.returncode == 2, "exit %d" % done.returncode)
        expect(not os.path.exists(fresh), "a usage error created %s" % fresh)
        expect(open(kept).read() == "keep me\n", "a usage error emptied an existing file")


CASES = {name[len("case_"):].replace("_", "-"): f for name, f in sorted(globals().items()) if name.startswith("case_")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--root", default=".")
    parser.add_argument("--bin-dir", default=".")
    parser.add_argument("--suffix", default="")
    parser.add_argument("--emulator", default="")
    parser.add_argument("case", nargs="?")
    options = parser.parse_args()
    if options.list:
        print("\n".join(CASES))
        return 0
    CONTEXT.update(bin_dir=options.bin_dir, suffix=options.suffix,
                   emulator=[part for part in options.emulator.split(",") if part])
    try:
        CASES[options.case]()
    except AssertionError as failure:
        print("FAIL diagram:%s: %s" % (options.case, failure))
        return 1
    print("diagram:%s: ok" % options.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
