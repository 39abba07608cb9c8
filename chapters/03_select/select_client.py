#!/usr/bin/env python3
"""The tutorial's non-blocking client, corrected, in Python.

The tutorial's steps, in its order: a socket thread; settimeout(5) and
connect(); setblocking(False); send; a select() loop; recv; shutdown and
close. Where the tutorial is right, the step is kept and its comment says
"Tutorial: ... - kept"; where it is wrong, the step is changed and marked
FIX, with the reason. chapter3.cpp is the same program built from the
system calls up; the tests run both on the same cases and require the same
bytes on stdout, the same exit status and the same error line.

    python3 select_client.py [--path PATH] [--timeout SECONDS] [--quiet] [--busy-wait] HOST [PORT]

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


def terminal_safe(text):
    """The text with every byte that is not printable ASCII shown as \\xNN:
    what came from the network or the command line cannot drive the terminal."""
    data = text.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if 0x20 <= b < 0x7f else "\\x%02x" % b for b in data)


def printable(data, most=60):
    """Received bytes, quoted in a message: b'a\\rb' -> 'a\\x0db' (at most 60 shown)."""
    shown = "".join(chr(b) if 0x20 <= b < 0x7f and b != 0x5C else "\\x%02x" % b for b in data[:most])
    return shown + ("..." if len(data) > most else "")


def say(options, text):
    """Narration, on stderr (stdout is for the received bytes only)."""
    if not options.quiet:
        print("* " + terminal_safe(text), file=sys.stderr, flush=True)


class Failure(Exception):
    """What failed, and why, in one line:
    'connect 127.0.0.1:9: Connection refused (ECONNREFUSED)'."""

    def __init__(self, call, reason):
        super().__init__("%s: %s" % (call, reason))


def error_text(error):
    """'Connection refused (ECONNREFUSED)': the system's words and the errno name."""
    if error.errno is None:
        return str(error)
    return "%s (%s)" % (os.strerror(error.errno), errno.errorcode.get(error.errno, "E%d" % error.errno))


def call(name, function, *args):
    """function(*args); a failure is raised as a Failure named after the call
    (FIX: the tutorial's bare except: hides why a call failed).
    BlockingIOError is no failure: the caller waits, then calls again."""
    try:
        return function(*args)
    except BlockingIOError:
        raise
    except socket.gaierror as error:  # the resolver's own words: gai_strerror()
        raise Failure(name, error.strerror) from None
    except OSError as error:
        raise Failure(name, error_text(error)) from None


def write_stdout(data):
    """Every byte received, to stdout as it arrives, with no buffer in between."""
    while data:
        data = data[call("write stdout", os.write, 1, data):]


