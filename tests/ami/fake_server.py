"""A fake Asterisk Manager Interface server: real TCP, real AMI text protocol, asyncio.

What it speaks: a banner line (`Asterisk Call Manager/5.0.1`), then `Key: Value` CRLF lines,
each message ended by an empty line; Login (then a FullyBooted event), Logoff, Ping,
Hangup (answers, then emits the Hangup event), CoreShowChannels (EventList start, one
CoreShowChannel per live channel, CoreShowChannelsComplete with ListItems). Responses and list
items echo the action's ActionID; plain events never carry one.

Test helpers model live channels (`new_channel`, `answer`, `set_account`, `hangup`, `cdr`;
pass `emit=False` to change the model silently, as if the events were lost), push raw events
(`emit`, `flood`), break the link (`drop_connections`, `hang`, `refuse_connections`, `stop`),
misbehave (`ignore_hangups`) and show what the watcher did (`recorded_actions`,
`wait_for_action`).

    async with FakeAsterisk() as ami:       # listens on 127.0.0.1, ephemeral port: ami.port
        uid = ami.new_channel("PJSIP/1001-00000001", account="100001", exten="4420...")
"""
from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime, timezone

EOL = "\r\n"
STATE_DESC = {"0": "Down", "4": "Ring", "5": "Ringing", "6": "Up"}
CAUSE_TEXT = {16: "Normal Clearing", 17: "User busy", 21: "Call Rejected",
              34: "Circuit/channel congestion", 41: "Temporary failure"}


class RecordedAction(dict):
    """An action as received: its fields, plus when and on which connection."""
    at: float
    connection: int


def encode(fields: dict) -> bytes:
    lines = []
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key}: {item}{EOL}")
    return ("".join(lines) + EOL).encode()


def decode(block: bytes) -> RecordedAction:
    action = RecordedAction()
    for line in block.decode(errors="replace").split(EOL):
        key, sep, value = line.partition(": ")
        if sep:
            if key in action:
                old = action[key]
                action[key] = (old if isinstance(old, list) else [old]) + [value]
            else:
                action[key] = value
    return action


class _Connection:
    def __init__(self, number: int, writer: asyncio.StreamWriter):
        self.number = number
        self.writer = writer
        self.logged_in = False
        self.events = True
        self.frozen = False

    def send(self, data: bytes) -> None:
        if not self.frozen and not self.writer.is_closing():
            self.writer.write(data)


