"""The name a propose suggests when the app's name is taken."""

from shoal.engine.apps import _suggest


def test_the_first_free_counter_is_suggested() -> None:
    assert _suggest("sample", {"sample"}) == "sample-2"
    assert _suggest("sample", {"sample", "sample-2"}) == "sample-3"


def test_a_suggested_name_taken_in_turn_counts_on() -> None:
    assert _suggest("sample-2", {"sample", "sample-2"}) == "sample-3"


def test_a_name_ending_in_digits_of_its_own_keeps_them() -> None:
    # Failed before: a digits-only suffix (a date, a hex hash that happened to be all digits) was read
    # as a counter, so app-09079465 was offered app-2, a name of a different app.
    assert _suggest("app-09079465", {"app-09079465"}) == "app-09079465-2"
    assert _suggest("shop-2024", {"shop-2024"}) == "shop-2024-2"


def test_the_suggestion_keeps_to_32_characters() -> None:
    name = "a" * 32
    suggestion = _suggest(name, {name})
    assert len(suggestion) <= 32 and suggestion.endswith("-2")
