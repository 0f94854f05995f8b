"""The thread tuner keeps the fastest count it timed; "auto" precision is chosen by a probe that changes nothing."""
from __future__ import annotations

from dataclasses import replace

import torch

from core.autotune import ThreadTuner, measured_autocast_dtype
from core.models import build_model


class FakeMachine:
    """A clock where a batch takes `cost[threads]` seconds per sample at the thread count last set."""

    def __init__(self, cost: dict[int, float]):
        self.cost, self.now, self.threads, self.switches = cost, 0.0, max(cost), []

    def set_threads(self, n: int) -> None:
        self.threads = n
        self.switches.append(n)

    def run(self, tuner: ThreadTuner, batches: int, samples: int = 64) -> None:
        for _ in range(batches):
            self.now += self.cost[self.threads] * samples
            tuner.batch_done(samples)


def tuner_on(machine: FakeMachine) -> ThreadTuner:
    return ThreadTuner(max(machine.cost), clock=lambda: machine.now, set_threads=machine.set_threads)


def test_one_thread_is_kept_when_the_second_core_is_busy():
    machine = FakeMachine({2: 2.7e-4, 1: 1.3e-4})  # 2 threads share a core with another program
    tuner = tuner_on(machine)
    machine.run(tuner, 100)
    assert tuner.best == 1 and machine.threads == 1
    assert tuner.history[0][1][2] > tuner.history[0][1][1]


def test_all_threads_are_kept_on_an_idle_machine_and_rechecks_grow_rarer():
    machine = FakeMachine({2: 1.0e-4, 1: 1.4e-4})  # 6.4 ms a batch of 64
    tuner = tuner_on(machine)
    machine.run(tuner, 8000)  # ~51 s of training
    assert tuner.best == 2 and machine.threads == 2
    sweeps = [batch for batch, _ in tuner.history]
    assert len(sweeps) >= 3 and sweeps[2] - sweeps[1] > sweeps[1] - sweeps[0]  # the interval doubles while it holds
    timed_at_one = sum(1 for n in machine.switches if n == 1)
    assert timed_at_one == len(sweeps)  # one short window per sweep away from the best


def test_a_load_that_starts_mid_run_is_noticed_at_once():
    machine = FakeMachine({2: 1.0e-4, 1: 1.4e-4})
    tuner = tuner_on(machine)
    machine.run(tuner, 300)
    assert tuner.best == 2
    machine.cost = {2: 2.7e-4, 1: 1.4e-4}  # a browser starts: the chosen count's speed drifts
    machine.run(tuner, 150)  # ~3 s, before any periodic re-check
    assert tuner.best == 1 and machine.threads == 1


def test_a_core_that_comes_free_is_noticed_by_the_periodic_check():
    machine = FakeMachine({2: 2.7e-4, 1: 1.4e-4})
    tuner = tuner_on(machine)
    machine.run(tuner, 100)
    assert tuner.best == 1
    machine.cost = {2: 1.0e-4, 1: 1.4e-4}  # the other program ends; one thread runs just as before
    machine.run(tuner, 1600)  # ~15 s
    assert tuner.best == 2 and machine.threads == 2


def test_throughput_decides_not_the_typical_batch():
    """On a shared core most batches can be quick while a few stall for a whole time slice: the total counts."""
    machine = FakeMachine({2: 1.0e-4, 1: 1.5e-4})
    tuner = tuner_on(machine)
    clock = iter(range(10**6))

    def stalling_two_threads(n: int) -> None:
        machine.threads = n

    machine.set_threads = stalling_two_threads
    tuner._set = stalling_two_threads
    for _ in range(300):
        stall = 0.03 if machine.threads == 2 and next(clock) % 3 == 0 else 0.0  # every third batch waits 30 ms
        machine.now += machine.cost[machine.threads] * 64 + stall
        tuner.batch_done(64)
    assert tuner.best == 1  # 2 threads: median 6.4 ms a batch, but 16.4 ms on average; 1 thread: 9.6 ms


def fake_seconds(machine: FakeMachine, tuner: ThreadTuner, batches: int, samples: int = 64) -> float:
    start = machine.now
    machine.run(tuner, batches, samples)
    return machine.now - start


