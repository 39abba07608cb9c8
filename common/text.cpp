// text.cpp - escaping, seconds, and the lines on stderr.
#include "text.h"

#include <cstdio>
#include <mutex>

namespace text {

std::string address_text(const sockaddr* addr) {
    char host[INET6_ADDRSTRLEN] = "?";
    if (addr->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
        ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
    }
    if (addr->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    return "(address family " + std::to_string(addr->sa_family) + ")";
}

namespace {
// Bytes outside printable ASCII as \xNN; the backslash too when `backslash`.
std::string escaped(const std::string& text, bool backslash) {
    std::string shown;
    for (unsigned char c : text) {
        if (c >= 0x20 && c < 0x7f && !(backslash && c == '\\')) {
            shown += static_cast<char>(c);
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            shown += hex;
        }
    }
    return shown;
}
}  // namespace

std::string printable(const std::string& text, std::size_t max) {
    std::string shown = escaped(text.substr(0, max), true);
    return text.size() > max ? shown + "..." : shown;
}

std::string terminal_safe(const std::string& text) {
    return escaped(text, false);
}

std::string seconds_text(double seconds) {
    char text[32];
    std::snprintf(text, sizeof text, "%g s", seconds);
    return text;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

namespace {
std::mutex stderr_mutex;   // narration and the status line come from two threads
std::string status_shown;  // the status line now on screen, "" if none

void erase_status() {
    if (!status_shown.empty())
        std::fprintf(stderr, "\r%s\r", std::string(status_shown.size(), ' ').c_str());
}
}  // namespace

void print_line(const std::string& line) {
    std::lock_guard<std::mutex> lock(stderr_mutex);
    erase_status();
    std::fprintf(stderr, "%s\n%s", terminal_safe(line).c_str(), status_shown.c_str());
    std::fflush(stderr);
}

void show_status_line(const std::string& status) {
    std::lock_guard<std::mutex> lock(stderr_mutex);
    erase_status();
    status_shown = status;
    std::fprintf(stderr, "%s", status.c_str());
    std::fflush(stderr);
}

std::string failure_text(const std::string& call, int err) {
    return call + ": " + net::error_text(err) + " (" + net::error_name(err) + ")";
}

Failure::Failure(const std::string& call, int err) : std::runtime_error(failure_text(call, err)) {}

Failure::Failure(const std::string& call, const std::string& reason)
    : std::runtime_error(call + ": " + reason) {}

}  // namespace text
