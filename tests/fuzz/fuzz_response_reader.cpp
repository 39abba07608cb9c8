// fuzz_response_reader.cpp - chapter::ResponseReader (common/response.h) on
// any bytes a server could send.
//
// The input is everything the server sent before its FIN. recv can cut it
// anywhere, so it is fed three ways: in one piece, one byte at a time, and in
// pieces of sizes drawn from a generator seeded with a hash of the input (so
// a saved input replays the same cuts). Then at_eof(), as at recv() == 0.
//
// What must hold, whatever the bytes:
//   - every feeding ends in exactly one verdict: complete, or a Failure
//     thrown by take() or at_eof() (no other exception, no "neither")
//   - the three feedings agree: the same verdict (the same kind of Failure)
//     and the same body_bytes(): the reader does not depend on where recv cut
//   - once complete() is true it stays true, and take() of even one more
//     byte throws (no state accepts bytes after it said complete)
//   - bytes_taken() never exceeds the bytes given; after a take() that
//     returned, it equals them; body_bytes() <= bytes_taken()
#include "chapter.h"  // chapter::Failure
#include "fuzz.h"
#include "response.h"

#include <cstdio>
#include <string>
#include <vector>

namespace {

// How one feeding ended.
struct Verdict {
    bool complete = false;
    std::string failure;  // the Failure's kind ("response malformed"), when not complete
    std::uint64_t body_bytes = 0;
};

// "response truncated: 10 of 100 body bytes (...)" -> "response truncated".
// The rest of the text counts bytes, which may differ with the cuts (how many
// extra bytes were in the piece that went past the end).
std::string failure_kind(const chapter::Failure& failure) {
    std::string text = failure.what();
    return text.substr(0, text.find(": "));
}

// What holds after every call, whatever it did.
void check_counts(const chapter::ResponseReader& reader, std::uint64_t given, bool was_complete) {
    FUZZ_CHECK(!was_complete || reader.complete(), "complete() went from true to false");
    FUZZ_CHECK(reader.bytes_taken() <= given, "bytes_taken() is more than the bytes given");
    FUZZ_CHECK(reader.body_bytes() <= reader.bytes_taken(), "body_bytes() > bytes_taken()");
    FUZZ_CHECK(!reader.complete() || reader.body_bytes_coming() == 0,
               "complete, yet body_bytes_coming() is not 0");
}

// Feed `data` in pieces of the given sizes (they add up to `size`), then EOF.
Verdict feed(const std::uint8_t* data, const std::vector<std::size_t>& pieces) {
    chapter::ResponseReader reader;
    std::uint64_t given = 0;
    for (std::size_t piece : pieces) {
        const char* bytes = reinterpret_cast<const char*>(data + given);
        bool was_complete = reader.complete();
        given += piece;
        try {
            reader.take(bytes, piece);
        } catch (const chapter::Failure& failure) {
            check_counts(reader, given, was_complete);
            (void)reader.how_it_ended();
            return {false, failure_kind(failure), reader.body_bytes()};
        }
        FUZZ_CHECK(!was_complete, "take() accepted bytes after complete() was true");
        FUZZ_CHECK(reader.bytes_taken() == given, "take() returned without taking every byte");
        check_counts(reader, given, was_complete);
    }

    bool was_complete = reader.complete();
    try {
        reader.at_eof();
    } catch (const chapter::Failure& failure) {
        check_counts(reader, given, was_complete);
        FUZZ_CHECK(!reader.complete(), "at_eof() threw, yet complete() is true");
        return {false, failure_kind(failure), reader.body_bytes()};
    }
    check_counts(reader, given, was_complete);
    FUZZ_CHECK(reader.complete(), "at_eof() returned, yet complete() is false: no verdict");
    (void)reader.how_it_ended();
    Verdict verdict{true, "", reader.body_bytes()};

    // Complete: no state may accept another byte.
    bool threw = false;
    try {
        reader.take("x", 1);
    } catch (const chapter::Failure&) {
        threw = true;
    }
    FUZZ_CHECK(threw, "take() of one more byte after complete() did not throw");
    check_counts(reader, given, true);
    return verdict;
}

// A small generator for the cut points: xorshift64, seeded with the FNV-1a
// hash of the input.
struct Cuts {
    std::uint64_t state = 14695981039346656037ull;
    Cuts(const std::uint8_t* data, std::size_t size) {
        for (std::size_t i = 0; i < size; ++i)
            state = (state ^ data[i]) * 1099511628211ull;
        if (state == 0) state = 1;
    }
    std::uint64_t next() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    }
    // Mostly small pieces (1 to 8 bytes, where lines and CRLFs get cut), one
    // in four up to 512 bytes.
    std::vector<std::size_t> pieces(std::size_t size) {
        std::vector<std::size_t> sizes;
        for (std::size_t left = size; left > 0;) {
            std::uint64_t r = next();
            std::size_t piece =
                static_cast<std::size_t>(r % 4 == 0 ? 1 + (r >> 8) % 512 : 1 + (r >> 8) % 8);
            if (piece > left) piece = left;
            sizes.push_back(piece);
            left -= piece;
        }
        return sizes;
    }
};

void check_same(const Verdict& a, const Verdict& b, const char* how_a, const char* how_b) {
    if (a.complete == b.complete && a.failure == b.failure && a.body_bytes == b.body_bytes) return;
    std::fprintf(stderr, "%s: %s, %llu body bytes\n%s: %s, %llu body bytes\n", how_a,
                 a.complete ? "complete" : a.failure.c_str(),
                 static_cast<unsigned long long>(a.body_bytes), how_b,
                 b.complete ? "complete" : b.failure.c_str(),
                 static_cast<unsigned long long>(b.body_bytes));
    FUZZ_CHECK(false, "the verdict depends on where the bytes were cut");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::size_t> one_piece;
    if (size > 0) one_piece.push_back(size);
    std::vector<std::size_t> byte_by_byte(size, 1);
    std::vector<std::size_t> random_cuts = Cuts(data, size).pieces(size);

    Verdict whole = feed(data, one_piece);
    check_same(whole, feed(data, byte_by_byte), "in one piece", "byte by byte");
    check_same(whole, feed(data, random_cuts), "in one piece", "in random pieces");
    return 0;
}