def test_a_count_that_stalls_beside_a_busy_program_costs_little_to_rule_out():
    """4 cores, one busy program (measured on a Xeon: 4 threads took 630 ms a batch, 3 threads 7.7 ms): the tuner
    must not spend seconds finding that out. It warmed up and timed 4 threads first, 10 batches, ~6 s of a 7 s run."""
    machine = FakeMachine({4: 1.0e-2, 3: 1.2e-4, 2: 1.4e-4, 1: 2.2e-4})
    tuner = tuner_on(machine)
    seconds = fake_seconds(machine, tuner, 938)  # quick's one epoch
    assert tuner.best == 3 and machine.threads == 3
    assert seconds <= 1.15 * 938 * 64 * 1.2e-4  # within 15% of knowing the answer from the start
    two_cores = FakeMachine({2: 9.0e-4, 1: 1.1e-4})  # 2 cores: two threads beside the busy program took ~58 ms
    tuner = tuner_on(two_cores)
    assert fake_seconds(two_cores, tuner, 938) <= 1.15 * 938 * 64 * 1.1e-4 and tuner.best == 1


def test_finding_all_cores_best_on_an_idle_machine_costs_little():
    machine = FakeMachine({4: 0.7e-4, 3: 0.85e-4, 2: 1.1e-4, 1: 2.0e-4})
    tuner = tuner_on(machine)
    seconds = fake_seconds(machine, tuner, 938)
    assert tuner.best == 4 and seconds <= 1.05 * 938 * 64 * 0.7e-4


def test_a_validation_pass_between_batches_is_not_a_thread_counts_time():
    """Epochs of 20 batches end with a 0.5 s validation pass, the first one while two threads are being timed: without
    pause() that batch looked 80x slower a sample and dropped the fastest count on the spot."""
    machine = FakeMachine({2: 1.0e-4, 1: 1.4e-4})
    tuner = tuner_on(machine)
    for _ in range(10):
        machine.run(tuner, 20)
        machine.now += 0.5  # the validation pass and the epoch's callback
        tuner.pause()
    assert tuner.best == 2 and all(costs[2] < costs[1] for _, costs in tuner.history)


def test_a_small_difference_does_not_switch():
    machine = FakeMachine({2: 1.00e-4, 1: 0.98e-4})  # within the margin: noise, not a reason
    tuner = tuner_on(machine)
    machine.run(tuner, 400)
    assert tuner.best == 2


def test_one_core_has_nothing_to_tune():
    machine = FakeMachine({1: 1e-4})
    tuner = tuner_on(machine)
    machine.run(tuner, 500)
    assert machine.switches == [] and tuner.history == []


def test_the_precision_probe_leaves_the_rng_and_the_model_alone():
    model = build_model("tutorial").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(3)
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    choice = measured_autocast_dtype(model, 32, torch.device("cpu"), channels_last=True, rounds=2)
    assert choice in (None, torch.bfloat16)
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    # remembered: the same question gets the same answer without timing again
    assert measured_autocast_dtype(model, 32, torch.device("cpu"), channels_last=True) is choice


def test_the_precision_probe_sees_through_a_busy_program_taking_the_core():
    """bf16 steps cost 7 ms and fp32 10 ms, but a busy program takes the core for 15 ms during most steps of either:
    the probe must still choose bf16 (the median step chose fp32 here)."""
    model = build_model("tutorial").train()
    model.extra = torch.nn.Linear(1, 1)  # another parameter count: not the remembered answer of another test
    # which of each path's steps lose the core (the first two rounds are warm-up): bf16 keeps it once, fp32 thrice
    interrupted = {torch.bfloat16: iter([True, True] + [True, True, False, True, True, True]),
                   None: iter([True, True] + [False, True, False, True, True, False])}
    steps: list = []

    def step_seconds(_model, _x, _y, dtype):
        steps.append(dtype)
        return (0.007 if dtype is torch.bfloat16 else 0.010) + (0.015 if next(interrupted[dtype]) else 0.0)

    choice = measured_autocast_dtype(model, 32, torch.device("cpu"), channels_last=True, step_seconds=step_seconds)
    assert steps.count(torch.bfloat16) == steps.count(None) == 8  # both paths timed, interleaved
    assert choice is torch.bfloat16


def test_training_reports_the_precision_and_threads_it_used(tiny_settings):
    from core.training import train

    result = train(replace(tiny_settings, epochs=1, precision="fp32", threads=1))
    assert result.precision == "fp32" and result.threads == 1
    auto = train(replace(tiny_settings, epochs=1, precision="auto"))
    assert auto.precision in ("fp32", "bf16") and auto.threads >= 1
