#!/usr/bin/env python3
"""Generate a few thousand raw HTTP/1.1 responses, one per file, for the
differential check (tests/differential/compare.py).

Each file is what a server might send on one connection before it closes:
realistic responses (nginx-like heads; Content-Length, chunked with chunk
extensions and trailers, read-until-close; 1xx then the final response;
101, 204, 304), the same cut short at every boundary, and mutations that
parsers are known to treat differently (RFC 9112 and 9110 say which is right;
docs/http-framing.md records where we and the reference parsers part).

A file's name is CATEGORY--NNN: the category groups what compare.py reports.
The output is the same on every run (a fixed seed, no clock, no randomness
from the system), so a disagreement found once is found again.

Usage: python3 generate.py OUT_DIR      (other files in OUT_DIR are removed)
       python3 generate.py --categories (list the categories and counts)
Standard library only; runs under `python -S`.
"""
import os
import random
import sys

SEED = 9112  # RFC 9112, HTTP/1.1

# --- realistic pieces ------------------------------------------------------

REASONS = {
    200: "OK", 201: "Created", 206: "Partial Content", 301: "Moved Permanently",
    302: "Found", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    204: "No Content", 304: "Not Modified",
}

# Body text: slices of this, so a body costs nothing to make.
TEXT = (
    b"<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n"
    b"<h1>Welcome to nginx!</h1>\n<p>If you see this page, the nginx web server is successfully "
    b"installed and working. Further configuration is required.</p>\n"
    b"{\"id\": 42, \"name\": \"chunk\", \"tags\": [\"a\", \"b\"], \"ok\": true}\n"
    b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
    b"0\r\n\r\nHTTP/1.1 200 OK\r\n"  # bytes that look like framing, inside a body
) * 40


def body(rng, low=0, high=1500):
    size = rng.randint(low, high)
    start = rng.randrange(len(TEXT) - size)
    return TEXT[start:start + size]


def http_date(rng):
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    return "%s, %02d %s %d %02d:%02d:%02d GMT" % (
        rng.choice(days), rng.randint(1, 28), rng.choice(months), rng.randint(2019, 2026),
        rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))


def server_fields(rng):
    """Fields as nginx (and a few others) send them, in nginx's order: the
    ones before the framing field, and the ones after it."""
    before = [("Server", rng.choice(["nginx/1.22.1", "nginx", "Apache/2.4.57 (Debian)",
                                     "cloudflare", "gws", "lighttpd/1.4.69"])),
              ("Date", http_date(rng)),
              ("Content-Type", rng.choice(["text/html", "text/html; charset=utf-8",
                                           "application/json", "text/plain", "image/png"]))]
    after = []
    if rng.random() < 0.6:
        after.append(("Last-Modified", http_date(rng)))
    if rng.random() < 0.7:
        after.append(("Connection", rng.choice(["close", "keep-alive", "close"])))
    if rng.random() < 0.5:
        after.append(("ETag", '"%x-%x"' % (rng.getrandbits(32), rng.getrandbits(16))))
    if rng.random() < 0.4:
        after.append(("Accept-Ranges", "bytes"))
    if rng.random() < 0.3:
        after.append(("Cache-Control", rng.choice(["max-age=3600", "no-cache", "private, max-age=0"])))
    if rng.random() < 0.3:
        after.append(("Vary", "Accept-Encoding"))
    if rng.random() < 0.2:
        after.append(("Set-Cookie", "session=%016x; Path=/; HttpOnly" % rng.getrandbits(64)))
    if rng.random() < 0.2:
        after.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    if rng.random() < 0.15:
        after.append(("x-request-id", "%032x" % rng.getrandbits(128)))  # lower case, as HTTP/2 proxies send
    return before, after


def status_line(rng, code=None, version="HTTP/1.1"):
    code = code or rng.choice([200, 200, 200, 200, 201, 206, 301, 302, 400, 403, 404, 500, 502, 503])
    return ("%s %d %s\r\n" % (version, code, REASONS.get(code, "Whatever"))).encode()


