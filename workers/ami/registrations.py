"""Registration status from AMI endpoint events: ContactStatus, PeerStatus, DeviceStateChange.

Pure: an event's fields (lower-cased keys) in, a `Registration` (or None) out. The endpoint
is the SIP username (PJSIP endpoint id = Extension.sip_username, see provisioning/realtime.py).

| event | endpoint from | registered | not registered | contact |
|---|---|---|---|---|
| ContactList (PJSIPShowContacts, at start and after every reconnect) | Endpoint, else Aor | any other Status (the contact exists: Reachable, NonQualified, Unknown, Created) | Unreachable, Unavailable, Removed | Uri |
| ContactStatus (PJSIP) | EndpointName, else AOR | Created, Updated, Reachable, NonQualified | Removed, Unreachable | URI (`sip:1001@10.0.0.5:5060;ob` -> `10.0.0.5:5060`) |
| PeerStatus | Peer (`PJSIP/1001`, `SIP/1001`) | Registered, Reachable, Lagged | Unregistered, Unreachable, Rejected | Address, if any |
| DeviceStateChange | Device (`PJSIP/1001`) | NOT_INUSE, INUSE, BUSY, RINGING, RINGINUSE, ONHOLD | UNAVAILABLE | – |

Anything else (Unknown states, Queue:/Custom: devices, Local channels) is skipped. A state that
says "not registered" keeps the last contact address and last-seen time.
"""
from __future__ import annotations

from typing import NamedTuple

_CONTACT_UP = {"created", "updated", "reachable", "nonqualified"}
_CONTACT_DOWN = {"removed", "unreachable"}
_PEER_UP = {"registered", "reachable", "lagged"}
_PEER_DOWN = {"unregistered", "unreachable", "rejected"}
_DEVICE_UP = {"not_inuse", "inuse", "busy", "ringing", "ringinuse", "onhold"}
_DEVICE_DOWN = {"unavailable"}
_TECHS = ("pjsip", "sip", "iax2")


class Registration(NamedTuple):
    endpoint: str          # SIP username
    registered: bool
    contact: str | None    # 'host:port' when the event says it, else None (keep the stored one)
    at: float              # epoch seconds the watcher saw it


def _device_endpoint(device: str) -> str:
    tech, sep, rest = (device or "").partition("/")
    if not sep or tech.lower() not in _TECHS or not rest:
        return ""
    return rest.split("/", 1)[0]


def contact_address(uri: str) -> str:
    """`sip:1001@10.0.0.5:5060;transport=udp` -> `10.0.0.5:5060` (IPv6 kept in brackets)."""
    uri = (uri or "").strip().strip("<>")
    for scheme in ("sips:", "sip:"):
        if uri.lower().startswith(scheme):
            uri = uri[len(scheme):]
            break
    uri = uri.split(";", 1)[0].split("?", 1)[0]
    return uri.rsplit("@", 1)[-1][:255]


def registration_of(fields: dict, now: float) -> Registration | None:
    """Read one endpoint event (keys lower-cased); None if it says nothing usable."""
    event = str(fields.get("event", "")).lower()
    if event == "contactstatus":
        endpoint = fields.get("endpointname") or fields.get("aor") or ""
        status = str(fields.get("contactstatus", "")).lower()
        contact = contact_address(fields.get("uri", "")) or None
        if status in _CONTACT_UP:
            up = True
        elif status in _CONTACT_DOWN:
            up = False
        else:
            return None
    elif event == "contactlist":   # one contact of a PJSIPShowContacts snapshot
        endpoint = fields.get("endpoint") or fields.get("aor") or ""
        status = str(fields.get("status", "")).lower()
        contact = contact_address(fields.get("uri", "")) or None
        up = status not in _CONTACT_DOWN and status != "unavailable"
    elif event == "peerstatus":
        endpoint = _device_endpoint(fields.get("peer", ""))
        status = str(fields.get("peerstatus", "")).lower()
        contact = (fields.get("address") or "").strip()[:255] or None
        if status in _PEER_UP:
            up = True
        elif status in _PEER_DOWN:
            up = False
        else:
            return None
    elif event == "devicestatechange":
        endpoint = _device_endpoint(fields.get("device", ""))
        state = str(fields.get("state", "")).lower()
        contact = None
        if state in _DEVICE_UP:
            up = True
        elif state in _DEVICE_DOWN:
            up = False
        else:
            return None
    else:
        return None
    if not endpoint:
        return None
    return Registration(endpoint, up, contact, now)
