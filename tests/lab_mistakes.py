"""The student programs that prove the grader (tests/labcheck.py): typical
mistakes, each caught by the check named for it, and correct programs written
another way, which pass every check of their lab.

Each is a reference chapter with a few literal edits (text to find, exactly
once, and its replacement). tests/CMakeLists.txt builds each as the program
mistake-NAME or variant-NAME (`labcheck.py --write-mistake NAME PATH`), and
the CTest cases lab:mistake-NAME and lab:variant-NAME grade it.

Lab 1's first step is in connect.h, which chapter1.cpp includes: an edit
there (in_connect_h) puts connect.h's text, edited, in place of the include.
"""
import os

CONNECT_H = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "chapters", "01_blocking_client", "connect.h")
CONNECT_H_INCLUDE = '#include "connect.h"  // step 1: chapter1::connect_to_host\n'


def in_connect_h(edits):
    """An edit of chapter1.cpp that makes `edits` to connect.h: its include
    line, replaced by the edited text (less #pragma once, which a .cpp file
    may not have)."""
    with open(CONNECT_H) as f:
        text = f.read()
    for find, replace in edits:
        if text.count(find) != 1:
            raise SystemExit("lab_mistakes.py: %r is not in %s exactly once" % (find, CONNECT_H))
        text = text.replace(find, replace)
    return (CONNECT_H_INCLUDE, text.replace("#pragma once\n", ""))


