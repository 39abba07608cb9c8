#!/usr/bin/env python3
"""The tutorial's non-blocking client, corrected, in Python.

The same shape as the tutorial's program: a socket thread, a connect with a
timeout, setblocking(False), a select() loop. Every fix of chapter3.cpp is
applied, each marked FIX below:

    python3 select_client.py [--path PATH] [--timeout SECONDS] [--busy-wait] HOST PORT

It sends "GET PATH HTTP/1.1" and writes exactly the bytes received to stdout;
narration and errors go to stderr. Exit status: 0 when the whole response
arrived, 1 on a network failure (the line names the call), 2 on a usage error.
Standard library only. Try it against the lab server:

    make labserver && ./labserver --scenario slow:2     # prints: listening on 127.0.0.1:PORT
    python3 chapters/03_select/select_client.py 127.0.0.1 PORT
"""
import argparse
import errno
import os
import select
import socket
import sys
import threading
import time

BUFFER_SIZE = 65536  # FIX: not "a power of 4" (4096 is one anyway); a size chapter 3 measured


def say(text):
    print("* " + text, file=sys.stderr, flush=True)


class NetworkError(Exception):
    """A call that failed: 'connect 127.0.0.1:9: Connection refused'."""


def call(name, function, *args):
    """function(*args), with a failure named after the call (FIX: the tutorial's
    bare except: hides why a call failed). BlockingIOError is not a failure."""
    try:
        return function(*args)
    except BlockingIOError:
        raise
    except (OSError, UnicodeError) as error:  # UnicodeError: a name the IDNA codec refuses
        raise NetworkError("%s: %s" % (name, getattr(error, "strerror", None) or error)) from None


def write_stdout(data):
    """Every byte received, to stdout as it arrives, with no buffer in between."""
    while data:
        data = data[call("write stdout", os.write, 1, data):]


class ResponseEnd:
    """Where an HTTP/1.1 response ends (common/response.h does the same in C++):
    at its Content-Length, at its last chunk, or, with neither, at the server's
    FIN. Bytes are fed as they arrive; only the current header or chunk-size
    line is kept."""

    def __init__(self):
        self.line = b""         # the header or chunk-size line being collected
        self.state = "start"    # start, head, length, chunk-size, chunk-data, chunk-end, trailers, eof, done
        self.length = None
        self.chunked = False
        self.left = 0
        self.body = 0

    def feed(self, data):
        at = 0
        while at < len(data):
            if self.state == "done":
                raise NetworkError("response too long: %d more bytes after its end" % (len(data) - at))
            if self.state in ("length", "chunk-data"):
                n = min(self.left, len(data) - at)
                at, self.left, self.body = at + n, self.left - n, self.body + n
                if self.left == 0:
                    self.state = "chunk-end" if self.state == "chunk-data" else "done"
                continue
            if self.state == "eof":
                self.body += len(data) - at
                return
            newline = data.find(b"\n", at)
            self.line += data[at:] if newline < 0 else data[at:newline + 1]
            at = len(data) if newline < 0 else newline + 1
            if self.state == "start" and not b"HTTP/".startswith(self.line[:5]):
                self.state, self.body, self.line = "eof", len(self.line), b""  # no status line: HTTP/0.9
                continue
            if len(self.line) > 65536:
                raise NetworkError("response malformed: a line over 65536 bytes")
            if newline >= 0:
                line, self.line = self.line.strip(b"\r\n"), b""
                self.take_line(line)

    def take_line(self, line):
        if self.state == "start":
            self.state = "head"  # the status line
        elif self.state == "head" and line:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                if not value.isdigit():
                    raise NetworkError("response malformed: Content-Length %r" % value.decode(errors="replace"))
                self.length = int(value)
            elif name == b"transfer-encoding":
                self.chunked = value.lower().split(b",")[-1].strip() == b"chunked"
        elif self.state == "head":  # the empty line: the body starts
            if self.chunked:
                self.state = "chunk-size"
            elif self.length is not None:
                self.state, self.left = ("length", self.length) if self.length else ("done", 0)
            else:
                self.state = "eof"
        elif self.state == "chunk-size":
            try:
                self.left = int(line.split(b";")[0], 16)
            except ValueError:
                raise NetworkError("response malformed: chunk size %r" % line.decode(errors="replace"))
            self.state = "chunk-data" if self.left else "trailers"
        elif self.state == "chunk-end":
            if line:
                raise NetworkError("response malformed: a chunk longer than its size")
            self.state = "chunk-size"
        elif self.state == "trailers" and not line:
            self.state = "done"

    def complete(self):
        return self.state == "done"

    def at_eof(self):
        """The server's FIN: fine only where the response ends at it."""
        if self.state == "eof":
            self.state = "done"
        elif self.state == "length":
            raise NetworkError("response truncated: %d of %d body bytes (the server closed early)"
                               % (self.body, self.length))
        elif self.state != "done":
            raise NetworkError("response truncated: the server closed before the end (%s)" % self.state)


