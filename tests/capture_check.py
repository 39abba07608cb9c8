#!/usr/bin/env python3
"""The --diagram's arrows against the wire: each case runs one chapter offline
with --mermaid while tcpdump captures the loopback interface, and asserts that
the chart's arrows (SYN, SYN-ACK, ACK, data, FIN, RST) are the segments the
capture has, from the same side, in the same order, with the same data bytes.
A chart that draws a segment the capture lacks fails; so does one that leaves
out a SYN, FIN, RST or data the capture has: in 3 runs of 3 (where both sides
act at once, one run's wire may take an order no record of the calls can see). Pure ACKs are not drawn, and a
run of data segments from one side is one arrow.

`capture_check.py --list` lists the cases; `capture_check.py CASE` runs one.
Needs Linux, root and tcpdump: without them it skips (exit 77), and under
CI=true that is a failure (.ci/run installs tcpdump).

    python3 tests/capture_check.py --bin-dir build chapter4:linger0
"""
import argparse
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

CASES = {
    "chapter1:hello": ("chapter1", []),
    "chapter1:reset": ("chapter1", ["--scenario", "reset"]),
    "chapter1:close": ("chapter1", ["--scenario", "close"]),
    "chapter1:truncate": ("chapter1", ["--scenario", "truncate:1000"]),
    "chapter4:none": ("chapter4", ["--close", "none"]),
    "chapter4:half": ("chapter4", ["--close", "half", "--scenario", "echo"]),
    "chapter4:rd": ("chapter4", ["--close", "rd", "--scenario", "echo"]),
    "chapter4:rdwr": ("chapter4", ["--close", "rdwr", "--scenario", "echo"]),
    "chapter4:linger0": ("chapter4", ["--close", "linger0", "--scenario", "echo"]),
    "chapter4:unread": ("chapter4", ["--close", "unread", "--scenario", "echo"]),
}

ARROW = re.compile(r"^\s*(C\d*|S)(->>|-x)(C\d*|S): (SYN-ACK|SYN|ACK|FIN|RST|[\d,]+ B)")
PACKET = re.compile(r"^\d+\.\d+ IP6? (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\].*?length (\d+)")


class Skip(Exception):
    pass


class Dropped(Exception):
    """The capture is incomplete: no verdict on the chart; the case runs again."""


def chart_arrows(mermaid):
    """Every order of the arrows a --mermaid file allows: [(side, kind,
    bytes)] lists, side 'client' or 'server', kind SYN, SYN-ACK, ACK, FIN, RST
    or data, one side's data in a row added up. The arrows of a `par` block
    (they crossed on the wire) may come in any order."""
    pieces, group = [], None  # pieces: lists of arrows, one per par block or lone arrow
    for line in mermaid.splitlines():
        if line.strip().startswith("par "):
            group = []
            pieces.append(group)
        elif line.strip() == "end":
            group = None
        m = ARROW.match(line)
        if not m:
            continue
        side = "server" if m.group(1) == "S" else "client"
        label = m.group(4)
        arrow = (side, "data", int(label[:-2].replace(",", ""))) if label.endswith(" B") else (side, label, 0)
        if group is not None:
            group.append(arrow)
        else:
            pieces.append([arrow])
    orders = [[]]
    for piece in pieces:
        orders = [order + list(p) for order in orders for p in itertools.permutations(piece)][:1000]
    out = []
    for order in orders:
        arrows = []
        for side, kind, n in order:
            if kind == "data":
                add_data(arrows, side, n)
            else:
                arrows.append((side, kind, n))
        out.append(arrows)
    return out


def add_data(arrows, side, n):
    if arrows and arrows[-1][:2] == (side, "data"):
        arrows[-1] = (side, "data", arrows[-1][2] + n)
    else:
        arrows.append((side, "data", n))


def wire_arrows(capture, server_port):
    """The same from tcpdump's lines, for the connection to server_port: the
    one whose SYN came first, matched by both ports (another test's
    connection may have server_port as its own client port)."""
    arrows, handshake, client_port = [], "syn", None
    for line in capture.splitlines():
        m = PACKET.match(line)
        if not m:
            continue
        if client_port is None and m.group(4) == server_port and m.group(5) == "S":
            client_port = m.group(2)
        ports = (m.group(2), m.group(4))
        if client_port is None or ports not in ((client_port, server_port), (server_port, client_port)):
            continue
        side = "client" if m.group(4) == server_port else "server"
        flags, length = m.group(5), int(m.group(6))
        if "S" in flags:
            arrows.append((side, "SYN-ACK" if "." in flags else "SYN", 0))
            handshake = "ack" if "." in flags else handshake
            continue
        if handshake == "ack" and side == "client":
            arrows.append(("client", "ACK", 0))  # the first segment after the SYN-ACK acks it
            handshake = "done"
        if length > 0:
            add_data(arrows, side, length)
        if "F" in flags:
            arrows.append((side, "FIN", 0))
        if "R" in flags:
            arrows.append((side, "RST", 0))
    return arrows


