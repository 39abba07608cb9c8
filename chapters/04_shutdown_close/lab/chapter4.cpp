// Lab 4 starter: chapter 4 with its socket work taken out (see ../README.md).
//
// Write the TODO steps, in order, where they are; leave the rest of the file
// as it is. Build and grade from the repository's root folder:
//
//   make lab4 && ./lab4       runs, and stops at the first step not written
//   make check-lab4             numbered checks of your program, and a score
//
// A run stops at the first unwritten step it reaches, which is not always the
// lowest number. The default ending (--close none) reaches step 1 alone; each
// other ending reaches its own step, then 1: half 2, rd 3, rdwr 4,
// linger0 5, unread 6.
//
// (Made from ../chapter4.cpp by tests/lab_starters.py --write.)
//
// Chapter 4 - shutdown and close: half-close, RST, and what the peer sees.
//
// The tutorial ends with
//
//     tcpSock.shutdown(socket.SHUT_RD)   # "any further ends to this socket are disallowed"
//     tcpSock.close()
//
// Python's shutdown() and close() are the system calls of the same names,
// one call each [claim:python-shutdown-close].
//
// SHUT_RD does not do that. shutdown() ends one direction of the connection,
// or both, for the socket itself, whichever descriptor it is called on; close()
// releases one descriptor, and the connection ends only with the last one
// [claim:shutdown-acts-on-every-descriptor-close-on-one]. This
// chapter ends the same connection in six ways (--close MODE) and, because the
// lab server runs in this process, narrates what the other side saw.
//
// clang-format off
//   mode      what this client does                          what the server sees
//   --------  ---------------------------------------------  ---------------------------------
//   none      send, read the whole response, close           our FIN after its answer
//   half      send, shutdown(SHUT_WR), read, close           our FIN right after the request
//   rd        shutdown(SHUT_RD), recv, send, SHUT_WR, close  nothing of the SHUT_RD; our FIN;
//                                                            an RST for its echo (unread)
//   rdwr      send, shutdown(SHUT_RDWR), close               our FIN; an RST for its echo,
//                                                            which it never reads
//   linger0   send, SO_LINGER {on, 0}, close                 an RST: "connection reset"
//   unread    send, close with the answer unread             an RST: "connection reset"
// clang-format on
//
// `none` is the default: it is what HTTP clients do (curl, browsers, Python's
// http.client), and the only one that gets a whole answer from every web
// server. `half` is right for protocols that read the request until EOF (an
// echo server, many simple line protocols), but many HTTP servers, nginx
// among them, take a FIN as the client giving up and stop sending.
//
// Run it:  make chapter4 && ./chapter4                        (the HTTP way: no shutdown)
//          ./chapter4 --scenario echo --close half           (an echo needs our FIN)
//          ./chapter4 --scenario echo --close none --timeout 1  (...or it never ends)
//          ./chapter4 --close linger0

#include "../../01_blocking_client/connect.h"  // chapter 1's connect_to_host
#include "chapter.h"
#include "labserver.h"
#include "platform.h"
#include "response.h"
#include "trace.h"

#include <cinttypes>
#include <cstdint>
#include <memory>
#include <string>

using chapter::Failure;
using chapter::narrate;
using chapter::Options;