# name: (lab, what the student did, edits, the name of the check that catches it)
MISTAKES = {
    "one-recv-4096": (
        1, "the tutorial's one recv(4096), taken as the whole response",
        [("static char buffer[64 * 1024];", "static char buffer[4096];"),
         ("while (!response.complete()) {", "while (!response.complete() && calls == 0) {")],
        "big"),
    "timeout-mode-without-rcvtimeo": (
        2, "timeout mode that sets only SO_SNDTIMEO",
        [("for (int option : {SO_RCVTIMEO, SO_SNDTIMEO})", "for (int option : {SO_SNDTIMEO})")],
        "timeout-sets-rcvtimeo"),
    "zero-timeout-select": (
        3, "the tutorial's wait: select with a zero timeout, in a loop",
        [("if (busy_wait) return busy_wait_until_readable", "if (true) return busy_wait_until_readable")],
        "waits-without-spinning"),
    "blocking-connect": (
        3, "a blocking connect, with nothing to bound it",
        [("net::set_nonblocking(sock.get(), true)", "net::set_nonblocking(sock.get(), false)")],
        "connect-timeout"),
    "linger-off": (
        4, "SO_LINGER {off, 0}: close sends a FIN, not a reset",
        [("abort_on_close.l_onoff = 1;", "abort_on_close.l_onoff = 0;")],
        "close-linger0"),
    "blocking-sockets-in-the-loop": (
        5, "the event loop's sockets left blocking: a recv that waits for a dripping peer stops them all",
        [("if (net::set_nonblocking(sock.get(), true) != 0) {", "if (net::set_nonblocking(sock.get(), false) != 0) {")],
        "every-scenario-poll"),
    "printf-percent-s": (
        1, "each piece written with printf(\"%s\"), which stops at the body's first zero byte",
        [('long n = traced(::recv(fd, buffer, sizeof buffer, 0), "recv", fd, sizeof buffer);',
          'long n = traced(::recv(fd, buffer, sizeof buffer - 1, 0), "recv", fd, sizeof buffer - 1);'),
         ("chapter::write_stdout(buffer, static_cast<std::size_t>(n));",
          "buffer[n] = '\\0';  // a C string, for printf\n"
          '            std::printf("%s", buffer);')],
        "binary"),
    "rcvtimeo-usec-unchecked": (
        1, "SO_RCVTIMEO set as --timeout in tv_usec alone, its result unchecked: 5 s is refused (EDOM), "
           "so a silent server is waited for without end",
        [in_connect_h([("        chapter::set_wait_limit(options, sock.get(), SO_RCVTIMEO, true);\n",
                        "        timeval limit{};  // --timeout, in microseconds\n"
                        "        limit.tv_usec = static_cast<long>(options.timeout * 1000000);\n"
                        "        ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<const char*>(&limit),\n"
                        "                     sizeof limit);\n")])],
        "default-timeout"),
    "read-until-fin": (
        1, "recv until it returns 0, the response's own length ignored: done only when the server closes",
        [("while (!response.complete()) {", "for (;;) {  // until the server closes")],
        "keep-open"),
    "close-without-release": (
        1, "close(sock.get()) with the socket still in its owner, which closes it again (EBADF)",
        [('        net::socket_t fd = sock.release();\n        traced(net::close_socket(fd), "close", fd);\n',
          '        traced(net::close_socket(sock.get()), "close", sock.get());\n')],
        "one-close"),
    "send-count-ignored": (
        1, "send()'s count ignored: what it did not take is never sent",
        [("sent += static_cast<std::size_t>(n);", "sent = data.size();  // send() took it all")],
        "short-sends"),
    "timeout-mode-without-sndtimeo": (
        2, "timeout mode that sets only SO_RCVTIMEO: nothing bounds its blocking connect",
        [("for (int option : {SO_RCVTIMEO, SO_SNDTIMEO})", "for (int option : {SO_RCVTIMEO})")],
        "timeout:connect-timeout"),
    "select-1ms-loop": (
        3, "select with a 1 ms timeout, in a loop until the deadline, instead of the time left",
        [("        timeout.tv_sec = static_cast<long>(left.count() / 1000000);\n"
          "        timeout.tv_usec = static_cast<long>(left.count() % 1000000);\n",
          "        timeout.tv_usec = 1000;  // 1 ms, then look again\n"),
         ("        if (ready == 0) return Ready::timed_out;\n",
          "        if (ready == 0) {\n"
          "            if (Clock::now() < deadline) continue;  // not yet: select again\n"
          "            return Ready::timed_out;\n"
          "        }\n")],
        "wakeups-while-waiting"),
    "buffer-size-ignored": (
        3, "--buffer-size ignored: every recv asks for the default 64 KiB",
        [("ReceiveBuffer buffer(settings.buffer_size);", "ReceiveBuffer buffer(default_buffer_size);")],
        "buffer-size"),
    "shutdown-rd-or-wr": (
        4, "shutdown(fd, SHUT_RD | SHUT_WR) for both directions: that is 0 | 1, SHUT_WR",
        [('traced(::shutdown(sock.get(), net::shut_rdwr), "shutdown", sock.get(), "SHUT_RDWR");',
          'traced(::shutdown(sock.get(), net::shut_rd | net::shut_wr), "shutdown", sock.get(),\n'
          '           "SHUT_RD | SHUT_WR");')],
        "close-rdwr"),
    "double-close": (
        4, "the rdwr ending closes the socket, then close_traced closes the same number again (EBADF)",
        [('    narrate(options, "shutdown(SHUT_RDWR): no more sending, no more receiving");\n',
          '    traced(net::close_socket(sock.get()), "close", sock.get());  // done with it\n'
          '    narrate(options, "shutdown(SHUT_RDWR): no more sending, no more receiving");\n')],
        "one-close"),
    "sleep-instead-of-wait": (
        4, "the unread ending sleeps 20 ms for the answer instead of waiting for it in poll",
        [("#include <string>\n", "#include <string>\n#include <thread>\n"),
         ("    short revents = 0;\n"
          "    int ready = traced(\n"
          "        net::poll_one(sock.get(), POLLIN, static_cast<int>(options.timeout * 1000), &revents),\n"
          '        "poll", sock.get(), "POLLIN");\n'
          '    narrate(options, ready > 0 ? "the answer is in our receive buffer; we close without reading it"\n'
          '                               : "no answer arrived; we close anyway");\n',
          "    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // time for the answer\n"
          '    narrate(options, "the answer is in our receive buffer; we close without reading it");\n')],
        "close-unread"),
    "pollout-always": (
        5, "every socket polled for POLLIN | POLLOUT, whatever it waits for: a receiving one is always writable",
        [("fds[i].events = wants_to_write(*in_flight[i]) ? POLLOUT : POLLIN;",
          "fds[i].events = POLLIN | POLLOUT;  // whatever comes")],
        "waits-poll"),
    "select-timeout-unit": (
        5, "select's timeout given in tv_usec as milliseconds: 1000 times too short",
        [("    timeout.tv_sec = timeout_ms / 1000;\n    timeout.tv_usec = (timeout_ms % 1000) * 1000;\n",
          "    timeout.tv_usec = timeout_ms;\n")],
        "waits-select"),
    "deadline-not-renewed": (
        5, "the idle deadline not renewed when bytes arrive: a peer that drips for longer than --timeout fails",
        [("            c.response.take(loop.buffer.data(), got);  // throws if wrong\n"
          "            c.deadline = idle_deadline(loop.options);\n",
          "            c.response.take(loop.buffer.data(), got);  // throws if wrong\n")],
        "drip-longer-than-timeout"),
    "fixed-pollfd-array": (
        5, "a fixed array of 1,024 pollfd, one slot per connection: connections past 1,024 are never watched",
        [("int wait_with_poll(Loop& loop, const std::vector<Connection*>& in_flight, int timeout_ms,",
          "int wait_with_poll(Loop& /* loop */, const std::vector<Connection*>& in_flight, int timeout_ms,"),
         ("    std::vector<net::pollfd_t>& fds = loop.poll_list;\n"
          "    fds.resize(in_flight.size());\n"
          "    for (std::size_t i = 0; i < in_flight.size(); ++i) {\n"
          "        fds[i].fd = in_flight[i]->sock.get();\n"
          "        fds[i].events = wants_to_write(*in_flight[i]) ? POLLOUT : POLLIN;\n"
          "        fds[i].revents = 0;\n"
          "    }\n"
          '    int n = traced(net::poll_many(fds.data(), fds.size(), timeout_ms), "poll",\n'
          '                   std::to_string(fds.size()) + " fds", std::to_string(timeout_ms) + " ms");\n'
          "    for (std::size_t i = 0; n > 0 && i < fds.size(); ++i)\n"
          "        if (fds[i].revents != 0) ready.push_back(in_flight[i]);\n",
          "    static net::pollfd_t fds[1024];  // connection k in fds[k - 1]\n"
          "    const std::size_t slots = sizeof fds / sizeof fds[0];\n"
          "    for (net::pollfd_t& slot : fds) {\n"
          "        slot.fd = net::invalid_socket;  // an empty slot: poll skips it\n"
          "        slot.events = 0;\n"
          "        slot.revents = 0;\n"
          "    }\n"
          "    for (Connection* c : in_flight) {\n"
          "        if (c->index > slots) continue;  // no room for it in the array\n"
          "        fds[c->index - 1].fd = c->sock.get();\n"
          "        fds[c->index - 1].events = wants_to_write(*c) ? POLLOUT : POLLIN;\n"
          "    }\n"
          '    int n = traced(net::poll_many(fds, slots, timeout_ms), "poll", std::to_string(slots) + " fds",\n'
          '                   std::to_string(timeout_ms) + " ms");\n'
          "    for (Connection* c : in_flight)\n"
          "        if (n > 0 && c->index <= slots && fds[c->index - 1].revents != 0) ready.push_back(c);\n")],
        "all-in-flight-poll"),
    "edge-no-drain": (
        6, "--edge, at the turn's cap of 16 recv calls: back to the loop without queueing its next turn, as if "
           "epoll would report the rest; it does not, and the bytes left wait for --timeout",
        [("    if (edge) call_soon(loop, c, receive);  // not drained: nobody else will say so\n",
          "    // the cap: back to the loop, which reports the rest\n")],
        "edge-drains"),
    "one-recv-per-report": (
        6, "one recv per ready report, then back to the loop: right when level-triggered, which reports the rest "
           "again; with --edge the rest is never reported",
        [("            if (c.response.complete()) return finish(loop, c, State::done);\n            continue;\n",
          "            if (c.response.complete()) return finish(loop, c, State::done);\n"
          "            return;  // the next report brings the rest\n")],
        "edge-drains"),
    "register-every-time": (
        6, "the socket registered again (EPOLL_CTL_MOD) after every read that found it empty, as if each report "
           "had to be re-armed: one epoll_ctl per report",
        [("    if (c.watching == events) return;\n", ""),
         ("        return;                                // EAGAIN: all read; the next report says when\n",
          "        return watch(loop, c, poller::readable);  // EAGAIN: ask for the next report\n")],
        "registered-once"),
    "timer-ignores-moved-deadline": (
        6, "a due timer fails its connection without looking at the deadline, which progress has moved since: "
           "a peer that drips for longer than --timeout fails",
        [("    if (c.deadline > loop.woke) return call_at(loop, c.deadline, &c);\n", "")],
        "drip-longer-than-timeout"),
    "wait-1ms": (
        6, "every wait cut to 1 ms at most, \"to stay responsive\": a thousand wake-ups a second with nothing to do",
        [("    wait_for_readiness(loop, wait_limit_ms(loop, status_line));\n",
          "    wait_for_readiness(loop, std::min(wait_limit_ms(loop, status_line), 1));  // stay responsive\n")],
        "waits-sleep"),
    "level-watches-writing-too": (
        6, "level-triggered, each socket registered for reading and writing once, never changed: a socket waiting "
           "for its answer is always writable, so every wait returns at once",
        [("        watch(loop, c, edge ? poller::readable | poller::writable : poller::writable);\n",
          "        watch(loop, c, poller::readable | poller::writable);  // once, for everything\n"),
         ("    if (!edge) return watch(loop, c, poller::readable);  // MOD: from writable to readable\n",
          "    if (!edge) return;  // registered for reading already\n")],
        "waits-sleep"),
}