class FakeAsterisk:
    def __init__(self, username: str = "ringledger", secret: str = "s3cret",
                 version: str = "5.0.1", cdr_after_hangup: bool = False):
        self.username = username
        self.secret = secret
        self.version = version
        self.cdr_after_hangup = cdr_after_hangup  # cdr_manager on: a Cdr follows each Hangup
        self.refuse_connections = False           # Asterisk down, host up: accept, then RST
        self.ignore_hangups = False               # answer Hangup actions but keep the channel
        self.channels: dict[str, dict] = {}        # live channels by name
        self.contacts: dict[str, str] = {}         # PJSIP endpoint -> contact URI (registered phones)
        self.recorded_actions: list[RecordedAction] = []
        self.connections = 0
        self.logins = 0
        self.port = 0
        self._clients: set[_Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._ids = itertools.count(1)
        self._action_seen = asyncio.Event()

    # ---- server life -----------------------------------------------------------------------
    async def start(self, port: int = 0) -> "FakeAsterisk":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._server.close()
        self.drop_connections()
        await self._server.wait_closed()

    async def __aenter__(self) -> "FakeAsterisk":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    @property
    def logged_in_connections(self) -> int:
        return sum(1 for c in self._clients if c.logged_in and not c.frozen)

    # ---- breaking the link ----------------------------------------------------------------
    def drop_connections(self) -> None:
        """Hard close (RST) of every client connection, like a crash or a cable pulled."""
        for client in list(self._clients):
            client.writer.transport.abort()
        self._clients.clear()

    def hang(self) -> None:
        """Current connections stop answering anything (Ping included) but stay open, like a
        frozen Asterisk or a firewall that dropped the session. New connections work."""
        for client in self._clients:
            client.frozen = True

    # ---- pushing events -------------------------------------------------------------------
    def emit(self, event: dict) -> None:
        data = encode(event)
        for client in self._listeners():
            client.send(data)

    async def flood(self, events, chunk: int = 2000) -> None:
        """Write many pre-built events as fast as the clients read them."""
        events = list(events)
        for start in range(0, len(events), chunk):
            data = b"".join(e if isinstance(e, bytes) else encode(e)
                            for e in events[start:start + chunk])
            for client in self._listeners():
                client.send(data)
                await client.writer.drain()

    def _listeners(self):
        return [c for c in self._clients if c.logged_in and c.events and not c.frozen]

    # ---- the live-channel model -----------------------------------------------------------
    def new_channel(self, name: str, *, account: str = "", exten: str = "",
                    uniqueid: str | None = None, linkedid: str | None = None,
                    state: str = "4", emit: bool = True) -> str:
        uniqueid = uniqueid or f"{int(time.time())}.{next(self._ids)}"
        self.channels[name] = {
            "Channel": name, "ChannelState": state,
            "ChannelStateDesc": STATE_DESC.get(state, "Unknown"),
            "CallerIDNum": name.split("/")[-1].rsplit("-", 1)[0], "CallerIDName": "<unknown>",
            "ConnectedLineNum": "<unknown>", "ConnectedLineName": "<unknown>",
            "Language": "en", "AccountCode": account, "Context": "from-customer",
            "Exten": exten, "Priority": "1", "Uniqueid": uniqueid,
            "Linkedid": linkedid or uniqueid, "_created": time.time(), "_answered": None,
        }
        if emit:
            self.emit({"Event": "Newchannel", "Privilege": "call,all", **self._snapshot(name)})
        return uniqueid

    def answer(self, name: str, emit: bool = True) -> None:
        ch = self.channels[name]
        ch.update(ChannelState="6", ChannelStateDesc="Up", _answered=time.time())
        if emit:
            self.emit({"Event": "Newstate", "Privilege": "call,all", **self._snapshot(name)})

    def set_account(self, name: str, account: str, emit: bool = True) -> None:
        ch = self.channels[name]
        old, ch["AccountCode"] = ch["AccountCode"], account
        if emit:
            self.emit({"Event": "NewAccountCode", "Privilege": "call,all",
                       **self._snapshot(name), "OldAccountCode": old})

    def dial(self, caller: str, exten: str, emit: bool = True) -> None:
        if emit:
            self.emit({"Event": "DialBegin", "Privilege": "call,all", **self._snapshot(caller),
                       "DestExten": exten, "DialString": f"trunk/{exten}"})

    def hangup(self, name: str, cause: int = 16, emit: bool = True,
               cdr: bool | None = None) -> dict:
        ch = self.channels.pop(name)
        ch["_ended"] = time.time()
        if emit:
            self.emit({"Event": "Hangup", "Privilege": "call,all", **self._snapshot(name, ch),
                       "Cause": str(cause), "Cause-txt": CAUSE_TEXT.get(cause, "Unknown")})
            if cdr if cdr is not None else self.cdr_after_hangup:
                self.cdr(ch)
        return ch

    def cdr(self, ch: dict, **extra) -> None:
        """Emit the Cdr event of a channel (a dict returned by hangup(), or a live one); `extra`:
        more fields, such as the CDR variables cdr_manager.conf's [mappings] adds."""
        end = ch.get("_ended") or time.time()
        answered = ch["_answered"]
        self.emit({
            "Event": "Cdr", "Privilege": "cdr,all", "AccountCode": ch["AccountCode"],
            "Source": ch["CallerIDNum"], "Destination": ch["Exten"],
            "DestinationContext": ch["Context"], "CallerID": f'"" <{ch["CallerIDNum"]}>',
            "Channel": ch["Channel"], "DestinationChannel": "", "LastApplication": "Dial",
            "LastData": f'trunk/{ch["Exten"]}', "StartTime": _stamp(ch["_created"]),
            "AnswerTime": _stamp(answered) if answered else "", "EndTime": _stamp(end),
            "Duration": str(int(end - ch["_created"])),
            "BillableSeconds": str(int(end - answered) if answered else 0),
            "Disposition": "ANSWERED" if answered else "NO ANSWER",
            "AMAFlags": "DOCUMENTATION", "UniqueID": ch["Uniqueid"], "UserField": "", **extra,
        })

    def _snapshot(self, name: str, ch: dict | None = None) -> dict:
        ch = ch if ch is not None else self.channels[name]
        return {k: v for k, v in ch.items() if not k.startswith("_")}

    # ---- looking at what the client did ---------------------------------------------------
    def actions(self, name: str) -> list[RecordedAction]:
        return [a for a in self.recorded_actions if a.get("Action", "").lower() == name.lower()]

    async def wait_for_action(self, name: str, timeout: float = 3.0, **match) -> RecordedAction:
        """The first recorded action named `name` whose fields include `match`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for action in self.actions(name):
                if all(action.get(k) == v for k, v in match.items()):
                    return action
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no {name} action matching {match} within {timeout}s")
            self._action_seen.clear()
            try:
                await asyncio.wait_for(self._action_seen.wait(), left)
            except asyncio.TimeoutError:
                pass

    # ---- protocol ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse_connections:
            writer.transport.abort()
            return
        self.connections += 1
        client = _Connection(self.connections, writer)
        self._clients.add(client)
        client.send(f"Asterisk Call Manager/{self.version}{EOL}".encode())
        try:
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                if client.frozen:
                    continue
                action = decode(block)
                action.at, action.connection = time.time(), client.number
                self.recorded_actions.append(action)
                self._action_seen.set()
                self._answer(client, action)
                if writer.is_closing():
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._clients.discard(client)
            if not writer.is_closing():
                writer.close()

    def _answer(self, client: _Connection, action: RecordedAction) -> None:
        name = action.get("Action", "").lower()
        reply = {"Response": "Success"}
        if "ActionID" in action:
            reply["ActionID"] = action["ActionID"]
        if name == "login":
            if action.get("Username") == self.username and action.get("Secret") == self.secret:
                client.logged_in = True
                client.events = action.get("Events", "on").lower() != "off"
                self.logins += 1
                client.send(encode({**reply, "Message": "Authentication accepted"}))
                client.send(encode({"Event": "FullyBooted", "Privilege": "system,all",
                                    "Uptime": "100", "LastReload": "100",
                                    "Status": "Fully Booted"}))
            else:  # Asterisk ends the session after a failed login
                client.send(encode({**reply, "Response": "Error",
                                    "Message": "Authentication failed"}))
                client.writer.close()
        elif name == "logoff":
            client.send(encode({**reply, "Response": "Goodbye",
                                "Message": "Thanks for all the fish."}))
            client.writer.close()
        elif not client.logged_in:
            client.send(encode({**reply, "Response": "Error",
                                "Message": "Authentication Required"}))
        elif name == "ping":
            client.send(encode({**reply, "Ping": "Pong", "Timestamp": f"{time.time():.6f}"}))
        elif name == "hangup":
            channel = action.get("Channel", "")
            if channel in self.channels:
                client.send(encode({**reply, "Message": "Channel Hungup"}))
                if not self.ignore_hangups:
                    self.hangup(channel, cause=int(action.get("Cause") or 16))
            else:
                client.send(encode({**reply, "Response": "Error", "Message": "No such channel"}))
        elif name == "coreshowchannels":
            self._core_show_channels(client, reply)
        elif name == "getvar":
            ch = self.channels.get(action.get("Channel", ""))
            variable = action.get("Variable", "")
            if ch is None:
                client.send(encode({**reply, "Response": "Error", "Message": "No such channel"}))
            elif variable.upper() == "CDR(ANSWER,U)":   # unformatted: epoch seconds, microseconds
                answered = ch.get("_answered")
                client.send(encode({**reply, "Variable": variable,
                                    "Value": f"{answered:.6f}" if answered else "0.000000"}))
            else:
                client.send(encode({**reply, "Variable": variable, "Value": ""}))
        elif name == "pjsipshowcontacts":
            self._show_contacts(client, reply)
        else:
            client.send(encode({**reply, "Response": "Error",
                                "Message": "Invalid/unknown command"}))

    def _core_show_channels(self, client: _Connection, reply: dict) -> None:
        action_id = {"ActionID": reply["ActionID"]} if "ActionID" in reply else {}
        parts = [encode({**reply, "EventList": "start", "Message": "Channels will follow"})]
        now = time.time()
        for name, ch in self.channels.items():
            parts.append(encode({
                "Event": "CoreShowChannel", **action_id, **self._snapshot(name),
                "Application": "Dial", "ApplicationData": f'trunk/{ch["Exten"]}',
                "Duration": _hms(now - ch["_created"]), "BridgeId": "",
            }))
        parts.append(encode({"Event": "CoreShowChannelsComplete", **action_id,
                             "EventList": "Complete", "ListItems": str(len(self.channels))}))
        client.send(b"".join(parts))  # one write: the snapshot is atomic, as in Asterisk


    def _show_contacts(self, client: _Connection, reply: dict) -> None:
        """Asterisk 22's PJSIPShowContacts: one ContactList event per contact, then ContactListComplete."""
        action_id = {"ActionID": reply["ActionID"]} if "ActionID" in reply else {}
        parts = [encode({**reply, "EventList": "start", "Message": "A listing of Contacts follows, presented as ContactList events"})]
        for endpoint, uri in self.contacts.items():
            via = uri.split("@", 1)[-1].split(";", 1)[0]
            parts.append(encode({
                "Event": "ContactList", **action_id, "ObjectType": "contact",
                "ObjectName": f"{endpoint};@{abs(hash(uri)):x}", "ViaAddr": via.rsplit(":", 1)[0],
                "QualifyTimeout": "3.000000", "CallId": f"{endpoint}-call", "RegServer": "",
                "PruneOnBoot": "false", "Path": "", "Endpoint": endpoint, "ViaPort": via.rsplit(":", 1)[-1],
                "AuthenticateQualify": "false", "Uri": uri, "QualifyFrequency": "60",
                "UserAgent": "Yealink", "ExpirationTime": str(int(time.time()) + 3600), "OutboundProxy": "",
                "Status": "Reachable", "RoundtripUsec": "1234", "Aor": endpoint,
            }))
        parts.append(encode({"Event": "ContactListComplete", **action_id, "EventList": "Complete",
                             "ListItems": str(len(self.contacts))}))
        client.send(b"".join(parts))


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
