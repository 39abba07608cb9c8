// response.h - where does an HTTP response end?
//
// The tutorial calls recv(4096) once and takes that as "the response". A
// socket has no idea where a response ends: recv returns whatever has arrived
// so far. Only the response itself says how long it is, in one of three ways
// (RFC 9112, section 6.3):
//
//   Content-Length: N             the body is exactly N bytes
//   Transfer-Encoding: chunked    the body comes in pieces, each led by its size
//                                 in hex; a piece of size 0 is the last
//   neither (or no status line)   the body ends when the server closes (its FIN)
//
// A ResponseReader follows the response as the bytes stream past, without
// keeping the body: give it every piece recv returned, in order, and it says
// when the response is complete. A client stops reading there; it does not
// need to wait for the server's FIN. At EOF (recv returned 0) it says whether
// the response was whole. Bytes after the end, a bad Content-Length or a
// malformed chunk size are failures, said plainly.
//
// The rules of RFC 9112 it follows where servers differ (docs/http-framing.md
// compares them with llhttp's and CPython's, response by response):
//   - 1xx heads (100 Continue, 103 Early Hints) come before the real one and
//     frame nothing; a 101 is refused, since we never ask for an upgrade.
//   - Transfer-Encoding overrides Content-Length (6.3); when its last coding
//     is not chunked, the body ends at the FIN. Having both is narrated.
//   - A folded header line is one value (5.2); a space before the colon (5.1)
//     or a CR that is not part of a line's end (2.2) is malformed.
//   - Lines may end in a bare LF (2.2); the head may be 64 KiB.
//
//   chapter::ResponseReader response;
//   for (;;) {
//       long n = ::recv(fd, buffer, sizeof buffer, 0);
//       if (n > 0) { write_stdout(buffer, n); response.take(buffer, n);
//                    if (response.complete()) break; }
//       else if (n == 0) { response.at_eof(); break; }   // throws if cut short
//       ...
//   }
//   narrate(options, "%s", response.how_it_ended().c_str());
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace chapter {

class ResponseReader {
public:
    // The next received bytes, in order. Throws Failure ("response malformed:
    // ..." or "response too long: ...") when they cannot be part of this
    // response. Nothing is kept but the current header or chunk-size line.
    void take(const char* data, std::size_t size);

    // The whole response has arrived (by Content-Length, the last chunk, or,
    // after at_eof(), the server's FIN).
    bool complete() const { return state_ == State::done; }

    // The server closed the connection (recv returned 0). Completes a response
    // that ends at the FIN; otherwise throws Failure: "recv: the server closed
    // the connection without answering", or "response truncated: 1000 of 1048576
    // body bytes (<why>)". `why` defaults to "the server closed early".
    void at_eof(const std::string& why = "the server closed early");

    // For the narration: "HTTP/1.1 200 OK" ("" before it arrived, or for an
    // answer with no status line).
    const std::string& status_line() const { return status_line_; }
    // "the response ended at its Content-Length: 127 body bytes", and so on.
    std::string how_it_ended() const;

    // The body bytes still to come, when the response said how many
    // (Content-Length); 0 when it did not, or not yet.
    std::uint64_t body_bytes_coming() const { return state_ == State::body_by_length ? left_ : 0; }

    std::uint64_t bytes_taken() const { return bytes_taken_; }
    std::uint64_t body_bytes() const { return body_bytes_; }

private:
    enum class State {
        start,           // nothing yet, or not yet 5 bytes: "HTTP/" or a body-only answer?
        head,            // status line and header lines, up to the empty line
        body_by_length,  // Content-Length bytes to go
        chunk_size,      // the line with a chunk's size in hex
        chunk_data,      // the chunk's bytes
        chunk_end,       // the CRLF after a chunk's bytes
        trailers,        // header lines after the last chunk, up to the empty line
        until_eof,       // neither length nor chunks: the server's FIN ends it
        done,
    };
    enum class Ending { none, length, chunks, eof, no_status_line, no_body };

    bool take_line_byte(char c);  // collect line_; true when a whole line is there
    void status_line(const std::string& line);
    void field_line(const std::string& line);
    void end_of_head();
    void chunk_size_line(const std::string& line);
    std::string overridden_length() const;
    [[noreturn]] void malformed(const std::string& what) const;

    State state_ = State::start;
    Ending ending_ = Ending::none;
    std::string line_;   // the header or chunk-size line being collected
    std::string field_;  // the last header line, judged once the next shows it is not folded
    std::string status_line_;
    int status_ = 0;
    int interim_responses_ = 0;  // 1xx heads before the final one
    int last_interim_status_ = 0;
    std::uint64_t head_bytes_ = 0;
    bool has_codings_ = false;  // a Transfer-Encoding header came
    std::string codings_;       // its codings, every line's, "gzip, chunked"
    bool has_length_ = false;
    std::uint64_t content_length_ = 0;
    std::uint64_t left_ = 0;  // body_by_length, chunk_data: bytes still to come
    std::uint64_t chunks_ = 0;
    std::uint64_t bytes_taken_ = 0;
    std::uint64_t body_bytes_ = 0;
};

}  // namespace chapter
