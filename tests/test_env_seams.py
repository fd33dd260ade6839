"""The env's collaborators, each alone: limits, the trajectory, the score bookkeeping."""
from __future__ import annotations

import json

from pytest_mlgym.env import STATUSES, EpisodeLimits, EpisodeState, ScoreEvent, Trajectory, ends
from pytest_mlgym.task import Metric


def test_limits_say_which_ends_the_episode_and_how_long_a_command_may_run():
    lim = EpisodeLimits(max_steps=3, episode_s=10.0, step_s=4.0)
    assert lim.reached(2, 9.0) is None
    assert lim.reached(3, 9.0) == ("step_limit", "step limit of 3 reached")
    assert lim.reached(3, 10.5) == ("time_limit", "episode time limit of 10 s reached")  # time first
    assert (lim.command_timeout(1.0), lim.command_timeout(8.0), lim.command_timeout(20.0)) == (4.0, 2.0, 0.1)


def test_every_status_is_terminated_truncated_or_running():
    kinds = {s: ends(s) for s in STATUSES}
    assert kinds["running"] == (False, False)
    # a limit, or the infrastructure (the model provider), cut it short: truncated, as Gymnasium means it
    assert [s for s, k in kinds.items() if k == (False, True)] == ["step_limit", "time_limit", "infra_error"]
    assert all(k != (True, True) for k in kinds.values())
    assert {s for s, k in kinds.items() if k == (True, False)} == {"submitted", "invalid", "cost_limit", "error"}


def test_the_trajectory_puts_scores_in_their_step_and_takes_annotations():
    t = Trajectory()
    t.add_step(0, "(reset)", "hello", 0.0, 0.0)
    t.add_score({"kind": "validate", "score": 7})
    mark = len(t)
    t.add_step(1, "validate", "Validation: 7", 0.5, 1.23456)
    assert t[1]["scored"] == [{"kind": "validate", "score": 7}] and t[1]["t"] == 1.235 and "scored" not in t[0]
    assert t.annotate(mark, thought="try 7") and t[1]["thought"] == "try 7"
    assert not t.annotate(len(t), thought="no such step")
    t.add_score({"kind": "autosubmit", "score": 8})  # the episode ends between steps
    t.flush()
    assert [s["kind"] for s in t[-1]["scored"]] == ["validate", "autosubmit"] and t.last_observation == "Validation: 7"
    assert json.loads(json.dumps(t)) == list(t)  # saved as it is


def test_results_pick_the_attempt_by_the_protocol():
    st = EpisodeState()
    st.scores += [ScoreEvent(1, "validate", 5.0, {}, "", 0.1, dev_score=9.0),
                  ScoreEvent(2, "validate", 8.0, {}, "", 0.2, dev_score=6.0),
                  ScoreEvent(3, "submit", 4.0, {}, "", 0.3, dev_score=5.0)]
    m = Metric(name="score", direction="max")
    sealed, mlgym = st.results(m, "sealed"), st.results(m, "mlgym")
    assert (sealed["best_attempt"], sealed["best_submission"], sealed["oracle_best_attempt"]) == (5.0, 4.0, 8.0)
    assert mlgym["best_attempt"] == 8.0
    assert [f["score"] for f in st.feedback(lambda e: e.dev_score)] == [9.0, 6.0, 5.0]


def test_an_episode_attaches_the_agents_thought_through_the_trajectory(tiny, tmp_path, monkeypatch):
    from pytest_mlgym.env import MLGymEnv
    from pytest_mlgym.episode import Episode

    class Thinker:
        thought = ""

        def reset(self, task):
            self.plan = ["echo 9 > answer.txt", "submit"]

        def act(self, observation):
            self.thought = f"step {len(self.plan)}"
            return self.plan.pop(0)

    calls = []
    real = Trajectory.annotate
    monkeypatch.setattr(Trajectory, "annotate", lambda self, i, **kw: calls.append(i) or real(self, i, **kw))
    ep = Episode.start(MLGymEnv(tiny, cache_dir=tmp_path), seed=0)
    try:
        rec = ep.run(Thinker())
        assert rec.status == "submitted" and calls == [1, 2]
        assert [e.get("thought") for e in ep.env.state.trajectory] == [None, "step 2", "step 1"]
    finally:
        ep.close()
