// The response reader (common/response.h) on its own: where a response ends,
// fed in every way recv could cut it (all at once, and one byte at a time),
// and every kind of broken response. No sockets: this is parsing; the
// end-to-end tests run it against the lab server and nginx.
#include "chapter.h"
#include "harness.h"
#include "response.h"

#include <algorithm>
#include <string>

namespace {

// What feeding `bytes` did: "complete", "incomplete", or the failure's text.
// `step` bytes per take(); at_eof() after the last one when `eof` is set.
std::string outcome(const std::string& bytes, std::size_t step, bool eof,
                    chapter::ResponseReader& reader) {
    try {
        for (std::size_t at = 0; at < bytes.size(); at += step)
            reader.take(bytes.data() + at, std::min(step, bytes.size() - at));
        if (eof) reader.at_eof();
        return reader.complete() ? "complete" : "incomplete";
    } catch (const chapter::Failure& failure) {
        return failure.what();
    }
}

// The same outcome whole and byte by byte; returns it.
std::string fed(const std::string& bytes, bool eof = false,
                chapter::ResponseReader* kept = nullptr) {
    chapter::ResponseReader whole, bytewise;
    std::string at_once = outcome(bytes, bytes.size() + 1, eof, whole);
    std::string one_by_one = outcome(bytes, 1, eof, bytewise);
    EXPECT(at_once == one_by_one, "whole: '" + at_once + "', byte by byte: '" + one_by_one + "'");
    if (kept) *kept = whole;
    return at_once;
}

const std::string ok_head = "HTTP/1.1 200 OK\r\n";

}  // namespace

TEST_CASE("content-length-ends-the-response") {
    chapter::ResponseReader r;
    std::string got = fed(ok_head + "Content-Length: 5\r\n\r\nhello", false, &r);
    EXPECT(got == "complete", got);
    EXPECT(r.body_bytes() == 5, std::to_string(r.body_bytes()) + " body bytes");
    EXPECT(r.status_line() == "HTTP/1.1 200 OK", r.status_line());
    EXPECT(r.how_it_ended() == "the response ended at its Content-Length: 5 body bytes",
           r.how_it_ended());
    got = fed(ok_head + "content-LENGTH:   0  \r\n\r\n");
    EXPECT(got == "complete", "Content-Length 0 (any case, spaces): " + got);
    got = fed(ok_head + "Content-Length: 5\r\n\r\nhel");
    EXPECT(got == "incomplete", "3 of 5 bytes: " + got);
}

TEST_CASE("chunked-ends-at-the-last-chunk") {
    chapter::ResponseReader r;
    std::string chunked = ok_head +
                          "Transfer-Encoding: gzip, Chunked\r\nContent-Length: 999\r\n\r\n"
                          "5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
    std::string got = fed(chunked, false, &r);
    EXPECT(got == "complete", got);
    EXPECT(r.body_bytes() == 15, std::to_string(r.body_bytes()) + " body bytes");
    // Both framings: RFC 9112 (6.3) says Transfer-Encoding wins, and that the
    // response "ought to be handled as an error": the narration says so.
    EXPECT(r.how_it_ended() ==
               "the response ended with its last chunk: 15 body bytes in 2 chunks; it also had a "
               "Content-Length, which Transfer-Encoding overrides (RFC 9112, 6.3)",
           r.how_it_ended());
    got = fed(chunked.substr(0, chunked.size() - 2));
    EXPECT(got == "incomplete", "before the trailers' empty line: " + got);
}

TEST_CASE("no-length-ends-at-fin") {
    chapter::ResponseReader r;
    std::string got = fed(ok_head + "Content-Type: text/plain\r\n\r\nall of this", true, &r);
    EXPECT(got == "complete", got);
    EXPECT(r.body_bytes() == 11, std::to_string(r.body_bytes()) + " body bytes");
    got = fed(ok_head + "Content-Type: text/plain\r\n\r\nall of this");
    EXPECT(got == "incomplete", "before the FIN: " + got);
    // No status line at all (HTTP/0.9, an echo): every byte is body, until the FIN.
    got = fed("Hello from the lab server.\n", true, &r);
    EXPECT(got == "complete", got);
    EXPECT(r.body_bytes() == 27 && r.status_line().empty(),
           std::to_string(r.body_bytes()) + " bytes, status line '" + r.status_line() + "'");
    got = fed("HTTP", true);
    EXPECT(got.find("response truncated: the server closed after 4 bytes") == 0, got);
}

TEST_CASE("interim-and-bodiless-responses") {
    std::string got = fed("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok_head +
                          "Content-Length: 2\r\n\r\nok");
    EXPECT(got == "complete", "a 103 before the 200: " + got);
    got = fed("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n");
    EXPECT(got == "complete", "204 has no body: " + got);
    got = fed("HTTP/1.1 304 Not Modified\r\n\r\n");
    EXPECT(got == "complete", "304 has no body: " + got);
}

