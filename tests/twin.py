#!/usr/bin/env python3
"""Chapter 3's command line for its Python twin, so that chapter 3's tests
can run chapters/03_select/select_client.py in chapter 3's place.

    twin.py --labserver PATH [--addresses NAME=ADDR,...] [chapter 3's options] [HOST [PORT]]

What it adds to select_client.py, and nothing more:
  - no HOST: it starts the standalone lab server (PATH, with --scenario)
    on 127.0.0.1, where chapter 3 starts its built-in one, points the
    program at it, and stops it at the end;
  - the error line starts "chapter3: ", as chapter 3's does;
  - chapter 3's options that the Python program does not have (--trace,
    --max-time, --buffer-size, --diagram, --mermaid) are usage errors (exit 2);
  - --addresses NAME=ADDR,ADDR gives NAME those addresses, in that order,
    without asking the resolver (as curl's --resolve does): how a test puts
    ::1 before 127.0.0.1 for localhost where /etc/hosts does not.
The program runs in this process (imported, not started), so the CPU it
spends is this process's: chapter3:waits-without-spinning measures it.

The build writes BUILD/chapter3-twin, a shell script that runs this with the
interpreter the tests use and the lab server beside it (tests/CMakeLists.txt):

    build/chapter3-twin --scenario slow:1
    python3 tests/labcheck.py --lab 3 --program build/chapter3-twin

Standard library only; runs under `python -S`. POSIX only, as the tests that use it.
"""
import argparse
import os
import re
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "chapters", "03_select"))
import select_client  # noqa: E402 (after the path)

NAME = "chapter3"
# Chapter 3's options that the tutorial's program, and so its twin, does not have.
NOT_IN_THE_TWIN = ["--trace", "--max-time", "--buffer-size", "--diagram", "--mermaid"]


def start_labserver(labserver, scenario, quiet):
    """The standalone lab server on 127.0.0.1 with `scenario`, for one
    connection; returns (process, port), or exits 2 as chapter 3 does on a
    scenario it does not know."""
    server = subprocess.Popen([labserver, "--quiet", "--count", "1", "--scenario", scenario],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = server.stdout.readline().decode(errors="replace").strip()
    listening = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)", first)
    if not listening:
        server.kill()
        said = (server.stderr.read().decode(errors="replace").strip().splitlines() or [first])[0]
        server.wait()
        print("%s: the lab server did not start: %s" % (NAME, select_client.terminal_safe(said)),
              file=sys.stderr)
        sys.exit(2)
    if not quiet:
        print("* no HOST given: started %s on 127.0.0.1:%s (scenario %s), where chapter 3 starts its "
              "built-in lab server" % (labserver, listening.group(1), scenario), file=sys.stderr, flush=True)
    return server, listening.group(1)


def resolve_as(name, literals):
    """Make socket.getaddrinfo(NAME, ...) return the addresses of the given
    literals, in their order; every other name is resolved as before."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if os.fsdecode(host) != name:
            return real_getaddrinfo(host, port, *args, **kwargs)
        return [found for literal in literals for found in real_getaddrinfo(literal, port, *args, **kwargs)]

    socket.getaddrinfo = getaddrinfo


def main(argv):
    parser = argparse.ArgumentParser(prog=NAME, add_help=False, allow_abbrev=False)
    parser.add_argument("--labserver", required=True, help="the standalone lab server program")
    parser.add_argument("--addresses", action="append", default=[], metavar="NAME=ADDR,...")
    parser.add_argument("--scenario")
    parser.add_argument("--path")
    parser.add_argument("--timeout")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--busy-wait", action="store_true")
    parser.add_argument("--help", action="store_true")
    parser.add_argument("host", nargs="?")
    parser.add_argument("port", nargs="?")
    options, unknown = parser.parse_known_args(argv)
    for arg in unknown:
        option = arg.split("=", 1)[0]
        if option in NOT_IN_THE_TWIN:
            parser.error("%s is chapter 3's own option: the Python program has none" % option)
        parser.error("unknown argument '%s'" % arg)
    if options.scenario is not None and options.host is not None:
        parser.error("--scenario is for the built-in lab server: not with HOST")
    for given in options.addresses:
        name, _, literals = given.partition("=")
        resolve_as(name, literals.split(","))

    args = ["--path", options.path] if options.path is not None else []
    args += ["--timeout", options.timeout] if options.timeout is not None else []
    args += ["--quiet"] if options.quiet else []
    args += ["--busy-wait"] if options.busy_wait else []
    if options.help:
        return select_client.main(["--help"], NAME)
    if options.host is not None:
        return select_client.main(args + [options.host] + ([options.port] if options.port else []), NAME)
    server, port = start_labserver(options.labserver, options.scenario or "hello", options.quiet)
    try:
        return select_client.main(args + ["127.0.0.1", port], NAME)
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
