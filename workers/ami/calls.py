"""Call-state tracker: AMI event dicts in, call happenings out.

Pure: no I/O and no clock of its own (the watcher passes `now`, the watcher host's wall clock,
with every event, so answer times and deadlines share one clock even if Asterisk's drifts).
One tracker per Asterisk server, because Uniqueids are only unique within one server.

Words used here:
- channel: one leg, keyed by Uniqueid (`PJSIP/1001-00000001`);
- call: all channels sharing a Linkedid;
- billed channel: the first channel of a call that carries an account code; the call is
  counted, limited, cut off and billed through it (the B leg usually inherits the account
  code and must not count twice);
- extension: the endpoint in the channel name (`PJSIP/1001-00000001` -> `1001`).

A new call is *pending* until the watcher calls `admit()` or `refuse()`: the account's in-use
count only counts admitted calls, so admitting calls one at a time lets the policy compare a
count that includes exactly the calls before it and this one.

Events may come twice or out of order: a Hangup for an unknown channel is ignored (and
remembered, so a late Newchannel cannot resurrect it), a Cdr may precede its Hangup, and each
billed channel yields exactly one CDR record, from whichever of Hangup/Cdr comes first.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping, NamedTuple
from zoneinfo import ZoneInfo

UP = "6"  # ChannelState of an answered channel
CALL_STARTED = "call_started"
CALL_ANSWERED = "call_answered"
CALL_ENDED = "call_ended"
# The switch's own Cdr for a call whose record was already made at its Hangup: the watcher,
# which holds that record a moment for it, takes the switch's billsec and disposition.
CDR_SWITCH = "cdr_switch"
CDR_READY = "cdr_ready"

# Dialplan placeholders, not a dialled number.
_NOT_A_NUMBER = frozenset({"", "s", "h", "i", "t", "o", "a", "e"})
# Q.850 cause -> Asterisk CDR disposition for calls that were never answered.
_UNANSWERED = {17: "BUSY", 34: "CONGESTION", 38: "CONGESTION", 42: "CONGESTION",
               16: "NO ANSWER", 18: "NO ANSWER", 19: "NO ANSWER", 31: "NO ANSWER"}
_REMEMBERED = 100_000  # ended channels / emitted CDRs kept for de-duplication


@dataclass(slots=True, eq=False)
class Channel:
    uniqueid: str
    name: str
    linkedid: str
    started: float
    account: str = ""
    extension: str = ""
    destination: str = ""
    answered: float | None = None
    billed: bool = False
    admitted: bool = False    # admission said yes: counted in the account's in-use count
    refused: bool = False     # admission said no: neither counted nor given a deadline
    estimated: bool = False   # a time was guessed across a blind spot (link down)
    born: int = 0             # tracker sequence number of its first event
    touched: int = 0          # tracker sequence number of its latest event


class Happening(NamedTuple):
    kind: str                 # CALL_STARTED, CALL_ANSWERED, CALL_ENDED or CDR_READY
    account: str
    channel: Channel | None = None
    record: dict | None = None


def extension_of(channel_name: str) -> str:
    """`PJSIP/1001-00000001` -> `1001`; '' for Local and other internal channels."""
    tech, _, rest = channel_name.partition("/")
    if not rest or tech in ("Local", "Message", "Bridge", "Recorder", "Snoop"):
        return ""
    endpoint, dash, _ = rest.rpartition("-")
    return endpoint if dash else rest


def _destination(exten: str | None) -> str:
    return "" if exten in _NOT_A_NUMBER or exten is None else exten


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc)


def _hms(value: str) -> float:
    """CoreShowChannel Duration `HH:MM:SS` -> seconds."""
    try:
        h, m, s = (int(part) for part in value.split(":"))
    except (AttributeError, ValueError):
        return 0.0
    return float(h * 3600 + m * 60 + s)


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class CallTracker:
    """Live channels of one Asterisk server, indexed by account, extension and call."""

    def __init__(self, server: str = "", cdr_timezone: str = "UTC"):
        self.server = server
        self.seq = 0  # counts fed events; reconciliation compares against it
        self._cdr_tz = ZoneInfo(cdr_timezone)
        self._channels: dict[str, Channel] = {}
        self._members: dict[str, int] = {}          # linkedid -> live channels
        self._billed: dict[str, str] = {}           # linkedid -> billed uniqueid
        self._by_account: dict[str, dict[str, Channel]] = {}    # pending + admitted calls
        self._admitted: dict[str, int] = {}                       # account -> in-use count
        self._by_extension: dict[str, int] = {}
        self._ended: OrderedDict[str, bool] = OrderedDict()    # uniqueid -> was billed
        self._cdr_done: OrderedDict[str, str | None] = OrderedDict()   # uid -> "hangup" if made then
        self.dirty_accounts: set[str] = set()       # counts changed since take_dirty()
        self.dirty_extensions: set[str] = set()
        self._handlers = {
            "newchannel": self._on_newchannel,
            "coreshowchannel": self._on_newchannel,
            "newstate": self._on_update,
            "newaccountcode": self._on_update,
            "newconnectedline": self._on_update,
            "dialbegin": self._on_dialbegin,
            "hangup": self._on_hangup,
            "cdr": self._on_cdr,
        }

    # ---- reading -------------------------------------------------------------------------
    @property
    def handled_events(self) -> frozenset[str]:
        """Lower-cased names of the events feed() looks at; others can be skipped unseen."""
        return frozenset(self._handlers)

    def channel(self, uniqueid: str) -> Channel | None:
        return self._channels.get(uniqueid)

    def calls_of(self, account: str) -> list[Channel]:
        """Billed channels of an account's live calls (pending or admitted, not refused)."""
        return list(self._by_account.get(account, {}).values())

    def accounts(self) -> list[str]:
        return list(self._by_account)

    def account_count(self, account: str) -> int:
        return self._admitted.get(account, 0)

    def extension_count(self, extension: str) -> int:
        return self._by_extension.get(extension, 0)

    def account_counts(self) -> dict[str, int]:
        return dict(self._admitted)

    def extension_counts(self) -> dict[str, int]:
        return dict(self._by_extension)

    def take_dirty(self) -> tuple[set[str], set[str]]:
        accounts, extensions = self.dirty_accounts, self.dirty_extensions
        self.dirty_accounts, self.dirty_extensions = set(), set()
        return accounts, extensions

    # ---- feeding -------------------------------------------------------------------------
    def feed(self, event: Mapping, now: float) -> list[Happening]:
        """Apply one AMI event (any mapping; keys are case-insensitive)."""
        return self.feed_fields({key.lower(): value for key, value in event.items()}, now)

    def feed_fields(self, fields: dict, now: float) -> list[Happening]:
        """feed() for an event whose keys are already lower-cased."""
        handler = self._handlers.get(str(fields.get("event", "")).lower())
        if handler is None:
            return []
        self.seq += 1
        return handler(fields, now)

    def admit(self, uniqueid: str) -> bool:
        """Count a pending call in its account's in-use count."""
        ch = self._channels.get(uniqueid)
        if ch is None or not ch.billed or ch.refused or ch.admitted:
            return False
        ch.admitted = True
        self._admitted[ch.account] = self._admitted.get(ch.account, 0) + 1
        self.dirty_accounts.add(ch.account)
        return True

    def refuse(self, uniqueid: str) -> bool:
        """Admission said no: stop counting the call; its Hangup will still end it."""
        ch = self._channels.get(uniqueid)
        if ch is None or not ch.billed or ch.refused:
            return False
        self._unindex(ch)
        ch.refused = True
        return True

    def reconcile(self, snapshot: Iterable[Mapping], now: float, asked_at: int,
                  lost_at: float | None = None) -> list[Happening]:
        """Align with a CoreShowChannels snapshot taken after sequence number `asked_at`.

        Channels missing from it end (unless first seen after `asked_at`); channels we did not
        know start. Times we could not see are guessed on the side that spends credit sooner
        (answered at `lost_at`, ended `now`) and flagged `estimated`.
        """
        seen = {}
        for item in snapshot:
            fields = {key.lower(): value for key, value in item.items()}
            if fields.get("uniqueid"):
                seen[fields["uniqueid"]] = fields
        out: list[Happening] = []
        for uid, ch in list(self._channels.items()):
            if uid not in seen and ch.born <= asked_at:
                ch.estimated = True
                del self._channels[uid]
                out += self._end(ch, now, None)
        for uid, fields in seen.items():
            ch = self._channels.get(uid)
            if ch is None:
                if uid not in self._ended:
                    self.seq += 1
                    out += self._on_newchannel(fields, now)
            elif ch.touched <= asked_at:
                if fields.get("channelstate") == UP and ch.answered is None:
                    exact = fields.get("answered_at")     # the switch's own, when it told us
                    ch.estimated = exact is None
                    self._answer(ch, exact if exact is not None else max(ch.started, lost_at or now), out)
                self._set_account(ch, fields.get("accountcode", ""), out)
        return out

    # ---- event handlers ------------------------------------------------------------------
    def _on_newchannel(self, ev: dict, now: float) -> list[Happening]:
        uid = ev.get("uniqueid")
        if not uid or uid in self._ended:
            return []
        if uid in self._channels:
            return self._on_update(ev, now)
        name = ev.get("channel", "")
        started = now
        if ev.get("event", "").lower() == "coreshowchannel":  # seen mid-life: guess its start
            started = now - _hms(ev.get("duration", ""))
        ch = Channel(uid, name, ev.get("linkedid") or uid, started,
                     extension=extension_of(name), destination=_destination(ev.get("exten")),
                     born=self.seq, touched=self.seq)
        self._channels[uid] = ch
        self._members[ch.linkedid] = self._members.get(ch.linkedid, 0) + 1
        if ch.extension:
            self._by_extension[ch.extension] = self._by_extension.get(ch.extension, 0) + 1
            self.dirty_extensions.add(ch.extension)
        out: list[Happening] = []
        self._set_account(ch, ev.get("accountcode", ""), out)
        if ev.get("channelstate") == UP:
            exact = ev.get("answered_at")   # CDR(answer) read from the switch at reconciliation
            if exact is not None:
                ch.started = min(started, exact)
                self._answer(ch, exact, out)
            else:
                ch.estimated = started != now  # answered before we could see it
                self._answer(ch, started if ch.estimated else now, out)
        return out

    def _on_update(self, ev: dict, now: float) -> list[Happening]:
        ch = self._channels.get(ev.get("uniqueid", ""))
        if ch is None:
            return []
        ch.touched = self.seq
        out: list[Happening] = []
        self._set_account(ch, ev.get("accountcode", ""), out)
        if not ch.destination:
            ch.destination = _destination(ev.get("exten"))
        if ev.get("channelstate") == UP:
            self._answer(ch, now, out)
        return out

    def _on_dialbegin(self, ev: dict, now: float) -> list[Happening]:
        ch = self._channels.get(ev.get("uniqueid", ""))
        if ch is not None and not ch.destination:
            ch.destination = _destination(ev.get("destexten"))
        return []

    def _on_hangup(self, ev: dict, now: float) -> list[Happening]:
        uid = ev.get("uniqueid", "")
        ch = self._channels.pop(uid, None)
        if ch is None:
            if uid and uid not in self._ended:
                self._remember(self._ended, uid, None)   # never seen: its Cdr will bill it
            return []
        return self._end(ch, now, _int(ev.get("cause")))

    def _on_cdr(self, ev: dict, now: float) -> list[Happening]:
        uid = ev.get("uniqueid", "")
        if not uid:
            return []
        if uid in self._cdr_done:
            if self._cdr_done[uid] != "hangup":
                return []
            self._cdr_done[uid] = "cdr"
            switch = {"server": self.server, "uniqueid": uid, "accountcode": ev.get("accountcode", ""),
                      "billsec": _int(ev.get("billableseconds")), "disposition": ev.get("disposition") or "",
                      "carrier": ev.get("carrier") or ""}
            return [Happening(CDR_SWITCH, switch["accountcode"], None, switch)]
        ch = self._channels.get(uid)
        if ch is not None:
            if not ch.billed:
                return []  # a leg of a call billed through another channel
            record = self._record(ch, now, None)
        elif self._ended.get(uid, None) is not None or not ev.get("accountcode"):
            return []      # ended here without a bill (a leg billed elsewhere), or nobody to bill
        else:
            record = self._record_from_cdr(ev)
        record["source"] = "cdr"
        if ev.get("disposition"):
            record["disposition"] = ev["disposition"]
        billsec = _int(ev.get("billableseconds"))
        if billsec is not None:
            record["billsec"] = billsec
        if ev.get("carrier"):      # CDR(carrier) (cdr_manager.conf [mappings]): the carrier that carried it
            record["carrier"] = ev["carrier"]
        self._remember(self._cdr_done, uid, None)
        return [Happening(CDR_READY, record["accountcode"], ch, record)]

    # ---- state changes -------------------------------------------------------------------
    def _set_account(self, ch: Channel, account: str, out: list[Happening]) -> None:
        if not account or account == ch.account:
            return
        old, ch.account = ch.account, account
        if ch.billed:  # the dialplan moved the call to another account: admit it again
            self._unindex(ch, old)
            out.append(Happening(CALL_ENDED, old, ch))
            ch.refused = False
        elif ch.linkedid in self._billed:
            return      # another channel already bills this call
        else:
            self._billed[ch.linkedid] = ch.uniqueid
            ch.billed = True
        self._index(ch)
        out.append(Happening(CALL_STARTED, account, ch))
        if ch.answered is not None:
            out.append(Happening(CALL_ANSWERED, account, ch))

    def _answer(self, ch: Channel, when: float, out: list[Happening]) -> None:
        if ch.answered is not None:
            return
        ch.answered = when
        if ch.billed:
            out.append(Happening(CALL_ANSWERED, ch.account, ch))

    def _end(self, ch: Channel, now: float, cause: int | None) -> list[Happening]:
        self._remember(self._ended, ch.uniqueid, ch.billed)
        left = self._members.get(ch.linkedid, 1) - 1
        if left > 0:
            self._members[ch.linkedid] = left
        else:
            self._members.pop(ch.linkedid, None)
            self._billed.pop(ch.linkedid, None)
        if ch.extension:
            n = self._by_extension.get(ch.extension, 1) - 1
            if n > 0:
                self._by_extension[ch.extension] = n
            else:
                self._by_extension.pop(ch.extension, None)
            self.dirty_extensions.add(ch.extension)
        if not ch.billed:
            return []
        self._unindex(ch)
        out = [Happening(CALL_ENDED, ch.account, ch)]
        if ch.uniqueid not in self._cdr_done:
            self._remember(self._cdr_done, ch.uniqueid, "hangup")   # the switch's Cdr may follow
            out.append(Happening(CDR_READY, ch.account, ch, self._record(ch, now, cause)))
        return out

    def _index(self, ch: Channel) -> None:
        self._by_account.setdefault(ch.account, {})[ch.uniqueid] = ch

    def _unindex(self, ch: Channel, account: str | None = None) -> None:
        """Forget a call of an account (ended, refused or moved); no-op if already done."""
        account = ch.account if account is None else account
        calls = self._by_account.get(account)
        if calls is not None and calls.pop(ch.uniqueid, None) is not None and not calls:
            del self._by_account[account]
        if ch.admitted:
            ch.admitted = False
            n = self._admitted.get(account, 1) - 1
            if n > 0:
                self._admitted[account] = n
            else:
                self._admitted.pop(account, None)
            self.dirty_accounts.add(account)

    @staticmethod
    def _remember(memory: OrderedDict, key: str, value) -> None:
        memory[key] = value
        if len(memory) > _REMEMBERED:
            memory.popitem(last=False)

    # ---- CDR records ---------------------------------------------------------------------
    def _record(self, ch: Channel, end: float, cause: int | None) -> dict:
        if ch.answered is not None:
            disposition = "ANSWERED"
            # Asterisk's default: whole seconds, truncated (cdr.conf initiatedseconds=no).
            billsec = int(max(0.0, end - ch.answered))
        else:
            disposition = _UNANSWERED.get(cause, "FAILED" if cause is not None else "NO ANSWER")
            billsec = 0
        return {
            "server": self.server, "uniqueid": ch.uniqueid, "linkedid": ch.linkedid,
            "channel": ch.name, "accountcode": ch.account, "extension": ch.extension,
            "destination": ch.destination, "start": _utc(ch.started),
            "answer": _utc(ch.answered), "end": _utc(end),
            "duration": int(max(0.0, end - ch.started)), "billsec": billsec,
            "disposition": disposition, "cause": cause, "refused": ch.refused,
            "estimated": ch.estimated, "source": "hangup",
        }

    def _record_from_cdr(self, ev: dict) -> dict:
        """A Cdr for a channel this tracker never saw (e.g. the watcher restarted)."""
        name = ev.get("channel", "")
        return {
            "server": self.server, "uniqueid": ev["uniqueid"],
            "linkedid": ev.get("linkedid") or ev["uniqueid"], "channel": name,
            "accountcode": ev.get("accountcode", ""), "extension": extension_of(name),
            "destination": _destination(ev.get("destination")),
            "start": self._cdr_time(ev.get("starttime")),
            "answer": self._cdr_time(ev.get("answertime")),
            "end": self._cdr_time(ev.get("endtime")),
            "duration": _int(ev.get("duration"), 0), "billsec": 0,
            "disposition": "NO ANSWER", "cause": None, "refused": False,
            "estimated": False, "source": "cdr",
        }

    def _cdr_time(self, value: str | None) -> datetime | None:
        """Cdr times are `YYYY-MM-DD HH:MM:SS` in the Asterisk server's local time."""
        if not value:
            return None
        try:
            local = datetime.strptime(value.strip()[:19], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
        return local.replace(tzinfo=self._cdr_tz).astimezone(timezone.utc)