def address_text(family, address):
    """'127.0.0.1:80', '[::1]:80'."""
    return ("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % address[:2]


# --- where the response ends --------------------------------------------------

HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
TOKEN_BYTES = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def is_status_line(line):
    """b"HTTP/1.1 200 OK" or b"HTTP/1.1 200": HTTP/1.DIGIT, SP, three digits
    (the first 1 to 9), then SP and a reason, or nothing."""
    return (len(line) >= 12 and line.startswith(b"HTTP/1.") and line[7:8].isdigit()
            and line[8:9] == b" " and b"1" <= line[9:10] <= b"9" and line[10:12].isdigit()
            and (len(line) == 12 or line[12:13] == b" "))


def decimal(text):
    """b"1234" -> 1234; None for anything but decimal digits, or for more than
    18 of them after the leading zeros (a length that would not fit)."""
    if not text.isdigit() or len(text.lstrip(b"0")) > 18:
        return None
    return int(text)


class ResponseReader:
    """Where an HTTP/1.1 response ends, as the bytes stream past: at its
    Content-Length, at its last chunk, or (with neither, or no status line at
    all) at the server's FIN. Only the current line is kept, never the body.

    This is common/response.h's chapter::ResponseReader, rule for rule and
    message for message: read the rules there and in docs/http-framing.md
    (with the RFC section behind each). tests/differential/ checks that the
    two readers agree on every one of a few thousand responses.

        response = ResponseReader()
        response.take(data)   # each piece recv returned, in order
        response.complete()   # the whole response is here: stop reading
        response.at_eof()     # recv returned 0: fine only if it ends there
    A response that cannot be right raises a Failure."""

    HEAD_LIMIT = 64 * 1024        # status line and fields (and the trailers)
    CHUNK_LINE_LIMIT = 8 * 1024   # a chunk-size line, its extensions included
    CHUNK_SIZE_DIGITS = 15        # significant hex digits: up to 2^60 - 1 bytes

    def __init__(self):
        # start, head, body (Content-Length bytes to go), chunk-size,
        # chunk-data, chunk-end (its CRLF), trailers, until-eof, done
        self.state = "start"
        self.ending = None         # length, chunks, eof, no-status-line, no-body
        self.line = b""            # the line being collected
        self.field = b""           # the last field line, judged when the next shows it is not folded
        self.status_line = b""
        self.status = 0
        self.interim_responses = 0  # 1xx heads before the final one
        self.last_interim_status = 0
        self.head_bytes = 0
        self.codings = None        # Transfer-Encoding, every line's: b"gzip, chunked"
        self.length = None         # Content-Length
        self.left = 0              # bytes still to come in the body or chunk
        self.chunks = 0
        self.bytes_taken = 0
        self.body_bytes = 0

    def complete(self):
        return self.state == "done"

    def malformed(self, what):
        raise Failure("response malformed", what)

    def take(self, data):
        """The next bytes received, in order."""
        at = 0
        while at < len(data):
            if self.state == "done":
                extra = len(data) - at
                raise Failure("response too long", "%d more byte%s after the end of the response (%s)"
                              % (extra, "" if extra == 1 else "s", self.how_it_ended()))
            if self.state == "start":
                at = self.take_start(data, at)
            elif self.state in ("body", "chunk-data"):
                n = min(self.left, len(data) - at)
                at, self.left = at + n, self.left - n
                self.bytes_taken += n
                self.body_bytes += n
                if self.left == 0:
                    self.state = "chunk-end" if self.state == "chunk-data" else "done"
            elif self.state == "until-eof":
                self.bytes_taken += len(data) - at
                self.body_bytes += len(data) - at
                at = len(data)
            else:
                at = self.take_line(data, at)

    def take_start(self, data, at):
        """A response starts with "HTTP/"; anything else is an answer with no
        status line (HTTP/0.9), all body up to the FIN. Decided at the first
        byte that differs, or after five."""
        self.line += data[at:at + 1]
        self.bytes_taken += 1
        if not b"HTTP/".startswith(self.line):
            if self.interim_responses:
                self.malformed("after a %d interim response, bytes that are not a status line: '%s'"
                               % (self.last_interim_status, printable(self.line)))
            self.state, self.ending = "until-eof", "no-status-line"
            self.body_bytes += len(self.line)
            self.line = b""
        elif len(self.line) == 5:
            self.state, self.head_bytes = "head", 5
        return at + 1

    def take_line(self, data, at):
        """Collect a line, up to its LF (CRLF, or a bare LF); when it is
        whole, act on it. Returns where the bytes taken end."""
        newline = data.find(b"\n", at)
        end = len(data) if newline < 0 else newline + 1
        self.bytes_taken += end - at
        chunk_line = self.state in ("chunk-size", "chunk-end")
        if not chunk_line:
            self.head_bytes += end - at
            if self.head_bytes > self.HEAD_LIMIT:
                self.malformed("status line and headers over %d bytes" % self.HEAD_LIMIT)
        line = self.line + data[at:end if newline < 0 else newline]
        # One byte over the limit is still room for the CR of CRLF.
        if chunk_line and len(line) > self.CHUNK_LINE_LIMIT + 1:
            self.malformed("a chunk-size line over %d bytes: %s" % (self.CHUNK_LINE_LIMIT, printable(line)))
        if newline < 0:
            self.line = line
            return end
        self.line = b""
        if line.endswith(b"\r"):
            line = line[:-1]
        if b"\r" in line:
            self.malformed("a CR inside a line, not before its LF: '%s'" % printable(line))
        if b"\0" in line:
            self.malformed("a NUL byte in a line: '%s'" % printable(line))
        if chunk_line and len(line) > self.CHUNK_LINE_LIMIT:
            self.malformed("a chunk-size line over %d bytes: %s" % (self.CHUNK_LINE_LIMIT, printable(line)))
        self.take_whole_line(line)
        return end

    def take_whole_line(self, line):
        if self.state == "trailers":
            if not line:
                self.state = "done"  # trailer fields are skipped unread
        elif self.state == "chunk-size":
            self.chunk_size_line(line)
        elif self.state == "chunk-end":
            if line:
                self.malformed("chunk %d is longer than its size line said" % self.chunks)
            self.state = "chunk-size"
        elif self.status == 0:
            self.take_status_line(line)
        elif not line:
            self.field_line(self.field)
            self.end_of_head()
        elif line[:1] in (b" ", b"\t"):  # obs-fold: the previous field goes on
            if not self.field:
                self.malformed("whitespace before the first header line (RFC 9112, 2.2)")
            self.field += b" " + line.strip(b" \t")
        else:
            self.field_line(self.field)
            self.field = line

    def take_status_line(self, line):
        if not is_status_line(line):
            self.malformed("status line '%s'" % printable(line))
        self.status = int(line[9:12])
        if self.status == 101:  # we never ask for an upgrade
            self.malformed("101 Switching Protocols, but the request asked for no upgrade")
        self.status_line = line

    def field_line(self, line):
        """b"Name: value"; only the two that frame the body are read."""
        if not line:
            return  # no field pending
        name, colon, value = line.partition(b":")
        if not colon or not name:
            self.malformed("header line '%s'" % printable(line))
        for byte in name:
            if byte in b" \t":
                self.malformed("whitespace before the colon in header line '%s'" % printable(line))
            if byte not in TOKEN_BYTES:
                self.malformed("header name in '%s' is not a token" % printable(line))
        name, value = name.lower(), value.strip(b" \t")
        if name == b"content-length":
            length = decimal(value)
            if length is None:
                self.malformed("Content-Length '%s' is not a number of bytes" % printable(value))
            if self.length is not None and length != self.length:
                self.malformed("two different Content-Length headers")
            self.length = length
        elif name == b"transfer-encoding":  # several lines are one list
            self.codings = (self.codings + b", " if self.codings else b"") + value.lower()

    def end_of_head(self):
        if 100 <= self.status < 200:
            # An interim response (100 Continue, 103 Early Hints): the real
            # one follows, and nothing of this head applies to it.
            self.interim_responses += 1
            self.last_interim_status = self.status
            self.status, self.length, self.codings = 0, None, None
            self.field, self.head_bytes, self.state = b"", 0, "start"
        elif self.status in (204, 304):
            self.state, self.ending = "done", "no-body"
        elif self.codings is not None:
            # Transfer-Encoding overrides Content-Length; its last coding decides.
            chunked = self.codings.rsplit(b",", 1)[-1].strip(b" \t") == b"chunked"
            self.state, self.ending = ("chunk-size", "chunks") if chunked else ("until-eof", "eof")
        elif self.length is not None:
            self.left, self.ending = self.length, "length"
            self.state = "body" if self.length else "done"
        else:
            self.state, self.ending = "until-eof", "eof"

    def chunk_size_line(self, line):
        """b"1a2f" or b"1a2f;name=value": the next chunk's size in hex digits
        only (FIX: int(size, 16) also takes "-5", "0x5" and "1_0")."""
        digits = 0
        while digits < len(line) and line[digits] in HEX_DIGITS:
            digits += 1
        if len(line[:digits].lstrip(b"0")) > self.CHUNK_SIZE_DIGITS:
            self.malformed("chunk size '%s' is too large" % printable(line))
        rest = line[digits:].strip(b" \t")
        if digits == 0 or rest[:1] not in (b"", b";"):
            self.malformed("chunk size line '%s' is not a hex number" % printable(line))
        size = int(line[:digits], 16)
        if size == 0:
            self.state, self.head_bytes = "trailers", 0
        else:
            self.chunks += 1
            self.state, self.left = "chunk-data", size

    def at_eof(self, why="the server closed early"):
        """The server closed the connection (recv returned 0)."""
        if self.state in ("until-eof", "done"):
            self.state = "done"
            return
        if self.state == "start" and self.bytes_taken == 0:
            raise Failure("recv", "the server closed the connection without answering")
        if self.state in ("start", "head"):
            raise Failure("response truncated", "the server closed after %d bytes, before the end of "
                          "the headers (%s)" % (self.bytes_taken, why))
        if self.state == "body":
            raise Failure("response truncated", "%d of %d body bytes (%s)"
                          % (self.body_bytes, self.length, why))
        if self.state == "trailers":
            raise Failure("response truncated", "%d body bytes in %d chunks and the last chunk, but the "
                          "trailer section did not end (%s)" % (self.body_bytes, self.chunks, why))
        raise Failure("response truncated", "%d body bytes in %d chunks, and no last chunk (%s)"
                      % (self.body_bytes, self.chunks, why))

    def how_it_ended(self):
        body = "%d body bytes" % self.body_bytes
        both = ("; it also had a Content-Length, which Transfer-Encoding overrides (RFC 9112, 6.3)"
                if self.length is not None and self.codings is not None else "")
        if self.ending == "length":
            return "the response ended at its Content-Length: " + body
        if self.ending == "chunks":
            return "the response ended with its last chunk: %s in %d chunks%s" % (body, self.chunks, both)
        if self.ending == "eof" and self.codings is not None:
            return ("the response ended at the server's FIN (Transfer-Encoding '%s' does not end in "
                    "chunked): %s%s" % (printable(self.codings), body, both))
        if self.ending == "eof":
            return "the response ended at the server's FIN (no Content-Length, not chunked): " + body
        if self.ending == "no-status-line":
            return ("the answer had no status line (HTTP/0.9 style) and ended at the server's FIN: "
                    "%d bytes" % self.body_bytes)
        if self.ending == "no-body":
            return "the response has no body (status %d)" % self.status
        return "the response is not complete: %d bytes so far" % self.bytes_taken


# --- the socket thread -------------------------------------------------------

def http_request(options):
    host = "[%s]" % options.host if ":" in options.host else options.host
    host += "" if options.port == 80 else ":%d" % options.port
    text = "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (options.path, host)
    return text.encode("utf-8", "surrogateescape")


class SocketThread(threading.Thread):
    """Tutorial: class tcpSocketThreadClassNonBlocking(threading.Thread) - kept:
    the socket work, on its own thread."""

    def __init__(self, options):
        super().__init__()
        self.options = options
        self.failure = None  # FIX: how the fetch ended, kept for the main thread
        self.received = 0
        self.spins = 0       # --busy-wait: select() calls while waiting

    def run(self):
        try:
            self.fetch()
        except Failure as failure:
            self.failure = failure
        except Exception as error:  # a bug: keep it for main's exit status, and show it
            self.failure = error
            raise

    def fetch(self):
        with self.connect() as sock:
            # Tutorial: tcpSock.setblocking(0) once connected - kept. From
            # here on send and recv never wait: select does the waiting.
            sock.setblocking(False)
            self.send_request(sock)
            self.receive_response(sock)
            # FIX: SHUT_WR, not SHUT_RD: our FIN, after the whole response
            # (SHUT_RD only stops our own receives and tells the server nothing).
            call("shutdown", sock.shutdown, socket.SHUT_WR)
        say(self.options, "shut down and closed the socket")

    def connect(self):
        """Tutorial: settimeout(5), then connect() - kept, for each address in
        turn. Its comments are what was wrong, not its calls:

        - They call settimeout(1) non-blocking and settimeout(0) blocking:
          settimeout(0) is non-blocking, settimeout(None) blocking, and
          settimeout(1) a third mode, "timeout mode", which makes the socket
          non-blocking underneath, not blocking
          [claim:python-settimeout-modes]. So the setblocking(1) before it
          changes nothing, and is left out here.
        - "A non-blocking connect does not help": it is what settimeout(5)
          does underneath, and why the connect is bounded. CPython makes the
          socket non-blocking, connect() returns EINPROGRESS, it waits in
          poll() with the timeout in ms, then reads SO_ERROR to learn how the
          connect ended [claim:python-connect-timeout-polls]: chapter 3's
          connect_within_timeout, done for us. When the poll times out,
          connect() raises socket.timeout [claim:python-connect-timeout-expires].
        """
        options = self.options
        # FIX: the tutorial's socket is AF_INET (IPv4 only), and it calls
        # connect() once. getaddrinfo gives every address, IPv6 and IPv4;
        # each is tried in turn until one connects (localhost can be ::1 and
        # then 127.0.0.1). The name's bytes go to getaddrinfo as typed, as in
        # chapter 3. settimeout() does not bound this step (it is no socket call).
        say(options, "resolving %s port %d" % (options.host, options.port))
        failure = Failure("connect " + options.host, "no address to try")
        addresses = call("getaddrinfo %s port %d" % (options.host, options.port), socket.getaddrinfo,
                         os.fsencode(options.host), options.port, 0, socket.SOCK_STREAM)
        for family, kind, protocol, _, address in addresses:
            where = address_text(family, address)
            sock = call("socket", socket.socket, family, kind, protocol)
            sock.settimeout(options.timeout)
            say(options, "trying " + where)
            try:
                sock.connect(address)
            except socket.timeout:
                failure = Failure("connect " + where, "no answer within %g s" % options.timeout)
            except OSError as error:  # FIX: no bare except: the reason is said
                failure = Failure("connect " + where, error_text(error))
            else:
                say(options, "connected to " + where)
                return sock
            sock.close()
            say(options, str(failure))
        raise failure

    def send_request(self, sock):
        # FIX: "GET /\n" is an HTTP/0.9 request; this one gets a status line and headers.
        request = http_request(self.options)
        # FIX: sendall() on a non-blocking socket can raise BlockingIOError half
        # way; send what fits, and wait for writability before the rest.
        sent = 0
        while sent < len(request):
            try:
                sent += call("send", sock.send, request[sent:])
            except BlockingIOError:
                if not self.wait_until_ready(sock, for_writing=True):
                    raise Failure("send", "the server accepted nothing for %g s" % self.options.timeout)
        say(self.options, "sent %d bytes: GET %s HTTP/1.1" % (sent, self.options.path))

    def wait_until_ready(self, sock, for_writing):
        """FIX: select() with a timeout, so the thread sleeps in the kernel until
        the socket is ready or --timeout passes (then False). The tutorial's
        select(..., 0) returns at once, and its loop spins a core. Over a 2 s
        wait this program spends about 0.09 CPU-s, nearly all of it Python's
        start-up (a fetch with no wait costs as much; chapter 3: 0.004); with
        --busy-wait, 1.7 CPU-s (tests/bench/wait_cpu.sh 2 5, README.md)
        [claim:python-select-client-sleeps-while-waiting]."""
        if self.options.busy_wait and not for_writing:
            return self.busy_wait_until_readable(sock)
        wanted = ([], [sock]) if for_writing else ([sock], [])
        # FIX: select's third list is for exceptional conditions (out-of-band
        # data, and on Windows a failed connect), not "sockets that have errors".
        return any(select.select(wanted[0], wanted[1], [sock], self.options.timeout))

    def busy_wait_until_readable(self, sock):
        """The tutorial's wait, to compare (--busy-wait): select(..., 0) over and
        over; its flag = True; break is this return."""
        deadline = time.monotonic() + self.options.timeout
        while time.monotonic() < deadline:
            self.spins += 1
            if select.select([sock], [], [], 0)[0]:
                return True
        return False

    def receive_response(self, sock):
        # FIX: one recv(4096) is not the response: read until it is complete.
        response = ResponseReader()
        recv_calls = waits = 0
        start = time.monotonic()
        while not response.complete():
            recv_calls += 1
            try:
                data = call("recv", sock.recv, BUFFER_SIZE)
            except BlockingIOError:  # FIX: nothing yet: wait, do not fall through to len(None)
                waits += 1
                if not self.wait_until_ready(sock, for_writing=False):
                    raise Failure("recv", "no data for %g s" % self.options.timeout)
                continue
            if not data:  # the server's FIN: complete only if the response ends there
                say(self.options, "recv returned 0: the server closed the connection")
                response.at_eof()
                break
            if response.bytes_taken == 0:
                say(self.options, "first bytes after %.3f s" % (time.monotonic() - start))
            # FIX: the bytes as they are (no decode: a response need not be UTF-8).
            write_stdout(data)
            response.take(data)
            self.received = response.bytes_taken
        status_line = response.status_line.decode("utf-8", "surrogateescape") or "no status line"
        say(self.options, "%s (%s); %d bytes in %d recv calls, %d waits"
            % (response.how_it_ended(), status_line, response.bytes_taken, recv_calls, waits))
        if self.options.busy_wait:
            say(self.options, "--busy-wait: select() was called %d times while waiting" % self.spins)


def main(argv=None, name="select_client.py"):
    """Exit status 0, 1 or 2; `name` starts the error line (tests/twin.py runs
    this as chapter3)."""
    parser = argparse.ArgumentParser(prog=name, description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int, nargs="?", default=80)
    parser.add_argument("--path", default="/")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--quiet", action="store_true", help="no narration; errors still go to stderr")
    parser.add_argument("--busy-wait", action="store_true",
                        help="wait like the tutorial: select(..., 0) in a loop")
    options = parser.parse_args(argv)
    if not 0 < options.timeout <= 86400 or not 0 < options.port < 65536:
        parser.error("--timeout must be above 0, PORT from 1 to 65535")
    if not options.path or not all("!" <= c <= "~" for c in options.path):
        parser.error("--path must be visible ASCII: no spaces or control characters")
    if options.busy_wait:
        say(options, "--busy-wait: waiting the tutorial's way, spinning on select()")

    # Tutorial: socketThread = tcpSocketThreadClassNonBlocking(...); .start() - kept.
    worker = SocketThread(options)
    worker.start()
    # The main thread is free meanwhile ("do any other action here, like
    # updating the UI"): once a second it says how far the socket thread got.
    start = time.monotonic()
    while True:
        worker.join(1.0)  # FIX: wait for the socket thread and learn how it ended
        if not worker.is_alive():
            break
        say(options, "[main thread] %.1f s, %d bytes received" % (time.monotonic() - start, worker.received))
    if worker.failure:
        print("%s: %s" % (name, terminal_safe(str(worker.failure))), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
