// fuzz.h - what the fuzz targets in tests/fuzz/ share.
//
// A fuzz target is one function, LLVMFuzzerTestOneInput, that takes any bytes,
// hands them to one of our parsers of outside bytes (a server's response, a
// client's request head, a command line) and checks what must hold whatever
// the bytes are. Two programs call it:
//
//   fuzz-NAME         libFuzzer's main (clang, cmake -DFUZZ=ON, tests/fuzz/run.sh):
//                     it invents inputs, millions of them, guided by which
//                     branches each one reached, and stops at the first
//                     crash, hang, leak or failed FUZZ_CHECK
//   fuzz-replay-NAME  replay_main.cpp: runs the target once on every file of
//                     its corpus, tests/fuzz/corpus/NAME/ (the CTest test
//                     fuzz-corpus:NAME, in every build)
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

// The entry point libFuzzer calls for each input. Returns 0 (other values
// are reserved by libFuzzer).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

// An invariant broken: say which, where, and abort(). libFuzzer saves the
// input as crash-<sha1> in its -artifact_prefix; the replay test fails.
[[noreturn]] inline void fuzz_check_failed(const char* file, int line, const char* what) {
    std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", file, line, what);
    std::fflush(stderr);
    std::abort();
}

#define FUZZ_CHECK(condition, what) \
    ((condition) ? (void)0 : fuzz_check_failed(__FILE__, __LINE__, what))
