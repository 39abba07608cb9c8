# make chapterN   -> ./chapterN at the repo root (chapters/NN_*/chapterN.cpp + common/)
# make labserver  -> ./labserver
# make all        -> every chapter and the lab server
# make labN       -> ./labN from the student's starter, chapters/NN_*/lab/chapterN.cpp
# make check-labN -> build ./labN if it changed, grade it (or PROGRAM=path) against lab N's checks
# make check-lab  -> grade every ./labN
# make test       -> configure CMake in build/, build, run the whole CTest suite
# make test-windows -> the same, cross-built with MinGW-w64 and run under Wine
# CXX and CXXFLAGS may be overridden: make chapter1 CXX=clang++ CXXFLAGS=-O0
CXXFLAGS ?= -O2 -g
REQUIRED_FLAGS := -std=c++17 -Wall -Wextra -Werror -pthread -Icommon

# The lab server waits with epoll on Linux, with poll elsewhere (common/waiter.h): one of
# the two waiter_*.cpp is compiled.
OTHER_WAITER := $(if $(filter Linux,$(shell uname -s)),common/waiter_poll.cpp,common/waiter_epoll.cpp)
# Chapter 6 waits with its own poller_epoll.cpp on Linux, poller_poll.cpp elsewhere.
POLLER := $(if $(filter Linux,$(shell uname -s)),epoll,poll)
COMMON_SRC := $(filter-out common/labserver_main.cpp $(OTHER_WAITER),$(wildcard common/*.cpp))
COMMON_HDR := $(wildcard common/*.h)
# Headers beside a chapter or a starter (chapter 1's connect.h, which chapter 4 includes too).
CHAPTER_HDR := $(wildcard chapters/*/*.h chapters/*/lab/*.h)
CHAPTER_SRC := $(wildcard chapters/*/chapter*.cpp)
CHAPTERS := $(basename $(notdir $(CHAPTER_SRC)))
LAB_SRC := $(wildcard chapters/*/lab/chapter*.cpp)
LABS := $(subst chapter,lab,$(basename $(notdir $(LAB_SRC))))
# A starter's steps are empty until the student writes them: their parameters
# and the helpers and constants only they use are unused until then: no error.
LAB_FLAGS := -Wno-unused-parameter -Wno-unused-function -Wno-unused-const-variable
PYTHON ?= python3

# common/ is compiled once per build and linked into every program. Its objects
# go in a folder named after the compiler and flags, so `make chapter1
# CXX=clang++` never links objects that another compiler or flag set made.
OBJ_DIR := build-make/$(shell echo '$(CXX) $(REQUIRED_FLAGS) $(CPPFLAGS) $(CXXFLAGS)' | cksum | cut -d' ' -f1)
COMMON_OBJ := $(patsubst common/%.cpp,$(OBJ_DIR)/%.o,$(COMMON_SRC))
COMMON_LIB := $(OBJ_DIR)/libcommon.a

.PHONY: all clean test test-windows check-lab $(addprefix check-,$(LABS))
all: $(CHAPTERS) labserver

$(OBJ_DIR)/%.o: common/%.cpp $(COMMON_HDR)
	@mkdir -p $(OBJ_DIR)
	$(CXX) $(REQUIRED_FLAGS) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

$(COMMON_LIB): $(COMMON_OBJ)
	$(AR) rcs $@ $^

# One rule per chapter folder found, so a new chapter needs no edit here.
define chapter_rule
$(basename $(notdir $(1))): $(1) $$(COMMON_LIB) $$(COMMON_HDR) $$(CHAPTER_HDR) $(wildcard $(dir $(1))poller_$(POLLER).cpp)
	$$(CXX) $$(REQUIRED_FLAGS) $$(CPPFLAGS) $$(CXXFLAGS) -o $$@ $(1) $(wildcard $(dir $(1))poller_$(POLLER).cpp) $$(COMMON_LIB) $$(LDFLAGS) $$(LDLIBS)
endef
$(foreach src,$(CHAPTER_SRC),$(eval $(call chapter_rule,$(src))))

# A lab starter: make lab3 -> ./lab3. make check-lab3 builds ./lab3 again if
# its source changed (and stops if it does not compile), then grades it, or
# the program PROGRAM names (PROGRAM=./chapter3 grades the reference; under
# Wine, PROGRAM=./lab3.exe EMULATOR=wine). The grader runs its own lab
# servers: ./labserver. FORMAT, RESULTS, CHECK and POINTS pass on to the
# grader's --format, --results, --check and --points (tests/labcheck.py).
define lab_rule
$(subst chapter,lab,$(basename $(notdir $(1)))): $(1) $$(COMMON_LIB) $$(COMMON_HDR) $$(CHAPTER_HDR) $(wildcard $(dir $(1))../poller_$(POLLER).cpp)
	$$(CXX) $$(REQUIRED_FLAGS) $$(LAB_FLAGS) -I$(dir $(1)).. $$(CPPFLAGS) $$(CXXFLAGS) -o $$@ $(1) $(wildcard $(dir $(1))../poller_$(POLLER).cpp) $$(COMMON_LIB) $$(LDFLAGS) $$(LDLIBS)
check-$(subst chapter,lab,$(basename $(notdir $(1)))): $$(if $$(filter-out ./$(subst chapter,lab,$(basename $(notdir $(1)))) $(subst chapter,lab,$(basename $(notdir $(1)))),$$(PROGRAM)),,$(subst chapter,lab,$(basename $(notdir $(1))))) $$(if $$(EMULATOR),,labserver)
	$$(PYTHON) tests/labcheck.py --lab $(patsubst chapter%,%,$(basename $(notdir $(1)))) --program "$$(or $$(PROGRAM),./$(subst chapter,lab,$(basename $(notdir $(1)))))" $$(GRADER_OPTIONS)
endef
GRADER_OPTIONS = $(if $(EMULATOR),--emulator "$(EMULATOR)") $(if $(FORMAT),--format "$(FORMAT)") \
	$(if $(RESULTS),--results "$(RESULTS)") $(if $(CHECK),--check "$(CHECK)") $(if $(POINTS),--points "$(POINTS)")
$(foreach src,$(LAB_SRC),$(eval $(call lab_rule,$(src))))

# Every lab, one after another; the exit status says whether all passed.
check-lab: $(LABS) labserver
	@status=0; for lab in $(LABS); do $(PYTHON) tests/labcheck.py --lab $${lab#lab} --program ./$$lab || status=1; done; exit $$status

labserver: common/labserver_main.cpp $(COMMON_LIB) $(COMMON_HDR)
	$(CXX) $(REQUIRED_FLAGS) $(CPPFLAGS) $(CXXFLAGS) -o $@ common/labserver_main.cpp $(COMMON_LIB) $(LDFLAGS) $(LDLIBS)

BUILD_DIR ?= build
CMAKE_ARGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
# Six tests at a time on two cores: most of them wait on sockets and timers
# (.ci/run's sanitizer builds, several times slower, run two at a time.)
CTEST_JOBS ?= 6
test:
	cmake -S . -B $(BUILD_DIR) $(CMAKE_ARGS)
	cmake --build $(BUILD_DIR) -j 2
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(CTEST_JOBS) --timeout 120

# Wine in automation: a prefix of our own inside the build folder, no debug
# chatter, and a wineserver started before the tests (and stopped after), so
# parallel tests do not race to create the prefix and no helper process holds
# CTest's output pipe open. (-p fails if that prefix's wineserver is running
# already, which is as good.)
WINDOWS_BUILD_DIR ?= build-windows
test-windows:
	cmake -S . -B $(WINDOWS_BUILD_DIR) -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake -DCMAKE_BUILD_TYPE=Release
	cmake --build $(WINDOWS_BUILD_DIR) -j 2
	export WINEPREFIX="$(abspath $(WINDOWS_BUILD_DIR))/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" && \
	mkdir -p "$$WINEPREFIX" && \
	{ wineserver -p </dev/null >/dev/null 2>&1 || true; } && \
	wineboot -i </dev/null >/dev/null 2>&1 && \
	cd $(WINDOWS_BUILD_DIR) && status=0 && \
	{ ctest --output-on-failure -j 2 --timeout 180 || \
	  { echo "== under Wine: the failed tests once more, one at a time (docs/portability.md)"; \
	    ctest --rerun-failed --output-on-failure -j 1 --timeout 180 || status=$$?; }; } && \
	wineserver -k; exit $$status

clean:
	rm -f $(CHAPTERS) $(LABS) labserver
	rm -rf build build-*
