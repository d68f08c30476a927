"""The FastAGI scripts the dialplan calls (docs/asterisk.md).

`agi://host:port/outbound,${CHANNEL(endpoint)},${EXTEN}` — sets (one `EXEC MSet`) RL_DECISION (ALLOW/REFUSE),
RL_CAUSE, RL_Q850, RL_ACCOUNT, RL_DESTINATION, RL_MAX_SECONDS, RL_DIAL_COUNT, RL_DIAL_<n> and
RL_CARRIER_<n> (the carriers to try in order, failing over on busy/congestion/unavailable) and, for an allowed call with a
limit, TIMEOUT(absolute). A refused call hears the insufficient-credit sound when the account
asks for it, and is hung up with its Q.850 cause.
"""
from __future__ import annotations

import time

from .decide import CallControl, InboundControl

NO_CREDIT_SOUND = "prepaid-no-enough-credit"    # A2Billing's sound name; shipped in docs/asterisk.md


def _quote(value) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def outbound(control: CallControl):
    async def route(request):
        h = request.headers
        endpoint = h.get("agi_arg_1") or h.get("agi_callerid", "")
        dialled = h.get("agi_arg_2") or h.get("agi_extension", "")
        await answer(request, await control.decide(endpoint, dialled, time.time(),
                                                   presented=h.get("agi_callerid", "")))
    return route


def inbound(control: InboundControl):
    """`agi://host:port/inbound,${EXTEN}`: the extensions a DID rings (RL_DIAL_1, all at once)."""
    async def route(request):
        h = request.headers
        await answer(request, await control.decide(h.get("agi_arg_1") or h.get("agi_extension", "")))
    return route


PIN_PROMPT, DESTINATION_PROMPT, BAD_PIN = "prepaid-enter-pin-number", "prepaid-enter-dest", "prepaid-invalid-pin"
PIN_TRIES = 3


def _digits(result: dict) -> str:
    value = result.get("result", "")
    value = (value[0] if isinstance(value, tuple) else str(value)).strip()   # panoramisk: (digits, "timeout")
    return value if value.isdigit() else ""


def calling_card(control: CallControl):
    """`agi://host:port/callingcard`: a platform access number. Asks for the account's PIN
    (three tries), then the destination, and decides the call as that account's."""
    async def route(request):
        send = request.send_command
        await send("ANSWER")
        account = None
        for _ in range(PIN_TRIES):
            pin = _digits(await send(f"GET DATA {PIN_PROMPT} 6000 20"))
            account = await control.pin_account(pin)
            if account is not None:
                break
            await send(f'STREAM FILE {BAD_PIN} ""')
        if account is None:
            for command in mset_commands([("RL_CAUSE", "invalid_pin"), ("RL_DECISION", "REFUSE")]):
                await send(command)
            await send("HANGUP")
            return
        dialled = _digits(await send(f"GET DATA {DESTINATION_PROMPT} 8000 24"))
        await answer(request, await control.decide("", dialled, time.time(), account=account,
                                                   presented=request.headers.get("agi_callerid", "")))
    return route


# One `EXEC MSet` sets every variable of a decision in one AGI round trip (each command is a
# round trip: 16 of them were half the server's and the switch's CPU per call). MSet has taken 99
# pairs since Asterisk 19 and 24 before; its argument must fit res_agi's 2,048-byte command line.
MSET_PAIRS, MSET_CHARS = 20, 1500


def _mset_value(value) -> str:
    """A value as MSet reads it back: its argument is split on commas outside quotes, brackets
    and parentheses, and a backslash makes the next character literal (then is removed)."""
    return "".join("\\" + ch if ch in '\\",()[]' else ch for ch in str(value))


def mset_commands(pairs) -> list[str]:
    """`EXEC MSet "NAME=value,…"` commands setting `pairs` (name, value) in order."""
    commands, chunk, size = [], [], 0
    for name, value in pairs:
        item = f"{name}={_mset_value(value)}"
        if chunk and (len(chunk) == MSET_PAIRS or size + len(item) + 1 > MSET_CHARS):
            commands.append("EXEC MSet " + _quote(",".join(chunk)))
            chunk, size = [], 0
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        commands.append("EXEC MSet " + _quote(",".join(chunk)))
    return commands


def decision_variables(decision) -> list[tuple[str, object]]:
    """The channel variables a decision sets (docs/asterisk.md), RL_DECISION last."""
    pairs = [("RL_ACCOUNT", decision.account), ("RL_DESTINATION", decision.destination)]
    if decision.allowed:
        pairs.append(("RL_MAX_SECONDS", decision.max_seconds))
        if decision.caller_id:      # only the account's DIDs or reseller-approved numbers
            pairs.append(("CALLERID(num)", decision.caller_id))
        if decision.max_seconds:
            pairs.append(("TIMEOUT(absolute)", decision.max_seconds))
        pairs.append(("RL_DIAL_COUNT", len(decision.legs)))
        for n, leg in enumerate(decision.legs, 1):     # the dialplan tries them in order
            pairs += [(f"RL_DIAL_{n}", leg.dial), (f"RL_CARRIER_{n}", leg.carrier_id)]
        pairs.append(("RL_DECISION", "ALLOW"))
        return pairs
    pairs += [("RL_CAUSE", decision.cause), ("RL_Q850", decision.q850), ("HANGUPCAUSE", decision.q850),
              ("RL_DECISION", "REFUSE")]
    return pairs


async def answer(request, decision) -> None:
    send = request.send_command
    for command in mset_commands(decision_variables(decision)):
        await send(command)
    if decision.allowed:
        return
    if decision.play_no_credit:
        await send("ANSWER")
        await send(f'STREAM FILE {NO_CREDIT_SOUND} ""')
    await send("HANGUP")
