// Lab 1 starter: chapter 1's connect.h with its socket work taken out (see ../README.md).
//
// lab/chapter1.cpp includes this file: its TODO is one of lab 1's steps,
// written in order with the others. Leave the rest of the file as it is.
//
// (Made from ../connect.h by tests/lab_starters.py --write.)
//
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
    // TODO 1: for each address: socket(), the time limits, connect(); return the first.
    chapter::todo(1, "for each address: socket(), the time limits, connect(); return the first");
}

}  // namespace chapter1
