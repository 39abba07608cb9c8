// http_answers.h - the HTTP the lab server speaks: when a request head is
// complete, and the bytes of each answer.
//
// Pure functions of bytes, no sockets: the event loop (labserver_loop.cpp)
// decides when to read and send, these decide what. tests/labserver_tests.cpp
// checks them, and tests/fuzz/fuzz_request_head.cpp feeds parse_head any bytes
// a client could send.
#pragma once

#include "scenario.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace lab {

// What the head of a request told us.
struct Request {
    std::string line;     // "GET / HTTP/1.1", without the line end
    std::string target;   // "/"
    bool http09 = false;  // "GET /" with no version: answer with the body alone
};

// Has the whole request head arrived? `head` is every byte read so far.
//   complete    a request line (RFC 9112, 3) and header lines up to the first
//               empty line; or the tutorial's "GET /\n", an HTTP/0.9 request,
//               complete at its newline. Lines may end in CRLF or a bare LF
//               (RFC 9112, 2.2), and one or two empty lines may come first.
//   incomplete  no error so far: wait for more bytes
//   bad         these bytes cannot be the start of a request (binary bytes, a
//               bare CR, a header line with no colon or a folded one): answer 400
// Once complete or bad, more bytes after `head` do not change the answer.
enum class HeadStatus { incomplete, complete, bad };
HeadStatus parse_head(const std::string& head, Request& request);

// A request head still incomplete at this size is refused (431): a client
// cannot make the server hold more than this for it while it waits.
constexpr std::size_t max_head_size = 16 * 1024;

// "HTTP/1.1 200 OK", Content-Type, Content-Length and "Connection: close": the
// head of every answer with a length. binary's type is application/octet-stream;
// keep-open's connection is "keep-alive".
std::string response_head(std::uint64_t content_length, const char* status = "200 OK",
                          const char* content_type = "text/plain",
                          const char* connection = "close");

// A short answer that is not 200 (400, 408, 431, 503): head and body.
std::string short_answer(const char* status, const std::string& body);

// "Hello from the lab server.\nYou asked for /\n"
std::string hello_body(const Request& request);

// The hello answer: head and body, or the body alone for HTTP/0.9. keep-open
// gives it with "Connection: keep-alive".
std::string hello_response(const Request& request, const char* connection = "close");

// The hello body with Transfer-Encoding: chunked (the chunked scenario): in
// chunks of 1, 2, 4, 8... bytes, an extension on the first chunk, and a
// trailer field after the last chunk, of size 0. With a `cut` (not
// Scenario::no_cut), it stops after that many body bytes, before the last chunk.
std::string chunked_response(const std::string& body, std::uint64_t cut);

// Byte `offset` of the body of a `big` response: printable lines of 64 bytes,
// repeating every 4096 bytes, so a client can check every byte it received.
char big_body_byte(std::uint64_t offset);

// One MiB of that body, built once: a multiple of its 4096-byte period, so
// byte `offset` of any body is byte `offset % big_block_size` of this block.
constexpr std::uint64_t big_block_size = 1024 * 1024;
const std::string& big_block();

// Byte `offset` of the body of a `binary` response: every byte value, and a
// zero in every 7 bytes (the rule is in scenario.h, beside binary_most).
char binary_body_byte(std::uint64_t offset);

// The binary answer: a head (application/octet-stream) and `kibibytes` KiB
// of that body, or the body alone for HTTP/0.9.
std::string binary_response(const Request& request, std::uint64_t kibibytes);

}  // namespace lab
