import pytest

from guardstack.store import Accounts, AccountState, StoreError


def test_unknown_user_is_in_state_none(store):
    assert Accounts(store).get_state("nobody") is AccountState.NONE


def test_set_records_who_when_why_and_previous_state(store):
    accounts = Accounts(store)
    a1 = accounts.set_state("alice", "warn", "reviewer:kim", "repeated policy violations")
    a2 = accounts.set_state("alice", AccountState.SUSPENDED, "reviewer:lee", "escalated")
    assert accounts.get_state("alice") is AccountState.SUSPENDED
    history = accounts.history("alice")
    assert [(h.previous_state, h.state, h.actor) for h in history] == [
        ("none", "warn", "reviewer:kim"),
        ("warn", "suspended", "reviewer:lee"),
    ]
    assert [h.id for h in history] == [a1.id, a2.id]
    assert history[0].reason == "repeated policy violations"
    assert history[0].ts <= history[1].ts
    assert accounts.restricted() == {"alice": AccountState.SUSPENDED}


def test_reverse_restores_previous_state_and_links_both_actions(store):
    accounts = Accounts(store)
    accounts.set_state("bob", "rate_limited", "layer3", "burst of flagged prompts")
    action = accounts.set_state("bob", "suspended", "layer3", "coordinated pattern")
    undo = accounts.reverse(action.id, "reviewer:kim", "false positive")
    assert accounts.get_state("bob") is AccountState.RATE_LIMITED
    assert undo.reverses == action.id and undo.state is AccountState.RATE_LIMITED
    history = accounts.history("bob")
    assert history[1].reversed_by == undo.id
    assert history[2].actor == "reviewer:kim" and history[2].reason == "false positive"
    with pytest.raises(StoreError, match="already reversed"):
        accounts.reverse(action.id, "kim", "again")


def test_only_the_latest_action_can_be_reversed(store):
    accounts = Accounts(store)
    first = accounts.set_state("carol", "warn", "layer3", "r1")
    accounts.set_state("carol", "suspended", "layer3", "r2")
    with pytest.raises(StoreError, match="not the latest"):
        accounts.reverse(first.id, "kim", "undo")
    assert accounts.get_state("carol") is AccountState.SUSPENDED
    with pytest.raises(StoreError, match="no account action"):
        accounts.reverse(999_999, "kim", "undo")


def test_bad_input_is_refused(store):
    accounts = Accounts(store)
    with pytest.raises(ValueError, match="unknown account state 'banned'"):
        accounts.set_state("dan", "banned", "kim", "r")
    with pytest.raises(ValueError, match="actor"):
        accounts.set_state("dan", "warn", "", "r")
    with pytest.raises(ValueError, match="reason"):
        accounts.set_state("dan", "warn", "kim", "  ")
    assert accounts.history("dan") == []


def test_cached_state_is_refreshed_after_ttl(store):
    gateway = Accounts(store, cache_ttl=0)
    assert gateway.get_state("erin") is AccountState.NONE
    Accounts(store).set_state("erin", "suspended", "kim", "r")
    assert gateway.get_state("erin") is AccountState.SUSPENDED