TEST_CASE("truncation-is-reported") {
    std::string got = fed("", true);
    EXPECT(got == "recv: the server closed the connection without answering", got);
    got = fed(ok_head + "Content-Length: 10\r\n\r\nhello", true);
    EXPECT(got == "response truncated: 5 of 10 body bytes (the server closed early)", got);
    got = fed(ok_head + "Content-Le", true);
    EXPECT(got ==
               "response truncated: the server closed after 27 bytes, before the end of the "
               "headers (the server closed early)",
           got);
    got = fed(ok_head + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n", true);
    EXPECT(
        got.find(
            "response truncated: 5 body bytes in 1 chunks and the last chunk, but the trailer") ==
            0,
        got);
    got = fed(ok_head + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nab", true);
    EXPECT(got ==
               "response truncated: 7 body bytes in 2 chunks, and no last chunk (the server "
               "closed early)",
           got);
}

TEST_CASE("excess-and-malformed-are-failures") {
    // How many extra bytes it sees depends on how recv cut them: all five
    // at once, or the first one alone.
    chapter::ResponseReader whole, bytewise;
    std::string excess = ok_head + "Content-Length: 5\r\n\r\nhelloEXTRA";
    std::string got = outcome(excess, excess.size(), false, whole);
    EXPECT(got ==
               "response too long: 5 more bytes after the end of the response (the response "
               "ended at its Content-Length: 5 body bytes)",
           got);
    got = outcome(excess, 1, false, bytewise);
    EXPECT(got.find("response too long: 1 more byte after the end") == 0, got);
    got = fed(ok_head + "Content-Length: 5x\r\n\r\nhello");
    EXPECT(got == "response malformed: Content-Length '5x' is not a number of bytes", got);
    got = fed(ok_head + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello");
    EXPECT(got == "response malformed: two different Content-Length headers", got);
    got = fed(ok_head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n");
    EXPECT(got == "response malformed: chunk size line 'zz' is not a hex number", got);
    got = fed(ok_head + "Transfer-Encoding: chunked\r\n\r\n1000000000000000\r\n");
    EXPECT(got == "response malformed: chunk size '1000000000000000' is too large", got);
    got = fed(ok_head + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n");
    EXPECT(got == "response malformed: chunk 1 is longer than its size line said", got);
    got = fed("HTTP/1.1 OK\r\n\r\n");
    EXPECT(got == "response malformed: status line 'HTTP/1.1 OK'", got);
    got = fed(ok_head + "no colon here\r\n\r\n");
    EXPECT(got == "response malformed: header line 'no colon here'", got);
    got = fed(ok_head + "X-Evil: \x1b[2J\r\n" + std::string(70000, 'a'));
    EXPECT(got == "response malformed: status line and headers over 65536 bytes",
           got.substr(0, 120));
    got = fed(ok_head + "Transfer-Encoding: chunked\r\n\r\n5;" + std::string(9000, 'e'));
    EXPECT(got.find("response malformed: a chunk-size line over 8192 bytes") == 0,
           got.substr(0, 120));
    std::string many_headers;
    for (int i = 0; i < 20000; ++i)
        many_headers += "X: a\r\n";
    got = fed(ok_head + many_headers);
    EXPECT(got == "response malformed: status line and headers over 65536 bytes", got);
}

// What RFC 9112 says of odd but possible responses; each was read wrongly once
// (found by fuzzing against llhttp and CPython: docs/http-framing.md).

TEST_CASE("interim-headers-do-not-frame-the-final-response") {
    // A 100 Continue that carries framing headers: the 200 after it has its own.
    chapter::ResponseReader r;
    std::string got = fed("HTTP/1.1 100 Continue\r\nContent-Length: 10\r\n\r\n" + ok_head +
                              "Content-Length: 4\r\n\r\nbody",
                          false, &r);
    EXPECT(got == "complete" && r.body_bytes() == 4, got);
    got = fed("HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n" + ok_head +
                  "Content-Length: 4\r\n\r\nbody",
              false, &r);
    EXPECT(got == "complete" && r.body_bytes() == 4, got);
    got = fed("HTTP/1.1 103 Early Hints\r\nContent-Length: 4\r\n\r\n" + ok_head +
                  "Content-Length: 3\r\n\r\nabc",
              false, &r);
    EXPECT(got == "complete" && r.body_bytes() == 3, "two different lengths, one per head: " + got);
}

TEST_CASE("after-an-interim-response-only-a-response") {
    std::string got = fed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nbytes", true);
    EXPECT(got.find("response malformed: 101 Switching Protocols") == 0, got);
    got = fed("HTTP/1.1 100 Continue\r\n\r\nnot a status line", true);
    EXPECT(got.find("response malformed: after a 100 interim response") == 0, got);
}

TEST_CASE("transfer-encoding-frames-the-body") {
    // The last coding is not chunked: the body ends at the FIN (RFC 9112, 6.3
    // rule 4), whatever the Content-Length says (rule 3).
    chapter::ResponseReader r;
    std::string got =
        fed(ok_head + "Transfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nabcdef", true, &r);
    EXPECT(got == "complete" && r.body_bytes() == 6, got);
    EXPECT(r.how_it_ended().find("Transfer-Encoding 'gzip' does not end in chunked") !=
               std::string::npos,
           r.how_it_ended());
    // Two lines are one list (RFC 9110, 5.3): "gzip" then "chunked" is chunked.
    got = fed(ok_head +
                  "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "3\r\nabc\r\n0\r\n\r\n",
              false, &r);
    EXPECT(got == "complete" && r.body_bytes() == 3, got);
    got = fed(ok_head +
                  "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"
                  "3\r\nabc\r\n0\r\n\r\n",
              true, &r);
    EXPECT(got == "complete" && r.body_bytes() == 13, "chunked, gzip: to the FIN: " + got);
}

TEST_CASE("field-lines-as-rfc-9112-reads-them") {
    // Whitespace before the colon must be refused (5.1): it once dropped the field.
    std::string got = fed(ok_head + "Content-Length : 4\r\n\r\nbody", true);
    EXPECT(got.find("response malformed: whitespace before the colon") == 0, got);
    // A bare CR inside a line is invalid (2.2).
    got = fed(ok_head + "X-A: 1\rContent-Length: 4\r\n\r\nbody", true);
    EXPECT(got.find("response malformed: a CR inside a line") == 0, got);
    // A NUL in a field must be refused or read as a space (RFC 9110, 5.5).
    got = fed(
        ok_head + std::string("Transfer-Encoding: chunked\0\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 46),
        true);
    EXPECT(got.find("response malformed: a NUL byte in a line") == 0, got);
    // obs-fold: a user agent reads it as a space (5.2).
    chapter::ResponseReader r;
    got = fed(ok_head + "X-Long: one\r\n two\r\nContent-Length:\r\n\t4\r\n\r\nbody", false, &r);
    EXPECT(got == "complete" && r.body_bytes() == 4, "a folded Content-Length: " + got);
    got = fed(ok_head + " X-Folded: before any field\r\n\r\n", true);
    EXPECT(got.find("response malformed: whitespace before the first header line") == 0, got);
    // A field line may be as long as the head allows.
    got = fed(ok_head + "Content-Security-Policy: " + std::string(9000, 'p') +
                  "\r\nContent-Length: 2\r\n\r\nok",
              false, &r);
    EXPECT(got == "complete" && r.body_bytes() == 2, got.substr(0, 120));
}

TEST_CASE("status-line-and-chunk-size-shapes") {
    std::string got = fed("HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", true);
    EXPECT(got == "response malformed: status line 'HTTP/1.1 2000 OK'", got);
    got = fed("HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok");
    EXPECT(got == "complete", "no reason phrase: " + got);
    got = fed("HTTP/x.y 200 OK\r\nContent-Length: 2\r\n\r\nok", true);
    EXPECT(got.find("response malformed: status line") == 0, got);
    chapter::ResponseReader r;
    got = fed(ok_head + "Transfer-Encoding: chunked\r\n\r\n0000000000000003\r\nabc\r\n0\r\n\r\n",
              false, &r);
    EXPECT(got == "complete" && r.body_bytes() == 3, "leading zeros (7.1): " + got);
    got = fed("HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok", true);
    EXPECT(got.find("response malformed: status line") == 0, "HTTP/2 in text: " + got);
    got = fed(ok_head + "Content-Length: 0000000000000000002\r\n\r\nok", false, &r);
    EXPECT(got == "complete" && r.body_bytes() == 2, "19 digits, 18 of them leading zeros: " + got);
    // The chunk-size line limit is the same whether the line ends in CRLF or LF.
    std::string longest = "5;x=" + std::string(8188, 'v');
    for (const char* end : {"\r\n", "\n"}) {
        got = fed(ok_head + "Transfer-Encoding: chunked\r\n\r\n" + longest + end +
                  "hello\r\n0\r\n\r\n");
        EXPECT(got == "complete", "an 8192-byte chunk-size line: " + got.substr(0, 100));
        got = fed(ok_head + "Transfer-Encoding: chunked\r\n\r\n" + longest + "v" + end +
                  "hello\r\n0\r\n\r\n");
        EXPECT(got.find("response malformed: a chunk-size line over 8192 bytes") == 0,
               got.substr(0, 100));
    }
    for (const char* size : {"-5", "0x5", "1_0", "+5", " 5"}) {
        got = fed(ok_head + "Transfer-Encoding: chunked\r\n\r\n" + size + "\r\nhello\r\n0\r\n\r\n");
        EXPECT(got.find("response malformed: chunk size line") == 0,
               std::string(size) + ": " + got);
    }
}
