"""`CallRecord`: transcript, traversal, outcome table, latency percentiles and JSON shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.webhooks.payload import TranscriptTurn
from media_worker.record import CallRecord, EndCause, percentile_ms
from shared.enums import Outcome

T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record() -> CallRecord:
    return CallRecord("COD order confirmation", clock=lambda: at(999))


# --- transcript --------------------------------------------------------------------------------


def test_transcript_is_webhook_shaped_in_speaking_order_with_offsets_from_the_answer() -> None:
    call = record()
    call.mark_answered(at(1))
    call.add_utterance(
        "customer", "Yes, speaking.", started_at=at(4.25), ended_at=at(5), tts_provider="cartesia"
    )
    call.add_utterance(
        "agent",
        " Hello, is this Asha? ",
        started_at=at(1.5),
        ended_at=at(3),
        tts_provider="cartesia",
    )

    turns = call.to_transcript_json()

    assert turns == [
        {
            "speaker": "agent",
            "text": "Hello, is this Asha?",
            "offset_ms": 500,
            "agent": "COD order confirmation",
        },
        {"speaker": "customer", "text": "Yes, speaking.", "offset_ms": 3250, "agent": None},
    ]
    assert [TranscriptTurn.model_validate(turn).speaker for turn in turns] == ["agent", "customer"]
    # The provider is kept for agent turns only (the customer is not spoken by a TTS).
    assert [u.tts_provider for u in call.utterances] == [None, "cartesia"]


def test_offsets_are_unknown_before_the_answer_and_blank_text_is_dropped() -> None:
    call = record()
    assert call.add_utterance("customer", "   ", started_at=at(1)) is None
    call.add_utterance("agent", "Hello?", started_at=at(2))
    assert call.to_transcript_json() == [
        {"speaker": "agent", "text": "Hello?", "offset_ms": None, "agent": "COD order confirmation"}
    ]


def test_only_the_first_answer_counts_and_early_turns_start_at_zero() -> None:
    call = record()
    call.mark_answered(at(10))
    call.mark_answered(at(20))
    call.add_utterance("agent", "Hi", started_at=at(9.9))
    assert call.answered_at == at(10)
    assert call.to_transcript_json()[0]["offset_ms"] == 0


def test_agent_turns_carry_the_routed_agent_and_the_switch_is_an_event() -> None:
    call = record()
    call.add_utterance("agent", "Hello", started_at=at(1))
    call.switch_agent("Returns desk", at=at(2))
    call.add_utterance("agent", "I can help with the return", started_at=at(3))
    call.add_utterance("customer", "Thanks", started_at=at(4))

    assert [t["agent"] for t in call.to_transcript_json()] == [
        "COD order confirmation",
        "Returns desk",
        None,
    ]
    assert call.events[0].kind == "agent_switched"
    assert call.events[0].details == {"from": "COD order confirmation", "to": "Returns desk"}
    assert call.agent == "Returns desk"


def test_a_switch_keeps_its_reason() -> None:
    call = record()
    event = call.switch_agent("Returns desk", at=at(2), reason="wants to return a kurta")
    assert event.details == {
        "from": "COD order confirmation",
        "to": "Returns desk",
        "reason": "wants to return a kurta",
    }


def test_a_capped_call_without_a_decision_is_no_response_decided_by_the_cap() -> None:
    call = record()
    call.end(EndCause.MAX_DURATION, at=at(900))
    assert call.outcome_for_attempt() is Outcome.NO_RESPONSE
    assert call.decided_by is EndCause.MAX_DURATION
    # A decision taken before the cap still wins.
    decided = record()
    decided.decide_outcome(Outcome.CONFIRMED, at=at(10))
    decided.end(EndCause.MAX_DURATION, at=at(900))
    assert decided.outcome_for_attempt() is Outcome.CONFIRMED


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        record().add_utterance("agent", "Hi", started_at=datetime(2026, 3, 2, 10, 0))


# --- outcome table -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (EndCause.CUSTOMER_HUNG_UP, Outcome.NO_RESPONSE),
        (EndCause.SOCKET_DROPPED, Outcome.FAILED),
        (EndCause.WORKER_DRAINED, Outcome.FAILED),
        (EndCause.ERROR, Outcome.FAILED),
        (EndCause.CONVERSATION, Outcome.FAILED),
    ],
)
def test_without_a_decision_the_end_cause_decides(cause: EndCause, expected: Outcome) -> None:
    call = record()
    call.end(cause, at=at(30))
    assert call.outcome is None
    assert call.outcome_for_attempt() is expected
    assert call.decided_by is cause


@pytest.mark.parametrize("cause", list(EndCause))
def test_a_decided_outcome_survives_any_end(cause: EndCause) -> None:
    call = record()
    call.decide_outcome(Outcome.CONFIRMED, at=at(20))
    call.end(cause, at=at(21))
    assert call.outcome_for_attempt() is Outcome.CONFIRMED
    assert call.decided_by is EndCause.CONVERSATION
    assert call.ended_by is cause


def test_a_call_that_never_recorded_its_end_is_failed_by_error() -> None:
    call = record()
    assert call.outcome_for_attempt() is Outcome.FAILED
    assert call.decided_by is EndCause.ERROR


def test_the_first_decision_and_the_first_end_win() -> None:
    call = record()
    assert call.decide_outcome(Outcome.CONFIRMED, at=at(1)) is True
    assert call.decide_outcome(Outcome.CALLBACK_REQUESTED, at=at(2)) is False
    assert call.end(EndCause.CONVERSATION, at=at(3)) is True
    assert call.end(EndCause.SOCKET_DROPPED, at=at(4)) is False

    assert call.outcome is Outcome.CONFIRMED
    assert call.ended_by is EndCause.CONVERSATION
    assert call.ended_at == at(3)
    assert call.events[-1].kind == "outcome_ignored"
    assert call.events[-1].details == {"outcome": "CALLBACK_REQUESTED", "kept": "CONFIRMED"}


# --- latency -----------------------------------------------------------------------------------


def test_latency_percentiles_are_nearest_rank_over_the_calls_turns() -> None:
    call = record()
    assert call.latency_summary() is None
    for latency_ms in [900, 400, 1200.4, 700, 650, 800, 3000, 500, 600, 750]:
        call.add_turn_latency_ms(latency_ms)

    summary = call.latency_summary()

    assert summary is not None
    assert (summary.count, summary.p50_ms, summary.p95_ms) == (10, 700, 3000)
    assert call.turn_latencies_ms[2] == 1200


def test_percentile_of_one_turn_is_that_turn() -> None:
    assert percentile_ms([420], 50) == percentile_ms([420], 95) == 420
    assert percentile_ms(list(range(1, 101)), 95) == 95


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_impossible_latencies_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="turn latency"):
        record().add_turn_latency_ms(bad)


# --- events ------------------------------------------------------------------------------------


def test_transfer_keeps_the_number_for_the_session_but_events_only_masked() -> None:
    call = record()
    call.request_transfer("+918047181234", at=at(5))

    assert call.transfer_to == "+918047181234"
    events = call.to_events_json()
    assert events[0] == {
        "kind": "transfer_requested",
        "at": at(5).isoformat(),
        "details": {"to": "+918•••••••34"},
    }
    assert "8047181234" not in repr(events)


def test_events_json_merges_events_and_traversal_in_time_order_then_a_summary() -> None:
    call = record()
    call.mark_answered(at(0))
    call.add_traversal(
        function="cancel_order",
        from_node="confirm_order",
        to_node=None,
        arguments={"reason": "changed_mind"},
        at=at(12),
    )
    call.add_tts_failover("cartesia", "espeak", "no audio within 2 s", at=at(6))
    call.add_traversal(
        function="identity_confirmed",
        from_node="verify_identity",
        to_node="confirm_order",
        arguments={},
        at=at(4),
    )
    call.add_utterance(
        "agent",
        "Hello",
        started_at=at(1),
        ended_at=at(2),
        tts_provider="cartesia",
        tts_voice="riya",
    )
    call.add_turn_latency_ms(640)
    call.decide_outcome(Outcome.CANCELLED_BY_CUSTOMER, at=at(12))
    call.end(EndCause.CUSTOMER_HUNG_UP, at=at(14))

    events = call.to_events_json()

    assert [e["kind"] for e in events] == [
        "node_traversal",
        "tts_failover",
        "node_traversal",
        "call_summary",
    ]
    assert events[0]["details"] == {
        "function": "identity_confirmed",
        "from_node": "verify_identity",
        "to_node": "confirm_order",
        "arguments": {},
    }
    assert events[1]["details"] == {
        "from": "cartesia",
        "to": "espeak",
        "reason": "no audio within 2 s",
    }
    assert events[2]["details"]["arguments"] == {"reason": "changed_mind"}
    summary = events[3]
    assert summary["at"] == at(14).isoformat()
    assert summary["details"] == {
        "outcome": "CANCELLED_BY_CUSTOMER",
        "decided_by": "conversation",
        "ended_by": "customer_hung_up",
        "answered_at": at(0).isoformat(),
        "latency": {"count": 1, "p50_ms": 640, "p95_ms": 640},
        "turn_latencies_ms": [640],
        "utterances": [
            {
                "started_at": at(1).isoformat(),
                "ended_at": at(2).isoformat(),
                "tts_provider": "cartesia",
                "tts_voice": "riya",
            }
        ],
    }


def test_finalize_record_holds_transcript_and_events_and_accessors_return_copies() -> None:
    call = record()
    arguments = {"reason": "other"}
    call.add_traversal(function="f", from_node="a", to_node="a", arguments=arguments, at=at(1))
    arguments["reason"] = "changed after the call"
    call.add_utterance("customer", "Hi", started_at=at(1))

    finalize = call.to_finalize_record()

    assert finalize["transcript"] == call.to_transcript_json()
    assert finalize["events"] == call.to_events_json()
    assert call.traversals[0].arguments == {"reason": "other"}
    assert finalize["events"][-1]["at"] == at(999).isoformat()  # not ended: stamped now
    assert isinstance(call.utterances, tuple)