def field_lines(fields):
    return [("%s: %s\r\n" % (name, value)).encode("latin-1") for name, value in fields]


# A response is built as a list of (region, bytes): the regions are where a
# truncation can land (trunc-* categories name the region of the first byte
# that never arrived).

def head_pieces(rng, framing, code=None, version="HTTP/1.1", extra=()):
    before, after = server_fields(rng)
    pieces = [("status-line", status_line(rng, code, version))]
    for line in field_lines(before + list(framing) + after + list(extra)):
        pieces.append(("header", line))
    pieces.append(("head-end", b"\r\n"))
    return pieces


def length_response(rng, code=None, version="HTTP/1.1", payload=None):
    payload = body(rng) if payload is None else payload
    return head_pieces(rng, [("Content-Length", len(payload))], code, version) + [("body", payload)]


def chunk_ext(rng):
    return rng.choice([b";name=value", b";a", b';q="a quoted; value"', b";x=1;y=2", b";ieof"])


def chunked_pieces(rng, payload, extensions=False, trailers=False, upper=False):
    """The body in chunks: each "SIZE[;ext]\\r\\n" DATA "\\r\\n", then "0\\r\\n",
    trailer fields, "\\r\\n"."""
    pieces = []
    at = 0
    while at < len(payload):
        size = min(len(payload) - at, rng.choice([1, 7, 16, 100, 255, 512, 1000, 4096]))
        size_text = ("%X" if upper else "%x") % size
        line = size_text.encode() + (chunk_ext(rng) if extensions and rng.random() < 0.6 else b"")
        pieces += [("chunk-size", line + b"\r\n"), ("chunk-data", payload[at:at + size]),
                   ("chunk-crlf", b"\r\n")]
        at += size
    last = b"0" + (chunk_ext(rng) if extensions and rng.random() < 0.5 else b"")
    pieces.append(("last-chunk", last + b"\r\n"))
    if trailers:
        names = ["Expires", "X-Checksum", "Server-Timing", "X-Trailer"]
        for name in rng.sample(names, rng.randint(1, 3)):
            pieces.append(("trailer", ("%s: %x\r\n" % (name, rng.getrandbits(48))).encode()))
    pieces.append(("final-crlf", b"\r\n"))
    return pieces


def chunked_response(rng, extensions=False, trailers=False, te="chunked", payload=None):
    payload = body(rng, 1) if payload is None else payload
    extra = [("Trailer", "X-Checksum")] if trailers and rng.random() < 0.5 else []
    head = head_pieces(rng, [("Transfer-Encoding", te)], extra=extra)
    return head + chunked_pieces(rng, payload, extensions, trailers, upper=rng.random() < 0.3)


def interim(rng, code):
    """A 1xx interim response as one region."""
    lines = [("HTTP/1.1 %d %s\r\n" % (code, {100: "Continue", 102: "Processing",
                                               103: "Early Hints"}[code])).encode()]
    if code == 103:
        lines.append(b"Link: </style.css>; rel=preload; as=style\r\n")
        if rng.random() < 0.5:
            lines.append(b"Link: </script.js>; rel=preload; as=script\r\n")
    lines.append(b"\r\n")
    return [("1xx", b"".join(lines))]


def final_response(rng):
    """A final response with any of the three framings."""
    kind = rng.random()
    if kind < 0.5:
        return length_response(rng)
    if kind < 0.85:
        return chunked_response(rng, trailers=rng.random() < 0.3)
    return head_pieces(rng, []) + [("body-eof", body(rng))]


def joined(pieces):
    return b"".join(data for _, data in pieces)


# --- the categories --------------------------------------------------------
# Each maker takes the random generator and returns one response's bytes.