namespace {

std::string close_mode = "none";  // --close

const chapter::Program program = {
    "chapter4",
    "Chapter 4: shutdown and close (half-close, SHUT_RD, SHUT_RDWR, SO_LINGER, RST).",
    "hello",
    {{"close", "MODE", "none (default), half, rd, rdwr, linger0 or unread", &close_mode, nullptr}}};

void send_all(net::socket_t fd, const std::string& data) {
    for (std::size_t sent = 0; sent < data.size();) {
        long n = traced(
            ::send(fd, data.data() + sent, static_cast<int>(data.size() - sent), net::send_flags),
            "send", fd, data.size() - sent);
        if (n < 0 && net::is_interrupted(net::last_error())) continue;
        if (n < 0) throw Failure("send", net::last_error());
        sent += static_cast<std::size_t>(n);
    }
}

// Read the whole response (chapter::ResponseReader, as in chapter 1: its
// Content-Length, its last chunk, or the server's FIN), copying it to stdout.
// A FIN before the end is a truncated response; `why` says what probably
// caused it. A wait longer than --timeout is a failure, with a hint: the usual
// reason is a server still waiting for our FIN.
void receive_response(const Options& options, net::socket_t fd, const std::string& why) {
    static char buffer[64 * 1024];
    chapter::ResponseReader response;
    while (!response.complete()) {
        chapter::set_wait_limit(options, fd, SO_RCVTIMEO);  // shorter near --max-time
        long n = traced(::recv(fd, buffer, sizeof buffer, 0), "recv", fd, sizeof buffer);
        if (n > 0) {
            chapter::write_stdout(buffer, static_cast<std::size_t>(n));
            response.take(buffer, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0) {
            narrate(options, "recv returned 0: the server's FIN, after %" PRIu64 " bytes",
                    response.bytes_taken());
            response.at_eof(why);
            break;
        }
        int err = net::last_error();
        if (net::is_interrupted(err)) continue;
        if (net::is_timed_out(err)) {
            chapter::check_max_time(options);
            throw Failure("recv", "no data for " + chapter::seconds_text(options.timeout) +
                                      " after " + std::to_string(response.bytes_taken()) +
                                      " bytes; the server may be waiting for our FIN");
        }
        throw Failure("recv", err);
    }
    narrate(options, "%s", response.how_it_ended().c_str());
}

void close_traced(const Options& options, net::Socket& sock) {
    // TODO 1: close() the socket (release it from its owner first).
    chapter::todo(1, "close() the socket (release it from its owner first)");
}

// ---------------------------------------------------------------------------
// The six endings.

// none: send, read the whole response, close; no shutdown at all. This is
// what HTTP clients do: the response says where it ends, so neither side
// needs the other's FIN to know the exchange is over. Against the echo
// server, which echoes until our FIN, it waits until --timeout.
void end_none(const Options& options, net::Socket& sock) {
    send_all(sock.get(), chapter::http_request(options));
    narrate(options, "no shutdown: we read the response, then close");
    receive_response(options, sock.get(), "the server closed early");
    close_traced(options, sock);
}

// half: the request, then our FIN. shutdown(SHUT_WR) ("SD_SEND" on Windows)
// sends a FIN after the data: the server's recv returns 0 and it knows the
// request is complete, while we can still receive its answer
// [claim:shut-wr-peer-reads-eof-and-can-still-send]. An echo server needs it
// to finish. An HTTP server may not answer in full: nginx takes the FIN as
// the client giving up and stops sending; the reader then reports a
// truncated response.
void end_half(const Options& options, net::Socket& sock) {
    send_all(sock.get(), chapter::http_request(options));
    // TODO 2: send our FIN with shutdown(SHUT_WR); we can still receive.
    chapter::todo(2, "send our FIN with shutdown(SHUT_WR); we can still receive");
}

// rd: shutdown(SHUT_RD) ("SD_RECEIVE") stops *our* receiving and sends
// nothing to the server. What recv does next, the platforms disagree on:
// Linux returns 0 at once, like an EOF that never came from the peer; Windows
// fails with WSAESHUTDOWN [claim:recv-after-shut-rd].
void end_rd(const Options& options, net::Socket& sock) {
    // TODO 3: shutdown(SHUT_RD), one recv() to see what it does, then the request.
    chapter::todo(3, "shutdown(SHUT_RD), one recv() to see what it does, then the request");
}

// rdwr: both directions at once, then close. The server gets our FIN; what it
// sends back arrives at a socket that takes nothing more, and our kernel
// answers that data with an RST [claim:data-after-shutdown-both-resets] (on
// Linux, nstat's TcpExtTCPAbortOnData counts it; Microsoft documents the same
// for Windows after SD_RECEIVE: read, not run, and Wine does not do it). The echo server does not
// notice: it read our FIN first and closes without reading again. The same
// happens in rd mode, whose socket is closed when the echo arrives.
void end_rdwr(const Options& options, net::Socket& sock) {
    // TODO 4: send the request, shutdown(SHUT_RDWR), close.
    chapter::todo(4, "send the request, shutdown(SHUT_RDWR), close");
}

// linger0: SO_LINGER {on, 0} turns close into an abort: the kernel drops what
// is queued and sends an RST, and the server's recv fails with ECONNRESET
// [claim:recv-after-rst-fails-econnreset]. No FIN, and no TIME_WAIT on our
// side [claim:linger-zero-leaves-no-time-wait]. We abort once the echo is
// back, so the server is surely waiting in recv when the RST comes.
void end_linger0(const Options& options, net::Socket& sock) {
    std::string request = chapter::http_request(options);
    send_all(sock.get(), request);
    std::uint64_t echoed = 0;
    static char buffer[4096];
    while (echoed < request.size()) {
        long n =
            traced(::recv(sock.get(), buffer, sizeof buffer, 0), "recv", sock.get(), sizeof buffer);
        if (n <= 0)
            throw n == 0 ? Failure("recv", "the server closed before echoing")
                         : Failure("recv", net::last_error());
        chapter::write_stdout(buffer, static_cast<std::size_t>(n));
        echoed += static_cast<std::uint64_t>(n);
    }
    // TODO 5: SO_LINGER {on, 0}, then close: an abort.
    chapter::todo(5, "SO_LINGER {on, 0}, then close: an abort");
}

// unread: closing while received bytes sit unread also sends an RST, not a
// FIN [claim:close-with-unread-data-sends-rst]: the kernel tells the peer its
// data was never read. We wait until the echo is in our receive buffer first.
void end_unread(const Options& options, net::Socket& sock) {
    // TODO 6: send the request, wait until the answer is here, close without reading it.
    chapter::todo(6, "send the request, wait until the answer is here, close without reading it");
}

// --close MODE: the ending of that name.
using Ending = void (*)(const Options&, net::Socket&);
Ending ending_named(const std::string& mode) {
    if (mode == "none") return end_none;
    if (mode == "half") return end_half;
    if (mode == "rd") return end_rd;
    if (mode == "rdwr") return end_rdwr;
    if (mode == "linger0") return end_linger0;
    if (mode == "unread") return end_unread;
    return nullptr;
}

// The lab server runs in this process, so we can ask what it saw. After an
// ending that went as planned, it gets up to 0.5 s to finish its side (rd and
// rdwr close without waiting for its answer). After a failure, which came
// after waiting --timeout already, only stop()'s own 0.25 s: a server that
// has not finished by then has stalled, and --timeout is what we promised.
void narrate_what_the_server_saw(const Options& options, lab::Server* server, bool failed) {
    if (!server) return;  // a HOST was given: its server is not ours to ask
    if (!failed) server->wait_for_finished(1, 0.5);
    server->stop();
    lab::Observed seen = server->observed();
    narrate(options, "the server saw: %" PRIu64 " FIN, %" PRIu64 " reset", seen.eofs_seen,
            seen.resets_seen);
}

}  // namespace

int main(int argc, char** argv) {
    net::Startup startup;  // WSAStartup on Windows, nothing on POSIX
    Options options;
    int status = chapter::parse_command_line(argc, argv, program, options);
    if (status >= 0) return status;
    Ending end = ending_named(close_mode);
    if (!end)
        return chapter::usage_error(
            program,
            "--close: '" + close_mode + "' is not half, none, rd, rdwr, linger0 or unread");

    std::unique_ptr<lab::Server> server;
    try {
        server = chapter::start_builtin_server(options);  // only without HOST
        // Connect as chapter 1 does (its connect.h): blocking, with SO_RCVTIMEO
        // and SO_SNDTIMEO as the limits on every wait (chapter 2 explains them).
        net::Socket sock = chapter1::connect_to_host(options);
        end(options, sock);
        narrate_what_the_server_saw(options, server.get(), false);
    } catch (const Failure& failure) {
        // Our socket is closed by now (it lived in the try block): the server
        // has seen how we ended, and we say what it saw before the error line.
        narrate_what_the_server_saw(options, server.get(), true);
        return chapter::report(program, failure);
    }
    return 0;
}