class SocketThread(threading.Thread):
    """The tutorial's tcpSocketThreadClassNonBlocking: the socket work, on its own thread."""

    def __init__(self, host, port, path, timeout, busy_wait):
        super().__init__()
        self.host, self.port, self.path = host, port, path
        self.timeout, self.busy_wait = timeout, busy_wait
        self.error = None  # FIX: how the fetch ended is kept for the main thread
        self.received = 0

    def run(self):
        try:
            self.fetch()
        except NetworkError as error:
            self.error = error
        except Exception as error:  # a bug: keep it for main's exit status, and show it
            self.error = error
            raise

    def wait(self, sock, for_writing):
        """FIX: select() with the time left until a deadline, so the thread sleeps
        in the kernel until the socket is ready; the tutorial's select(..., 0)
        returns at once and spins a core. (--busy-wait does that, to compare.)
        Over a 2 s wait this program spends a few hundredths of a CPU second,
        start-up included; with --busy-wait, most of the wait
        [claim:python-select-client-sleeps-while-waiting]."""
        deadline = time.monotonic() + self.timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            wanted = ([], [sock]) if for_writing else ([sock], [])
            # FIX: select's third list is for exceptional conditions (out-of-band
            # data, and on Windows a failed connect), not "sockets that have errors".
            ready = select.select(wanted[0], wanted[1], [sock], 0 if self.busy_wait else left)
            if any(ready):
                return
            if time.monotonic() >= deadline:
                raise NetworkError("%s: no answer for %g s" % ("send" if for_writing else "recv", self.timeout))

    def fetch(self):
        # FIX: getaddrinfo gives IPv4 and IPv6 addresses; settimeout() does not
        # bound this step (it is not a socket call), and neither does anything here.
        addresses = call("getaddrinfo " + self.host, socket.getaddrinfo, self.host, self.port, 0, socket.SOCK_STREAM)
        family, kind, proto, _, address = addresses[0]
        with socket.socket(family, kind, proto) as sock:
            # FIX: a non-blocking connect does help: it is how a connect gets a
            # time limit. connect_ex returns EINPROGRESS at once; we wait for the
            # socket to become writable, and SO_ERROR says how the connect ended.
            sock.setblocking(False)  # settimeout(0) is the same; settimeout(None) is blocking
            where = "%s:%d" % (address[0], address[1])
            err = sock.connect_ex(address)
            if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                raise NetworkError("connect %s: %s" % (where, os.strerror(err)))  # FIX: no bare except
            self.wait(sock, for_writing=True)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise NetworkError("connect %s: %s" % (where, os.strerror(err)))
            say("connected to " + where)

            # FIX: "GET /\n" is an HTTP/0.9 request; this one gets a status line and headers.
            host = "[%s]" % self.host if ":" in self.host else self.host
            host += "" if self.port == 80 else ":%d" % self.port
            request = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (self.path, host)).encode()
            # FIX: sendall() on a non-blocking socket can raise BlockingIOError half
            # way; send what fits, and wait for writability before the rest.
            sent = 0
            while sent < len(request):
                try:
                    sent += call("send", sock.send, request[sent:])
                except BlockingIOError:
                    self.wait(sock, for_writing=True)

            # FIX: one recv(4096) is not the response: read until it is complete.
            response = ResponseEnd()
            while not response.complete():
                try:
                    data = call("recv", sock.recv, BUFFER_SIZE)
                except BlockingIOError:  # FIX: nothing yet; wait, do not fall through to len(None)
                    self.wait(sock, for_writing=False)
                    continue
                if not data:
                    response.at_eof()
                    break
                # FIX: the bytes as they are (no decode: a response need not be UTF-8).
                write_stdout(data)
                self.received += len(data)
                response.feed(data)
            say("the response is complete: %d bytes" % self.received)
            # FIX: SHUT_WR, not SHUT_RD: our FIN, after the whole response.
            call("shutdown", sock.shutdown, socket.SHUT_WR)
        say("closed the socket")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--path", default="/")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--busy-wait", action="store_true", help="wait like the tutorial: select(..., 0) in a loop")
    options = parser.parse_args()
    if not 0 < options.timeout <= 86400 or not 0 < options.port < 65536:
        parser.error("--timeout must be above 0, PORT from 1 to 65535")

    worker = SocketThread(options.host, options.port, options.path, options.timeout, options.busy_wait)
    worker.start()
    # The main thread is free meanwhile ("like updating the UI").
    while worker.is_alive():
        worker.join(1.0)  # FIX: wait for the socket thread and learn how it ended
        if worker.is_alive():
            say("main thread: %d bytes so far" % worker.received)
    if worker.error:
        print("select_client.py: %s" % worker.error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