def with_head(rng, lines, payload=None, code=None, version="HTTP/1.1"):
    """A status line, the realistic fields, the given raw field lines in the
    middle of them, the blank line, then the body."""
    before, after = server_fields(rng)
    payload = body(rng) if payload is None else payload
    return (status_line(rng, code, version) + b"".join(field_lines(before)) + b"".join(lines)
            + b"".join(field_lines(after)) + b"\r\n" + payload)


def chunked_body(rng, payload=None, upper=False):
    payload = body(rng, 1) if payload is None else payload
    return joined(chunked_pieces(rng, payload, upper=upper))


def one_chunk_with_size(rng, size_text):
    """A chunked response whose first chunk's size line is `size_text`
    (meant to say 16 bytes, or to be refused), then a proper end."""
    data = b"0123456789abcdef"
    return with_head(rng, [b"Transfer-Encoding: chunked\r\n"],
                     size_text + b"\r\n" + data + b"\r\n0\r\n\r\n")


def lf_only(pieces):
    """The response with every CRLF of its framing (status line, fields,
    chunk lines) sent as a bare LF; the body's own bytes are left alone."""
    body_regions = ("body", "body-eof", "chunk-data")
    return b"".join(data if region in body_regions else data.replace(b"\r\n", b"\n")
                    for region, data in pieces)


CATEGORIES = []  # (name, count, maker)


# category("valid-length", 250)(maker) registers `maker` to make 250
# responses of the category "valid-length"; the makers below are mostly
# one-line lambdas, so each category reads as one entry in a list.
def category(name, count):
    def register(maker):
        CATEGORIES.append((name, count, maker))
        return maker
    return register


# Realistic responses: everyone should agree on these.
category("valid-length", 250)(lambda rng: joined(length_response(rng)))
category("valid-length-zero", 20)(lambda rng: joined(length_response(rng, payload=b"")))
category("valid-chunked", 200)(lambda rng: joined(chunked_response(rng)))
category("valid-chunk-ext", 60)(lambda rng: joined(chunked_response(rng, extensions=True)))
category("valid-trailers", 80)(lambda rng: joined(chunked_response(rng, trailers=True)))
category("valid-eof-http10", 60)(lambda rng: joined(head_pieces(rng, [], version="HTTP/1.0")) + body(rng))
category("valid-eof-http11", 40)(lambda rng: joined(head_pieces(rng, [])) + body(rng))
category("valid-204", 25)(lambda rng: joined(head_pieces(rng, [], code=204)))
category("valid-304", 25)(lambda rng: with_head(rng, [b'ETag: "5f3a"\r\n'], b"", code=304))
category("304-with-length", 20)(lambda rng: with_head(
    rng, [b"Content-Length: %d\r\n" % rng.randint(1, 99999)], b"", code=304))
category("204-with-length-zero", 15)(lambda rng: with_head(rng, [b"Content-Length: 0\r\n"], b"", code=204))
category("valid-obs-text", 20)(lambda rng: with_head(
    rng, [b"X-Name: caf\xe9 \xff\x80\r\n", b"Content-Length: 2\r\n"], b"ok"))
category("valid-te-uppercase", 20)(lambda rng: with_head(
    rng, [rng.choice([b"Transfer-Encoding: CHUNKED\r\n", b"transfer-encoding: Chunked\r\n"])],
    chunked_body(rng)))
category("cl-ows-spaces", 20)(lambda rng: with_head(
    rng, [rng.choice([b"Content-Length:2\r\n", b"Content-Length:  2  \r\n", b"content-length:  2\r\n"])],
    b"ok"))
category("cl-ows-tabs", 15)(lambda rng: with_head(
    rng, [rng.choice([b"Content-Length:\t2\r\n", b"Content-Length: \t2 \t\r\n"])], b"ok"))

# 1xx before the final response, and 101.
category("1xx-100-then-final", 60)(lambda rng: joined(interim(rng, 100) + final_response(rng)))
category("1xx-103-then-final", 60)(lambda rng: joined(interim(rng, 103) + final_response(rng)))
category("1xx-several-then-final", 30)(lambda rng: joined(
    interim(rng, 100) + interim(rng, rng.choice([102, 103])) + interim(rng, 103) + final_response(rng)))
