"""A small FastAGI client playing Asterisk's side over TCP: sends `agi_*` headers and a blank
line, then answers every command the server sends with `200 result=…`, recording them."""
from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field


@dataclass
class AgiSession:
    commands: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    hung_up: bool = False
    streamed: list[str] = field(default_factory=list)


_SET = re.compile(r'^SET VARIABLE (\S+) "?(.*?)"?$')


def agi_args(line: str) -> list[str]:
    """res_agi's parse_args: words split on unquoted blanks, `"` toggles quoting, a backslash
    makes the next character literal."""
    args, cur, quoted, escaped, started = [], [], False, False, False
    for ch in line:
        if ch == '"' and not escaped:
            quoted, started = not quoted, True
        elif ch in " \t" and not quoted and not escaped:
            if started:
                args.append("".join(cur))
            cur, started = [], False
        elif ch == "\\" and not escaped:
            escaped = True
        else:
            cur.append(ch)
            escaped, started = False, True
    if started:
        args.append("".join(cur))
    return args


def mset_pairs(data: str) -> list[tuple[str, str]]:
    """MSet's reading of its argument (main/pbx_variables.c, main/app.c __ast_app_separate_args):
    split on commas outside quotes, parentheses and brackets, quotes and escaping backslashes
    removed; then each item's name ends at its first `=`, the rest is the value, as is."""
    items, cur, paren, bracket, quote, i = [], [], 0, 0, False, 0
    while i < len(data):
        ch = data[i]
        if ch == "(":
            paren += 1
        elif ch == ")":
            paren = max(paren - 1, 0)
        elif ch == "[":
            bracket += 1
        elif ch == "]":
            bracket = max(bracket - 1, 0)
        elif ch == '"':
            quote = not quote
            i += 1
            continue
        elif ch == "\\":
            i += 1
            if i < len(data):
                cur.append(data[i])
            i += 1
            continue
        elif ch == "," and not paren and not bracket and not quote:
            items.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    items.append("".join(cur))
    return [tuple(item.split("=", 1)) for item in items if "=" in item]


def call(port: int, script: str, args=(), *, extension: str = "", host: str = "127.0.0.1",
         answers=None, keys=(), callerid: str = "unknown", timeout: float = 15.0) -> AgiSession:
    """Run one AGI session; `answers` maps a command's first words to a result string; `keys`
    are what the caller keys in, one per GET DATA, in order (then a timeout: empty)."""
    keys = list(keys)
    headers = {
        "agi_network": "yes", "agi_network_script": script, "agi_request": f"agi://{host}:{port}/{script}",
        "agi_channel": "PJSIP/test-00000001", "agi_language": "en", "agi_type": "PJSIP",
        "agi_uniqueid": "1700000000.1", "agi_version": "20.5.0", "agi_callerid": callerid,
        "agi_calleridname": "unknown", "agi_context": "rl-outbound", "agi_extension": extension,
        "agi_priority": "1", "agi_enhanced": "0.0", "agi_accountcode": "", "agi_threadid": "1",
    }
    for n, value in enumerate(args, 1):
        headers[f"agi_arg_{n}"] = value
    session = AgiSession()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall("".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n")
        reader = sock.makefile("rb")
        while True:
            line = reader.readline()
            if not line:
                return session
            command = line.decode().rstrip("\n")
            session.commands.append(command)
            m = _SET.match(command)
            if m:
                session.variables[m.group(1)] = m.group(2)
            if command.startswith("EXEC MSet "):
                session.variables.update(mset_pairs(agi_args(command)[2]))
            if command.startswith("STREAM FILE"):
                session.streamed.append(command.split()[2])
            result = "1" if command == "HANGUP" else "0"
            for prefix, answer in (answers or {}).items():
                if command.startswith(prefix):
                    result = answer
            if command.startswith("GET DATA"):
                result = keys.pop(0) if keys else " (timeout)"
            sock.sendall(f"200 result={result}\n".encode())
            if command == "HANGUP":
                session.hung_up = True
