"""Child process that runs the agent's row_strategy for private/evaluate.py.

Usage: python strategy_host.py STRATEGY_PY N_GAMES

Untrusted code is imported ONLY here, never in the evaluator. Line protocol:
  host -> evaluator  "OK"                after a successful import
  evaluator -> host  "<rows> <cols>"     one line per round: last round's row / column
                                          moves of every game as '0'/'1' strings
                                          ("- -" before the first round)
  host -> evaluator  "M <moves>"         the N new row moves, one '0'/'1' char per game
  host -> evaluator  "E <reason>"        anything went wrong (one line), then exit
"""
import os
import sys

# Protocol channel: a private dup of the real stdout. fd 1 and sys.stdout then point at
# stderr, so whatever the strategy prints can neither corrupt the protocol nor reach the
# evaluator's stdout. Bound methods are captured now, before any agent code runs.
_proto_fd = os.dup(1)
os.dup2(2, 1)
sys.stdout = sys.stderr
_out = os.fdopen(_proto_fd, "w", buffering=1)
_write, _flush, _readline = _out.write, _out.flush, sys.stdin.readline
_isinstance, _int, _type, _list = isinstance, int, type, list


def send(line):
    _write(line.replace("\n", " ").replace("\r", " ") + "\n")
    _flush()


def describe(x, conv=str):
    try:  # agent objects may have a broken __str__ / __repr__
        return conv(x)[:120]
    except BaseException:
        return "<unprintable>"


def exc_text(e):
    msg = describe(e)
    return f"{_type(e).__name__}: {msg}" if msg else _type(e).__name__


def fail(reason):
    send("E " + reason[:300])
    os._exit(0)


def main():
    path, n = os.path.abspath(sys.argv[1]), int(sys.argv[2])
    # The strategy sees its own folder on sys.path, never private/ (this script's dir).
    sys.path[0] = os.path.dirname(path)
    seed = int(os.environ.get("MLGYM_SEED", "0"))
    import random
    random.seed(seed)
    try:
        import numpy as np
        np.random.seed(seed)
        accepted = (int, np.integer, np.bool_)  # bool is an int subclass
    except Exception:  # numpy missing or broken: plain ints/bools only
        accepted = (int,)

    import importlib.util
    try:
        spec = importlib.util.spec_from_file_location("strategy", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["strategy"] = module
        spec.loader.exec_module(module)
    except BaseException as e:  # SyntaxError, ImportError, SystemExit, ...
        fail(f"importing strategy.py failed: {exc_text(e)}")
    fn = getattr(module, "row_strategy", None)
    if not callable(fn):
        fail("strategy.py does not define a callable row_strategy(history)")
    send("OK")

    histories = [[] for _ in range(n)]
    for rnd in range(10):
        line = _readline()
        if not line:
            os._exit(0)
        rows, cols = line.split()
        if rnd:
            for h, r, c in zip(histories, rows, cols):
                h.append((_int(r), _int(c)))
        moves = []
        for g, h in enumerate(histories):
            try:
                m = fn(_list(h))  # a copy: the strategy may mutate what it gets
            except BaseException as e:
                fail(f"row_strategy raised {exc_text(e)} (game {g}, round {rnd + 1})")
            if not _isinstance(m, accepted) or m not in (0, 1):
                fail(f"row_strategy returned {describe(m, repr)} (type {_type(m).__name__}); "
                     f"expected 0 or 1 (game {g}, round {rnd + 1})")
            moves.append("1" if m else "0")
        send("M " + "".join(moves))
    os._exit(0)  # skip interpreter teardown (atexit hooks of the strategy)


if __name__ == "__main__":
    main()
