#!/usr/bin/env python3
"""Chapter 6's work, written the way a Python programmer would: asyncio.

    python3 tests/bench/asyncio_client.py [--connections N] [--timeout S] [--path PATH]
                                          [--quiet] HOST PORT

Opens N connections at once with asyncio.open_connection, sends each the
request the chapters send (common/chapter.cpp's http_request), and reads
until the end of the response or until no byte has come for --timeout
seconds (the chapters' idle timeout: the deadline moves with each piece);
then closes. A connection is complete when the server closed it after the
whole body (its Content-Length).

The last line on stderr (not with --quiet) is a summary in the chapters'
words, for tests/bench/chapter6_scale.sh:

    N complete, F failed in T s; R ready reports (C connects, D reads that
    returned data, E reads at end of file)

Each of the R is a wake-up of asyncio's loop for one socket: underneath,
asyncio's selector loop waits in epoll_wait, and a connect completing, a
read returning data and a read returning end of file are each one socket
reported ready (selector_events.py: _sock_connect_cb, _read_ready). The
chapters count the same: a connect's writable report and each readable
report. Python 3.11 or later (asyncio.timeout).
"""
import argparse
import asyncio
import sys
import time


class Tally:
    def __init__(self):
        self.complete = 0
        self.failed = 0
        self.connects = 0
        self.reads_with_data = 0
        self.reads_at_end = 0


def whole_response(received):
    """True when the head is complete and the body is as long as its Content-Length."""
    head_end = received.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    for line in received[:head_end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(received) - (head_end + 4) == int(value)
    return True  # no Content-Length: the body ends when the server closes


async def fetch(host, port, request, timeout, tally):
    loop = asyncio.get_running_loop()
    writer = None
    received = bytearray()
    try:
        # One deadline per connection, moved by each piece of progress (the
        # chapters' --timeout). asyncio.timeout is a timer handle on the loop's
        # heap, as the chapters' one timer per connection.
        async with asyncio.timeout(timeout) as deadline:
            reader, writer = await asyncio.open_connection(host, port)
            tally.connects += 1
            writer.write(request)
            await writer.drain()
            while True:
                data = await reader.read(65536)
                if not data:
                    tally.reads_at_end += 1
                    break
                tally.reads_with_data += 1
                received += data
                deadline.reschedule(loop.time() + timeout)
    except (TimeoutError, OSError):
        tally.failed += 1
        return
    finally:
        if writer is not None:
            writer.close()
    if whole_response(received):
        tally.complete += 1
    else:
        tally.failed += 1


async def run(args, tally):
    host = args.host
    if ":" in host:
        host = "[" + host + "]"
    if args.port != "80":
        host += ":" + args.port
    request = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (args.path, host)).encode()
    await asyncio.gather(*(fetch(args.host, int(args.port), request, args.timeout, tally)
                           for _ in range(args.connections)))


def main():
    if sys.version_info < (3, 11):
        sys.exit("asyncio_client.py: needs Python 3.11 or later (asyncio.timeout)")
    parser = argparse.ArgumentParser(description="N connections at once with asyncio")
    parser.add_argument("--connections", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--path", default="/")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("host")
    parser.add_argument("port")
    args = parser.parse_args()

    started = time.monotonic()
    tally = Tally()
    asyncio.run(run(args, tally))
    reports = tally.connects + tally.reads_with_data + tally.reads_at_end
    if not args.quiet:
        print("%d complete, %d failed in %.3f s; %d ready reports (%d connects, %d reads that returned "
              "data, %d reads at end of file)"
              % (tally.complete, tally.failed, time.monotonic() - started, reports, tally.connects,
                 tally.reads_with_data, tally.reads_at_end), file=sys.stderr)
    sys.exit(0 if tally.failed == 0 else 1)


if __name__ == "__main__":
    main()
