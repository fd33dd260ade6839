"""Evaluator for the iterated Prisoner's Dilemma task.

Usage: python evaluate.py strategy.py      (env MLGYM_SEED, default 0)

Plays N_GAMES games of ROUNDS rounds between the agent's row_strategy and a hidden column
opponent that, every round, picks one of 11 classic strategies uniformly at random.
The agent's code never runs in this process: strategy_host.py imports it in a child
process and the games advance in lockstep, one pipe round-trip per round.
Last stdout line: {"score": mean row payoff per round, "games": N} or {"invalid": reason}.
"""
import json
import os
import random
import select
import subprocess
import sys
import time

N_GAMES = 10_000
ROUNDS = 10
BUDGET_S = 30.0  # wall-clock budget for the strategy: import + all rounds together
HOST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "strategy_host.py")
PAYOFF = {(0, 0): (3, 3), (0, 1): (0, 5), (1, 0): (5, 0), (1, 1): (1, 1)}  # 0 = C, 1 = D


# --- Column strategies: f(rows, cols, u) -> 0/1. rows/cols are the earlier moves of the
# row player / the column itself; u is a uniform draw in [0, 1) for the random ones.
def tit_for_tat(rows, cols, u):
    return rows[-1] if rows else 0

def always_cooperate(rows, cols, u):
    return 0

def always_defect(rows, cols, u):
    return 1

def uniform_random(rows, cols, u):
    return int(u < 0.5)

def grim_trigger(rows, cols, u):
    return int(1 in rows)

def pavlov(rows, cols, u):  # win-stay-lose-shift: cooperate iff both moved alike last round
    return int(rows[-1] != cols[-1]) if rows else 0

def tit_for_two_tats(rows, cols, u):
    return int(rows[-2:] == [1, 1])

def suspicious_tit_for_tat(rows, cols, u):
    return rows[-1] if rows else 1

def mostly_cooperate(rows, cols, u):
    return int(u >= 0.8)  # cooperates with probability 0.8

def forgiving_tit_for_tat(rows, cols, u):  # answers a defection, but forgives it w.p. 0.2
    return int(bool(rows) and rows[-1] == 1 and u >= 0.2)

def noisy_copy(rows, cols, u):  # copies the row's last move (C before any) w.p. 0.9, else flips
    last = rows[-1] if rows else 0
    return last if u < 0.9 else 1 - last

OPPONENTS = [tit_for_tat, always_cooperate, always_defect, uniform_random, grim_trigger,
             pavlov, tit_for_two_tats, suspicious_tit_for_tat, mostly_cooperate,
             forgiving_tit_for_tat, noisy_copy]


class StrategyError(Exception):
    pass


def _prctl(option, value):
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except Exception:  # not Linux: best effort only
        pass


def harden():
    """Linux-only hardening before the untrusted child starts.
    PR_SET_DUMPABLE=0: a non-root child can no longer open /proc/<evaluator>/fd/1 to write
    into our stdout. PR_SET_CHILD_SUBREAPER: descendants that detach (double fork,
    setsid) are re-parented to us, so reap_descendants() can kill them before we print."""
    _prctl(4, 0)   # PR_SET_DUMPABLE
    _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def reap_descendants():
    """SIGKILL every process whose parent is us, until none is left."""
    me = str(os.getpid())
    for _ in range(100):
        kids = []
        for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:  # field 4: ppid
                kids.append(int(pid))
        if not kids:
            return
        for pid in kids:
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass


def read_line(proc, deadline):
    """One protocol line from the child, or StrategyError on timeout / crash / garbage."""
    fd, buf = proc.stdout.fileno(), b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise StrategyError(f"strategy exceeded the {BUDGET_S:.0f} s time budget")
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            try:
                code = proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                code = None
            raise StrategyError("strategy process exited unexpectedly"
                                + (f" (exit code {code})" if code is not None else ""))
        buf += chunk
        if len(buf) > 4 * N_GAMES:
            raise StrategyError("malformed reply from the strategy process")
    line = buf.decode("ascii", "replace").rstrip("\n")
    if line.startswith("E "):
        raise StrategyError(line[2:])
    return line


def play(path, seed):
    """Returns the mean row payoff per round; raises StrategyError."""
    rng = random.Random(seed)  # opponent randomness lives only here
    env = {k: v for k, v in os.environ.items() if k != "MLGYM_PRIVATE_DATA"}
    env["MLGYM_SEED"] = env["PYTHONHASHSEED"] = str(seed)  # deterministic set/dict order too
    proc = subprocess.Popen([sys.executable, HOST, path, str(N_GAMES)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=True)  # own group: killpg takes children too
    try:
        deadline = time.monotonic() + BUDGET_S
        if read_line(proc, deadline) != "OK":
            raise StrategyError("malformed reply from the strategy process")
        rows = [[] for _ in range(N_GAMES)]
        cols = [[] for _ in range(N_GAMES)]
        total = 0
        for rnd in range(ROUNDS):
            msg = ("".join(str(r[-1]) for r in rows) + " " + "".join(str(c[-1]) for c in cols)
                   if rnd else "- -")
            try:
                proc.stdin.write(msg.encode() + b"\n")
                proc.stdin.flush()
            except OSError:
                raise StrategyError("strategy process exited unexpectedly") from None
            line = read_line(proc, deadline)
            moves = line[2:]
            if not line.startswith("M ") or len(moves) != N_GAMES or moves.strip("01"):
                raise StrategyError("malformed reply from the strategy process")
            # Opponent: a fresh strategy and a fresh uniform draw per game and round, drawn
            # in a fixed order so the stream does not depend on the row player's moves.
            for g in range(N_GAMES):
                pick, u = rng.randrange(len(OPPONENTS)), rng.random()
                r, c = int(moves[g]), OPPONENTS[pick](rows[g], cols[g], u)
                total += PAYOFF[r, c][0]
                rows[g].append(r)
                cols[g].append(c)
        return total / (N_GAMES * ROUNDS)
    finally:
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            pass
        proc.wait()
        reap_descendants()


def main():
    if len(sys.argv) != 2:
        print(json.dumps({"invalid": "usage: evaluate.py strategy.py"}))
        return
    path = os.path.abspath(sys.argv[1])
    seed = int(os.environ.get("MLGYM_SEED") or 0)
    harden()
    try:
        if not os.path.isfile(path):
            raise StrategyError(f"artefact {os.path.basename(path)} not found")
        result = {"score": round(play(path, seed), 6), "games": N_GAMES}
    except StrategyError as e:
        result = {"invalid": " ".join(str(e).split())[:300]}
    except Exception as e:  # never crash on a bad artefact
        result = {"invalid": f"evaluation error: {type(e).__name__}: {e}"[:300]}
    # The leading newline ends any partial line a strategy may have slipped into our
    # stdout, so the last line is always exactly our JSON object.
    print("\n" + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