category("1xx-100-with-content-length", 25)(lambda rng: (
    b"HTTP/1.1 100 Continue\r\nContent-Length: %d\r\n\r\n" % rng.randint(1, 50)
    + joined(final_response(rng))))
category("1xx-100-with-chunked", 25)(lambda rng: (
    b"HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n" + joined(final_response(rng))))
category("1xx-then-not-http", 20)(lambda rng: (
    joined(interim(rng, 100)) + rng.choice([b"hello", b"<html>hi</html>", b"http/1.1 200 OK\r\n\r\n"])))
category("1xx-then-empty-line-then-final", 15)(lambda rng: (
    joined(interim(rng, 100)) + rng.choice([b"\r\n", b"\n"]) + joined(final_response(rng))))
category("1xx-then-eof", 10)(lambda rng: joined(interim(rng, 100)))
category("status-101", 20)(lambda rng: (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n" + rng.choice([b"", b"\x81\x05hello"])))

# Status lines.
category("status-no-reason", 25)(lambda rng: b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok")
category("status-no-space-after-code", 25)(lambda rng: b"HTTP/1.1 %d\r\nContent-Length: 2\r\n\r\nok"
                                           % rng.choice([200, 404, 500]))
category("status-4-digit-code", 15)(lambda rng: b"HTTP/1.1 %d OK\r\nContent-Length: 2\r\n\r\nok"
                                    % rng.choice([2000, 1000, 4040]))
category("status-2-digit-code", 10)(lambda rng: b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok")
category("status-code-unusual", 15)(lambda rng: b"HTTP/1.1 %d Whatever\r\nContent-Length: 2\r\n\r\nok"
                                    % rng.choice([299, 499, 600, 999]))
category("status-code-leading-zero", 10)(lambda rng: b"HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok")
category("status-two-spaces", 15)(lambda rng: b"HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok")
category("status-version-1x", 15)(lambda rng: b"%s 200 OK\r\nContent-Length: 2\r\n\r\nok"
                                  % rng.choice([b"HTTP/1.2", b"HTTP/1.9"]))
category("status-version-2-or-3", 15)(lambda rng: b"%s 200 OK\r\nContent-Length: 2\r\n\r\nok"
                                      % rng.choice([b"HTTP/2.0", b"HTTP/3.0"]))
category("status-version-0.9", 10)(lambda rng: b"HTTP/0.9 200 OK\r\nContent-Length: 2\r\n\r\nok")
category("status-version-two-digit-minor", 10)(lambda rng: b"HTTP/1.10 200 OK\r\nContent-Length: 2\r\n\r\nok")
category("status-version-bad", 15)(lambda rng: b"%s 200 OK\r\nContent-Length: 2\r\n\r\nok"
                                   % rng.choice([b"HTTP/11.1", b"HTTP/1", b"HTTP/a.b", b"HTTP/1.x"]))
category("status-lowercase-http", 10)(lambda rng: b"http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
category("no-status-line", 20)(lambda rng: rng.choice([b"hello\n", b"<html><body>It works!</body></html>\n",
                                                       b"HTTX/1.1 200 OK\r\n\r\n", b"\r\n"]) + body(rng, 0, 200))

# Content-Length.
category("cl-duplicate-same", 25)(lambda rng: with_head(rng, [b"Content-Length: 2\r\n"] * 2, b"ok"))
category("cl-duplicate-different", 25)(lambda rng: with_head(
    rng, [b"Content-Length: 2\r\n", b"Content-Length: %d\r\n" % rng.choice([3, 20, 0])], b"ok"))
category("cl-list-same", 20)(lambda rng: with_head(rng, [rng.choice([b"Content-Length: 2, 2\r\n",
                                                                    b"Content-Length: 2,2\r\n"])], b"ok"))
category("cl-list-different", 15)(lambda rng: with_head(rng, [b"Content-Length: 2, 3\r\n"], b"ok"))
category("cl-plus-sign", 15)(lambda rng: with_head(rng, [b"Content-Length: +2\r\n"], b"ok"))
category("cl-minus-sign", 15)(lambda rng: with_head(rng, [b"Content-Length: -2\r\n"], b"ok"))
category("cl-not-digits", 25)(lambda rng: with_head(rng, [b"Content-Length: %s\r\n" % rng.choice(
    [b"abc", b"2a", b"0x2", b"2.0", b"1e1", b"2 2", b"two"])], b"ok"))
category("cl-empty", 10)(lambda rng: with_head(rng, [b"Content-Length: \r\n"], b"ok"))
category("cl-leading-zeros", 20)(lambda rng: with_head(rng, [b"Content-Length: %s2\r\n" % (
    b"0" * rng.randint(1, 16))], b"ok"))  # at most 17 digits in all
category("cl-leading-zeros-19-digits-or-more", 15)(lambda rng: with_head(rng, [b"Content-Length: %s2\r\n" % (
    b"0" * rng.randint(18, 30))], b"ok"))
category("cl-huge-fits-64-bits", 15)(lambda rng: with_head(rng, [b"Content-Length: %s\r\n" % rng.choice(
    [b"18446744073709551615", b"10000000000000000000", b"1000000000000000000"])], b"ok"))
category("cl-overflow-64-bits", 15)(lambda rng: with_head(rng, [b"Content-Length: %s\r\n" % rng.choice(
    [b"18446744073709551616", b"99999999999999999999", b"1" * 40])], b"ok"))
category("cl-large-but-short-body", 15)(lambda rng: with_head(
    rng, [b"Content-Length: %d\r\n" % rng.choice([10**9, 10**15, 10**17])], body(rng, 0, 100)))

# Chunk sizes and the bytes around chunks.
category("chunk-size-leading-zeros", 20)(lambda rng: one_chunk_with_size(rng, b"0" * rng.randint(1, 30) + b"10"))
category("chunk-size-0x", 15)(lambda rng: one_chunk_with_size(rng, rng.choice([b"0x10", b"0X10"])))
category("chunk-size-minus", 15)(lambda rng: one_chunk_with_size(rng, b"-10"))
category("chunk-size-plus", 10)(lambda rng: one_chunk_with_size(rng, b"+10"))
category("chunk-size-underscore", 15)(lambda rng: one_chunk_with_size(rng, rng.choice([b"1_0", b"0_10"])))
category("chunk-size-16-hex-digits", 15)(lambda rng: one_chunk_with_size(rng, rng.choice(
    [b"ffffffffffffffff", b"1000000000000010", b"8000000000000000"])))
category("chunk-size-overflow-64-bits", 15)(lambda rng: one_chunk_with_size(rng, rng.choice(
    [b"10000000000000010", b"1" + b"0" * 20 + b"10"])))
category("chunk-size-huge-but-short", 10)(lambda rng: one_chunk_with_size(rng, rng.choice(
    [b"fffffffffffffff", b"7fffffff"])))
category("chunk-size-not-hex", 15)(lambda rng: one_chunk_with_size(rng, rng.choice([b"g", b"", b"1g", b"ten"])))
category("chunk-size-leading-space", 15)(lambda rng: one_chunk_with_size(rng, rng.choice([b" 10", b"\t10"])))
category("chunk-size-trailing-space", 15)(lambda rng: one_chunk_with_size(rng, rng.choice([b"10 ", b"10\t"])))
category("chunk-ext-space-before-semicolon", 10)(lambda rng: one_chunk_with_size(rng, b"10 ;a=b"))
category("chunk-ext-space-after-semicolon", 10)(lambda rng: one_chunk_with_size(rng, rng.choice(
    [b"10; a=b", b"10 ; a = b"])))
category("chunk-ext-9k", 10)(lambda rng: one_chunk_with_size(rng, b"10;x=" + b"v" * (9 * 1024)))
category("chunk-data-too-long", 20)(lambda rng: with_head(
    rng, [b"Transfer-Encoding: chunked\r\n"], b"3\r\nhello\r\n0\r\n\r\n"))
category("chunk-data-no-crlf", 15)(lambda rng: with_head(
    rng, [b"Transfer-Encoding: chunked\r\n"], b"5\r\nhello0\r\n\r\n"))
category("trailer-not-a-field", 15)(lambda rng: with_head(
    rng, [b"Transfer-Encoding: chunked\r\n"], b"5\r\nhello\r\n0\r\n" + rng.choice(
        [b"just text\r\n", b"Bad Name: x\r\n", b" folded\r\n"]) + b"\r\n"))

# Line ends: bare LF (accepted, RFC 9112 2.2 MAY) and bare CR (refused).
category("bare-lf-everywhere", 30)(lambda rng: lf_only(rng.choice(
    [length_response, lambda r: chunked_response(r, trailers=True)])(rng)))
category("bare-lf-status-line", 15)(lambda rng: joined(length_response(rng)).replace(b"\r\n", b"\n", 1))
category("bare-lf-header-lines", 15)(lambda rng: with_head(rng, [b"Content-Length: 2\n", b"X-A: b\n"], b"ok"))
category("bare-lf-head-end", 15)(lambda rng: joined(length_response(rng)).replace(b"\r\n\r\n", b"\r\n\n", 1))
category("bare-lf-chunk-lines", 15)(lambda rng: with_head(
    rng, [b"Transfer-Encoding: chunked\r\n"], lf_only(chunked_pieces(rng, body(rng, 1), trailers=True))))
category("bare-cr-in-status-line", 15)(lambda rng: b"HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok")
category("bare-cr-in-field-value", 20)(lambda rng: with_head(rng, [rng.choice(
    [b"X-Name: a\rb\r\n", b"Content-Length: 2\r \r\n", b"X-Name: \rContent-Length: 5\r\n"]),
    b"Content-Length: 2\r\n"], b"ok"))
category("bare-cr-in-field-name", 10)(lambda rng: with_head(rng, [b"X-Na\rme: a\r\n", b"Content-Length: 2\r\n"], b"ok"))
category("bare-cr-line-end", 15)(lambda rng: with_head(rng, [b"X-Name: a\r\r\n", b"Content-Length: 2\r\n"], b"ok"))
category("bare-cr-in-chunk-line", 10)(lambda rng: one_chunk_with_size(rng, rng.choice([b"10\r", b"1\r0", b"10;a\rb"])))

# Field syntax.
category("obs-fold", 25)(lambda rng: with_head(rng, [b"X-Long: part one\r\n", rng.choice(
    [b" part two\r\n", b"\tpart two\r\n", b"   \t part two\r\n"]), b"Content-Length: 2\r\n"], b"ok"))
category("obs-fold-content-length", 15)(lambda rng: with_head(
    rng, [b"Content-Length:\r\n 2\r\n"], b"ok"))
category("obs-fold-transfer-encoding", 15)(lambda rng: with_head(
    rng, [b"Transfer-Encoding: gzip,\r\n chunked\r\n"], chunked_body(rng)))
category("obs-fold-after-status-line", 15)(lambda rng: b"HTTP/1.1 200 OK\r\n folded: x\r\nContent-Length: 2\r\n\r\nok")
category("space-before-colon-content-length", 20)(lambda rng: with_head(rng, [rng.choice(
    [b"Content-Length : 2\r\n", b"Content-Length\t: 2\r\n"])], b"ok"))
category("space-before-colon-other", 20)(lambda rng: with_head(
    rng, [b"X-Whatever : x\r\n", b"Content-Length: 2\r\n"], b"ok"))
category("field-name-not-token", 20)(lambda rng: with_head(rng, [rng.choice(
    [b"X(y): z\r\n", b"X@y: 1\r\n", b"Bad Name: x\r\n", b"X\"q\": 1\r\n", b"\xe9t\xe9: 1\r\n"]),
    b"Content-Length: 2\r\n"], b"ok"))
category("field-no-colon", 15)(lambda rng: with_head(rng, [b"JustSomeText\r\n", b"Content-Length: 2\r\n"], b"ok"))
category("field-empty-name", 10)(lambda rng: with_head(rng, [b": value\r\n", b"Content-Length: 2\r\n"], b"ok"))
category("nul-in-field-value", 10)(lambda rng: with_head(
    rng, [b"X-Name: a\x00b\r\n", b"Content-Length: 2\r\n"], b"ok"))
category("ctl-in-field-value", 15)(lambda rng: with_head(rng, [b"X-Name: a%sb\r\n" % rng.choice(
    [b"\x01", b"\x1b", b"\x7f"]), b"Content-Length: 2\r\n"], b"ok"))
category("long-field-line-9k", 20)(lambda rng: with_head(
    rng, [b"X-Long: " + b"v" * (9 * 1024) + b"\r\n", b"Content-Length: 2\r\n"], b"ok"))
category("head-40k", 10)(lambda rng: with_head(
    rng, [b"X-Long-%d: %s\r\n" % (i, b"v" * 4000) for i in range(10)] + [b"Content-Length: 2\r\n"], b"ok"))
category("head-over-64k", 10)(lambda rng: with_head(
    rng, [b"X-Long-%d: %s\r\n" % (i, b"v" * 7000) for i in range(10)] + [b"Content-Length: 2\r\n"], b"ok"))
category("many-fields-150", 10)(lambda rng: with_head(
    rng, [b"X-Field-%d: %d\r\n" % (i, i) for i in range(150)] + [b"Content-Length: 2\r\n"], b"ok"))

# Transfer-Encoding.
category("te-gzip-chunked", 25)(lambda rng: with_head(rng, [b"Transfer-Encoding: gzip, chunked\r\n"], chunked_body(rng)))
category("te-gzip-only", 20)(lambda rng: with_head(rng, [b"Transfer-Encoding: gzip\r\n"], body(rng)))
category("te-gzip-with-cl-body-longer", 15)(lambda rng: with_head(
    rng, [b"Transfer-Encoding: gzip\r\n", b"Content-Length: 2\r\n"], b"ok" + body(rng, 1, 300)))
category("te-gzip-with-cl-body-shorter", 15)(lambda rng: with_head(
    rng, [b"Transfer-Encoding: gzip\r\n", b"Content-Length: 400\r\n"], body(rng, 0, 300)))
category("te-two-lines-gzip-then-chunked", 20)(lambda rng: with_head(
    rng, [b"Transfer-Encoding: gzip\r\n", b"Transfer-Encoding: chunked\r\n"], chunked_body(rng)))
category("te-two-lines-chunked-then-gzip", 15)(lambda rng: with_head(
    rng, [b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip\r\n"], chunked_body(rng)))
category("te-chunked-and-content-length", 25)(lambda rng: with_head(
    rng, [b"Content-Length: %d\r\n" % rng.randint(0, 2000), b"Transfer-Encoding: chunked\r\n"], chunked_body(rng)))
category("te-chunked-twice", 10)(lambda rng: with_head(rng, [b"Transfer-Encoding: chunked, chunked\r\n"], chunked_body(rng)))
category("te-chunked-in-http10", 15)(lambda rng: with_head(
    rng, [b"Transfer-Encoding: chunked\r\n"], chunked_body(rng), version="HTTP/1.0"))
category("te-empty", 10)(lambda rng: with_head(rng, [b"Transfer-Encoding: \r\n"], body(rng)))

# Bytes after the end of a complete response (we sent Connection: close).
category("after-end-garbage", 20)(lambda rng: joined(length_response(rng)) + rng.choice([b"garbage", b"x", b"\x00\x01"]))
category("after-end-crlf", 15)(lambda rng: joined(length_response(rng)) + rng.choice([b"\r\n", b"\n"]))
category("after-end-second-response", 20)(lambda rng: joined(length_response(rng)) + joined(length_response(rng)))
category("after-end-of-chunked", 20)(lambda rng: joined(chunked_response(rng)) + rng.choice([b"extra", b"5\r\nhello\r\n"]))
category("after-end-of-204-304", 20)(lambda rng: joined(head_pieces(rng, [], code=rng.choice([204, 304]))) + body(rng, 1, 100))


# --- truncation: valid responses cut short at every boundary -----------------

# Where a cut lands -> its category. The region is that of the first byte
# that never arrived; "start" means the cut fell exactly at the region's start.
def truncation_category(region, at_start, after_interim):
    if region == "status-line" and at_start and after_interim:
        return "trunc-after-1xx"            # the interim response, then nothing
    if region in ("1xx", "status-line"):
        return "trunc-in-" + ("1xx" if region == "1xx" else "status-line")
    if region in ("header", "head-end"):
        return "trunc-in-head"              # the fields, or the empty line after them
    if region in ("body", "chunk-size", "chunk-data"):
        return "trunc-in-" + region         # chunk-data: also its CRLF
    if region == "chunk-crlf":
        return "trunc-in-chunk-data"
    if region == "last-chunk":
        return "trunc-before-last-chunk" if at_start else "trunc-in-last-chunk"
    return "trunc-in-trailers"              # trailer fields, or the final CRLF


def truncations(rng, count_per_kind):
    """Valid responses cut at the start of every region (every line, every
    chunk) and once inside each. A read-until-close body is never cut: the
    close is its end. The interim response here is always 100 Continue,
    which every parser skips (a 103 is another matter: 1xx-103-then-final)."""
    made = []
    kinds = [
        lambda: length_response(rng),
        lambda: chunked_response(rng, extensions=rng.random() < 0.3, trailers=True),
        lambda: interim(rng, 100) + length_response(rng),
        lambda: interim(rng, 100) + chunked_response(rng, trailers=rng.random() < 0.5),
    ]
    for _ in range(count_per_kind):
        for kind in kinds:
            pieces = kind()
            whole = joined(pieces)
            offset = 0
            for index, (region, data) in enumerate(pieces):
                after_interim = index > 0 and pieces[index - 1][0] == "1xx"
                cuts = [offset]
                if len(data) > 1:
                    cuts.append(offset + rng.randrange(1, len(data)))
                for cut in cuts:
                    if cut == 0:
                        continue  # nothing at all: the "empty" category
                    name = truncation_category(region, cut == offset, after_interim)
                    made.append((name, whole[:cut]))
                offset += len(data)
    return made


def generate():
    """All responses: a list of (category, bytes), in a fixed order."""
    rng = random.Random(SEED)
    made = [("empty", b"")]
    for name, count, maker in CATEGORIES:
        for _ in range(count):
            made.append((name, maker(rng)))
    made += truncations(rng, 6)
    return made


def main():
    if sys.argv[1:] == ["--categories"]:
        counts = {}
        for name, _ in generate():
            counts[name] = counts.get(name, 0) + 1
        for name in sorted(counts):
            print("%5d %s" % (counts[name], name))
        print("%5d in all" % sum(counts.values()))
        return 0
    if len(sys.argv) != 2:
        sys.stderr.write("usage: generate.py OUT_DIR | --categories\n")
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    wanted = {}
    numbers = {}
    for name, data in generate():
        numbers[name] = numbers.get(name, 0) + 1
        wanted["%s--%03d" % (name, numbers[name])] = data
    # Thousands of small files are slow to create on some file systems: a
    # file that already holds the right bytes is left as it is.
    for name in os.listdir(out):
        if name not in wanted:
            os.remove(os.path.join(out, name))
    for name, data in wanted.items():
        path = os.path.join(out, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                if f.read() == data:
                    continue
        with open(path, "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
