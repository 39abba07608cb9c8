"""What the Python test scripts share (e2e.py, python_claims.py): named cases,
expect(), and how one case is run and reported.

A case is a function that returns when what it checked held, and raises
Failed (what the OS or the program did instead) or Skipped (why it does not
apply here). run() prints one line, PASS, FAIL or SKIP, and returns the exit
status CTest reads: 0, 1, or 77 for skipped.
"""


class Failed(Exception):
    pass


class Skipped(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Failed(message)


def registry():
    """A dict of cases and a decorator that adds to it: @case("name")."""
    cases = {}

    def case(name):
        def register(function):
            cases[name] = function
            return function
        return register

    return cases, case


def run(name, function, *args):
    try:
        function(*args)
    except Skipped as reason:
        print("SKIP %s: %s" % (name, reason))
        return 77
    except Failed as failure:
        print("FAIL %s: %s" % (name, failure))
        return 1
    print("PASS %s" % name)
    return 0