# name: (lab, how it differs from the reference, edits). Each passes every
# check of its lab.
VARIANTS = {
    "connect-end-untraced": (
        5, "the connect's end asked of SO_ERROR, with no --trace line for getsockopt (no TODO asks for one)",
        [('    std::string traced_call = "getsockopt(" + std::to_string(c.sock.get()) + ", SO_ERROR) = ";\n', ""),
         ('        trace::line(traced_call + "-1 " + net::error_name(so_error) + " (" +\n'
          '                    net::error_text(so_error) + ")");\n', ""),
         ('        trace::line(traced_call + "0, value " +\n'
          '                    (so_error ? net::error_name(so_error) : "0 (connected)"));\n', "")]),
    "msg-waitall": (
        1, "recv with MSG_WAITALL for the body bytes still to come, once Content-Length has said how many "
           "(the head and chunked bodies, whose length the reader cannot tell ahead, with a plain recv)",
        [('        long n = traced(::recv(fd, buffer, sizeof buffer, 0), "recv", fd, sizeof buffer);\n',
          "        std::uint64_t coming = response.body_bytes_coming();  // 0: not known\n"
          "        std::size_t want = coming > 0 && coming < sizeof buffer ? static_cast<std::size_t>(coming)\n"
          "                                                                 : sizeof buffer;\n"
          "        int flags = coming > 0 ? MSG_WAITALL : 0;  // wait for all of them, or a full buffer\n"
          '        long n = traced(::recv(fd, buffer, static_cast<int>(want), flags), "recv", fd, want);\n')]),
    "other-wording": (
        1, "error lines in the student's own words, perror-style (\"connect: Connection refused\"), "
           "without the program's name",
        [in_connect_h([('            last_failure = chapter::Failure(\n'
                        '                "connect " + where, "no answer within " + chapter::seconds_text(options.timeout) +\n'
                        '                                        " (" + net::error_name(err) + ")");\n',
                        '            last_failure = chapter::Failure(\n'
                        '                "connect", "timed out after " + chapter::seconds_text(options.timeout));\n'),
                       ('            last_failure = chapter::Failure("connect " + where, err);\n',
                        '            last_failure = chapter::Failure("connect", net::error_text(err));\n')]),
         ('            throw Failure("recv", "no data for " + seconds_text(options.timeout) +\n'
          '                                      " (SO_RCVTIMEO expired: " + net::error_name(err) + ")");\n',
          '            throw Failure("recv", "timed out, nothing received for " + seconds_text(options.timeout));\n'),
         ('        throw Failure("recv", err);\n', '        throw Failure("recv", net::error_text(err));\n'),
         ("        return chapter::report(program, failure);\n",
          '        std::fprintf(stderr, "%s\\n", failure.what());\n        return 1;\n')]),
    "graceful-ending": (
        3, "the ending reads to the server's FIN: shutdown(SHUT_WR), recv until it returns 0, then close",
        [('    traced(::shutdown(sock.get(), net::shut_wr), "shutdown", sock.get(), "SHUT_WR");\n',
          '    traced(::shutdown(sock.get(), net::shut_wr), "shutdown", sock.get(), "SHUT_WR");\n'
          "    for (;;) {  // until the server's FIN: nothing is left unread\n"
          "        char rest[512];\n"
          '        long n = traced(::recv(sock.get(), rest, sizeof rest, 0), "recv", sock.get(), sizeof rest);\n'
          "        if (n == 0) break;\n"
          "        if (n > 0) continue;  // bytes after the response: dropped\n"
          "        int err = net::last_error();\n"
          "        if (net::is_interrupted(err)) continue;\n"
          "        if (!net::is_would_block(err) ||\n"
          "            wait_until(sock.get(), false, chapter::wait_deadline(options)) != Ready::yes)\n"
          "            break;  // a reset, or no FIN within --timeout: close anyway\n"
          "    }\n")]),
    "recv-cap-of-one": (
        6, "one recv per connection per turn, then its next turn queued with call_soon (--edge) or left to the "
           "next report (level): slower, and right",
        [("constexpr int recv_calls_per_turn = 16;         // at most 1 MiB per connection per turn\n",
          "constexpr int recv_calls_per_turn = 1;  // at most 64 KiB per connection per turn\n")]),
    "edge-drain-without-cap": (
        6, "--edge: read until EAGAIN with no cap per turn: a fast peer may hold up the others a while, but "
           "nothing is left unread",
        [("    for (int turn = 0; turn < recv_calls_per_turn; ++turn) {\n",
          "    for (int turn = 0; edge || turn < recv_calls_per_turn; ++turn) {  // --edge: to EAGAIN\n")]),
    "direct-poll": (
        5, "poll called directly (net::poll_many), not through the traced wrapper: --trace shows no poll line",
        [('    int n = traced(net::poll_many(fds.data(), fds.size(), timeout_ms), "poll",\n'
          '                   std::to_string(fds.size()) + " fds", std::to_string(timeout_ms) + " ms");\n',
          "    int n = net::poll_many(fds.data(), fds.size(), timeout_ms);\n")]),
}

