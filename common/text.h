// text.h - text for people: what reaches the terminal, and how it is shown,
// and the one way a failure is told.
//
// Nothing here differs between platforms; it sits on platform.h (for
// sockaddr and error names) and under everything that prints: trace.h,
// response.h, the lab server and chapter.h.
#pragma once

#include "platform.h"

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace text {

// "127.0.0.1:8080" or "[::1]:8080" for a socket address.
std::string address_text(const sockaddr* addr);

// Text that came from outside (a request line, a command-line value), safe to
// print on one line: control bytes, bytes above 0x7e and the backslash shown as
// \xNN, at most `max` bytes of it (then "...").
std::string printable(const std::string& text, std::size_t max = 60);

// The last step before a line reaches the terminal (narration, --trace, errors):
// control bytes and bytes above 0x7e shown as \xNN, so a server's or a user's
// bytes cannot move the cursor, retitle the window or clear the screen. Unlike
// printable() it leaves the backslash alone, so text printable() already made
// safe passes through unchanged (no "\x5cx1b").
std::string terminal_safe(const std::string& text);

// A number of seconds as the user would write it: "5 s", "0.5 s".
std::string seconds_text(double seconds);

// Seconds since `start` on the steady clock.
double seconds_since(std::chrono::steady_clock::time_point start);

// One whole line on stderr (made terminal_safe), above the status line if one
// is shown. Safe from any thread: narration and the lab server's lines come
// from two.
void print_line(const std::string& line);

// A live status line at the bottom of stderr ("waiting 1.2 s, 0 bytes"),
// redrawn in place, with print_line's lines printed above it; "" clears it.
// The caller shows it only when stderr is a terminal.
void show_status_line(const std::string& status);

// A call that failed, carried to main, which prints it and exits 1:
//   Failure("connect 127.0.0.1:9", ECONNREFUSED)
//     -> "connect 127.0.0.1:9: Connection refused (ECONNREFUSED)"
//   Failure("recv", "no data for 5 s")
//     -> "recv: no data for 5 s"
// Failure's text, where no exception is wanted (a connection's error kept
// for its line): "connect 127.0.0.1:9: Connection refused (ECONNREFUSED)".
std::string failure_text(const std::string& call, int err);

class Failure : public std::runtime_error {
public:
    Failure(const std::string& call, int err);
    Failure(const std::string& call, const std::string& reason);
};

}  // namespace text
