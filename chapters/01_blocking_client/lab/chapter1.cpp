// Lab 1 starter: chapter 1 with its socket work taken out (see ../README.md).
//
// Write the TODO steps, in order, where they are; leave the rest of the file
// as it is. Build and grade from the repository's root folder:
//
//   make lab1 && ./lab1       runs, and stops at the first step not written
//   make check-lab1             numbered checks of your program, and a score
//
// A run stops at the first unwritten step it reaches, which is not always the
// lowest number. This lab's runs reach them in the order 1, 2, 3, 4.
//
// (Made from ../chapter1.cpp by tests/lab_starters.py --write.)
//
// Chapter 1 - a blocking TCP client.
//
// The tutorial's "previous article" built this client in Python:
//
//     sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
//     sock.connect((host, port))
//     sock.sendall(request)
//     data = sock.recv(4096)
//     sock.close()
//
// Here is the same client one level down, at the system calls Python makes for
// each of those lines. Every call *blocks*: the thread sleeps inside the kernel
// until the call can finish. That is the simplest way to write a client, and it
// is what a new socket does until you ask for something else (chapter 2).
//
// Run it:  make chapter1 && ./chapter1             (talks to the built-in lab server)
//          ./chapter1 --scenario drip --trace      (watch recv return piece by piece)
//          ./chapter1 example.org 80 > page.txt    (stdout gets exactly the bytes received)

#include "chapter.h"
#include "connect.h"  // step 1: chapter1::connect_to_host
#include "platform.h"
#include "response.h"
#include "trace.h"

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <string>

using chapter::Failure;
using chapter::narrate;
using chapter::Options;
using chapter::seconds_text;

namespace {

const chapter::Program program = {
    "chapter1",
    "Chapter 1: a blocking client (connect, send, recv until EOF, close).",
    "hello",
    {}};

// Step 1 - resolve the name and connect: chapter1::connect_to_host, in
// connect.h beside this file (chapter 4 connects with it too).

// Step 2 - send the request.
//
// Python: sock.sendall(request). send() may take fewer bytes than we asked:
// it copies what fits into the kernel's send buffer and returns that count.
// On Linux that happens when SO_SNDTIMEO runs out half way; Winsock fails the
// whole call with WSAETIMEDOUT instead [claim:send-partial-on-timeout].
// So, like sendall(), we loop until every byte is gone. A signal arriving
// before anything was copied makes it fail with EINTR: we simply call again.
void send_all(const Options& options, net::socket_t fd, const std::string& data) {
    // TODO 2: send every byte of data, however many send() calls it takes.
    chapter::todo(2, "send every byte of data, however many send() calls it takes");
}

// Step 3 - receive the whole response.
//
// Python: data = sock.recv(4096). The tutorial stops after one recv, but one
// recv returns whatever has arrived so far, as soon as anything has arrived,
// not a whole response [claim:blocking-recv-returns-what-is-there]. A response
// larger than one buffer, or one that comes in pieces, is cut short.
//
// So we loop, copying each piece to stdout at once (memory stays at one
// buffer, whatever the size), until the response says it is complete. Only
// the response knows its length: a Content-Length header, a chunked body
// whose last chunk has size 0, or, when it has neither, the server's FIN,
// when recv returns 0 [claim:recv-zero-at-eof]. chapter::ResponseReader
// (common/response.h) follows that framing as the bytes stream past. A FIN
// before the promised end is a truncated response, and we say so: exit 0
// means the whole response arrived, not just "the connection ended".
void receive_response(const Options& options, net::socket_t fd) {
    // TODO 3: recv() until the response is complete, each piece to stdout.
    chapter::todo(3, "recv() until the response is complete, each piece to stdout");
}

}  // namespace

int main(int argc, char** argv) {
    net::Startup startup;  // WSAStartup on Windows, nothing on POSIX
    Options options;
    int status = chapter::parse_command_line(argc, argv, program, options);
    if (status >= 0) return status;

    try {
        auto server = chapter::start_builtin_server(options);  // only without HOST
        net::Socket sock = chapter1::connect_to_host(options);
        send_all(options, sock.get(), chapter::http_request(options));
        receive_response(options, sock.get());

        // Step 4 - close. Python: sock.close(), one close() call
        // [claim:python-shutdown-close]. It releases the descriptor;
        // the kernel still delivers anything queued and ends the connection
        // with a FIN (chapter 4 is about the ways to end a connection).
        // TODO 4: close the socket.
        chapter::todo(4, "close the socket");
    } catch (const Failure& failure) {
        return chapter::report(program, failure);
    }
    return 0;
}