# Mistakes a check cannot see under Wine, and why (docs/teaching.md).
BLIND_UNDER_WINE = {
    "linger-off": "under Wine an abortive close sometimes reaches the server as a FIN, so the check accepts a FIN there",
    "sleep-instead-of-wait": "under Wine an abortive close sometimes reaches the server as a FIN, so the check accepts a FIN there",
    "close-without-release": "the second close is the owner's, which --trace does not show, and there is no strace there",
    "send-count-ignored": "the check cuts send() short with a preloaded library, which a Windows program does not load (skipped)",
    "timeout-mode-without-sndtimeo": "SO_SNDTIMEO does not bound connect there, so the check is skipped in timeout mode",
    "edge-no-drain": "--edge needs epoll, and chapter 6 waits with WSAPoll there: the check is skipped",
    "one-recv-per-report": "--edge needs epoll, and chapter 6 waits with WSAPoll there: the check is skipped",
    "register-every-time": "epoll_ctl is epoll's, and chapter 6 waits with WSAPoll there: the check is skipped",
}

# Checks that cannot see a correct variant's calls under Wine: with no strace
# there they read --trace, which shows only the calls made through the
# traced wrappers.
VARIANT_UNSEEN_UNDER_WINE = {
    "direct-poll": {"poll-watches-all", "waits-poll"},
}
