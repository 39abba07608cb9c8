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

#include "../01_blocking_client/connect.h"  // chapter 1's connect_to_host
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
    // lab step 1: close() the socket (release it from its owner first)
    net::socket_t fd = sock.release();
    traced(net::close_socket(fd), "close", fd);
    narrate(options, "closed the socket");
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
    // lab step 2: send our FIN with shutdown(SHUT_WR); we can still receive
    traced(::shutdown(sock.get(), net::shut_wr), "shutdown", sock.get(), "SHUT_WR");
    narrate(options, "shutdown(SHUT_WR): our FIN follows the request; we can still receive");
    receive_response(options, sock.get(),
                     "the server stopped after our FIN: many HTTP servers take a half-close as "
                     "the client giving up; try --close none");
    close_traced(options, sock);
    // We sent the first FIN: we are the "active closer", and this side of the
    // connection stays in TIME_WAIT for a while after close
    // [claim:active-closer-ends-in-time-wait], so late packets of this
    // connection cannot be mistaken for a new one on the same ports.
    narrate(options, "our FIN went first: this side now waits in TIME_WAIT");
}

// rd: shutdown(SHUT_RD) ("SD_RECEIVE") stops *our* receiving and sends
// nothing to the server. What recv does next, the platforms disagree on:
// Linux returns 0 at once, like an EOF that never came from the peer; Windows
// fails with WSAESHUTDOWN [claim:recv-after-shut-rd].
void end_rd(const Options& options, net::Socket& sock) {
    // lab step 3: shutdown(SHUT_RD), one recv() to see what it does, then the request
    traced(::shutdown(sock.get(), net::shut_rd), "shutdown", sock.get(), "SHUT_RD");
    char buffer[16];
    long n =
        traced(::recv(sock.get(), buffer, sizeof buffer, 0), "recv", sock.get(), sizeof buffer);
    int err = net::last_error();
    if (n < 0)
        narrate(options, "recv after SHUT_RD failed at once: %s (%s)", net::error_name(err).c_str(),
                net::error_text(err).c_str());
    else
        narrate(options,
                "recv after SHUT_RD returned %ld at once: not the server's FIN, our own SHUT_RD",
                n);
    send_all(sock.get(), chapter::http_request(options));  // sending still works
    traced(::shutdown(sock.get(), net::shut_wr), "shutdown", sock.get(), "SHUT_WR");
    narrate(options, "the request went out after SHUT_RD; the echo has nowhere to go");
    close_traced(options, sock);
    narrate(options, "the echo will arrive at a closed socket: our kernel answers it with an RST");
}

// rdwr: both directions at once, then close. The server gets our FIN; what it
// sends back arrives at a socket that takes nothing more, and our kernel
// answers that data with an RST [claim:data-after-shutdown-both-resets] (on
// Linux, nstat's TcpExtTCPAbortOnData counts it; Microsoft documents the same
// for Windows after SD_RECEIVE: read, not run, and Wine does not do it). The echo server does not
// notice: it read our FIN first and closes without reading again. The same
// happens in rd mode, whose socket is closed when the echo arrives.
void end_rdwr(const Options& options, net::Socket& sock) {
    // lab step 4: send the request, shutdown(SHUT_RDWR), close
    send_all(sock.get(), chapter::http_request(options));
    traced(::shutdown(sock.get(), net::shut_rdwr), "shutdown", sock.get(), "SHUT_RDWR");
    narrate(options, "shutdown(SHUT_RDWR): no more sending, no more receiving");
    close_traced(options, sock);
    narrate(options, "the echo will arrive at a closed socket: our kernel answers it with an RST");
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
    // lab step 5: SO_LINGER {on, 0}, then close: an abort
    linger abort_on_close{};
    abort_on_close.l_onoff = 1;
    abort_on_close.l_linger = 0;
    traced(::setsockopt(sock.get(), SOL_SOCKET, SO_LINGER,
                        reinterpret_cast<const char*>(&abort_on_close), sizeof abort_on_close),
           "setsockopt", sock.get(), "SO_LINGER {1, 0}");
    close_traced(options, sock);
    narrate(options, "close with SO_LINGER {on, 0}: an RST instead of a FIN");
}

// unread: closing while received bytes sit unread also sends an RST, not a
// FIN [claim:close-with-unread-data-sends-rst]: the kernel tells the peer its
// data was never read. We wait until the echo is in our receive buffer first.
void end_unread(const Options& options, net::Socket& sock) {
    // lab step 6: send the request, wait until the answer is here, close without reading it
    send_all(sock.get(), chapter::http_request(options));
    short revents = 0;
    int ready = traced(
        net::poll_one(sock.get(), POLLIN, static_cast<int>(options.timeout * 1000), &revents),
        "poll", sock.get(), "POLLIN");
    narrate(options, ready > 0 ? "the answer is in our receive buffer; we close without reading it"
                               : "no answer arrived; we close anyway");
    close_traced(options, sock);
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
