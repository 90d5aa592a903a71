"""Which instance a request tries first, and which next (``Upstream.order``), as readiness changes."""

from __future__ import annotations

from collections import Counter

from shoal.domain.routing import Upstream

A, B, C = ("127.0.0.1", 1001), ("127.0.0.1", 1002), ("127.0.0.1", 1003)


def test_round_robin_starts_each_request_at_the_next_instance() -> None:
    upstream = Upstream([A, B, C])
    orders = [upstream.order() for _ in range(3)]
    assert orders == [[A, B, C], [B, C, A], [C, A, B]]


def test_an_instance_marked_down_is_tried_only_after_every_ready_one() -> None:
    upstream = Upstream([A, B, C])
    upstream.mark(B, False)
    orders = [upstream.order() for _ in range(4)]
    assert [order[-1] for order in orders] == [B] * 4
    assert Counter(order[0] for order in orders) == {A: 2, C: 2}  # the ready ones share the load evenly
    upstream.mark(B, True)
    assert {upstream.order()[0] for _ in range(3)} == {A, B, C}


def test_when_every_instance_is_down_all_are_still_tried() -> None:
    upstream = Upstream([A, B])
    upstream.mark(A, False)
    upstream.mark(B, False)
    assert sorted(upstream.order()) == [A, B]


def test_marking_an_address_that_is_not_an_instance_changes_nothing() -> None:
    upstream = Upstream([A])
    upstream.mark(B, False)
    assert upstream.down == set() and upstream.order() == [A]


def test_an_order_is_a_copy_the_caller_may_consume() -> None:
    upstream = Upstream([A, B])
    upstream.order().pop(0)  # the exchange pops instances it has tried
    upstream.mark(A, False)
    upstream.order().pop(0)
    assert upstream.addresses == [A, B]
