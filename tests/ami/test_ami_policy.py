"""The in-memory CallPolicy used by the tests and the bench."""
import asyncio
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from workers.ami.policy import (ACCOUNT_DISABLED, ACCOUNT_EXPIRED, ACCOUNT_SUSPENDED,
                                CHANNEL_LIMIT, COUNTRY_CLOSED, CPS_LIMIT, NO_CREDIT,
                                UNKNOWN_ACCOUNT, AccountTerms, Admission, InMemoryPolicy,
                                LiveCall)

T0 = 1_800_000_000.0


def live(uid, answered=None, account="100001"):
    return LiveCall(f"pbx1/{uid}", "pbx1", f"PJSIP/1001-{uid}", uid, uid, account, "1001",
                    "442071234567", T0, answered)


def admit(policy, number="100001", destination="442071234567", now=T0):
    return asyncio.run(policy.admit(number, destination, now))


@pytest.mark.parametrize("terms, in_use, cause", [
    (dict(status="suspended"), 1, ACCOUNT_SUSPENDED),
    (dict(status="disabled"), 1, ACCOUNT_DISABLED),
    (dict(expires=T0 - 1), 1, ACCOUNT_EXPIRED),
    (dict(opened_prefixes=("33", "49")), 1, COUNTRY_CLOSED),
    (dict(max_channels=2), 3, CHANNEL_LIMIT),
    (dict(balance=Decimal("0")), 1, NO_CREDIT),
])
def test_admission_refuses_with_the_cause_an_operator_reads(terms, in_use, cause):
    policy = InMemoryPolicy([AccountTerms("100001", **{"balance": Decimal("5"), **terms})],
                            in_use=lambda number: in_use)
    assert admit(policy) == Admission(False, cause)


def test_admission_accepts_up_to_the_channel_limit_and_zero_means_unlimited():
    limited = InMemoryPolicy([AccountTerms("100001", Decimal("5"), max_channels=2)],
                             in_use=lambda number: 2)
    unlimited = InMemoryPolicy([AccountTerms("100001", Decimal("5"))], in_use=lambda n: 500)
    assert admit(limited).allowed and admit(unlimited).allowed


def test_admission_refuses_an_unknown_account_and_a_fourth_attempt_in_one_second_at_cps_3():
    policy = InMemoryPolicy([AccountTerms("100001", Decimal("5"), cps=3)], in_use=lambda n: 1)
    assert admit(policy, "999999") == Admission(False, UNKNOWN_ACCOUNT)
    results = [admit(policy, now=T0 + i * 0.1).cause for i in range(4)]
    assert results == ["", "", "", CPS_LIMIT]
    assert not admit(policy, now=T0 + 1.05).allowed  # refused attempts count too
    assert admit(policy, now=T0 + 1.35).allowed      # the window slid past three attempts


def test_opened_countries_accept_international_prefixes_written_with_00_or_plus():
    policy = InMemoryPolicy([AccountTerms("100001", Decimal("5"), opened_prefixes=("44",))],
                            in_use=lambda n: 1)
    assert all(admit(policy, destination=d).allowed
               for d in ("442071234567", "00442071234567", "+442071234567"))


def test_deadlines_share_the_credit_among_the_answered_calls_of_the_account():
    policy = InMemoryPolicy([AccountTerms("100001", Decimal("3.00"), Decimal("0.10"))],
                            in_use=lambda n: 1)
    calls = [live("1", answered=T0), live("2", answered=T0 + 5), live("3")]
    # at T0+10: spent 1.00 + 0.50, left 1.50 at 0.20/s -> 7.5 s more for both answered calls
    assert policy.deadlines("100001", calls, T0 + 10) == {
        "pbx1/1": T0 + 17.5, "pbx1/2": T0 + 17.5, "pbx1/3": None}


def test_a_postpaid_account_without_limit_has_no_deadlines():
    policy = InMemoryPolicy([AccountTerms("100001", Decimal("0"), credit_limit=None)],
                            in_use=lambda n: 1)
    assert policy.deadlines("100001", [live("1", answered=T0)], T0 + 1) == {"pbx1/1": None}


def test_recording_a_cdr_charges_the_exact_answered_time_and_first_use_keeps_the_first_date():
    terms = AccountTerms("100001", Decimal("3.00"), Decimal("0.10"))
    policy = InMemoryPolicy([terms], in_use=lambda n: 1)
    utc = timezone.utc
    policy.record_cdr({"accountcode": "100001", "answer": datetime.fromtimestamp(T0, utc),
                       "end": datetime.fromtimestamp(T0 + 12.5, utc)})
    policy.first_use("100001", T0)
    policy.first_use("100001", T0 + 99)
    assert (terms.balance, terms.first_used) == (Decimal("1.75"), T0)
