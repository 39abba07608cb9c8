// trace.h - `--trace`: print every socket call, strace-like, on stderr.
//
// The call itself stays visible in the chapter's source; the trace wraps its
// result:
//
//     ssize_t n = traced(::recv(fd, buf, sizeof buf, 0), "recv", fd, sizeof buf);
//
// prints, when tracing is on,
//
//     recv(3, 65536) = 140
//     recv(3, 65536) = -1 EAGAIN (Resource temporarily unavailable)
//
// A result equal to -1 (SOCKET_ERROR, or INVALID_SOCKET for socket()) is a
// failure and is shown with the error's name and text. The last error is kept
// intact, so the code after the call reads it as if the trace were not there.
#pragma once

#include "platform.h"

#include <sstream>
#include <string>

namespace trace {

void enable(bool on);
// A line is wanted: printed (--trace), drawn (--diagram, --mermaid), or both.
bool enabled();

// One finished line: on stderr with --trace; to the diagram's record when
// one is kept.
void line(const std::string& text);

template <class... Args>
std::string argument_list(const Args&... args) {
    std::ostringstream out;
    const char* separator = "";
    ((out << separator << args, separator = ", "), ...);
    return out.str();
}

template <class Result, class... Args>
Result traced(Result result, const char* call, const Args&... args) {
    if (!enabled()) return result;
    int err = net::last_error();  // before anything below can change it
    std::ostringstream out;
    out << call << "(" << argument_list(args...) << ") = ";
    if (result == static_cast<Result>(-1))
        out << "-1 " << net::error_name(err) << " (" << net::error_text(err) << ")";
    else
        out << result;
    line(out.str());
    net::set_last_error(err);
    return result;
}

}  // namespace trace

using trace::traced;
