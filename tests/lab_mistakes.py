"""The student programs that prove the grader (tests/labcheck.py): typical
mistakes, each caught by the check named for it, and correct programs written
another way, which pass every check of their lab.

Each is a reference chapter with a few literal edits (text to find, exactly
once, and its replacement). tests/CMakeLists.txt builds each as the program
mistake-NAME or variant-NAME (`labcheck.py --write-mistake NAME PATH`), and
the CTest cases lab:mistake-NAME and lab:variant-NAME grade it.
"""

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
}

# Mistakes a check cannot see under Wine, and why (docs/teaching.md).
BLIND_UNDER_WINE = {
    "linger-off": "under Wine an abortive close sometimes reaches the server as a FIN, so the check accepts a FIN there",
}