def run(case, bin_dir, suffix, emulator):
    if not sys.platform.startswith("linux"):
        raise Skip("tcpdump on Linux only")
    if os.geteuid() != 0:
        raise Skip("capturing needs root")
    tcpdump = shutil.which("tcpdump") or ("/usr/sbin/tcpdump" if os.path.exists("/usr/sbin/tcpdump") else None)
    if not tcpdump:
        raise Skip("tcpdump is not installed (apt-get install tcpdump)")
    program, args = CASES[case]
    with tempfile.TemporaryDirectory(prefix="capture-") as tmp:
        mermaid = os.path.join(tmp, "run.mmd")
        capture = open(os.path.join(tmp, "capture.txt"), "w+")
        errors = open(os.path.join(tmp, "tcpdump.err"), "w+")
        # Headers only (-s 128) and a large buffer (-B, KiB): the loopback
        # carries every other test's traffic too, and what the buffer cannot
        # hold the kernel drops (counted at the end; see run()).
        dump = subprocess.Popen([tcpdump, "-i", "lo", "-nn", "-tt", "-l", "--immediate-mode", "-s", "128",
                                 "-B", "32768", "tcp"], stdout=capture, stderr=errors)
        try:
            end = time.monotonic() + 10
            while "listening on" not in open(errors.name).read():
                if dump.poll() is not None or time.monotonic() > end:
                    raise Skip("tcpdump did not start: " + open(errors.name).read().strip())
                time.sleep(0.02)
            time.sleep(0.2)  # "listening" comes a moment before the first packets are kept
            command = emulator + [os.path.join(bin_dir, program + suffix)] + args + [
                "--quiet", "--timeout", "2", "--mermaid", mermaid]
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, timeout=30)
            time.sleep(0.3)  # the last segments reach the capture
        finally:
            dump.send_signal(signal.SIGINT)
            dump.wait(timeout=10)
        dropped = re.search(r"(\d+) packets? dropped by kernel", open(errors.name).read())
        if dropped and int(dropped.group(1)) > 0:
            raise Dropped("tcpdump lost %s packets (the loopback was busy)" % dropped.group(1))
        chart = open(mermaid).read()
        port = re.search(r"participant S as server \(built-in, [\d.]+:(\d+)\)", chart)
        if not port:
            raise AssertionError("no built-in server in the chart:\n" + chart)
        capture.seek(0)
        wire = wire_arrows(capture.read(), port.group(1))
    orders = chart_arrows(chart)
    drawn = wire if wire in orders else orders[0]
    if drawn != wire:
        raise AssertionError(
            "the chart's arrows differ from the capture's segments (exit %d, stderr %r)\n"
            "  drawn:    %s\n  captured: %s\nchart:\n%s" % (done.returncode, done.stderr.decode(errors="replace")[-300:],
                                                     show(drawn), show(wire), chart))
    print("%s: %d arrows, as captured%s: %s" % (case, len(drawn), " (in one of %d orders the chart allows)" % len(orders)
                                                if len(orders) > 1 else "", show(drawn)))


def show(arrows):
    return ", ".join("%s %s%s" % (side, kind, " %d" % n if kind == "data" else "") for side, kind, n in arrows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--bin-dir", default=".")
    parser.add_argument("--suffix", default="")
    parser.add_argument("--emulator", default="")
    parser.add_argument("case", nargs="?")
    options = parser.parse_args()
    if options.list:
        print("\n".join(CASES))
        return 0
    emulator = [part for part in options.emulator.split(",") if part]
    try:
        # A lost capture gives no verdict, and neither does one run's mismatch:
        # where both sides act at once (chapter 4's rd and rdwr endings), the
        # kernel may take a segment after a call that returned before it was
        # sent, an order no record of the calls can see. A chart that is wrong
        # every time fails: 3 runs of 3.
        for attempt in range(1, 4):
            try:
                run(options.case, options.bin_dir, options.suffix, emulator)
                break
            except (Dropped, AssertionError) as why:
                if attempt == 3:
                    raise AssertionError("in 3 runs of 3: %s" % why)
                print("run %d: %s\nagain" % (attempt, why))
    except Skip as why:
        if os.environ.get("CI") == "true":
            print("FAIL capture:%s: %s; under CI=true that is a failure" % (options.case, why))
            return 1
        print("skipped: %s" % why)
        return 77
    except AssertionError as failure:
        print("FAIL capture:%s: %s" % (options.case, failure))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
