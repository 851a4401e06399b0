"""A step's verdict from the evidence of what the client did to the load (core/verdict.py)."""

from __future__ import annotations

from siliconbench.core.verdict import CLIENT_LIMITED, NODE_BUSY, OK, Evidence, delay_share


def evidence(**kw) -> Evidence:
    base = dict(client_delay_p99_ms=0.2, client_delay_share=0.001, sender_cpu_pct=6.0, loop_lag_p99_ms=0.5,
                agent_cpu_pct=8.0, node_cpu_pct=40.0, server_cpu_pct=70.0)
    return Evidence(**{**base, **kw})


def test_a_client_that_sent_on_time_with_a_quiet_loop_is_ok():
    assert evidence().verdict == OK and evidence().sentence() == "ok"


def test_loop_lag_alone_is_a_busy_node_named_with_its_measured_cause():
    e = evidence(loop_lag_p99_ms=12.0, node_cpu_pct=97.0, server_cpu_pct=180.0, agent_cpu_pct=4.0)
    assert e.verdict == NODE_BUSY
    assert e.sentence() == ("node busy: event-loop lag p99 12.0 ms while the client sent on time (dispatch delay p99 "
                            "0.2 ms); node CPU 97% of all cores, the server's processes 180% of a core, the agent 4% "
                            "of a core")


def test_a_server_on_another_node_is_left_out_of_the_cause():
    e = evidence(loop_lag_p99_ms=12.0, server_cpu_pct=None)
    assert "server" not in e.cause() and "node CPU 40%" in e.cause()


def test_five_ms_late_on_two_second_requests_is_no_limit_but_on_twenty_ms_requests_it_is():
    assert evidence(client_delay_p99_ms=5.0, client_delay_share=delay_share(5.0, 2000.0)).verdict == OK
    limited = evidence(client_delay_p99_ms=5.0, client_delay_share=delay_share(5.0, 20.0))
    assert limited.verdict == CLIENT_LIMITED
    assert limited.sentence() == ("client-limited: dispatch delay p99 5.0 ms, 25% of a request's time; node CPU 40% "
                                  "of all cores, the server's processes 70% of a core, the agent 8% of a core")


def test_a_small_delay_is_no_limit_whatever_its_share():
    assert evidence(client_delay_p99_ms=1.0, client_delay_share=0.5).verdict == OK


def test_a_sending_process_at_a_full_core_limits_the_load_even_when_it_sent_on_time():
    e = evidence(sender_cpu_pct=95.0, loop_lag_p99_ms=30.0)
    assert e.verdict == CLIENT_LIMITED
    assert e.sentence().startswith("client-limited: a sending process used 95% of a core; node CPU 40% of all cores")


def test_a_lost_sending_process_limits_the_load():
    e = evidence(lost="agent worker 1 (pid 7) died (exit code -9)")
    assert e.sentence().startswith("client-limited: agent worker 1 (pid 7) died (exit code -9); node CPU 40%")


def test_no_finished_request_gives_no_share():
    assert delay_share(9.0, 0.0) == 0.0
