// trace.cpp - where --trace lines go.
#include "trace.h"

#include <cstdio>

namespace trace {
namespace {
bool tracing = false;
}
void enable(bool on) {
    tracing = on;
}
bool enabled() {
    return tracing;
}
void line(const std::string& text) {
    if (tracing) std::fprintf(stderr, "  %s\n", text.c_str());
}
}  // namespace trace
