// Chapter 1, step 1 - resolve the name and connect.
//
// chapter1.cpp includes this file for its first step; chapter 4 includes it
// too, and connects the way this chapter teaches.
//
// Python: socket.socket(AF_INET, SOCK_STREAM), which asks for SOCK_CLOEXEC
// too (the descriptor is not inherited by programs it starts)
// [claim:python-socket-cloexec], then sock.connect((host, port)), one blocking
// connect() call [claim:python-connect-blocking]; for a name it resolves with
// getaddrinfo first (CPython's setipaddr(): read, not run). chapter::resolve() (common/chapter.cpp)
// calls getaddrinfo with AF_UNSPEC: any family, so "::1" and IPv6-only hosts
// work too, where the tutorial's socket is AF_INET only. It returns a list of
// addresses, and we try each in turn until one connects.
#pragma once

#include "chapter.h"
#include "platform.h"
#include "text.h"
#include "trace.h"

#include <string>

namespace chapter1 {

inline net::Socket connect_to_host(const chapter::Options& options) {
    chapter::AddressList addresses = chapter::resolve(options);
    // lab step 1: for each address: socket(), the time limits, connect(); return the first
    chapter::Failure last_failure("connect " + options.host, "no address to try");
    for (const addrinfo* address = addresses.get(); address; address = address->ai_next) {
        std::string where = text::address_text(address->ai_addr);
        net::Socket sock(traced(
            ::socket(address->ai_family, address->ai_socktype, address->ai_protocol), "socket",
            address->ai_family == AF_INET6 ? "AF_INET6" : "AF_INET", "SOCK_STREAM"));
        if (!sock.valid()) {
            last_failure = chapter::Failure("socket", net::last_error());
            continue;
        }
        net::no_sigpipe(sock.get());

        // A blocking socket waits as long as it takes: forever, if the server
        // never answers. We promise never to hang without bound, so we give
        // the kernel a limit for every blocking receive and send (chapter 2 is
        // about these options and Python's settimeout). A recv that waited
        // that long fails with EAGAIN, WSAETIMEDOUT on Windows
        // [claim:rcvtimeo-bounds-recv].
        chapter::set_wait_limit(options, sock.get(), SO_RCVTIMEO, true);
        // On Linux SO_SNDTIMEO bounds a blocking connect too, which then fails
        // with EINPROGRESS [claim:linux-sndtimeo-bounds-connect]. Windows
        // ignores it for connect [claim:windows-sndtimeo-does-not-bound-connect]
        // and waits for its own TCP retries; chapter 3 bounds connect the
        // portable way.
        chapter::set_wait_limit(options, sock.get(), SO_SNDTIMEO, true);

        chapter::narrate(options, "trying %s", where.c_str());
        // connect() sends a SYN and sleeps until the SYN-ACK (connected), an
        // RST (ECONNREFUSED: nothing listens on that port [claim:connect-refused]),
        // an ICMP error (EHOSTUNREACH, ENETUNREACH), or the time limit.
        int result = traced(
            ::connect(sock.get(), address->ai_addr, static_cast<socklen_t>(address->ai_addrlen)),
            "connect", sock.get(), where);
        if (result == 0) {
            chapter::narrate(options, "connected to %s", where.c_str());
            return sock;
        }
        int err = net::last_error();
        if (net::is_in_progress(err) || net::is_timed_out(err)) {  // the time limit ran out
            chapter::check_max_time(options);  // --max-time, if that is what ran out
            last_failure = chapter::Failure(
                "connect " + where, "no answer within " + chapter::seconds_text(options.timeout) +
                                        " (" + net::error_name(err) + ")");
        } else {
            last_failure = chapter::Failure("connect " + where, err);
        }
        chapter::narrate(options, "%s", last_failure.what());
        // `sock` is closed here; the next address gets a fresh socket.
    }
    throw last_failure;
}

}  // namespace chapter1
